/* runtime/broker.c: the broker (broker.h). One listening unix socket per
 * instance on the runtime's loop; each connection carries one HTTP/1.1
 * request: its head is parsed and checked here (limits, the path, the
 * caller's depth and deadline, the box's rate), its body read whole (at
 * most max_body), then it goes to the activator over TCP with the box's
 * identity in signed headers and `Connection: close`, and the answer
 * streams back to the box byte for byte (server-sent events included)
 * until the activator closes. A box that reads slowly stops the reading
 * from the activator (backpressure), never the loop. Every call ends with
 * one audit line on stderr (the node's log). */
#define _GNU_SOURCE
#include "broker.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/httpver.h"
#include "lib/list.h"
#include "lib/util.h"

#define HEAD_MS 10000                    /* the request head must be in within this */
#define TARGET_MAX 8192                  /* the request target (414 beyond) */
#define HEADERS_MAX 100                  /* header lines (431 beyond) */
#define READ_CHUNK (64U << 10)
#define BOX_BACKLOG_MAX (1U << 20)       /* bytes queued to a slow box before the activator waits */
#define DRAIN_MS 2000                    /* after the broker's own answer: the box's rest is read this long */
#define DRAIN_MAX (32U << 20)            /* ... and at most this much */

struct Broker {
        uv_loop_t *loop;
        struct sockaddr_storage addr;
        char host[300];                  /* the Host header */
        char *secret;
        unsigned max_depth, burst;
        double rate;
        uint64_t call_ms;
        size_t max_body;
        unsigned refs;                   /* the owner, and each box */
};

typedef struct BrokerConn BrokerConn;

struct BrokerBox {
        Broker *b;
        uv_pipe_t listener;
        char *path;                      /* the socket's host path */
        char *instance, *ns, *caller;    /* caller: fn:NS/FUNCTION@REVISION */
        broker_caller_fn fn;
        void *userdata;
        double tokens;                   /* the rate limit's bucket */
        uint64_t refilled_ns;
        BrokerConn *conns;
        unsigned n_conns;
        bool closing;
        unsigned handles;
};

typedef enum Phase { PH_HEAD, PH_BODY, PH_UPSTREAM, PH_DONE } Phase;

struct BrokerConn {
        BrokerBox *box;
        BrokerConn *prev, *next;
        uv_pipe_t pipe;                  /* the box's end */
        uv_tcp_t up;                     /* the activator's */
        uv_connect_t connect;
        uv_shutdown_t shutdown;
        uv_timer_t timer;
        unsigned handles;
        bool up_open, closing, up_eof, box_eof, answered, up_reading;
        Phase phase;
        char *in;                        /* what the box sent: head, then body */
        size_t in_len, in_cap, head_len, body_len;
        char *req;                       /* the request for the activator */
        size_t req_len;
        size_t backlog;                  /* bytes written to the box, not yet out */
        size_t drained;                  /* bytes of the box's read and dropped after our answer */
        unsigned status;                 /* the answer's status (audit) */
        size_t bytes_down;
        unsigned depth;
        uint64_t start_ns, deadline_ns;
        char method[16], path[128];      /* for the audit line (no query) */
        char error[32];                  /* the broker's own error code, if it answered */
};

static uint64_t mono_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec;
}

/* ----- the broker ----- */

int broker_parse_activator(const char *url, char *host, size_t host_len, unsigned *ret_port) {
        if (!url || strncmp(url, "http://", 7) != 0)
                return -EINVAL;
        const char *h = url + 7, *end = h + strcspn(h, "/"), *colon;
        if (*end && strcmp(end, "/") != 0)
                return -EINVAL;
        if (*h == '[') {
                const char *rb = memchr(h, ']', (size_t) (end - h));
                if (!rb || rb[1] != ':')
                        return -EINVAL;
                colon = rb + 1;
        } else if (!(colon = memchr(h, ':', (size_t) (end - h))))
                return -EINVAL;
        size_t hl = (size_t) (colon - h);
        char port[8];
        size_t pl = (size_t) (end - colon - 1);
        if (hl == 0 || hl >= host_len || pl == 0 || pl >= sizeof port)
                return -EINVAL;
        memcpy(port, colon + 1, pl);
        port[pl] = 0;
        if (strspn(port, "0123456789") != pl || atoi(port) < 1 || atoi(port) > 65535)
                return -EINVAL;
        memcpy(host, h, hl);
        host[hl] = 0;
        *ret_port = (unsigned) atoi(port);
        return 0;
}

/* The activator's address: a numeric IPv4 or IPv6 address, or localhost
 * (no resolver: the runtime is a static binary). */
