/* controller/api_skills.c: /v1/skills (docs/api.md, docs/skills.md):
 * generate jobs and their progress, the library's versions, promotion,
 * deprecation and search. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "controller/sessions.h"
#include "controller/skills_internal.h"
#include "lib/base64.h"
#include "lib/quantity.h"

json_t *skills_render_version(const StoreSkillVersion *v, bool full) {
        json_t *doc = json_loads(v->doc_json ? v->doc_json : "{}", 0, NULL);
        if (!doc)
                doc = json_object();
        json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:s, s:s, s:s}", "name", v->name,
                              "namespace", v->namespace_, "version", (json_int_t) v->version, "state", v->state,
                              "runtime", v->runtime, "codeDigest", v->code_digest, "description",
                              v->description ? v->description : "", "parent",
                              v->parent > 0 ? json_integer(v->parent) : json_null(), "createdAt",
                              api_time_json(v->created_ms), "promotedAt",
                              v->promoted_ms ? api_time_json(v->promoted_ms) : json_null(), "deprecatedAt",
                              v->deprecated_ms ? api_time_json(v->deprecated_ms) : json_null(), "createdBy",
                              v->created_by ? v->created_by : "", "promotedBy", v->promoted_by ? v->promoted_by : "",
                              "deprecatedBy", v->deprecated_by ? v->deprecated_by : "");
        if (!o) {
                json_decref(doc);
                return NULL;
        }
        static const char *const brief[] = { "task", "limits", "provenance" };
        static const char *const all[] = { "task", "limits", "provenance", "code", "tests", "examples", "evidence" };
        const char *const *keys = full ? all : brief;
        size_t n = full ? sizeof all / sizeof *all : sizeof brief / sizeof *brief;
        for (size_t i = 0; i < n; i++) {
                json_t *x = json_object_get(doc, keys[i]);
                json_object_set(o, keys[i], x ? x : json_null());
        }
        json_object_set_new(o, "embedding", json_boolean(v->embedding_json != NULL));
        json_decref(doc);
        return o;
}

/* NAME or NAME@N of the path (params[0]). */
static int skill_param(HttpRequest *req, char *name, size_t size, int64_t *ret_version, HttpResponse *resp) {
        const char *p = req->n_params > 0 ? req->params[0] : "";
        const char *at = strchr(p, '@');
        size_t len = at ? (size_t) (at - p) : strlen(p);
        *ret_version = 0;
        if (len >= size || len == 0) {
                http_error(resp, 400, "bad_request", NULL, "bad path: expected a skill name");
                return -1;
        }
        memcpy(name, p, len);
        name[len] = 0;
        if (!skill_name_valid(name)) {
                http_error(resp, 400, "bad_request", NULL,
                           "bad path: %s: a skill name is 1 to %d of a-z, 0-9 and '-', not starting or ending with '-'",
                           name, SKILL_NAME_MAX);
                return -1;
        }
        if (at) {
                char *end;
                long long v = strtoll(at + 1, &end, 10);
                if (*end || v < 1 || v > SKILL_VERSION_MAX || at[1] < '0' || at[1] > '9') {
                        http_error(resp, 400, "bad_request", NULL, "bad path: %s: expected NAME@VERSION, VERSION a number",
                                   p);
                        return -1;
                }
                *ret_version = v;
        }
        return 0;
}

/* A "version" in a JSON body: 0 when absent. */
static int body_version(const json_t *body, int64_t *ret, HttpResponse *resp) {
        const json_t *v = json_object_get(body, "version");
        *ret = 0;
        if (!v || json_is_null(v))
                return 0;
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > SKILL_VERSION_MAX) {
                http_error(resp, 400, "bad_request", "version", "version: expected a version number (1, 2, ...)");
                return -1;
        }
        *ret = json_integer_value(v);
        return 0;
}

/* ---- generate --------------------------------------------------------------------------- */

