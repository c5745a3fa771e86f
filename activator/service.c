/* activator/service.c: service mode: the request as HTTP/1.1 on the
 * instance's unix socket (keep-alive, pooled), its answer streamed back as
 * it arrives. Hop-by-hop headers stay on their hop; X-Request-Id,
 * traceparent and X-Forwarded-For are set for the box. */
#define _GNU_SOURCE
#include "activator/conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "activator/auth.h"
#include "lib/util.h"

typedef struct Head {
        char *p;
        size_t len, cap;
        bool oom;
} Head;

static void head_add(Head *h, const char *s, size_t n) {
        if (h->oom)
                return;
        if (h->len + n + 1 > h->cap) {
                size_t cap = h->cap ? h->cap * 2 : 1024;
                while (cap < h->len + n + 1)
                        cap *= 2;
                char *p = realloc(h->p, cap);
                if (!p) {
                        h->oom = true;
                        return;
                }
                h->p = p;
                h->cap = cap;
        }
        memcpy(h->p + h->len, s, n);
        h->len += n;
}

static void head_str(Head *h, const char *s) {
        head_add(h, s, strlen(s));
}

static void head_field(Head *h, const char *k, const char *v) {
        head_str(h, k);
        head_add(h, ": ", 2);
        head_str(h, v);
        head_add(h, "\r\n", 2);
}

/* Whether k is one of names (case-insensitive). The lengths are
 * compared first: most headers match none, and strcasecmp against each
 * name for each header was a measurable part of a request's cost. */
typedef struct HeaderName {
        const char *s;
        size_t len;
} HeaderName;
#define HN(s) { s, sizeof(s) - 1 }

static bool header_in(const char *k, const HeaderName *names, size_t n) {
        size_t len = strlen(k);
        for (size_t i = 0; i < n; i++)
                if (names[i].len == len && strcasecmp(k, names[i].s) == 0)
                        return true;
        return false;
}

/* Headers that belong to one hop, or that we set ourselves. */
static bool header_skipped(const char *k) {
        static const HeaderName skip[] = {
                HN("Connection"), HN("Keep-Alive"), HN("Proxy-Connection"), HN("Transfer-Encoding"), HN("TE"),
                HN("Trailer"), HN("Upgrade"), HN("Content-Length"), HN("Expect"), HN("Host"), HN("X-Request-Id"),
                HN("traceparent"), HN("X-Forwarded-For"), HN("Proxy-Authorization"),
                HN("X-Fnbox-Broker-Auth"),      /* a broker call's signature is for the activator alone */
        };
        return header_in(k, skip, ELEMENTSOF(skip));
}

/* The caller's fnbox token is for the platform: it never reaches a box
 * (which could call the control API with it). */
static bool copy_header(void *cls, const char *k, const char *v) {
        if (strcasecmp(k, "Authorization") == 0 && auth_is_fnbox_bearer(v))
                return true;
        if (!header_skipped(k))
                head_field(cls, k, v);
        return true;
}

/* Dotted quad into buf (INET_ADDRSTRLEN): inet_ntop does it with
 * sprintf, on every request. */
static void ipv4_format(const struct in_addr *a, char *buf) {
        const uint8_t *b = (const uint8_t *) &a->s_addr;
        char *p = buf;
        for (int i = 0; i < 4; i++) {
                unsigned v = b[i];
                if (v >= 100)
                        *p++ = (char) ('0' + v / 100);
                if (v >= 10)
                        *p++ = (char) ('0' + v / 10 % 10);
                *p++ = (char) ('0' + v % 10);
                *p++ = i < 3 ? '.' : 0;
        }
}

static void forwarded_for(Req *q, Head *h) {
        const struct sockaddr *peer = http_peer(q->conn);
        char addr[INET6_ADDRSTRLEN] = "";
        if (peer && peer->sa_family == AF_INET)
                ipv4_format(&((const struct sockaddr_in *) peer)->sin_addr, addr);
        else if (peer && peer->sa_family == AF_INET6)
                inet_ntop(AF_INET6, &((const struct sockaddr_in6 *) peer)->sin6_addr, addr, sizeof addr);
        const char *prev = http_header(q->conn, "X-Forwarded-For");
        if (!addr[0] && !prev)
                return;
        head_str(h, "X-Forwarded-For: ");
        if (prev) {
                head_str(h, prev);
                if (addr[0])
                        head_add(h, ", ", 2);
        }
        head_str(h, addr);
        head_add(h, "\r\n", 2);
}

static int head_build(Req *q, Head *h) {
        const char *host = http_header(q->conn, "Host");
        char num[32];
        head_str(h, q->method);
        head_add(h, " ", 1);
        if (q->rt.sub_len)
                head_add(h, q->rt.sub, q->rt.sub_len);
        else
                head_add(h, "/", 1);
        if (q->path.query) {
                head_add(h, "?", 1);
                head_str(h, q->path.query);
        }
        head_str(h, " HTTP/1.1\r\n");
        head_field(h, "Host", host ? host : "localhost");
        http_headers_each(q->conn, copy_header, h);
        head_field(h, "X-Request-Id", q->reqid);
        head_field(h, "traceparent", q->trace);
        forwarded_for(q, h);
        if (q->body_len || (strcmp(q->method, "GET") != 0 && !q->head_method)) {
                char *p = num + sizeof num;
                size_t v = q->body_len;
                do
                        *--p = (char) ('0' + v % 10);
                while (v /= 10);
                head_str(h, "Content-Length: ");
                head_add(h, p, (size_t) (num + sizeof num - p));
                head_add(h, "\r\n", 2);
        }
        head_add(h, "\r\n", 2);
        return h->oom ? -ENOMEM : 0;
}