static int broker_resolve(Broker *b, const char *url) {
        char host[256];
        unsigned port;
        if (broker_parse_activator(url, host, sizeof host, &port) < 0)
                return -EINVAL;
        snprintf(b->host, sizeof b->host, "%.*s", (int) (strcspn(url + 7, "/")), url + 7);
        const char *h = strcmp(host, "localhost") == 0 ? "127.0.0.1" : host;
        struct sockaddr_in *s4 = (struct sockaddr_in *) &b->addr;
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *) &b->addr;
        char inner[256];
        snprintf(inner, sizeof inner, "%s", h[0] == '[' ? h + 1 : h);
        inner[strcspn(inner, "]")] = 0;
        if (inet_pton(AF_INET, inner, &s4->sin_addr) == 1) {
                s4->sin_family = AF_INET;
                s4->sin_port = htons((uint16_t) port);
        } else if (inet_pton(AF_INET6, inner, &s6->sin6_addr) == 1) {
                s6->sin6_family = AF_INET6;
                s6->sin6_port = htons((uint16_t) port);
        } else
                return -EADDRNOTAVAIL;
        return 0;
}

int broker_new(uv_loop_t *loop, const BrokerOptions *o, char *why, size_t why_len, Broker **ret) {
        if (!o->secret || !*o->secret)
                return snprintf(why, why_len, "the broker needs the invoke secret (--invoke-secret-file)"), -EINVAL;
        if (o->max_depth > BROKER_DEPTH_MAX || o->rate < 0 || o->rate > 1e6 || o->burst > 1000000 ||
            o->call_ms > 86400000ULL || o->max_body > (1U << 30))
                return snprintf(why, why_len, "a broker limit is out of range"), -EINVAL;
        Broker *b = calloc(1, sizeof *b);
        if (!b || !(b->secret = strdup(o->secret))) {
                free(b);
                return snprintf(why, why_len, "out of memory"), -ENOMEM;
        }
        int r = broker_resolve(b, o->activator);
        if (r < 0) {
                free(b->secret);
                free(b);
                return snprintf(why, why_len, "--activator %s: expected http://IP:PORT or http://localhost:PORT",
                                o->activator ? o->activator : "(none)"), r;
        }
        b->loop = loop;
        b->max_depth = o->max_depth ? o->max_depth : BROKER_DEPTH_DEFAULT;
        b->rate = o->rate > 0 ? o->rate : BROKER_RATE_DEFAULT;
        b->burst = o->burst ? o->burst : BROKER_BURST_DEFAULT;
        b->call_ms = o->call_ms ? o->call_ms : BROKER_CALL_MS_DEFAULT;
        b->max_body = o->max_body ? o->max_body : BROKER_BODY_DEFAULT;
        b->refs = 1;
        *ret = b;
        return 0;
}

static void broker_unref(Broker *b) {
        if (!b || --b->refs > 0)
                return;
        explicit_bzero(b->secret, strlen(b->secret));
        free(b->secret);
        free(b);
}

void broker_free(Broker *b) {
        broker_unref(b);
}

/* ----- the identity headers (docs/internals.md, "Broker calls") ----- */

void broker_identity_mac(const char *secret, const char *caller, const char *ns, unsigned depth, long long t,
                         char out[65]) {
        char msg[512];
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned mac_len = 0;
        int n = snprintf(msg, sizeof msg, "v1\n%s\n%s\n%u\n%lld", caller, ns, depth, t);
        HMAC(EVP_sha256(), secret, (int) strlen(secret), (const unsigned char *) msg, (size_t) n, mac, &mac_len);
        for (unsigned i = 0; i < 32; i++)
                snprintf(out + 2 * i, 3, "%02x", i < mac_len ? mac[i] : 0);
        out[64] = 0;
}

/* ----- a connection ----- */

static void conn_close(BrokerConn *c);

static void box_release(BrokerBox *x) {
        if (--x->handles > 0)
                return;
        broker_unref(x->b);
        free(x->path);
        free(x->instance);
        free(x->ns);
        free(x->caller);
        free(x);
}

static void on_conn_handle_closed(uv_handle_t *h) {
        BrokerConn *c = h->data;
        if (--c->handles > 0)
                return;
        BrokerBox *x = c->box;
        free(c->in);
        free(c->req);
        free(c);
        box_release(x);
}

static void audit(BrokerConn *c) {
        double ms = (double) (mono_ns() - c->start_ns) / 1e6;
        fprintf(stderr, "fnbox-runtime: broker: %s %s %s %s depth %u -> %u%s%s (%zu bytes in, %zu out, %.1f ms)\n",
                c->box->instance, c->box->caller, c->method[0] ? c->method : "-", c->path[0] ? c->path : "-",
                c->depth, c->status, c->error[0] ? " " : "", c->error, c->in_len, c->bytes_down, ms);
}

static void conn_close(BrokerConn *c) {
        if (c->closing)
                return;
        c->closing = true;
        if (c->phase != PH_HEAD || c->in_len)
                audit(c);
        BrokerBox *x = c->box;
        LIST_REMOVE(x->conns, c);
        x->n_conns--;
        uv_close((uv_handle_t *) &c->pipe, on_conn_handle_closed);
        uv_close((uv_handle_t *) &c->timer, on_conn_handle_closed);
        if (c->up_open)
                uv_close((uv_handle_t *) &c->up, on_conn_handle_closed);
}

