/* controller/api_traffic.c: a function's traffic split. PUT checks every
 * entry (one of revision or latestRevision, a percent, an optional unique
 * DNS-1123 tag), that the revisions exist and that the percents sum to 100,
 * and stores the split in its canonical form. */
#include "controller/api.h"

#include <stdio.h>
#include <string.h>

#include "controller/cluster.h"
#include "lib/manifest.h"

static void store_function_clearp(StoreFunction *f) {
        store_function_clear(f);
}

static void store_revision_clearp(StoreRevision *r) {
        store_revision_clear(r);
}

#define TRAFFIC_ERROR(resp, i, key, ...) do {                                   \
                char _f[64];                                                    \
                snprintf(_f, sizeof _f, "traffic[%zu]%s%s", (i), *(key) ? "." : "", (key)); \
                http_error((resp), 422, "invalid_traffic", _f, __VA_ARGS__);   \
        } while (0)

static int check_keys(const json_t *e, size_t i, HttpResponse *resp) {
        static const char *const known[] = { "revision", "latestRevision", "percent", "tag" };
        const char *key;
        json_t *v;
        json_object_foreach((json_t *) e, key, v) {
                bool ok = false;
                for (size_t k = 0; k < ELEMENTSOF(known); k++)
                        ok = ok || strcmp(key, known[k]) == 0;
                if (!ok) {
                        TRAFFIC_ERROR(resp, i, "", "unknown field %.64s", key);
                        return -1;
                }
        }
        return 0;
}

/* The target of entry i: a revision that exists, or latestRevision: true. */
static int check_target(Api *api, const StoreFunction *f, const json_t *e, size_t i, HttpResponse *resp) {
        const json_t *rev = json_object_get(e, "revision"), *latest = json_object_get(e, "latestRevision");
        if (latest && !json_is_boolean(latest)) {
                TRAFFIC_ERROR(resp, i, "latestRevision", "expected true or false");
                return -1;
        }
        if (json_is_true(latest) == (rev != NULL)) {
                TRAFFIC_ERROR(resp, i, "revision", "expected either a revision or latestRevision: true");
                return -1;
        }
        if (!rev)
                return 0;
        int64_t n = api_revision_number(f->name, json_string_value(rev));
        _cleanup_(store_revision_clearp) StoreRevision r = {};
        int k = n > 0 ? store_revision_get(api->store, f->namespace_, f->name, n, &r) : -ENOENT;
        if (k == -ENOENT) {
                TRAFFIC_ERROR(resp, i, "revision", "no revision %.96s of %s", json_is_string(rev) ?
                              json_string_value(rev) : "(not a string)", f->name);
                return -1;
        }
        if (k < 0)
                api_store_error(api, resp, k, "revision");
        return k;
}

/* Entry i: its percent added to *sum, its tag checked against those before. */
static int check_entry(Api *api, const StoreFunction *f, const json_t *list, size_t i, unsigned *sum,
                       HttpResponse *resp) {
        const json_t *e = json_array_get(list, i);
        if (!json_is_object(e)) {
                TRAFFIC_ERROR(resp, i, "", "expected an object");
                return -1;
        }
        if (check_keys(e, i, resp) < 0 || check_target(api, f, e, i, resp) < 0)
                return -1;
        const json_t *pct = json_object_get(e, "percent"), *tag = json_object_get(e, "tag");
        if (!json_is_integer(pct) || json_integer_value(pct) < 0 || json_integer_value(pct) > 100) {
                TRAFFIC_ERROR(resp, i, "percent", "expected an integer from 0 to 100");
                return -1;
        }
        *sum += (unsigned) json_integer_value(pct);
        if (tag && (!json_is_string(tag) || !manifest_name_valid(json_string_value(tag)))) {
                TRAFFIC_ERROR(resp, i, "tag", "expected a DNS-1123 label such as canary");
                return -1;
        }
        if (tag && strncmp(json_string_value(tag), MANIFEST_RESERVED_TAG_PREFIX,
                           strlen(MANIFEST_RESERVED_TAG_PREFIX)) == 0) {
                TRAFFIC_ERROR(resp, i, "tag", "tags starting with " MANIFEST_RESERVED_TAG_PREFIX
                              " are fnbox's own (replays)");
                return -1;
        }
        for (size_t k = 0; tag && k < i; k++) {
                const json_t *other = json_object_get(json_array_get(list, k), "tag");
                if (other && json_equal((json_t *) tag, (json_t *) other)) {
                        TRAFFIC_ERROR(resp, i, "tag", "tag %s is used twice", json_string_value(tag));
                        return -1;
                }
        }
        return 0;
}

