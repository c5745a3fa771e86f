/* activator/http.c: the activator's HTTP/1.1 server side (see http.h). */
#define _GNU_SOURCE
#include "activator/http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "activator/httpreq.h"
#include "lib/list.h"
#include "lib/util.h"

#define BUF_START   4096u           /* a connection's read buffer at first; it grows for a long head */
#define WRITE_HIGH  (256u << 10)    /* bytes waiting in the socket's queue: stop asking the reader */
#define STREAM_MAX  (64u << 10)     /* a streamed piece */
#define LINGER_MS   2000u           /* after an early answer: the rest of the body, while it keeps coming */
#define LINGER_MAX_MS 10000u        /* ...and no longer than this */
#define SWEEP_MS    1000u

enum {
        CS_HEAD,        /* reading a request's line and headers (or idle between requests) */
        CS_BODY,        /* reading its body */
        CS_WAIT,        /* the body is in; no answer yet */
        CS_ANSWER,      /* answering */
        CS_LINGER,      /* answered early and written: dropping the rest of the body until EOF */
        CS_CLOSED,
};

struct HttpResponse {
        char *body;
        size_t len;
        uint64_t size;                  /* streamed: Content-Length, or HTTP_SIZE_UNKNOWN */
        HttpReader reader;
        void *cls;
        void (*free_cls)(void *cls);
        char *head;                     /* "Name: value\r\n"... */
        size_t head_len, head_cap;
        bool oom;
};

struct HttpConn {
        uv_tcp_t tcp;
        HttpServer *s;
        HttpConn *prev, *next;          /* the server's connections */
        HttpConn *pend_next;            /* the server's pending list */
        bool pending;
        int state;
        char *buf;                      /* the head (while a request lives), then input not handled yet */
        size_t len, cap, pos;           /* bytes in buf; its size; the next byte to handle */
        size_t head_len;                /* the current request's head in buf (0: not complete) */
        HttpReqScan scan;               /* the search for the head's end */
        uint64_t last_ms;               /* the last byte read or written, or the queue seen draining */
        size_t last_queued;             /* the socket's write queue at the last sweep */
        uint64_t head_since;            /* the first byte of the head being read (with head_started) */
        bool head_started;
        bool reading;

        /* the request */
        HttpReq rq;                     /* its line and headers, parsed in buf */
        bool body_done, body_skip;
        uint64_t body_left;             /* Content-Length bytes still to come */
        HttpChunked chunks;             /* a chunked body's framing */
        uint64_t discarded;
        bool bad_body;                  /* malformed chunked framing */
        void *ctx;                      /* the handler's, from begin to done */
        bool eof, hung_up;

        /* the answer */
        bool answered, close_after, stream_waiting, stream_ended, answer_written, failed;
        uint64_t sent;                  /* streamed body bytes */
        uint64_t linger_since;
        unsigned status;
        HttpResponse *resp;
        size_t wq_bytes;                /* in uv_write requests not completed */
        unsigned wq_n;
        bool have_peer;
        struct sockaddr_storage peer;
};

struct HttpServer {
        uv_loop_t *loop;
        uv_tcp_t listener;
        bool listening;
        uv_check_t check;
        uv_idle_t idle;
        uv_timer_t sweep;
        unsigned handles;               /* open: the server is freed when they are closed */
        HttpLimits lim;
        HttpReqLimits rlim;             /* what the request parser takes of lim */
        HttpHandler h;
        void *cls;
        HttpConn *conns, *pend, *pend_tail;
        unsigned n_conns;
        bool quiescing, closing;
        time_t date_t;
        char date[40];                  /* "Date: ...\r\n" */
        char scratch[STREAM_MAX + 32];  /* a streamed piece with its chunk framing */
};

typedef struct WriteReq {
        uv_write_t req;
        size_t len;
        char data[];
} WriteReq;

static void conn_close(HttpConn *c);
static void conn_next(HttpConn *c);
static void conn_input(HttpConn *c);
static void pump(HttpConn *c);

/* Only there to keep the loop from blocking while the check phase has work. */
static void on_idle(uv_idle_t *h _unused_) {
}

/* ---- small helpers -------------------------------------------------------------------------- */

