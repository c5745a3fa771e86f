/* controller/skills.c: the skill library's engine (skills.h): worker
 * threads and per-skill claims, the ticker that keeps the search index
 * and the route table's skills in step with the store, the top skills for
 * a prompt, and promotion (the tests again, then skill-NAME-vN). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "controller/cluster.h"
#include "controller/sessions.h"
#include "controller/skills_internal.h"
#include "lib/manifest.h"

bool skill_name_valid(const char *s) {
        /* a function name (skill-NAME-vN must fit a DNS label), and not one
         * of the words of /v1/skills/... that are not skills */
        return s && manifest_name_valid(s) && strlen(s) <= SKILL_NAME_MAX && strcmp(s, "search") != 0 &&
               strcmp(s, "generate") != 0 && strcmp(s, "jobs") != 0;
}

/* ---- workers and claims ------------------------------------------------------------ */

typedef struct Worker {
        Skills *s;
        void *(*fn)(void *);
        void *arg;
} Worker;

static void *worker_main(void *arg) {
        Worker w = *(Worker *) arg;
        free(arg);
        w.fn(w.arg);
        pthread_mutex_lock(&w.s->lock);
        w.s->workers--;
        pthread_cond_broadcast(&w.s->cond);
        pthread_mutex_unlock(&w.s->lock);
        return NULL;
}

int skills_worker_start(Skills *s, void *(*fn)(void *), void *arg) {
        Worker *w = malloc(sizeof *w);
        if (!w)
                return -ENOMEM;
        *w = (Worker) { s, fn, arg };
        pthread_mutex_lock(&s->lock);
        if (s->workers >= SKILLS_WORKERS || atomic_load(&s->stopping)) {
                pthread_mutex_unlock(&s->lock);
                free(w);
                return -EBUSY;
        }
        pthread_attr_t attr;
        pthread_t t;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int r = pthread_create(&t, &attr, worker_main, w);
        pthread_attr_destroy(&attr);
        if (r == 0)
                s->workers++;
        pthread_mutex_unlock(&s->lock);
        if (r != 0) {
                free(w);
                return -r;
        }
        return 0;
}

int skills_claim(Skills *s, const char *ns, const char *name) {
        char key[128];
        snprintf(key, sizeof key, "%s/%s", ns, name);
        pthread_mutex_lock(&s->lock);
        for (size_t i = 0; i < s->n_busy; i++)
                if (strcmp(s->busy[i], key) == 0) {
                        pthread_mutex_unlock(&s->lock);
                        return -EBUSY;
                }
        char **b = realloc(s->busy, (s->n_busy + 1) * sizeof *b);
        char *k = b ? strdup(key) : NULL;
        if (b)
                s->busy = b;
        if (k)
                s->busy[s->n_busy++] = k;
        pthread_mutex_unlock(&s->lock);
        return k ? 0 : -ENOMEM;
}

void skills_release(Skills *s, const char *ns, const char *name) {
        char key[128];
        snprintf(key, sizeof key, "%s/%s", ns, name);
        pthread_mutex_lock(&s->lock);
        for (size_t i = 0; i < s->n_busy; i++)
                if (strcmp(s->busy[i], key) == 0) {
                        free(s->busy[i]);
                        s->busy[i] = s->busy[--s->n_busy];
                        break;
                }
        pthread_mutex_unlock(&s->lock);
}

/* ---- following the store ------------------------------------------------------------- */

/* A stored embedding as floats (NULL when there is none or it is unreadable). */
static float *embedding_floats(const char *text, size_t *ret_dim) {
        *ret_dim = 0;
        if (!text)
                return NULL;
        json_t *a = json_loads(text, 0, NULL);
        size_t n = json_array_size(a);
        float *f = n ? malloc(n * sizeof *f) : NULL;
        for (size_t i = 0; f && i < n; i++)
                f[i] = (float) json_number_value(json_array_get(a, i));
        json_decref(a);
        if (f)
                *ret_dim = n;
        return f;
}