typedef struct BoxWrite {
        uv_write_t w;
        BrokerConn *c;
        char *data;
        size_t len;
        bool last;                       /* close the connection once it is out */
} BoxWrite;

static void on_up_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);
static void up_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);

static char drain_buf[READ_CHUNK];      /* what a box sends after its answer: dropped (one loop) */

static void drain_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
        (void) h, (void) hint;
        *buf = uv_buf_init(drain_buf, sizeof drain_buf);
}

static void on_drain_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
        BrokerConn *c = s->data;
        (void) buf;
        if (n < 0 || (c->drained += (size_t) n) > DRAIN_MAX)
                conn_close(c);
}

static void on_drain_timer(uv_timer_t *t) {
        conn_close(t->data);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
        (void) req, (void) status;
}

/* The broker answered before it read the whole request (an error): say
 * that the answer is complete and read what the box still sends (a
 * socket closed with unread data would reset the box's end before it has
 * read the answer), for a while. */
static void conn_drain(BrokerConn *c) {
        c->phase = PH_DONE;
        uv_timer_start(&c->timer, on_drain_timer, DRAIN_MS, 0);
        if (uv_shutdown(&c->shutdown, (uv_stream_t *) &c->pipe, on_shutdown) < 0 ||
            uv_read_start((uv_stream_t *) &c->pipe, drain_alloc, on_drain_read) < 0)
                conn_close(c);
}

static void on_box_written(uv_write_t *w, int status) {
        BoxWrite *bw = (BoxWrite *) w;
        BrokerConn *c = bw->c;
        c->backlog -= bw->len;
        free(bw->data);
        bool last = bw->last;
        free(bw);
        if (c->closing)
                return;
        if (last && status >= 0) {
                conn_drain(c);
                return;
        }
        if (status < 0 || last || (c->up_eof && c->backlog == 0)) {
                conn_close(c);
                return;
        }
        if (c->up_open && !c->up_reading && !c->up_eof && c->backlog < BOX_BACKLOG_MAX / 2 &&
            uv_read_start((uv_stream_t *) &c->up, up_alloc, on_up_read) == 0)
                c->up_reading = true;
}

/* Hand data (malloc'ed, taken) to the box. */
static int box_write(BrokerConn *c, char *data, size_t len, bool last) {
        BoxWrite *bw = calloc(1, sizeof *bw);
        if (!bw) {
                free(data);
                return -ENOMEM;
        }
        *bw = (BoxWrite) { .c = c, .data = data, .len = len, .last = last };
        uv_buf_t b = uv_buf_init(data, (unsigned) len);
        c->backlog += len;
        int r = uv_write(&bw->w, (uv_stream_t *) &c->pipe, &b, 1, on_box_written);
        if (r < 0) {
                c->backlog -= len;
                free(data);
                free(bw);
        }
        return r;
}

static const char *reason_phrase(unsigned st) {
        switch (st) {
        case 400: return "Bad Request";
        case 403: return "Forbidden";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 408: return "Request Timeout";
        case 411: return "Length Required";
        case 413: return "Content Too Large";
        case 414: return "URI Too Long";
        case 429: return "Too Many Requests";
        case 431: return "Request Header Fields Too Large";
        case 500: return "Internal Server Error";
        case 502: return "Bad Gateway";
        case 503: return "Service Unavailable";
        case 504: return "Gateway Timeout";
        case 505: return "HTTP Version Not Supported";
        case 508: return "Loop Detected";
        default: return "Error";
        }
}

/* A JSON string's content: quotes, backslashes and controls escaped. */
static void json_escape(const char *s, char *out, size_t len) {
        size_t o = 0;
        for (; *s && o + 7 < len; s++) {
                unsigned char ch = (unsigned char) *s;
                if (ch == '"' || ch == '\\')
                        o += (size_t) snprintf(out + o, len - o, "\\%c", ch);
                else if (ch < 0x20)
                        o += (size_t) snprintf(out + o, len - o, "\\u%04x", ch);
                else
                        out[o++] = (char) ch;
        }
        out[o] = 0;
}

/* The broker's own answer, in OpenAI's error shape, and the end of the
 * connection. */
