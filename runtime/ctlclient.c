/* runtime/ctlclient.c: the node agent's calls to the controller
 * (docs/internals.md): the status report (PUT /v1/nodes/NAME/status, which
 * registers the node and heartbeats), the long poll of its assignment and
 * the code fetches. Each runs on libuv's thread pool with the blocking
 * client of ctlclient_http.c, with a deadline; its result comes back to the
 * loop, which owns all of the node's state. A controller that does not
 * answer changes nothing on the node: instances keep running and the calls
 * are retried with a growing delay. */
#define _GNU_SOURCE
#include "node_internal.h"

#include <stdio.h>

#include "codecache.h"
#include "lib/util.h"

#define POLL_TIMEOUT_MS (NODE_POLL_WAIT_MS + 10000)

/* Once when the controller stops answering, once when it is back. */
static void ctl_trouble(Node *n, const char *what, int r, int status) {
        if (n->ctl_down)
                return;
        n->ctl_down = true;
        if (r < 0)
                fprintf(stderr, "fnbox-runtime: node %s: %s: %s (retrying; instances keep running)\n", n->name, what,
                        strerror(-r));
        else
                fprintf(stderr, "fnbox-runtime: node %s: %s: HTTP %d%s (retrying; instances keep running)\n", n->name,
                        what, status, status == 401 || status == 403 ? ", the token was refused" : "");
}

static void ctl_fine(Node *n) {
        if (n->ctl_down)
                fprintf(stderr, "fnbox-runtime: node %s: the controller answers again\n", n->name);
        n->ctl_down = false;
}

int ctl_assignment_check(json_t *a) {
        json_t *v = json_object_get(a, "version"), *hb = json_object_get(a, "heartbeatMs"),
               *list = json_object_get(a, "instances");
        if (!json_is_object(a) || !json_is_integer(v) || json_integer_value(v) < 0)
                return -EBADMSG;
        if (hb && !json_is_null(hb) && (!json_is_integer(hb) || json_integer_value(hb) < 100 ||
                                        json_integer_value(hb) > 60000))
                return -EBADMSG;
        if (!json_is_array(list) || json_array_size(list) > NODE_ASSIGNED_MAX)
                return -EBADMSG;
        size_t k;
        json_t *e;
        json_array_foreach(list, k, e) {
                json_t *desired = json_object_get(e, "desired");
                if (!json_is_object(e) || !json_is_string(json_object_get(e, "id")) || !json_is_string(desired) ||
                    (strcmp(json_string_value(desired), "run") && strcmp(json_string_value(desired), "drain")))
                        return -EBADMSG;
        }
        return 0;
}

/* A JSON answer of the controller, parsed on the worker thread. */
typedef struct Call {
        uv_work_t work;
        Node *n;
        HttpTarget target;
        HttpRequest rq;
        char path[400];
        char *body;
        int r, status;
        json_t *answer;
        uint64_t gen, log_seq, dropped;
} Call;

static void call_work(uv_work_t *w) {
        Call *c = w->data;
        HttpResponse res = { 0 };
        c->r = http_do(&c->target, &c->rq, &res);
        c->status = res.status;
        if (c->r >= 0 && res.status == 200) {
                c->answer = json_loadb(res.body, res.body_len, JSON_REJECT_DUPLICATES, NULL);
                if (!c->answer || ctl_assignment_check(c->answer) < 0) {
                        json_decref(c->answer);
                        c->answer = NULL;
                        c->r = -EBADMSG;
                }
        }
        http_response_clear(&res);
}

static Call *call_new(Node *n, const char *method, int timeout_ms, int cancel_fd) {
        Call *c = calloc(1, sizeof *c);
        if (!c)
                return NULL;
        c->n = n;
        c->target = n->ctl;
        c->work.data = c;
        c->rq = (HttpRequest) { .method = method, .path = c->path, .token = n->token, .max_body = NODE_ASSIGNMENT_MAX,
                                .timeout_ms = timeout_ms, .cancel_fd = cancel_fd };
        return c;
}

