/* activator/conn.c: pools of backend connections (see conn.h): connect,
 * write a request, read the answer into the worker's shared buffer and
 * hand it to the protocol (fresh.c or service.c), deadlines, and what a
 * broken connection means for its request. */
#define _GNU_SOURCE
#include "activator/conn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

static size_t pool_hash(const char *s) {
        uint64_t h = 1469598103934665603ull;
        for (; *s; s++)
                h = (h ^ (unsigned char) *s) * 1099511628211ull;
        return (size_t) (h % CONN_POOL_BUCKETS);
}

static Pool *pool_get(Backends *b, const char *addr) {
        size_t h = pool_hash(addr);
        for (Pool *p = b->pools[h]; p; p = p->next)
                if (strcmp(p->addr, addr) == 0)
                        return p;
        Pool *p = calloc(1, sizeof *p);
        if (!p || !(p->addr = strdup(addr))) {
                free(p);
                return NULL;
        }
        p->next = b->pools[h];
        b->pools[h] = p;
        return p;
}

static void pool_drop_if_empty(Backends *b, Pool *p) {
        if (p->n_conns > 0 || !b)
                return;
        for (Pool **pp = &b->pools[pool_hash(p->addr)]; *pp; pp = &(*pp)->next)
                if (*pp == p) {
                        *pp = p->next;
                        break;
                }
        free(p->addr);
        free(p);
}

int backends_new(Worker *w, uv_loop_t *loop, const char *invoke_secret, Backends **ret) {
        Backends *b = calloc(1, sizeof *b);
        if (!b)
                return -ENOMEM;
        b->w = w;
        b->loop = loop;
        if (invoke_secret && !(b->secret = strdup(invoke_secret))) {
                free(b);
                return -ENOMEM;
        }
        *ret = b;
        return 0;
}

void backends_free(Backends *b) {
        if (!b)
                return;
        while (b->conns) {
                Conn *c = b->conns;
                c->pool = NULL;
                conn_close(c);
        }
        for (size_t i = 0; i < CONN_POOL_BUCKETS; i++)
                for (Pool *p = b->pools[i], *n; p; p = n) {
                        n = p->next;
                        free(p->addr);
                        free(p);
                }
        free(b->secret);
        free(b);
}

/* ---- closing ---------------------------------------------------------------- */

static void conn_closed(uv_handle_t *h) {
        Conn *c = h->data;
        proto_reader_clear(&c->rd);
        proto_reply_clear(&c->reply);
        proto_buf_clear(&c->wbuf);
        free(c->stdin_heads);
        free(c->iov);
        free(c->hp);
        free(c->head);
        free(c->err_tail);
        free(c);
}

void conn_detach(Conn *c) {
        Req *q = c->req;
        if (!q)
                return;
        c->req = NULL;
        q->be = NULL;
        req_unref(q);
}

void conn_close(Conn *c) {
        if (c->closing)
                return;
        c->closing = true;
        if (c->all_prev)
                c->all_prev->all_next = c->all_next;
        else
                c->b->conns = c->all_next;
        if (c->all_next)
                c->all_next->all_prev = c->all_prev;
        conn_detach(c);
        if (c->pool) {
                c->pool->n_conns--;
                pool_drop_if_empty(c->b, c->pool);
                c->pool = NULL;
        }
        if (c->h_init)
                uv_close(&c->h.handle, conn_closed);
        else {
                c->h.handle.data = c;
                conn_closed(&c->h.handle);
        }
}

void conn_finish(Conn *c, bool reusable) {
        conn_detach(c);
        if (!reusable || c->writing || !c->pool || c->pool->n_idle >= CONN_IDLE_MAX) {
                conn_close(c);
                return;
        }
        c->reused = c->idle = true;
        c->next = c->pool->idle;
        c->pool->idle = c;
        c->pool->n_idle++;
        conn_read_start(c);     /* to notice a close while idle */
}

/* ---- reading ------------------------------------------------------------------ */

static void on_alloc(uv_handle_t *h, size_t hint _unused_, uv_buf_t *buf) {
        Conn *c = h->data;
        *buf = uv_buf_init(c->b->rbuf, sizeof c->b->rbuf);
}

static void idle_closed_by_peer(Conn *c) {
        Pool *p = c->pool;
        for (Conn **pp = &p->idle; *pp; pp = &(*pp)->next)
                if (*pp == c) {
                        *pp = c->next;
                        p->n_idle--;
                        break;
                }
        c->idle = false;
        conn_close(c);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
        Conn *c = s->data;
        if (n == 0)
                return;
        if (c->idle) {          /* closed (or stray bytes) while idle: drop it */
                idle_closed_by_peer(c);
                return;
        }
        if (n < 0) {
                if (c->fresh)
                        fresh_eof(c, (int) n);
                else
                        service_eof(c, (int) n);
                return;
        }
        c->got_bytes = true;
        if (c->fresh)
                fresh_input(c, buf->base, (size_t) n);
        else
                service_input(c, buf->base, (size_t) n);
}

void conn_read_start(Conn *c) {
        if (c->reading || c->closing)
                return;
        if (uv_read_start(&c->h.stream, on_alloc, on_read) == 0)
                c->reading = true;
}