static void __attribute__((format(printf, 4, 5)))
conn_fail(BrokerConn *c, unsigned status, const char *code, const char *fmt, ...) {
        char msg[512], esc[1100];
        if (c->closing)
                return;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        json_escape(msg, esc, sizeof esc);
        c->status = status;
        c->answered = true;
        snprintf(c->error, sizeof c->error, "%s", code);
        uv_read_stop((uv_stream_t *) &c->pipe);
        if (c->up_open)
                uv_read_stop((uv_stream_t *) &c->up);
        c->up_reading = false;
        _cleanup_free_ char *body = NULL;
        char *out = NULL;
        int bl = asprintf(&body, "{\"error\":{\"message\":\"%s\",\"type\":\"broker_error\",\"param\":null,"
                                 "\"code\":\"%s\"}}\n", esc, code);
        int n = bl < 0 ? -1
                       : asprintf(&out,
                                  "HTTP/1.1 %u %s\r\nContent-Type: application/json\r\nConnection: close\r\n"
                                  "X-Fnbox-Error: %s\r\n%sContent-Length: %d\r\n\r\n%s",
                                  status, reason_phrase(status), code, status == 429 ? "Retry-After: 1\r\n" : "", bl,
                                  body);
        if (n < 0 || box_write(c, out, (size_t) n, true) < 0)
                conn_close(c);
}

/* ----- the activator's side ----- */

static void up_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
        (void) h;
        (void) hint;
        char *p = malloc(READ_CHUNK);
        *buf = uv_buf_init(p, p ? READ_CHUNK : 0);
}

static void on_up_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
        BrokerConn *c = s->data;
        if (n <= 0) {
                free(buf->base);
                if (n == 0)
                        return;
                c->up_eof = true;
                uv_read_stop(s);
                c->up_reading = false;
                if (!c->answered) {
                        conn_fail(c, 502, "activator_closed", "the activator closed the connection without an answer");
                        return;
                }
                if (c->backlog == 0)
                        conn_close(c);
                return;
        }
        if (!c->answered) {
                c->answered = true;
                unsigned st = 0;
                if ((size_t) n >= 12 && memcmp(buf->base, "HTTP/1.", 7) == 0)
                        st = (unsigned) atoi(buf->base + 9);
                c->status = st;
        }
        c->bytes_down += (size_t) n;
        if (box_write(c, buf->base, (size_t) n, false) < 0) {
                conn_close(c);
                return;
        }
        if (c->backlog >= BOX_BACKLOG_MAX) {
                uv_read_stop(s);
                c->up_reading = false;
        }
}

static void on_up_written(uv_write_t *w, int status) {
        BrokerConn *c = w->data;
        free(w);
        if (c->closing)
                return;
        free(c->req);
        c->req = NULL;
        if (status < 0 && !c->answered)
                conn_fail(c, 502, "activator_unreachable", "could not send the call to the activator: %s",
                          uv_strerror(status));
}

static void on_up_connected(uv_connect_t *req, int status) {
        BrokerConn *c = req->data;
        if (c->closing)
                return;
        if (status < 0) {
                conn_fail(c, 502, "activator_unreachable", "the activator is not reachable: %s", uv_strerror(status));
                return;
        }
        uv_write_t *w = malloc(sizeof *w);
        uv_buf_t bufs[2] = { uv_buf_init(c->req, (unsigned) c->req_len),
                             uv_buf_init(c->in + c->head_len, (unsigned) c->body_len) };
        if (!w) {
                conn_fail(c, 500, "internal", "out of memory");
                return;
        }
        w->data = c;
        int r = uv_write(w, (uv_stream_t *) &c->up, bufs, c->body_len ? 2 : 1, on_up_written);
        if (r < 0) {
                free(w);
                conn_fail(c, 502, "activator_unreachable", "could not send the call: %s", uv_strerror(r));
                return;
        }
        if (uv_read_start((uv_stream_t *) &c->up, up_alloc, on_up_read) == 0)
                c->up_reading = true;
}

static void on_deadline(uv_timer_t *t) {
        BrokerConn *c = t->data;
        if (c->phase == PH_HEAD || c->phase == PH_BODY) {
                conn_fail(c, 408, "request_timeout", "the request did not arrive in time");
                return;
        }
        if (!c->answered) {
                conn_fail(c, 504, "deadline", "no answer within the call's deadline (%.0f ms, never past the "
                          "calling request's own)", (double) (c->deadline_ns - c->start_ns) / 1e6);
                return;
        }
        snprintf(c->error, sizeof c->error, "deadline");
        conn_close(c); /* mid-answer: the box sees the connection end */
}

static void forward(BrokerConn *c) {
        Broker *b = c->box->b;
        c->phase = PH_UPSTREAM;
        uv_read_stop((uv_stream_t *) &c->pipe);
        int r = uv_tcp_init(b->loop, &c->up);
        if (r < 0) {
                conn_fail(c, 500, "internal", "%s", uv_strerror(r));
                return;
        }
        c->up.data = c;
        c->up_open = true;
        c->handles++;
        (void) uv_tcp_nodelay(&c->up, 1);
        c->connect.data = c;
        if ((r = uv_tcp_connect(&c->connect, &c->up, (const struct sockaddr *) &b->addr, on_up_connected)) < 0)
                conn_fail(c, 502, "activator_unreachable", "the activator is not reachable: %s", uv_strerror(r));
}

/* ----- the request from the box ----- */

/* Request headers that never pass: hop-by-hop ones, what we set, and
 * anything that could claim an identity. */
