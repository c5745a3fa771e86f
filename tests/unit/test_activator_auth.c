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
        char msg[256];
        /* "revoked" is not in the table: the controller sends live tokens only */
        tokens_load(json_pack("[o, o, o]", tok_json(&inv, "invoker", "[\"default\", \"team\"]"),
                              tok_json(&dev, "developer", "[\"*\"]"), tok_json(&adm, "admin", "[\"*\"]")),
                    &v, &n);
        const char *def[] = { "default" }, *team[] = { "team" }, *other[] = { "other" };
        const char *other_or_def[] = { "other", "default" };

        AuthKey k = key_of(inv.header);
        ASSERT_EQ_INT(auth_check(v, n, &k, def, 1, msg, sizeof msg), ACT_OK);
        ASSERT_EQ_INT(auth_check(v, n, &k, team, 1, msg, sizeof msg), ACT_OK);
        ASSERT_EQ_INT(auth_check(v, n, &k, other, 1, msg, sizeof msg), ACT_FORBIDDEN);
        ASSERT_TRUE(strstr(msg, "namespace other") && strstr(msg, inv.id));
        ASSERT_EQ_INT(auth_check(v, n, &k, other_or_def, 2, msg, sizeof msg), ACT_OK);
        ASSERT_EQ_INT(act_error_status(ACT_FORBIDDEN), 403);
        ASSERT_EQ_STR(act_error_type(ACT_FORBIDDEN), "forbidden");

        /* the right id with a wrong secret */
        Tok forged = inv;
        char *secret = forged.token + 4 + TOKEN_ID_LEN + 1;
        secret[0] = secret[0] == 'A' ? 'B' : 'A';
        snprintf(forged.header, sizeof forged.header, "Bearer %s", forged.token);
        k = key_of(forged.header);
        ASSERT_EQ_STR(k.id, inv.id);
        ASSERT_EQ_INT(auth_check(v, n, &k, def, 1, msg, sizeof msg), ACT_UNAUTHENTICATED);
        ASSERT_EQ_INT(act_error_status(ACT_UNAUTHENTICATED), 401);
        ASSERT_EQ_STR(act_error_type(ACT_UNAUTHENTICATED), "unauthenticated");

        /* revoked: gone from the table */
        k = key_of(revoked.header);
        ASSERT_EQ_INT(auth_check(v, n, &k, def, 1, msg, sizeof msg), ACT_UNAUTHENTICATED);
        ASSERT_EQ_INT(auth_check(NULL, 0, &k, def, 1, msg, sizeof msg), ACT_UNAUTHENTICATED);

        /* "*" and admins: everywhere */
        k = key_of(dev.header);
        ASSERT_EQ_INT(auth_check(v, n, &k, other, 1, msg, sizeof msg), ACT_OK);
        k = key_of(adm.header);
        ASSERT_EQ_INT(auth_check(v, n, &k, other, 1, msg, sizeof msg), ACT_OK);
        auth_tokens_free(v, n);

        /* an admin is an admin whatever its list says */
        tokens_load(json_pack("[o]", tok_json(&adm, "admin", "[\"default\"]")), &v, &n);
        ASSERT_EQ_INT(auth_check(v, n, &k, other, 1, msg, sizeof msg), ACT_OK);
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

static RouteTable *table_with(json_t *tokens) {
        json_t *doc = json_loads(
                "{\"version\": 3, \"functions\": ["
                " {\"namespace\": \"team\", \"name\": \"resize\", \"traffic\": [{\"revision\": \"resize-00001\", \"percent\": 100}]},"
                " {\"namespace\": \"default\", \"name\": \"hi\", \"traffic\": [{\"revision\": \"hi-00001\", \"percent\": 100}]}],"
                " \"revisions\": {"
                "  \"team/resize-00001\": {\"mode\": \"fresh\", \"instances\": [{\"id\": \"resize-00001-aaaaaa\", \"invoke\": \"unix:/s\"}]},"
                "  \"default/hi-00001\": {\"mode\": \"fresh\", \"instances\": [{\"id\": \"hi-00001-aaaaaa\", \"invoke\": \"unix:/s\"}]}}}",
                0, NULL);
        ASSERT_TRUE(doc != NULL);
        if (tokens)
                json_object_set_new(doc, "tokens", tokens);
        RouteTable *t = NULL;
        char why[256] = "";
        if (route_table_parse(doc, &t, why, sizeof why) < 0)
                FAIL_AT("route_table_parse: %s", why);
        json_decref(doc);
        return t;
}

