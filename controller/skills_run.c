/* controller/skills_run.c: the skill library's calls to the data plane.
 * A round's code is deployed as a new revision of skill-NAME-try with its
 * own tag (tK, K the revision), and each test is one POST to
 * /fn/NS/skill-NAME-try@tK on the activator: one fresh jail with the
 * function's limits, the real data path, scale from zero included. The
 * calls carry the asking user's bearer token and X-Fnbox-Stderr: 1, so a
 * failing box's stderr and exit status come back for the next round's
 * prompt. Also the gateway calls (chat, embeddings) of jobs and search. */
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "controller/sessions.h"
#include "controller/skills_internal.h"
#include "lib/manifest.h"

void skills_answer_clear(SkillsAnswer *a) {
        free(a->body);
        *a = (SkillsAnswer) {};
}

/* ---- one HTTP exchange ---------------------------------------------------------- */

typedef struct Exchange {
        Skills *s;
        CURL *h;
        struct curl_slist *headers;
        SkillsAnswer a;
        size_t cap;
        bool too_big;
        uint64_t start_ns;
} Exchange;

static size_t on_body(char *data, size_t size, size_t n, void *userdata) {
        Exchange *x = userdata;
        size_t len = size * n;
        if (x->a.len + len > SKILLS_HTTP_BODY_MAX) {
                x->too_big = true;
                return 0;
        }
        if (x->a.len + len + 1 > x->cap) {
                size_t cap = (x->a.len + len + 1) * 2;
                char *b = realloc(x->a.body, cap);
                if (!b)
                        return 0;
                x->a.body = b;
                x->cap = cap;
        }
        memcpy(x->a.body + x->a.len, data, len);
        x->a.len += len;
        x->a.body[x->a.len] = 0;
        return len;
}

static size_t on_header(char *data, size_t size, size_t n, void *userdata) {
        Exchange *x = userdata;
        size_t len = size * n;
        static const char key[] = "x-fnbox-upstream:";
        if (len > sizeof key - 1 && strncasecmp(data, key, sizeof key - 1) == 0) {
                const char *v = data + sizeof key - 1;
                size_t vl = len - (sizeof key - 1);
                while (vl && (*v == ' ' || *v == '\t'))
                        v++, vl--;
                while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
                        vl--;
                snprintf(x->a.upstream, sizeof x->a.upstream, "%.*s", (int) vl, v);
        }
        return len;
}

static int on_progress(void *userdata, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un) {
        (void) dt, (void) dn, (void) ut, (void) un;
        Exchange *x = userdata;
        return atomic_load(&x->s->stopping) ? 1 : 0;
}

static void exchange_clear(Exchange *x) {
        if (x->h)
                curl_easy_cleanup(x->h);
        curl_slist_free_all(x->headers);
        skills_answer_clear(&x->a);
        *x = (Exchange) {};
}

static int add_header(Exchange *x, const char *name, const char *value) {
        char line[8448];
        snprintf(line, sizeof line, "%s: %.8192s", name, value);
        struct curl_slist *l = curl_slist_append(x->headers, line);
        if (!l)
                return -ENOMEM;
        x->headers = l;
        return 0;
}

/* Prepare x for POST url with body (not copied: the caller keeps it
 * alive until the exchange ends). */
