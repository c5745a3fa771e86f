/* controller/api_llm.c: the LLM gateway's audit log. Activators post their
 * records in batches (POST /v1/internal/llm-audit, admin token, as their
 * other internal calls); every field is checked and a bad one answers 400
 * naming it ("records[3].alias"), nothing of that batch stored. People
 * read them back with GET /v1/llm/log (developers of the namespace),
 * newest first, filtered by namespace, alias and start time. */
#define _GNU_SOURCE
#include "controller/api.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "activator/gateway/policy.h"
#include "lib/manifest.h"
#include "lib/quantity.h"

#define LLM_TOKENS_MAX          1000000000000LL         /* per record */
#define LLM_LATENCY_MAX_MS      (7 * 86400000.0)        /* a week */
#define LLM_RULES_MAX           16
#define LLM_RULE_NAME_MAX       16
#define LLM_FIELD_PATH_MAX      64

/* sizes of the activator's record fields (activator/gateway/policy.h) */
#define REC_MAX(f) sizeof(((AuditRecord *) 0)->f)

/* ---- one record from JSON ----------------------------------------------------- */

typedef struct Check {
        HttpResponse *resp;
        size_t index;
        char path[LLM_FIELD_PATH_MAX];
} Check;

static int fail(Check *c, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(Check *c, const char *key, const char *fmt, ...) {
        char msg[256];
        va_list ap;
        snprintf(c->path, sizeof c->path, "records[%zu]%s%s", c->index, *key ? "." : "", key);
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        http_error(c->resp, 400, "bad_request", c->path, "%s: %s", c->path, msg);
        return -EINVAL;
}

static int64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A string of 0 (empty_ok) or 1 to max bytes without control characters;
 * with null_ok, null or absent is "". Returns a pointer into rec. */
static int text(Check *c, json_t *rec, const char *key, size_t max, bool empty_ok, bool null_ok, const char **ret) {
        json_t *v = json_object_get(rec, key);
        char what[96];
        snprintf(what, sizeof what, "%zu", max);
        if ((!v || json_is_null(v)) && null_ok) {
                *ret = "";
                return 0;
        }
        if (!json_is_string(v))
                return fail(c, key, "expected a string of at most %s bytes", what);
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        if (n > max)
                return fail(c, key, "longer than %s bytes", what);
        if (n == 0 && !empty_ok)
                return fail(c, key, "must not be empty%s", "");
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) s[i] < 0x20 || s[i] == 0x7f)
                        return fail(c, key, "control characters are not allowed%s", "");
        *ret = s;
        return 0;
}

static int integer(Check *c, json_t *rec, const char *key, int64_t min, int64_t max, int64_t *ret) {
        json_t *v = json_object_get(rec, key);
        char what[64];
        snprintf(what, sizeof what, "%" PRId64 " to %" PRId64, min, max);
        if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
                return fail(c, key, "expected an integer from %s", what);
        *ret = json_integer_value(v);
        return 0;
}

static int boolean(Check *c, json_t *rec, const char *key, bool *ret) {
        json_t *v = json_object_get(rec, key);
        if (!json_is_boolean(v))
                return fail(c, key, "expected true or false%s", "");
        *ret = json_is_true(v);
        return 0;
}

/* Milliseconds (a number, 0 to a week) as whole microseconds; with
 * null_ok, null or absent is -1. */
static int millis(Check *c, json_t *rec, const char *key, bool null_ok, int64_t *ret) {
        json_t *v = json_object_get(rec, key);
        if ((!v || json_is_null(v)) && null_ok) {
                *ret = -1;
                return 0;
        }
        double ms = json_number_value(v);
        if (!json_is_number(v) || !(ms >= 0 && ms <= LLM_LATENCY_MAX_MS))
                return fail(c, key, "expected milliseconds from 0 to a week%s", null_ok ? ", or null" : "");
        *ret = (int64_t) (ms * 1000 + 0.5);
        return 0;
}

/* "chain": an array of at most AUDIT_CHAIN_MAX upstream names, kept as
 * its compact JSON text (malloc'd). */
