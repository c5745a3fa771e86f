/* runtime/ctlclient_http.c: the node agent's HTTP/1.1 client (see
 * ctlclient_http.h for why it exists). The parser takes nothing on trust:
 * every line, the head, the header count and the body have a limit, and
 * anything ambiguous (both framings, folded headers, bare LFs, two
 * lengths) is refused rather than guessed at. */
#define _GNU_SOURCE
#include "ctlclient_http.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include "lib/util.h"

enum { S_STATUS, S_HEADER, S_BODY, S_CHUNK_SIZE, S_CHUNK_DATA, S_CHUNK_CRLF, S_TRAILER, S_DONE };

void http_parser_init(HttpParser *p, size_t max_body, bool no_body) {
        memset(p, 0, sizeof *p);
        p->max_body = max_body;
        p->no_body = no_body;
}

void http_parser_clear(HttpParser *p) {
        free(p->body);
        p->body = NULL;
        p->body_len = p->body_cap = 0;
}

char *http_parser_take_body(HttpParser *p, size_t *ret_len) {
        if (!p->body && !(p->body = calloc(1, 1)))
                return NULL;
        *ret_len = p->body_len;
        p->body_len = p->body_cap = 0;
        return TAKE_PTR(p->body);
}

static int body_add(HttpParser *p, const char *data, size_t n) {
        if (p->body_len + n > p->max_body)
                return -EFBIG;
        if (p->body_len + n + 1 > p->body_cap) {
                size_t cap = p->body_cap ? p->body_cap : 4096;
                while (cap < p->body_len + n + 1)
                        cap *= 2;
                char *b = realloc(p->body, cap);
                if (!b)
                        return -ENOMEM;
                p->body = b;
                p->body_cap = cap;
        }
        memcpy(p->body + p->body_len, data, n);
        p->body_len += n;
        p->body[p->body_len] = 0;
        return 0;
}

/* "HTTP/1.x NNN[ reason]" */
static int parse_status(HttpParser *p, const char *l) {
        if (strncmp(l, "HTTP/1.", 7) != 0 || (l[7] != '0' && l[7] != '1') || l[8] != ' ')
                return -EBADMSG;
        const char *c = l + 9;
        if (!isdigit((unsigned char) c[0]) || !isdigit((unsigned char) c[1]) || !isdigit((unsigned char) c[2]) ||
            (c[3] != 0 && c[3] != ' '))
                return -EBADMSG;
        for (const char *r = c + 3; *r; r++)
                if ((unsigned char) *r < 0x20 && *r != '\t')
                        return -EBADMSG;
        p->status = (c[0] - '0') * 100 + (c[1] - '0') * 10 + (c[2] - '0');
        return p->status >= 100 && p->status <= 599 ? 0 : -EBADMSG;
}

static bool is_tchar(char c) {
        return isalnum((unsigned char) c) || strchr("!#$%&'*+-.^_`|~", c);
}

/* Digits only, no sign, no list, no overflow. */
static int parse_length(const char *v, uint64_t *ret) {
        uint64_t n = 0;
        if (!*v || strlen(v) > 18)
                return -EBADMSG;
        for (const char *c = v; *c; c++) {
                if (!isdigit((unsigned char) *c))
                        return -EBADMSG;
                n = n * 10 + (uint64_t) (*c - '0');
        }
        *ret = n;
        return 0;
}

static int parse_header(HttpParser *p, char *l) {
        if (++p->n_headers > HTTP_HEADERS_MAX)
                return -EMSGSIZE;
        char *colon = strchr(l, ':');
        if (!colon || colon == l)
                return -EBADMSG; /* also obs-fold: a line starting with whitespace */
        for (char *c = l; c < colon; c++)
                if (!is_tchar(*c))
                        return -EBADMSG;
        *colon = 0;
        char *v = colon + 1, *end;
        v += strspn(v, " \t");
        for (end = v + strlen(v); end > v && (end[-1] == ' ' || end[-1] == '\t'); end--)
                ;
        *end = 0;
        for (char *c = v; *c; c++)
                if (((unsigned char) *c < 0x20 && *c != '\t') || *c == 0x7f)
                        return -EBADMSG;
        if (strcasecmp(l, "Content-Length") == 0) {
                uint64_t n;
                if (parse_length(v, &n) < 0 || (p->have_length && n != p->length))
                        return -EBADMSG;
                p->have_length = true;
                p->length = n;
        } else if (strcasecmp(l, "Transfer-Encoding") == 0) {
                if (strcasecmp(v, "chunked") != 0 || p->chunked)
                        return -EBADMSG;
                p->chunked = true;
        } else if (strcasecmp(l, "Content-Type") == 0)
                snprintf(p->content_type, sizeof p->content_type, "%s", v);
        return 0;
}