static int exchange_init(Exchange *x, Skills *s, const char *url, const char *token, const char *ns,
                         const char *ctype, const void *body, size_t len, long timeout_ms, const char *request_id,
                         const char *session) {
        *x = (Exchange) { .s = s, .start_ns = 0 };
        x->h = curl_easy_init();
        if (!x->h)
                return -ENOMEM;
        char auth[4200];
        snprintf(auth, sizeof auth, "Bearer %s", token ? token : "");
        if ((token && add_header(x, "Authorization", auth) < 0) || (ns && add_header(x, "X-Fnbox-Namespace", ns) < 0) ||
            add_header(x, "Content-Type", ctype) < 0 || add_header(x, "X-Fnbox-Stderr", "1") < 0 ||
            (request_id && add_header(x, "X-Request-Id", request_id) < 0) ||
            (session && add_header(x, "X-Fnbox-Session", session) < 0))
                return -ENOMEM;
        struct curl_slist *l = curl_slist_append(x->headers, "Expect:");
        if (!l)
                return -ENOMEM;
        x->headers = l;
        curl_easy_setopt(x->h, CURLOPT_URL, url);
        curl_easy_setopt(x->h, CURLOPT_HTTPHEADER, x->headers);
        curl_easy_setopt(x->h, CURLOPT_POST, 1L);
        curl_easy_setopt(x->h, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(x->h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) len);
        curl_easy_setopt(x->h, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(x->h, CURLOPT_WRITEDATA, x);
        curl_easy_setopt(x->h, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(x->h, CURLOPT_HEADERDATA, x);
        curl_easy_setopt(x->h, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(x->h, CURLOPT_XFERINFODATA, x);
        curl_easy_setopt(x->h, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(x->h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(x->h, CURLOPT_TIMEOUT_MS, timeout_ms);
        curl_easy_setopt(x->h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
        curl_easy_setopt(x->h, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(x->h, CURLOPT_PRIVATE, x);
        return 0;
}

static uint64_t mono_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000ull + (uint64_t) ts.tv_nsec;
}

/* After the transfer: status, or error with why. */
static void exchange_done(Exchange *x, CURLcode rc) {
        if (rc == CURLE_OK) {
                curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &x->a.status);
                return;
        }
        x->a.status = 0;
        if (x->too_big)
                snprintf(x->a.error, sizeof x->a.error, "the answer is over %u bytes", SKILLS_HTTP_BODY_MAX);
        else if (rc == CURLE_ABORTED_BY_CALLBACK)
                snprintf(x->a.error, sizeof x->a.error, "the controller is stopping");
        else
                snprintf(x->a.error, sizeof x->a.error, "%s", curl_easy_strerror(rc));
}

int skills_post_json(Skills *s, const char *path, const char *token, const char *ns, const json_t *body,
                     long timeout_ms, SkillsAnswer *ret) {
        _cleanup_free_ char *text = json_dumps(body, JSON_COMPACT);
        char url[1024];
        if (!text)
                return -ENOMEM;
        snprintf(url, sizeof url, "%s%s", s->activator_url, path);
        Exchange x;
        int r = exchange_init(&x, s, url, token, ns, "application/json", text, strlen(text), timeout_ms, NULL, NULL);
        if (r < 0) {
                exchange_clear(&x);
                return r;
        }
        exchange_done(&x, curl_easy_perform(x.h));
        *ret = x.a;
        x.a = (SkillsAnswer) {};
        exchange_clear(&x);
        return 0;
}

int skills_call(Skills *s, const char *path, const char *token, const char *session, const void *body, size_t len,
                long timeout_ms, SkillsAnswer *ret) {
        char url[1024];
        snprintf(url, sizeof url, "%s%s", s->activator_url, path);
        Exchange x;
        int r = exchange_init(&x, s, url, token, NULL, "application/octet-stream", body, len, timeout_ms, NULL,
                              session);
        if (r < 0) {
                exchange_clear(&x);
                return r;
        }
        exchange_done(&x, curl_easy_perform(x.h));
        *ret = x.a;
        x.a = (SkillsAnswer) {};
        exchange_clear(&x);
        return 0;
}

void skills_answer_why(const Skills *s, const SkillsAnswer *a, char *why, size_t why_len) {
        if (a->status == 0) {
                snprintf(why, why_len, "the activator at %s did not answer: %s", s->activator_url, a->error);
                return;
        }
        json_t *j = a->body ? json_loadb(a->body, a->len, 0, NULL) : NULL;
        const char *msg = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
        snprintf(why, why_len, "the activator answered %ld: %s", a->status, msg ? msg : "(no message)");
        json_decref(j);
}

int skills_embed(Skills *s, const char *token, const char *ns, const char *text, float **ret, size_t *ret_dim,
                 char *why, size_t why_len) {
        if (!s->embedding_model || !*s->embedding_model)
                return -ENOTSUP;
        json_t *body = json_pack("{s:s, s:s}", "model", s->embedding_model, "input", text);
        SkillsAnswer a = {};
        int r = body ? skills_post_json(s, "/v1/embeddings", token, ns, body, SKILLS_EMBED_TIMEOUT_MS, &a) : -ENOMEM;
        json_decref(body);
        if (r < 0)
                return r;
        if (a.status != 200) {
                skills_answer_why(s, &a, why, why_len);
                skills_answer_clear(&a);
                return -EIO;
        }
        json_t *j = json_loadb(a.body, a.len, 0, NULL);
        skills_answer_clear(&a);
        json_t *v = json_object_get(json_array_get(json_object_get(j, "data"), 0), "embedding");
        size_t n = json_array_size(v);
        if (n == 0 || n > 4096) {
                snprintf(why, why_len, "the embedding answer has no vector of 1 to 4096 numbers");
                json_decref(j);
                return -EBADMSG;
        }
        float *f = malloc(n * sizeof *f);
        for (size_t i = 0; f && i < n; i++)
                f[i] = (float) json_number_value(json_array_get(v, i));
        json_decref(j);
        if (!f)
                return -ENOMEM;
        *ret = f;
        *ret_dim = n;
        return 0;
}

/* ---- deploying a round's code ---------------------------------------------------- */

const char *skills_entry_file(const char *runtime) {
        if (strcmp(runtime, "python3") == 0)
                return "main.py";
        if (strcmp(runtime, "node") == 0)
                return "index.js";
        if (strcmp(runtime, "sh") == 0)
                return "main.sh";
        return NULL;
}

int skills_code_artifact(Skills *s, const char *runtime, const char *code, size_t len,
                         char ret_digest[ARTIFACT_DIGEST_LEN]) {
        const char *file = skills_entry_file(runtime);
        void *data = NULL;
        size_t n = 0;
        if (!file)
                return -EINVAL;
        int r = artifact_pack_file(file, code, len, false, STORE_ARTIFACT_MAX, &data, &n, ret_digest);
        if (r < 0)
                return r;
        r = store_artifact_put(s->api->store, ret_digest, data, n);
        free(data);
        return r;
}

static int function_latest(Skills *s, const char *ns, const char *fn, int64_t *ret_latest, int64_t *ret_version) {
        StoreFunction f = {};
        int r = store_function_get(s->api->store, ns, fn, &f);
        if (r == -ENOENT) {
                *ret_latest = 0;
                *ret_version = 0;
                return 0;
        }
        if (r < 0)
                return r;
        *ret_latest = f.latest_revision;
        *ret_version = f.resource_version;
        store_function_clear(&f);
        return 0;
}

int skills_deploy(Skills *s, const char *ns, const char *fn, const char *runtime, const char *digest,
                  int64_t timeout_ms, int64_t memory_bytes, const char *marker, bool tagged,
                  int64_t *ret_revision, char *why, size_t why_len) {
        const char *file = skills_entry_file(runtime);
        if (!file) {
                snprintf(why, why_len, "runtime %s: expected python3, node or sh", runtime);
                return -EINVAL;
        }
        for (unsigned attempt = 0; attempt < 5; attempt++) {
                int64_t latest, version;
                int r = function_latest(s, ns, fn, &latest, &version);
                if (r < 0) {
                        snprintf(why, why_len, "reading function %s: %s", fn, strerror(-r));
                        return r;
                }
                char yaml[2048], traffic[256] = "";
                if (tagged)
                        snprintf(traffic, sizeof traffic,
                                 "  traffic:\n    - {revision: %s-%05" PRId64 ", percent: 100, tag: t%" PRId64 "}\n", fn,
                                 latest + 1, latest + 1);
                snprintf(yaml, sizeof yaml,
                         "apiVersion: fnbox.dev/v1\nkind: Function\nmetadata:\n  name: %s\n  namespace: %s\n"
                         "spec:\n  runtime: %s\n  code: %s\n  mode: fresh\n  env:\n    FNBOX_SKILL_RUN: \"%s\"\n"
                         "  limits:\n    timeout: %" PRId64 "ms\n    memory: %" PRId64 "\n%s",
                         fn, ns, runtime, file, marker, timeout_ms, memory_bytes, traffic);
                ManifestList *ml = NULL;
                ManifestError err = {};
                r = manifest_parse(yaml, strlen(yaml), fn, &ml, &err);
                if (r < 0) {
                        char msg[512];
                        manifest_error_format(&err, msg, sizeof msg);
                        snprintf(why, why_len, "the skill's function: %s", msg);
                        manifest_list_free(ml);
                        return -EINVAL;
                }
                HttpResponse resp = {};
                StoreDeployResult res = {};
                r = api_deploy_apply(s->api, &ml->items[0], ns, digest, version, &res, &resp);
                manifest_list_free(ml);
                if (r == 0) {
                        json_decref(resp.body);
                        *ret_revision = res.revision;
                        return 0;
                }
                const char *msg = json_string_value(json_object_get(json_object_get(resp.body, "error"), "message"));
                snprintf(why, why_len, "deploying %s: %s", fn, msg ? msg : "failed");
                unsigned status = resp.status;
                json_decref(resp.body);
                if (status != 409)
                        return -EIO;
        }
        return -EAGAIN;
}

/* ---- running the tests ------------------------------------------------------------- */

/* A JSON string of at most max bytes of text (cut at a character); bytes
 * that are not UTF-8 become '?'. */
json_t *skills_json_clipped(const char *text, size_t len, size_t max) {
        if (!text)
                return json_null();
        if (len > max) {
                len = max;
                while (len > 0 && ((unsigned char) text[len] & 0xC0) == 0x80)
                        len--;
        }
        json_t *j = json_stringn(text, len);
        if (j)
                return j;
        _cleanup_free_ char *copy = malloc(len + 1);
        if (!copy)
                return NULL;
        for (size_t i = 0; i < len; i++)
                copy[i] = (unsigned char) text[i] < 0x80 && text[i] ? text[i] : '?';
        return json_stringn(copy, len);
}

static json_t *result_json(const SkillTest *t, const Exchange *x, double ms) {
        const SkillsAnswer *a = &x->a;
        json_t *r = json_object();
        if (!r)
                return NULL;
        json_object_set_new(r, "name", json_string(t->name ? t->name : "test"));
        json_object_set_new(r, "input", skills_json_clipped(t->input, strlen(t->input), SKILLS_EVIDENCE_TEXT));
        json_object_set_new(r, "expected", t->expected ? skills_json_clipped(t->expected, strlen(t->expected),
                                                                 SKILLS_EVIDENCE_TEXT) : json_null());
        json_object_set_new(r, "status", json_integer(a->status));
        json_object_set_new(r, "durationMs", json_real((double) (long long) (ms * 10) / 10));
        bool passed = false;
        if (a->status == 200) {
                json_object_set_new(r, "actual", skills_json_clipped(a->body ? a->body : "", a->len, SKILLS_EVIDENCE_TEXT));
                passed = skill_output_matches(t->expected, a->body ? a->body : "", a->len);
                if (!passed)
                        json_object_set_new(r, "error", json_string("wrong_output"));
        } else if (a->status == 0) {
                json_object_set_new(r, "error", json_string("no_answer"));
                json_object_set_new(r, "message", json_string(a->error));
        } else {
                json_t *j = a->body ? json_loadb(a->body, a->len, 0, NULL) : NULL;
                json_t *e = json_object_get(j, "error");
                const char *type = json_string_value(json_object_get(e, "type"));
                const char *msg = json_string_value(json_object_get(e, "message"));
                const char *err = json_string_value(json_object_get(e, "stderr"));
                json_object_set_new(r, "error", json_string(type ? type : "http_error"));
                json_object_set_new(r, "message", msg ? json_string(msg) : json_sprintf("HTTP %ld", a->status));
                if (err)
                        json_object_set_new(r, "stderr", skills_json_clipped(err, strlen(err), SKILLS_STDERR_KEPT));
                json_t *code = json_object_get(e, "exitCode"), *sig = json_object_get(e, "signal");
                if (json_is_integer(code))
                        json_object_set(r, "exitCode", code);
                if (sig && !json_is_null(sig))
                        json_object_set(r, "signal", sig);
                json_decref(j);
        }
        json_object_set_new(r, "passed", json_boolean(passed));
        return r;
}

int skills_run_tests(Skills *s, const SkillRun *run, json_t **ret_results, size_t *ret_passed,
                     char ret_digest[ARTIFACT_DIGEST_LEN], char *why, size_t why_len) {
        char fn[64], url[1024];
        int64_t revision = 0;
        snprintf(fn, sizeof fn, API_SKILL_PREFIX "%s-try", run->name);
        int r = skills_code_artifact(s, run->runtime, run->code, run->code_len, ret_digest);
        if (r < 0) {
                snprintf(why, why_len, "storing the code: %s", strerror(-r));
                return r;
        }
        r = skills_deploy(s, run->ns, fn, run->runtime, ret_digest, run->timeout_ms, run->memory_bytes, run->label,
                          true, &revision, why, why_len);
        if (r < 0)
                return r;
        snprintf(url, sizeof url, "%s/fn/%s/%s@t%" PRId64, s->activator_url, run->ns, fn, revision);

        _cleanup_json_ json_t *results = json_array();
        Exchange *xs = calloc(run->n_tests ? run->n_tests : 1, sizeof *xs);
        double *ms = calloc(run->n_tests ? run->n_tests : 1, sizeof *ms);
        CURLM *m = curl_multi_init();
        if (!results || !xs || !ms || !m) {
                free(xs), free(ms);
                if (m)
                        curl_multi_cleanup(m);
                return -ENOMEM;
        }
        size_t next = 0, running = 0, passed = 0;
        r = 0;
        while (r == 0 && (next < run->n_tests || running > 0)) {
                while (next < run->n_tests && running < SKILLS_TEST_PARALLEL) {
                        char rid[128];
                        const SkillTest *t = &run->tests[next];
                        snprintf(rid, sizeof rid, "%s-%zu", run->label, next + 1);
                        /* with input files: a session of its own per test (docs/sessions.md) */
                        char sid[STORE_SESSION_ID_LEN + 1];
                        if (run->input_len > 0 &&
                            (r = session_new(s->api, run->ns, fn, NULL, run->by ? run->by : "", run->input,
                                             run->input_len, NULL, 0, SKILLS_SESSION_KEEP_MS, sid)) < 0) {
                                snprintf(why, why_len, "storing the test's session: %s", strerror(-r));
                                break;
                        }
                        r = exchange_init(&xs[next], s, url, run->token, NULL, "application/octet-stream", t->input,
                                          strlen(t->input), (long) (run->timeout_ms + SKILLS_COLD_START_MS), rid,
                                          run->input_len > 0 ? sid : NULL);
                        if (r < 0)
                                break;
                        xs[next].start_ns = mono_ns();
                        curl_multi_add_handle(m, xs[next].h);
                        next++, running++;
                }
                if (r < 0)
                        break;
                int still = 0;
                curl_multi_perform(m, &still);
                CURLMsg *msg;
                int left;
                while ((msg = curl_multi_info_read(m, &left))) {
                        if (msg->msg != CURLMSG_DONE)
                                continue;
                        Exchange *x = NULL;
                        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &x);
                        exchange_done(x, msg->data.result);
                        ms[x - xs] = (double) (mono_ns() - x->start_ns) / 1e6;
                        curl_multi_remove_handle(m, x->h);
                        running--;
                }
                if (running > 0)
                        curl_multi_poll(m, NULL, 0, 100, NULL);
                if (atomic_load(&s->stopping) && running == 0 && next < run->n_tests) {
                        snprintf(why, why_len, "the controller is stopping");
                        r = -ECANCELED;
                }
        }
        for (size_t i = 0; r == 0 && i < run->n_tests; i++) {
                json_t *one = result_json(&run->tests[i], &xs[i], ms[i]);
                if (!one || json_array_append_new(results, one) < 0)
                        r = -ENOMEM;
                else if (json_is_true(json_object_get(one, "passed")))
                        passed++;
        }
        for (size_t i = 0; i < run->n_tests; i++) {
                if (xs[i].h)
                        curl_multi_remove_handle(m, xs[i].h);
                exchange_clear(&xs[i]);
        }
        curl_multi_cleanup(m);
        free(xs);
        free(ms);
        if (r < 0) {
                if (r == -ENOMEM)
                        snprintf(why, why_len, "out of memory");
                return r;
        }
        if (atomic_load(&s->stopping)) {
                snprintf(why, why_len, "the controller is stopping");
                return -ECANCELED;
        }
        *ret_results = TAKE_PTR(results);
        *ret_passed = passed;
        return 0;
}
