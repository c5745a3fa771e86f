/* controller/skills_job.c: `fnbox skill generate` as a job on a worker
 * thread. Each round: the prompt (task, examples, the box contract, the
 * top existing skills, and from round 2 on what failed), one chat call
 * through the gateway as the asking user, the answer parsed, its tests
 * plus the user's examples run in fresh jails (skills_run.c). The first
 * round whose tests all pass becomes a candidate version with every
 * round's evidence; after the last round the job fails. The job's JSON
 * (progress, evidence) is polled at GET /v1/skills/jobs/ID, long polls
 * answered on every change. */
#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "controller/sessions.h"
#include "controller/skills_internal.h"

struct SkillJob {
        SkillJob *next;
        Skills *s;
        char id[33];
        char *ns, *name, *task, *runtime, *model, *token, *by;
        json_t *examples;
        void *input;                    /* the input files (ustar), NULL: none */
        size_t input_len;
        char *input_digest, *files_preview;
        unsigned rounds;
        int64_t timeout_ms, memory_bytes;
        /* progress: under s->lock */
        const char *state;              /* "running", "passed", "failed", "error" */
        unsigned round;
        size_t tests_passed, tests_total;
        int64_t tokens_in, tokens_out;
        char message[512];
        int64_t version;
        json_t *evidence;
        int64_t started_ms, finished_ms;
        uint64_t changes;
        bool done;
};

struct SkillWaiter {
        SkillWaiter *next;
        SkillJob *job;
        uint64_t changes;
        uint64_t deadline_ns;
        HttpRequest *req;
};

static int64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t mono_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000ull + (uint64_t) ts.tv_nsec;
}

static void job_free(SkillJob *j) {
        if (!j)
                return;
        free(j->ns), free(j->name), free(j->task), free(j->runtime), free(j->model), free(j->by);
        if (j->token) {
                explicit_bzero(j->token, strlen(j->token));
                free(j->token);
        }
        json_decref(j->examples);
        json_decref(j->evidence);
        free(j->input), free(j->input_digest), free(j->files_preview);
        free(j);
}

/* With s->lock held. */
static json_t *job_json_locked(const SkillJob *j) {
        char at[32];
        api_time_format(j->started_ms, at);
        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s?, s:I, s:I, s:I, s:I, s:I, s:I, s:s, s:s, s:O}",
                              "id", j->id, "namespace", j->ns, "name", j->name, "task", j->task, "state", j->state,
                              "model", j->model, "round", (json_int_t) j->round, "rounds", (json_int_t) j->rounds,
                              "testsPassed", (json_int_t) j->tests_passed, "testsTotal", (json_int_t) j->tests_total,
                              "tokensIn", (json_int_t) j->tokens_in, "tokensOut", (json_int_t) j->tokens_out,
                              "message", j->message, "startedAt", at, "evidence", j->evidence);
        if (o) {
                json_object_set_new(o, "changes", json_integer((json_int_t) j->changes));
                json_object_set_new(o, "version", j->version > 0 ? json_integer(j->version) : json_null());
                json_object_set_new(o, "finishedAt", j->finished_ms ? api_time_json(j->finished_ms) : json_null());
        }
        return o;
}

/* Answer the waiters of j (with s->lock held). */
static void job_wake_locked(Skills *s, SkillJob *j) {
        for (SkillWaiter **p = &s->waiters; *p;) {
                SkillWaiter *w = *p;
                if (w->job != j) {
                        p = &w->next;
                        continue;
                }
                *p = w->next;
                HttpResponse resp = {};
                http_reply(&resp, 200, job_json_locked(j));
                http_resume(w->req, &resp);
                free(w);
        }
}

static void job_update(SkillJob *j, const char *state, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void job_update(SkillJob *j, const char *state, const char *fmt, ...) {
        Skills *s = j->s;
        pthread_mutex_lock(&s->lock);
        if (state) {
                j->state = state;
                if (strcmp(state, "running") != 0 && !j->finished_ms)
                        j->finished_ms = now_ms();
        }
        if (fmt) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(j->message, sizeof j->message, fmt, ap);
                va_end(ap);
        }
        j->changes++;
        job_wake_locked(s, j);
        pthread_mutex_unlock(&s->lock);
}

