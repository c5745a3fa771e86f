/* activator/worker.c: the client side of the data plane (see worker.h):
 * an HTTP/1.1 server (http.h) on the worker's libuv loop; the /fn/
 * requests from their headers to their answer: limits, ids, routing, the
 * queue, the handover to a backend (fresh.c, service.c) and the response,
 * buffered or streamed; /metrics and /healthz. */
#define _GNU_SOURCE
#include "activator/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "activator/gateway/gateway.h"
#include "activator/req.h"
#include "lib/util.h"

#define PROG "fnbox-activator"
#define BODY_CHUNK (16u << 10)
#define SPARE_REQS 256          /* freed requests a worker keeps: a Req is past malloc's per-thread cache */

struct Worker {
        unsigned index;
        const ActConfig *cfg;
        Router *router;
        pthread_t thread;
        bool thread_started;
        uv_loop_t loop;
        uv_async_t async;
        HttpServer *http;
        bool loop_init;
        int listen_fd;
        RouterInbox inbox;
        AuthCache *auth_cache;           /* with cfg->auth: tokens that matched, to skip hashing */
        Backends *backends;
        GwWorker *gw;                    /* with cfg->gateway */
        uint64_t rng;
        Req *reqs;                       /* live requests, through req_next */
        Req *spare;                      /* freed requests kept for the next ones (req_timer_closed) */
        unsigned n_spare;
        _Atomic unsigned active;         /* requests routed and not yet freed: a stop waits for them */
        _Atomic int command;             /* CMD_* for the async handle */
        bool quiesced;                   /* stopping: new requests get 503 shutting_down */
};

enum { CMD_NONE, CMD_QUIESCE, CMD_STOP };

struct Workers {
        unsigned n;
        Worker w[WORKERS_MAX];
};

static _Atomic uint64_t body_budget_used;

/* the live-request list is kept apart from Req (req.h stays small) */
typedef struct ReqLink {
        Req *prev, *next;
} ReqLink;

/* ---- small helpers --------------------------------------------------------- */

static uint64_t worker_random(Worker *w) {
        uint64_t x = w->rng;
        x ^= x >> 12, x ^= x << 25, x ^= x >> 27;
        w->rng = x;
        return x * 2685821657736338717ull;
}

uv_loop_t *req_loop(Req *q) {
        return &q->w->loop;
}

AuthCache *req_auth_cache(Req *q) {
        return q->w->auth_cache;
}

uint64_t req_random(Req *q) {
        return worker_random(q->w);
}

static bool budget_reserve(size_t n) {
        uint64_t cur = atomic_load(&body_budget_used);
        do {
                if (n > WORKER_BODY_BUDGET - cur)
                        return false;
        } while (!atomic_compare_exchange_weak(&body_budget_used, &cur, cur + n));
        return true;
}

static void budget_release(size_t n) {
        atomic_fetch_sub(&body_budget_used, n);
}

/* A routed request counts for a stop (workers_stop waits for it) until it
 * is freed; one still being read does not: a client that stalls in its
 * headers or body cannot hold a stop up. */
static void req_count(Req *q) {
        if (!q->counted) {
                q->counted = true;
                atomic_fetch_add(&q->w->active, 1);
        }
}

static void req_uncount(Req *q) {
        if (q->counted) {
                q->counted = false;
                atomic_fetch_sub(&q->w->active, 1);
        }
}

/* ---- responses -------------------------------------------------------------- */

static void response_common(Req *q, HttpResponse *r) {
        http_response_header(r, "X-Request-Id", q->reqid);
        if (q->session[0])
                http_response_header(r, "X-Fnbox-Session", q->session);
        if (q->trace[0])
                http_response_header(r, "traceparent", q->trace);
}

/* Whether q is the LLM gateway's: its errors are in OpenAI's shape. */
static bool req_is_gateway(const Req *q) {
        return q && (q->gw || (q->uri && q->w->gw && gateway_path(q->uri)));
}

/* The error body for e: the gateway's shape on its paths, else ours. */
static int error_json(Req *q, ActError e, const char *msg, char *buf, size_t size) {
        int n = req_is_gateway(q) ? gateway_error_json(q, e, msg, buf, size) : outcome_json(e, msg, buf, size);
        if (n < 0)
                n = req_is_gateway(q) ? gateway_error_json(q, e, "(message too long)", buf, size)
                                      : outcome_json(e, "(message too long)", buf, size);
        return n;
}

/* An error response with the body given (copied, or taken with take). */
static HttpResponse *error_response_body(Req *q, ActError e, char *body, size_t len, bool take) {
        HttpResponse *r = take ? http_response_buffer(body, len) : http_response_copy(body, len);
        if (!r)
                return NULL;
        http_response_header(r, "Content-Type", "application/json");
        http_response_header(r, "Cache-Control", "no-store");
        http_response_header(r, "X-Fnbox-Error", act_error_type(e));
        if (e == ACT_UNAUTHENTICATED)
                http_response_header(r, "WWW-Authenticate", "Bearer realm=\"fnbox\"");
        if (e == ACT_QUEUE_FULL || e == ACT_UNAVAILABLE || e == ACT_SHUTTING_DOWN)
                http_response_header(r, "Retry-After", "1");
        if (q)
                response_common(q, r);
        return r;
}

