/* controller/api.c: the route table of docs/api.md, the guard that runs
 * before any body is read (401 for who, 403 for the route's role), and the
 * parameter, body and error helpers every handler shares. */
#include "controller/api.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "controller/cluster.h"
#include "controller/sessions.h"
#include "controller/skills.h"
#include "lib/manifest.h"

const HttpRoute api_routes[] = {
        { "GET",    "/healthz",                    api_healthz,         HTTP_PUBLIC,          0 },
        { "GET",    "/readyz",                     api_readyz,          HTTP_PUBLIC,          0 },
        { "GET",    "/metrics",                    api_metrics,         HTTP_PUBLIC,          0 },
        { "HEAD",   "/v1/artifacts/*",             api_artifact_head,   TOKEN_ROLE_DEVELOPER, 0 },
        { "GET",    "/v1/artifacts/*",             api_artifact_get,    TOKEN_ROLE_ADMIN,     0 },
        { "PUT",    "/v1/artifacts/*",             api_artifact_put,    TOKEN_ROLE_DEVELOPER, STORE_ARTIFACT_MAX },
        { "GET",    "/v1/functions",               api_functions_list,  TOKEN_ROLE_INVOKER,   0 },
        { "POST",   "/v1/functions",               api_function_deploy, TOKEN_ROLE_DEVELOPER, HTTP_JSON_MAX },
        { "GET",    "/v1/functions/*",             api_function_get,    TOKEN_ROLE_INVOKER,   0 },
        { "DELETE", "/v1/functions/*",             api_function_delete, TOKEN_ROLE_DEVELOPER, 0 },
        { "GET",    "/v1/functions/*/logs",        api_function_logs,   TOKEN_ROLE_DEVELOPER, 0 },
        { "GET",    "/v1/functions/*/revisions",   api_revisions_list,  TOKEN_ROLE_INVOKER,   0 },
        { "GET",    "/v1/functions/*/revisions/*", api_revision_get,    TOKEN_ROLE_INVOKER,   0 },
        { "GET",    "/v1/functions/*/traffic",     api_traffic_get,     TOKEN_ROLE_INVOKER,   0 },
        { "PUT",    "/v1/functions/*/traffic",     api_traffic_put,     TOKEN_ROLE_DEVELOPER, HTTP_JSON_MAX },
        { "GET",    "/v1/tokens",                  api_tokens_list,     TOKEN_ROLE_ADMIN,     0 },
        { "POST",   "/v1/tokens",                  api_token_create,    TOKEN_ROLE_ADMIN,     HTTP_JSON_MAX },
        { "DELETE", "/v1/tokens/*",                api_token_revoke,    TOKEN_ROLE_ADMIN,     0 },
        { "GET",    "/v1/nodes",                   api_nodes_list,      TOKEN_ROLE_ADMIN,     0 },
        /* the data plane (docs/internals.md): node agents and activators */
        { "PUT",    "/v1/nodes/*/status",          api_node_status,     TOKEN_ROLE_ADMIN,     CLUSTER_STATUS_MAX },
        { "GET",    "/v1/nodes/*/assignments",     api_node_assignments, TOKEN_ROLE_ADMIN,    0 },
        { "GET",    "/v1/routes",                  api_routes_get,      TOKEN_ROLE_ADMIN,     0 },
        { "POST",   "/v1/activator/stats",         api_activator_stats, TOKEN_ROLE_ADMIN,     HTTP_JSON_MAX },
        { "POST",   "/v1/activator/poke",          api_activator_poke,  TOKEN_ROLE_ADMIN,     HTTP_JSON_MAX },
        /* the LLM gateway's audit log (controller/api_llm.c) */
        { "POST",   "/v1/internal/llm-audit",      api_llm_audit_post,  TOKEN_ROLE_ADMIN,     API_LLM_AUDIT_BODY_MAX },
        { "GET",    "/v1/llm/log",                 api_llm_log,         TOKEN_ROLE_DEVELOPER, 0 },
        /* the skill library (controller/api_skills.c) */
        { "GET",    "/v1/skills",                  api_skills_list,     TOKEN_ROLE_INVOKER,   0 },
        { "GET",    "/v1/skills/search",           api_skills_search,   TOKEN_ROLE_INVOKER,   0 },
        { "POST",   "/v1/skills/generate",         api_skill_generate,  TOKEN_ROLE_DEVELOPER, SKILLS_GENERATE_BODY_MAX },
        { "GET",    "/v1/skills/jobs/*",           api_skill_job,       TOKEN_ROLE_DEVELOPER, 0 },
        { "GET",    "/v1/skills/*",                api_skill_get,       TOKEN_ROLE_INVOKER,   0 },
        { "GET",    "/v1/skills/*/versions",       api_skill_versions,  TOKEN_ROLE_INVOKER,   0 },
        { "POST",   "/v1/skills/*/promote",        api_skill_promote,   TOKEN_ROLE_DEVELOPER, HTTP_JSON_MAX },
        { "POST",   "/v1/skills/*/deprecate",      api_skill_deprecate, TOKEN_ROLE_DEVELOPER, HTTP_JSON_MAX },
        /* sessions: runs with input files, kept and replayed (controller/api_sessions.c) */
        { "POST",   "/v1/sessions",                api_session_create,  TOKEN_ROLE_INVOKER,   SESSION_INPUT_MAX },
        { "GET",    "/v1/sessions",                api_sessions_list,   TOKEN_ROLE_INVOKER,   0 },
        { "GET",    "/v1/sessions/*",              api_session_get,     TOKEN_ROLE_INVOKER,   0 },
        { "DELETE", "/v1/sessions/*",              api_session_delete,  TOKEN_ROLE_DEVELOPER, 0 },
        { "GET",    "/v1/sessions/*/*",            api_session_blob,    TOKEN_ROLE_INVOKER,   0 },
        { "POST",   "/v1/sessions/*/replay",       api_session_replay,  TOKEN_ROLE_INVOKER,   0 },
        { "POST",   "/v1/sessions/*/start",        api_session_start,   TOKEN_ROLE_ADMIN,     HTTP_JSON_MAX },
        { "POST",   "/v1/sessions/*/finish",       api_session_finish,  TOKEN_ROLE_ADMIN,     SESSION_FINISH_MAX },
};
const size_t api_n_routes = sizeof api_routes / sizeof api_routes[0];

