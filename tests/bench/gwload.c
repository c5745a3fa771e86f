/* tests/bench/gwload.c: the C helpers of tests/bench/gateway_bench.py (it
 * builds this file with cc), so that neither the load nor the upstream is
 * what the bench measures:
 *
 *   gwload upstream [--port N] [--words N]
 *       a scripted OpenAI-compatible upstream on 127.0.0.1 (one thread,
 *       epoll, keep-alive): /v1/chat/completions answers a fixed text of N
 *       words, whole (JSON with usage) or, for "stream":true, as
 *       server-sent events, one write per word, a usage chunk when
 *       stream_options.include_usage asks, then [DONE] (chunked encoding,
 *       as tests/gateway/upstream.py answers); GET /v1/models; GET /stats:
 *       {"connections": N, "requests": M} so far (a client that keeps its
 *       connections, as the gateway should, opens few). Says
 *       "gwload: upstream listening on PORT" on stdout when ready.
 *
 *   gwload load --port N --path P --body-file F --rate R --seconds S
 *               [--conns C] [--warmup S] [--header "K: V"]... [--stream]
 *               --out FILE
 *       an open-loop load: request i is due at start + i/R whatever the
 *       answers do, on C kept-alive connections opened beforehand (a due
 *       request waits for a free connection, and that wait counts). One
 *       line per request after the warm-up in FILE:
 *         lag_us ttfb_us ttlb_us ok
 *       lag: the send after its due time (the generator's own delay);
 *       ttfb: due time to the first byte of the answer's body; ttlb: due
 *       time to its last byte. ok: 200 and a whole answer (a stream ends
 *       with [DONE]). A summary in JSON on stdout.
 *
 * Linux, C standard library only. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define BUF_MAX (256 * 1024)    /* a request or an answer's head and pending bytes */
#define BODY_FILE_MAX (1024 * 1024)
#define CONNS_MAX 1024
#define HEADERS_MAX 16
#define WORDS_MAX 4096
#define RATE_MAX 1000000
#define SECONDS_MAX 3600

static uint64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000ull + (uint64_t) ts.tv_nsec;
}

static void die(const char *what) {
        fprintf(stderr, "gwload: %s: %s\n", what, strerror(errno));
        exit(2);
}

static void usage_exit(const char *msg) {
        fprintf(stderr, "gwload: %s\nusage: gwload upstream [--port N] [--words N]\n"
                        "       gwload load --port N --path P --body-file F --rate R --seconds S [--conns C]\n"
                        "                   [--warmup S] [--header 'K: V']... [--stream] --out FILE\n", msg);
        exit(2);
}

static long num_arg(const char *name, const char *v, long min, long max) {
        char *end;
        errno = 0;
        long n = v ? strtol(v, &end, 10) : 0;
        if (!v || errno || *end || n < min || n > max) {
                fprintf(stderr, "gwload: %s: expected a number from %ld to %ld\n", name, min, max);
                exit(2);
        }
        return n;
}

static double sec_arg(const char *name, const char *v, double max) {
        char *end;
        double d = v ? strtod(v, &end) : -1;
        if (!v || *end || !(d >= 0 && d <= max)) {
                fprintf(stderr, "gwload: %s: expected seconds from 0 to %.0f\n", name, max);
                exit(2);
        }
        return d;
}

/* Write all of p; the sockets here are blocking for writes only in the
 * sense that a short write is finished with poll-free retries (answers and
 * requests are far below a socket's buffer). */
static int write_all(int fd, const char *p, size_t n) {
        while (n > 0) {
                ssize_t w = write(fd, p, n);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0 && errno == EAGAIN) {
                        struct timespec ts = { 0, 20000 };
                        nanosleep(&ts, NULL);
                        continue;
                }
                if (w <= 0)
                        return -1;
                p += w;
                n -= (size_t) w;
        }
        return 0;
}

static const char *find_mem(const char *h, size_t hn, const char *needle) {
        return memmem(h, hn, needle, strlen(needle));
}