void skills_waiters_expire(Skills *s, bool all) {
        uint64_t now = mono_ns();
        pthread_mutex_lock(&s->lock);
        for (SkillWaiter **p = &s->waiters; *p;) {
                SkillWaiter *w = *p;
                if (!all && w->deadline_ns > now) {
                        p = &w->next;
                        continue;
                }
                *p = w->next;
                HttpResponse resp = {};
                http_reply(&resp, 200, job_json_locked(w->job));
                http_resume(w->req, &resp);
                free(w);
        }
        pthread_mutex_unlock(&s->lock);
}

static SkillJob *job_find_locked(Skills *s, const char *id) {
        for (SkillJob *j = s->jobs; j; j = j->next)
                if (strcmp(j->id, id) == 0)
                        return j;
        return NULL;
}

int skills_job_get(Skills *s, const char *id, json_t **ret, char *ret_ns, size_t ns_size, uint64_t *ret_changes) {
        pthread_mutex_lock(&s->lock);
        SkillJob *j = job_find_locked(s, id);
        if (j) {
                *ret = job_json_locked(j);
                snprintf(ret_ns, ns_size, "%s", j->ns);         /* the job may be dropped once unlocked */
                *ret_changes = j->changes;
        }
        pthread_mutex_unlock(&s->lock);
        return j ? (*ret ? 0 : -ENOMEM) : -ENOENT;
}

int skills_job_wait(Skills *s, const char *id, uint64_t changes, int wait_s, HttpRequest *req) {
        SkillWaiter *w = calloc(1, sizeof *w);
        if (!w)
                return -ENOMEM;
        pthread_mutex_lock(&s->lock);
        SkillJob *j = job_find_locked(s, id);
        if (!j) {
                pthread_mutex_unlock(&s->lock);
                free(w);
                return -ENOENT;
        }
        http_defer(req);
        if (j->changes != changes || j->done || atomic_load(&s->stopping)) {
                HttpResponse resp = {};
                http_reply(&resp, 200, job_json_locked(j));
                http_resume(req, &resp);
                free(w);
        } else {
                *w = (SkillWaiter) { .next = s->waiters, .job = j, .changes = changes, .req = req,
                                     .deadline_ns = mono_ns() + (uint64_t) wait_s * 1000000000ull };
                s->waiters = w;
        }
        pthread_mutex_unlock(&s->lock);
        return 0;
}

void skills_jobs_free(Skills *s) {
        while (s->jobs) {
                SkillJob *j = s->jobs;
                s->jobs = j->next;
                job_free(j);
        }
}

/* Drop the oldest finished jobs past SKILLS_JOBS_KEPT (with s->lock held;
 * a job with waiters is kept). */
static void jobs_trim_locked(Skills *s) {
        size_t n = 0;
        for (SkillJob **p = &s->jobs; *p;) {
                SkillJob *j = *p;
                bool waited = false;
                for (SkillWaiter *w = s->waiters; w; w = w->next)
                        waited |= w->job == j;
                if (++n > SKILLS_JOBS_KEPT && j->done && !waited) {
                        *p = j->next;
                        job_free(j);
                        continue;
                }
                p = &j->next;
        }
}

/* ---- one round ------------------------------------------------------------------- */

typedef struct Round {
        json_t *messages;
        char prompt_digest[65];
        char *content;
        char model[128], upstream[128];
        int64_t tokens_in, tokens_out;
} Round;

static void round_clear(Round *r) {
        json_decref(r->messages);
        free(r->content);
        *r = (Round) {};
}

/* The chat call: 0 with the answer's text, or -EIO with why (a gateway
 * error is the job's end, not the model's failure). */