/* The head is over: choose how the body is framed. */
static int head_done(HttpParser *p) {
        if (p->status < 200) {
                if (p->status != 100)
                        return -EBADMSG; /* we never ask to switch protocols */
                HttpParser fresh; /* 100 Continue: the real response follows */
                http_parser_init(&fresh, p->max_body, p->no_body);
                fresh.head_bytes = p->head_bytes;
                *p = fresh;
                return 0;
        }
        if (p->chunked && p->have_length)
                return -EBADMSG;
        if (p->no_body || p->status == 204 || p->status == 304) {
                p->state = S_DONE;
                return 0;
        }
        if (p->chunked) {
                p->state = S_CHUNK_SIZE;
                return 0;
        }
        if (!p->have_length)
                return -EBADMSG; /* strict: no body delimited by the close */
        if (p->length > p->max_body)
                return -EFBIG;
        p->left = p->length;
        p->state = p->length ? S_BODY : S_DONE;
        return 0;
}

static int parse_chunk_size(HttpParser *p, const char *l) {
        uint64_t n = 0;
        size_t digits = 0;
        for (; isxdigit((unsigned char) *l); l++, digits++) {
                if (digits >= 15)
                        return -EBADMSG;
                n = n * 16 + (uint64_t) (isdigit((unsigned char) *l) ? *l - '0' : (tolower((unsigned char) *l) - 'a' + 10));
        }
        if (digits == 0 || (*l && *l != ';' && *l != ' ' && *l != '\t'))
                return -EBADMSG;
        if (p->body_len + n > p->max_body)
                return -EFBIG;
        p->left = n;
        p->state = n ? S_CHUNK_DATA : S_TRAILER;
        return 0;
}

/* A complete line (without its CRLF) in the state it belongs to. */
static int take_line(HttpParser *p) {
        char *l = p->line;
        switch (p->state) {
        case S_STATUS:
                p->state = S_HEADER;
                return parse_status(p, l);
        case S_HEADER:
                return *l ? parse_header(p, l) : head_done(p);
        case S_CHUNK_SIZE:
                return parse_chunk_size(p, l);
        case S_CHUNK_CRLF:
                if (*l)
                        return -EBADMSG;
                p->state = S_CHUNK_SIZE;
                return 0;
        case S_TRAILER:
                if (!*l)
                        p->state = S_DONE;
                else if (++p->n_headers > HTTP_HEADERS_MAX || !strchr(l, ':'))
                        return -EBADMSG;
                return 0;
        default:
                return -EBADMSG;
        }
}

static bool in_head(const HttpParser *p) {
        return p->state == S_STATUS || p->state == S_HEADER || p->state == S_TRAILER;
}

/* Collect one line, CRLF-terminated; a bare CR or LF is refused. 1 when
 * a line was taken (its state moved on), 0 when all of d went into it. */
static int feed_line(HttpParser *p, const char *d, size_t len, size_t *used) {
        for (size_t i = 0; i < len;) {
                char c = d[i++];
                if (in_head(p) && ++p->head_bytes > HTTP_HEAD_MAX)
                        return -EMSGSIZE;
                if (p->line_len > 0 && p->line[p->line_len - 1] == '\r') {
                        if (c != '\n')
                                return -EBADMSG;
                        p->line[--p->line_len] = 0;
                        p->line_len = 0;
                        *used = i;
                        int r = take_line(p);
                        return r < 0 ? r : 1;
                }
                if (c == '\n' || c == 0)
                        return -EBADMSG;
                if (p->line_len >= HTTP_LINE_MAX)
                        return -EMSGSIZE;
                p->line[p->line_len++] = c;
                p->line[p->line_len] = 0;
        }
        *used = len;
        return 0;
}

int http_parser_feed(HttpParser *p, const void *data, size_t len, size_t *consumed) {
        const char *d = data;
        size_t off = 0;
        int r = 0;
        while (off < len && p->state != S_DONE) {
                size_t used = 0;
                if (p->state == S_BODY || p->state == S_CHUNK_DATA) {
                        used = len - off < p->left ? len - off : (size_t) p->left;
                        if ((r = body_add(p, d + off, used)) < 0)
                                break;
                        p->left -= used;
                        if (p->left == 0)
                                p->state = p->state == S_BODY ? S_DONE : S_CHUNK_CRLF;
                } else if ((r = feed_line(p, d + off, len - off, &used)) < 0)
                        break;
                off += used;
        }
        *consumed = off;
        if (r < 0)
                return r;
        return p->state == S_DONE ? 1 : 0;
}

