/* activator/worker.c: the client side of the data plane (see worker.h):
 * libmicrohttpd in external epoll mode, driven from a libuv loop; the /fn/
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
#define GW_STREAM_BLOCK (16u << 10)     /* a gateway stream's events are small: a smaller calloc per answer */
#define SPARE_REQS 256          /* freed requests a worker keeps: a Req is past malloc's per-thread cache */

struct Worker {
        unsigned index;
        const ActConfig *cfg;
        Router *router;
        pthread_t thread;
        bool thread_started;
        uv_loop_t loop;
        uv_poll_t poll;
        uv_timer_t mhd_timer;
        uv_idle_t idle;
        uv_async_t async;
        struct MHD_Daemon *daemon;
        int listen_fd;
        bool kicked;
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

static void mhd_run(Worker *w);
static void on_idle(uv_idle_t *h);
static void on_mhd_timer(uv_timer_t *t);

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

/* Have MHD_run called soon (before the loop blocks again). */
static void worker_kick(Worker *w) {
        if (w->kicked)
                return;
        w->kicked = true;
        uv_idle_start(&w->idle, on_idle);
}

static void req_resume(Req *q) {
        if (!q->suspended || !q->conn)
                return;
        q->suspended = false;
        MHD_resume_connection(q->conn);
        worker_kick(q->w);
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

static void response_common(Req *q, struct MHD_Response *r) {
        MHD_add_response_header(r, "X-Request-Id", q->reqid);
        if (q->session[0])
                MHD_add_response_header(r, "X-Fnbox-Session", q->session);
        if (q->trace[0])
                MHD_add_response_header(r, "traceparent", q->trace);
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
static struct MHD_Response *error_response_body(Req *q, ActError e, char *body, size_t len, bool take) {
        struct MHD_Response *r = MHD_create_response_from_buffer(len, body, take ? MHD_RESPMEM_MUST_FREE
                                                                                  : MHD_RESPMEM_MUST_COPY);
        if (!r) {
                if (take)
                        free(body);
                return NULL;
        }
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
        MHD_add_response_header(r, "X-Fnbox-Error", act_error_type(e));
        if (e == ACT_UNAUTHENTICATED)
                MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"fnbox\"");
        if (e == ACT_QUEUE_FULL || e == ACT_UNAVAILABLE || e == ACT_SHUTTING_DOWN)
                MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "1");
        if (q)
                response_common(q, r);
        return r;
}

static struct MHD_Response *error_response(Req *q, ActError e, const char *msg) {
        char body[2048];
        int n = error_json(q, e, msg, body, sizeof body);
        return error_response_body(q, e, body, (size_t) n, false);
}

/* Queue a response now (inside the access handler). */
static enum MHD_Result send_now(Req *q, struct MHD_Response *r, unsigned status) {
        if (!r)
                return MHD_NO;
        enum MHD_Result res = MHD_queue_response(q->conn, status, r);
        MHD_destroy_response(r);
        if (res == MHD_YES) {
                q->status = status;
                q->phase = REQ_SENT;
        }
        return res;
}

static enum MHD_Result send_error_now(Req *q, ActError e, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static enum MHD_Result send_error_now(Req *q, ActError e, const char *fmt, ...) {
        char msg[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        q->error = e;
        return send_now(q, error_response(q, e, msg), act_error_status(e));
}

/* A response made outside the access handler: queued once it runs again. */
static void req_ready(Req *q, struct MHD_Response *r, unsigned status) {
        if (q->resp)
                MHD_destroy_response(q->resp);
        q->resp = r;
        q->status = r ? status : 500;
        q->phase = REQ_READY;
        req_resume(q);
}

void req_start(Req *q, struct MHD_Response *r, unsigned status) {
        response_common(q, r);
        req_ready(q, r, status);
}

/* ---- streaming ------------------------------------------------------------------ */

static ssize_t stream_read(void *cls, uint64_t pos _unused_, char *buf, size_t max) {
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
                return MHD_CONTENT_READER_END_WITH_ERROR;
        if (q->out_done)
                return MHD_CONTENT_READER_END_OF_STREAM;
        if (!q->conn)
                return MHD_CONTENT_READER_END_WITH_ERROR;
        q->reader_waiting = true;
        q->suspended = true;
        MHD_suspend_connection(q->conn);
        return 0;
}

static void stream_free(void *cls) {
        req_unref(cls);
}

struct MHD_Response *req_stream_response(Req *q, uint64_t size) {
        struct MHD_Response *r = MHD_create_response_from_callback(size, q->gw ? GW_STREAM_BLOCK : 64u << 10, stream_read, q,
                                                                   stream_free);
        if (r) {
                q->refs++;
                q->streaming = true;
        }
        return r;
}

struct MHD_Response *req_buffer_response(Req *q _unused_, char *body, size_t len) {
        struct MHD_Response *r = MHD_create_response_from_buffer(len, body ? body : (char *) "",
                                                                 body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
        if (!r)
                free(body);
        return r;
}

static void reader_wake(Req *q) {
        if (q->reader_waiting) {
                q->reader_waiting = false;
                req_resume(q);
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
        req_ready(q, error_response(q, e, msg), act_error_status(e));
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
        req_ready(q, error_response_body(q, e, body, len, true), act_error_status(e));
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

static void hup_closed(uv_handle_t *h) {
        free(h);
}

static void hup_stop(Req *q) {
        if (!q->hup)
                return;
        uv_close((uv_handle_t *) q->hup, hup_closed);
        q->hup = NULL;
}

/* A queued client hung up (libmicrohttpd does not watch suspended
 * connections): it leaves the queue now, not at its deadline. */
static void on_hup(uv_poll_t *h, int status _unused_, int events _unused_) {
        Req *q = h->data;
        hup_stop(q);
        if (!router_unqueue(q->w->router, &q->waiter))
                return;
        uv_timer_stop(&q->timer);
        req_fail(q, ACT_UNAVAILABLE, "the client left the queue");
        req_unref(q);
}

static void hup_watch(Req *q) {
        const union MHD_ConnectionInfo *ci = q->conn ? MHD_get_connection_info(q->conn, MHD_CONNECTION_INFO_CONNECTION_FD) : NULL;
        if (q->hup || !ci || !(q->hup = malloc(sizeof *q->hup)))
                return;
        if (uv_poll_init_socket(&q->w->loop, q->hup, ci->connect_fd) < 0) {
                free(q->hup);
                q->hup = NULL;
                return;
        }
        q->hup->data = q;
        uv_poll_start(q->hup, UV_DISCONNECT, on_hup);
}

/* A queued (or parked) request holds a reference until it leaves the queue
 * and the inbox. */
static void enqueued(Req *q, uint64_t wait_ms) {
        q->refs++;
        q->phase = REQ_WAIT;
        uv_timer_start(&q->timer, queue_deadline, wait_ms, 0);
        hup_watch(q);
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
        hup_stop(q);
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
        hup_stop(q);
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
static enum MHD_Result req_route(Req *q) {
        Worker *w = q->w;
        if (q->gw) {
                req_count(q);
                q->phase = REQ_WAIT;
                q->suspended = true;
                MHD_suspend_connection(q->conn);
                gateway_start(q);
                return MHD_YES;
        }
        /* a broker call (req_authorize_broker) has no token: its key is empty */
        router_route(w->router, &q->path, w->cfg->auth && q->auth_key.id[0] ? &q->auth_key : NULL, worker_random(w), &q->waiter,
                     w->cfg->queue_depth, router_now_ns(), &q->rt);
        if (q->rt.error != ACT_OK)
                return send_error_now(q, q->rt.error, "%s", q->rt.message);
        q->phase = REQ_WAIT;
        q->suspended = true;
        MHD_suspend_connection(q->conn);
        if (q->rt.parked) {
                snprintf(q->rt.message, sizeof q->rt.message, "no %s %s", q->path.skill ? "skill" : "function", q->uri);
                enqueued(q, WORKER_MISS_WAIT_MS);
        } else
                routed(q);
        return MHD_YES;
}

/* Routed with a slot or a place in a queue. */
static void routed(Req *q) {
        req_count(q);
        if (q->rt.queued)
                enqueued(q, queue_wait_ms(&q->rt.params));
        else
                go(q);
}

/* ---- the libmicrohttpd callbacks ------------------------------------------------------------ */

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn) {
        Worker *w = cls;
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
        q->uri = strdup(uri);
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
        if (q->resp)
                MHD_destroy_response(q->resp);
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

static enum MHD_Result count_bytes(void *cls, enum MHD_ValueKind kind _unused_, const char *key, const char *value) {
        size_t *sum = cls;
        *sum += strlen(key) + (value ? strlen(value) : 0) + 4;
        return MHD_YES;
}

static void ids_take(Req *q) {
        const char *id = MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, "X-Request-Id");
        const char *tp = MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, "traceparent");
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
        const char *cl = MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (!cl)
                return 0;
        char *end;
        errno = 0;
        unsigned long long v = strtoull(cl, &end, 10);
        return errno || end == cl || *end ? UINT64_MAX : v;
}

static enum MHD_Result serve_metrics(Req *q) {
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
        struct MHD_Response *r = req_buffer_response(q, text, len);
        if (r)
                MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; version=0.0.4");
        return send_now(q, r, 200);
}

static enum MHD_Result serve_other(Req *q) {
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
                                   MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, "X-Fnbox-Caller"),
                                   MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, "X-Fnbox-Depth"), sig,
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
        const char *sig = MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, "X-Fnbox-Broker-Auth");
        if (sig)
                return req_authorize_broker(q, sig, msg, msg_len);
        const char *h = MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
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
static enum MHD_Result req_head(Req *q) {
        size_t head = strlen(q->method) + strlen(q->uri) + 12;
        MHD_get_connection_values(q->conn, MHD_HEADER_KIND, count_bytes, &head);
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
        const char *sid = gw ? NULL : MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, "X-Fnbox-Session");
        if (sid && !proto_session_valid(sid))
                return send_error_now(q, ACT_BAD_REQUEST, "X-Fnbox-Session: expected a session id (s- and 32 hex "
                                      "digits) from POST /v1/sessions");
        if (sid)
                snprintf(q->session, sizeof q->session, "%s", sid);
        const char *se = MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, "X-Fnbox-Stderr");
        q->stderr_asked = !gw && se && strcmp(se, "1") == 0 &&
                          !MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, "X-Fnbox-Broker-Auth");
        if (gw) {
                unsigned st;
                struct MHD_Response *resp = gateway_head(q->w->gw, q, &st);
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
        return MHD_YES;
}

/* Answer in the middle of a body, which libmicrohttpd cannot do: the
 * answer (with Connection: close) goes straight to the socket, which
 * nothing else has written to for this request; the rest of the body is
 * read and dropped (up to WORKER_DISCARD_MAX bytes), and the connection
 * ends with the request. The client reads the answer and stops sending. */
static enum MHD_Result answer_mid_body(Req *q, ActError e, const char *msg) {
        char body[1024], head[1024];
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(q->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        int bl = error_json(q, e, msg, body, sizeof body);
        unsigned st = act_error_status(e);
        int hl = snprintf(head, sizeof head,
                          "HTTP/1.1 %u %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                          "Connection: close\r\nX-Fnbox-Error: %s\r\nX-Request-Id: %s\r\ntraceparent: %s\r\n%s\r\n",
                          st, st == 413 ? "Content Too Large" : "Service Unavailable", bl, act_error_type(e), q->reqid,
                          q->trace, st == 503 ? "Retry-After: 1\r\n" : "");
        if (!ci || bl < 0 || hl < 0 || (size_t) hl >= sizeof head)
                return MHD_NO;
        struct iovec iov[2] = { { head, (size_t) hl }, { body, (size_t) bl } };
        struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
        if (sendmsg(ci->connect_fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) != hl + bl)
                return MHD_NO;
        /* The answer is complete: say so (the client then stops sending and
         * reads it). libmicrohttpd may notice the client's close only at its
         * connection timeout; such a request does not hold up a stop (it was
         * never routed: req_count). */
        shutdown(ci->connect_fd, SHUT_WR);
        q->refused = e;
        q->status = st;
        q->error = e;
        free(q->body);
        q->body = NULL;
        budget_release(q->body_reserved);
        q->body_reserved = q->body_len = q->body_cap = 0;
        return MHD_YES;
}

/* Keep a piece of body; over the limit, answer 413 at once. */
static enum MHD_Result req_body(Req *q, const char *data, size_t len) {
        size_t max = req_body_max(q);
        char msg[128];
        if (q->refused != ACT_OK) {
                q->discarded += len;
                return q->discarded <= WORKER_DISCARD_MAX ? MHD_YES : MHD_NO;
        }
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
        return MHD_YES;
}

static enum MHD_Result on_access(void *cls _unused_, struct MHD_Connection *conn, const char *url _unused_,
                                 const char *method, const char *version _unused_, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls) {
        Req *q = *con_cls;
        if (!q)
                return MHD_NO;
        switch (q->phase) {
        case REQ_HEAD:
                q->conn = conn;
                q->method = method;
                q->head_method = strcmp(method, "HEAD") == 0;
                if (!q->uri)
                        return send_error_now(q, ACT_INTERNAL, "out of memory");
                return req_head(q);
        case REQ_BODY:
                if (*upload_data_size > 0) {
                        size_t n = *upload_data_size;
                        *upload_data_size = 0;
                        return req_body(q, upload_data, n);
                }
                if (q->refused != ACT_OK)
                        return MHD_NO;          /* answered already (answer_mid_body) */
                return req_route(q);
        case REQ_READY: {
                struct MHD_Response *r = TAKE_PTR(q->resp);
                return send_now(q, r, q->status);
        }
        case REQ_SENT:
                *upload_data_size = 0;          /* answered already: drop the rest */
                return MHD_YES;
        default:                                /* woken early: wait on */
                q->suspended = true;
                MHD_suspend_connection(conn);
                return MHD_YES;
        }
}

static void on_completed(void *cls _unused_, struct MHD_Connection *conn _unused_, void **con_cls,
                         enum MHD_RequestTerminationCode toe _unused_) {
        Req *q = *con_cls;
        if (!q)
                return;
        *con_cls = NULL;
        Worker *w = q->w;
        q->conn = NULL;
        hup_stop(q);
        if (q->resp)            /* made but never queued: it holds a reference to q */
                MHD_destroy_response(TAKE_PTR(q->resp));
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

static void mhd_run(Worker *w) {
        MHD_UNSIGNED_LONG_LONG ms;
        if (!w->daemon)
                return;
        MHD_run(w->daemon);
        if (MHD_get_timeout(w->daemon, &ms) == MHD_YES)
                uv_timer_start(&w->mhd_timer, on_mhd_timer, ms, 0);
        else
                uv_timer_stop(&w->mhd_timer);
}

static void on_idle(uv_idle_t *h) {
        Worker *w = h->data;
        w->kicked = false;
        uv_idle_stop(h);
        mhd_run(w);
}

static void on_mhd_timer(uv_timer_t *t) {
        mhd_run(t->data);
}

static void on_poll(uv_poll_t *p, int status _unused_, int events _unused_) {
        mhd_run(p->data);
}

/* End what is left (stopping): every suspended request is answered. Each
 * is held while it is handled (backend_abort lets the backend's
 * reference go). */
static void worker_flush(Worker *w) {
        for (Req *q = w->reqs, *next; q; q = next) {
                q->refs++;
                if (q->waiter.state == WAITER_QUEUED && router_unqueue(w->router, &q->waiter)) {
                        uv_timer_stop(&q->timer);
                        hup_stop(q);
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
 * when the daemon stops; the rest of its body is dropped. One whose
 * headers are still arriving gets the same from req_head if they complete
 * before then. Neither holds the stop up (req_count). */
static void worker_refuse_unread(Worker *w) {
        for (Req *q = w->reqs; q; q = ((ReqLink *) (q + 1))->next) {
                if (q->phase != REQ_BODY || q->refused != ACT_OK || !q->conn)
                        continue;
                if (answer_mid_body(q, ACT_SHUTTING_DOWN, "the activator is stopping; retry elsewhere") == MHD_YES)
                        continue;
                /* not even the answer could be written: end the connection */
                const union MHD_ConnectionInfo *ci = MHD_get_connection_info(q->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
                if (ci)
                        shutdown(ci->connect_fd, SHUT_RDWR);
        }
        worker_kick(w);
}

static void on_close_noop(uv_handle_t *h _unused_) {
}

static void worker_close(Worker *w) {
        worker_flush(w);
        for (int i = 0; i < 3; i++)
                MHD_run(w->daemon);
        uv_poll_stop(&w->poll);
        MHD_stop_daemon(w->daemon);
        w->daemon = NULL;
        backends_free(w->backends);
        w->backends = NULL;
        gateway_worker_free(w->gw);
        w->gw = NULL;
        uv_close((uv_handle_t *) &w->poll, on_close_noop);
        uv_close((uv_handle_t *) &w->mhd_timer, on_close_noop);
        uv_close((uv_handle_t *) &w->idle, on_close_noop);
        uv_close((uv_handle_t *) &w->async, on_close_noop);
}

/* Stop accepting: the listening socket goes, and what is still being read
 * is refused (a stop's CMD_QUIESCE may be overtaken by its CMD_STOP). */
static void worker_quiesce(Worker *w) {
        if (w->quiesced)
                return;
        w->quiesced = true;
        MHD_socket fd = MHD_quiesce_daemon(w->daemon);
        if (fd != MHD_INVALID_SOCKET)
                close(fd);
        worker_refuse_unread(w);
}

static void on_async(uv_async_t *a) {
        Worker *w = a->data;
        on_inbox(w);
        int cmd = atomic_exchange(&w->command, CMD_NONE);
        if (cmd == CMD_QUIESCE || cmd == CMD_STOP)
                worker_quiesce(w);
        if (cmd == CMD_STOP)
                worker_close(w);
}

static void *worker_main(void *arg) {
        Worker *w = arg;
        uv_run(&w->loop, UV_RUN_DEFAULT);
        return NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
        Worker *w = cls;
        char buf[512];
        vsnprintf(buf, sizeof buf, fmt, ap);
        buf[strcspn(buf, "\n")] = 0;
        /* clients that hang up mid-answer are routine, not news */
        if (strstr(buf, "Failed to send") || strstr(buf, "closed by remote") || strstr(buf, "no longer available"))
                return;
        fprintf(stderr, PROG ": worker %u: http: %s\n", w->index, buf);
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
        unsigned conns = cfg->max_connections / cfg->threads;
        w->daemon = MHD_start_daemon(
                MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_TURBO | MHD_USE_ERROR_LOG, 0, NULL, NULL,
                on_access, w,
                MHD_OPTION_EXTERNAL_LOGGER, mhd_log, w,
                MHD_OPTION_LISTEN_SOCKET, (MHD_socket) fd,
                MHD_OPTION_CONNECTION_LIMIT, conns ? conns : 1,
                MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) WORKER_TIMEOUT_S,
                MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) WORKER_MHD_MEMORY,
                MHD_OPTION_URI_LOG_CALLBACK, on_uri, w,
                MHD_OPTION_NOTIFY_COMPLETED, on_completed, w,
                MHD_OPTION_END);
        if (!w->daemon)
                return -EIO;
        w->listen_fd = -1;      /* the daemon's now */
        const union MHD_DaemonInfo *info = MHD_get_daemon_info(w->daemon, MHD_DAEMON_INFO_EPOLL_FD);
        if (!info)
                return -EIO;
        if ((r = backends_new(w, &w->loop, cfg->invoke_secret, &w->backends)) < 0)
                return r;
        if (cfg->gateway && (r = gateway_worker_new(cfg->gateway, &w->loop, &w->gw)) < 0)
                return r;
        uv_poll_init(&w->loop, &w->poll, info->epoll_fd);
        uv_timer_init(&w->loop, &w->mhd_timer);
        uv_idle_init(&w->loop, &w->idle);
        uv_async_init(&w->loop, &w->async, on_async);
        w->poll.data = w->mhd_timer.data = w->idle.data = w->async.data = w;
        uv_poll_start(&w->poll, UV_READABLE, on_poll);
        worker_kick(w);
        return 0;
}

static void worker_destroy(Worker *w) {
        if (w->thread_started)
                pthread_join(w->thread, NULL);
        else if (w->daemon) {   /* never ran: close it here */
                worker_close(w);
                uv_run(&w->loop, UV_RUN_DEFAULT);
        }
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
                if (ws->w[i].daemon || ws->w[i].thread_started) {
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