static bool header_dropped(const char *k, size_t kl) {
        static const char *const drop[] = {
                "authorization", "proxy-authorization", "connection", "keep-alive", "proxy-connection", "te",
                "trailer", "upgrade", "host", "content-length", "transfer-encoding", "expect", "forwarded",
                "x-forwarded-for", "x-forwarded-host", "x-real-ip", "cookie",
        };
        if (kl >= 8 && strncasecmp(k, "x-fnbox-", 8) == 0)
                return true;
        for (size_t i = 0; i < ELEMENTSOF(drop); i++)
                if (strlen(drop[i]) == kl && strncasecmp(k, drop[i], kl) == 0)
                        return true;
        return false;
}

static bool tchar(unsigned char ch) {
        return isalnum(ch) || strchr("!#$%&'*+-.^_`|~", ch);
}

typedef struct Head {
        char method[16];
        const char *target;
        size_t target_len;
        uint64_t content_length;
        bool has_length, chunked, expect_continue;
        long depth_hint;                 /* X-Fnbox-Depth the box sent (services only), or -1 */
} Head;

static int parse_request_line(const char *p, size_t len, Head *h, size_t *ret_used) {
        const char *end = memmem(p, len, "\r\n", 2), *sp1, *sp2;
        if (!end || !(sp1 = memchr(p, ' ', (size_t) (end - p))) || !(sp2 = memchr(sp1 + 1, ' ', (size_t) (end - sp1 - 1))))
                return -EBADMSG;
        size_t ml = (size_t) (sp1 - p);
        if (ml == 0 || ml >= sizeof h->method)
                return -EBADMSG;
        for (size_t i = 0; i < ml; i++)
                if (!tchar((unsigned char) p[i]))
                        return -EBADMSG;
        memcpy(h->method, p, ml);
        h->method[ml] = 0;
        h->target = sp1 + 1;
        h->target_len = (size_t) (sp2 - sp1 - 1);
        if (h->target_len > TARGET_MAX)
                return -ENAMETOOLONG;
        int v = http_version_parse(sp2 + 1, (size_t) (end - sp2 - 1));
        if (v < 0)
                return v;       /* -EPROTONOSUPPORT: well-formed, not one we speak (505) */
        for (size_t i = 0; i < h->target_len; i++)
                if ((unsigned char) h->target[i] <= 0x20 || h->target[i] == 0x7f)
                        return -EBADMSG;
        *ret_used = (size_t) (end - p) + 2;
        return 0;
}

/* The header fields, checked; those that pass are appended to out. */
static int parse_headers(const char *p, size_t len, Head *h, FILE *out, const char **why) {
        unsigned n = 0;
        while (len > 2) {
                const char *end = memmem(p, len, "\r\n", 2);
                if (!end)
                        return *why = "a header line does not end", -EBADMSG;
                const char *colon = memchr(p, ':', (size_t) (end - p));
                if (++n > HEADERS_MAX)
                        return *why = "too many header fields", -E2BIG;
                if (!colon || colon == p)
                        return *why = "a header line without a name", -EBADMSG;
                size_t kl = (size_t) (colon - p);
                for (size_t i = 0; i < kl; i++)
                        if (!tchar((unsigned char) p[i]))
                                return *why = "a header name with a character not allowed", -EBADMSG;
                const char *v = colon + 1, *ve = end;
                while (v < ve && (*v == ' ' || *v == '\t'))
                        v++;
                while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                        ve--;
                for (const char *q = v; q < ve; q++)
                        if (((unsigned char) *q < 0x20 && *q != '\t') || *q == 0x7f)
                                return *why = "a header value with a control character", -EBADMSG;
                size_t vl = (size_t) (ve - v);
                char val[32];
                snprintf(val, sizeof val, "%.*s", (int) (vl < sizeof val - 1 ? vl : sizeof val - 1), v);
                if (kl == 14 && strncasecmp(p, "content-length", kl) == 0) {
                        char *e = NULL;
                        unsigned long long cl = strtoull(val, &e, 10);
                        if (vl == 0 || vl > 19 || strspn(val, "0123456789") != vl || (h->has_length && cl != h->content_length))
                                return *why = "Content-Length is not a number", -EBADMSG;
                        h->content_length = cl;
                        h->has_length = true;
                } else if (kl == 17 && strncasecmp(p, "transfer-encoding", kl) == 0)
                        h->chunked = true;
                else if (kl == 6 && strncasecmp(p, "expect", kl) == 0 && strncasecmp(val, "100-continue", 12) == 0)
                        h->expect_continue = true;
                else if (kl == 13 && strncasecmp(p, "x-fnbox-depth", kl) == 0 && vl && vl <= 3 &&
                         strspn(val, "0123456789") == vl)
                        h->depth_hint = atol(val);
                if (!header_dropped(p, kl))
                        fprintf(out, "%.*s: %.*s\r\n", (int) kl, p, (int) vl, v);
                len -= (size_t) (end - p) + 2;
                p = end + 2;
        }
        return 0;
}