static const char *reason(unsigned status) {
        switch (status) {
        case 100: return "Continue";
        case 200: return "OK";
        case 201: return "Created";
        case 202: return "Accepted";
        case 204: return "No Content";
        case 206: return "Partial Content";
        case 301: return "Moved Permanently";
        case 302: return "Found";
        case 303: return "See Other";
        case 304: return "Not Modified";
        case 307: return "Temporary Redirect";
        case 308: return "Permanent Redirect";
        case 400: return "Bad Request";
        case 401: return "Unauthorized";
        case 403: return "Forbidden";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 408: return "Request Timeout";
        case 409: return "Conflict";
        case 410: return "Gone";
        case 413: return "Content Too Large";
        case 414: return "URI Too Long";
        case 415: return "Unsupported Media Type";
        case 422: return "Unprocessable Content";
        case 429: return "Too Many Requests";
        case 431: return "Request Header Fields Too Large";
        case 499: return "Client Closed Request";
        case 500: return "Internal Server Error";
        case 501: return "Not Implemented";
        case 502: return "Bad Gateway";
        case 503: return "Service Unavailable";
        case 504: return "Gateway Timeout";
        case 505: return "HTTP Version Not Supported";
        case 507: return "Insufficient Storage";
        default: return "";
        }
}

static void server_unref(HttpServer *s) {
        if (--s->handles == 0)
                free(s);
}

static void on_handle_closed(uv_handle_t *h) {
        server_unref(h->data);
}

/* Have the check phase look at c (handler calls are made from there). */
static void pend(HttpConn *c) {
        HttpServer *s = c->s;
        if (c->pending || c->state == CS_CLOSED)
                return;
        c->pending = true;
        QUEUE_PUSH(s->pend, s->pend_tail, c, pend_next);
        uv_idle_start(&s->idle, on_idle);
}

/* ---- writing ----------------------------------------------------------------------------------- */

static void on_written(uv_write_t *req, int status) {
        WriteReq *w = (WriteReq *) req;
        HttpConn *c = req->data;
        c->wq_bytes -= w->len;
        c->wq_n--;
        free(w);
        if (c->state == CS_CLOSED)
                return;         /* cancelled by the close */
        c->last_ms = uv_now(c->s->loop);
        if (status < 0) {
                c->failed = true;
                conn_close(c);
                return;
        }
        if (c->resp && c->resp->reader && !c->stream_waiting && !c->stream_ended)
                pump(c);
        if (c->state != CS_CLOSED && c->answer_written && c->wq_n == 0)
                pend(c);
}

/* Write n buffers: at once what the socket takes, the rest queued (copied). */
static int conn_write(HttpConn *c, uv_buf_t *b, unsigned n) {
        c->last_ms = uv_now(c->s->loop);
        size_t total = 0;
        for (unsigned i = 0; i < n; i++)
                total += b[i].len;
        size_t done = 0;
        if (c->wq_n == 0) {
                int w = uv_try_write((uv_stream_t *) &c->tcp, b, n);
                if (w < 0 && w != UV_EAGAIN)
                        return w;
                done = w > 0 ? (size_t) w : 0;
                if (done == total)
                        return 0;
        }
        WriteReq *wr = malloc(sizeof *wr + total - done);
        if (!wr)
                return -ENOMEM;
        wr->len = total - done;
        size_t off = 0, skip = done;
        for (unsigned i = 0; i < n; i++) {
                if (skip >= b[i].len) {
                        skip -= b[i].len;
                        continue;
                }
                memcpy(wr->data + off, b[i].base + skip, b[i].len - skip);
                off += b[i].len - skip;
                skip = 0;
        }
        uv_buf_t one = uv_buf_init(wr->data, (unsigned) wr->len);
        wr->req.data = c;
        int r = uv_write(&wr->req, (uv_stream_t *) &c->tcp, &one, 1, on_written);
        if (r < 0) {
                free(wr);
                return r;
        }
        c->wq_bytes += wr->len;
        c->wq_n++;
        return 0;
}

/* The answer is all written: the check phase ends the request. */
static void answer_complete(HttpConn *c) {
        c->answer_written = true;
        if (c->wq_n == 0)
                pend(c);
}

/* Something went wrong while the handler's code is on the stack: the
 * connection ends from the check phase. */
static void conn_fail_later(HttpConn *c) {
        c->failed = true;
        pend(c);
}