static int string_field(const json_t *body, const char *key, bool required, size_t max, const char **ret,
                        HttpResponse *resp) {
        const json_t *v = json_object_get(body, key);
        *ret = NULL;
        if (!v || json_is_null(v)) {
                if (required)
                        http_error(resp, 400, "bad_request", key, "%s: required", key);
                return required ? -1 : 0;
        }
        if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > max) {
                http_error(resp, 400, "bad_request", key, "%s: expected a string of 1 to %zu bytes", key, max);
                return -1;
        }
        if (strlen(json_string_value(v)) != json_string_length(v)) {
                http_error(resp, 400, "bad_request", key, "%s: NUL bytes are not allowed", key);
                return -1;
        }
        *ret = json_string_value(v);
        return 0;
}

static int examples_field(const json_t *body, HttpResponse *resp) {
        const json_t *ex = json_object_get(body, "examples");
        if (!ex || json_is_null(ex))
                return 0;
        if (!json_is_array(ex) || json_array_size(ex) > SKILL_EXAMPLES_MAX) {
                http_error(resp, 400, "bad_request", "examples", "examples: expected at most %d {input, output} objects",
                           SKILL_EXAMPLES_MAX);
                return -1;
        }
        size_t i;
        json_t *e;
        json_array_foreach(ex, i, e) {
                json_t *in = json_object_get(e, "input"), *out = json_object_get(e, "output");
                if (!json_is_object(e) || !json_is_string(in) || !json_is_string(out) || json_object_size(e) != 2 ||
                    json_string_length(in) > SKILL_TEST_IO_MAX || json_string_length(out) > SKILL_TEST_IO_MAX ||
                    strlen(json_string_value(in)) != json_string_length(in) ||
                    strlen(json_string_value(out)) != json_string_length(out)) {
                        http_error(resp, 400, "bad_request", "examples",
                                   "examples[%zu]: expected {\"input\": TEXT, \"output\": TEXT}, each at most 64 KiB "
                                   "and without NUL bytes", i);
                        return -1;
                }
        }
        return 0;
}

/* A name from the task: its first words, lower case, joined by '-'. */
static void name_from_task(const char *task, char *buf, size_t size) {
        size_t o = 0;
        bool dash = false;
        for (const char *p = task; *p && o + 1 < size && o < 30; p++) {
                char c = *p;
                if (c >= 'A' && c <= 'Z')
                        c = (char) (c - 'A' + 'a');
                if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
                        if (dash && o > 0)
                                buf[o++] = '-';
                        if (o + 1 < size)
                                buf[o++] = c;
                        dash = false;
                } else
                        dash = true;
        }
        while (o > 0 && buf[o - 1] == '-')
                o--;
        buf[o] = 0;
        if (o == 0)
                snprintf(buf, size, "skill");
}

/* Every key of the generate body is one of these, and limits has only its two. */
static int known_fields(const json_t *body, HttpResponse *resp) {
        static const char *const keys[] = { "task", "runtime", "examples", "model", "rounds", "name", "limits",
                                            "input" };
        const char *k;
        json_t *v;
        json_object_foreach((json_t *) body, k, v) {
                bool known = false;
                for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
                        known |= strcmp(k, keys[i]) == 0;
                if (!known) {
                        http_error(resp, 400, "bad_request", k, "%s: unknown field; expected task, runtime, examples, "
                                                                "model, rounds, name, limits, input", k);
                        return -1;
                }
        }
        const json_t *l = json_object_get(body, "limits");
        if (!l || json_is_null(l))
                return 0;
        if (!json_is_object(l)) {
                http_error(resp, 400, "bad_request", "limits", "limits: expected {\"timeoutMs\": N, \"memoryBytes\": N}");
                return -1;
        }
        json_object_foreach((json_t *) l, k, v)
                if (strcmp(k, "timeoutMs") != 0 && strcmp(k, "memoryBytes") != 0) {
                        http_error(resp, 400, "bad_request", "limits", "limits.%s: unknown field; expected timeoutMs, "
                                                                       "memoryBytes", k);
                        return -1;
                }
        return 0;
}