/* The value of header name in head [p, p+n), or NULL. */
static const char *header_value(const char *p, size_t n, const char *name, size_t *ret_len) {
        size_t nl = strlen(name);
        const char *end = p + n;
        const char *line = memchr(p, '\n', n);
        while (line && line + 1 < end) {
                line++;
                const char *eol = memchr(line, '\n', (size_t) (end - line));
                if (!eol)
                        break;
                if ((size_t) (eol - line) > nl && strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
                        const char *v = line + nl + 1;
                        while (v < eol && (*v == ' ' || *v == '\t'))
                                v++;
                        const char *e = eol;
                        while (e > v && (e[-1] == '\r' || e[-1] == ' '))
                                e--;
                        *ret_len = (size_t) (e - v);
                        return v;
                }
                line = eol;
        }
        return NULL;
}

/* ---- the upstream ------------------------------------------------------------------------ */

typedef struct UpConn {
        int fd;
        size_t len;
        char buf[BUF_MAX];
} UpConn;

static const char *up_text[] = { "echo:", "the", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog" };
static int up_words = 8;
static long up_conns, up_requests;     /* accepted and answered so far (GET /stats) */

static void up_model(const char *body, size_t n, char *out, size_t size) {
        const char *m = find_mem(body, n, "\"model\"");
        snprintf(out, size, "bench");
        if (!m)
                return;
        const char *q = memchr(m + 7, '"', (size_t) (body + n - m - 7));
        if (!q)
                return;
        const char *e = memchr(q + 1, '"', (size_t) (body + n - q - 1));
        if (e && (size_t) (e - q - 1) < size && memchr(q + 1, '\\', (size_t) (e - q - 1)) == NULL)
                snprintf(out, size, "%.*s", (int) (e - q - 1), q + 1);
}

static size_t up_reply_text(char *out, size_t size) {
        size_t n = 0;
        for (int i = 0; i < up_words && n + 16 < size; i++)
                n += (size_t) snprintf(out + n, size - n, "%s%s", i ? " " : "", up_text[i % 10]);
        return n;
}

static int up_send_head(int fd, int status, const char *type, long length) {
        char h[512];
        int n = length >= 0
                ? snprintf(h, sizeof h, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %ld\r\n\r\n", status,
                           status == 200 ? "OK" : "Not Found", type, length)
                : snprintf(h, sizeof h, "HTTP/1.1 %d OK\r\nContent-Type: %s\r\nTransfer-Encoding: chunked\r\n\r\n", status,
                           type);
        return write_all(fd, h, (size_t) n);
}

static int up_chunk(int fd, const char *data, size_t n) {
        char buf[8192];
        int k = snprintf(buf, sizeof buf, "%zx\r\ndata: %.*s\n\n\r\n", n + 8, (int) n, data);
        return k > 0 && (size_t) k < sizeof buf ? write_all(fd, buf, (size_t) k) : -1;
}

static int up_answer(int fd, const char *path, const char *body, size_t blen) {
        char model[128], text[WORDS_MAX * 8], out[WORDS_MAX * 8 + 1024];
        if (strcmp(path, "/stats") == 0) {
                int n = snprintf(out, sizeof out, "{\"connections\": %ld, \"requests\": %ld}", up_conns, up_requests);
                return up_send_head(fd, 200, "application/json", n) ?: write_all(fd, out, (size_t) n);
        }
        up_requests++;
        if (strncmp(path, "/v1/models", 10) == 0) {
                const char *m = "{\"object\":\"list\",\"data\":[{\"id\":\"bench-model\",\"object\":\"model\"}]}";
                return up_send_head(fd, 200, "application/json", (long) strlen(m)) ?: write_all(fd, m, strlen(m));
        }
        size_t pl = strlen(path);
        if (pl < 17 || strcmp(path + pl - 17, "/chat/completions") != 0) {
                const char *m = "{\"error\":{\"message\":\"no such path\",\"type\":\"invalid_request_error\"}}";
                return up_send_head(fd, 404, "application/json", (long) strlen(m)) ?: write_all(fd, m, strlen(m));
        }
        up_model(body, blen, model, sizeof model);
        up_reply_text(text, sizeof text);
        bool stream = find_mem(body, blen, "\"stream\":true") || find_mem(body, blen, "\"stream\": true");
        bool usage = find_mem(body, blen, "\"include_usage\":true") || find_mem(body, blen, "\"include_usage\": true");
        int prompt = 8, completion = up_words;
        if (!stream) {
                int n = snprintf(out, sizeof out,
                                 "{\"id\":\"cmpl-bench\",\"object\":\"chat.completion\",\"created\":1700000000,\"model\":\"%s\","
                                 "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"%s\"},"
                                 "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":%d,\"completion_tokens\":%d,"
                                 "\"total_tokens\":%d}}", model, text, prompt, completion, prompt + completion);
                return up_send_head(fd, 200, "application/json", n) ?: write_all(fd, out, (size_t) n);
        }
        if (up_send_head(fd, 200, "text/event-stream", -1) < 0)
                return -1;
        for (int i = 0; i < up_words; i++) {
                int n = snprintf(out, sizeof out,
                                 "{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"%s\",\"choices\":[{\"index\":0,"
                                 "\"delta\":{\"content\":\"%s%s\"},\"finish_reason\":null}]}", model, i ? " " : "",
                                 up_text[i % 10]);
                if (up_chunk(fd, out, (size_t) n) < 0)
                        return -1;
        }
        if (usage) {
                int n = snprintf(out, sizeof out,
                                 "{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"%s\",\"choices\":[],"
                                 "\"usage\":{\"prompt_tokens\":%d,\"completion_tokens\":%d,\"total_tokens\":%d}}",
                                 model, prompt, completion, prompt + completion);
                if (up_chunk(fd, out, (size_t) n) < 0)
                        return -1;
        }
        if (up_chunk(fd, "[DONE]", 6) < 0)
                return -1;
        return write_all(fd, "0\r\n\r\n", 5);
}

/* The requests complete in c's buffer, answered in order: 0, or -1 to close. */
static int up_serve(UpConn *c) {
        for (;;) {
                const char *he = find_mem(c->buf, c->len, "\r\n\r\n");
                if (!he)
                        return c->len >= BUF_MAX ? -1 : 0;
                size_t head = (size_t) (he - c->buf) + 4, vl = 0;
                const char *v = header_value(c->buf, head, "Content-Length", &vl);
                size_t blen = v ? strtoul(v, NULL, 10) : 0;
                if (blen > BUF_MAX - head)
                        return -1;
                if (c->len < head + blen)
                        return 0;
                char path[1024];
                const char *sp = memchr(c->buf, ' ', head);
                const char *sp2 = sp ? memchr(sp + 1, ' ', (size_t) (c->buf + head - sp - 1)) : NULL;
                if (!sp2 || (size_t) (sp2 - sp - 1) >= sizeof path)
                        return -1;
                snprintf(path, sizeof path, "%.*s", (int) (sp2 - sp - 1), sp + 1);
                bool close_after = (v = header_value(c->buf, head, "Connection", &vl)) && vl == 5 && strncasecmp(v, "close", 5) == 0;
                if (up_answer(c->fd, path, c->buf + head, blen) < 0 || close_after)
                        return -1;
                memmove(c->buf, c->buf + head + blen, c->len - head - blen);
                c->len -= head + blen;
        }
}

static int listen_on(int port) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), one = 1;
        if (fd < 0)
                die("socket");
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t) port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        if (bind(fd, (struct sockaddr *) &a, sizeof a) < 0 || listen(fd, 1024) < 0)
                die("bind 127.0.0.1");
        socklen_t al = sizeof a;
        getsockname(fd, (struct sockaddr *) &a, &al);
        printf("gwload: upstream listening on %d\n", ntohs(a.sin_port));
        fflush(stdout);
        return fd;
}

