/* activator/auth.c: bearer tokens on /fn/ calls, checked against the
 * tokens of the route table (see auth.h). Nothing here logs: a token must
 * never reach a log line. */
#define _GNU_SOURCE
#include "activator/auth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "activator/fnpath.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define TOKEN_PREFIX "fnb_"

/* ---- the table's tokens ------------------------------------------------- */

#define FAIL(...) do { snprintf(why, why_len, __VA_ARGS__); return -EINVAL; } while (0)

void auth_tokens_free(AuthToken *v, size_t n) {
        for (size_t i = 0; v && i < n; i++)
                free(v[i].namespaces);
        free(v);
}

static bool hex_lower(const char *s, size_t len) {
        if (!s || strlen(s) != len)
                return false;
        for (size_t i = 0; i < len; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return false;
        return true;
}

/* ["a", "b"] -> "a,b": DNS labels or "*", 1 to AUTH_NAMESPACES_MAX. */
static int namespaces_join(const json_t *list, char **ret) {
        size_t n = json_array_size(list), len = 0, i;
        json_t *v;
        if (!json_is_array(list) || n == 0 || n > AUTH_NAMESPACES_MAX)
                return -EINVAL;
        json_array_foreach(list, i, v) {
                const char *s = json_string_value(v);
                if (!s || json_string_length(v) != strlen(s) ||
                    (strcmp(s, "*") != 0 && !fnpath_name_ok(s, strlen(s))))
                        return -EINVAL;
                len += strlen(s) + 1;
        }
        char *out = malloc(len), *p = out;
        if (!out)
                return -ENOMEM;
        json_array_foreach(list, i, v) {
                size_t l = strlen(json_string_value(v));
                memcpy(p, json_string_value(v), l);
                p += l;
                *p++ = ',';
        }
        p[-1] = 0;
        *ret = out;
        return 0;
}

/* One entry; *ret_skip for a role we do not know (a newer controller). */
static int token_parse_entry(const json_t *j, size_t idx, AuthToken *t, bool *ret_skip, char *why, size_t why_len) {
        const char *id = json_string_value(json_object_get(j, "id"));
        const char *hash = json_string_value(json_object_get(j, "secretHash"));
        const char *role = json_string_value(json_object_get(j, "role"));
        if (!json_is_object(j) || !hex_lower(id, TOKEN_ID_LEN))
                FAIL("tokens[%zu]: id is not %d lower-case hex digits", idx, TOKEN_ID_LEN);
        if (!hex_lower(hash, 64))
                FAIL("tokens[%zu] (%s): secretHash is not 64 lower-case hex digits", idx, id);
        if (!role)
                FAIL("tokens[%zu] (%s): no role", idx, id);
        *ret_skip = token_role_from_string(role, &t->role) < 0;
        if (*ret_skip)
                return 0;
        int r = namespaces_join(json_object_get(j, "namespaces"), &t->namespaces);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                FAIL("tokens[%zu] (%s): namespaces is not a list of 1 to %d names or \"*\"", idx, id,
                     AUTH_NAMESPACES_MAX);
        memcpy(t->id, id, TOKEN_ID_LEN + 1);
        memcpy(t->hash, hash, 65);
        return 0;
}

static int cmp_token(const void *a, const void *b) {
        return strcmp(((const AuthToken *) a)->id, ((const AuthToken *) b)->id);
}

int auth_tokens_parse(const json_t *list, AuthToken **ret, size_t *ret_n, char *why, size_t why_len) {
        size_t n = json_array_size(list), k = 0;
        *ret = NULL;
        *ret_n = 0;
        if (!list || json_is_null(list))
                return 0;
        if (!json_is_array(list) || n > AUTH_TOKENS_MAX)
                FAIL("tokens is not an array of at most %d", AUTH_TOKENS_MAX);
        AuthToken *v = calloc(n ? n : 1, sizeof *v);
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                bool skip = false;
                int r = token_parse_entry(json_array_get(list, i), i, &v[k], &skip, why, why_len);
                if (r < 0) {
                        auth_tokens_free(v, k + 1);
                        return r;
                }
                k += !skip;
        }
        if (k)
                qsort(v, k, sizeof *v, cmp_token);
        for (size_t i = 1; i < k; i++)
                if (strcmp(v[i - 1].id, v[i].id) == 0) {
                        snprintf(why, why_len, "token %s listed twice", v[i].id);
                        auth_tokens_free(v, k);
                        return -EINVAL;
                }
        *ret = v;
        *ret_n = k;
        return 0;
}

static int cmp_key_token(const void *key, const void *e) {
        return strcmp(key, ((const AuthToken *) e)->id);
}

const AuthToken *auth_token_find(const AuthToken *v, size_t n, const char *id) {
        return v && n ? bsearch(id, v, n, sizeof *v, cmp_key_token) : NULL;
}

/* ---- a request's token ----------------------------------------------------- */

/* The token after "Bearer " (scheme case-insensitive), or NULL. */
static const char *bearer(const char *authorization) {
        if (strncasecmp(authorization, "Bearer", 6) != 0)
                return NULL;
        const char *p = authorization + 6;
        if (*p != ' ' && *p != '\t')
                return NULL;
        while (*p == ' ' || *p == '\t')
                p++;
        return p;
}

bool auth_is_fnbox_bearer(const char *value) {
        const char *t = value ? bearer(value) : NULL;
        return t && strncmp(t, TOKEN_PREFIX, sizeof TOKEN_PREFIX - 1) == 0;
}

