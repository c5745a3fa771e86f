/* controller/api.h: the REST API of docs/api.md: the route table, the
 * handlers (one file per resource), and what they share: namespace and
 * pagination parameters, JSON bodies, and store errors as HTTP errors. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "controller/http.h"
#include "lib/store.h"
#include "lib/util.h"

#define API_LIMIT_DEFAULT       100
#define API_TOKEN_NAMESPACES_MAX 64
#define API_DESCRIPTION_MAX     256

struct Cluster;

typedef struct Api {
        Store *store;
        struct Cluster *cluster;        /* the data plane (controller/cluster.h) */
        struct Skills *skills;          /* the skill library (controller/skills.h) */
        int64_t session_retention_ms;   /* how long sessions are kept, at most (--session-retention) */
} Api;

extern const HttpRoute api_routes[];
extern const size_t api_n_routes;

/* Authenticate (401) and check the route's role (403) before any body is
 * read. Returns false with resp filled. */
bool api_guard(Api *api, HttpRequest *req, HttpResponse *resp);

/* ---- shared by the handlers ------------------------------------------------ */

static inline void json_unrefp(json_t **j) {
        json_decref(*j);
}
#define _cleanup_json_ __attribute__((cleanup(json_unrefp)))

/* The namespace query parameter (default "default"), validated; "*" only
 * when allow_all. Then whether the caller may act there with min_role
 * (403). Returns 0, or -1 with resp filled. */
int api_namespace(HttpRequest *req, TokenRole min_role, bool allow_all, const char **ret,
                  HttpResponse *resp);
/* The body as a JSON object (400 otherwise). */
int api_body_object(HttpRequest *req, json_t **ret, HttpResponse *resp);
/* ?limit= (1..STORE_LIST_MAX, default API_LIMIT_DEFAULT). */
int api_limit(HttpRequest *req, size_t *ret, HttpResponse *resp);
/* A resourceVersion from a JSON value or query text: -1 when absent. */
int api_resource_version_json(const json_t *v, int64_t *ret, HttpResponse *resp);
int api_resource_version_query(HttpRequest *req, int64_t *ret, HttpResponse *resp);
/* ?after=V&waitMs=W of a long poll (waitMs at most CLUSTER_WAIT_MAX_MS). */
int api_long_poll_params(HttpRequest *req, uint64_t *ret_after, int64_t *ret_wait, HttpResponse *resp);
/* A path segment that must be a DNS-1123 name (400 otherwise). */
int api_name_param(HttpRequest *req, size_t i, const char *what, const char **ret, HttpResponse *resp);
/* Map a store error to 404 / 409 / 500 (logging the 500s once). */
void api_store_error(Api *api, HttpResponse *resp, int r, const char *what);

/* The caller's bearer token as sent ("fnb_..."), for calls made on its
 * behalf (skill jobs, promotions, replays); NULL without one. */
const char *api_bearer(HttpRequest *req);
/* "token:ID" of the caller: who created, promoted, replayed. */
void api_by(HttpRequest *req, char *buf, size_t size);

/* "2026-11-21T10:00:00.000Z" */
void api_time_format(int64_t ms, char buf[32]);
json_t *api_time_json(int64_t ms);
/* Parse stored JSON text; JSON null when it is missing or unreadable. */
json_t *api_json_text(const char *text);
/* NAME-%05d into buf; returns buf. */
char *api_revision_name(const char *function, int64_t number, char *buf, size_t size);
#define API_REVISION_NAME_MAX 96
/* The number of FUNCTION-NNNNN, or -1 when name is not a revision of function. */
int64_t api_revision_number(const char *function, const char *name);

/* ---- JSON forms of stored objects (render.c) ------------------------------- */

json_t *render_function(const StoreFunction *f);
json_t *render_traffic(const StoreFunction *f, const char *traffic_json);
json_t *render_revision(const StoreRevision *r);
/* A stored traffic entry: {"revision": R | "latestRevision": true, "percent", "tag"?}. */
json_t *traffic_entry_json(const char *revision, unsigned percent, const char *tag);