static HttpResponse *error_response(Req *q, ActError e, const char *msg) {
        char body[2048];
        int n = error_json(q, e, msg, body, sizeof body);
        return error_response_body(q, e, body, (size_t) n, false);
}

/* Answer now (r taken). Without r (out of memory) the connection ends. */
static int send_now(Req *q, HttpResponse *r, unsigned status) {
        if (!q->conn) {
                http_response_free(r);
                return -EPIPE;
        }
        if (!r) {
                http_close(q->conn);
                return -ENOMEM;
        }
        int res = http_respond(q->conn, status, r);
        if (res == 0) {
                q->status = status;
                q->phase = REQ_SENT;
        }
        return res;
}

static int send_error_now(Req *q, ActError e, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int send_error_now(Req *q, ActError e, const char *fmt, ...) {
        char msg[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        q->error = e;
        return send_now(q, error_response(q, e, msg), act_error_status(e));
}

void req_start(Req *q, HttpResponse *r, unsigned status) {
        response_common(q, r);
        send_now(q, r, status);
}

/* ---- streaming ------------------------------------------------------------------ */

static ssize_t stream_read(void *cls, char *buf, size_t max) {
        Req *q = cls;
        size_t have = q->out_len - q->out_off;
        if (have > 0) {
                size_t n = have < max ? have : max;
                memcpy(buf, q->out + q->out_off, n);
                q->out_off += n;
                if (q->out_off == q->out_len)
                        q->out_off = q->out_len = 0;
                else if (q->out_len - q->out_off < REQ_OUT_LOW && q->be)
                        backend_read_again(q);
                if (q->out_off == 0 && q->be)
                        backend_read_again(q);
                return (ssize_t) n;
        }
        if (q->out_failed)
                return HTTP_READER_ERROR;
        if (q->out_done)
                return HTTP_READER_END;
        if (!q->conn)
                return HTTP_READER_ERROR;
        q->reader_waiting = true;
        return 0;
}

static void stream_free(void *cls) {
        req_unref(cls);
}

HttpResponse *req_stream_response(Req *q, uint64_t size) {
        HttpResponse *r = http_response_stream(size, stream_read, q, stream_free);
        if (r) {
                q->refs++;
                q->streaming = true;
        }
        return r;
}

HttpResponse *req_buffer_response(Req *q _unused_, char *body, size_t len) {
        return http_response_buffer(body, body ? len : 0);
}

static void reader_wake(Req *q) {
        if (q->reader_waiting) {
                q->reader_waiting = false;
                http_resume(q->conn);
        }
}

bool req_out(Req *q, const char *data, size_t len) {
        if (q->out_len + len > q->out_cap) {
                /* Sized to the first piece (most answers come whole in one
                 * read), then doubled: a fixed 16 KiB buffer per request
                 * missed malloc's per-thread cache and was trimmed back to
                 * the kernel (madvise) as often as it was freed. */
                size_t cap = q->out_cap ? q->out_cap * 2 : len < 1024 ? 1024 : len;
                while (cap < q->out_len + len)
                        cap *= 2;
                char *p = realloc(q->out, cap);
                if (!p) {
                        q->out_failed = true;
                        reader_wake(q);
                        return false;
                }
                q->out = p;
                q->out_cap = cap;
        }
        memcpy(q->out + q->out_len, data, len);
        q->out_len += len;
        reader_wake(q);
        return q->out_len - q->out_off < REQ_OUT_HIGH;
}

/* ---- the backend's end ------------------------------------------------------------ */

static void slot_release(Req *q) {
        if (q->rt.slot) {
                router_release(q->w->router, q->rt.rev, q->rt.slot);
                q->rt.slot = NULL;
        }
        uv_timer_stop(&q->timer);
}

void req_backend_done(Req *q, bool ok) {
        slot_release(q);
        if (q->streaming) {
                if (ok)
                        q->out_done = true;
                else
                        q->out_failed = true;
                reader_wake(q);
        }
}

void req_fail(Req *q, ActError e, const char *fmt, ...) {
        char msg[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        slot_release(q);
        if (q->streaming || q->phase == REQ_SENT) {
                q->out_failed = true;
                reader_wake(q);
                return;
        }
        q->error = e;
        send_now(q, error_response(q, e, msg), act_error_status(e));
}

void req_fail_detail(Req *q, ActError e, const char *msg, const OutcomeDetail *d) {
        size_t len;
        char *body = q->streaming || q->phase == REQ_SENT || req_is_gateway(q) ? NULL
                     : outcome_json_detail(e, msg, d, &len);
        if (!body) {
                req_fail(q, e, "%s", msg);
                return;
        }
        slot_release(q);
        q->error = e;
        send_now(q, error_response_body(q, e, body, len, true), act_error_status(e));
}

/* ---- routing -------------------------------------------------------------------------- */

static void queue_deadline(uv_timer_t *t);
static void dispatch_waiter(Req *q);

/* How long a request may wait in the queue. A service (an inference
 * server loading its model) is waited for up to its startup timeout: the
 * time its spec gives it to become ready. A fresh function's instance is
 * up in milliseconds: its startup timeout, but no more than its timeout
 * plus WORKER_QUEUE_GRACE_MS. */
static uint64_t queue_wait_ms(const RouteParams *p) {
        if (p->mode == ROUTE_SERVICE && p->startup_timeout_ms)
                return p->startup_timeout_ms;
        uint64_t cap = p->timeout_ms + WORKER_QUEUE_GRACE_MS;
        return p->startup_timeout_ms && p->startup_timeout_ms < cap ? p->startup_timeout_ms : cap;
}

static void go(Req *q) {
        if (q->session[0] && q->rt.params.mode != ROUTE_FRESH) {
                req_fail(q, ACT_BAD_REQUEST, "input files (X-Fnbox-Session) need a function in mode fresh; this one "
                         "is a service");
                return;
        }
        /* a fresh box's stderr in its error answer: for developers and
         * admins (anyone with --auth none), never for a broker call */
        q->want_stderr = q->stderr_asked && (!q->w->cfg->auth || q->rt.developer);
        q->n_tried < REQ_TRIES_MAX ? (void) (q->tried[q->n_tried++] = q->rt.slot) : (void) 0;
        backend_start(q->w->backends, q);
}

/* The client closed its end: a queued request leaves the queue now, not
 * at its deadline; a gateway call stops its upstream. One that runs on an
 * instance runs on (its answer is written, or fails, as it comes). */
static void on_hangup(void *ctx) {
        Req *q = ctx;
        if (q->gw) {
                gateway_hangup(q);
                return;
        }
        if (q->waiter.state != WAITER_QUEUED || !router_unqueue(q->w->router, &q->waiter))
                return;
        uv_timer_stop(&q->timer);
        req_fail(q, ACT_UNAVAILABLE, "the client left the queue");
        req_unref(q);
}

/* A queued (or parked) request holds a reference until it leaves the queue
 * and the inbox. */
static void enqueued(Req *q, uint64_t wait_ms) {
        q->refs++;
        q->phase = REQ_WAIT;
        uv_timer_start(&q->timer, queue_deadline, wait_ms, 0);
}

void req_retry(Req *q, bool drop, const char *unreachable) {
        Slot *bad = q->rt.slot;
        if (drop && bad)
                router_drop_slot(q->w->router, bad);
        slot_release(q);
        if (q->n_tried >= REQ_TRIES_MAX) {
                req_fail(q, ACT_UNAVAILABLE, "%zu instances refused the request; retry", q->n_tried);
                return;
        }
        Slot *slot = NULL;
        ActError e = router_retry(q->w->router, q->rt.rev, q->tried, q->n_tried, worker_random(q->w),
                                  unreachable ? NULL : &q->waiter, q->w->cfg->queue_depth, router_now_ns(), &slot);
        if (e != ACT_OK && unreachable) {
                req_fail(q, ACT_NODE_FAILED, "%s", unreachable);
                return;
        }
        if (e != ACT_OK) {
                req_fail(q, e, "no instance can take the request now");
                return;
        }
        if (!slot) {
                enqueued(q, queue_wait_ms(&q->rt.params));
                return;
        }
        q->rt.slot = slot;
        go(q);
}

static void queue_deadline(uv_timer_t *t) {
        Req *q = t->data;
        if (!router_unqueue(q->w->router, &q->waiter))
                return;         /* dispatched meanwhile: it is in the inbox */
        q->wait_ns = router_now_ns() - q->waiter.since_ns;
        if (q->rt.parked)
                req_fail(q, ACT_NOT_FOUND, "%s (the controller did not answer within %.1fs)", q->rt.message,
                         (double) q->wait_ns / 1e9);
        else
                req_fail(q, ACT_QUEUE_TIMEOUT, "no instance of %s could take the request within %.1fs",
                         q->rt.rev->key, (double) q->wait_ns / 1e9);
        req_unref(q);
}

static void routed(Req *q);

/* A miss, routed again with a table fetched after it arrived. */
static void reroute(Req *q) {
        Worker *w = q->w;
        q->waiter.reroute = false;
        q->waiter.synced = true;
        if (!q->conn)           /* the client left while it waited */
                return;
        router_route(w->router, &q->path, w->cfg->auth && q->auth_key.id[0] ? &q->auth_key : NULL, worker_random(w),
                     &q->waiter, w->cfg->queue_depth, router_now_ns(), &q->rt);
        if (q->rt.error != ACT_OK) {
                req_fail(q, q->rt.error, "%s", q->rt.message);
                return;
        }
        routed(q);
}

static void dispatch_waiter(Req *q) {
        uv_timer_stop(&q->timer);
        if (q->waiter.reroute) {
                reroute(q);
                return;
        }
        q->wait_ns = router_now_ns() - q->waiter.since_ns;
        q->cold = q->waiter.cold;
        if (!q->waiter.slot) {
                char *why = q->waiter.reason;
                q->waiter.reason = NULL;
                req_fail(q, q->waiter.error, "%s", why ? why : "the request cannot be served");
                free(why);
                return;
        }
        if (q->waiter.cold)
                q->cold = true;
        q->rt.slot = q->waiter.slot;
        q->rt.params = q->waiter.params;
        q->waiter.slot = NULL;
        if (!q->conn)           /* the client left while it waited */
                slot_release(q);
        else
                go(q);
}

static void inbox_wake(RouterInbox *inbox) {
        Worker *w = (Worker *) ((char *) inbox - offsetof(Worker, inbox));
        uv_async_send(&w->async);
}

/* Route a request whose body is complete. */
static void req_route(Req *q) {
        Worker *w = q->w;
        if (q->gw) {
                req_count(q);
                q->phase = REQ_WAIT;
                gateway_start(q);
                return;
        }
        /* a broker call (req_authorize_broker) has no token: its key is empty */
        router_route(w->router, &q->path, w->cfg->auth && q->auth_key.id[0] ? &q->auth_key : NULL, worker_random(w), &q->waiter,
                     w->cfg->queue_depth, router_now_ns(), &q->rt);
        if (q->rt.error != ACT_OK) {
                send_error_now(q, q->rt.error, "%s", q->rt.message);
                return;
        }
        q->phase = REQ_WAIT;
        if (q->rt.parked) {
                snprintf(q->rt.message, sizeof q->rt.message, "no %s %s", q->path.skill ? "skill" : "function", q->uri);
                enqueued(q, WORKER_MISS_WAIT_MS);
        } else
                routed(q);
}

/* Routed with a slot or a place in a queue. */
static void routed(Req *q) {
        req_count(q);
        if (q->rt.queued)
                enqueued(q, queue_wait_ms(&q->rt.params));
        else
                go(q);
}

/* ---- a request's life ------------------------------------------------------------------------ */

static Req *req_new(Worker *w, HttpConn *conn) {
        Req *q = w->spare;
        if (q) {
                w->spare = ((ReqLink *) (q + 1))->next;
                w->n_spare--;
                memset(q, 0, sizeof *q + sizeof(ReqLink));
        } else if (!(q = calloc(1, sizeof *q + sizeof(ReqLink))))
                return NULL;
        q->w = w;
        q->conn = conn;
        q->refs = 1;
        q->start_ns = router_now_ns();
        q->uri = strdup(http_uri(conn));
        uv_timer_init(&w->loop, &q->timer);
        q->timer.data = q;
        q->timer_init = true;
        q->waiter.inbox = &w->inbox;
        ReqLink *l = (ReqLink *) (q + 1);
        l->next = w->reqs;
        if (w->reqs)
                ((ReqLink *) (w->reqs + 1))->prev = q;
        w->reqs = q;
        return q;
}

static void req_timer_closed(uv_handle_t *h) {
        Req *q = h->data;
        Worker *w = q->w;
#ifndef __SANITIZE_ADDRESS__    /* the sanitizer sees each Req's use after free */
        if (w->n_spare < SPARE_REQS) {
                ((ReqLink *) (q + 1))->next = w->spare;
                w->spare = q;
                w->n_spare++;
                return;
        }
#endif
        (void) w;
        free(q);
}

static void req_free(Req *q) {
        Worker *w = q->w;
        ReqLink *l = (ReqLink *) (q + 1);
        if (l->prev)
                ((ReqLink *) (l->prev + 1))->next = l->next;
        else
                w->reqs = l->next;
        if (l->next)
                ((ReqLink *) (l->next + 1))->prev = l->prev;
        router_put(w->router, q->rt.rev);
        budget_release(q->body_reserved);
        free(q->body);
        free(q->out);
        free(q->uri);
        free(q->waiter.reason);
        req_uncount(q);
        uv_close((uv_handle_t *) &q->timer, req_timer_closed);
}

void req_unref(Req *q) {
        if (q && --q->refs == 0)
                req_free(q);
}

static void ids_take(Req *q) {
        const char *id = http_header(q->conn, "X-Request-Id");
        const char *tp = http_header(q->conn, "traceparent");
        if (reqid_ok(id))       /* at most REQID_MAX bytes */
                memcpy(q->reqid, id, strlen(id) + 1);
        else
                reqid_make(worker_random(q->w), worker_random(q->w), q->reqid);
        size_t tl = tp ? strlen(tp) : 0;
        if (tl <= REQ_TRACE_MAX && traceparent_ok(tp))
                memcpy(q->trace, tp, tl + 1);
        else
                traceparent_make(worker_random(q->w), worker_random(q->w), worker_random(q->w), q->trace);
}

static uint64_t content_length(Req *q) {
        const char *cl = http_header(q->conn, "Content-Length");
        if (!cl)
                return 0;
        char *end;
        errno = 0;
        unsigned long long v = strtoull(cl, &end, 10);
        return errno || end == cl || *end ? UINT64_MAX : v;
}

static int serve_metrics(Req *q) {
        size_t len;
        char *text = router_metrics_text(q->w->router, &len);
        if (text && q->w->cfg->gateway) {
                size_t gl;
                char *gt = gateway_metrics_text(q->w->cfg->gateway, &gl), *all = gt ? realloc(text, len + gl + 1) : NULL;
                if (all) {
                        memcpy(all + len, gt, gl + 1);
                        text = all;
                        len += gl;
                }
                free(gt);
        }
        if (!text)
                return send_error_now(q, ACT_INTERNAL, "out of memory");
        HttpResponse *r = req_buffer_response(q, text, len);
        if (r)
                http_response_header(r, "Content-Type", "text/plain; version=0.0.4");
        return send_now(q, r, 200);
}

static int serve_other(Req *q) {
        bool get = strcmp(q->method, "GET") == 0 || q->head_method;
        if (strcmp(q->uri, "/metrics") == 0 && get)
                return serve_metrics(q);
        if (strcmp(q->uri, "/healthz") == 0 && get)
                return send_now(q, req_buffer_response(q, strdup("ok\n"), 3), 200);
        return send_error_now(q, ACT_NOT_FOUND, "no such route; functions are at /fn/NAME, skills at /skills/NAME");
}

/* The caller's bearer token against the route table's tokens (auth.h):
 * ACT_OK, or the error to answer with a sentence in msg. A token that
 * matched a listed one goes into the worker's cache. */
/* A box's call through its node's broker: signed identity headers
 * instead of a token (docs/internals.md, "Broker calls"). The caller may
 * call only functions of its own namespace, which the broker always names
 * (/fn/NS/NAME); one that is not there is 404 here, so that routing
 * (which runs without a token for this request: q->auth_key stays empty)
 * never falls back to the default namespace's NS with a sub-path. */
static ActError req_authorize_broker(Req *q, const char *sig, char *msg, size_t msg_len) {
        char ns[FNPATH_NAME_MAX + 1];
        unsigned depth;
        int r = auth_broker_verify(q->w->cfg->invoke_secret,
                                   http_header(q->conn, "X-Fnbox-Caller"),
                                   http_header(q->conn, "X-Fnbox-Depth"), sig,
                                   (long long) time(NULL), ns, sizeof ns, &depth);
        if (r < 0) {
                snprintf(msg, msg_len, "%s", r == -ENOKEY ? "broker calls are refused: this activator has no --invoke-secret-file"
                                             : r == -EBADMSG ? "malformed broker identity (X-Fnbox-Caller, X-Fnbox-Depth, X-Fnbox-Broker-Auth)"
                                                             : "the broker signature does not match");
                return ACT_UNAUTHENTICATED;
        }
        const char *what = q->path.skill ? "skills" : "functions";
        if (!q->path.has_second || strcmp(q->path.first.name, ns) != 0) {
                snprintf(msg, msg_len, "a function of namespace %s may call only %s of namespace %s", ns, what, ns);
                return ACT_FORBIDDEN;
        }
        if (!router_has_function(q->w->router, &q->path, ns, &q->path.second)) {
                fnpath_missing(&q->path, true, msg, msg_len);
                return ACT_NOT_FOUND;
        }
        memset(&q->auth_key, 0, sizeof q->auth_key);
        return ACT_OK;
}

static ActError req_authorize(Req *q, char *msg, size_t msg_len) {
        Worker *w = q->w;
        const char *sig = http_header(q->conn, "X-Fnbox-Broker-Auth");
        if (sig)
                return req_authorize_broker(q, sig, msg, msg_len);
        const char *h = http_header(q->conn, "Authorization");
        bool hit = false;
        int r = auth_key_from_header(h, w->auth_cache, &q->auth_key, &hit);
        if (r < 0) {
                snprintf(msg, msg_len, "%s", r == -ENOKEY ? "this call needs a bearer token (Authorization: Bearer fnb_...)"
                                             : r == -EBADMSG ? "the bearer token is malformed (expected Authorization: Bearer fnb_...)"
                                             : "the bearer token cannot be checked now");
                return r == -ENOKEY || r == -EBADMSG ? ACT_UNAUTHENTICATED : ACT_INTERNAL;
        }
        ActError e = router_authorize(w->router, &q->path, &q->auth_key, msg, msg_len);
        if (!hit && (e == ACT_OK || e == ACT_FORBIDDEN))
                auth_cache_put(w->auth_cache, h, &q->auth_key);
        return e;
}

/* The largest body q may have: --max-body, or the gateway's limit when
 * lower (a chunked body is refused when it passes it, not read on). */
static size_t req_body_max(const Req *q) {
        uint64_t gw = gateway_body_max(q);
        return gw < q->w->cfg->max_body ? (size_t) gw : q->w->cfg->max_body;
}

/* Everything decided from the request line and headers. */
static int req_head(Req *q) {
        size_t head = http_head_size(q->conn);
        ids_take(q);
        if (strlen(q->uri) > FNPATH_URI_MAX)
                return send_error_now(q, ACT_URI_TOO_LONG, "the URL is over %u bytes", FNPATH_URI_MAX);
        if (head > WORKER_HEADERS_MAX)
                return send_error_now(q, ACT_HEADERS_TOO_LARGE, "the request line and headers exceed %u bytes",
                                      WORKER_HEADERS_MAX);
        int r = fnpath_parse(q->uri, &q->path);
        bool gw = r == -ENOENT && q->w->gw && gateway_path(q->uri);
        if (r == -ENOENT && !gw)
                return serve_other(q);
        if (r < 0 && !gw && fnpath_is_skill(q->uri))
                return send_error_now(q, ACT_NOT_FOUND, "not a skill URL: /skills/NAME, /skills/NAME@VERSION or "
                                      "/skills/NAMESPACE/NAME[@VERSION] (NAME: 1 to 40 of a-z, 0-9 and -; VERSION: digits)");
        if (r < 0 && !gw)
                return send_error_now(q, ACT_NOT_FOUND, "not a function URL: /fn/NAME, /fn/NAMESPACE/NAME or /fn/NAME@TAG");
        if (q->w->quiesced)
                return send_error_now(q, ACT_SHUTTING_DOWN, "the activator is stopping; retry elsewhere");
        const char *sid = gw ? NULL : http_header(q->conn, "X-Fnbox-Session");
        if (sid && !proto_session_valid(sid))
                return send_error_now(q, ACT_BAD_REQUEST, "X-Fnbox-Session: expected a session id (s- and 32 hex "
                                      "digits) from POST /v1/sessions");
        if (sid)
                snprintf(q->session, sizeof q->session, "%s", sid);
        const char *se = http_header(q->conn, "X-Fnbox-Stderr");
        q->stderr_asked = !gw && se && strcmp(se, "1") == 0 &&
                          !http_header(q->conn, "X-Fnbox-Broker-Auth");
        if (gw) {
                unsigned st;
                HttpResponse *resp = gateway_head(q->w->gw, q, &st);
                if (st)
                        return send_now(q, resp, st);
        } else if (q->w->cfg->auth) {
                char msg[256];
                ActError e = req_authorize(q, msg, sizeof msg);
                if (e != ACT_OK)
                        return send_error_now(q, e, "%s", msg);
        }
        uint64_t cl = content_length(q);
        size_t max = req_body_max(q);
        if (cl == UINT64_MAX || cl > max)
                return send_error_now(q, ACT_TOO_LARGE, "the request body is over %s limit of %zu bytes",
                                      q->gw ? "the gateway's" : "its", max);
        if (cl > 0) {
                if (!budget_reserve(cl))
                        return send_error_now(q, ACT_UNAVAILABLE, "too many request bodies in flight; retry");
                q->body_reserved = cl;
                if (!(q->body = malloc(cl)))
                        return send_error_now(q, ACT_INTERNAL, "out of memory");
                q->body_cap = cl;
        }
        q->phase = REQ_BODY;
        return 0;
}

/* Answer in the middle of a body: the connection ends after the answer,
 * and what is left of the body is read and dropped (http.h) up to
 * WORKER_DISCARD_MAX bytes. The client reads the answer and stops sending. */
static int answer_mid_body(Req *q, ActError e, const char *msg) {
        q->refused = e;
        free(q->body);
        q->body = NULL;
        budget_release(q->body_reserved);
        q->body_reserved = q->body_len = q->body_cap = 0;
        return send_error_now(q, e, "%s", msg);
}

/* Keep a piece of body; over the limit, answer 413 at once. */
static int req_body(Req *q, const char *data, size_t len) {
        size_t max = req_body_max(q);
        char msg[128];
        if (len > max - q->body_len) {
                snprintf(msg, sizeof msg, "the request body is over %s limit of %zu bytes", q->gw ? "the gateway's" : "its",
                         max);
                return answer_mid_body(q, ACT_TOO_LARGE, msg);
        }
        if (q->body_len + len > q->body_cap) {
                size_t cap = q->body_cap ? q->body_cap * 2 : BODY_CHUNK;
                while (cap < q->body_len + len)
                        cap *= 2;
                if (cap > max)
                        cap = max;
                if (cap > q->body_reserved && !budget_reserve(cap - q->body_reserved))
                        return answer_mid_body(q, ACT_UNAVAILABLE, "too many request bodies in flight; retry");
                if (cap > q->body_reserved)
                        q->body_reserved = cap;
                char *p = realloc(q->body, cap);
                if (!p)
                        return send_error_now(q, ACT_INTERNAL, "out of memory");
                q->body = p;
                q->body_cap = cap;
        }
        memcpy(q->body + q->body_len, data, len);
        q->body_len += len;
        return 0;
}

/* ---- the server's callbacks (http.h) ---------------------------------------------------------- */

static void *on_begin(void *cls, HttpConn *conn) {
        Req *q = req_new(cls, conn);
        if (!q)
                return NULL;
        q->method = http_method(conn);
        q->head_method = strcmp(q->method, "HEAD") == 0;
        if (!q->uri)
                send_error_now(q, ACT_INTERNAL, "out of memory");
        else
                req_head(q);
        return q;
}

static void on_body(void *ctx, const char *data, size_t len) {
        Req *q = ctx;
        if (q->phase == REQ_BODY && q->refused == ACT_OK)
                req_body(q, data, len);
}

static void on_body_end(void *ctx) {
        Req *q = ctx;
        if (q->phase == REQ_BODY && q->refused == ACT_OK)
                req_route(q);
}

static void on_done(void *ctx, bool ok _unused_) {
        Req *q = ctx;
        Worker *w = q->w;
        q->conn = NULL;
        if (q->waiter.state == WAITER_QUEUED && router_unqueue(w->router, &q->waiter)) {
                uv_timer_stop(&q->timer);
                q->refs--;      /* the queue's; ours follows */
        }
        if (q->be)
                backend_abort(q);
        if (q->gw)
                gateway_abort(q);
        slot_release(q);
        if (q->path.first.valid || q->path.has_second)
                router_record(w->router, q->rt.metrics, q->status ? q->status : 499,
                              router_now_ns() - q->start_ns, q->cold, q->wait_ns);
        req_unref(q);
}

/* A request the server refused (malformed, over a limit): with its ids
 * and counted with its status when it had begun. */
static HttpResponse *on_refuse(void *cls _unused_, void *ctx, ActError e, const char *msg) {
        Req *q = ctx;
        if (q) {
                q->error = e;
                q->status = act_error_status(e);
                q->phase = REQ_SENT;
        }
        return error_response(q, e, msg);
}

static const HttpHandler handler = {
        .begin = on_begin,
        .body = on_body,
        .body_end = on_body_end,
        .hangup = on_hangup,
        .done = on_done,
        .refuse = on_refuse,
};

/* ---- the loop ------------------------------------------------------------------------------ */

static void on_inbox(Worker *w) {
        Waiter *list = router_inbox_take(w->router, &w->inbox);
        while (list) {
                Waiter *wt = list;
                list = wt->inbox_next;
                Req *q = (Req *) ((char *) wt - offsetof(Req, waiter));
                dispatch_waiter(q);
                req_unref(q);
        }
}

/* End what is left (stopping): every request waiting for its answer is
 * answered. Each is held while it is handled (backend_abort lets the
 * backend's reference go). */
static void worker_flush(Worker *w) {
        for (Req *q = w->reqs, *next; q; q = next) {
                q->refs++;
                if (q->waiter.state == WAITER_QUEUED && router_unqueue(w->router, &q->waiter)) {
                        uv_timer_stop(&q->timer);
                        req_fail(q, ACT_SHUTTING_DOWN, "the activator is stopping");
                        q->refs--;
                } else if (q->be) {
                        backend_abort(q);
                        req_fail(q, ACT_SHUTTING_DOWN, "the activator is stopping");
                } else if (q->gw) {
                        gateway_stop(q);
                } else if (q->reader_waiting) {
                        q->out_failed = true;
                        reader_wake(q);
                }
                next = ((ReqLink *) (q + 1))->next;
                req_unref(q);
        }
}

/* Stopping: a request whose body is still arriving gets 503 shutting_down
 * now (it was never routed: no box saw it), rather than a cut connection
 * when the server stops; the rest of its body is dropped. One whose
 * headers are still arriving gets the same from req_head if they complete
 * before then. Neither holds the stop up (req_count). */
static void worker_refuse_unread(Worker *w) {
        for (Req *q = w->reqs; q; q = ((ReqLink *) (q + 1))->next)
                if (q->phase == REQ_BODY && q->refused == ACT_OK && q->conn)
                        answer_mid_body(q, ACT_SHUTTING_DOWN, "the activator is stopping; retry elsewhere");
}

static void on_close_noop(uv_handle_t *h _unused_) {
}

static void worker_close(Worker *w) {
        worker_flush(w);
        http_server_close(w->http);
        w->http = NULL;
        backends_free(w->backends);
        w->backends = NULL;
        gateway_worker_free(w->gw);
        w->gw = NULL;
        uv_close((uv_handle_t *) &w->async, on_close_noop);
}

/* Stop accepting: the listening socket goes, and what is still being read
 * is refused (a stop's CMD_QUIESCE may be overtaken by its CMD_STOP). */
static void worker_quiesce(Worker *w) {
        if (w->quiesced)
                return;
        w->quiesced = true;
        http_server_quiesce(w->http);
        worker_refuse_unread(w);
}

static void on_async(uv_async_t *a) {
        Worker *w = a->data;
        on_inbox(w);
        int cmd = atomic_exchange(&w->command, CMD_NONE);
        if (cmd == CMD_QUIESCE || cmd == CMD_STOP)
                worker_quiesce(w);
        if (cmd == CMD_STOP && w->http)
                worker_close(w);
}

static void *worker_main(void *arg) {
        Worker *w = arg;
        uv_run(&w->loop, UV_RUN_DEFAULT);
        return NULL;
}

static int worker_init(Worker *w, const ActConfig *cfg, unsigned index, int fd) {
        w->index = index;
        w->cfg = cfg;
        w->router = cfg->router;
        w->listen_fd = fd;
        w->inbox.wake = inbox_wake;
        if (getrandom(&w->rng, sizeof w->rng, 0) != sizeof w->rng)
                w->rng = router_now_ns();
        w->rng |= 1;
        if (cfg->auth && !(w->auth_cache = calloc(1, sizeof *w->auth_cache)))
                return -ENOMEM;
        int r = uv_loop_init(&w->loop);
        if (r < 0)
                return r;
        w->loop_init = true;
        unsigned conns = cfg->max_connections / cfg->threads;
        HttpLimits lim = {
                .max_conns = conns ? conns : 1,
                .idle_ms = WORKER_TIMEOUT_S * 1000u,
                .head_max = WORKER_HEADERS_MAX,
                .uri_max = FNPATH_URI_MAX,
                .discard_max = WORKER_DISCARD_MAX,
        };
        r = http_server_new(&w->loop, fd, &lim, &handler, w, &w->http);
        w->listen_fd = -1;      /* the server's now, or closed */
        if (r < 0)
                return r;
        if ((r = backends_new(w, &w->loop, cfg->invoke_secret, &w->backends)) < 0)
                return r;
        if (cfg->gateway && (r = gateway_worker_new(cfg->gateway, &w->loop, &w->gw)) < 0)
                return r;
        uv_async_init(&w->loop, &w->async, on_async);
        w->async.data = w;
        return 0;
}

static void worker_destroy(Worker *w) {
        if (w->thread_started)
                pthread_join(w->thread, NULL);
        else if (w->loop_init) {        /* never ran: close it here */
                if (w->http)
                        worker_close(w);
                else {
                        backends_free(w->backends);
                        gateway_worker_free(w->gw);
                        if (w->async.data)
                                uv_close((uv_handle_t *) &w->async, on_close_noop);
                }
                uv_run(&w->loop, UV_RUN_DEFAULT);
        }
        if (w->loop_init)
                uv_loop_close(&w->loop);
        while (w->spare) {
                Req *q = w->spare;
                w->spare = ((ReqLink *) (q + 1))->next;
                free(q);
        }
        if (w->listen_fd >= 0)
                close(w->listen_fd);
        auth_cache_clear(w->auth_cache);
        free(w->auth_cache);
}

int workers_start(const ActConfig *cfg, int *listen_fds, Workers **ret) {
        Workers *ws = calloc(1, sizeof *ws);
        if (!ws)
                return -ENOMEM;
        int r = 0;
        for (unsigned i = 0; i < cfg->threads && r == 0; i++) {
                ws->n++;
                r = worker_init(&ws->w[i], cfg, i, listen_fds[i]);
                listen_fds[i] = -1;
        }
        for (unsigned i = 0; i < ws->n && r == 0; i++) {
                r = -pthread_create(&ws->w[i].thread, NULL, worker_main, &ws->w[i]);
                ws->w[i].thread_started = r == 0;
        }
        if (r < 0) {
                workers_stop(ws, 0);
                return r;
        }
        *ret = ws;
        return 0;
}

static unsigned workers_active(Workers *ws) {
        unsigned n = 0;
        for (unsigned i = 0; i < ws->n; i++)
                n += atomic_load(&ws->w[i].active);
        return n;
}

static void workers_command(Workers *ws, int cmd) {
        for (unsigned i = 0; i < ws->n; i++)
                if (ws->w[i].http || ws->w[i].thread_started) {
                        atomic_store(&ws->w[i].command, cmd);
                        uv_async_send(&ws->w[i].async);
                }
}

/* Stop accepting; answer what waits for an instance with 503
 * shutting_down at once (it could wait longer than the grace) and let
 * what runs finish within grace_ms; then close everything. */
void workers_stop(Workers *ws, unsigned grace_ms) {
        if (!ws)
                return;
        workers_command(ws, CMD_QUIESCE);
        if (ws->n > 0)
                router_close(ws->w[0].router);
        uint64_t deadline = router_now_ns() + (uint64_t) grace_ms * 1000000u;
        while (workers_active(ws) > 0 && router_now_ns() < deadline)
                usleep(20000);
        workers_command(ws, CMD_STOP);
        for (unsigned i = 0; i < ws->n; i++)
                worker_destroy(&ws->w[i]);
        free(ws);
}
