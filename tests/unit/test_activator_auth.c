/* tests/unit/test_activator_auth.c: bearer tokens on /fn/ calls
 * (activator/auth.c, route_authorize, router_route's second check): the
 * route table's tokens parsed and refused when malformed; a presented
 * token taken from its header; the decision for a good token, a wrong
 * secret, a revoked one (absent from the table), a namespace it may not
 * call, malformed headers; the namespace a URL names when the function is
 * unknown; the per-worker cache; a table that changes between the check
 * and the routing. Tokens are made with lib/token.c, as the controller
 * makes them. */
#define _GNU_SOURCE
#include "test.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>

#include "activator/auth.h"
#include "activator/router.h"
#include "activator/table.h"
#include "lib/token.h"

typedef struct Tok {
        char token[TOKEN_STRING_MAX], id[TOKEN_ID_LEN + 1], hash[65];
        char header[TOKEN_STRING_MAX + 16];
} Tok;

static Tok tok_new(void) {
        Tok t;
        ASSERT_EQ_INT(token_generate(t.token, t.id, t.hash), 0);
        snprintf(t.header, sizeof t.header, "Bearer %s", t.token);
        return t;
}

/* {"id", "secretHash", "role", "namespaces"} as the controller sends it. */
static json_t *tok_json(const Tok *t, const char *role, const char *ns_json) {
        json_t *ns = json_loads(ns_json, 0, NULL);
        ASSERT_TRUE(ns != NULL);
        return json_pack("{s:s, s:s, s:s, s:o}", "id", t->id, "secretHash", t->hash, "role", role, "namespaces", ns);
}

static AuthKey key_of(const char *header) {
        AuthKey k;
        bool hit;
        ASSERT_EQ_INT(auth_key_from_header(header, NULL, &k, &hit), 0);
        ASSERT_TRUE(!hit);
        return k;
}

static void tokens_load(json_t *list, AuthToken **v, size_t *n) {
        char why[256] = "";
        int r = auth_tokens_parse(list, v, n, why, sizeof why);
        json_decref(list);
        if (r < 0)
                FAIL_AT("auth_tokens_parse: %d (%s)", r, why);
}

/* The test text with HASH as hash and SHORT as a hash one digit short. */
static void subst(const char *in, const char *hash, char *out, size_t size) {
        size_t o = 0;
        while (*in && o + 65 < size) {
                if (strncmp(in, "HASH", 4) == 0) {
                        memcpy(out + o, hash, 64);
                        o += 64, in += 4;
                } else if (strncmp(in, "SHORT", 5) == 0) {
                        memcpy(out + o, hash, 63);
                        o += 63, in += 5;
                } else
                        out[o++] = *in++;
        }
        out[o] = 0;
}