/* A dot segment ("." or "..", also percent-encoded) in the path. */
static bool has_dot_segment(const char *t, size_t len) {
        for (size_t i = 0; i < len; i++) {
                if (t[i] != '/')
                        continue;
                size_t k = i + 1, dots = 0;
                while (k < len) {
                        if (t[k] == '.')
                                k++, dots++;
                        else if (k + 2 < len && t[k] == '%' && t[k + 1] == '2' && (t[k + 2] == 'e' || t[k + 2] == 'E'))
                                k += 3, dots++;
                        else
                                break;
                }
                if (dots && dots <= 2 && (k == len || t[k] == '/'))
                        return true;
        }
        return false;
}

/* The target for the activator: /v1/... as it is; /fn/NAME[/...] and
 * /fn/NS/NAME[/...] with NS the box's own namespace become
 * /fn/NS/NAME[/...]; /skills/ likewise. -ENOENT for anything else. */
static int target_rewrite(const BrokerBox *x, const Head *h, char **ret) {
        const char *t = h->target;
        size_t len = h->target_len, plen = strcspn(t, "?");
        if (plen > len)
                plen = len;
        if (has_dot_segment(t, plen))
                return -EINVAL;
        if (len > 4 && strncmp(t, "/v1/", 4) == 0)
                return asprintf(ret, "%.*s", (int) len, t) < 0 ? -ENOMEM : 0;
        size_t pl = len > 4 && strncmp(t, "/fn/", 4) == 0 ? 4 : len > 8 && strncmp(t, "/skills/", 8) == 0 ? 8 : 0;
        if (pl == 0)
                return -ENOENT;
        const char *rest = t + pl;
        size_t rl = len - pl, seg = strcspn(rest, "/?");
        if (seg > rl)
                seg = rl;
        if (seg == 0)
                return -ENOENT;
        size_t nsl = strlen(x->ns);
        /* NS/NAME with the box's own namespace: already explicit */
        if (seg == nsl && strncmp(rest, x->ns, nsl) == 0 && seg < rl && rest[seg] == '/' && seg + 1 < rl &&
            rest[seg + 1] != '/' && rest[seg + 1] != '?')
                return asprintf(ret, "%.*s", (int) len, t) < 0 ? -ENOMEM : 0;
        return asprintf(ret, "%.*s%s/%.*s", (int) pl, t, x->ns, (int) rl, rest) < 0 ? -ENOMEM : 0;
}

/* The caller's depth and deadline; false when the call is refused (answered). */
static bool conn_limits(BrokerConn *c, const Head *h) {
        BrokerBox *x = c->box;
        Broker *b = x->b;
        BrokerCaller who = { 0 };
        struct ucred cred;
        socklen_t cl = sizeof cred;
        uv_os_fd_t fd;
        if (uv_fileno((uv_handle_t *) &c->pipe, &fd) < 0 || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0) {
                conn_fail(c, 500, "internal", "cannot tell who called");
                return false;
        }
        x->fn(cred.pid, &who, x->userdata);
        unsigned depth = who.depth;
        /* a service serves many requests at once through one socket: the
         * depth of the one it calls for is what its box says it is (the
         * X-Fnbox-Depth its own request came with), never less than 0 */
        if (!who.known && h->depth_hint > 0)
                depth = h->depth_hint > BROKER_DEPTH_MAX ? BROKER_DEPTH_MAX + 1 : (unsigned) h->depth_hint;
        c->depth = depth + 1;
        if (c->depth > b->max_depth) {
                conn_fail(c, 508, "depth_exceeded",
                          "calls nested %u deep: at most %u (a box calling itself forever is stopped here)", c->depth,
                          b->max_depth);
                return false;
        }
        uint64_t now = mono_ns(), deadline = now + b->call_ms * 1000000ULL;
        if (who.deadline_ns && who.deadline_ns < deadline)
                deadline = who.deadline_ns;
        if (deadline <= now + 1000000ULL) {
                conn_fail(c, 504, "deadline", "the calling request has no time left");
                return false;
        }
        c->deadline_ns = deadline;
        /* the rate: a token bucket per instance */
        x->tokens += (double) (now - x->refilled_ns) / 1e9 * b->rate;
        if (x->tokens > b->burst)
                x->tokens = b->burst;
        x->refilled_ns = now;
        if (x->tokens < 1) {
                conn_fail(c, 429, "rate_limited", "over the broker's rate limit of %.0f calls per second (burst %u)",
                          b->rate, b->burst);
                return false;
        }
        x->tokens -= 1;
        return true;
}

