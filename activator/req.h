/* activator/req.h: one request from a client, as a worker (worker.c) and
 * the backend clients (fresh.c, service.c) share it. It lives from the
 * moment its head is in (http.h) until the last of its holders
 * lets go: the connection, the backend call, the streaming response. */
#pragma once

#include "activator/http.h"
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "activator/fnpath.h"
#include "activator/outcome.h"
#include "activator/reqid.h"
#include "activator/router.h"
#include "runtime/proto.h"

#define REQ_TRIES_MAX        4              /* instances tried for one request (refused before running) */
#define REQ_RECONNECTS_MAX   2              /* new connections after a stale pooled one */
#define REQ_TRACE_MAX        128            /* an accepted traceparent */
#define REQ_OUT_HIGH         (1u << 20)     /* buffered response bytes: stop reading the backend */
#define REQ_OUT_LOW          (256u << 10)   /* ...and read again below this */

typedef struct Worker Worker;
typedef struct Conn Conn;
typedef struct Req Req;

enum {
        REQ_HEAD,        /* the URI and headers arrived */
        REQ_BODY,        /* reading the body */
        REQ_WAIT,        /* queued, or waiting for the backend's answer */
        REQ_SENT,        /* answered (http_respond) */
};

struct Req {
        Worker *w;
        HttpConn *conn;                  /* NULL once the connection is done with it (http.h) */
        unsigned refs;
        int phase;
        bool reader_waiting, head_method, counted;
        char *uri;                       /* as sent: path and query, percent-encoded */
        const char *method;
        FnPath path;
        char *body;
        size_t body_len, body_cap, body_reserved;
        uint64_t discarded;              /* body bytes dropped after a refusal */
        ActError refused;                /* ACT_OK, or why the body was refused */
        AuthKey auth_key;                /* the caller's token (with --auth token) */
        char reqid[REQID_MAX + 1];
        char trace[REQ_TRACE_MAX + 1];
        uint64_t start_ns;

        RouteResult rt;                  /* rt.rev held; rt.slot taken while the backend runs */
        Waiter waiter;
        uv_timer_t timer;                /* the queue deadline, then the backend's */
        bool timer_init;
        Slot *tried[REQ_TRIES_MAX];
        size_t n_tried;
        Conn *be;                        /* the backend connection serving it */
        bool may_have_run;               /* the box may have seen it: no retry */
        bool stderr_asked;               /* X-Fnbox-Stderr: 1, not a broker call */
        bool want_stderr;                /* ...and the caller may have it (go()) */
        char session[PROTO_SESSION_MAX + 1]; /* X-Fnbox-Session: input files and /output (docs/sessions.md) */
        unsigned reconnects;

        unsigned status;
        ActError error;
        bool streaming;                  /* the response body comes from out */
        char *out;
        size_t out_len, out_off, out_cap;
        bool out_done, out_failed;
        bool cold;
        uint64_t wait_ns;
        struct GwCall *gw;               /* an LLM gateway request (activator/gateway/) */
};

/* ---- what worker.c offers the backends ---- */

uv_loop_t *req_loop(Req *q);
/* The worker's cache of checked tokens (NULL without --auth): the
 * gateway's identify() uses it as the worker's own check does. */
struct AuthCache *req_auth_cache(Req *q);
void req_unref(Req *q);
/* The random bits of the request's worker. */
uint64_t req_random(Req *q);

/* Answer with an error (before the response started), or cut the stream
 * short (after). Ends the backend part: the slot goes back. */
void req_fail(Req *q, ActError e, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The same with a failed fresh box's stderr tail and exit status in the
 * error object (q->want_stderr); as req_fail once the response started. */
void req_fail_detail(Req *q, ActError e, const char *msg, const OutcomeDetail *d);
/* The instance refused or could not be reached before the box ran:
 * another one, or the queue. drop: the instance is gone (its node says so,
 * or nothing listens at its address): no request goes there until the next
 * route table. With unreachable (a message), a request that finds no other
 * free instance fails with 502 node_failed instead of queueing. Ends the
 * backend part. */
void req_retry(Req *q, bool drop, const char *unreachable);
/* The response's status and headers are known: body bytes follow through
 * req_out() (size: Content-Length or HTTP_SIZE_UNKNOWN). Returns the
 * response to add headers to before req_start() queues it. */
HttpResponse *req_stream_response(Req *q, uint64_t size);
/* A whole response in memory (takes body, malloc'd). */
HttpResponse *req_buffer_response(Req *q, char *body, size_t len);
void req_start(Req *q, HttpResponse *r, unsigned status);
/* Response body bytes; false when the buffer is over REQ_OUT_HIGH (the
 * backend should stop reading until conn_read_again). */
bool req_out(Req *q, const char *data, size_t len);
/* The backend part is over (the slot goes back); ok: the body is complete. */
void req_backend_done(Req *q, bool ok);

/* ---- what the backends offer worker.c (fresh.c, service.c, conn.c) ---- */

typedef struct Backends Backends;
int backends_new(Worker *w, uv_loop_t *loop, const char *invoke_secret, Backends **ret);
/* Close idle connections; busy ones close as their requests end. */
void backends_free(Backends *b);
/* Start the call for q on its slot (q->rt.slot, q->rt.params). */
void backend_start(Backends *b, Req *q);
/* The client is gone: stop the call (the connection is closed, not reused). */
void backend_abort(Req *q);
/* The response buffer drained below REQ_OUT_LOW: read the backend again. */
void backend_read_again(Req *q);