/* Put v into ix and the route list. A skill the index refuses (a stored
 * embedding it cannot use) goes in without its embedding; one it still
 * refuses is logged and left out: one bad row never stops the library. */
static int library_add(SkillIndex *ix, json_t *routes, const StoreSkillVersion *v) {
        json_t *doc = json_loads(v->doc_json ? v->doc_json : "{}", 0, NULL);
        size_t dim = 0;
        float *emb = embedding_floats(v->embedding_json, &dim);
        const char *code = json_string_value(json_object_get(doc, "code"));
        const char *desc = v->description ? v->description : "";
        int r = skill_index_put(ix, v->namespace_, v->name, v->version, v->runtime, desc, code ? code : "", emb, dim);
        if (r == -EINVAL && emb)
                r = skill_index_put(ix, v->namespace_, v->name, v->version, v->runtime, desc, code ? code : "", NULL, 0);
        free(emb);
        json_decref(doc);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                fprintf(stderr, "fnbox-controller: skill %s/%s@%" PRId64 " left out of search: %s\n", v->namespace_,
                        v->name, v->version, strerror(-r));
        json_t *e = json_pack("{s:s, s:s, s:I}", "namespace", v->namespace_, "name", v->name, "version",
                              (json_int_t) v->version);
        return e && json_array_append_new(routes, e) == 0 ? 0 : -ENOMEM;
}

static bool same_skill(const StoreSkillVersion *a, const StoreSkillVersion *b) {
        return strcmp(a->namespace_, b->namespace_) == 0 && strcmp(a->name, b->name) == 0;
}

/* Read every version (ordered by namespace, name, version); the newest
 * promoted one of each skill goes into a new index and the route table's
 * list. */
static int skills_sync(Skills *s, int64_t stamp) {
        SkillIndex *ix = NULL;
        json_t *routes = json_array();
        char *after = NULL;
        int r = routes ? skill_index_new(&ix) : -ENOMEM;
        StoreSkillVersion best = {};    /* the current skill's newest promoted version so far */
        bool have = false, more = true;
        while (r >= 0 && more) {
                StoreSkillVersion *vs = NULL;
                size_t n = 0;
                char *next = NULL;
                r = store_skill_version_list(s->api->store, NULL, NULL, after, STORE_LIST_MAX, &vs, &n, &next);
                free(after);
                after = next;
                more = r >= 0 && next;
                for (size_t i = 0; r >= 0 && i < n; i++) {
                        if (have && !same_skill(&vs[i], &best)) {
                                r = library_add(ix, routes, &best);
                                store_skill_version_clear(&best);
                                have = false;
                        }
                        if (strcmp(vs[i].state, "promoted") == 0) {
                                store_skill_version_clear(&best);
                                best = vs[i];
                                vs[i] = (StoreSkillVersion) {};
                                have = true;
                        }
                }
                store_skill_version_array_free(vs, n);
        }
        if (have && r >= 0)
                r = library_add(ix, routes, &best);
        store_skill_version_clear(&best);
        free(after);
        if (r < 0) {
                skill_index_free(ix);
                json_decref(routes);
                return r;
        }
        pthread_mutex_lock(&s->lock);
        SkillIndex *old = s->index;
        s->index = ix;
        s->stamp = stamp;
        s->synced = true;
        pthread_mutex_unlock(&s->lock);
        skill_index_free(old);
        cluster_skills_set(s->api->cluster, routes);
        return 0;
}

static void skills_sync_if_changed(Skills *s, bool force) {
        int64_t stamp = 0;
        int r = store_skill_stamp(s->api->store, &stamp);
        if (r < 0)
                return;
        pthread_mutex_lock(&s->lock);
        bool due = force || !s->synced || stamp != s->stamp;
        pthread_mutex_unlock(&s->lock);
        if (due && (r = skills_sync(s, stamp)) < 0)
                fprintf(stderr, "fnbox-controller: reading the skill library: %s (the next tick tries again)\n",
                        r == -EIO ? store_last_error(s->api->store) : strerror(-r));
}