/* ----- targets ----- */

int http_target_parse(const char *url, HttpTarget *ret) {
        HttpTarget t = { 0 };
        if (strncmp(url, "unix:/", 6) == 0) {
                if (strlen(url + 5) >= sizeof t.unix_path)
                        return -EINVAL;
                t.is_unix = true;
                strcpy(t.unix_path, url + 5);
                strcpy(t.host, "localhost");
                *ret = t;
                return 0;
        }
        if (strncmp(url, "http://", 7) != 0)
                return -EINVAL;
        const char *h = url + 7, *end;
        if (*h == '[') {
                if (!(end = strchr(h, ']')))
                        return -EINVAL;
                h++;
        } else
                end = h + strcspn(h, ":/");
        size_t hl = (size_t) (end - h);
        if (hl == 0 || hl >= sizeof t.host || strcspn(h, "@?#%") < hl)
                return -EINVAL;
        memcpy(t.host, h, hl);
        const char *rest = *end == ']' ? end + 1 : end;
        strcpy(t.port, "80");
        if (*rest == ':') {
                size_t pl = strspn(rest + 1, "0123456789");
                if (pl == 0 || pl > 5 || atoi(rest + 1) < 1 || atoi(rest + 1) > 65535)
                        return -EINVAL;
                memcpy(t.port, rest + 1, pl);
                t.port[pl] = 0;
                rest += 1 + pl;
        }
        if (*rest && *rest != '/')
                return -EINVAL;
        size_t n = strlen(rest);
        while (n > 0 && rest[n - 1] == '/')
                n--;
        if (n >= sizeof t.prefix || strcspn(rest, "?# \r\n") < strlen(rest))
                return -EINVAL;
        memcpy(t.prefix, rest, n);
        *ret = t;
        return 0;
}

/* ----- the exchange ----- */

static int64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for events on fd until the deadline, or for cancel_fd. */
static int wait_fd(int fd, short events, int64_t deadline, int cancel_fd) {
        for (;;) {
                int64_t left = deadline - now_ms();
                if (left <= 0)
                        return -ETIMEDOUT;
                struct pollfd pf[2] = { { fd, events, 0 }, { cancel_fd, POLLIN, 0 } };
                int n = poll(pf, cancel_fd >= 0 ? 2 : 1, (int) (left > 1000000 ? 1000000 : left));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return negative_errno();
                if (cancel_fd >= 0 && pf[1].revents)
                        return -ECANCELED;
                if (n > 0)
                        return 0;
        }
}

static int connect_addr(const struct sockaddr *sa, socklen_t len, int64_t deadline, int cancel_fd) {
        _cleanup_close_ int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return negative_errno();
        if (connect(fd, sa, len) < 0) {
                if (errno != EINPROGRESS && errno != EAGAIN)
                        return negative_errno();
                int r = wait_fd(fd, POLLOUT, deadline, cancel_fd), err = 0;
                socklen_t el = sizeof err;
                if (r < 0)
                        return r;
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err)
                        return err ? -err : negative_errno();
        }
        if (sa->sa_family != AF_UNIX)
                (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int) { 1 }, sizeof(int));
        return TAKE_FD(fd);
}

/* Numeric addresses and "localhost" without the resolver (a static binary
 * has no NSS modules of its own); other names through getaddrinfo. */
static int http_connect(const HttpTarget *t, int64_t deadline, int cancel_fd) {
        if (t->is_unix) {
                struct sockaddr_un sa = { .sun_family = AF_UNIX };
                strcpy(sa.sun_path, t->unix_path);
                return connect_addr((struct sockaddr *) &sa, sizeof sa, deadline, cancel_fd);
        }
        uint16_t port = (uint16_t) atoi(t->port);
        struct sockaddr_in in4 = { .sin_family = AF_INET, .sin_port = htons(port) };
        struct sockaddr_in6 in6 = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
        const char *host = strcmp(t->host, "localhost") == 0 ? "127.0.0.1" : t->host;
        if (inet_pton(AF_INET, host, &in4.sin_addr) == 1)
                return connect_addr((struct sockaddr *) &in4, sizeof in4, deadline, cancel_fd);
        if (inet_pton(AF_INET6, host, &in6.sin6_addr) == 1)
                return connect_addr((struct sockaddr *) &in6, sizeof in6, deadline, cancel_fd);
        struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
        if (getaddrinfo(host, t->port, &hints, &ai) != 0 || !ai)
                return -EHOSTUNREACH;
        int r = -EHOSTUNREACH;
        for (struct addrinfo *a = ai; a; a = a->ai_next)
                if ((r = connect_addr(a->ai_addr, a->ai_addrlen, deadline, cancel_fd)) >= 0 || r == -ECANCELED ||
                    r == -ETIMEDOUT)
                        break;
        freeaddrinfo(ai);
        return r;
}