void backend_read_again(Req *q) {
        if (q->be)
                conn_read_start(q->be);
}

/* ---- a request -------------------------------------------------------------------- */

static void conn_broken(Conn *c, int error) {
        if (c->fresh)
                fresh_eof(c, error);
        else
                service_eof(c, error);
}

static void on_deadline(uv_timer_t *t) {
        Req *q = t->data;
        Conn *c = q->be;
        if (!c)
                return;
        conn_close(c);
        req_fail(q, ACT_TIMEOUT, "the instance did not answer within %.1fs",
                 (double) (q->rt.params.timeout_ms + (q->rt.params.mode == ROUTE_FRESH ? CONN_FRESH_GRACE_MS : 0)) / 1e3);
}

static void conn_send(Conn *c) {
        int r = c->fresh ? fresh_send(c) : service_send(c);
        if (r < 0)
                conn_broken(c, r);
        else
                conn_read_start(c);
}

static void on_connect(uv_connect_t *cr, int status) {
        Conn *c = cr->data;
        if (c->closing)
                return;
        if (status < 0) {
                Req *q = c->req;
                /* nobody listens there: the instance (or its node) is gone */
                bool gone = status == UV_ECONNREFUSED || status == UV_ENOENT || status == UV_ECONNRESET;
                char why[ROUTE_ADDR_MAX + 64];
                snprintf(why, sizeof why, "cannot connect to %s: %s", c->pool ? c->pool->addr : "the instance",
                         uv_strerror(status));
                if (q)
                        q->refs++;
                conn_close(c);
                if (q && q->conn)
                        req_retry(q, gone, gone ? NULL : why);
                req_unref(q);
                return;
        }
        c->connected = true;
        if (c->req)
                conn_send(c);
}

static int conn_connect(Backends *b, Conn *c, const char *addr) {
        int r;
        c->creq.data = c;
        if (strncmp(addr, "unix:", 5) == 0) {
                if ((r = uv_pipe_init(b->loop, &c->h.pipe, 0)) < 0)
                        return r;
                c->h_init = true;
                c->h.handle.data = c;
                uv_pipe_connect(&c->creq, &c->h.pipe, addr + 5, on_connect);
                return 0;
        }
        /* tcp:HOST:PORT with a numeric address */
        char host[256];
        const char *colon = strrchr(addr + 4, ':');
        struct sockaddr_storage ss;
        if (!colon || (size_t) (colon - addr - 4) >= sizeof host)
                return -EINVAL;
        memcpy(host, addr + 4, (size_t) (colon - addr - 4));
        host[colon - addr - 4] = 0;
        if (host[0] == '[') {
                memmove(host, host + 1, strlen(host));
                host[strcspn(host, "]")] = 0;
        }
        int port = atoi(colon + 1);
        if (uv_ip4_addr(host, port, (struct sockaddr_in *) &ss) < 0 &&
            uv_ip6_addr(host, port, (struct sockaddr_in6 *) &ss) < 0)
                return -EINVAL;
        if ((r = uv_tcp_init(b->loop, &c->h.tcp)) < 0)
                return r;
        c->h_init = true;
        c->h.handle.data = c;
        uv_tcp_nodelay(&c->h.tcp, 1);
        return uv_tcp_connect(&c->creq, &c->h.tcp, (struct sockaddr *) &ss, on_connect);
}

static Conn *conn_get(Backends *b, Pool *p, bool fresh, bool *ret_new) {
        Conn *c = p->idle;
        if (c) {
                p->idle = c->next;
                p->n_idle--;
                c->next = NULL;
                c->idle = false;
                *ret_new = false;
                return c;
        }
        c = calloc(1, sizeof *c);
        if (!c)
                return NULL;
        c->b = b;
        c->fresh = fresh;
        c->pool = p;
        c->all_next = b->conns;
        if (b->conns)
                b->conns->all_prev = c;
        b->conns = c;
        p->n_conns++;
        *ret_new = true;
        return c;
}

void backend_start(Backends *b, Req *q) {
        const char *addr = q->rt.slot->addr;
        bool fresh = q->rt.params.mode == ROUTE_FRESH, is_new;
        Pool *p = pool_get(b, addr);
        Conn *c = p ? conn_get(b, p, fresh, &is_new) : NULL;
        if (!c) {
                req_fail(q, ACT_INTERNAL, "out of memory");
                return;
        }
        c->req = q;
        q->be = c;
        q->refs++;
        uint64_t ms = q->rt.params.timeout_ms + (fresh ? CONN_FRESH_GRACE_MS : 0);
        uv_timer_start(&q->timer, on_deadline, ms, 0);
        if (!is_new) {
                conn_send(c);
                return;
        }
        int r = conn_connect(b, c, addr);
        if (r < 0) {
                c->req = NULL;
                q->be = NULL;
                q->refs--;
                conn_close(c);
                req_fail(q, ACT_NODE_FAILED, "cannot connect to %s: %s", addr, uv_strerror(r));
        }
}

void backend_abort(Req *q) {
        if (q->be)
                conn_close(q->be);
}