void skills_sync_now(Skills *s) {
        skills_sync_if_changed(s, true);
}

static void *ticker_main(void *arg) {
        Skills *s = arg;
        unsigned tick = 0;
        while (!atomic_load(&s->stopping)) {
                if (tick % 4 == 0)
                        skills_sync_if_changed(s, false);
                if (tick++ % SESSIONS_PRUNE_TICKS == 0) {
                        /* expired sessions, with their files (docs/sessions.md) */
                        int n = sessions_prune(s->api);
                        if (n < 0)
                                fprintf(stderr, "fnbox-controller: sessions: cannot delete the expired ones: %s\n",
                                        strerror(-n));
                        else if (n > 0)
                                fprintf(stderr, "fnbox-controller: sessions: deleted %d expired\n", n);
                }
                skills_waiters_expire(s, false);
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_nsec += 250000000;
                if (ts.tv_nsec >= 1000000000)
                        ts.tv_sec++, ts.tv_nsec -= 1000000000;
                pthread_mutex_lock(&s->lock);
                if (!atomic_load(&s->stopping))
                        pthread_cond_timedwait(&s->cond, &s->lock, &ts);
                pthread_mutex_unlock(&s->lock);
        }
        return NULL;
}

/* ---- the top skills for a prompt ------------------------------------------------------ */

size_t skills_top(Skills *s, const char *ns, const char *text, const char *token, SkillRef *refs, size_t n) {
        float *qemb = NULL;
        size_t dim = 0;
        char why[256];
        if (skills_embed(s, token, ns, text, &qemb, &dim, why, sizeof why) < 0)
                qemb = NULL;
        SkillHit hits[16];
        if (n > 16)
                n = 16;
        pthread_mutex_lock(&s->lock);
        int found = s->index ? skill_index_search(s->index, ns, text, qemb, dim, hits, n, NULL) : 0;
        size_t got = found > 0 ? (size_t) found : 0;
        size_t k = 0;
        for (size_t i = 0; i < got; i++) {
                SkillRef r = { .name = strdup(hits[i].name), .description = strdup(hits[i].description),
                               .runtime = strdup(hits[i].runtime), .version = hits[i].version };
                if (r.name && r.description && r.runtime)
                        refs[k++] = r;
                else
                        skill_refs_free(&r, 1);
        }
        got = k;
        pthread_mutex_unlock(&s->lock);
        free(qemb);
        return got;
}

void skill_refs_free(SkillRef *refs, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free((char *) refs[i].name);
                free((char *) refs[i].description);
                free((char *) refs[i].runtime);
        }
}

/* ---- promotion --------------------------------------------------------------------- */

typedef struct Promotion {
        Skills *s;
        HttpRequest *req;
        char *ns, *name, *token, *by;
        int64_t version;
} Promotion;

static void promotion_free(Promotion *p) {
        free(p->ns), free(p->name), free(p->by);
        if (p->token) {
                explicit_bzero(p->token, strlen(p->token));
                free(p->token);
        }
        free(p);
}

/* The tests of a stored version (doc.tests) as SkillTests pointing into doc. */
static SkillTest *stored_tests(json_t *doc, size_t *ret_n) {
        json_t *a = json_object_get(doc, "tests");
        size_t n = json_array_size(a);
        SkillTest *t = calloc(n ? n : 1, sizeof *t);
        for (size_t i = 0; t && i < n; i++) {
                json_t *e = json_array_get(a, i);
                t[i] = (SkillTest) { .name = (char *) json_string_value(json_object_get(e, "name")),
                                     .input = (char *) json_string_value(json_object_get(e, "input")),
                                     .expected = (char *) json_string_value(json_object_get(e, "expected")) };
                if (!t[i].input)
                        t[i].input = (char *) "";
        }
        *ret_n = n;
        return t;
}

