/* runtime/ctlclient_http.h: a small, strict HTTP/1.1 client for the node
 * agent's talk with the controller (and the readiness probes of service
 * instances). fnbox-runtime is a static PIE and libcurl has no static
 * build on Debian, so this is what it uses: one request per connection
 * (Connection: close), a bounded head, a Content-Length or chunked body
 * with a size limit, a deadline on the whole exchange and an fd that
 * cancels it. Blocking: callers run it on a thread (libuv's pool). The
 * response parser is separate and pure, for the unit tests. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_HEAD_MAX      (16U << 10)   /* status line and headers */
#define HTTP_HEADERS_MAX   64
#define HTTP_LINE_MAX      8192          /* one header line */
#define HTTP_CTYPE_MAX     127

/* ----- the response parser ----- */

typedef struct HttpParser {
        int state;
        bool no_body;            /* a response to HEAD */
        size_t max_body;
        char line[HTTP_LINE_MAX + 1];
        size_t line_len;
        size_t head_bytes;
        unsigned n_headers;
        int status;
        bool chunked, have_length;
        uint64_t length;         /* Content-Length, or the current chunk's size */
        uint64_t left;           /* bytes left in the body or chunk */
        char content_type[HTTP_CTYPE_MAX + 1];
        char *body;
        size_t body_len, body_cap;
} HttpParser;

void http_parser_init(HttpParser *p, size_t max_body, bool no_body);
/* Feed bytes; *consumed says how many were taken. 1 when the response is
 * complete (bytes after it are not consumed), 0 for more, or -EBADMSG
 * (malformed: a bad status line, a header without a colon, obs-fold, a
 * bare LF, Content-Length and Transfer-Encoding both, a Transfer-Encoding
 * other than chunked, two different lengths, a bad chunk size, no length
 * at all), -EMSGSIZE (head over HTTP_HEAD_MAX, a line over HTTP_LINE_MAX,
 * over HTTP_HEADERS_MAX headers) or -EFBIG (body over max_body). */
int http_parser_feed(HttpParser *p, const void *data, size_t len, size_t *consumed);
/* The body (NUL-terminated), handed over; the parser keeps nothing. */
char *http_parser_take_body(HttpParser *p, size_t *ret_len);
void http_parser_clear(HttpParser *p);

/* ----- the client ----- */

typedef struct HttpTarget {
        bool is_unix;
        char host[256];          /* a name or a numeric address ([v6] without brackets) */
        char port[6];
        char unix_path[108];
        char prefix[256];        /* the URL's path, without a trailing '/', prepended to requests */
} HttpTarget;

/* "http://HOST[:PORT][/PREFIX]" (no TLS, no user info, no query) or
 * "unix:/PATH". -EINVAL otherwise. */
int http_target_parse(const char *url, HttpTarget *ret);

typedef struct HttpRequest {
        const char *method;
        const char *path;        /* starts with '/', no CR, LF or space */
        const char *token;       /* bearer token, or NULL */
        const char *content_type;  /* with a body */
        const void *body;
        size_t body_len;
        size_t max_body;         /* of the response */
        int timeout_ms;          /* the whole exchange, connect included */
        int cancel_fd;           /* readable: give up (-ECANCELED); -1 for none */
        /* called once connected, before anything is sent: a negative
         * return aborts (the readiness probe checks its peer here) */
        int (*verify)(int fd, void *userdata);
        void *verify_data;
} HttpRequest;

typedef struct HttpResponse {
        int status;
        char content_type[HTTP_CTYPE_MAX + 1];
        char *body;              /* NUL-terminated */
        size_t body_len;
} HttpResponse;

/* One exchange. 0 and the response (any status), or a negative errno:
 * -ETIMEDOUT, -ECANCELED, -ECONNREFUSED and the like, or the parser's. */
int http_do(const HttpTarget *t, const HttpRequest *rq, HttpResponse *ret);
void http_response_clear(HttpResponse *r);
