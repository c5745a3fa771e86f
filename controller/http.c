/* controller/http.c: libmicrohttpd glue. libmicrohttpd calls us once with the
 * headers (we route, check sizes and authenticate there, before a byte of
 * body is read), then with each piece of body (kept up to the route's limit,
 * and within a budget shared by all connections), then once more to answer. */
#include "controller/http.h"

#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "controller/api.h"
#include "lib/util.h"

/* libmicrohttpd's own per-connection memory: larger than HTTP_HEADERS_MAX so
 * that we, not it, answer most oversized headers (in JSON). */
#define HTTP_MHD_MEMORY         (64u << 10)
#define HTTP_BODY_CHUNK         (16u << 10)
/* A body refused without a Content-Length is read and dropped up to this
 * many times its limit, so the client can read the answer; then we hang up. */
#define HTTP_DISCARD_FACTOR     4
/* A request refused from its headers (401, 403, 404, 405) whose body is at
 * most this big is read and dropped before the answer, so the connection
 * stays usable and the client reads the answer, not a reset; a bigger body
 * is not worth reading: answer at once and hang up. */
#define HTTP_DRAIN_MAX          (64u << 10)

struct HttpServer {
        struct MHD_Daemon *daemon;
        HttpConfig cfg;
};

static _Atomic size_t body_budget_used;

static uint64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

/* ---- responses ----------------------------------------------------------- */

static void response_clear(HttpResponse *resp) {
        json_decref(resp->body);
        free(resp->raw);
        *resp = (HttpResponse) {};
}

void http_reply_raw(HttpResponse *resp, unsigned status, const char *content_type, char *data, size_t len) {
        response_clear(resp);
        if (!data) {
                http_error(resp, 500, "internal", NULL, "out of memory");
                return;
        }
        resp->status = status;
        resp->raw = data;
        resp->raw_len = len;
        resp->content_type = content_type;
}

void http_reply_empty(HttpResponse *resp, unsigned status) {
        response_clear(resp);
        resp->status = status;
        resp->empty = true;
}

void http_defer(HttpRequest *req) {
        req->deferred = true;
        MHD_suspend_connection(req->conn);
}

void http_resume(HttpRequest *req, HttpResponse *resp) {
        req->deferred_resp = *resp;
        *resp = (HttpResponse) {};
        atomic_store(&req->resumed, true);
        MHD_resume_connection(req->conn);
}

void http_reply(HttpResponse *resp, unsigned status, json_t *body) {
        free(resp->raw);
        resp->raw = NULL;
        resp->empty = false;
        json_decref(resp->body);
        resp->status = body ? status : 500;
        resp->body = body;
}

void http_error(HttpResponse *resp, unsigned status, const char *type, const char *field,
                const char *fmt, ...) {
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        json_t *err = json_pack("{s:s, s:s}", "type", type, "message", msg);
        if (err && field && *field)
                json_object_set_new(err, "field", json_string(field));
        http_reply(resp, status, err ? json_pack("{s:o}", "error", err) : NULL);
}

/* JSON text plus a newline; NULL body or a failure gives a fixed error. */
static char *response_text(const json_t *body, size_t *ret_len) {
        static const char oom[] = "{\"error\":{\"type\":\"internal\",\"message\":\"out of memory\"}}\n";
        char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
        size_t n = text ? strlen(text) : 0;
        char *nl = text ? realloc(text, n + 2) : NULL;
        if (!nl) {
                free(text);
                *ret_len = sizeof oom - 1;
                return strdup(oom);
        }
        nl[n] = '\n';
        nl[n + 1] = 0;
        *ret_len = n + 1;
        return nl;
}

static enum MHD_Result http_send(HttpRequest *req, HttpResponse *resp) {
        size_t len = resp->raw ? resp->raw_len : 0;
        char *text = resp->raw ? TAKE_PTR(resp->raw) : resp->empty ? NULL : response_text(resp->body, &len);
        if (!text && !resp->empty)
                return MHD_NO;
        struct MHD_Response *r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
        if (!r) {
                free(text);
                return MHD_NO;
        }
        unsigned status = resp->body || text == NULL || resp->content_type ? resp->status : 500;
        if (text)
                MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                                        resp->content_type ? resp->content_type : "application/json");
        MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
        if (resp->allow)
                MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, resp->allow);
        if (status == 401)
                MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
        enum MHD_Result q = MHD_queue_response(req->conn, status, r);
        MHD_destroy_response(r);
        if (q == MHD_YES)
                req->status = status;
        json_decref(resp->body);
        resp->body = NULL;
        return q;
}