static void pump(HttpConn *c) {
        HttpServer *s = c->s;
        HttpResponse *r = c->resp;
        bool chunked = r->size == HTTP_SIZE_UNKNOWN && !c->rq.http10;
        while (!c->stream_ended && !c->failed && c->wq_bytes < WRITE_HIGH) {
                char *data = s->scratch + 24;
                ssize_t n = r->reader(r->cls, data, STREAM_MAX);
                if (n == 0) {
                        c->stream_waiting = true;
                        return;
                }
                if (n == HTTP_READER_ERROR || n < HTTP_READER_ERROR || (n > 0 && (size_t) n > STREAM_MAX)) {
                        conn_fail_later(c);
                        return;
                }
                uv_buf_t b[3];
                unsigned nb = 0;
                if (n == HTTP_READER_END) {
                        c->stream_ended = true;
                        if (r->size != HTTP_SIZE_UNKNOWN && c->sent != r->size) {
                                conn_fail_later(c);     /* short of its Content-Length: the framing is lost */
                                return;
                        }
                        if (chunked)
                                b[nb++] = uv_buf_init((char *) "0\r\n\r\n", 5);
                } else {
                        c->sent += (uint64_t) n;
                        if (r->size != HTTP_SIZE_UNKNOWN && c->sent > r->size) {
                                conn_fail_later(c);
                                return;
                        }
                        if (chunked) {
                                char *p = data;
                                size_t v = (size_t) n;
                                *--p = '\n';
                                *--p = '\r';
                                do
                                        *--p = "0123456789abcdef"[v & 15];
                                while (v >>= 4);
                                memcpy(data + n, "\r\n", 2);
                                b[nb++] = uv_buf_init(p, (unsigned) (data + n + 2 - p));
                        } else
                                b[nb++] = uv_buf_init(data, (unsigned) n);
                }
                if (nb && conn_write(c, b, nb) < 0) {
                        conn_fail_later(c);
                        return;
                }
                if (c->stream_ended) {
                        answer_complete(c);
                        return;
                }
        }
}

void http_close(HttpConn *c) {
        if (c && c->state != CS_CLOSED)
                conn_fail_later(c);
}

void http_resume(HttpConn *c) {
        if (!c || !c->stream_waiting || c->state == CS_CLOSED)
                return;
        c->stream_waiting = false;
        pend(c);
}