static void call_free(Call *c) {
        json_decref(c->answer);
        free(c->body);
        free(c);
}

/* ----- status ----- */

static uint64_t backoff_ms(unsigned failures, uint64_t base, uint64_t max) {
        uint64_t d = base << (failures > 10 ? 10 : failures);
        return d > max ? max : d;
}

/* A report is due every heartbeat, and the controller declares the node
 * lost after five heartbeats without one: a report that has not been
 * answered within two heartbeats is given up, and the next one goes out
 * (a stuck connection costs two heartbeats, never the lease). */
static int status_timeout_ms(const Node *n) {
        uint64_t t = 2 * n->heartbeat_ms;
        if (n->stopping)
                return NODE_FINAL_STATUS_TIMEOUT_MS;
        return (int) (t < 1000 ? 1000 : t > NODE_STATUS_TIMEOUT_MS ? NODE_STATUS_TIMEOUT_MS : t);
}

/* The reporter: one thread that sends the reports one at a time. */
static void reporter_main(void *arg) {
        Node *n = arg;
        uv_mutex_lock(&n->rep_lock);
        for (;;) {
                while (!n->rep_todo && !n->rep_quit)
                        uv_cond_wait(&n->rep_cond, &n->rep_lock);
                if (!n->rep_todo)
                        break; /* told to quit, with nothing to send */
                Call *c = n->rep_todo;
                n->rep_todo = NULL;
                uv_mutex_unlock(&n->rep_lock);
                call_work(&c->work);
                uv_mutex_lock(&n->rep_lock);
                n->rep_done = c;
                uv_async_send(&n->rep_async);
        }
        uv_mutex_unlock(&n->rep_lock);
}

static void status_done(uv_work_t *w, int status);

void ctl_reporter_answer(uv_async_t *a) {
        Node *n = a->data;
        uv_mutex_lock(&n->rep_lock);
        Call *c = n->rep_done;
        n->rep_done = NULL;
        uv_mutex_unlock(&n->rep_lock);
        if (c)
                status_done(&c->work, 0);
}

int ctl_reporter_start(Node *n) {
        int r = n->rep_sync && n->handles_open == 3 ? 0 : -ENOMEM; /* its lock and handle exist */
        if (r >= 0)
                r = uv_thread_create(&n->reporter, reporter_main, n);
        if (r >= 0)
                n->rep_started = true;
        return r;
}

void ctl_reporter_stop(Node *n) {
        if (!n->rep_started)
                return;
        uv_mutex_lock(&n->rep_lock);
        n->rep_quit = true;
        uv_cond_signal(&n->rep_cond);
        uv_mutex_unlock(&n->rep_lock);
        uv_thread_join(&n->reporter); /* idle: no report is under way */
        n->rep_started = false;
}

static void status_done(uv_work_t *w, int status) {
        Call *c = w->data;
        Node *n = c->n;
        n->status_busy = false;
        if (status == 0 && c->r >= 0 && c->status == 200) {
                n->status_failures = 0;
                ctl_fine(n);
                node_status_acked(n, c->gen, c->log_seq, c->dropped);
                if (!n->registered)
                        node_registered(n);
                node_apply_assignment(n, c->answer, false);
        } else {
                n->status_failures++;
                ctl_trouble(n, "reporting its status", c->r < 0 ? c->r : 0, c->status);
        }
        call_free(c);
        if (n->status_again && !n->stopping) {
                n->status_again = false;
                ctl_status_send(n);
        }
        node_maybe_close(n);
}

void ctl_status_send(Node *n) {
        if (n->status_busy) {
                n->status_again = true;
                return;
        }
        if (!n->rep_started)
                return;
        Call *c = call_new(n, "PUT", status_timeout_ms(n), -1);
        json_t *body = c ? node_status_body(n, &c->log_seq, &c->dropped) : NULL;
        if (!body || !(c->body = json_dumps(body, JSON_COMPACT))) {
                json_decref(body);
                if (c)
                        call_free(c);
                return;
        }
        json_decref(body);
        c->gen = n->status_gen;
        snprintf(c->path, sizeof c->path, "/v1/nodes/%s/status", n->name);
        c->rq.body = c->body;
        c->rq.body_len = strlen(c->body);
        c->rq.content_type = "application/json";
        uv_mutex_lock(&n->rep_lock);
        n->rep_todo = c;
        uv_cond_signal(&n->rep_cond);
        uv_mutex_unlock(&n->rep_lock);
        n->status_busy = true;
        n->status_again = false;
}

