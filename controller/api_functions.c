/* controller/api_functions.c: reading and deleting functions and their
 * revisions, with pagination. Listing every namespace a token may see
 * (namespace=*) walks its namespaces in order, so one cursor "NS/NAME"
 * serves both kinds of list. */
#include "controller/api.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "controller/cluster.h"
#include "lib/manifest.h"

/* ---- lists of functions ------------------------------------------------------ */

/* A cursor is "NS/NAME", as the store makes them. Returns its namespace part
 * in ns (NULL cursor: ""), or -1 when malformed. */
static int cursor_namespace(const char *after, char ns[MANIFEST_NAME_MAX + 1]) {
        ns[0] = 0;
        if (!after)
                return 0;
        const char *slash = strchr(after, '/');
        if (!slash || (size_t) (slash - after) > MANIFEST_NAME_MAX || !manifest_name_valid(slash + 1))
                return -1;
        memcpy(ns, after, (size_t) (slash - after));
        ns[slash - after] = 0;
        return manifest_name_valid(ns) ? 0 : -1;
}

static int append_functions(json_t *items, StoreFunction *fs, size_t n) {
        int r = 0;
        for (size_t i = 0; i < n && r == 0; i++)
                r = json_array_append_new(items, render_function(&fs[i]));
        store_function_array_free(fs, n);
        return r < 0 ? -ENOMEM : 0;
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* The token's namespaces, sorted and without duplicates (into one buffer). */
static size_t split_namespaces(char *list, char **out, size_t max) {
        size_t n = 0;
        for (char *save = NULL, *t = strtok_r(list, ",", &save); t && n < max; t = strtok_r(NULL, ",", &save))
                out[n++] = t;
        qsort(out, n, sizeof *out, cmp_str);
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
                if (k == 0 || strcmp(out[k - 1], out[i]) != 0)
                        out[k++] = out[i];
        return k;
}

/* 1 when any of the namespaces nss has a function (so there is a next page). */
static int namespaces_have_functions(Api *api, char **nss, size_t n) {
        for (size_t i = 0; i < n; i++) {
                StoreFunction *fs = NULL;
                size_t k = 0;
                char *next = NULL;
                int r = store_function_list(api->store, nss[i], NULL, 1, &fs, &k, &next);
                free(next);
                store_function_array_free(fs, k);
                if (r < 0 || k > 0)
                        return r < 0 ? r : 1;
        }
        return 0;
}

/* The cursor "NS/NAME" of the last item of a page. */
static int cursor_of_last(json_t *items, char **ret) {
        json_t *last = json_array_get(items, json_array_size(items) - 1);
        const char *ns = json_string_value(json_object_get(last, "namespace"));
        const char *name = json_string_value(json_object_get(last, "name"));
        if (!ns || !name)
                return -ENOMEM;
        size_t len = strlen(ns) + strlen(name) + 2;
        char *c = malloc(len);
        if (!c)
                return -ENOMEM;
        snprintf(c, len, "%s/%s", ns, name);
        *ret = c;
        return 0;
}

/* Fill items from each namespace in turn, from the cursor on. */
static int list_namespaces(Api *api, char **nss, size_t n_ns, const char *after, size_t limit,
                           json_t *items, char **ret_next) {
        char cur_ns[MANIFEST_NAME_MAX + 1];
        cursor_namespace(after, cur_ns);
        for (size_t i = 0; i < n_ns; i++) {
                int c = strcmp(nss[i], cur_ns);
                if (after && c < 0)
                        continue;
                StoreFunction *fs = NULL;
                size_t n = 0;
                char *next = NULL;
                int r = store_function_list(api->store, nss[i], after && c == 0 ? after : NULL,
                                            limit - json_array_size(items), &fs, &n, &next);
                if (r < 0 || append_functions(items, fs, n) < 0) {
                        free(next);
                        return r < 0 ? r : -ENOMEM;
                }
                if (json_array_size(items) < limit) {
                        free(next);
                        continue;
                }
                if (next) {
                        *ret_next = next;
                        return 0;
                }
                r = namespaces_have_functions(api, nss + i + 1, n_ns - i - 1);
                if (r <= 0) {
                        *ret_next = NULL;
                        return r;
                }
                return cursor_of_last(items, ret_next);
        }
        *ret_next = NULL;
        return 0;
}

static int list_functions(Api *api, HttpRequest *req, const char *ns, const char *after, size_t limit,
                          json_t *items, char **ret_next) {
        const AuthPrincipal *p = &req->principal;
        bool all = strcmp(ns, "*") == 0;
        if (!all || p->role == TOKEN_ROLE_ADMIN || token_namespace_allowed(p->namespaces, "*")) {
                StoreFunction *fs = NULL;
                size_t n = 0;
                int r = store_function_list(api->store, all ? NULL : ns, after, limit, &fs, &n, ret_next);
                if (r < 0)
                        return r;
                return append_functions(items, fs, n);
        }
        _cleanup_free_ char *copy = strdup(p->namespaces);
        char *nss[API_TOKEN_NAMESPACES_MAX];
        if (!copy)
                return -ENOMEM;
        size_t n_ns = split_namespaces(copy, nss, API_TOKEN_NAMESPACES_MAX);
        return list_namespaces(api, nss, n_ns, after, limit, items, ret_next);
}

void api_functions_list(Api *api, HttpRequest *req, HttpResponse *resp) {
        const char *ns, *after = http_query(req, "after");
        size_t limit;
        char cur_ns[MANIFEST_NAME_MAX + 1];
        if (api_namespace(req, TOKEN_ROLE_INVOKER, true, &ns, resp) < 0 || api_limit(req, &limit, resp) < 0)
                return;
        if (after && !*after)
                after = NULL;
        if (cursor_namespace(after, cur_ns) < 0 || (after && strcmp(ns, "*") != 0 && strcmp(ns, cur_ns) != 0)) {
                http_error(resp, 400, "bad_request", "after", "after: not a cursor of this list");
                return;
        }
        _cleanup_json_ json_t *items = json_array();
        _cleanup_free_ char *next = NULL;
        int r = items ? list_functions(api, req, ns, after, limit, items, &next) : -ENOMEM;
        if (r < 0) {
                api_store_error(api, resp, r, "functions");
                return;
        }
        http_reply(resp, 200, json_pack("{s:O, s:s?}", "items", items, "next", next));
}

/* ---- one function ---------------------------------------------------------------- */

/* The namespace and function name of a /v1/functions/NAME... path, checked
 * for min_role. */
static int function_params(HttpRequest *req, TokenRole min_role, const char **ret_ns, const char **ret_name,
                           HttpResponse *resp) {
        if (api_namespace(req, min_role, false, ret_ns, resp) < 0)
                return -1;
        return api_name_param(req, 0, "function", ret_name, resp);
}

static void store_function_clearp(StoreFunction *f) {
        store_function_clear(f);
}

void api_function_get(Api *api, HttpRequest *req, HttpResponse *resp) {
        const char *ns, *name;
        if (function_params(req, TOKEN_ROLE_INVOKER, &ns, &name, resp) < 0)
                return;
        _cleanup_(store_function_clearp) StoreFunction f = {};
        int r = store_function_get(api->store, ns, name, &f);
        if (r < 0) {
                api_store_error(api, resp, r, name);
                return;
        }
        json_t *out = render_function(&f);
        json_t *status = api->cluster ? cluster_function_status(api->cluster, ns, name) : NULL;
        if (out && json_object_set_new(out, "status", status ? status : json_null()) < 0)
                out = (json_decref(out), NULL);
        http_reply(resp, 200, out);
}

/* The last stderr lines of the function's instances (?limit=, default and
 * most CLUSTER_LOG_LINES), oldest first. */
void api_function_logs(Api *api, HttpRequest *req, HttpResponse *resp) {
        const char *ns, *name, *l = http_query(req, "limit");
        if (function_params(req, TOKEN_ROLE_DEVELOPER, &ns, &name, resp) < 0)
                return;
        long limit = CLUSTER_LOG_LINES;
        if (l && (strspn(l, "0123456789") != strlen(l) || !*l || strlen(l) > 5 || (limit = atol(l)) < 1 ||
                  limit > CLUSTER_LOG_LINES)) {
                http_error(resp, 400, "bad_request", "limit", "limit: expected 1 to %d", CLUSTER_LOG_LINES);
                return;
        }
        _cleanup_(store_function_clearp) StoreFunction f = {};
        int r = store_function_get(api->store, ns, name, &f);
        if (r < 0) {
                api_store_error(api, resp, r, name);
                return;
        }
        http_reply(resp, 200, cluster_function_logs(api->cluster, ns, name, (size_t) limit));
}

void api_function_delete(Api *api, HttpRequest *req, HttpResponse *resp) {
        const char *ns, *name;
        int64_t version;
        if (function_params(req, TOKEN_ROLE_DEVELOPER, &ns, &name, resp) < 0 ||
            api_resource_version_query(req, &version, resp) < 0)
                return;
        int r = store_function_delete(api->store, ns, name, version);
        if (r < 0) {
                api_store_error(api, resp, r, name);
                return;
        }
        if (api->cluster)
                cluster_function_changed(api->cluster, ns, name);      /* its instances drain */
        http_reply(resp, 200, json_pack("{s:s}", "deleted", name));
}

/* ---- revisions ---------------------------------------------------------------------- */

/* 404 unless the function exists (an empty list would hide a typo). */
static int function_exists(Api *api, const char *ns, const char *name, HttpResponse *resp) {
        _cleanup_(store_function_clearp) StoreFunction f = {};
        int r = store_function_get(api->store, ns, name, &f);
        if (r < 0)
                api_store_error(api, resp, r, name);
        return r;
}

static void store_revision_clearp(StoreRevision *r) {
        store_revision_clear(r);
}

void api_revisions_list(Api *api, HttpRequest *req, HttpResponse *resp) {
        const char *ns, *name, *after = http_query(req, "after");
        size_t limit;
        if (function_params(req, TOKEN_ROLE_INVOKER, &ns, &name, resp) < 0 || api_limit(req, &limit, resp) < 0)
                return;
        int64_t before = after && *after ? api_revision_number(name, after) : 0;
        if (before < 0) {
                http_error(resp, 400, "bad_request", "after", "after: expected a revision of %s", name);
                return;
        }
        if (function_exists(api, ns, name, resp) < 0)
                return;
        StoreRevision *revs = NULL;
        size_t n = 0;
        int r = store_revision_list(api->store, ns, name, before, limit, &revs, &n);
        if (r < 0) {
                api_store_error(api, resp, r, name);
                return;
        }
        /* revisions are numbered 1..latest without gaps: a full page that
         * did not reach number 1 has a next one */
        char next[API_REVISION_NAME_MAX];
        bool more = n == limit && revs[n - 1].number > 1;
        if (more)
                api_revision_name(name, revs[n - 1].number, next, sizeof next);
        json_t *items = json_array();
        for (size_t i = 0; items && i < n; i++)
                if (json_array_append_new(items, render_revision(&revs[i])) < 0)
                        items = (json_decref(items), NULL);
        store_revision_array_free(revs, n);
        http_reply(resp, 200, items ? json_pack("{s:o, s:s?}", "items", items, "next", more ? next : NULL) : NULL);
}

void api_revision_get(Api *api, HttpRequest *req, HttpResponse *resp) {
        const char *ns, *name;
        if (function_params(req, TOKEN_ROLE_INVOKER, &ns, &name, resp) < 0)
                return;
        const char *rev = req->n_params > 1 ? req->params[1] : NULL;
        int64_t number = api_revision_number(name, rev);
        if (number < 0) {
                http_error(resp, 404, "not_found", NULL, "no revision %s of %s", rev ? rev : "", name);
                return;
        }
        _cleanup_(store_revision_clearp) StoreRevision r = {};
        int k = store_revision_get(api->store, ns, name, number, &r);
        if (k < 0) {
                api_store_error(api, resp, k, rev);
                return;
        }
        http_reply(resp, 200, render_revision(&r));
}