/* ---- requests ------------------------------------------------------------ */

const char *http_query(HttpRequest *req, const char *key) {
        return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *http_header(HttpRequest *req, const char *key) {
        return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, key);
}

static void budget_release(size_t n) {
        atomic_fetch_sub(&body_budget_used, n);
}

static bool budget_reserve(size_t n) {
        size_t cur = atomic_load(&body_budget_used);
        do {
                if (n > HTTP_BODY_BUDGET - cur)
                        return false;
        } while (!atomic_compare_exchange_weak(&body_budget_used, &cur, cur + n));
        return true;
}

static void request_free(HttpRequest *req) {
        if (!req)
                return;
        json_decref(req->pending.body);
        json_decref(req->deferred_resp.body);
        free(req->deferred_resp.raw);
        for (size_t i = 0; i < req->n_params; i++)
                free(req->params[i]);
        free(req->body);
        budget_release(req->reserved);
        free(req->path);
        auth_principal_clear(&req->principal);
        free(req);
}

/* Grow the body to hold len more bytes: Content-Length at once when known,
 * else doubling; -E2BIG over the route's limit, -EBUSY over the budget. */
static int body_reserve(HttpRequest *req, size_t len, size_t hint) {
        if (len > req->body_max - req->body_len)
                return -E2BIG;
        size_t need = req->body_len + len + 1;
        if (need <= req->body_cap)
                return 0;
        size_t cap = req->body_cap ? req->body_cap * 2 : HTTP_BODY_CHUNK;
        if (hint >= need - 1 && hint <= req->body_max)
                cap = hint + 1;
        if (cap < need)
                cap = need;
        if (cap > req->body_max + 1)
                cap = req->body_max + 1;
        if (!budget_reserve(cap - req->reserved))
                return -EBUSY;
        char *p = realloc(req->body, cap);
        if (!p) {
                budget_release(cap - req->reserved);
                return -ENOMEM;
        }
        req->body = p;
        req->reserved = req->body_cap = cap;
        return 0;
}

static uint64_t content_length(HttpRequest *req) {
        const char *cl = http_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (!cl)
                return 0;
        char *end;
        errno = 0;
        unsigned long long v = strtoull(cl, &end, 10);
        if (errno || end == cl || *end)
                return UINT64_MAX;
        return v;
}

/* Keep or drop one piece of body. Returns false to hang up. */
static bool body_take(HttpRequest *req, const char *data, size_t len) {
        if (req->refused == 0) {
                uint64_t cl = content_length(req);
                int r = body_reserve(req, len, cl > SIZE_MAX - 1 ? 0 : (size_t) cl);
                if (r == 0) {
                        memcpy(req->body + req->body_len, data, len);
                        req->body_len += len;
                        req->body[req->body_len] = 0;
                        return true;
                }
                req->refused = r == -E2BIG ? 413 : 503;
                free(req->body);
                req->body = NULL;
                budget_release(req->reserved);
                req->reserved = req->body_cap = req->body_len = 0;
        }
        req->discarded += len;
        return req->discarded / HTTP_DISCARD_FACTOR <= req->body_max + HTTP_BODY_CHUNK;
}

/* ---- routing --------------------------------------------------------------- */

typedef struct Segment {
        const char *p;
        size_t len;
} Segment;

/* Match path against pattern segment by segment; '*' takes one non-empty
 * segment into caps. Returns the number of captures, or -1. */
static int route_match(const char *pattern, const char *path, Segment caps[HTTP_PARAMS_MAX]) {
        int n = 0;
        while (*pattern == '/' && *path == '/') {
                pattern++, path++;
                size_t pl = strcspn(pattern, "/"), sl = strcspn(path, "/");
                if (pl == 1 && *pattern == '*') {
                        if (sl == 0 || sl > HTTP_SEGMENT_MAX || n == HTTP_PARAMS_MAX)
                                return -1;
                        caps[n++] = (Segment) { path, sl };
                } else if (pl != sl || memcmp(pattern, path, pl) != 0)
                        return -1;
                pattern += pl, path += sl;
        }
        return *pattern == 0 && *path == 0 ? n : -1;
}