static int check_traffic(Api *api, const StoreFunction *f, const json_t *list, HttpResponse *resp) {
        unsigned sum = 0;
        if (!json_is_array(list) || json_array_size(list) == 0 || json_array_size(list) > MANIFEST_TRAFFIC_MAX) {
                http_error(resp, 422, "invalid_traffic", "traffic", "traffic: expected a list of 1 to %d entries",
                           MANIFEST_TRAFFIC_MAX);
                return -1;
        }
        for (size_t i = 0; i < json_array_size(list); i++)
                if (check_entry(api, f, list, i, &sum, resp) < 0)
                        return -1;
        if (sum != 100) {
                http_error(resp, 422, "invalid_traffic", "traffic", "traffic: the percents sum to %u, not 100", sum);
                return -1;
        }
        return 0;
}

static int traffic_params(Api *api, HttpRequest *req, TokenRole role, StoreFunction *f, HttpResponse *resp) {
        const char *ns, *name;
        if (api_namespace(req, role, false, &ns, resp) < 0 || api_name_param(req, 0, "function", &name, resp) < 0)
                return -1;
        int r = store_function_get(api->store, ns, name, f);
        if (r < 0)
                api_store_error(api, resp, r, name);
        return r;
}

static json_t *traffic_answer(const StoreFunction *f) {
        return json_pack("{s:o, s:I}", "traffic", render_traffic(f, f->traffic_json),
                         "resourceVersion", (json_int_t) f->resource_version);
}

void api_traffic_get(Api *api, HttpRequest *req, HttpResponse *resp) {
        _cleanup_(store_function_clearp) StoreFunction f = {};
        if (traffic_params(api, req, TOKEN_ROLE_INVOKER, &f, resp) < 0)
                return;
        http_reply(resp, 200, traffic_answer(&f));
}

/* The stored form: only the known keys, latestRevision only when true. */
static json_t *traffic_canonical(const json_t *list) {
        json_t *out = json_array();
        size_t i;
        json_t *e;
        json_array_foreach(list, i, e) {
                const json_t *tag = json_object_get(e, "tag");
                json_t *c = traffic_entry_json(json_string_value(json_object_get(e, "revision")),
                                               (unsigned) json_integer_value(json_object_get(e, "percent")),
                                               tag ? json_string_value(tag) : NULL);
                if (!out || json_array_append_new(out, c) < 0)
                        return (json_decref(out), NULL);
        }
        return out;
}

void api_traffic_put(Api *api, HttpRequest *req, HttpResponse *resp) {
        _cleanup_(store_function_clearp) StoreFunction f = {};
        _cleanup_json_ json_t *body = NULL, *list = NULL;
        int64_t version;
        if (traffic_params(api, req, TOKEN_ROLE_DEVELOPER, &f, resp) < 0 ||
            api_body_object(req, &body, resp) < 0 ||
            api_resource_version_json(json_object_get(body, "resourceVersion"), &version, resp) < 0 ||
            check_traffic(api, &f, json_object_get(body, "traffic"), resp) < 0)
                return;
        list = traffic_canonical(json_object_get(body, "traffic"));
        _cleanup_free_ char *text = list ? json_dumps(list, JSON_COMPACT) : NULL;
        int64_t new_version;
        int r = text ? store_traffic_set(api->store, f.namespace_, f.name, version, text, &new_version) : -ENOMEM;
        _cleanup_(store_function_clearp) StoreFunction now = {};
        if (r == 0)
                r = store_function_get(api->store, f.namespace_, f.name, &now);
        if (r < 0) {
                api_store_error(api, resp, r, f.name);
                return;
        }
        if (api->cluster)
                cluster_function_changed(api->cluster, now.namespace_, now.name);
        http_reply(resp, 200, traffic_answer(&now));
}