static int round_ask(SkillJob *j, Round *rd, char *why, size_t why_len) {
        json_t *body = json_pack("{s:s, s:O, s:f, s:i}", "model", j->model, "messages", rd->messages, "temperature",
                                 0.2, "max_tokens", 4096);
        SkillsAnswer a = {};
        int r = body ? skills_post_json(j->s, "/v1/chat/completions", j->token, j->ns, body, SKILLS_LLM_TIMEOUT_MS, &a)
                     : -ENOMEM;
        json_decref(body);
        if (r < 0) {
                snprintf(why, why_len, "calling the gateway: %s", strerror(-r));
                return r;
        }
        json_t *doc = a.status == 200 ? json_loadb(a.body, a.len, 0, NULL) : NULL;
        if (a.status != 200) {
                skills_answer_why(j->s, &a, why, why_len);
                skills_answer_clear(&a);
                return -EIO;
        }
        snprintf(rd->upstream, sizeof rd->upstream, "%s", a.upstream);
        skills_answer_clear(&a);
        const char *text = json_string_value(
                json_object_get(json_object_get(json_array_get(json_object_get(doc, "choices"), 0), "message"), "content"));
        json_t *usage = json_object_get(doc, "usage");
        rd->tokens_in = json_integer_value(json_object_get(usage, "prompt_tokens"));
        rd->tokens_out = json_integer_value(json_object_get(usage, "completion_tokens"));
        const char *model = json_string_value(json_object_get(doc, "model"));
        snprintf(rd->model, sizeof rd->model, "%s", model ? model : j->model);
        rd->content = strdup(text ? text : "");
        json_decref(doc);
        return rd->content ? 0 : -ENOMEM;
}

/* The tests of a round: the answer's, then the user's examples. */
static SkillTest *round_tests(const SkillJob *j, const SkillAnswer *ans, size_t *ret_n) {
        size_t n_ex = json_array_size(j->examples), n = ans->n_tests + n_ex;
        SkillTest *t = calloc(n ? n : 1, sizeof *t);
        if (!t)
                return NULL;
        for (size_t i = 0; i < ans->n_tests; i++)
                t[i] = ans->tests[i];   /* borrowed */
        static const char *const names[SKILL_EXAMPLES_MAX] = {
                "example-1", "example-2", "example-3", "example-4", "example-5", "example-6", "example-7",
                "example-8", "example-9", "example-10", "example-11", "example-12", "example-13", "example-14",
                "example-15", "example-16", "example-17", "example-18", "example-19", "example-20",
        };
        for (size_t i = 0; i < n_ex && i < SKILL_EXAMPLES_MAX; i++) {
                json_t *e = json_array_get(j->examples, i);
                t[ans->n_tests + i] = (SkillTest) {
                        .name = (char *) names[i],
                        .input = (char *) json_string_value(json_object_get(e, "input")),
                        .expected = (char *) json_string_value(json_object_get(e, "output")),
                };
        }
        *ret_n = n;
        return t;
}

static json_t *tests_json(const SkillTest *t, size_t n) {
        json_t *a = json_array();
        for (size_t i = 0; a && i < n; i++)
                if (json_array_append_new(a, json_pack("{s:s, s:s, s:s?}", "name", t[i].name ? t[i].name : "test",
                                                       "input", t[i].input, "expected", t[i].expected)) < 0)
                        a = (json_decref(a), NULL);
        return a;
}

