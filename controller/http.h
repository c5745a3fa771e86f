/* controller/http.h: the controller's HTTP server on libmicrohttpd: a route
 * table, authentication before any body is read, bounded request bodies,
 * header limits, JSON responses in one error shape, one log line per
 * request. Handlers never see libmicrohttpd. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "controller/auth.h"

#define HTTP_HEADERS_MAX        (16u << 10)     /* request line + headers */
#define HTTP_JSON_MAX           (1u << 20)      /* JSON request bodies */
#define HTTP_BODY_BUDGET        (256u << 20)    /* all bodies in memory at once */
#define HTTP_CONNECTIONS_MAX    64
#define HTTP_TIMEOUT_S          30
#define HTTP_THREADS            4
#define HTTP_PARAMS_MAX         4               /* '*' segments in a route */
#define HTTP_SEGMENT_MAX        256             /* bytes of one path segment */

struct Api;
typedef struct HttpRequest HttpRequest;
typedef struct HttpServer HttpServer;

/* What a handler answers: a status and a JSON body (owned; NULL: none),
 * or bytes of another type (raw, owned), or nothing at all (empty: 204). */
typedef struct HttpResponse {
        unsigned status;
        json_t *body;
        const char *allow;      /* the Allow header of a 405 */
        char *raw;              /* malloc'd; sent as is with content_type */
        size_t raw_len;
        const char *content_type;
        bool empty;
} HttpResponse;

typedef void (*HttpHandler)(struct Api *api, HttpRequest *req, HttpResponse *resp);

/* "*" in a pattern matches one non-empty path segment, handed to the
 * handler in req->params. */
typedef struct HttpRoute {
        const char *method;
        const char *pattern;
        HttpHandler handler;
        int min_role;           /* a TokenRole, or HTTP_PUBLIC */
        size_t body_max;        /* 0: the request must have no body */
} HttpRoute;

#define HTTP_PUBLIC (-1)
#define HTTP_REFUSED_PENDING (-1)

struct HttpRequest {
        const HttpRoute *route;
        const char *method;
        char *params[HTTP_PARAMS_MAX];
        size_t n_params;
        char *body;             /* NUL-terminated, body_len bytes */
        size_t body_len;
        AuthPrincipal principal;

        /* private to http.c */
        struct MHD_Connection *conn;
        char *path;
        size_t body_cap, body_max, reserved, discarded;
        int refused;            /* 0, 413 or 503 to answer once the body is drained,
                                 * or HTTP_REFUSED_PENDING: answer pending then */
        HttpResponse pending;
        char allow[64];         /* the Allow header of a 405 */
        unsigned status;
        uint64_t start_ns;
        bool deferred;          /* suspended until http_resume */
        _Atomic bool resumed;
        HttpResponse deferred_resp;
};

typedef struct HttpConfig {
        int listen_fd;          /* bound and listening; the server owns it */
        const HttpRoute *routes;
        size_t n_routes;
        struct Api *api;
        /* called once per answered request (route NULL: no route matched) */
        void (*observe)(struct Api *api, const HttpRoute *route, unsigned status);
} HttpConfig;

int http_server_start(const HttpConfig *cfg, HttpServer **ret);
/* Stops accepting, finishes the requests in flight, frees. NULL is fine. */
void http_server_stop(HttpServer *s);

/* A query parameter or header of the request, or NULL. */
const char *http_query(HttpRequest *req, const char *key);
const char *http_header(HttpRequest *req, const char *key);

/* Set the response (takes body; body NULL answers out of memory). */
void http_reply(HttpResponse *resp, unsigned status, json_t *body);
/* A body that is not JSON, or JSON already rendered (takes data, malloc'd). */
void http_reply_raw(HttpResponse *resp, unsigned status, const char *content_type, char *data, size_t len);
/* No body at all (204, 202). */
void http_reply_empty(HttpResponse *resp, unsigned status);

/* Long polls. A handler that cannot answer yet calls http_defer(req) and
 * leaves resp alone: the connection is suspended and holds no thread.
 * Exactly one http_resume(req, resp) later, from any thread, answers it
 * (taking resp's contents). Every deferred request must be resumed before
 * http_server_stop. */
void http_defer(HttpRequest *req);
void http_resume(HttpRequest *req, HttpResponse *resp);

/* The error shape {"error": {"type", "message", "field"}}; field may be NULL. */
void http_error(HttpResponse *resp, unsigned status, const char *type, const char *field,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));