static int upstream_main(int argc, char **argv) {
        int port = 0;
        for (int i = 2; i < argc; i++) {
                if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
                        port = (int) num_arg("--port", argv[++i], 0, 65535);
                else if (strcmp(argv[i], "--words") == 0 && i + 1 < argc)
                        up_words = (int) num_arg("--words", argv[++i], 1, 512);
                else
                        usage_exit("unknown upstream option");
        }
        int lfd = listen_on(port), ep = epoll_create1(EPOLL_CLOEXEC);
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
        if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0)
                die("epoll");
        for (;;) {
                struct epoll_event evs[64];
                int n = epoll_wait(ep, evs, 64, -1);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        die("epoll_wait");
                for (int i = 0; i < n; i++) {
                        UpConn *c = evs[i].data.ptr;
                        if (!c) {
                                int fd, one = 1;
                                while ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0) {
                                        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                                        up_conns++;
                                        UpConn *k = malloc(sizeof *k);
                                        if (!k) {
                                                close(fd);
                                                continue;
                                        }
                                        k->fd = fd;
                                        k->len = 0;
                                        struct epoll_event e2 = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = k };
                                        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e2);
                                }
                                continue;
                        }
                        ssize_t r = read(c->fd, c->buf + c->len, BUF_MAX - c->len);
                        if (r < 0 && (errno == EAGAIN || errno == EINTR))
                                continue;
                        if (r <= 0 || (c->len += (size_t) r, up_serve(c) < 0)) {
                                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                                close(c->fd);
                                free(c);
                        }
                }
        }
        return 0;
}