static void on_write(uv_write_t *wr, int status) {
        Conn *c = wr->data;
        c->writing = false;
        if (status >= 0 && c->req)
                c->req->may_have_run = true;
        if (status < 0 && !c->closing)
                service_eof(c, status);
}

int service_send(Conn *c) {
        Req *q = c->req;
        Head h = { .p = c->head, .cap = c->head ? c->head_len : 0 };
        c->head = NULL;
        int r = head_build(q, &h);
        c->head = h.p;
        c->head_len = h.cap;
        if (r < 0)
                return r;
        if (!c->hp && !(c->hp = malloc(sizeof *c->hp)))
                return -ENOMEM;
        httpresp_init(c->hp, q->head_method);
        c->headers_seen = c->got_bytes = false;
        uv_buf_t iov[2] = { uv_buf_init(h.p, (unsigned) h.len), uv_buf_init(q->body, (unsigned) q->body_len) };
        unsigned n = q->body_len ? 2 : 1;
        c->wreq.data = c;
        int t = uv_try_write(&c->h.stream, iov, n);
        if (t == UV_EAGAIN)
                t = 0;
        if (t < 0)
                return t;
        size_t done = (size_t) t, k = 0;
        while (k < n && done >= iov[k].len)
                done -= iov[k++].len;
        if (k == n) {
                q->may_have_run = true;
                return 0;
        }
        iov[k].base += done;
        iov[k].len -= done;
        c->writing = true;
        return uv_write(&c->wreq, &c->h.stream, iov + k, n - k, on_write);
}

/* Headers that do not pass back to the client. */
static bool response_header_skipped(const char *k) {
        static const HeaderName skip[] = {
                HN("Connection"), HN("Keep-Alive"), HN("Proxy-Connection"), HN("Transfer-Encoding"), HN("TE"),
                HN("Trailer"), HN("Upgrade"), HN("Content-Length"), HN("Date"), HN("X-Request-Id"), HN("traceparent"),
        };
        return header_in(k, skip, ELEMENTSOF(skip));
}

static void response_headers(const HttpResp *p, HttpResponse *r) {
        for (size_t i = 0; i < p->n_headers; i++)
                if (!response_header_skipped(p->headers[i].name))
                        http_response_header(r, p->headers[i].name, p->headers[i].value);
}

/* The response starts: buffered when it is all here (done), else streamed. */
static void response_begin(Conn *c, Req *q, bool done) {
        HttpResponse *r;
        if (done) {
                char *body = TAKE_PTR(q->out);
                size_t len = q->out_len - q->out_off;
                if (body && q->out_off)
                        memmove(body, body + q->out_off, len);
                q->out_len = q->out_off = q->out_cap = 0;
                r = req_buffer_response(q, body, len);
        } else
                r = req_stream_response(q, c->hp->has_length && !q->head_method ? c->hp->length : HTTP_SIZE_UNKNOWN);
        if (!r) {
                req_fail(q, ACT_INTERNAL, "out of memory");
                return;
        }
        response_headers(c->hp, r);
        req_start(q, r, c->hp->status);
}

void service_input(Conn *c, const char *data, size_t len) {
        Req *q = c->req;
        bool more = true;
        while (!c->closing) {
                const char *body;
                size_t body_len;
                int ev = httpresp_feed(c->hp, &data, &len, &body, &body_len);
                if (ev < 0) {
                        if (q)
                                q->refs++;
                        conn_close(c);
                        if (q && q->conn)
                                req_fail(q, ACT_BAD_GATEWAY, "the instance's answer is not valid HTTP (%s)", strerror(-ev));
                        req_unref(q);
                        return;
                }
                if (ev == HTTPRESP_HEADERS)
                        c->headers_seen = true;
                else if (ev == HTTPRESP_BODY) {
                        if (q)
                                more = req_out(q, body, body_len) && more;
                } else if (ev == HTTPRESP_DONE) {
                        if (q && !q->streaming && q->phase != REQ_SENT)
                                response_begin(c, q, true);
                        if (q)
                                req_backend_done(q, true);
                        conn_finish(c, c->hp->keep_alive && len == 0);
                        return;
                } else
                        break;
        }
        if (q && c->headers_seen && !q->streaming && q->phase != REQ_SENT)
                response_begin(c, q, false);
        if (!more && c->reading) {
                uv_read_stop(&c->h.stream);
                c->reading = false;
        }
}

void service_eof(Conn *c, int error) {
        Req *q = c->req;
        if (q)
                q->refs++;
        if (error == UV_EOF && c->hp && c->headers_seen && httpresp_eof(c->hp) > 0) {
                if (q && !q->streaming)
                        response_begin(c, q, true);
                if (q)
                        req_backend_done(q, true);
                conn_close(c);
                req_unref(q);
                return;
        }
        bool started = c->got_bytes, reused = c->reused;
        Backends *b = c->b;
        conn_close(c);
        if (q && q->conn) {
                if (!started && !q->may_have_run && reused && q->reconnects++ < REQ_RECONNECTS_MAX)
                        backend_start(b, q);    /* a pooled connection the instance had closed */
                else if (!started && !q->may_have_run)
                        req_retry(q, false, "the connection to the instance broke before the request was sent");
                else
                        req_fail(q, ACT_NODE_FAILED, "the instance broke off the request (%s)",
                                 error == UV_EOF ? "closed" : uv_strerror(error));
        }
        req_unref(q);
}
