/* controller/skills.h: the skill library (docs/skills.md). A skill version
 * is stored (lib/store.h) with its code, tests and evidence; the library
 * runs code only through the data plane: a round's code becomes a revision
 * of the function skill-NAME-try and every test is one call to it through
 * the activator (one fresh jail each), with the bearer token of the user
 * who asked. A promoted version N is also the function skill-NAME-vN,
 * which the activator serves at /skills/NAME@N (and /skills/NAME for the
 * newest promoted one: the route table's "skills").
 *
 * Work that takes longer than a request (a generate job, a promotion's
 * re-run of the tests) runs on a thread of its own, at most
 * SKILLS_WORKERS at once. A ticker thread follows the store (the search
 * index and the route table's skills, so that several controllers on one
 * PostgreSQL agree) and answers long polls whose time is up. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "controller/api.h"

#define SKILL_NAME_MAX          40
#define SKILL_VERSION_MAX       999999999999999LL   /* 15 digits, as the activator reads NAME@N */
#define SKILL_ROUNDS_DEFAULT    4
#define SKILL_ROUNDS_MAX        10
#define SKILL_EXAMPLES_MAX      20
#define SKILLS_WORKERS          4       /* jobs and promotions running at once */
#define SKILLS_GENERATE_BODY_MAX (12u << 20) /* a generate body: input files come base64 in it (8 MiB at most) */
#define SKILLS_JOBS_KEPT        64      /* finished jobs kept for their pollers */
#define SKILLS_TEST_PARALLEL    4       /* test calls in flight per run */
#define SKILLS_SEARCH_MAX       50      /* ?limit= of a search */

typedef struct Skills Skills;

typedef struct SkillsConfig {
        const char *activator_url;      /* where tests, the gateway and embeddings are called */
        const char *embedding_model;    /* NULL or "": lexical search only */
        const char *chat_model;         /* the default --model of generate */
} SkillsConfig;

int skills_new(Api *api, const SkillsConfig *cfg, Skills **ret);
/* Reads the library once, then starts the ticker. */
int skills_start(Skills *s);
/* Cancels the jobs, waits for every worker, answers every long poll. */
void skills_stop(Skills *s);
void skills_free(Skills *s);

/* True for a skill name: 1 to SKILL_NAME_MAX of [a-z0-9-], a DNS label. */
bool skill_name_valid(const char *s);

/* ---- the REST handlers (controller/api_skills.c) ---------------------------- */

void api_skill_generate(Api *api, HttpRequest *req, HttpResponse *resp);
void api_skill_job(Api *api, HttpRequest *req, HttpResponse *resp);
void api_skills_list(Api *api, HttpRequest *req, HttpResponse *resp);
void api_skills_search(Api *api, HttpRequest *req, HttpResponse *resp);
void api_skill_get(Api *api, HttpRequest *req, HttpResponse *resp);
void api_skill_versions(Api *api, HttpRequest *req, HttpResponse *resp);
void api_skill_promote(Api *api, HttpRequest *req, HttpResponse *resp);
void api_skill_deprecate(Api *api, HttpRequest *req, HttpResponse *resp);