TEST(activator_auth_tokens_parse) {
        Tok a = tok_new(), b = tok_new(), c = tok_new();
        AuthToken *v;
        size_t n;
        tokens_load(json_pack("[o, o, o, {s:s, s:s, s:s, s:[s]}]", tok_json(&a, "invoker", "[\"default\", \"team\"]"),
                              tok_json(&b, "admin", "[\"*\"]"), tok_json(&c, "developer", "[\"team\"]"),
                              "id", "00000000000000ff", "secretHash", a.hash, "role", "auditor", "namespaces", "x"),
                    &v, &n);
        ASSERT_EQ_UINT(n, 3);                   /* the unknown role is left out */
        for (size_t i = 1; i < n; i++)
                ASSERT_TRUE(strcmp(v[i - 1].id, v[i].id) < 0);
        const AuthToken *t = auth_token_find(v, n, a.id);
        ASSERT_TRUE(t && t->role == TOKEN_ROLE_INVOKER);
        ASSERT_EQ_STR(t->namespaces, "default,team");
        ASSERT_EQ_STR(t->hash, a.hash);
        ASSERT_EQ_STR(auth_token_find(v, n, b.id)->namespaces, "*");
        ASSERT_TRUE(auth_token_find(v, n, "00000000000000ff") == NULL);
        auth_tokens_free(v, n);

        tokens_load(NULL, &v, &n);
        ASSERT_TRUE(v == NULL && n == 0);

        const char *bad[] = {
                "{}",
                "[1]",
                "[{\"id\": \"0123456789ABCDEF\", \"secretHash\": \"HASH\", \"role\": \"invoker\", \"namespaces\": [\"a\"]}]",
                "[{\"id\": \"0123456789abcde\", \"secretHash\": \"HASH\", \"role\": \"invoker\", \"namespaces\": [\"a\"]}]",
                "[{\"id\": \"0123456789abcdef\", \"secretHash\": \"SHORT\", \"role\": \"invoker\", \"namespaces\": [\"a\"]}]",
                "[{\"id\": \"0123456789abcdef\", \"secretHash\": \"HASH\", \"namespaces\": [\"a\"]}]",
                "[{\"id\": \"0123456789abcdef\", \"secretHash\": \"HASH\", \"role\": \"invoker\", \"namespaces\": []}]",
                "[{\"id\": \"0123456789abcdef\", \"secretHash\": \"HASH\", \"role\": \"invoker\", \"namespaces\": \"a\"}]",
                "[{\"id\": \"0123456789abcdef\", \"secretHash\": \"HASH\", \"role\": \"invoker\", \"namespaces\": [\"A b\"]}]",
                "[{\"id\": \"0123456789abcdef\", \"secretHash\": \"HASH\", \"role\": \"invoker\", \"namespaces\": [\"a,b\"]}]",
                "[{\"id\": \"0123456789abcdef\", \"secretHash\": \"HASH\", \"role\": \"invoker\", \"namespaces\": [\"a\"]},"
                " {\"id\": \"0123456789abcdef\", \"secretHash\": \"HASH\", \"role\": \"admin\", \"namespaces\": [\"*\"]}]",
        };
        for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
                char text[1024], why[256] = "";
                subst(bad[i], a.hash, text, sizeof text);
                json_t *j = json_loads(text, 0, NULL);
                if (!j)
                        FAIL_AT("test JSON %zu", i);
                v = NULL;
                int r = auth_tokens_parse(j, &v, &n, why, sizeof why);
                json_decref(j);
                if (r != -EINVAL || !why[0] || v)
                        FAIL_AT("bad[%zu] gave %d (%s)", i, r, why);
        }
        /* too many namespaces for one token */
        json_t *many = json_array();
        for (int i = 0; i <= AUTH_NAMESPACES_MAX; i++) {
                char ns[16];
                snprintf(ns, sizeof ns, "ns%d", i);
                json_array_append_new(many, json_string(ns));
        }
        json_t *j = json_pack("[{s:s, s:s, s:s, s:o}]", "id", a.id, "secretHash", a.hash, "role", "invoker",
                              "namespaces", many);
        char why[256] = "";
        ASSERT_EQ_INT(auth_tokens_parse(j, &v, &n, why, sizeof why), -EINVAL);
        json_decref(j);
}

TEST(activator_auth_header) {
        Tok a = tok_new();
        AuthKey k;
        bool hit;
        ASSERT_EQ_INT(auth_key_from_header(NULL, NULL, &k, &hit), -ENOKEY);
        ASSERT_EQ_INT(auth_key_from_header("", NULL, &k, &hit), -ENOKEY);
        ASSERT_EQ_INT(auth_key_from_header("  ", NULL, &k, &hit), -ENOKEY);
        const char *bad[] = {
                "Basic YWxhZGRpbjpvcGVuc2VzYW1l",
                "Bearer",
                "Bearer ",
                "Bearerfnb_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                "Bearer xyz",
                "Bearer fnb_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",     /* short secret */
                "Bearer fnb_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA x",  /* trailing junk */
                "Bearer fnb_0123456789ABCDEF_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                a.token,                                                                     /* no scheme */
        };
        for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
                if (auth_key_from_header(bad[i], NULL, &k, &hit) != -EBADMSG)
                        FAIL_AT("accepted \"%s\"", bad[i]);
        char h[128];
        snprintf(h, sizeof h, "bearer \t%s", a.token);          /* the scheme in any case, any blanks */
        ASSERT_EQ_INT(auth_key_from_header(h, NULL, &k, &hit), 0);
        ASSERT_EQ_STR(k.id, a.id);
        ASSERT_EQ_STR(k.hash, a.hash);
        ASSERT_TRUE(auth_is_fnbox_bearer(a.header) && auth_is_fnbox_bearer(h));
        ASSERT_TRUE(!auth_is_fnbox_bearer("Bearer abc") && !auth_is_fnbox_bearer("Basic fnb_x") &&
                    !auth_is_fnbox_bearer(NULL));
}