static int limit_field(const json_t *body, const char *key, bool bytes, int64_t def, int64_t min, int64_t max,
                       int64_t *ret, HttpResponse *resp) {
        const json_t *v = json_object_get(json_object_get(body, "limits"), key);
        *ret = def;
        if (!v || json_is_null(v))
                return 0;
        if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
                http_error(resp, 400, "bad_request", "limits", "limits.%s: expected %s from %" PRId64 " to %" PRId64, key,
                           bytes ? "bytes" : "milliseconds", min, max);
                return -1;
        }
        *ret = json_integer_value(v);
        return 0;
}

/* "input": the base64 of a ustar archive of input files (fnbox skill
 * generate --file): decoded, checked, and kept as an artifact (the
 * version's tests need it again when promoted). 0 with none. */
static int input_field(Api *api, const json_t *body, void **ret, size_t *ret_len, char digest[ARTIFACT_DIGEST_LEN],
                       HttpResponse *resp) {
        const json_t *v = json_object_get(body, "input");
        char why[256];
        *ret = NULL, *ret_len = 0;
        if (!v || json_is_null(v))
                return 0;
        if (!json_is_string(v) || base64_decode(json_string_value(v), json_string_length(v), ret, ret_len) < 0) {
                http_error(resp, 400, "bad_request", "input", "input: expected the base64 of a ustar archive");
                return -1;
        }
        if (*ret_len > SKILLS_INPUT_MAX) {
                http_error(resp, 413, "too_large", "input", "input: the files are over %u bytes", SKILLS_INPUT_MAX);
                return -1;
        }
        json_t *files = session_archive_files(*ret, *ret_len, why, sizeof why);
        if (!files) {
                http_error(resp, 400, "bad_request", "input", "%s", why);
                return -1;
        }
        json_decref(files);
        artifact_digest(*ret, *ret_len, digest);
        int r = store_artifact_put(api->store, digest, *ret, *ret_len);
        if (r < 0) {
                api_store_error(api, resp, r, "input");
                return -1;
        }
        return 0;
}

void api_skill_generate(Api *api, HttpRequest *req, HttpResponse *resp) {
        _cleanup_json_ json_t *body = NULL;
        const char *ns, *task, *runtime, *model, *name;
        if (api_namespace(req, TOKEN_ROLE_DEVELOPER, false, &ns, resp) < 0 || api_body_object(req, &body, resp) < 0)
                return;
        if (known_fields(body, resp) < 0 || string_field(body, "task", true, SKILL_TASK_MAX, &task, resp) < 0 ||
            string_field(body, "runtime", false, 16, &runtime, resp) < 0 ||
            string_field(body, "model", false, 128, &model, resp) < 0 ||
            string_field(body, "name", false, SKILL_NAME_MAX, &name, resp) < 0 || examples_field(body, resp) < 0)
                return;
        runtime = runtime ? runtime : "python3";
        if (!skills_entry_file(runtime)) {
                http_error(resp, 400, "bad_request", "runtime", "runtime: %s: expected python3, node or sh", runtime);
                return;
        }
        char derived[SKILL_NAME_MAX + 1];
        if (name && !skill_name_valid(name)) {
                http_error(resp, 400, "bad_request", "name",
                           "name: %s: expected 1 to %d of a-z, 0-9 and '-', not starting or ending with '-'", name,
                           SKILL_NAME_MAX);
                return;
        }
        if (!name) {
                name_from_task(task, derived, sizeof derived);
                if (!skill_name_valid(derived))         /* a reserved word such as "search" */
                        strcat(derived, "-skill");
                name = derived;
        }
        const json_t *rounds = json_object_get(body, "rounds");
        if (rounds && (!json_is_integer(rounds) || json_integer_value(rounds) < 1 ||
                       json_integer_value(rounds) > SKILL_ROUNDS_MAX)) {
                http_error(resp, 400, "bad_request", "rounds", "rounds: expected 1 to %d", SKILL_ROUNDS_MAX);
                return;
        }
        int64_t timeout_ms, memory;
        if (limit_field(body, "timeoutMs", false, SKILLS_TIMEOUT_DEFAULT_MS, 100, 300000, &timeout_ms, resp) < 0 ||
            limit_field(body, "memoryBytes", true, SKILLS_MEMORY_DEFAULT, 16LL << 20, 8LL << 30, &memory, resp) < 0)
                return;
        const char *token = api_bearer(req);
        if (!token) {
                http_error(resp, 401, "unauthenticated", NULL, "a bearer token is needed");
                return;
        }
        char by[64], input_digest[ARTIFACT_DIGEST_LEN] = "";
        _cleanup_free_ void *input = NULL;
        size_t input_len = 0;
        if (input_field(api, body, &input, &input_len, input_digest, resp) < 0)
                return;
        api_by(req, by, sizeof by);
        json_t *empty = json_array();
        SkillJobSpec spec = {
                .ns = ns, .name = name, .task = task, .runtime = runtime,
                .model = model ? model : api->skills->chat_model, .token = token, .by = by,
                .examples = json_object_get(body, "examples") && !json_is_null(json_object_get(body, "examples"))
                                    ? json_object_get(body, "examples") : empty,
                .rounds = rounds ? (unsigned) json_integer_value(rounds) : SKILL_ROUNDS_DEFAULT,
                .timeout_ms = timeout_ms, .memory_bytes = memory,
                .input = input, .input_len = input_len, .input_digest = input_digest,
        };
        json_t *job = NULL;
        int r = skills_job_start(api->skills, &spec, &job);
        json_decref(empty);
        if (r == -EBUSY)
                http_error(resp, 429, "busy", NULL,
                           "a job or promotion already works on skill %s, or %d already run here; retry later", name,
                           SKILLS_WORKERS);
        else if (r < 0)
                http_error(resp, 500, "internal", NULL, "starting the job: %s", strerror(-r));
        else
                http_reply(resp, 202, job);
}