static const char *date_line(HttpServer *s) {
        time_t now = time(NULL);
        if (now != s->date_t) {
                struct tm tm;
                s->date_t = now;
                gmtime_r(&now, &tm);
                strftime(s->date, sizeof s->date, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
        }
        return s->date;
}

int http_respond(HttpConn *c, unsigned status, HttpResponse *r) {
        if (!r)
                return -ENOMEM;
        if (!c || c->state == CS_CLOSED || c->failed) {
                http_response_free(r);
                return -EPIPE;
        }
        if (c->answered) {
                http_response_free(r);
                return -EALREADY;
        }
        if (r->oom || status < 200 || status > 999 || (!r->reader && r->len > UINT32_MAX)) {
                http_response_free(r);
                return -EINVAL;
        }
        c->answered = true;
        c->resp = r;
        c->status = status;
        if (!c->body_done) {
                /* a Content-Length body already read in full is skipped; the
                 * rest of one still arriving is dropped and the connection
                 * ends after the answer */
                if (!c->rq.chunked && c->state == CS_BODY && c->body_left <= c->len - c->pos) {
                        c->pos += (size_t) c->body_left;
                        c->body_left = 0;
                        c->body_done = true;
                } else {
                        c->close_after = true;
                        c->body_skip = true;
                }
        }
        if (!c->rq.keep_alive || c->s->quiescing || (c->eof && c->pos == c->len))
                c->close_after = true;
        bool no_body = c->rq.head_method || status == 204 || status == 304 || (status >= 100 && status < 200);
        bool stream = r->reader != NULL;
        uint64_t length = stream ? r->size : r->len;
        bool chunked = stream && length == HTTP_SIZE_UNKNOWN && !c->rq.http10;
        if (stream && length == HTTP_SIZE_UNKNOWN && c->rq.http10)
                c->close_after = true;          /* the body runs to the close */
        char line[160];
        int ll = snprintf(line, sizeof line, "HTTP/1.1 %u %s\r\n", status, reason(status));
        char tail[128];
        int tl = 0;
        if (length != HTTP_SIZE_UNKNOWN && status != 204 && status != 304)
                tl += snprintf(tail + tl, sizeof tail - (size_t) tl, "Content-Length: %llu\r\n",
                               (unsigned long long) length);
        else if (chunked && !no_body)
                tl += snprintf(tail + tl, sizeof tail - (size_t) tl, "Transfer-Encoding: chunked\r\n");
        if (c->close_after)
                tl += snprintf(tail + tl, sizeof tail - (size_t) tl, "Connection: close\r\n");
        else if (c->rq.http10)
                tl += snprintf(tail + tl, sizeof tail - (size_t) tl, "Connection: keep-alive\r\n");
        tl += snprintf(tail + tl, sizeof tail - (size_t) tl, "\r\n");
        const char *date = date_line(c->s);
        uv_buf_t b[5] = {
                uv_buf_init(line, (unsigned) ll),
                uv_buf_init((char *) date, (unsigned) strlen(date)),
                uv_buf_init(r->head ? r->head : (char *) "", (unsigned) r->head_len),
                uv_buf_init(tail, (unsigned) tl),
                uv_buf_init(r->body ? r->body : (char *) "", (unsigned) (no_body || stream ? 0 : r->len)),
        };
        c->state = CS_ANSWER;
        if (conn_write(c, b, 5) < 0) {
                conn_fail_later(c);
                return 0;
        }
        if (!stream || no_body) {
                c->stream_ended = true;
                answer_complete(c);
        } else
                pend(c);                /* the first pump, from the loop */
        return 0;
}

/* ---- responses ------------------------------------------------------------------------------ */

static HttpResponse *response_new(void) {
        HttpResponse *r = calloc(1, sizeof *r);
        return r;
}

HttpResponse *http_response_buffer(char *body, size_t len) {
        HttpResponse *r = response_new();
        if (!r) {
                free(body);
                return NULL;
        }
        r->body = body;
        r->len = body ? len : 0;
        return r;
}

HttpResponse *http_response_copy(const char *body, size_t len) {
        char *p = malloc(len ? len : 1);
        if (!p)
                return NULL;
        memcpy(p, body, len);
        return http_response_buffer(p, len);
}

HttpResponse *http_response_stream(uint64_t size, HttpReader reader, void *cls, void (*free_cls)(void *cls)) {
        HttpResponse *r = response_new();
        if (!r)
                return NULL;
        r->size = size;
        r->reader = reader;
        r->cls = cls;
        r->free_cls = free_cls;
        return r;
}

int http_response_header(HttpResponse *r, const char *name, const char *value) {
        if (!r || !name || !value)
                return -EINVAL;
        size_t nl = strlen(name), vl = strlen(value);
        if (!nl || strpbrk(name, "\r\n:") || strpbrk(value, "\r\n"))
                return -EINVAL;
        size_t need = r->head_len + nl + vl + 4;
        if (need > r->head_cap) {
                size_t cap = r->head_cap ? r->head_cap * 2 : 256;
                while (cap < need)
                        cap *= 2;
                char *p = realloc(r->head, cap);
                if (!p) {
                        r->oom = true;
                        return -ENOMEM;
                }
                r->head = p;
                r->head_cap = cap;
        }
        char *p = r->head + r->head_len;
        memcpy(p, name, nl);
        memcpy(p + nl, ": ", 2);
        memcpy(p + nl + 2, value, vl);
        memcpy(p + nl + 2 + vl, "\r\n", 2);
        r->head_len = need;
        return 0;
}

void http_response_free(HttpResponse *r) {
        if (!r)
                return;
        if (r->free_cls)
                r->free_cls(r->cls);
        free(r->body);
        free(r->head);
        free(r);
}

/* ---- the request ------------------------------------------------------------------------------ */

const char *http_method(const HttpConn *c) {
        return c->rq.method;
}

const char *http_uri(const HttpConn *c) {
        return c->rq.uri;
}

const char *http_header(const HttpConn *c, const char *name) {
        return httpreq_header(&c->rq, name);
}

void http_headers_each(const HttpConn *c, bool (*fn)(void *cls, const char *name, const char *value), void *cls) {
        for (unsigned i = 0; i < c->rq.n_hdr; i++)
                if (!fn(cls, c->rq.hdr[i].name, c->rq.hdr[i].value))
                        return;
}

size_t http_head_size(const HttpConn *c) {
        return c->head_len;
}

const struct sockaddr *http_peer(HttpConn *c) {
        if (!c->have_peer) {
                int len = sizeof c->peer;
                if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *) &c->peer, &len) < 0)
                        return NULL;
                c->have_peer = true;
        }
        return (const struct sockaddr *) &c->peer;
}