static int send_all(int fd, const char *d, size_t len, int64_t deadline, int cancel_fd) {
        while (len > 0) {
                ssize_t n = send(fd, d, len, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
                        int r = wait_fd(fd, POLLOUT, deadline, cancel_fd);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (n < 0)
                        return negative_errno();
                d += n;
                len -= (size_t) n;
        }
        return 0;
}

static int request_head(const HttpTarget *t, const HttpRequest *rq, char **ret) {
        if (!rq->path || rq->path[0] != '/' || strcspn(rq->path, " \r\n") != strlen(rq->path) ||
            !rq->method || strcspn(rq->method, " \r\n") != strlen(rq->method) ||
            (rq->token && strcspn(rq->token, "\r\n") != strlen(rq->token)))
                return -EINVAL;
        const char *ctype = rq->body ? (rq->content_type ? rq->content_type : "application/json") : NULL;
        int n = asprintf(ret,
                         "%s %s%s HTTP/1.1\r\nHost: %s%s%s\r\nUser-Agent: fnbox-runtime\r\nConnection: close\r\n"
                         "Accept: application/json\r\n%s%s%s%s%s%s"
                         "Content-Length: %zu\r\n\r\n",
                         rq->method, t->prefix, rq->path, strchr(t->host, ':') ? "[" : "", t->host,
                         strchr(t->host, ':') ? "]" : "", rq->token ? "Authorization: Bearer " : "",
                         rq->token ? rq->token : "", rq->token ? "\r\n" : "", ctype ? "Content-Type: " : "",
                         ctype ? ctype : "", ctype ? "\r\n" : "", rq->body ? rq->body_len : 0);
        return n < 0 ? -ENOMEM : 0;
}

static int read_response(int fd, HttpParser *p, int64_t deadline, int cancel_fd) {
        char buf[16384];
        for (;;) {
                ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
                if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
                        int r = wait_fd(fd, POLLIN, deadline, cancel_fd);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (n < 0)
                        return negative_errno();
                if (n == 0)
                        return -ECONNRESET; /* closed before the response was complete */
                size_t used;
                int r = http_parser_feed(p, buf, (size_t) n, &used);
                if (r != 0)
                        return r < 0 ? r : 0;
        }
}

int http_do(const HttpTarget *t, const HttpRequest *rq, HttpResponse *ret) {
        int64_t deadline = now_ms() + (rq->timeout_ms > 0 ? rq->timeout_ms : 10000);
        _cleanup_free_ char *head = NULL;
        int r = request_head(t, rq, &head);
        if (r < 0)
                return r;
        _cleanup_close_ int fd = http_connect(t, deadline, rq->cancel_fd);
        if (fd < 0)
                return fd;
        if (rq->verify && (r = rq->verify(fd, rq->verify_data)) < 0)
                return r;
        if ((r = send_all(fd, head, strlen(head), deadline, rq->cancel_fd)) < 0 ||
            (rq->body && (r = send_all(fd, rq->body, rq->body_len, deadline, rq->cancel_fd)) < 0))
                return r;
        HttpParser *p = malloc(sizeof *p);
        if (!p)
                return -ENOMEM;
        http_parser_init(p, rq->max_body, strcmp(rq->method, "HEAD") == 0);
        if ((r = read_response(fd, p, deadline, rq->cancel_fd)) >= 0) {
                HttpResponse res = { .status = p->status };
                snprintf(res.content_type, sizeof res.content_type, "%s", p->content_type);
                if (!(res.body = http_parser_take_body(p, &res.body_len)))
                        r = -ENOMEM;
                else
                        *ret = res;
        }
        http_parser_clear(p);
        free(p);
        return r;
}

void http_response_clear(HttpResponse *r) {
        free(r->body);
        *r = (HttpResponse) { 0 };
}