/* ---- the load ------------------------------------------------------------------------------- */

typedef struct Sample {
        uint64_t due, sent, first, done;
        bool ok;
} Sample;

enum { R_HEAD, R_LENGTH, R_CHUNK_SIZE, R_CHUNK_DATA, R_CHUNK_CRLF, R_TRAILER, R_UNTIL_CLOSE };

typedef struct LConn {
        int fd;
        long req;                       /* the request in flight, or -1 */
        int state, status;
        bool chunked, close_after, got_body;
        uint64_t left;                  /* body or chunk bytes to come */
        size_t len;
        char tail[16];                  /* the body's last bytes */
        size_t tail_len;
        struct LConn *next_idle;
        char buf[BUF_MAX];
} LConn;

typedef struct Load {
        int ep, port;
        char *req;
        size_t req_len;
        bool stream;
        Sample *s;
        long total, next_due, next_send, done, errors, reconnects;
        uint64_t start, period_ns;
        LConn *idle_head, *idle_tail;
} Load;

static uint64_t due_of(const Load *L, long i) {
        return L->start + (uint64_t) i * L->period_ns;
}

static int connect_to(int port) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t) port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        if (fd < 0 || connect(fd, (struct sockaddr *) &a, sizeof a) < 0)
                die("connect 127.0.0.1");
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        fcntl(fd, F_SETFL, O_NONBLOCK);
        return fd;
}