/* ----- the long poll ----- */

static void on_poll_timer(uv_timer_t *t) {
        ctl_poll_start(t->data);
}

static void poll_done(uv_work_t *w, int status) {
        Call *c = w->data;
        Node *n = c->n;
        n->poll_busy = false;
        if (n->stopping) {
                call_free(c);
                node_maybe_close(n);
                return;
        }
        uint64_t delay = 0;
        if (status == 0 && c->r >= 0 && c->status == 200) {
                n->poll_failures = 0;
                ctl_fine(n);
                node_apply_assignment(n, c->answer, true);
        } else if (status == 0 && c->r >= 0 && c->status == 404) {
                /* the controller does not know the node (it lost its state):
                 * register again, then poll */
                n->registered = false;
                ctl_status_send(n);
                delay = 1000;
        } else {
                n->poll_failures++;
                ctl_trouble(n, "waiting for its assignment", c->r < 0 ? c->r : 0, c->status);
                delay = backoff_ms(n->poll_failures - 1, 1000, NODE_BACKOFF_MAX_MS);
        }
        call_free(c);
        if (delay)
                uv_timer_start(&n->poll_timer, on_poll_timer, delay, 0);
        else
                ctl_poll_start(n);
}

void ctl_poll_start(Node *n) {
        if (n->poll_busy || n->stopping || !n->registered || uv_is_active((uv_handle_t *) &n->poll_timer))
                return;
        Call *c = call_new(n, "GET", POLL_TIMEOUT_MS, n->cancel_fd);
        if (!c)
                return;
        snprintf(c->path, sizeof c->path, "/v1/nodes/%s/assignments?after=%llu&waitMs=%d", n->name,
                 (unsigned long long) (n->have_version ? n->version : 0), NODE_POLL_WAIT_MS);
        if (uv_queue_work(n->loop, &c->work, call_work, poll_done) < 0) {
                call_free(c);
                return;
        }
        n->poll_busy = true;
}

/* ----- code ----- */

typedef struct FetchWork {
        uv_work_t work;
        Node *n;
        HttpTarget target;
        char digest[80];
        char why[300];
        int r;
} FetchWork;

static void fetch_work(uv_work_t *w) {
        FetchWork *f = w->data;
        f->r = codecache_fetch(&f->target, f->n->token, f->n->state_dir, f->digest, f->n->cancel_fd, f->why,
                               sizeof f->why);
}

static void fetch_done(uv_work_t *w, int status) {
        FetchWork *f = w->data;
        Node *n = f->n;
        n->fetches--;
        if (status < 0 && f->r >= 0) {
                f->r = -ECANCELED;
                snprintf(f->why, sizeof f->why, "the fetch was cancelled");
        }
        node_fetch_done(n, f->digest, f->r, f->why);
        free(f);
        node_maybe_close(n);
}

int ctl_fetch(Node *n, const char *digest) {
        FetchWork *f = calloc(1, sizeof *f);
        if (!f)
                return -ENOMEM;
        f->n = n;
        f->target = n->ctl;
        f->work.data = f;
        snprintf(f->digest, sizeof f->digest, "%s", digest);
        int r = uv_queue_work(n->loop, &f->work, fetch_work, fetch_done);
        if (r < 0) {
                free(f);
                return r;
        }
        n->fetches++;
        return 0;
}

/* After failed reports, the next waits 1, then 2 heartbeats: never longer,
 * so that a controller that answers again hears from the node well
 * within its lease. */
uint64_t ctl_status_backoff_ms(const Node *n) {
        return n->status_failures ? backoff_ms(n->status_failures - 1, n->heartbeat_ms, 2 * n->heartbeat_ms) : 0;
}