void api_skill_job(Api *api, HttpRequest *req, HttpResponse *resp) {
        const char *id = req->n_params > 0 ? req->params[0] : "";
        json_t *job = NULL;
        char ns[256] = "";
        uint64_t changes = 0;
        int r = strlen(id) == 32 ? skills_job_get(api->skills, id, &job, ns, sizeof ns, &changes) : -ENOENT;
        if (r == 0 && !auth_allows(&req->principal, TOKEN_ROLE_DEVELOPER, ns))
                r = -ENOENT;    /* another namespace's job is not there for this token */
        if (r < 0) {
                json_decref(job);
                if (r == -ENOENT)
                        http_error(resp, 404, "not_found", NULL, "job %s: not found (jobs live on the controller that "
                                                                 "started them, until it restarts)", id);
                else
                        http_error(resp, 500, "internal", NULL, "out of memory");
                return;
        }
        const char *wait = http_query(req, "wait");
        long w = 0;
        if (wait) {
                char *end;
                w = strtol(wait, &end, 10);
                if (*end || w < 0 || w > SKILLS_WAIT_MAX_S) {
                        json_decref(job);
                        http_error(resp, 400, "bad_request", "wait", "wait: expected 0 to %d seconds", SKILLS_WAIT_MAX_S);
                        return;
                }
        }
        const char *after = http_query(req, "after");
        uint64_t since = changes;
        if (after) {
                char *end;
                since = strtoull(after, &end, 10);
                if (*end || !*after || after[0] == '-') {
                        json_decref(job);
                        http_error(resp, 400, "bad_request", "after", "after: expected the job's changes count");
                        return;
                }
        }
        if (w == 0 || !json_is_string(json_object_get(job, "state")) ||
            strcmp(json_string_value(json_object_get(job, "state")), "running") != 0 || since != changes) {
                http_reply(resp, 200, job);
                return;
        }
        json_decref(job);
        if (skills_job_wait(api->skills, id, changes, (int) w, req) < 0)
                http_error(resp, 404, "not_found", NULL, "job %s: not found", id);
}

/* ---- the library ------------------------------------------------------------------------ */