static int chain(Check *c, json_t *rec, char **ret) {
        json_t *v = json_object_get(rec, "chain"), *e;
        size_t i;
        char what[32];
        snprintf(what, sizeof what, "%d", AUDIT_CHAIN_MAX);
        if (!v || json_is_null(v))
                v = json_array();
        else if (!json_is_array(v) || json_array_size(v) > AUDIT_CHAIN_MAX)
                return fail(c, "chain", "expected an array of at most %s upstream names", what);
        else
                json_incref(v);
        json_array_foreach(v, i, e)
                if (!json_is_string(e) || json_string_length(e) == 0 ||
                    json_string_length(e) > REC_MAX(upstream)) {
                        json_decref(v);
                        return fail(c, "chain", "expected upstream names of 1 to %s bytes", "128");
                }
        *ret = json_dumps(v, JSON_COMPACT);
        json_decref(v);
        return *ret ? 0 : -ENOMEM;
}

/* "rules": names of data rules, stored as "email,card" (malloc'd). */
static int rules(Check *c, json_t *rec, char **ret) {
        json_t *v = json_object_get(rec, "rules"), *e;
        size_t i, n = 0;
        char buf[LLM_RULES_MAX * (LLM_RULE_NAME_MAX + 1) + 1] = "";
        if (v && !json_is_null(v) && (!json_is_array(v) || json_array_size(v) > LLM_RULES_MAX))
                return fail(c, "rules", "expected an array of at most %s rule names", "16");
        json_array_foreach(v, i, e) {
                const char *s = json_string_value(e);
                size_t len = s ? strlen(s) : 0;
                if (len == 0 || len > LLM_RULE_NAME_MAX || strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_") != len)
                        return fail(c, "rules", "expected rule names such as %s", "\"email\"");
                n += (size_t) snprintf(buf + n, sizeof buf - n, "%s%s", n ? "," : "", s);
        }
        *ret = strdup(buf);
        return *ret ? 0 : -ENOMEM;
}

static int body(Check *c, json_t *rec, const char *key, const char **ret) {
        json_t *v = json_object_get(rec, key);
        char what[32];
        snprintf(what, sizeof what, "%u", AUDIT_BODY_MAX);
        *ret = NULL;
        if (!v || json_is_null(v))
                return 0;
        if (!json_is_string(v) || json_string_length(v) > AUDIT_BODY_MAX)
                return fail(c, key, "expected a string of at most %s bytes", what);
        if (strlen(json_string_value(v)) != json_string_length(v))
                return fail(c, key, "NUL characters are not allowed%s", "");
        *ret = json_string_value(v);
        return 0;
}

/* An optional boolean: absent or null is false. */
static int flag(Check *c, json_t *rec, const char *key, bool *ret) {
        json_t *v = json_object_get(rec, key);
        *ret = false;
        if (!v || json_is_null(v))
                return 0;
        return boolean(c, rec, key, ret);
}

/* One record into a (its strings point into rec, but chain_json and rules,
 * which the caller frees). */
static int record_parse(Check *c, json_t *rec, StoreLlmAudit *a) {
        const char *ns = NULL;
        if (!json_is_object(rec))
                return fail(c, "", "expected an object%s", "");
        if (text(c, rec, "requestId", AUDIT_REQUEST_ID_MAX, false, false, (const char **) &a->request_id) < 0 ||
            integer(c, rec, "timeMs", 1, INT64_C(1) << 53, &a->at_ms) < 0 ||
            text(c, rec, "namespace", MANIFEST_NAME_MAX, false, false, &ns) < 0)
                return -EINVAL;
        if (!manifest_name_valid(ns))
                return fail(c, "namespace", "expected a DNS-1123 label%s", "");
        a->namespace_ = (char *) ns;
        if (text(c, rec, "caller", REC_MAX(caller), false, false, (const char **) &a->caller) < 0 ||
            text(c, rec, "endpoint", REC_MAX(endpoint), false, false, (const char **) &a->endpoint) < 0 ||
            text(c, rec, "alias", REC_MAX(alias), true, false, (const char **) &a->alias) < 0 ||
            text(c, rec, "upstream", REC_MAX(upstream), true, true, (const char **) &a->upstream) < 0 ||
            integer(c, rec, "tokensIn", 0, LLM_TOKENS_MAX, &a->tokens_in) < 0 ||
            integer(c, rec, "tokensOut", 0, LLM_TOKENS_MAX, &a->tokens_out) < 0 ||
            boolean(c, rec, "tokensCounted", &a->tokens_counted) < 0 ||
            millis(c, rec, "latencyMs", false, &a->latency_us) < 0 ||
            millis(c, rec, "ttftMs", true, &a->ttft_us) < 0 ||
            integer(c, rec, "status", 100, 599, &a->status) < 0 ||
            text(c, rec, "errorType", REC_MAX(error_type), true, true, (const char **) &a->error_type) < 0 ||
            boolean(c, rec, "stream", &a->stream) < 0 ||
            body(c, rec, "requestBody", (const char **) &a->request_body) < 0 ||
            body(c, rec, "responseBody", (const char **) &a->response_body) < 0 ||
            flag(c, rec, "requestBodyTruncated", &a->request_body_truncated) < 0 ||
            flag(c, rec, "responseBodyTruncated", &a->response_body_truncated) < 0)
                return -EINVAL;
        int r = chain(c, rec, &a->chain_json);
        if (r >= 0)
                r = rules(c, rec, &a->rules);
        return r;
}

static void records_free(StoreLlmAudit *a, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(a[i].chain_json);
                free(a[i].rules);
        }
        free(a);
}