/* ---- reading ------------------------------------------------------------------------------------ */

/* Refused before begin: the handler's error answer, and the connection
 * ends after it. */
static void refuse(HttpConn *c, ActError e, const char *msg) {
        HttpServer *s = c->s;
        c->rq.keep_alive = false;
        c->rq.head_method = false;      /* an error answer has its body, whatever came before */
        /* whatever follows is dropped, so that the client reads the answer
         * instead of a reset */
        c->rq.chunked = false;
        c->body_left = UINT64_MAX;
        c->body_done = false;
        c->body_skip = true;
        c->close_after = true;
        HttpResponse *r = s->h.refuse(s->cls, c->ctx, e, msg);
        if (!r || http_respond(c, act_error_status(e), r) < 0)
                conn_fail_later(c);
}

/* Parse the head in buf[0, head_len): false when refused. */
static bool parse_head(HttpConn *c) {
        HttpReqRefusal no;
        if (httpreq_parse(&c->rq, c->buf, c->head_len, &c->s->rlim, &no) < 0) {
                refuse(c, no.error, no.message);
                return false;
        }
        c->body_left = c->rq.length;
        if (c->rq.chunked)
                httpreq_chunked_init(&c->chunks, c->s->lim.head_max);
        c->body_done = !c->rq.chunked && c->body_left == 0;
        return true;
}

/* Hand the body in buf[pos, len) to the handler (or drop it). */
static void body_input(HttpConn *c) {
        HttpServer *s = c->s;
        while (!c->body_done && c->pos < c->len && c->state != CS_CLOSED) {
                const char *p = c->buf + c->pos;
                size_t n = c->len - c->pos;
                if (!c->rq.chunked) {
                        if (n > c->body_left)
                                n = (size_t) c->body_left;
                        c->pos += n;
                        c->body_left -= n;
                } else {
                        const char *d = p;
                        size_t left = n;
                        int ev = httpreq_chunked_feed(&c->chunks, &d, &left, &p, &n);
                        c->pos = (size_t) (d - c->buf);
                        if (ev < 0) {
                                c->bad_body = true;
                                break;
                        }
                        c->body_done = ev == HTTPREQ_DONE;
                        if (ev != HTTPREQ_BODY)
                                break;          /* done, or a partial line kept for the next read */
                }
                if (c->body_skip)
                        c->discarded += n;
                else
                        s->h.body(c->ctx, p, n);
                if (!c->rq.chunked && c->body_left == 0)
                        c->body_done = true;
        }
        if (c->body_skip && c->discarded > s->lim.discard_max)
                c->failed = true;
}

/* The head is complete in buf[0, head_len): begin the request. */
static void request_begin(HttpConn *c) {
        HttpServer *s = c->s;
        if (c->cap - c->head_len < BUF_START) {
                /* room for the body after the head (before anything points into buf) */
                char *p = realloc(c->buf, c->head_len + BUF_START);
                if (!p) {
                        c->failed = true;
                        return;
                }
                c->buf = p;
                c->cap = c->head_len + BUF_START;
        }
        c->pos = c->head_len;
        c->answered = c->close_after = c->stream_waiting = c->stream_ended = c->answer_written = false;
        c->sent = 0;
        c->body_skip = false;
        c->discarded = 0;
        c->hung_up = false;
        if (!parse_head(c))
                return;
        c->state = CS_BODY;
        c->ctx = s->h.begin(s->cls, c);
        if (!c->ctx) {
                if (!c->answered) {
                        c->rq.keep_alive = false;
                        refuse(c, ACT_INTERNAL, "out of memory");
                }
                return;
        }
        if (!c->answered && !c->body_done && c->rq.expect_continue && c->pos == c->len) {
                uv_buf_t b = uv_buf_init((char *) "HTTP/1.1 100 Continue\r\n\r\n", 25);
                if (conn_write(c, &b, 1) < 0)
                        c->failed = true;
        }
}