/* ---- deploying (api_deploy.c) ----------------------------------------------- */

struct Manifest;
/* Functions named so belong to the skill library (controller/skills.c):
 * POST /v1/functions refuses them. */
#define API_SKILL_PREFIX        "skill-"
/* Deploy one parsed manifest into ns (the caller has checked the role):
 * plan, artifact and traffic checks, store_deploy, the cluster told.
 * 0, or -1 with resp filled. */
int api_deploy_apply(Api *api, const struct Manifest *m, const char *ns, const char *code_digest,
                     int64_t expected_version, StoreDeployResult *ret, HttpResponse *resp);

/* ---- handlers ---------------------------------------------------------------- */

void api_healthz(Api *api, HttpRequest *req, HttpResponse *resp);
void api_readyz(Api *api, HttpRequest *req, HttpResponse *resp);
void api_metrics(Api *api, HttpRequest *req, HttpResponse *resp);
void api_nodes_list(Api *api, HttpRequest *req, HttpResponse *resp);
void api_node_status(Api *api, HttpRequest *req, HttpResponse *resp);
void api_node_assignments(Api *api, HttpRequest *req, HttpResponse *resp);
void api_routes_get(Api *api, HttpRequest *req, HttpResponse *resp);
void api_activator_stats(Api *api, HttpRequest *req, HttpResponse *resp);
void api_activator_poke(Api *api, HttpRequest *req, HttpResponse *resp);

void api_artifact_head(Api *api, HttpRequest *req, HttpResponse *resp);
void api_artifact_get(Api *api, HttpRequest *req, HttpResponse *resp);
void api_artifact_put(Api *api, HttpRequest *req, HttpResponse *resp);

void api_functions_list(Api *api, HttpRequest *req, HttpResponse *resp);
void api_function_deploy(Api *api, HttpRequest *req, HttpResponse *resp);
void api_function_get(Api *api, HttpRequest *req, HttpResponse *resp);
void api_function_delete(Api *api, HttpRequest *req, HttpResponse *resp);
void api_function_logs(Api *api, HttpRequest *req, HttpResponse *resp);
void api_revisions_list(Api *api, HttpRequest *req, HttpResponse *resp);
void api_revision_get(Api *api, HttpRequest *req, HttpResponse *resp);
void api_traffic_get(Api *api, HttpRequest *req, HttpResponse *resp);
void api_traffic_put(Api *api, HttpRequest *req, HttpResponse *resp);

/* a batch of audit records (AUDIT_BATCH_BYTES_MAX of activator/gateway/policy.h) */
#define API_LLM_AUDIT_BODY_MAX  (4u << 20)
void api_llm_audit_post(Api *api, HttpRequest *req, HttpResponse *resp);
void api_llm_log(Api *api, HttpRequest *req, HttpResponse *resp);

void api_tokens_list(Api *api, HttpRequest *req, HttpResponse *resp);
void api_token_create(Api *api, HttpRequest *req, HttpResponse *resp);
void api_token_revoke(Api *api, HttpRequest *req, HttpResponse *resp);

/* sessions (controller/api_sessions.c) */
void api_session_create(Api *api, HttpRequest *req, HttpResponse *resp);
void api_sessions_list(Api *api, HttpRequest *req, HttpResponse *resp);
void api_session_get(Api *api, HttpRequest *req, HttpResponse *resp);
void api_session_blob(Api *api, HttpRequest *req, HttpResponse *resp);
void api_session_delete(Api *api, HttpRequest *req, HttpResponse *resp);
void api_session_start(Api *api, HttpRequest *req, HttpResponse *resp);
void api_session_finish(Api *api, HttpRequest *req, HttpResponse *resp);
void api_session_replay(Api *api, HttpRequest *req, HttpResponse *resp);