void api_skills_list(Api *api, HttpRequest *req, HttpResponse *resp) {
        const char *ns;
        if (api_namespace(req, TOKEN_ROLE_INVOKER, false, &ns, resp) < 0)
                return;
        _cleanup_json_ json_t *items = json_array();
        char *after = NULL;
        int r = items ? 0 : -ENOMEM;
        json_t *cur = NULL;             /* the summary of the skill being read */
        while (r == 0) {
                StoreSkillVersion *vs = NULL;
                size_t n = 0;
                char *next = NULL;
                r = store_skill_version_list(api->store, ns, NULL, after, STORE_LIST_MAX, &vs, &n, &next);
                free(after);
                after = NULL;
                if (r < 0)
                        break;
                for (size_t i = 0; i < n; i++) {
                        const StoreSkillVersion *v = &vs[i];
                        if (!cur || strcmp(json_string_value(json_object_get(cur, "name")), v->name) != 0) {
                                cur = json_pack("{s:s, s:s, s:n, s:I}", "name", v->name, "namespace", v->namespace_,
                                                "version", "versions", (json_int_t) 0);
                                if (!cur || json_array_append_new(items, cur) < 0) {
                                        r = -ENOMEM;
                                        break;
                                }
                        }
                        json_object_set_new(cur, "versions",
                                            json_integer(json_integer_value(json_object_get(cur, "versions")) + 1));
                        json_object_set_new(cur, "latestVersion", json_integer(v->version));
                        json_object_set_new(cur, "latestState", json_string(v->state));
                        if (strcmp(v->state, "promoted") == 0 ||
                            json_is_null(json_object_get(cur, "version"))) {
                                json_object_set_new(cur, "runtime", json_string(v->runtime));
                                json_object_set_new(cur, "description", json_string(v->description ? v->description : ""));
                                json_object_set_new(cur, "createdAt", api_time_json(v->created_ms));
                        }
                        if (strcmp(v->state, "promoted") == 0)
                                json_object_set_new(cur, "version", json_integer(v->version));
                }
                store_skill_version_array_free(vs, n);
                if (!next)
                        break;
                after = next;
        }
        free(after);
        if (r < 0)
                api_store_error(api, resp, r, "skills");
        else
                http_reply(resp, 200, json_pack("{s:O, s:n}", "items", items, "next"));
}

void api_skill_get(Api *api, HttpRequest *req, HttpResponse *resp) {
        const char *ns;
        char name[SKILL_NAME_MAX + 1];
        int64_t version;
        if (api_namespace(req, TOKEN_ROLE_INVOKER, false, &ns, resp) < 0 ||
            skill_param(req, name, sizeof name, &version, resp) < 0)
                return;
        const char *q = http_query(req, "version");
        if (q) {
                char *end;
                long long v = strtoll(q, &end, 10);
                if (*end || v < 1 || v > SKILL_VERSION_MAX) {
                        http_error(resp, 400, "bad_request", "version", "version: expected a version number");
                        return;
                }
                version = v;
        }
        StoreSkillVersion v = {};
        int r = store_skill_version_get(api->store, ns, name, version, &v);
        if (r == -ENOENT && version == 0) {
                StoreSkillVersion any = {};
                if (store_skill_version_get(api->store, ns, name, -1, &any) == 0)
                        http_error(resp, 404, "not_found", NULL,
                                   "skill %s has no promoted version; its newest is %s@%" PRId64 " (%s): ask for it by "
                                   "number", name, name, any.version, any.state);
                else
                        http_error(resp, 404, "not_found", NULL, "skill %s: not found in namespace %s", name, ns);
                store_skill_version_clear(&any);
                return;
        }
        if (r < 0) {
                char what[96];
                snprintf(what, sizeof what, version > 0 ? "skill %s@%" PRId64 : "skill %s", name, version);
                api_store_error(api, resp, r, what);
                return;
        }
        http_reply(resp, 200, skills_render_version(&v, true));
        store_skill_version_clear(&v);
}