static void promote(Promotion *p, HttpResponse *resp) {
        Skills *s = p->s;
        StoreSkillVersion v = {};
        char why[512] = "";
        int r = store_skill_version_get(s->api->store, p->ns, p->name, p->version, &v);
        if (r < 0) {
                api_store_error(s->api, resp, r, p->name);
                return;
        }
        if (strcmp(v.state, "candidate") != 0) {
                http_error(resp, 409, "conflict", "version", "%s@%" PRId64 " is %s, not a candidate", p->name, v.version,
                           v.state);
                store_skill_version_clear(&v);
                return;
        }
        json_t *doc = json_loads(v.doc_json ? v.doc_json : "{}", 0, NULL);
        const char *code = json_string_value(json_object_get(doc, "code"));
        json_t *limits = json_object_get(doc, "limits");
        int64_t timeout_ms = json_integer_value(json_object_get(limits, "timeoutMs"));
        int64_t memory = json_integer_value(json_object_get(limits, "memoryBytes"));
        size_t n_tests = 0;
        SkillTest *tests = stored_tests(doc, &n_tests);
        char label[64], digest[ARTIFACT_DIGEST_LEN], fn[64];
        snprintf(label, sizeof label, "promote-%" PRId64, v.version);
        /* the input files the tests ran with, when the version had any */
        const char *input_digest = json_string_value(json_object_get(json_object_get(doc, "input"), "digest"));
        _cleanup_free_ void *input = NULL;
        size_t input_len = 0;
        SkillRun run = {
                .ns = p->ns, .name = p->name, .runtime = v.runtime, .code = code ? code : "",
                .code_len = code ? strlen(code) : 0, .token = p->token, .tests = tests, .n_tests = n_tests,
                .timeout_ms = timeout_ms > 0 ? timeout_ms : SKILLS_TIMEOUT_DEFAULT_MS,
                .memory_bytes = memory > 0 ? memory : SKILLS_MEMORY_DEFAULT, .label = label, .by = p->by,
        };
        json_t *results = NULL;
        size_t passed = 0;
        int64_t revision = 0;
        r = !code || !tests || n_tests == 0 ? -EINVAL : 0;
        if (r == 0 && input_digest && (r = store_artifact_get(s->api->store, input_digest, &input, &input_len)) < 0)
                snprintf(why, sizeof why, "the version's input files %s: %s", input_digest, strerror(-r));
        run.input = input, run.input_len = input_len;
        if (r == 0)
                r = skills_run_tests(s, &run, &results, &passed, digest, why, sizeof why);
        if (r == -EINVAL && !why[0])
                snprintf(why, sizeof why, "the version has no code or no tests");
        if (r < 0)
                http_error(resp, r == -ECANCELED ? 503 : 502, "verification_failed", NULL, "%s", why);
        else if (passed != n_tests) {
                char msg[160];
                snprintf(msg, sizeof msg, "%zu of the %zu tests of %s@%" PRId64 " failed again: nothing changed",
                         n_tests - passed, n_tests, p->name, v.version);
                http_reply(resp, 409, json_pack("{s:{s:s, s:s}, s:o}", "error", "type", "tests_failed", "message", msg,
                                                "results", results));
                results = NULL;
        } else {
                snprintf(fn, sizeof fn, API_SKILL_PREFIX "%s-v%" PRId64, p->name, v.version);
                r = skills_deploy(s, p->ns, fn, v.runtime, v.code_digest, run.timeout_ms, run.memory_bytes, label, false,
                                  &revision, why, sizeof why);
                if (r < 0)
                        http_error(resp, 502, "deploy_failed", NULL, "%s", why);
                else if ((r = store_skill_version_set_state(s->api->store, p->ns, p->name, v.version, "promoted", p->by,
                                                            0)) < 0)
                        api_store_error(s->api, resp, r, p->name);
                else {
                        skills_sync_now(s);
                        StoreSkillVersion now = {};
                        if (store_skill_version_get(s->api->store, p->ns, p->name, v.version, &now) == 0) {
                                json_t *out = skills_render_version(&now, false);
                                if (out) {
                                        json_object_set_new(out, "results", results);
                                        results = NULL;
                                }
                                http_reply(resp, 200, out);
                        } else
                                http_error(resp, 500, "internal", NULL, "the version vanished after its promotion");
                        store_skill_version_clear(&now);
                }
        }
        json_decref(results);
        free(tests);
        json_decref(doc);
        store_skill_version_clear(&v);
}