static void conn_open(Load *L, LConn *c) {
        c->fd = connect_to(L->port);
        c->req = -1;
        c->len = 0;
        struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = c };
        if (epoll_ctl(L->ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
                die("epoll_ctl");
}

static void idle_push(Load *L, LConn *c) {
        c->next_idle = NULL;
        if (L->idle_tail)
                L->idle_tail->next_idle = c;
        else
                L->idle_head = c;
        L->idle_tail = c;
}

static LConn *idle_pop(Load *L) {
        LConn *c = L->idle_head;
        if (c && !(L->idle_head = c->next_idle))
                L->idle_tail = NULL;
        return c;
}

static void conn_send(Load *L, LConn *c, long i) {
        c->req = i;
        c->state = R_HEAD;
        c->status = 0;
        c->chunked = c->close_after = c->got_body = false;
        c->tail_len = 0;
        L->s[i].sent = now_ns();
        if (write_all(c->fd, L->req, L->req_len) < 0) {
                /* counted as failed; the connection is made again and waits idle */
                L->s[i].done = now_ns();
                L->s[i].ok = false;
                L->errors++;
                L->done++;
                c->req = -1;
                epoll_ctl(L->ep, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
                L->reconnects++;
                conn_open(L, c);
                idle_push(L, c);
        }
}

/* A connection is free: the oldest due request that waits goes on it. */
static void conn_free(Load *L, LConn *c) {
        if (L->next_send < L->next_due)
                conn_send(L, c, L->next_send++);
        else
                idle_push(L, c);
}

static void body_bytes(LConn *c, const char *p, size_t n, uint64_t t, Sample *s) {
        if (n == 0)
                return;
        if (!c->got_body) {
                c->got_body = true;
                s->first = t;
        }
        if (n >= sizeof c->tail) {
                memcpy(c->tail, p + n - sizeof c->tail, sizeof c->tail);
                c->tail_len = sizeof c->tail;
        } else {
                size_t keep = c->tail_len + n > sizeof c->tail ? sizeof c->tail - n : c->tail_len;
                memmove(c->tail, c->tail + c->tail_len - keep, keep);
                memcpy(c->tail + keep, p, n);
                c->tail_len = keep + n;
        }
}

static bool answer_ok(const Load *L, const LConn *c) {
        if (c->status != 200)
                return false;
        if (L->stream)
                return find_mem(c->tail, c->tail_len, "[DONE]") != NULL;
        return c->tail_len > 0 && c->tail[c->tail_len - 1] == '}';
}

static int parse_head(LConn *c) {
        const char *he = find_mem(c->buf, c->len, "\r\n\r\n");
        if (!he)
                return c->len >= BUF_MAX ? -1 : 0;
        size_t head = (size_t) (he - c->buf) + 4, vl;
        if (c->len < 12 || strncmp(c->buf, "HTTP/1.", 7) != 0)
                return -1;
        c->status = atoi(c->buf + 9);
        const char *v;
        if ((v = header_value(c->buf, head, "Transfer-Encoding", &vl)) && vl == 7 && strncasecmp(v, "chunked", 7) == 0) {
                c->chunked = true;
                c->state = R_CHUNK_SIZE;
        } else if ((v = header_value(c->buf, head, "Content-Length", &vl))) {
                c->left = strtoull(v, NULL, 10);
                c->state = R_LENGTH;
        } else
                c->state = R_UNTIL_CLOSE;
        c->close_after = (v = header_value(c->buf, head, "Connection", &vl)) && vl == 5 && strncasecmp(v, "close", 5) == 0;
        memmove(c->buf, c->buf + head, c->len - head);
        c->len -= head;
        return 1;
}

/* Consume what c's buffer holds: 1 when the answer is complete, 0 for
 * more, -1 for a broken answer. */
static int parse(LConn *c, uint64_t t, Sample *s) {
        for (;;) {
                size_t used = 0;
                switch (c->state) {
                case R_HEAD: {
                        int r = parse_head(c);
                        if (r <= 0)
                                return r;
                        if (c->state == R_LENGTH && c->left == 0)
                                return 1;
                        continue;
                }
                case R_LENGTH:
                case R_CHUNK_DATA:
                        used = c->len < c->left ? c->len : (size_t) c->left;
                        body_bytes(c, c->buf, used, t, s);
                        c->left -= used;
                        if (c->left == 0)
                                c->state = c->state == R_LENGTH ? -1 : R_CHUNK_CRLF;
                        break;
                case R_CHUNK_SIZE: {
                        const char *nl = memchr(c->buf, '\n', c->len);
                        if (!nl)
                                return c->len > 64 ? -1 : 0;
                        c->left = strtoull(c->buf, NULL, 16);
                        used = (size_t) (nl - c->buf) + 1;
                        c->state = c->left ? R_CHUNK_DATA : R_TRAILER;
                        break;
                }
                case R_CHUNK_CRLF:
                        if (c->len < 2)
                                return 0;
                        used = 2;
                        c->state = R_CHUNK_SIZE;
                        break;
                case R_TRAILER: {
                        const char *nl = memchr(c->buf, '\n', c->len);
                        if (!nl)
                                return 0;
                        used = (size_t) (nl - c->buf) + 1;
                        if (used <= 2)
                                c->state = -1;
                        break;
                }
                case R_UNTIL_CLOSE:
                        body_bytes(c, c->buf, c->len, t, s);
                        c->len = 0;
                        return 0;
                }
                memmove(c->buf, c->buf + used, c->len - used);
                c->len -= used;
                if (c->state == -1)
                        return 1;
                if (c->len == 0)
                        return 0;
        }
}

static void conn_reopen(Load *L, LConn *c) {
        epoll_ctl(L->ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        L->reconnects++;
        conn_open(L, c);
        conn_free(L, c);
}

static void conn_readable(Load *L, LConn *c) {
        for (;;) {
                ssize_t r = read(c->fd, c->buf + c->len, BUF_MAX - c->len);
                uint64_t t = now_ns();
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0 && errno == EAGAIN)
                        return;
                if (c->req < 0) {               /* an idle connection closed (or spoke out of turn) */
                        for (LConn **p = &L->idle_head, *prev = NULL; *p; prev = *p, p = &(*p)->next_idle)
                                if (*p == c) {
                                        *p = c->next_idle;
                                        if (L->idle_tail == c)
                                                L->idle_tail = prev;
                                        break;
                                }
                        conn_reopen(L, c);
                        return;
                }
                Sample *s = &L->s[c->req];
                int done;
                if (r <= 0)
                        done = c->state == R_UNTIL_CLOSE ? 1 : -1;
                else {
                        c->len += (size_t) r;
                        done = parse(c, t, s);
                }
                if (done == 0)
                        continue;
                s->done = t;
                s->ok = done == 1 && answer_ok(L, c);
                L->errors += !s->ok;
                L->done++;
                c->req = -1;
                if (done < 0 || c->close_after || r <= 0 || c->len > 0) {
                        conn_reopen(L, c);
                        return;
                }
                conn_free(L, c);
                return;
        }
}

static void arm(int tfd, uint64_t at) {
        struct itimerspec its = { .it_value = { (time_t) (at / 1000000000ull), (long) (at % 1000000000ull) } };
        if (timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
                die("timerfd_settime");
}

static char *read_file(const char *path, size_t *ret_len) {
        FILE *f = fopen(path, "rbe");
        if (!f)
                die(path);
        char *b = malloc(BODY_FILE_MAX);
        size_t n = b ? fread(b, 1, BODY_FILE_MAX, f) : 0;
        if (!b || ferror(f) || n == BODY_FILE_MAX) {
                fprintf(stderr, "gwload: %s: unreadable or over %d bytes\n", path, BODY_FILE_MAX);
                exit(2);
        }
        fclose(f);
        *ret_len = n;
        return b;
}

typedef struct LoadArgs {
        int port, conns;
        long rate;
        double seconds, warmup;
        const char *path, *body_file, *out;
        const char *headers[HEADERS_MAX];
        int n_headers;
        bool stream;
} LoadArgs;

static void load_args(int argc, char **argv, LoadArgs *a) {
        *a = (LoadArgs) { .conns = 8, .warmup = 1.0 };
        for (int i = 2; i < argc; i++) {
                const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
                if (strcmp(o, "--stream") == 0) {
                        a->stream = true;
                        continue;
                }
                if (!v)
                        usage_exit("an option without its value");
                i++;
                if (strcmp(o, "--port") == 0)
                        a->port = (int) num_arg(o, v, 1, 65535);
                else if (strcmp(o, "--conns") == 0)
                        a->conns = (int) num_arg(o, v, 1, CONNS_MAX);
                else if (strcmp(o, "--rate") == 0)
                        a->rate = num_arg(o, v, 1, RATE_MAX);
                else if (strcmp(o, "--seconds") == 0)
                        a->seconds = sec_arg(o, v, SECONDS_MAX);
                else if (strcmp(o, "--warmup") == 0)
                        a->warmup = sec_arg(o, v, SECONDS_MAX);
                else if (strcmp(o, "--path") == 0)
                        a->path = v;
                else if (strcmp(o, "--body-file") == 0)
                        a->body_file = v;
                else if (strcmp(o, "--out") == 0)
                        a->out = v;
                else if (strcmp(o, "--header") == 0 && a->n_headers < HEADERS_MAX)
                        a->headers[a->n_headers++] = v;
                else
                        usage_exit("unknown load option, or too many --header");
        }
        if (!a->port || !a->path || !a->body_file || !a->rate || a->seconds <= 0 || !a->out)
                usage_exit("--port, --path, --body-file, --rate, --seconds and --out are required");
}

static void build_request(Load *L, const LoadArgs *a) {
        size_t blen;
        char *body = read_file(a->body_file, &blen);
        size_t cap = blen + 4096;
        for (int i = 0; i < a->n_headers; i++)
                cap += strlen(a->headers[i]) + 2;
        L->req = malloc(cap);
        if (!L->req)
                die("malloc");
        size_t n = (size_t) snprintf(L->req, cap, "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n", a->path, a->port);
        for (int i = 0; i < a->n_headers; i++)
                n += (size_t) snprintf(L->req + n, cap - n, "%s\r\n", a->headers[i]);
        n += (size_t) snprintf(L->req + n, cap - n, "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n", blen);
        memcpy(L->req + n, body, blen);
        L->req_len = n + blen;
        free(body);
}

static int cmp_u64(const void *x, const void *y) {
        uint64_t a = *(const uint64_t *) x, b = *(const uint64_t *) y;
        return a < b ? -1 : a > b;
}

static void report(const Load *L, const LoadArgs *a, long skip, uint64_t wall) {
        FILE *f = fopen(a->out, "we");
        if (!f)
                die(a->out);
        long n = 0, ok = 0;
        uint64_t *lag = calloc((size_t) (L->total - skip + 1), sizeof *lag);
        if (!lag)
                die("calloc");
        for (long i = skip; i < L->total; i++) {
                const Sample *s = &L->s[i];
                if (!s->done)
                        continue;
                uint64_t first = s->first ? s->first : s->done;
                lag[n++] = s->sent - s->due;
                ok += s->ok;
                fprintf(f, "%.3f %.3f %.3f %d\n", (double) (s->sent - s->due) / 1e3, (double) (first - s->due) / 1e3,
                        (double) (s->done - s->due) / 1e3, s->ok);
        }
        if (fclose(f) != 0)
                die(a->out);
        qsort(lag, (size_t) n, sizeof *lag, cmp_u64);
        printf("{\"sent\": %ld, \"measured\": %ld, \"ok\": %ld, \"errors\": %ld, \"reconnects\": %ld, "
               "\"unanswered\": %ld, \"lag_p99_us\": %.1f, \"lag_max_us\": %.1f, \"wall_s\": %.3f, "
               "\"rate\": %ld, \"conns\": %d}\n",
               L->next_send, n, ok, L->errors, L->reconnects, L->total - L->done,
               n ? (double) lag[(size_t) ((double) (n - 1) * 0.99)] / 1e3 : 0.0, n ? (double) lag[n - 1] / 1e3 : 0.0,
               (double) wall / 1e9, a->rate, a->conns);
        free(lag);
}

static int load_main(int argc, char **argv) {
        LoadArgs a;
        load_args(argc, argv, &a);
        Load L = { .port = a.port, .stream = a.stream };
        build_request(&L, &a);
        L.period_ns = 1000000000ull / (uint64_t) a.rate;
        long skip = (long) (a.warmup * (double) a.rate);
        L.total = skip + (long) (a.seconds * (double) a.rate);
        if (!(L.s = calloc((size_t) L.total, sizeof *L.s)))
                die("calloc");
        prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
        if ((L.ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
                die("epoll_create1");
        LConn *conns = calloc((size_t) a.conns, sizeof *conns);
        if (!conns)
                die("calloc");
        for (int i = 0; i < a.conns; i++) {
                conn_open(&L, &conns[i]);
                idle_push(&L, &conns[i]);
        }
        int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
        struct epoll_event tev = { .events = EPOLLIN, .data.ptr = NULL };
        if (tfd < 0 || epoll_ctl(L.ep, EPOLL_CTL_ADD, tfd, &tev) < 0)
                die("timerfd");
        L.start = now_ns() + 1000000;
        arm(tfd, L.start);
        uint64_t deadline = due_of(&L, L.total) + 30ull * 1000000000ull;
        while (L.done < L.total && now_ns() < deadline) {
                struct epoll_event evs[64];
                int n = epoll_wait(L.ep, evs, 64, 1000);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        die("epoll_wait");
                for (int i = 0; i < n; i++) {
                        if (evs[i].data.ptr) {
                                conn_readable(&L, evs[i].data.ptr);
                                continue;
                        }
                        uint64_t ticks;
                        if (read(tfd, &ticks, sizeof ticks) < 0 && errno != EAGAIN)
                                die("read timerfd");
                        uint64_t t = now_ns();
                        while (L.next_due < L.total && due_of(&L, L.next_due) <= t)
                                L.s[L.next_due].due = due_of(&L, L.next_due), L.next_due++;
                        LConn *c;
                        while (L.next_send < L.next_due && (c = idle_pop(&L)))
                                conn_send(&L, c, L.next_send++);
                        if (L.next_due < L.total)
                                arm(tfd, due_of(&L, L.next_due));
                }
        }
        report(&L, &a, skip, now_ns() - L.start);
        return L.done == L.total ? 0 : 1;
}

int main(int argc, char **argv) {
        if (argc < 2)
                usage_exit("a mode: upstream or load");
        if (strcmp(argv[1], "upstream") == 0)
                return upstream_main(argc, argv);
        if (strcmp(argv[1], "load") == 0)
                return load_main(argc, argv);
        usage_exit("a mode: upstream or load");
        return 2;
}