void api_skill_versions(Api *api, HttpRequest *req, HttpResponse *resp) {
        const char *ns;
        char name[SKILL_NAME_MAX + 1];
        int64_t version;
        if (api_namespace(req, TOKEN_ROLE_INVOKER, false, &ns, resp) < 0 ||
            skill_param(req, name, sizeof name, &version, resp) < 0)
                return;
        StoreSkillVersion *vs = NULL;
        size_t n = 0;
        char *next = NULL;
        int r = store_skill_version_list(api->store, ns, name, NULL, STORE_LIST_MAX, &vs, &n, &next);
        free(next);
        if (r == 0 && n == 0)
                r = -ENOENT;
        if (r < 0) {
                char what[96];
                snprintf(what, sizeof what, "skill %s", name);
                api_store_error(api, resp, r, what);
                return;
        }
        json_t *items = json_array();
        for (size_t i = n; items && i-- > 0;)
                if (json_array_append_new(items, skills_render_version(&vs[i], false)) < 0)
                        items = (json_decref(items), NULL);
        store_skill_version_array_free(vs, n);
        http_reply(resp, 200, items ? json_pack("{s:o}", "items", items) : NULL);
}

/* The newest candidate of ns/name: its number, or -ENOENT. */
static int newest_candidate(Api *api, const char *ns, const char *name, int64_t *ret) {
        StoreSkillVersion *vs = NULL;
        size_t n = 0;
        char *next = NULL;
        int r = store_skill_version_list(api->store, ns, name, NULL, STORE_LIST_MAX, &vs, &n, &next);
        free(next);
        if (r < 0)
                return r;
        r = -ENOENT;
        for (size_t i = n; i-- > 0;)
                if (strcmp(vs[i].state, "candidate") == 0) {
                        *ret = vs[i].version;
                        r = 0;
                        break;
                }
        store_skill_version_array_free(vs, n);
        return r;
}

/* A change to NAME[@N] (developer): the namespace, the name, and the version
 * from the path or the body's "version" (0: none given). 0, or -1 with resp. */
static int change_params(HttpRequest *req, const char **ret_ns, char *name, size_t size, int64_t *ret_version,
                         HttpResponse *resp) {
        _cleanup_json_ json_t *body = NULL;
        int64_t in_body = 0;
        if (api_namespace(req, TOKEN_ROLE_DEVELOPER, false, ret_ns, resp) < 0 ||
            skill_param(req, name, size, ret_version, resp) < 0)
                return -1;
        if (req->body_len > 0 && (api_body_object(req, &body, resp) < 0 || body_version(body, &in_body, resp) < 0))
                return -1;
        if (in_body > 0)
                *ret_version = in_body;
        return 0;
}

void api_skill_promote(Api *api, HttpRequest *req, HttpResponse *resp) {
        const char *ns;
        char name[SKILL_NAME_MAX + 1];
        int64_t version;
        if (change_params(req, &ns, name, sizeof name, &version, resp) < 0)
                return;
        if (version == 0) {
                int r = newest_candidate(api, ns, name, &version);
                if (r == -ENOENT) {
                        http_error(resp, 404, "not_found", NULL, "skill %s has no candidate to promote in namespace %s",
                                   name, ns);
                        return;
                }
                if (r < 0) {
                        api_store_error(api, resp, r, "skills");
                        return;
                }
        }
        const char *token = api_bearer(req);
        char by[64];
        api_by(req, by, sizeof by);
        int r = token ? skills_promote_start(api->skills, req, ns, name, version, token, by) : -EKEYREJECTED;
        if (r == -EBUSY)
                http_error(resp, 409, "busy", NULL, "a job or promotion already works on skill %s; retry when it ends",
                           name);
        else if (r < 0)
                http_error(resp, 500, "internal", NULL, "starting the promotion: %s", strerror(-r));
}

