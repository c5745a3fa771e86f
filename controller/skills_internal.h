/* controller/skills_internal.h: what the skill library's files share:
 * skills.c (the library: workers, the ticker, the index and route table
 * kept in step with the store, promotion), skills_run.c (HTTP to the
 * activator: a round's tests, the gateway), skills_job.c (generate jobs),
 * api_skills.c (REST). */
#pragma once

#include <pthread.h>
#include <stdatomic.h>

#include "controller/skills.h"
#include "controller/skills_prompt.h"
#include "controller/skills_search.h"
#include "lib/artifact.h"

#define SKILLS_HTTP_BODY_MAX    (4u << 20)      /* an answer from the activator */
#define SKILLS_EVIDENCE_TEXT    2048            /* bytes of input, expected, actual kept per result */
#define SKILLS_STDERR_KEPT      4096
#define SKILLS_COLD_START_MS    60000           /* a test call's allowance beyond the box's timeout */
#define SKILLS_LLM_TIMEOUT_MS   300000
#define SKILLS_EMBED_TIMEOUT_MS 5000
#define SKILLS_TIMEOUT_DEFAULT_MS 10000
#define SKILLS_MEMORY_DEFAULT   (256LL << 20)
#define SKILLS_WAIT_MAX_S       30
#define SKILLS_SESSION_KEEP_MS  (86400000LL)            /* a test's session (input files) is kept a day */
#define SKILLS_INPUT_MAX        (8u << 20)              /* a generate job's input archive */

typedef struct SkillJob SkillJob;
typedef struct SkillWaiter SkillWaiter;

struct Skills {
        Api *api;
        char *activator_url;            /* without a trailing '/' */
        char *embedding_model, *chat_model;

        pthread_mutex_t lock;           /* everything below */
        pthread_cond_t cond;            /* a worker ended; the ticker's sleep */
        unsigned workers;               /* threads running jobs or promotions */
        SkillJob *jobs;                 /* newest first */
        SkillWaiter *waiters;
        SkillIndex *index;              /* the promoted skills, rebuilt when the store's stamp moves */
        int64_t stamp;                  /* the store's skill stamp the index and routes were built from */
        bool synced;
        char **busy;                    /* "NS/NAME" of the skills a worker is changing */
        size_t n_busy;
        pthread_t ticker;
        bool ticker_started;
        atomic_bool stopping;
};

/* ---- workers (skills.c) ------------------------------------------------------ */

/* Run fn(arg) on a thread of its own, or -EBUSY when SKILLS_WORKERS run. */
int skills_worker_start(Skills *s, void *(*fn)(void *), void *arg);
/* Claim "NS/NAME" for one worker; -EBUSY when another has it. */
int skills_claim(Skills *s, const char *ns, const char *name);
void skills_release(Skills *s, const char *ns, const char *name);
/* Read the library from the store again now (after this controller changed it). */
void skills_sync_now(Skills *s);
/* The best skills for text (top n) as SkillRefs in refs (strings owned by
 * the caller: free with skill_refs_free). */
size_t skills_top(Skills *s, const char *ns, const char *text, const char *token, SkillRef *refs, size_t n);
void skill_refs_free(SkillRef *refs, size_t n);

/* Promote version (0: the newest candidate is looked up by the caller) of
 * ns/name on a worker: the request is deferred and answered when done
 * (0), or -EBUSY / -ENOMEM with nothing deferred. */
int skills_promote_start(Skills *s, HttpRequest *req, const char *ns, const char *name, int64_t version,
                         const char *token, const char *by);

/* ---- the data plane, over HTTP (skills_run.c) -------------------------------- */

typedef struct SkillsAnswer {
        long status;                    /* 0: no answer (error holds why) */
        char *body;
        size_t len;
        char upstream[128];             /* X-Fnbox-Upstream */
        char error[256];
} SkillsAnswer;
void skills_answer_clear(SkillsAnswer *a);
/* Why a gateway call failed: no answer, or its status and (OpenAI- or
 * fnbox-shaped) error message. */
void skills_answer_why(const Skills *s, const SkillsAnswer *a, char *why, size_t why_len);