/* The request for the activator, from the checked head. */
static int build_request(BrokerConn *c, const Head *h, const char *target, const char *headers, size_t headers_len) {
        BrokerBox *x = c->box;
        Broker *b = x->b;
        char mac[65];
        long long t = (long long) time(NULL);
        broker_identity_mac(b->secret, x->caller, x->ns, c->depth, t, mac);
        FILE *f = open_memstream(&c->req, &c->req_len);
        if (!f)
                return -ENOMEM;
        fprintf(f, "%s %s HTTP/1.1\r\nHost: %s\r\n", h->method, target, b->host);
        fwrite(headers, 1, headers_len, f);
        fprintf(f, "X-Fnbox-Caller: %s\r\nX-Fnbox-Namespace: %s\r\nX-Fnbox-Depth: %u\r\n"
                   "X-Fnbox-Broker-Auth: v1 %lld %s\r\n",
                x->caller, x->ns, c->depth, t, mac);
        if (c->body_len || (strcmp(h->method, "GET") && strcmp(h->method, "HEAD")))
                fprintf(f, "Content-Length: %zu\r\n", c->body_len);
        fputs("Connection: close\r\n\r\n", f);
        return fclose(f) == 0 ? 0 : -ENOMEM;
}

/* The head is complete (head_len bytes of in): check it all, then read
 * the body or go. */
#define FAIL(...) do { conn_fail(__VA_ARGS__); return; } while (0)

static void head_done(BrokerConn *c) {
        BrokerBox *x = c->box;
        Head h = { .depth_hint = -1 };
        size_t used = 0;
        const char *why = NULL;
        int r = parse_request_line(c->in, c->head_len, &h, &used);
        if (r == -ENAMETOOLONG)
                FAIL(c, 414, "uri_too_long", "the request target is over %u bytes", TARGET_MAX);
        if (r == -EPROTONOSUPPORT)
                FAIL(c, 505, "http_version_not_supported", "only HTTP/1.1 and HTTP/1.0 are served here");
        if (r < 0)
                FAIL(c, 400, "bad_request", "malformed request line (expected METHOD /path HTTP/1.1)");
        snprintf(c->method, sizeof c->method, "%s", h.method);
        snprintf(c->path, sizeof c->path, "%.*s", (int) strcspn(h.target, "? "), h.target);
        _cleanup_free_ char *headers = NULL, *target = NULL;
        size_t headers_len = 0;
        FILE *f = open_memstream(&headers, &headers_len);
        if (!f)
                FAIL(c, 500, "internal", "out of memory");
        r = parse_headers(c->in + used, c->head_len - used, &h, f, &why);
        fclose(f);
        if (r == -E2BIG)
                FAIL(c, 431, "headers_too_large", "%s (at most %u)", why, HEADERS_MAX);
        if (r < 0)
                FAIL(c, 400, "bad_request", "%s", why);
        if (h.chunked)
                FAIL(c, 411, "length_required", "send the body with a Content-Length, not chunked");
        if (h.content_length > x->b->max_body)
                FAIL(c, 413, "body_too_large", "the request body is over the broker's limit of %zu bytes",
                                 x->b->max_body);
        r = target_rewrite(x, &h, &target);
        if (r == -EINVAL)
                FAIL(c, 400, "bad_path", "the path has a dot segment");
        if (r < 0)
                FAIL(c, r == -ENOMEM ? 500 : 404, r == -ENOMEM ? "internal" : "not_found",
                                 "the broker serves /v1/... (the LLM gateway), /fn/NAME and /skills/NAME (functions "
                                 "and skills of namespace %s), nothing else", x->ns);
        if (!conn_limits(c, &h))
                return;
        c->body_len = (size_t) h.content_length;
        if (build_request(c, &h, target, headers, headers_len) < 0)
                FAIL(c, 500, "internal", "out of memory");
        uv_timer_start(&c->timer, on_deadline, (c->deadline_ns - mono_ns()) / 1000000 + 1, 0);
        if (h.expect_continue && c->in_len - c->head_len < c->body_len) {
                static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
                char *copy = strdup(cont);
                if (!copy || box_write(c, copy, sizeof cont - 1, false) < 0) {
                        conn_close(c);
                        return;
                }
        }
        c->phase = PH_BODY;
}

static void box_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
        BrokerConn *c = h->data;
        (void) hint;
        size_t want = c->phase == PH_HEAD ? BROKER_HEAD_MAX + 1 : c->head_len + c->body_len + 1;
        if (c->in_cap < want) {
                char *p = realloc(c->in, want);
                if (!p) {
                        *buf = uv_buf_init(NULL, 0);
                        return;
                }
                c->in = p;
                c->in_cap = want;
        }
        *buf = uv_buf_init(c->in + c->in_len, (unsigned) (c->in_cap - c->in_len));
}