void api_skill_deprecate(Api *api, HttpRequest *req, HttpResponse *resp) {
        const char *ns;
        char name[SKILL_NAME_MAX + 1];
        int64_t version;
        if (change_params(req, &ns, name, sizeof name, &version, resp) < 0)
                return;
        char by[64];
        api_by(req, by, sizeof by);
        StoreSkillVersion *vs = NULL;
        size_t n = 0;
        char *next = NULL;
        int r = store_skill_version_list(api->store, ns, name, NULL, STORE_LIST_MAX, &vs, &n, &next);
        free(next);
        if (r == 0 && n == 0)
                r = -ENOENT;
        json_t *done = json_array();
        bool found = false;
        for (size_t i = 0; r == 0 && i < n; i++) {
                if (version > 0 && vs[i].version != version)
                        continue;
                found = true;
                if (strcmp(vs[i].state, "deprecated") == 0)
                        continue;
                r = store_skill_version_set_state(api->store, ns, name, vs[i].version, "deprecated", by, 0);
                if (r == 0)
                        json_array_append_new(done, json_integer(vs[i].version));
        }
        store_skill_version_array_free(vs, n);
        if (r == 0 && version > 0 && !found)
                r = -ENOENT;
        if (r < 0) {
                char what[96];
                snprintf(what, sizeof what, version > 0 ? "skill %s@%" PRId64 : "skill %s", name, version);
                api_store_error(api, resp, r, what);
                json_decref(done);
                return;
        }
        skills_sync_now(api->skills);
        http_reply(resp, 200, json_pack("{s:s, s:o}", "name", name, "deprecated", done));
}

/* ---- search ------------------------------------------------------------------------------ */

static double ms_since(const struct timespec *t0) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (double) (t.tv_sec - t0->tv_sec) * 1e3 + (double) (t.tv_nsec - t0->tv_nsec) / 1e6;
}

void api_skills_search(Api *api, HttpRequest *req, HttpResponse *resp) {
        const char *ns, *q = http_query(req, "q"), *lim = http_query(req, "limit");
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        if (api_namespace(req, TOKEN_ROLE_INVOKER, false, &ns, resp) < 0)
                return;
        if (!q || !*q || strlen(q) > 1024) {
                http_error(resp, 400, "bad_request", "q", "q: expected a query of 1 to 1024 bytes");
                return;
        }
        long limit = 5;
        if (lim) {
                char *end;
                limit = strtol(lim, &end, 10);
                if (*end || limit < 1 || limit > SKILLS_SEARCH_MAX) {
                        http_error(resp, 400, "bad_request", "limit", "limit: expected 1 to %d", SKILLS_SEARCH_MAX);
                        return;
                }
        }
        Skills *s = api->skills;
        float *qemb = NULL;
        size_t dim = 0;
        char why[256] = "";
        const char *token = api_bearer(req);
        int er = token ? skills_embed(s, token, ns, q, &qemb, &dim, why, sizeof why) : -ENOTSUP;
        SkillHit hits[SKILLS_SEARCH_MAX];
        json_t *items = json_array();
        pthread_mutex_lock(&s->lock);
        bool semantic = false;
        int found = s->index ? skill_index_search(s->index, ns, q, qemb, dim, hits, (size_t) limit, &semantic) : 0;
        size_t n = found > 0 ? (size_t) found : 0;
        for (size_t i = 0; items && i < n; i++)
                json_array_append_new(items, json_pack("{s:s, s:I, s:s, s:s, s:f, s:f, s:f}", "name", hits[i].name,
                                                       "version", (json_int_t) hits[i].version, "description",
                                                       hits[i].description, "runtime", hits[i].runtime, "score",
                                                       hits[i].score, "lexical", hits[i].lexical, "semantic",
                                                       hits[i].semantic));
        pthread_mutex_unlock(&s->lock);
        free(qemb);
        json_t *out = items ? json_pack("{s:o, s:b, s:f}", "items", items, "semantic", er == 0 && semantic, "tookMs",
                                        ms_since(&t0)) : NULL;
        if (out && er < 0 && er != -ENOTSUP)
                json_object_set_new(out, "semanticError", json_string(why));
        http_reply(resp, 200, out);
}