void api_llm_audit_post(Api *api, HttpRequest *req, HttpResponse *resp) {
        _cleanup_json_ json_t *doc = NULL;
        if (api_body_object(req, &doc, resp) < 0)
                return;
        json_t *recs = json_object_get(doc, "records");
        if (!json_is_array(recs) || json_array_size(recs) > AUDIT_BATCH_MAX) {
                http_error(resp, 400, "bad_request", "records", "records: expected an array of at most %d records",
                           AUDIT_BATCH_MAX);
                return;
        }
        size_t n = json_array_size(recs);
        StoreLlmAudit *a = calloc(n ? n : 1, sizeof *a);
        if (!a) {
                http_error(resp, 500, "internal", NULL, "out of memory");
                return;
        }
        Check c = { .resp = resp };
        int r = 0;
        for (size_t i = 0; i < n && r >= 0; i++) {
                c.index = i;
                r = record_parse(&c, json_array_get(recs, i), &a[i]);
        }
        if (r == -ENOMEM)
                http_error(resp, 500, "internal", NULL, "out of memory");
        if (r < 0) {
                records_free(a, n);
                return;
        }
        r = store_llm_audit_add(api->store, a, n);
        records_free(a, n);
        if (r == -EINVAL) {
                http_error(resp, 400, "bad_request", "records", "records: %s", store_last_error(api->store));
                return;
        }
        if (r < 0) {
                api_store_error(api, resp, r, "llm audit");
                return;
        }
        http_reply(resp, 200, json_pack("{s:i, s:i}", "received", (int) n, "added", r));
}

/* ---- reading them ------------------------------------------------------------- */

static json_t *rules_json(const char *rules) {
        json_t *a = json_array();
        const char *p = rules;
        while (a && p && *p) {
                size_t n = strcspn(p, ",");
                json_array_append_new(a, json_stringn(p, n));
                p += n + (p[n] == ',');
        }
        return a;
}

static json_t *render_llm_audit(const StoreLlmAudit *a) {
        json_t *o = json_pack("{s:I, s:s, s:o, s:I, s:s, s:s, s:s, s:s, s:o, s:o, s:I, s:I, s:b, s:f, s:o, s:I,"
                              " s:o, s:o, s:b}",
                              "id", (json_int_t) a->id, "requestId", a->request_id, "time", api_time_json(a->at_ms),
                              "timeMs", (json_int_t) a->at_ms, "namespace", a->namespace_, "caller", a->caller,
                              "endpoint", a->endpoint, "alias", a->alias,
                              "upstream", *a->upstream ? json_string(a->upstream) : json_null(),
                              "chain", api_json_text(a->chain_json),
                              "tokensIn", (json_int_t) a->tokens_in, "tokensOut", (json_int_t) a->tokens_out,
                              "tokensCounted", a->tokens_counted, "latencyMs", a->latency_us / 1000.0,
                              "ttftMs", a->ttft_us >= 0 ? json_real(a->ttft_us / 1000.0) : json_null(),
                              "status", (json_int_t) a->status,
                              "errorType", *a->error_type ? json_string(a->error_type) : json_null(),
                              "rules", rules_json(a->rules), "stream", a->stream);
        if (o && a->request_body)
                json_object_set_new(o, "requestBody", json_string(a->request_body));
        if (o && a->request_body && a->request_body_truncated)
                json_object_set_new(o, "requestBodyTruncated", json_true());
        if (o && a->response_body)
                json_object_set_new(o, "responseBody", json_string(a->response_body));
        if (o && a->response_body && a->response_body_truncated)
                json_object_set_new(o, "responseBodyTruncated", json_true());
        return o;
}

