/* controller/api_deploy.c: POST /v1/functions. The manifest is parsed again
 * here (one document), its namespace checked against the token, its code
 * digest against the stored artifacts, and it becomes a canonical spec, a
 * traffic split and a revision spec whose digest decides whether a new
 * revision is made; store_deploy does the rest in one transaction. */
#include "controller/api.h"

#include <stdio.h>
#include <string.h>

#include "controller/cluster.h"
#include "lib/artifact.h"
#include "lib/manifest.h"

typedef struct DeployBody {
        const char *manifest;
        size_t manifest_len;
        const char *source;
        const char *code_digest;
        int64_t expected_version;
} DeployBody;

typedef struct DeployPlan {
        char *spec_json;
        char *traffic_json;
        char *revision_json;
        char spec_digest[65];
} DeployPlan;

static void deploy_plan_clear(DeployPlan *p) {
        free(p->spec_json);
        free(p->traffic_json);
        free(p->revision_json);
}

static void store_function_clearp(StoreFunction *f) {
        store_function_clear(f);
}

static void store_revision_clearp(StoreRevision *r) {
        store_revision_clear(r);
}

static int deploy_read_body(const json_t *body, DeployBody *d, HttpResponse *resp) {
        const json_t *m = json_object_get(body, "manifest"), *src = json_object_get(body, "source");
        const json_t *digest = json_object_get(body, "codeDigest");
        if (!json_is_string(m)) {
                http_error(resp, 400, "bad_request", "manifest", "manifest: expected the manifest's YAML text");
                return -1;
        }
        if (src && !json_is_null(src) && !json_is_string(src)) {
                http_error(resp, 400, "bad_request", "source", "source: expected a file name");
                return -1;
        }
        if (!json_is_string(digest) || !artifact_digest_valid(json_string_value(digest))) {
                http_error(resp, 400, "bad_request", "codeDigest",
                           "codeDigest: expected sha256: and 64 lowercase hex digits");
                return -1;
        }
        d->manifest = json_string_value(m);
        d->manifest_len = json_string_length(m);
        d->source = json_is_string(src) && json_string_length(src) > 0 ? json_string_value(src) : "manifest";
        d->code_digest = json_string_value(digest);
        return api_resource_version_json(json_object_get(body, "resourceVersion"), &d->expected_version, resp);
}

static int deploy_parse(const DeployBody *d, ManifestList **ret, HttpResponse *resp) {
        ManifestError err = {};
        char msg[512];
        int r = manifest_parse(d->manifest, d->manifest_len, d->source, ret, &err);
        if (r == -ENOMEM) {
                http_error(resp, 500, "internal", NULL, "out of memory");
                return -1;
        }
        if (r < 0) {
                manifest_error_format(&err, msg, sizeof msg);
                http_error(resp, 422, "invalid_manifest", err.field, "%s", msg);
                return -1;
        }
        if ((*ret)->n != 1) {
                http_error(resp, 400, "bad_request", "manifest",
                           "manifest: expected one YAML document, got %zu (deploy them one by one)", (*ret)->n);
                return -1;
        }
        return 0;
}

/* metadata.namespace when the manifest says it, else ?namespace=, else
 * "default"; the token must be a developer there. */
static int deploy_namespace(HttpRequest *req, const Manifest *m, const char **ret, HttpResponse *resp) {
        if (!m->namespace_set)
                return api_namespace(req, TOKEN_ROLE_DEVELOPER, false, ret, resp);
        if (!auth_allows(&req->principal, TOKEN_ROLE_DEVELOPER, m->namespace_)) {
                http_error(resp, 403, "forbidden", "metadata.namespace",
                           "this token may not make changes in namespace %s", m->namespace_);
                return -1;
        }
        *ret = m->namespace_;
        return 0;
}

/* The traffic split the manifest asks for (100% to the latest by default). */
static json_t *deploy_traffic(const Manifest *m) {
        json_t *list = json_array();
        if (list && m->n_traffic == 0)
                json_array_append_new(list, traffic_entry_json(NULL, 100, NULL));
        for (size_t i = 0; list && i < m->n_traffic; i++) {
                const ManifestTraffic *t = &m->traffic[i];
                if (json_array_append_new(list, traffic_entry_json(t->latest ? NULL : t->revision,
                                                                   t->percent, t->tag)) < 0)
                        list = (json_decref(list), NULL);
        }
        return list;
}

/* The revision spec (no traffic) with the code digest, and its digest:
 * sha256 of its sorted compact JSON followed by the code digest. */
static int deploy_revision(const Manifest *m, const char *code_digest, DeployPlan *p) {
        _cleanup_json_ json_t *rev = manifest_spec_to_json(m, false);
        if (!rev || json_object_set_new(rev, "codeDigest", json_string(code_digest)) < 0)
                return -ENOMEM;
        _cleanup_free_ char *sorted = json_dumps(rev, JSON_COMPACT | JSON_SORT_KEYS);
        p->revision_json = json_dumps(rev, JSON_COMPACT);
        if (!sorted || !p->revision_json)
                return -ENOMEM;
        size_t sl = strlen(sorted), dl = strlen(code_digest);
        _cleanup_free_ char *buf = malloc(sl + dl + 1);
        if (!buf)
                return -ENOMEM;
        memcpy(buf, sorted, sl);
        memcpy(buf + sl, code_digest, dl + 1);
        sha256_hex(buf, sl + dl, p->spec_digest);
        return 0;
}