/* The candidate: a new version with the evidence; 0 with its number. */
static int job_store_version(SkillJob *j, const Round *rd, const SkillAnswer *ans, const SkillTest *tests,
                             size_t n_tests, const char *digest, int64_t *ret_version, char *why, size_t why_len) {
        Skills *s = j->s;
        StoreSkillVersion parent = {};
        int64_t parent_version = 0;
        if (store_skill_version_get(s->api->store, j->ns, j->name, -1, &parent) == 0)
                parent_version = parent.version;
        store_skill_version_clear(&parent);
        pthread_mutex_lock(&s->lock);
        json_t *evidence = json_deep_copy(j->evidence);
        int64_t tin = j->tokens_in, tout = j->tokens_out;
        unsigned round = j->round;
        pthread_mutex_unlock(&s->lock);
        json_t *doc = json_pack("{s:s, s:s, s:o, s:o, s:{s:I, s:I}, s:o, s:{s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:s}}",
                                "task", j->task, "code", ans->code, "tests", tests_json(tests, n_tests),
                                "examples", json_deep_copy(j->examples), "limits", "timeoutMs",
                                (json_int_t) j->timeout_ms, "memoryBytes", (json_int_t) j->memory_bytes,
                                "evidence", evidence ? evidence : json_array(), "provenance", "model", rd->model,
                                "upstream", rd->upstream, "promptDigest", rd->prompt_digest, "tokensIn",
                                (json_int_t) tin, "tokensOut", (json_int_t) tout, "rounds", (json_int_t) round,
                                "generatedBy", j->by, "job", j->id);
        if (doc && j->input_len > 0) {
                char lwhy[256];
                json_t *files = session_archive_files(j->input, j->input_len, lwhy, sizeof lwhy);
                json_object_set_new(doc, "input", json_pack("{s:s, s:I, s:o}", "digest", j->input_digest, "size",
                                                            (json_int_t) j->input_len, "files",
                                                            files ? files : json_array()));
        }
        _cleanup_free_ char *doc_text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
        json_decref(doc);
        if (!doc_text)
                return -ENOMEM;
        /* the embedding for search, when a model is configured */
        _cleanup_free_ char *emb_text = NULL;
        float *vec = NULL;
        size_t dim = 0;
        char ewhy[256] = "";
        char text[SKILL_DESCRIPTION_MAX + 64];
        snprintf(text, sizeof text, "%s: %s", j->name, ans->description ? ans->description : "");
        if (skills_embed(s, j->token, j->ns, text, &vec, &dim, ewhy, sizeof ewhy) == 0) {
                json_t *a = json_array();
                for (size_t i = 0; a && i < dim; i++)
                        json_array_append_new(a, json_real(vec[i]));
                emb_text = a ? json_dumps(a, JSON_COMPACT) : NULL;
                json_decref(a);
                free(vec);
        }
        StoreSkillVersion v = {
                .namespace_ = j->ns, .name = j->name, .state = (char *) "candidate", .runtime = j->runtime,
                .code_digest = (char *) digest, .description = ans->description ? ans->description : (char *) "",
                .doc_json = doc_text, .embedding_json = emb_text, .parent = parent_version, .created_by = j->by,
        };
        int r = store_skill_version_add(s->api->store, &v, ret_version);
        if (r < 0)
                snprintf(why, why_len, "storing the candidate: %s", store_last_error(s->api->store));
        return r;
}

/* The round's evidence entry (takes results). */
static json_t *round_evidence(unsigned n, const Round *rd, const SkillAnswer *ans, const char *digest,
                              const char *parse_error, json_t *results) {
        json_t *e = json_pack("{s:I, s:s, s:s, s:I, s:I, s:s}", "round", (json_int_t) n, "model", rd->model,
                              "upstream", rd->upstream, "tokensIn", (json_int_t) rd->tokens_in, "tokensOut",
                              (json_int_t) rd->tokens_out, "promptDigest", rd->prompt_digest);
        if (!e) {
                json_decref(results);
                return NULL;
        }
        if (parse_error) {
                json_object_set_new(e, "parseError", json_string(parse_error));
                const char *text = rd->content ? rd->content : "";
                json_object_set_new(e, "answer", skills_json_clipped(text, strlen(text), 4096));
        } else {
                json_object_set_new(e, "code", json_string(ans->code));
                json_object_set_new(e, "codeDigest", json_string(digest));
                json_object_set_new(e, "description", json_string(ans->description ? ans->description : ""));
        }
        json_object_set_new(e, "results", results ? results : json_array());
        return e;
}