/* Find the route; on none, a 404 or a 405 with the methods that would do. */
static int route_find(const HttpConfig *cfg, HttpRequest *req, const char *path, HttpResponse *resp) {
        char *allow = req->allow;
        Segment caps[HTTP_PARAMS_MAX];
        allow[0] = 0;
        for (size_t i = 0; i < cfg->n_routes; i++) {
                const HttpRoute *rt = &cfg->routes[i];
                int n = route_match(rt->pattern, path, caps);
                if (n < 0)
                        continue;
                if (strcmp(rt->method, req->method) != 0) {
                        size_t l = strlen(allow);
                        snprintf(allow + l, sizeof req->allow - l, "%s%s", l ? ", " : "", rt->method);
                        continue;
                }
                for (int k = 0; k < n; k++) {
                        req->params[k] = strndup(caps[k].p, caps[k].len);
                        if (!req->params[k])
                                return -ENOMEM;
                        req->n_params++;
                }
                req->route = rt;
                return 0;
        }
        if (allow[0]) {
                resp->allow = allow;
                http_error(resp, 405, "method_not_allowed", NULL, "%s is not allowed here (allowed: %s)",
                           req->method, allow);
        } else
                http_error(resp, 404, "not_found", NULL, "no such route");
        return -ENOENT;
}

/* ---- the libmicrohttpd callbacks -------------------------------------------- */

static enum MHD_Result count_bytes(void *cls, enum MHD_ValueKind kind _unused_, const char *key,
                                   const char *value) {
        size_t *sum = cls;
        *sum += strlen(key) + (value ? strlen(value) : 0) + 4;
        return MHD_YES;
}

static size_t request_head_size(HttpRequest *req) {
        size_t sum = strlen(req->method) + strlen(req->path) + 12;
        MHD_get_connection_values(req->conn, MHD_HEADER_KIND, count_bytes, &sum);
        MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, count_bytes, &sum);
        return sum;
}

/* Everything decided from the headers alone. Returns 0 to read the body,
 * or -1 with resp filled to answer at once. */
static int request_check_head(HttpServer *s, HttpRequest *req, HttpResponse *resp) {
        if (request_head_size(req) > HTTP_HEADERS_MAX) {
                http_error(resp, 431, "headers_too_large", NULL,
                           "the request line and headers exceed %u bytes", HTTP_HEADERS_MAX);
                return -1;
        }
        int r = route_find(&s->cfg, req, req->path, resp);
        if (r == -ENOMEM)
                http_error(resp, 500, "internal", NULL, "out of memory");
        if (r < 0)
                return -1;
        if (!api_guard(s->cfg.api, req, resp))
                return -1;
        req->body_max = req->route->body_max;
        uint64_t cl = content_length(req);
        if (cl == UINT64_MAX || cl > req->body_max) {
                http_error(resp, 413, "too_large", NULL, "the request body is over its limit of %zu bytes",
                           req->body_max);
                return -1;
        }
        if (cl > 0 && body_reserve(req, 0, (size_t) cl) < 0) {
                http_error(resp, 503, "unavailable", NULL, "too many request bodies in flight; retry");
                return -1;
        }
        return 0;
}

static HttpRequest *request_new(struct MHD_Connection *conn, const char *url, const char *method) {
        HttpRequest *req = calloc(1, sizeof *req);
        if (!req)
                return NULL;
        req->conn = conn;
        req->start_ns = now_ns();
        req->path = strdup(url);
        req->method = method;
        if (!req->path) {
                free(req);
                return NULL;
        }
        return req;
}

static enum MHD_Result http_answer(HttpServer *s, HttpRequest *req) {
        HttpResponse resp = {};
        if (req->refused == HTTP_REFUSED_PENDING) {
                resp = req->pending;
                req->pending = (HttpResponse) {};
        } else if (req->refused == 413)
                http_error(&resp, 413, "too_large", NULL, "the request body is over its limit of %zu bytes",
                           req->body_max);
        else if (req->refused)
                http_error(&resp, 503, "unavailable", NULL, "too many request bodies in flight; retry");
        else {
                req->route->handler(s->cfg.api, req, &resp);
                if (req->deferred)
                        return MHD_YES;         /* suspended: http_resume answers */
        }
        if (!resp.body && !resp.raw && !resp.empty && resp.status == 0)
                http_error(&resp, 500, "internal", NULL, "the handler gave no answer");
        return http_send(req, &resp);
}

/* Answer a request refused from its headers: at once, or after its small
 * body has been read and dropped (see HTTP_DRAIN_MAX). */