/* Handle what is in buf: a head, a body, or (later) the next request. */
static void conn_input(HttpConn *c) {
        HttpServer *s = c->s;
        for (;;) {
                if (c->state == CS_CLOSED || c->failed)
                        break;
                if (c->state == CS_HEAD) {
                        if (c->pos > 0) {       /* a request ended: the rest moves to the front */
                                memmove(c->buf, c->buf + c->pos, c->len - c->pos);
                                c->len -= c->pos;
                                c->pos = 0;
                                c->scan.scan = 0;
                        }
                        HttpReqRefusal no;
                        int r = httpreq_head_end(&c->scan, c->buf, &c->len, &s->rlim, &c->head_len, &no);
                        if (r == -EPROTO) {
                                c->failed = true;       /* too many empty lines before a request */
                                break;
                        }
                        if (r < 0) {
                                c->pos = c->head_len;
                                refuse(c, no.error, no.message);
                                break;
                        }
                        if (r == 0)
                                break;
                        request_begin(c);
                        continue;
                }
                if (c->state == CS_BODY || (c->state == CS_ANSWER && !c->body_done) || c->state == CS_LINGER) {
                        if (c->state == CS_LINGER) {
                                c->discarded += c->len - c->pos;
                                c->pos = c->len;
                                if (c->discarded > s->lim.discard_max)
                                        c->failed = true;
                        } else
                                body_input(c);
                        if (c->bad_body) {
                                c->bad_body = false;
                                if (c->answered || c->state != CS_BODY) {
                                        c->failed = true;
                                        break;
                                }
                                refuse(c, ACT_BAD_REQUEST, "malformed chunked body");
                                continue;
                        }
                        if (c->failed)
                                break;
                        /* the handled part of the body is not kept: new input goes after the head */
                        if (c->rq.chunked && c->pos < c->len && c->pos > c->head_len) {
                                /* a partial framing line stays */
                                size_t keep = c->len - c->pos;
                                memmove(c->buf + c->head_len, c->buf + c->pos, keep);
                                c->pos = c->head_len;
                                c->len = c->head_len + keep;
                        } else if (c->pos == c->len) {
                                c->pos = c->len = c->head_len;
                        }
                        if (c->state == CS_BODY && c->body_done) {
                                c->state = CS_WAIT;
                                if (!c->answered)
                                        s->h.body_end(c->ctx);
                        }
                        break;
                }
                break;          /* CS_WAIT, CS_ANSWER: input waits for the next request */
        }
        if (c->failed && c->state != CS_CLOSED)
                conn_close(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested _unused_, uv_buf_t *b) {
        HttpConn *c = h->data;
        HttpServer *s = c->s;
        if (c->len == c->cap && c->state == CS_HEAD && c->cap <= s->lim.head_max) {
                size_t cap = c->cap ? c->cap * 2 : BUF_START;
                if (cap > s->lim.head_max + 1024)
                        cap = s->lim.head_max + 1024;
                char *p = realloc(c->buf, cap);
                if (p) {
                        c->buf = p;
                        c->cap = cap;
                }
        }
        /* a chunk-size line is kept whole (bounded) */
        *b = uv_buf_init(c->buf + c->len, (unsigned) (c->cap - c->len));
}

static void reading(HttpConn *c, bool on);

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b _unused_) {
        HttpConn *c = st->data;
        if (n == 0)
                return;
        if (c->state == CS_CLOSED)
                return;
        if (n < 0) {
                c->eof = true;
                reading(c, false);
                if (n != UV_EOF || c->state == CS_HEAD || c->state == CS_BODY || c->state == CS_LINGER) {
                        conn_close(c);
                        return;
                }
                /* waiting or answering: the handler may stop early, unless more
                 * requests came before the close (a client that half-closes
                 * after pipelining them wants their answers) */
                if (c->ctx && !c->hung_up && c->pos == c->len &&
                    (c->state == CS_WAIT || (c->state == CS_ANSWER && !c->answer_written))) {
                        c->hung_up = true;
                        c->s->h.hangup(c->ctx);
                }
                return;
        }
        if (c->state == CS_HEAD && !c->head_started) {
                c->head_started = true;
                c->head_since = uv_now(c->s->loop);
        }
        c->len += (size_t) n;
        c->last_ms = uv_now(c->s->loop);
        conn_input(c);
        if (c->state != CS_CLOSED && c->len == c->cap && !(c->state == CS_HEAD && c->cap <= c->s->lim.head_max))
                reading(c, false);      /* full: the rest waits until the request ends */
}