TEST(activator_auth_check) {
        Tok inv = tok_new(), dev = tok_new(), adm = tok_new(), revoked = tok_new();
        AuthToken *v;
        size_t n;
        /* "revoked" is not in the table: the controller sends live tokens only */
        tokens_load(json_pack("[o, o, o]", tok_json(&inv, "invoker", "[\"default\", \"team\"]"),
                              tok_json(&dev, "developer", "[\"*\"]"), tok_json(&adm, "admin", "[\"*\"]")),
                    &v, &n);

        AuthKey k = key_of(inv.header);
        const AuthToken *t = auth_authenticate(v, n, &k);
        ASSERT_TRUE(t && strcmp(t->id, inv.id) == 0);
        ASSERT_TRUE(auth_allows(t, "default") && auth_allows(t, "team"));
        ASSERT_TRUE(!auth_allows(t, "other") && !auth_allows(t, "tea") && !auth_allows(t, "*"));
        ASSERT_EQ_INT(act_error_status(ACT_FORBIDDEN), 403);
        ASSERT_EQ_STR(act_error_type(ACT_FORBIDDEN), "forbidden");

        /* the right id with a wrong secret */
        Tok forged = inv;
        char *secret = forged.token + 4 + TOKEN_ID_LEN + 1;
        secret[0] = secret[0] == 'A' ? 'B' : 'A';
        snprintf(forged.header, sizeof forged.header, "Bearer %s", forged.token);
        k = key_of(forged.header);
        ASSERT_EQ_STR(k.id, inv.id);
        ASSERT_TRUE(auth_authenticate(v, n, &k) == NULL);
        ASSERT_EQ_INT(act_error_status(ACT_UNAUTHENTICATED), 401);
        ASSERT_EQ_STR(act_error_type(ACT_UNAUTHENTICATED), "unauthenticated");

        /* revoked: gone from the table */
        k = key_of(revoked.header);
        ASSERT_TRUE(auth_authenticate(v, n, &k) == NULL);
        ASSERT_TRUE(auth_authenticate(NULL, 0, &k) == NULL);

        /* "*" and admins: everywhere */
        k = key_of(dev.header);
        ASSERT_TRUE(auth_allows(auth_authenticate(v, n, &k), "other"));
        k = key_of(adm.header);
        ASSERT_TRUE(auth_allows(auth_authenticate(v, n, &k), "other"));
        auth_tokens_free(v, n);

        /* an admin is an admin whatever its list says */
        tokens_load(json_pack("[o]", tok_json(&adm, "admin", "[\"default\"]")), &v, &n);
        ASSERT_TRUE(auth_allows(auth_authenticate(v, n, &k), "other"));
        auth_tokens_free(v, n);
}

TEST(activator_auth_cache) {
        Tok a = tok_new();
        AuthCache *c = calloc(1, sizeof *c);
        AuthKey k, k2;
        bool hit;
        ASSERT_EQ_INT(auth_key_from_header(a.header, c, &k, &hit), 0);
        ASSERT_TRUE(!hit);
        auth_cache_put(c, a.header, &k);
        ASSERT_EQ_INT(auth_key_from_header(a.header, c, &k2, &hit), 0);
        ASSERT_TRUE(hit);
        ASSERT_EQ_STR(k2.id, a.id);
        ASSERT_EQ_STR(k2.hash, a.hash);

        /* the same id (so the same entry) with another secret: hashed, not taken from the cache */
        Tok forged = a;
        char *secret = forged.token + 4 + TOKEN_ID_LEN + 1;
        secret[42] = secret[42] == 'A' ? 'Q' : 'A';
        snprintf(forged.header, sizeof forged.header, "Bearer %s", forged.token);
        ASSERT_EQ_INT(auth_key_from_header(forged.header, c, &k2, &hit), 0);
        ASSERT_TRUE(!hit);
        ASSERT_EQ_STR(k2.id, a.id);
        ASSERT_TRUE(!token_hash_equal(k2.hash, a.hash));

        /* malformed never reaches the cache */
        ASSERT_EQ_INT(auth_key_from_header("Bearer fnb_zz", c, &k2, &hit), -EBADMSG);
        auth_cache_clear(c);
        ASSERT_EQ_INT(auth_key_from_header(a.header, c, &k2, &hit), 0);
        ASSERT_TRUE(!hit);
        free(c);
}

/* ---- against a route table ---- */

/* team/resize, default/hi, and (with default_team) default/team, whose
 * name is also a namespace's. */