/* ?since=: Unix milliseconds, or a duration back from now ("90s", "15m",
 * "2h", "7d"). */
static int since_param(HttpRequest *req, int64_t *ret, HttpResponse *resp) {
        const char *s = http_query(req, "since");
        uint64_t v = 0, ns = 0;
        *ret = 0;
        if (!s)
                return 0;
        size_t n = strlen(s);
        if (n > 0 && n < 20 && strspn(s, "0123456789") == n && quantity_parse_uint(s, &v) == 0) {
                *ret = (int64_t) v;
                return 0;
        }
        if (n > 1 && n < 20 && s[n - 1] == 'd') {
                char num[20];
                memcpy(num, s, n - 1);
                num[n - 1] = 0;
                if (quantity_parse_uint(num, &v) == 0 && v <= 36500) {
                        *ret = now_ms() - (int64_t) v * 86400000;
                        return 0;
                }
        } else if (quantity_parse_duration(s, &ns) == 0 && ns <= UINT64_C(36500) * 86400 * 1000000000) {
                *ret = now_ms() - (int64_t) (ns / 1000000);
                return 0;
        }
        http_error(resp, 400, "bad_request", "since",
                   "since: expected Unix milliseconds or a duration such as 15m, 2h or 7d");
        return -1;
}

static int before_param(HttpRequest *req, int64_t *ret, HttpResponse *resp) {
        const char *s = http_query(req, "before");
        uint64_t v = 0;
        *ret = 0;
        if (s && (quantity_parse_uint(s, &v) < 0 || v == 0 || v > INT64_MAX)) {
                http_error(resp, 400, "bad_request", "before", "before: expected a record id (the \"next\" of a page)");
                return -1;
        }
        *ret = (int64_t) v;
        return 0;
}

void api_llm_log(Api *api, HttpRequest *req, HttpResponse *resp) {
        const char *ns, *alias = http_query(req, "alias");
        StoreLlmAuditQuery q = {};
        if (api_namespace(req, TOKEN_ROLE_DEVELOPER, true, &ns, resp) < 0 || api_limit(req, &q.limit, resp) < 0 ||
            since_param(req, &q.since_ms, resp) < 0 || before_param(req, &q.before_id, resp) < 0)
                return;
        if (strcmp(ns, "*") == 0 && !auth_allows(&req->principal, TOKEN_ROLE_DEVELOPER, "*")) {
                http_error(resp, 403, "forbidden", "namespace",
                           "namespace=* needs a token for every namespace; name one of the token's");
                return;
        }
        if (alias && (strlen(alias) == 0 || strlen(alias) > REC_MAX(alias))) {
                http_error(resp, 400, "bad_request", "alias", "alias: expected 1 to %zu bytes", REC_MAX(alias));
                return;
        }
        q.namespace_ = strcmp(ns, "*") == 0 ? NULL : ns;
        q.alias = alias;
        StoreLlmAudit *items = NULL;
        size_t n = 0;
        int r = store_llm_audit_list(api->store, &q, &items, &n);
        if (r < 0) {
                api_store_error(api, resp, r, "llm log");
                return;
        }
        json_t *arr = json_array();
        for (size_t i = 0; arr && i < n; i++)
                if (json_array_append_new(arr, render_llm_audit(&items[i])) < 0) {
                        json_decref(arr);
                        arr = NULL;
                }
        json_t *o = arr ? json_pack("{s:o}", "items", arr) : NULL;
        if (o && n == q.limit) {
                char next[24];
                snprintf(next, sizeof next, "%" PRId64, items[n - 1].id);
                json_object_set_new(o, "next", json_string(next));
        }
        store_llm_audit_array_free(items, n);
        http_reply(resp, 200, o);
}

_Static_assert(API_LLM_AUDIT_BODY_MAX == AUDIT_BATCH_BYTES_MAX, "the route's body limit is the activator's batch limit");