/* POST a JSON body to the activator's path as token, X-Fnbox-Namespace: ns. */
int skills_post_json(Skills *s, const char *path, const char *token, const char *ns, const json_t *body,
                     long timeout_ms, SkillsAnswer *ret);
/* POST body to the activator's path as token, with X-Fnbox-Session:
 * session when set (a replay, a test with input files). */
int skills_call(Skills *s, const char *path, const char *token, const char *session, const void *body, size_t len,
                long timeout_ms, SkillsAnswer *ret);
/* The embedding of text from the gateway (embedding_model), as a malloc'd
 * float array; -ENOTSUP without a model. */
int skills_embed(Skills *s, const char *token, const char *ns, const char *text, float **ret, size_t *ret_dim,
                 char *why, size_t why_len);

typedef struct SkillRun {
        const char *ns, *name, *runtime;
        const char *code;
        size_t code_len;
        const char *token;              /* the bearer token the calls carry */
        const SkillTest *tests;
        size_t n_tests;
        int64_t timeout_ms, memory_bytes;
        const char *label;              /* [a-z0-9-]: the run's request ids and revision marker */
        const void *input;              /* input files (a ustar archive) at /input in every test: each */
        size_t input_len;               /* test is a session then (0: none) */
        const char *by;                 /* who the sessions are created by */
} SkillRun;

/* The file name a runtime's single-file box has (main.py, index.js, main.sh), NULL for another runtime. */
const char *skills_entry_file(const char *runtime);
/* Store run->code as an artifact: its digest. */
int skills_code_artifact(Skills *s, const char *runtime, const char *code, size_t len,
                         char ret_digest[ARTIFACT_DIGEST_LEN]);
/* Deploy code (an artifact) as function fn in ns: a manifest with the
 * runtime, limits and, when tag is set, traffic 100% to the new revision
 * under that tag (*ret_revision: its number). why on error. */
int skills_deploy(Skills *s, const char *ns, const char *fn, const char *runtime, const char *digest,
                  int64_t timeout_ms, int64_t memory_bytes, const char *marker, bool tagged,
                  int64_t *ret_revision, char *why, size_t why_len);
/* Deploy the code as a new revision of skill-NAME-try and run every test
 * through the activator. 0 with the results (RESULT objects, docs/skills.md)
 * and how many passed, or -errno when the tests could not run (why). */
int skills_run_tests(Skills *s, const SkillRun *run, json_t **ret_results, size_t *ret_passed,
                     char ret_digest[ARTIFACT_DIGEST_LEN], char *why, size_t why_len);

/* A JSON string of at most max bytes of text, cut at a character; bytes
 * that are not UTF-8 become '?'. */
json_t *skills_json_clipped(const char *text, size_t len, size_t max);

/* ---- jobs (skills_job.c) ----------------------------------------------------- */

typedef struct SkillJobSpec {
        const char *ns, *name, *task, *runtime, *model, *token, *by;
        const json_t *examples;         /* [{"input", "output"}] */
        unsigned rounds;
        int64_t timeout_ms, memory_bytes;
        const void *input;              /* input files (ustar) every test gets at /input; NULL: none */
        size_t input_len;
        const char *input_digest;       /* its digest: a stored artifact */
} SkillJobSpec;

/* Start a generate job: 0 with its JSON, -EBUSY when the workers are busy. */
int skills_job_start(Skills *s, const SkillJobSpec *spec, json_t **ret);
/* The job's JSON when ns may see it: -ENOENT otherwise. */
int skills_job_get(Skills *s, const char *id, json_t **ret, char *ret_ns, size_t ns_size, uint64_t *ret_changes);
/* Answer req with the job's JSON once it changes past `changes`, or after
 * wait_s; 0 (deferred), or -ENOENT. */
int skills_job_wait(Skills *s, const char *id, uint64_t changes, int wait_s, HttpRequest *req);
/* Called by the ticker: answer the waiters that are due (or all, on stop). */
void skills_waiters_expire(Skills *s, bool all);
void skills_jobs_free(Skills *s);

/* ---- versions as JSON (api_skills.c) ---------------------------------------- */

json_t *skills_render_version(const StoreSkillVersion *v, bool full);