static bool is_unauthenticated(int r) {
        return r == -ENOKEY || r == -EBADMSG || r == -EKEYREJECTED || r == -EKEYREVOKED;
}

bool api_guard(Api *api, HttpRequest *req, HttpResponse *resp) {
        int min_role = req->route->min_role;
        if (min_role == HTTP_PUBLIC)
                return true;
        int r = auth_authenticate(api->store, http_header(req, "Authorization"), &req->principal);
        if (is_unauthenticated(r)) {
                http_error(resp, 401, "unauthenticated", NULL, "%s", auth_error_message(r));
                return false;
        }
        if (r < 0) {
                api_store_error(api, resp, r, "token lookup");
                return false;
        }
        if (!auth_allows(&req->principal, (TokenRole) min_role, NULL)) {
                http_error(resp, 403, "forbidden", NULL, "this needs the %s role; the token is %s",
                           token_role_to_string((TokenRole) min_role),
                           token_role_to_string(req->principal.role));
                return false;
        }
        return true;
}

/* ---- parameters ---------------------------------------------------------------- */

int api_namespace(HttpRequest *req, TokenRole min_role, bool allow_all, const char **ret,
                  HttpResponse *resp) {
        const char *ns = http_query(req, "namespace");
        if (!ns)
                ns = "default";
        if (strcmp(ns, "*") == 0) {
                if (!allow_all) {
                        http_error(resp, 400, "bad_request", "namespace", "namespace=* only lists");
                        return -1;
                }
                *ret = ns;
                return 0;
        }
        if (!manifest_name_valid(ns)) {
                http_error(resp, 400, "bad_request", "namespace",
                           "namespace: expected a DNS-1123 label such as team-a");
                return -1;
        }
        if (!auth_allows(&req->principal, min_role, ns)) {
                http_error(resp, 403, "forbidden", "namespace", "this token may not %s in namespace %s",
                           min_role >= TOKEN_ROLE_DEVELOPER ? "make changes" : "read", ns);
                return -1;
        }
        *ret = ns;
        return 0;
}

int api_body_object(HttpRequest *req, json_t **ret, HttpResponse *resp) {
        json_error_t err;
        if (req->body_len == 0) {
                http_error(resp, 400, "bad_request", NULL, "this request needs a JSON body");
                return -1;
        }
        json_t *j = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &err);
        if (!j) {
                http_error(resp, 400, "bad_request", NULL, "malformed JSON at line %d column %d: %s",
                           err.line, err.column, err.text);
                return -1;
        }
        if (!json_is_object(j)) {
                json_decref(j);
                http_error(resp, 400, "bad_request", NULL, "the body must be a JSON object");
                return -1;
        }
        *ret = j;
        return 0;
}