/* Compare n bytes in a time that does not depend on where they differ. */
static bool equal_ct(const char *a, const char *b, size_t n) {
        volatile unsigned char d = 0;
        for (size_t i = 0; i < n; i++)
                d |= (unsigned char) (a[i] ^ b[i]);
        return d == 0;
}

static int hexval(char c) {
        return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The cache entry for a well-shaped token (by the first two hex digits of
 * its public id, which are random), or NULL. */
static AuthCacheEntry *cache_slot(AuthCache *cache, const char *tok) {
        if (!cache || strnlen(tok, AUTH_TOKEN_LEN + 1) != AUTH_TOKEN_LEN ||
            strncmp(tok, TOKEN_PREFIX, sizeof TOKEN_PREFIX - 1) != 0)
                return NULL;
        int hi = hexval(tok[4]), lo = hexval(tok[5]);
        if (hi < 0 || lo < 0)
                return NULL;
        return &cache->e[((unsigned) hi << 4 | (unsigned) lo) % AUTH_CACHE_SIZE];
}

int auth_key_from_header(const char *authorization, AuthCache *cache, AuthKey *ret, bool *ret_hit) {
        *ret_hit = false;
        if (!authorization || !authorization[strspn(authorization, " \t")])
                return -ENOKEY;
        const char *tok = bearer(authorization);
        if (!tok)
                return -EBADMSG;
        AuthCacheEntry *e = cache_slot(cache, tok);
        if (e && equal_ct(e->token, tok, AUTH_TOKEN_LEN)) {
                *ret = e->key;
                *ret_hit = true;
                return 0;
        }
        int r = token_parse(tok, ret->id, ret->hash);
        return r == -EINVAL ? -EBADMSG : r;
}

void auth_cache_put(AuthCache *cache, const char *authorization, const AuthKey *k) {
        const char *tok = authorization ? bearer(authorization) : NULL;
        AuthCacheEntry *e = tok ? cache_slot(cache, tok) : NULL;
        if (!e)
                return;
        memcpy(e->token, tok, AUTH_TOKEN_LEN);
        e->key = *k;
}

void auth_cache_clear(AuthCache *cache) {
        if (cache)
                explicit_bzero(cache, sizeof *cache);
}

/* ---- the decision ---------------------------------------------------------------- */

const AuthToken *auth_authenticate(const AuthToken *v, size_t n, const AuthKey *k) {
        static const char zero[65] = "0000000000000000000000000000000000000000000000000000000000000000";
        const AuthToken *t = auth_token_find(v, n, k->id);
        /* an unknown id costs the same comparison as a known one */
        bool match = token_hash_equal(k->hash, t ? t->hash : zero);
        return t && match ? t : NULL;
}

bool auth_allows(const AuthToken *t, const char *ns) {
        return t->role == TOKEN_ROLE_ADMIN || token_namespace_allowed(t->namespaces, ns);
}

/* ---- broker calls ------------------------------------------------------------ */

/* "fn:NS/NAME@REV" with valid names: NS into ns. */
static bool broker_caller_parse(const char *caller, char *ns, size_t ns_len) {
        if (!caller || strncmp(caller, "fn:", 3) != 0 || strlen(caller) > 159)
                return false;
        const char *s = caller + 3, *slash = strchr(s, '/'), *at = slash ? strchr(slash, '@') : NULL;
        if (!slash || !at || (size_t) (slash - s) >= ns_len || !fnpath_name_ok(s, (size_t) (slash - s)) ||
            !fnpath_name_ok(slash + 1, (size_t) (at - slash - 1)) || !at[1] || strlen(at + 1) > 80)
                return false;
        for (const char *r = at + 1; *r; r++)
                if (!((*r >= 'a' && *r <= 'z') || (*r >= '0' && *r <= '9') || *r == '-'))
                        return false;
        snprintf(ns, ns_len, "%.*s", (int) (slash - s), s);
        return true;
}

int auth_broker_verify(const char *secret, const char *caller, const char *depth, const char *sig, long long now,
                       char *ret_ns, size_t ns_len, unsigned *ret_depth) {
        char ns[FNPATH_NAME_MAX + 1], got[65] = "", want[65], msg[512], tail;
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned mac_len = 0, d = 0;
        long long t = 0;
        if (!secret || !*secret)
                return -ENOKEY;
        if (!sig || sscanf(sig, "v1 %lld %64s%c", &t, got, &tail) != 2 || strlen(got) != 64 ||
            !broker_caller_parse(caller, ns, sizeof ns))
                return -EBADMSG;
        if (depth && (strspn(depth, "0123456789") != strlen(depth) || !*depth || strlen(depth) > 3 ||
                      (d = (unsigned) atoi(depth)) > AUTH_BROKER_DEPTH_MAX))
                return -EBADMSG;
        int n = snprintf(msg, sizeof msg, "v1\n%s\n%s\n%u\n%lld", caller, ns, d, t);
        if (n < 0 || (size_t) n >= sizeof msg ||
            !HMAC(EVP_sha256(), secret, (int) strlen(secret), (const unsigned char *) msg, (size_t) n, mac, &mac_len) ||
            mac_len < 32)
                return -EPERM;
        for (unsigned i = 0; i < 32; i++)
                snprintf(want + 2 * i, 3, "%02x", mac[i]);
        if (CRYPTO_memcmp(want, got, 64) != 0 || t < now - AUTH_BROKER_SKEW_S || t > now + AUTH_BROKER_SKEW_S)
                return -EPERM;
        if (strlen(ns) >= ns_len)
                return -EBADMSG;
        snprintf(ret_ns, ns_len, "%s", ns);
        *ret_depth = d;
        return 0;
}
