/* controller/api_tokens.c: /v1/tokens (admins only): create a token (shown
 * once; the store keeps its secret's hash), list them (never a hash), and
 * revoke one (it gets 401 from the next request on; from the activators,
 * with their next route table, which a create or revoke makes at once). */
#include "controller/api.h"

#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include "controller/cluster.h"
#include "lib/manifest.h"

static void store_token_clearp(StoreToken *t) {
        store_token_clear(t);
}

static json_t *namespaces_json(const char *list) {
        json_t *a = json_array();
        for (const char *p = list; a && p && *p;) {
                size_t n = strcspn(p, ",");
                if (json_array_append_new(a, json_stringn(p, n)) < 0)
                        a = (json_decref(a), NULL);
                p += n + (p[n] == ',');
        }
        return a;
}

static json_t *render_token(const StoreToken *t) {
        return json_pack("{s:s, s:s, s:o, s:s, s:o, s:b}",
                         "id", t->id,
                         "role", t->role,
                         "namespaces", namespaces_json(t->namespaces),
                         "description", t->description ? t->description : "",
                         "createdAt", api_time_json(t->created_ms),
                         "revoked", t->revoked_ms != 0);
}

void api_tokens_list(Api *api, HttpRequest *req _unused_, HttpResponse *resp) {
        StoreToken *tokens = NULL;
        size_t n = 0;
        int r = store_token_list(api->store, &tokens, &n);
        if (r < 0) {
                api_store_error(api, resp, r, "tokens");
                return;
        }
        json_t *items = json_array();
        for (size_t i = 0; items && i < n; i++)
                if (json_array_append_new(items, render_token(&tokens[i])) < 0)
                        items = (json_decref(items), NULL);
        store_token_array_free(tokens, n);
        http_reply(resp, 200, items ? json_pack("{s:o, s:n}", "items", items, "next") : NULL);
}

/* "a,b" from ["a", "b"]: DNS-1123 names or "*", no duplicates, at most
 * API_TOKEN_NAMESPACES_MAX. Admins have every namespace: "*" only. */
static int token_namespaces(const json_t *list, TokenRole role, char *buf, size_t size, HttpResponse *resp) {
        size_t i, off = 0;
        json_t *v;
        _cleanup_json_ json_t *every = NULL;
        if (!list && role == TOKEN_ROLE_ADMIN)
                list = every = json_pack("[s]", "*");
        if (!json_is_array(list) || json_array_size(list) == 0 || json_array_size(list) > API_TOKEN_NAMESPACES_MAX) {
                http_error(resp, 400, "bad_request", "namespaces", "namespaces: expected a list of 1 to %d names",
                           API_TOKEN_NAMESPACES_MAX);
                return -1;
        }
        json_array_foreach(list, i, v) {
                const char *ns = json_string_value(v);
                bool ok = ns && (strcmp(ns, "*") == 0 || manifest_name_valid(ns)) &&
                          (role != TOKEN_ROLE_ADMIN || strcmp(ns, "*") == 0);
                for (size_t k = 0; ok && k < i; k++)
                        ok = strcmp(ns, json_string_value(json_array_get(list, k))) != 0;
                if (!ok) {
                        char field[48];
                        snprintf(field, sizeof field, "namespaces[%zu]", i);
                        http_error(resp, 400, "bad_request", field, "%s: expected a DNS-1123 label or \"*\", once%s",
                                   field, role == TOKEN_ROLE_ADMIN ? " (an admin token has \"*\")" : "");
                        return -1;
                }
                off += (size_t) snprintf(buf + off, size - off, "%s%s", i ? "," : "", ns);
        }
        return 0;
}

static int token_description(const json_t *v, const char **ret, HttpResponse *resp) {
        if (!v || json_is_null(v)) {
                *ret = "";
                return 0;
        }
        const char *s = json_string_value(v);
        bool ok = s && json_string_length(v) == strlen(s) && strlen(s) <= API_DESCRIPTION_MAX;
        for (const char *p = s; ok && *p; p++)
                ok = (unsigned char) *p >= 0x20 && *p != 0x7f;
        if (!ok) {
                http_error(resp, 400, "bad_request", "description",
                           "description: expected text of at most %d printable bytes", API_DESCRIPTION_MAX);
                return -1;
        }
        *ret = s;
        return 0;
}

static int64_t now_ms(void) {
        struct timeval tv;
        gettimeofday(&tv, NULL);
        return (int64_t) tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

void api_token_create(Api *api, HttpRequest *req, HttpResponse *resp) {
        _cleanup_json_ json_t *body = NULL;
        char namespaces[API_TOKEN_NAMESPACES_MAX * (MANIFEST_NAME_MAX + 1) + 1];
        char tok[TOKEN_STRING_MAX], id[TOKEN_ID_LEN + 1], hash[65];
        const char *description;
        TokenRole role;
        if (api_body_object(req, &body, resp) < 0)
                return;
        if (token_role_from_string(json_string_value(json_object_get(body, "role")), &role) < 0) {
                http_error(resp, 400, "bad_request", "role", "role: expected admin, developer or invoker");
                return;
        }
        if (token_namespaces(json_object_get(body, "namespaces"), role, namespaces, sizeof namespaces, resp) < 0 ||
            token_description(json_object_get(body, "description"), &description, resp) < 0)
                return;
        int r = token_generate(tok, id, hash);
        StoreToken t = {
                .id = id, .secret_hash = hash, .role = (char *) token_role_to_string(role),
                .namespaces = namespaces, .description = (char *) description, .created_ms = now_ms(),
        };
        if (r == 0)
                r = store_token_create(api->store, &t);
        if (r < 0) {
                api_store_error(api, resp, r == -EEXIST ? -EIO : r, "token");
                return;
        }
        cluster_tokens_changed(api->cluster);
        json_t *out = render_token(&t);
        if (out && json_object_set_new(out, "token", json_string(tok)) < 0)
                out = (json_decref(out), NULL);
        explicit_bzero(tok, sizeof tok);
        http_reply(resp, 201, out);
}

void api_token_revoke(Api *api, HttpRequest *req, HttpResponse *resp) {
        const char *id = req->n_params > 0 ? req->params[0] : "";
        _cleanup_(store_token_clearp) StoreToken t = {};
        int r = strlen(id) == TOKEN_ID_LEN && strspn(id, "0123456789abcdef") == TOKEN_ID_LEN ?
                store_token_get(api->store, id, &t) : -ENOENT;
        if (r == 0)
                r = store_token_revoke(api->store, id);
        if (r < 0) {
                api_store_error(api, resp, r, "token");
                return;
        }
        cluster_tokens_changed(api->cluster);
        http_reply(resp, 200, json_pack("{s:s}", "revoked", id));
}