static void reading(HttpConn *c, bool on) {
        if (on == c->reading || c->state == CS_CLOSED || (on && c->eof))
                return;
        c->reading = on;
        if (on)
                uv_read_start((uv_stream_t *) &c->tcp, on_alloc, on_read);
        else
                uv_read_stop((uv_stream_t *) &c->tcp);
}

/* ---- connections ---------------------------------------------------------------------------------- */

static void on_conn_closed(uv_handle_t *h) {
        HttpConn *c = h->data;
        HttpServer *s = c->s;
        free(c->buf);
        free(c);
        server_unref(s);
}

static void conn_close(HttpConn *c) {
        HttpServer *s = c->s;
        if (c->state == CS_CLOSED)
                return;
        int prev = c->state;
        c->state = CS_CLOSED;
        LIST_REMOVE(s->conns, c);
        s->n_conns--;
        void *ctx = TAKE_PTR(c->ctx);
        HttpResponse *r = TAKE_PTR(c->resp);
        if (ctx)
                s->h.done(ctx, prev == CS_ANSWER && c->answer_written && c->wq_n == 0 && !c->failed);
        http_response_free(r);
        /* pending writes are cancelled by the close */
        uv_close((uv_handle_t *) &c->tcp, on_conn_closed);
}

static void on_shutdown(uv_shutdown_t *sd, int status _unused_) {
        free(sd);
}

/* The request is over: the next one, a linger, or the end. */
static void conn_next(HttpConn *c) {
        HttpServer *s = c->s;
        void *ctx = TAKE_PTR(c->ctx);
        HttpResponse *r = TAKE_PTR(c->resp);
        if (ctx)
                s->h.done(ctx, true);
        http_response_free(r);
        if (c->state == CS_CLOSED)
                return;
        if (c->close_after || s->quiescing || (c->eof && c->pos == c->len)) {
                if (!c->body_done && !c->eof) {
                        /* the client may still be sending: read and drop it, so that it
                         * sees the answer rather than a reset */
                        uv_shutdown_t *sd = malloc(sizeof *sd);
                        if (sd && uv_shutdown(sd, (uv_stream_t *) &c->tcp, on_shutdown) == 0) {
                                c->state = CS_LINGER;
                                c->last_ms = c->linger_since = uv_now(s->loop);
                                c->pos = c->len = 0;
                                c->head_len = 0;
                                reading(c, true);
                                return;
                        }
                        free(sd);
                }
                conn_close(c);
                return;
        }
        c->state = CS_HEAD;
        c->last_ms = uv_now(s->loop);
        c->head_started = c->len > 0;
        c->head_since = c->last_ms;
        httpreq_scan_init(&c->scan);
        c->head_len = 0;
        c->rq.method = c->rq.uri = NULL;
        c->rq.n_hdr = 0;
        reading(c, true);
        conn_input(c);          /* a pipelined request */
        if (c->eof && c->state == CS_HEAD)
                conn_close(c);  /* what the client sent before closing is answered */
}

static void on_check(uv_check_t *h) {
        HttpServer *s = h->data;
        while (s->pend) {
                HttpConn *c = s->pend;
                s->pend = c->pend_next;
                if (!s->pend)
                        s->pend_tail = NULL;
                c->pending = false;
                if (c->state == CS_CLOSED)
                        continue;
                if (c->failed) {
                        conn_close(c);
                        continue;
                }
                if (c->resp && c->resp->reader && !c->stream_waiting && !c->stream_ended)
                        pump(c);
                if (c->failed) {
                        conn_close(c);
                        continue;
                }
                if (c->answer_written && c->wq_n == 0 && c->state == CS_ANSWER)
                        conn_next(c);
        }
        uv_idle_stop(&s->idle);
}