static enum MHD_Result request_refuse(HttpRequest *req, HttpResponse *resp) {
        uint64_t cl = content_length(req);
        bool body = cl > 0 || http_header(req, MHD_HTTP_HEADER_TRANSFER_ENCODING);
        if (resp->status == 413 || resp->status >= 500 || !body || cl > HTTP_DRAIN_MAX)
                return http_send(req, resp);
        req->pending = *resp;
        req->refused = HTTP_REFUSED_PENDING;
        req->body_max = HTTP_DRAIN_MAX;
        return MHD_YES;
}

static enum MHD_Result http_access(void *cls, struct MHD_Connection *conn, const char *url,
                                   const char *method, const char *version _unused_,
                                   const char *upload_data, size_t *upload_data_size, void **con_cls) {
        HttpServer *s = cls;
        HttpRequest *req = *con_cls;
        if (!req) {
                req = request_new(conn, url, method);
                if (!req)
                        return MHD_NO;
                *con_cls = req;
                HttpResponse resp = {};
                if (request_check_head(s, req, &resp) < 0)
                        return request_refuse(req, &resp);
                return MHD_YES;
        }
        if (req->deferred) {            /* a long poll, back from suspension */
                if (!atomic_load(&req->resumed))
                        return MHD_YES;
                HttpResponse resp = req->deferred_resp;
                req->deferred_resp = (HttpResponse) {};
                req->deferred = false;
                return http_send(req, &resp);
        }
        if (req->status != 0) {         /* answered already; drop the rest */
                *upload_data_size = 0;
                return MHD_YES;
        }
        if (*upload_data_size > 0) {
                bool keep = body_take(req, upload_data, *upload_data_size);
                *upload_data_size = 0;
                return keep ? MHD_YES : MHD_NO;
        }
        return http_answer(s, req);
}

/* One line per request: method, path (printable characters only), status,
 * milliseconds. Never a header, a query string or a body. */
static void http_completed(void *cls, struct MHD_Connection *conn _unused_, void **con_cls,
                           enum MHD_RequestTerminationCode toe _unused_) {
        HttpServer *s = cls;
        HttpRequest *req = *con_cls;
        if (!req)
                return;
        if (req->status && s->cfg.observe)
                s->cfg.observe(s->cfg.api, req->route, req->status);
        char path[128];
        size_t i;
        for (i = 0; req->path[i] && i < sizeof path - 1; i++)
                path[i] = req->path[i] > 0x20 && req->path[i] < 0x7f ? req->path[i] : '?';
        path[i] = 0;
        double ms = (double) (now_ns() - req->start_ns) / 1e6;
        if (req->status)
                fprintf(stderr, "fnbox-controller: %s %s %u %.1fms\n", req->method, path, req->status, ms);
        else
                fprintf(stderr, "fnbox-controller: %s %s - %.1fms (closed)\n", req->method, path, ms);
        request_free(req);
        *con_cls = NULL;
}

static void http_log(void *cls _unused_, const char *fmt, va_list ap) {
        char buf[512];
        vsnprintf(buf, sizeof buf, fmt, ap);
        buf[strcspn(buf, "\n")] = 0;
        fprintf(stderr, "fnbox-controller: http: %s\n", buf);
}

int http_server_start(const HttpConfig *cfg, HttpServer **ret) {
        HttpServer *s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        s->cfg = *cfg;
        s->daemon = MHD_start_daemon(
                MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME, 0, NULL, NULL,
                http_access, s,
                MHD_OPTION_EXTERNAL_LOGGER, http_log, NULL,
                MHD_OPTION_LISTEN_SOCKET, (MHD_socket) cfg->listen_fd,
                MHD_OPTION_THREAD_POOL_SIZE, (unsigned) HTTP_THREADS,
                MHD_OPTION_CONNECTION_LIMIT, (unsigned) HTTP_CONNECTIONS_MAX,
                MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) HTTP_TIMEOUT_S,
                MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) HTTP_MHD_MEMORY,
                MHD_OPTION_NOTIFY_COMPLETED, http_completed, s,
                MHD_OPTION_END);
        if (!s->daemon) {
                free(s);
                return -EIO;
        }
        *ret = s;
        return 0;
}

void http_server_stop(HttpServer *s) {
        if (!s)
                return;
        MHD_stop_daemon(s->daemon);
        free(s);
}