static int deploy_plan(const Manifest *m, const char *code_digest, DeployPlan *p) {
        _cleanup_json_ json_t *spec = manifest_spec_to_json(m, true);
        _cleanup_json_ json_t *traffic = deploy_traffic(m);
        if (!spec || !traffic)
                return -ENOMEM;
        p->spec_json = json_dumps(spec, JSON_COMPACT);
        p->traffic_json = json_dumps(traffic, JSON_COMPACT);
        if (!p->spec_json || !p->traffic_json)
                return -ENOMEM;
        return deploy_revision(m, code_digest, p);
}

/* A revision named in the traffic must be this function's, and exist once
 * this deploy is done: at most the latest, or latest + 1 when the deploy
 * makes a revision. */
static int deploy_check_traffic(Api *api, const Manifest *m, const char *ns, const DeployPlan *p,
                                HttpResponse *resp) {
        _cleanup_(store_function_clearp) StoreFunction f = {};
        _cleanup_(store_revision_clearp) StoreRevision latest = {};
        int r = store_function_get(api->store, ns, m->name, &f);
        if (r == 0 && f.latest_revision > 0)
                r = store_revision_get(api->store, ns, m->name, f.latest_revision, &latest);
        if (r < 0 && r != -ENOENT) {
                api_store_error(api, resp, r, m->name);
                return -1;
        }
        bool creates = r == -ENOENT || !latest.spec_digest || strcmp(latest.spec_digest, p->spec_digest) != 0;
        int64_t max = (r == -ENOENT ? 0 : f.latest_revision) + (creates ? 1 : 0);
        for (size_t i = 0; i < m->n_traffic; i++) {
                const ManifestTraffic *t = &m->traffic[i];
                int64_t n = t->latest ? 0 : api_revision_number(m->name, t->revision);
                if (!t->latest && (n < 1 || n > max)) {
                        char field[64];
                        snprintf(field, sizeof field, "spec.traffic[%zu].revision", i);
                        http_error(resp, 422, "invalid_manifest", field, "%s: %s: no such revision of %s",
                                   field, t->revision, m->name);
                        return -1;
                }
        }
        return 0;
}

static int deploy_check_artifact(Api *api, const char *digest, HttpResponse *resp) {
        int r = store_artifact_exists(api->store, digest);
        if (r < 0)
                api_store_error(api, resp, r, "artifact");
        else if (r == 0)
                http_error(resp, 422, "missing_artifact", "codeDigest",
                           "codeDigest: %s was never uploaded (PUT /v1/artifacts/%s first)", digest, digest);
        return r > 0 ? 0 : -1;
}

static void deploy_answer(Api *api, const char *ns, const char *name, const StoreDeployResult *res,
                          HttpResponse *resp) {
        _cleanup_(store_function_clearp) StoreFunction f = {};
        char rev[API_REVISION_NAME_MAX];
        int r = store_function_get(api->store, ns, name, &f);
        if (r < 0) {
                api_store_error(api, resp, r, name);
                return;
        }
        json_t *rev_j = res->revision > 0 ? json_string(api_revision_name(name, res->revision, rev, sizeof rev)) :
                                            json_null();
        http_reply(resp, res->function_created ? 201 : 200,
                   json_pack("{s:o, s:o, s:b}", "function", render_function(&f), "revision", rev_j,
                             "revisionCreated", res->revision_created));
}

int api_deploy_apply(Api *api, const Manifest *m, const char *ns, const char *code_digest, int64_t expected_version,
                     StoreDeployResult *ret, HttpResponse *resp) {
        _cleanup_(deploy_plan_clear) DeployPlan plan = {};
        if (deploy_plan(m, code_digest, &plan) < 0) {
                http_error(resp, 500, "internal", NULL, "out of memory");
                return -1;
        }
        if (deploy_check_artifact(api, code_digest, resp) < 0 || deploy_check_traffic(api, m, ns, &plan, resp) < 0)
                return -1;
        StoreDeploy sd = {
                .namespace_ = ns, .name = m->name, .expected_version = expected_version,
                .spec_json = plan.spec_json, .traffic_json = plan.traffic_json,
                .revision_json = plan.revision_json, .spec_digest = plan.spec_digest,
                .code_digest = code_digest,
        };
        int r = store_deploy(api->store, &sd, ret);
        if (r == -ENOENT) {
                http_error(resp, 422, "missing_artifact", "codeDigest", "codeDigest: %s is not stored", code_digest);
                return -1;
        }
        if (r < 0) {
                api_store_error(api, resp, r, m->name);
                return -1;
        }
        if (api->cluster)
                cluster_function_changed(api->cluster, ns, m->name);
        return 0;
}

void api_function_deploy(Api *api, HttpRequest *req, HttpResponse *resp) {
        _cleanup_json_ json_t *body = NULL;
        _cleanup_manifest_list_ ManifestList *ml = NULL;
        DeployBody d = {};
        const char *ns;
        if (api_body_object(req, &body, resp) < 0 || deploy_read_body(body, &d, resp) < 0 ||
            deploy_parse(&d, &ml, resp) < 0 || deploy_namespace(req, &ml->items[0], &ns, resp) < 0)
                return;
        const Manifest *m = &ml->items[0];
        if (strncmp(m->name, API_SKILL_PREFIX, strlen(API_SKILL_PREFIX)) == 0) {
                http_error(resp, 422, "invalid_manifest", "metadata.name",
                           "metadata.name: %s: names starting with " API_SKILL_PREFIX " are the skill library's "
                           "(fnbox skill, docs/skills.md)", m->name);
                return;
        }
        StoreDeployResult res = {};
        if (api_deploy_apply(api, m, ns, d.code_digest, d.expected_version, &res, resp) == 0)
                deploy_answer(api, ns, m->name, &res, resp);
}