static void *promotion_main(void *arg) {
        Promotion *p = arg;
        HttpResponse resp = {};
        promote(p, &resp);
        skills_release(p->s, p->ns, p->name);
        http_resume(p->req, &resp);
        promotion_free(p);
        return NULL;
}

int skills_promote_start(Skills *s, HttpRequest *req, const char *ns, const char *name, int64_t version,
                         const char *token, const char *by) {
        Promotion *p = calloc(1, sizeof *p);
        if (!p)
                return -ENOMEM;
        *p = (Promotion) { .s = s, .req = req, .ns = strdup(ns), .name = strdup(name), .token = strdup(token),
                           .by = strdup(by), .version = version };
        if (!p->ns || !p->name || !p->token || !p->by) {
                promotion_free(p);
                return -ENOMEM;
        }
        int r = skills_claim(s, ns, name);
        if (r < 0) {
                promotion_free(p);
                return r;
        }
        http_defer(req);
        r = skills_worker_start(s, promotion_main, p);
        if (r < 0) {
                HttpResponse resp = {};
                skills_release(s, ns, name);
                promotion_free(p);
                http_error(&resp, 429, "busy", NULL, "%u skill jobs and promotions already run here; retry later",
                           SKILLS_WORKERS);
                http_resume(req, &resp);
        }
        return 0;
}

/* ---- life ----------------------------------------------------------------------------- */

int skills_new(Api *api, const SkillsConfig *cfg, Skills **ret) {
        Skills *s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        s->api = api;
        const char *url = cfg->activator_url ? cfg->activator_url : "http://127.0.0.1:8080";
        s->activator_url = strdup(url);
        s->embedding_model = cfg->embedding_model && *cfg->embedding_model ? strdup(cfg->embedding_model) : NULL;
        s->chat_model = strdup(cfg->chat_model && *cfg->chat_model ? cfg->chat_model : "default");
        if (!s->activator_url || !s->chat_model || (cfg->embedding_model && *cfg->embedding_model && !s->embedding_model)) {
                skills_free(s);
                return -ENOMEM;
        }
        size_t n = strlen(s->activator_url);
        while (n > 0 && s->activator_url[n - 1] == '/')
                s->activator_url[--n] = 0;
        pthread_mutex_init(&s->lock, NULL);
        pthread_cond_init(&s->cond, NULL);
        atomic_init(&s->stopping, false);
        *ret = s;
        return 0;
}

int skills_start(Skills *s) {
        skills_sync_if_changed(s, true);
        int r = pthread_create(&s->ticker, NULL, ticker_main, s);
        if (r != 0)
                return -r;
        s->ticker_started = true;
        return 0;
}

void skills_stop(Skills *s) {
        if (!s)
                return;
        atomic_store(&s->stopping, true);
        pthread_mutex_lock(&s->lock);
        pthread_cond_broadcast(&s->cond);
        while (s->workers > 0)
                pthread_cond_wait(&s->cond, &s->lock);
        pthread_mutex_unlock(&s->lock);
        if (s->ticker_started) {
                pthread_join(s->ticker, NULL);
                s->ticker_started = false;
        }
        skills_waiters_expire(s, true);
}

void skills_free(Skills *s) {
        if (!s)
                return;
        skills_stop(s);
        skills_jobs_free(s);
        skill_index_free(s->index);
        for (size_t i = 0; i < s->n_busy; i++)
                free(s->busy[i]);
        free(s->busy);
        free(s->activator_url);
        free(s->embedding_model);
        free(s->chat_model);
        pthread_mutex_destroy(&s->lock);
        pthread_cond_destroy(&s->cond);
        free(s);
}