static void *job_main(void *arg) {
        SkillJob *j = arg;
        Skills *s = j->s;
        SkillRef refs[5] = {};
        size_t n_refs = skills_top(s, j->ns, j->task, j->token, refs, 5);
        size_t n_ex = json_array_size(j->examples);
        SkillExample ex[SKILL_EXAMPLES_MAX];
        for (size_t i = 0; i < n_ex; i++) {
                json_t *e = json_array_get(j->examples, i);
                ex[i] = (SkillExample) { json_string_value(json_object_get(e, "input")),
                                         json_string_value(json_object_get(e, "output")) };
        }
        char *prev_code = NULL;
        json_t *prev_results = NULL;
        bool passed = false;
        char why[512] = "";
        for (unsigned n = 1; n <= j->rounds && !passed; n++) {
                if (atomic_load(&s->stopping)) {
                        snprintf(why, sizeof why, "the controller stopped");
                        break;
                }
                pthread_mutex_lock(&s->lock);
                j->round = n;
                pthread_mutex_unlock(&s->lock);
                job_update(j, NULL, "round %u: asking %s", n, j->model);
                Round rd = {};
                SkillPromptInput in = {
                        .task = j->task, .runtime = j->runtime, .examples = ex, .n_examples = n_ex, .refs = refs,
                        .n_refs = n_refs, .prev_code = prev_code, .prev_results = prev_results,
                        .memory_bytes = (uint64_t) j->memory_bytes, .timeout_ms = (uint64_t) j->timeout_ms,
                        .round = n, .rounds = j->rounds, .files = j->files_preview,
                };
                rd.messages = skill_prompt_full(&in);
                _cleanup_free_ char *mtext = rd.messages ? json_dumps(rd.messages, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
                if (!mtext) {
                        snprintf(why, sizeof why, "out of memory");
                        round_clear(&rd);
                        break;
                }
                sha256_hex(mtext, strlen(mtext), rd.prompt_digest);
                if (round_ask(j, &rd, why, sizeof why) < 0) {
                        round_clear(&rd);
                        goto error;
                }
                pthread_mutex_lock(&s->lock);
                j->tokens_in += rd.tokens_in;
                j->tokens_out += rd.tokens_out;
                pthread_mutex_unlock(&s->lock);
                SkillAnswer ans = {};
                char perr[256] = "";
                json_t *results = NULL, *evidence;
                char digest[ARTIFACT_DIGEST_LEN] = "";
                size_t n_passed = 0, n_tests = 0;
                if (skill_answer_parse(rd.content, strlen(rd.content), j->runtime, &ans, perr, sizeof perr) < 0) {
                        job_update(j, NULL, "round %u: the answer is unusable: %s", n, perr);
                        results = json_pack("[{s:s, s:b, s:s, s:s}]", "name", "answer", "passed", 0, "error",
                                            "unusable_answer", "message", perr);
                        evidence = round_evidence(n, &rd, NULL, NULL, perr, json_incref(results));
                } else {
                        job_update(j, NULL, "round %u: running %zu tests", n, ans.n_tests + n_ex);
                        _cleanup_free_ SkillTest *tests = round_tests(j, &ans, &n_tests);
                        char label[64];
                        snprintf(label, sizeof label, "job-%.12s-r%u", j->id, n);
                        SkillRun run = {
                                .ns = j->ns, .name = j->name, .runtime = j->runtime, .code = ans.code,
                                .code_len = strlen(ans.code), .token = j->token, .tests = tests, .n_tests = n_tests,
                                .timeout_ms = j->timeout_ms, .memory_bytes = j->memory_bytes, .label = label,
                                .input = j->input, .input_len = j->input_len, .by = j->by,
                        };
                        int r = tests ? skills_run_tests(s, &run, &results, &n_passed, digest, why, sizeof why) : -ENOMEM;
                        if (r < 0) {
                                skill_answer_clear(&ans);
                                round_clear(&rd);
                                goto error;
                        }
                        pthread_mutex_lock(&s->lock);
                        j->tests_passed = n_passed;
                        j->tests_total = n_tests;
                        pthread_mutex_unlock(&s->lock);
                        evidence = round_evidence(n, &rd, &ans, digest, NULL, json_incref(results));
                        passed = n_passed == n_tests && n_tests > 0;
                }
                json_t *prev_evidence = evidence ? json_incref(evidence) : NULL;
                pthread_mutex_lock(&s->lock);
                if (evidence)
                        json_array_append_new(j->evidence, evidence);
                pthread_mutex_unlock(&s->lock);
                if (passed) {
                        _cleanup_free_ SkillTest *tests = round_tests(j, &ans, &n_tests);
                        int64_t version = 0;
                        if (!tests || job_store_version(j, &rd, &ans, tests, n_tests, digest, &version, why,
                                                        sizeof why) < 0) {
                                skill_answer_clear(&ans);
                                round_clear(&rd);
                                json_decref(results);
                                json_decref(prev_evidence);
                                goto error;
                        }
                        pthread_mutex_lock(&s->lock);
                        j->version = version;
                        pthread_mutex_unlock(&s->lock);
                        job_update(j, NULL, "round %u: all %zu tests passed: candidate %s@%" PRId64, n, n_tests, j->name,
                                   version);
                } else if (!perr[0])
                        job_update(j, NULL, "round %u: %zu of %zu tests passed", n, n_passed, n_tests);
                free(prev_code);
                prev_code = ans.code ? strdup(ans.code) : NULL;
                json_decref(prev_results);
                if (perr[0] && prev_evidence) {
                        /* the prompt tells the model why its answer was unusable */
                        prev_results = prev_evidence;
                        prev_evidence = NULL;
                        json_decref(results);
                } else
                        prev_results = results;
                json_decref(prev_evidence);
                skill_answer_clear(&ans);
                round_clear(&rd);
        }
        if (passed)
                job_update(j, "passed", NULL);
        else if (why[0])
                job_update(j, "error", "%s", why);
        else
                job_update(j, "failed", "no round passed all its tests in %u rounds", j->rounds);
        goto done;
error:
        job_update(j, "error", "%s", why);
done:
        free(prev_code);
        json_decref(prev_results);
        skill_refs_free(refs, n_refs);
        pthread_mutex_lock(&s->lock);
        j->done = true;
        if (!j->finished_ms)
                j->finished_ms = now_ms();
        j->changes++;
        explicit_bzero(j->token, strlen(j->token));
        job_wake_locked(s, j);
        pthread_mutex_unlock(&s->lock);
        skills_release(s, j->ns, j->name);
        return NULL;
}

int skills_job_start(Skills *s, const SkillJobSpec *spec, json_t **ret) {
        SkillJob *j = calloc(1, sizeof *j);
        uint8_t rnd[16];
        if (!j || getrandom(rnd, sizeof rnd, 0) != (ssize_t) sizeof rnd) {
                free(j);
                return -ENOMEM;
        }
        for (size_t i = 0; i < sizeof rnd; i++)
                snprintf(j->id + 2 * i, 3, "%02x", rnd[i]);
        j->s = s;
        j->ns = strdup(spec->ns);
        j->name = strdup(spec->name);
        j->task = strdup(spec->task);
        j->runtime = strdup(spec->runtime);
        j->model = strdup(spec->model);
        j->token = strdup(spec->token);
        j->by = strdup(spec->by);
        j->examples = json_deep_copy(spec->examples);
        j->evidence = json_array();
        if (spec->input_len > 0) {
                j->input = malloc(spec->input_len);
                j->input_digest = strdup(spec->input_digest ? spec->input_digest : "");
                j->files_preview = session_files_preview(spec->input, spec->input_len);
                if (!j->input || !j->input_digest) {
                        job_free(j);
                        return -ENOMEM;
                }
                memcpy(j->input, spec->input, spec->input_len);
                j->input_len = spec->input_len;
        }
        j->rounds = spec->rounds;
        j->timeout_ms = spec->timeout_ms;
        j->memory_bytes = spec->memory_bytes;
        j->state = "running";
        j->started_ms = now_ms();
        if (!j->ns || !j->name || !j->task || !j->runtime || !j->model || !j->token || !j->by || !j->examples ||
            !j->evidence) {
                job_free(j);
                return -ENOMEM;
        }
        int r = skills_claim(s, j->ns, j->name);
        if (r < 0) {
                job_free(j);
                return r;
        }
        pthread_mutex_lock(&s->lock);
        j->next = s->jobs;
        s->jobs = j;
        jobs_trim_locked(s);
        *ret = job_json_locked(j);
        pthread_mutex_unlock(&s->lock);
        r = skills_worker_start(s, job_main, j);
        if (r < 0) {
                skills_release(s, j->ns, j->name);
                pthread_mutex_lock(&s->lock);
                for (SkillJob **p = &s->jobs; *p; p = &(*p)->next)
                        if (*p == j) {
                                *p = j->next;
                                break;
                        }
                pthread_mutex_unlock(&s->lock);
                json_decref(*ret);
                *ret = NULL;
                job_free(j);
        }
        return r;
}
