/* activator/http.h: the client side of the activator's HTTP/1.1, on the
 * worker's libuv loop: accept, read a request's line and headers (bounded,
 * and checked by activator/httpreq.c), hand its body over in pieces
 * (Content-Length or chunked), and write the answer, whole or streamed,
 * with keep-alive and pipelining.
 *
 * Why not libmicrohttpd here (docs/internals.md, "The activator's HTTP"):
 * in front of a fast service every request paid for zeroing its 32 KiB
 * connection pool, an epoll_ctl pair to suspend and resume the connection
 * while the backend answered, and a second epoll under libuv's; that was a
 * third of the activator's CPU per request. The controller and the runtime
 * keep libmicrohttpd.
 *
 * Threading: one server per worker thread; nothing here is shared. The
 * handler's callbacks run from the loop, never from inside http_respond or
 * http_resume (whatever those decide that needs the handler is deferred to
 * the loop's next check phase). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <uv.h>

#include "activator/outcome.h"

#define HTTP_SIZE_UNKNOWN   UINT64_MAX
#define HTTP_READER_END     ((ssize_t) -1)
#define HTTP_READER_ERROR   ((ssize_t) -2)

typedef struct HttpServer HttpServer;
typedef struct HttpConn HttpConn;
typedef struct HttpResponse HttpResponse;

/* A streamed body: up to max bytes into buf, 0 for none now (the server
 * waits for http_resume), HTTP_READER_END, or HTTP_READER_ERROR (the
 * connection is cut: the client sees a short answer). */
typedef ssize_t (*HttpReader)(void *cls, char *buf, size_t max);

typedef struct HttpHandler {
        /* A request's line and headers are in: its context, passed to the
         * rest (NULL: 500 and the connection ends). */
        void *(*begin)(void *cls, HttpConn *c);
        /* A piece of the body (not after the request is answered). */
        void (*body)(void *ctx, const char *data, size_t len);
        /* The body is complete and the request not answered yet. */
        void (*body_end)(void *ctx);
        /* The client closed its end (or the connection broke) while the
         * request waits for its answer or streams it. */
        void (*hangup)(void *ctx);
        /* The request is over: answered and written (ok), or its connection
         * is gone. ctx is not used again. */
        void (*done)(void *ctx, bool ok);
        /* An answer for a request refused by the server (malformed, or over
         * a limit): e says which, msg why. ctx is the request's when begin
         * made one (a malformed chunked body), else NULL. */
        HttpResponse *(*refuse)(void *cls, void *ctx, ActError e, const char *msg);
} HttpHandler;

typedef struct HttpLimits {
        unsigned max_conns;              /* open connections; more are closed at once */
        unsigned idle_ms;                /* no byte read or written for this long: closed */
        size_t head_max;                 /* request line and headers: 431 beyond */
        size_t uri_max;                  /* the request target: 414 beyond */
        uint64_t discard_max;            /* body bytes read and dropped after an early answer */
} HttpLimits;

/* Serve on listen_fd (taken: closed with the server). */
int http_server_new(uv_loop_t *loop, int listen_fd, const HttpLimits *lim, const HttpHandler *h, void *cls,
                    HttpServer **ret);
/* Stop accepting; idle connections close; answers from now on close their
 * connection. */
void http_server_quiesce(HttpServer *s);
/* Close every connection (done(ctx, false) for requests still open) and
 * the server; it is freed as libuv closes its handles. */
void http_server_close(HttpServer *s);

/* ---- the request (valid from begin until done) ---- */

const char *http_method(const HttpConn *c);
const char *http_uri(const HttpConn *c);
/* The first header of that name (case-insensitive), or NULL. */
const char *http_header(const HttpConn *c, const char *name);
/* Each header in order, until fn returns false. */
void http_headers_each(const HttpConn *c, bool (*fn)(void *cls, const char *name, const char *value), void *cls);
/* The request line and headers as received, in bytes. */
size_t http_head_size(const HttpConn *c);
/* The client's address, or NULL. */
const struct sockaddr *http_peer(HttpConn *c);

/* ---- answers ---- */

/* A whole body (taken: malloc'd, or NULL with len 0). NULL: out of memory. */
HttpResponse *http_response_buffer(char *body, size_t len);
HttpResponse *http_response_copy(const char *body, size_t len);
/* A body from reader, size bytes (Content-Length) or HTTP_SIZE_UNKNOWN
 * (chunked); free_cls(cls) when the response is freed. */
HttpResponse *http_response_stream(uint64_t size, HttpReader reader, void *cls, void (*free_cls)(void *cls));
/* -EINVAL for a name or value with CR, LF or NUL in it (not added). */
int http_response_header(HttpResponse *r, const char *name, const char *value);
void http_response_free(HttpResponse *r);

/* Answer c's current request (r taken, freed when written). Any time from
 * begin on; before the body is all in, the connection ends after the
 * answer (what is left of the body is read and dropped). -EALREADY when it
 * was answered, -EPIPE when the connection is gone. */
int http_respond(HttpConn *c, unsigned status, HttpResponse *r);
/* A streamed answer's reader has bytes again. */
void http_resume(HttpConn *c);
/* End the connection (from the loop's next check phase): the request is
 * done(ctx, false). */
void http_close(HttpConn *c);