static void on_box_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
        BrokerConn *c = s->data;
        (void) buf;
        if (n == 0 || c->closing)
                return;
        if (n < 0) {
                /* the box hung up (or failed) before its request was whole */
                if (n == UV_ENOBUFS)
                        conn_fail(c, 500, "internal", "out of memory");
                else
                        conn_close(c);
                return;
        }
        c->in_len += (size_t) n;
        if (c->phase == PH_HEAD) {
                const char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
                if (!end) {
                        if (c->in_len > BROKER_HEAD_MAX)
                                conn_fail(c, 431, "headers_too_large", "the request line and headers are over %u bytes",
                                          BROKER_HEAD_MAX);
                        return;
                }
                c->head_len = (size_t) (end - c->in) + 4;
                head_done(c);
                if (c->closing || c->answered)
                        return;
        }
        if (c->phase == PH_BODY && c->in_len >= c->head_len + c->body_len)
                forward(c);
}

static void on_connection(uv_stream_t *server, int status) {
        BrokerBox *x = server->data;
        if (status < 0 || x->closing)
                return;
        BrokerConn *c = calloc(1, sizeof *c);
        if (!c)
                return;
        c->box = x;
        c->start_ns = mono_ns();
        uv_pipe_init(x->b->loop, &c->pipe, 0);
        uv_timer_init(x->b->loop, &c->timer);
        c->pipe.data = c->timer.data = c;
        c->handles = 2;
        x->handles++;
        LIST_PREPEND(x->conns, c);
        x->n_conns++;
        if (uv_accept(server, (uv_stream_t *) &c->pipe) < 0) {
                conn_close(c);
                return;
        }
        if (x->n_conns > BROKER_CONNS_MAX) {
                conn_fail(c, 503, "too_many_calls", "this box has %u calls in flight: at most %u", x->n_conns - 1,
                          BROKER_CONNS_MAX);
                return;
        }
        uv_timer_start(&c->timer, on_deadline, HEAD_MS, 0);
        if (uv_read_start((uv_stream_t *) &c->pipe, box_alloc, on_box_read) < 0)
                conn_close(c);
}

/* ----- a box's socket ----- */

static void on_listener_closed(uv_handle_t *h) {
        box_release(h->data);
}

int broker_box_open(Broker *b, const char *dir, uid_t box_uid, const BrokerIdentity *id, broker_caller_fn fn,
                    void *userdata, BrokerBox **ret) {
        _cleanup_close_ int dfd = -1;
        BrokerBox *x = calloc(1, sizeof *x);
        if (!x)
                return -ENOMEM;
        x->b = b;
        b->refs++;
        x->fn = fn;
        x->userdata = userdata;
        x->tokens = b->burst;
        x->refilled_ns = mono_ns();
        x->handles = 1;
        int r = uv_pipe_init(b->loop, &x->listener, 0);
        if (r < 0) {
                broker_unref(b);
                free(x);
                return r;
        }
        x->listener.data = x;
        if (asprintf(&x->path, "%s/%s", dir, BROKER_SOCKET_NAME) < 0 || !(x->instance = strdup(id->instance)) ||
            !(x->ns = strdup(id->ns)) ||
            asprintf(&x->caller, "fn:%s/%s@%s", id->ns, id->function, id->revision) < 0) {
                x->caller = NULL;
                r = -ENOMEM;
                goto fail;
        }
        (void) unlink(x->path);
        if ((r = uv_pipe_bind(&x->listener, x->path)) < 0)
                goto fail;
        /* the box's uid may connect, nobody else (root aside); the folder
         * is the instance's own, which no box is running in yet */
        if (lchown(x->path, box_uid, box_uid) < 0 || chmod(x->path, 0600) < 0) {
                r = negative_errno();
                goto fail;
        }
        if ((r = uv_listen((uv_stream_t *) &x->listener, 128, on_connection)) < 0)
                goto fail;
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0 || (r = broker_helpers_write(dfd)) < 0) {
                r = dfd < 0 ? negative_errno() : r;
                goto fail;
        }
        *ret = x;
        return 0;
fail:
        if (x->path)
                (void) unlink(x->path);
        x->closing = true;
        uv_close((uv_handle_t *) &x->listener, on_listener_closed);
        return r;
}

void broker_box_close(BrokerBox *x) {
        if (!x || x->closing)
                return;
        x->closing = true;
        (void) unlink(x->path);
        while (x->conns)
                conn_close(x->conns);
        uv_close((uv_handle_t *) &x->listener, on_listener_closed);
}

/* ----- the helpers (runtime/box/, linked in by zygote_blob.S) ----- */

extern const char broker_helper_call[], broker_helper_py[], broker_helper_js[];

int broker_helpers_write(int dir_fd) {
        static const struct { const char *name; const char *data; mode_t mode; } files[] = {
                { "fnbox-call", broker_helper_call, 0555 },
                { "fnbox.py", broker_helper_py, 0444 },
                { "fnbox.js", broker_helper_js, 0444 },
        };
        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                (void) unlinkat(dir_fd, files[i].name, 0);
                _cleanup_close_ int fd = openat(dir_fd, files[i].name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                                                files[i].mode);
                if (fd < 0 || write_all(fd, files[i].data, strlen(files[i].data)) < 0 || fchmod(fd, files[i].mode) < 0)
                        return negative_errno();
        }
        return 0;
}