/* A non-negative decimal integer that fits in int64_t, or -1. */
static int64_t parse_count(const char *s) {
        if (!s || !*s || strlen(s) > 18 || strspn(s, "0123456789") != strlen(s))
                return -1;
        return strtoll(s, NULL, 10);
}

int api_limit(HttpRequest *req, size_t *ret, HttpResponse *resp) {
        const char *s = http_query(req, "limit");
        int64_t v = s ? parse_count(s) : API_LIMIT_DEFAULT;
        if (v < 1 || v > STORE_LIST_MAX) {
                http_error(resp, 400, "bad_request", "limit", "limit: expected 1 to %d", STORE_LIST_MAX);
                return -1;
        }
        *ret = (size_t) v;
        return 0;
}

int api_resource_version_json(const json_t *v, int64_t *ret, HttpResponse *resp) {
        if (!v || json_is_null(v)) {
                *ret = -1;
                return 0;
        }
        if (!json_is_integer(v) || json_integer_value(v) < 0) {
                http_error(resp, 400, "bad_request", "resourceVersion",
                           "resourceVersion: expected an integer >= 0");
                return -1;
        }
        *ret = json_integer_value(v);
        return 0;
}

int api_resource_version_query(HttpRequest *req, int64_t *ret, HttpResponse *resp) {
        const char *s = http_query(req, "resourceVersion");
        int64_t v = s ? parse_count(s) : -1;
        if (s && v < 0) {
                http_error(resp, 400, "bad_request", "resourceVersion",
                           "resourceVersion: expected an integer >= 0");
                return -1;
        }
        *ret = v;
        return 0;
}

int api_name_param(HttpRequest *req, size_t i, const char *what, const char **ret, HttpResponse *resp) {
        const char *s = i < req->n_params ? req->params[i] : NULL;
        if (!s || !manifest_name_valid(s)) {
                http_error(resp, 400, "bad_request", NULL, "bad path: expected a %s name (DNS-1123 label)",
                           what);
                return -1;
        }
        *ret = s;
        return 0;
}

void api_store_error(Api *api, HttpResponse *resp, int r, const char *what) {
        switch (r) {
        case -ENOENT:
                http_error(resp, 404, "not_found", NULL, "%s: not found", what);
                return;
        case -ESTALE:
                http_error(resp, 409, "conflict", "resourceVersion",
                           "%s: resourceVersion does not match; re-read and retry", what);
                return;
        case -E2BIG:
                http_error(resp, 413, "too_large", NULL, "%s: over the store's size limit", what);
                return;
        default:
                fprintf(stderr, "fnbox-controller: store: %s: %s (%s)\n", what, strerror(-r),
                        store_last_error(api->store) ? store_last_error(api->store) : "");
                http_error(resp, 500, "internal", NULL, "%s: the store failed", what);
        }
}

/* ---- JSON and names --------------------------------------------------------------- */

void api_time_format(int64_t ms, char buf[32]) {
        time_t t = (time_t) (ms / 1000);
        struct tm tm;
        if (ms < 0 || !gmtime_r(&t, &tm)) {
                snprintf(buf, 32, "1970-01-01T00:00:00.000Z");
                return;
        }
        size_t n = strftime(buf, 32, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(buf + n, 32 - n, ".%03dZ", (int) (ms % 1000));
}

json_t *api_time_json(int64_t ms) {
        char buf[32];
        api_time_format(ms, buf);
        return json_string(buf);
}

json_t *api_json_text(const char *text) {
        json_t *j = text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
        return j ? j : json_null();
}

char *api_revision_name(const char *function, int64_t number, char *buf, size_t size) {
        snprintf(buf, size, "%s-%05" PRId64, function, number);
        return buf;
}

int64_t api_revision_number(const char *function, const char *name) {
        size_t fl = strlen(function);
        if (!name || strncmp(name, function, fl) != 0 || name[fl] != '-')
                return -1;
        int64_t n = parse_count(name + fl + 1);
        char canon[API_REVISION_NAME_MAX];
        if (n < 1 || strcmp(api_revision_name(function, n, canon, sizeof canon), name) != 0)
                return -1;
        return n;
}

const char *api_bearer(HttpRequest *req) {
        const char *h = http_header(req, "Authorization");
        if (!h || strncasecmp(h, "Bearer ", 7) != 0)
                return NULL;
        h += 7;
        while (*h == ' ')
                h++;
        return *h ? h : NULL;
}

void api_by(HttpRequest *req, char *buf, size_t size) {
        snprintf(buf, size, "token:%s", req->principal.id);
}