static RouteTable *table_of(json_t *tokens, bool default_team) {
        json_t *doc = json_loads(
                "{\"version\": 3, \"functions\": ["
                " {\"namespace\": \"team\", \"name\": \"resize\", \"traffic\": [{\"revision\": \"resize-00001\", \"percent\": 100}]},"
                " {\"namespace\": \"default\", \"name\": \"hi\", \"traffic\": [{\"revision\": \"hi-00001\", \"percent\": 100}]}],"
                " \"revisions\": {"
                "  \"team/resize-00001\": {\"mode\": \"fresh\", \"instances\": [{\"id\": \"resize-00001-aaaaaa\", \"invoke\": \"unix:/s\"}]},"
                "  \"default/hi-00001\": {\"mode\": \"fresh\", \"instances\": [{\"id\": \"hi-00001-aaaaaa\", \"invoke\": \"unix:/s\"}]},"
                "  \"default/team-00001\": {\"mode\": \"fresh\", \"instances\": [{\"id\": \"team-00001-aaaaaa\", \"invoke\": \"unix:/s\"}]}}}",
                0, NULL);
        ASSERT_TRUE(doc != NULL);
        if (default_team)
                json_array_append_new(json_object_get(doc, "functions"),
                                      json_pack("{s:s, s:s, s:[{s:s, s:i}]}", "namespace", "default", "name", "team",
                                                "traffic", "revision", "team-00001", "percent", 100));
        if (tokens)
                json_object_set_new(doc, "tokens", tokens);
        RouteTable *t = NULL;
        char why[256] = "";
        if (route_table_parse(doc, &t, why, sizeof why) < 0)
                FAIL_AT("route_table_parse: %s", why);
        json_decref(doc);
        return t;
}

#define ASSERT_STREQ_SEEN(t, uri, who, want) ASSERT_EQ_STR(seen_as(t, uri, who), want)

static ActError authorize(const RouteTable *t, const char *uri, const Tok *who) {
        FnPath p;
        char msg[256];
        ASSERT_EQ_INT(fnpath_parse(uri, &p), 0);
        AuthKey k = key_of(who->header);
        ActError e = route_authorize(t, &p, &k, msg, sizeof msg);
        if (e == ACT_FORBIDDEN && !strstr(msg, "may not call functions in namespace"))
                FAIL_AT("403 message: %s", msg);
        return e;
}

/* The function uri reaches for who: "NS/NAME", "404" or "403". */
static const char *seen_as(const RouteTable *t, const char *uri, const Tok *who) {
        FnPath p;
        char msg[256];
        const char *tag, *sub, *denied;
        size_t sub_len;
        ASSERT_EQ_INT(fnpath_parse(uri, &p), 0);
        AuthKey k = key_of(who->header);
        const AuthToken *tok = route_authenticate(t, &k, msg, sizeof msg);
        ASSERT_TRUE(tok != NULL);
        RouteFunction *f = route_lookup_as(t, &p, tok, &denied, &tag, &sub, &sub_len);
        ASSERT_TRUE(!(f && denied));
        return f ? f->key : denied ? "403" : "404";
}