static void on_sweep(uv_timer_t *t) {
        HttpServer *s = t->data;
        uint64_t now = uv_now(s->loop);
        for (HttpConn *c = s->conns, *next; c; c = next) {
                next = c->next;
                uint64_t limit = c->state == CS_LINGER ? LINGER_MS : s->lim.idle_ms;
                bool idle = c->state == CS_HEAD || c->state == CS_BODY || c->state == CS_LINGER ||
                            (c->state == CS_ANSWER && c->wq_n > 0);
                /* a head is due within the idle time of its first byte, however
                 * slowly it trickles in */
                bool slow_head = c->state == CS_HEAD && c->head_started && now - c->head_since > s->lim.idle_ms;
                size_t queued = uv_stream_get_write_queue_size((uv_stream_t *) &c->tcp);
                if (queued < c->last_queued)
                        c->last_ms = now;       /* the client reads: the queue drains */
                c->last_queued = queued;
                if ((idle && now - c->last_ms > limit) || slow_head ||
                    (c->state == CS_LINGER && now - c->linger_since > LINGER_MAX_MS))
                        conn_close(c);
        }
}

static void on_connection(uv_stream_t *ls, int status) {
        HttpServer *s = ls->data;
        if (status < 0 || s->closing)
                return;
        HttpConn *c = calloc(1, sizeof *c);
        if (!c)
                return;
        c->s = s;
        uv_tcp_init(s->loop, &c->tcp);
        c->tcp.data = c;
        s->handles++;
        if (uv_accept(ls, (uv_stream_t *) &c->tcp) < 0 || s->n_conns >= s->lim.max_conns || s->quiescing) {
                c->state = CS_CLOSED;
                uv_close((uv_handle_t *) &c->tcp, on_conn_closed);
                return;
        }
        uv_tcp_nodelay(&c->tcp, 1);
        LIST_PREPEND(s->conns, c);
        s->n_conns++;
        c->state = CS_HEAD;
        c->last_ms = uv_now(s->loop);
        reading(c, true);
}

/* ---- the server ------------------------------------------------------------------------------------ */

int http_server_new(uv_loop_t *loop, int listen_fd, const HttpLimits *lim, const HttpHandler *h, void *cls,
                    HttpServer **ret) {
        HttpServer *s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        s->loop = loop;
        s->lim = *lim;
        s->rlim = (HttpReqLimits) { .head_max = lim->head_max, .uri_max = lim->uri_max };
        s->h = *h;
        s->cls = cls;
        int r = uv_tcp_init(loop, &s->listener);
        if (r < 0) {
                free(s);
                close(listen_fd);
                return r;
        }
        s->listener.data = s;
        s->handles = 1;
        if ((r = uv_tcp_open(&s->listener, listen_fd)) < 0)
                close(listen_fd);       /* not the handle's */
        if (r < 0 || (r = uv_listen((uv_stream_t *) &s->listener, 4096, on_connection)) < 0) {
                uv_close((uv_handle_t *) &s->listener, on_handle_closed);
                return r;               /* s is freed by the close (listen_fd with it, once opened) */
        }
        s->listening = true;
        uv_check_init(loop, &s->check);
        uv_idle_init(loop, &s->idle);
        uv_timer_init(loop, &s->sweep);
        s->check.data = s->idle.data = s->sweep.data = s;
        s->handles += 3;
        uv_check_start(&s->check, on_check);
        uv_timer_start(&s->sweep, on_sweep, SWEEP_MS, SWEEP_MS);
        uv_unref((uv_handle_t *) &s->sweep);
        *ret = s;
        return 0;
}

void http_server_quiesce(HttpServer *s) {
        if (!s || s->quiescing)
                return;
        s->quiescing = true;
        if (s->listening) {
                s->listening = false;
                uv_close((uv_handle_t *) &s->listener, on_handle_closed);
        }
        /* connections between requests end now */
        for (HttpConn *c = s->conns, *next; c; c = next) {
                next = c->next;
                if (c->state == CS_HEAD && c->len == 0)
                        conn_close(c);
        }
}

void http_server_close(HttpServer *s) {
        if (!s || s->closing)
                return;
        http_server_quiesce(s);
        s->closing = true;
        while (s->conns)
                conn_close(s->conns);
        uv_close((uv_handle_t *) &s->check, on_handle_closed);
        uv_close((uv_handle_t *) &s->idle, on_handle_closed);
        uv_close((uv_handle_t *) &s->sweep, on_handle_closed);
}