static ActError authorize(const RouteTable *t, const char *uri, const Tok *who) {
        FnPath p;
        char msg[256];
        ASSERT_EQ_INT(fnpath_parse(uri, &p), 0);
        AuthKey k = key_of(who->header);
        return route_authorize(t, &p, &k, msg, sizeof msg);
}

TEST(activator_auth_route_namespaces) {
        Tok def = tok_new(), team = tok_new(), none = tok_new();
        RouteTable *t = table_with(json_pack("[o, o]", tok_json(&def, "invoker", "[\"default\"]"),
                                             tok_json(&team, "invoker", "[\"team\"]")));
        ASSERT_TRUE(t->has_tokens && t->n_tokens == 2);
        ASSERT_EQ_INT(authorize(t, "/fn/hi", &def), ACT_OK);
        ASSERT_EQ_INT(authorize(t, "/fn/default/hi", &def), ACT_OK);
        ASSERT_EQ_INT(authorize(t, "/fn/team/resize", &def), ACT_FORBIDDEN);
        ASSERT_EQ_INT(authorize(t, "/fn/team/resize/x.png", &team), ACT_OK);
        ASSERT_EQ_INT(authorize(t, "/fn/hi", &team), ACT_FORBIDDEN);
        ASSERT_EQ_INT(authorize(t, "/fn/hi", &none), ACT_UNAUTHENTICATED);
        /* unknown functions: allowed (then 404) when the token could call a namespace the URL may name */
        ASSERT_EQ_INT(authorize(t, "/fn/nope", &def), ACT_OK);
        ASSERT_EQ_INT(authorize(t, "/fn/nope", &team), ACT_FORBIDDEN);
        ASSERT_EQ_INT(authorize(t, "/fn/team/nope", &team), ACT_OK);
        ASSERT_EQ_INT(authorize(t, "/fn/team/nope", &def), ACT_OK);      /* default/team with path /nope */
        ASSERT_EQ_INT(authorize(t, "/fn/secret/nope", &team), ACT_FORBIDDEN);
        route_table_free(t);

        /* a controller that sends no tokens: nobody is known */
        t = table_with(NULL);
        ASSERT_TRUE(!t->has_tokens);
        ASSERT_EQ_INT(authorize(t, "/fn/hi", &def), ACT_UNAUTHENTICATED);
        route_table_free(t);
        /* an empty list: the same */
        t = table_with(json_array());
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

        /* without team/resize, /fn/team/resize is default/team: allowed */
        json_t *doc = json_loads("{\"version\": 1, \"functions\": [], \"revisions\": {}}", 0, NULL);
        json_object_set_new(doc, "tokens", json_pack("[o]", tok_json(&def, "invoker", "[\"default\"]")));
        RouteTable *t1 = NULL;
        char why[256];
        ASSERT_EQ_INT(route_table_parse(doc, &t1, why, sizeof why), 0);
        json_decref(doc);
        router_swap(r, t1);
        ASSERT_EQ_INT(router_authorize(r, &p, &k, msg, sizeof msg), ACT_OK);

        /* then team/resize appears before the body is in */
        router_swap(r, table_with(json_pack("[o]", tok_json(&def, "invoker", "[\"default\"]"))));
        RouterInbox inbox = { .wake = wake_none };
        Waiter w = { .inbox = &inbox };
        RouteResult res;
        router_route(r, &p, &k, 1, &w, 10, 1, &res);
        ASSERT_EQ_INT(res.error, ACT_FORBIDDEN);
        ASSERT_TRUE(res.slot == NULL && res.rev == NULL);
        /* without a key (--auth none) it routes */
        router_route(r, &p, NULL, 1, &w, 10, 1, &res);
        ASSERT_EQ_INT(res.error, ACT_OK);
        ASSERT_TRUE(res.slot != NULL);
        router_release(r, res.rev, res.slot);
        router_put(r, res.rev);

        /* revoked between the headers and the body: 401 */
        ASSERT_EQ_INT(fnpath_parse("/fn/hi", &p), 0);
        router_route(r, &p, &k, 1, &w, 10, 1, &res);
        ASSERT_EQ_INT(res.error, ACT_OK);
        router_release(r, res.rev, res.slot);
        router_put(r, res.rev);
        router_swap(r, table_with(json_array()));
        router_route(r, &p, &k, 1, &w, 10, 1, &res);
        ASSERT_EQ_INT(res.error, ACT_UNAUTHENTICATED);
        router_free(r);
}