TEST(activator_auth_route_namespaces) {
        Tok def = tok_new(), team = tok_new(), adm = tok_new(), none = tok_new();
        RouteTable *t = table_of(json_pack("[o, o, o]", tok_json(&def, "invoker", "[\"default\"]"),
                                           tok_json(&team, "invoker", "[\"team\"]"), tok_json(&adm, "admin", "[\"*\"]")),
                                 false);
        ASSERT_TRUE(t->has_tokens && t->n_tokens == 3);
        ASSERT_EQ_INT(authorize(t, "/fn/hi", &def), ACT_OK);
        ASSERT_EQ_INT(authorize(t, "/fn/default/hi", &def), ACT_OK);
        ASSERT_EQ_INT(authorize(t, "/fn/team/resize", &def), ACT_FORBIDDEN);
        ASSERT_EQ_INT(authorize(t, "/fn/team/resize/x.png", &team), ACT_OK);
        ASSERT_EQ_INT(authorize(t, "/fn/hi", &team), ACT_FORBIDDEN);
        ASSERT_EQ_INT(authorize(t, "/fn/hi", &none), ACT_UNAUTHENTICATED);
        ASSERT_EQ_INT(authorize(t, "/fn/team/resize", &adm), ACT_OK);
        /* unknown functions: 404 in a namespace the token may call, 403 outside, whether it exists or not */
        ASSERT_STREQ_SEEN(t, "/fn/nope", &def, "404");
        ASSERT_STREQ_SEEN(t, "/fn/nope", &team, "403");
        ASSERT_STREQ_SEEN(t, "/fn/team/nope", &team, "404");
        ASSERT_STREQ_SEEN(t, "/fn/team/nope", &def, "403");
        ASSERT_STREQ_SEEN(t, "/fn/team/resize", &def, "403");         /* the same answer as for team/nope */
        ASSERT_STREQ_SEEN(t, "/fn/secret/nope", &team, "403");
        ASSERT_STREQ_SEEN(t, "/fn/team/resize", &team, "team/resize");
        ASSERT_STREQ_SEEN(t, "/fn/team/resize", &adm, "team/resize");
        ASSERT_STREQ_SEEN(t, "/fn/default/hi", &def, "default/hi");
        route_table_free(t);

        /* default/team exists too: /fn/team/resize is that one, with path /resize, for a
         * token that may not call team, and team/resize for one that may */
        t = table_of(json_pack("[o, o, o]", tok_json(&def, "invoker", "[\"default\"]"),
                               tok_json(&team, "invoker", "[\"team\"]"), tok_json(&adm, "admin", "[\"*\"]")),
                     true);
        ASSERT_STREQ_SEEN(t, "/fn/team/resize", &def, "default/team");
        ASSERT_STREQ_SEEN(t, "/fn/team/nope", &def, "default/team");
        ASSERT_STREQ_SEEN(t, "/fn/team/resize", &team, "team/resize");
        ASSERT_STREQ_SEEN(t, "/fn/team/nope", &team, "404");
        ASSERT_STREQ_SEEN(t, "/fn/team", &team, "403");
        ASSERT_STREQ_SEEN(t, "/fn/team/resize", &adm, "team/resize");
        ASSERT_EQ_INT(authorize(t, "/fn/team/resize", &def), ACT_OK);
        route_table_free(t);

        /* a controller that sends no tokens: nobody is known */
        t = table_of(NULL, false);
        ASSERT_TRUE(!t->has_tokens);
        ASSERT_EQ_INT(authorize(t, "/fn/hi", &def), ACT_UNAUTHENTICATED);
        route_table_free(t);
        /* an empty list: the same */
        t = table_of(json_array(), false);
        ASSERT_TRUE(t->has_tokens && t->n_tokens == 0);
        ASSERT_EQ_INT(authorize(t, "/fn/hi", &def), ACT_UNAUTHENTICATED);
        route_table_free(t);
}

static void wake_none(RouterInbox *in __attribute__((unused))) {
}

/* The check at the headers and the routing after the body see different
 * tables: the routing checks again, against the table it routes with. */
TEST(activator_auth_router_recheck) {
        Tok def = tok_new();
        Router *r;
        ASSERT_EQ_INT(router_new(&r), 0);
        FnPath p;
        char msg[256];
        ASSERT_EQ_INT(fnpath_parse("/fn/team/resize", &p), 0);
        AuthKey k = key_of(def.header);
        ASSERT_EQ_INT(router_authorize(r, &p, &k, msg, sizeof msg), ACT_UNAVAILABLE);   /* no table yet */

        /* with default/team, /fn/team/resize is default/team (path /resize): allowed */
        router_swap(r, table_of(json_pack("[o]", tok_json(&def, "invoker", "[\"default\"]")), true));
        ASSERT_EQ_INT(router_authorize(r, &p, &k, msg, sizeof msg), ACT_OK);

        /* then default/team goes before the body is in: never team/resize */
        router_swap(r, table_of(json_pack("[o]", tok_json(&def, "invoker", "[\"default\"]")), false));
        RouterInbox inbox = { .wake = wake_none };
        Waiter w = { .inbox = &inbox };
        RouteResult res;
        router_route(r, &p, &k, 1, &w, 10, 1, &res);
        ASSERT_EQ_INT(res.error, ACT_FORBIDDEN);
        ASSERT_TRUE(res.slot == NULL && res.rev == NULL);
        /* without a key (--auth none) it routes to team/resize */
        router_route(r, &p, NULL, 1, &w, 10, 1, &res);
        ASSERT_EQ_INT(res.error, ACT_OK);
        ASSERT_TRUE(res.slot != NULL && strcmp(res.slot->id, "resize-00001-aaaaaa") == 0);
        router_release(r, res.rev, res.slot);
        router_put(r, res.rev);

        /* revoked between the headers and the body: 401 */
        ASSERT_EQ_INT(fnpath_parse("/fn/hi", &p), 0);
        router_route(r, &p, &k, 1, &w, 10, 1, &res);
        ASSERT_EQ_INT(res.error, ACT_OK);
        router_release(r, res.rev, res.slot);
        router_put(r, res.rev);
        router_swap(r, table_of(json_array(), false));
        router_route(r, &p, &k, 1, &w, 10, 1, &res);
        ASSERT_EQ_INT(res.error, ACT_UNAUTHENTICATED);
        router_free(r);
}
