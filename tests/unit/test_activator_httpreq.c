/* tests/unit/test_activator_httpreq.c: the activator's request parser
 * (activator/httpreq.c), driven the way activator/http.c drives it: bytes
 * arrive in pieces into one buffer, the head's end is looked for after
 * each, the head is parsed in place, then the body follows (by its length,
 * or chunked with partial framing lines kept for the next piece). Good
 * requests, and each refusal with its status and JSON error type, are
 * checked with every split of the input. */
#define _GNU_SOURCE
#include "test.h"

#include <errno.h>

#include "activator/httpreq.h"

#define BUF_MAX 40000

static const HttpReqLimits LIM = { .head_max = 1024, .uri_max = 256 };

typedef struct Parsed {
        int result;              /* 1 complete, 0 more needed, -EBADMSG (head), -EPROTO, -EILSEQ (body) */
        ActError error;
        char message[96];
        size_t head_len;
        char method[32], uri[300];
        bool http10, keep_alive, head_method, expect_continue, chunked;
        uint64_t length;
        unsigned n_hdr;
        char host[64];
        char body[4096];
        size_t body_len;
        size_t rest;             /* bytes after the request */
} Parsed;

typedef struct Feeder {
        char buf[BUF_MAX];
        size_t len, pos;
        HttpReqScan sc;
        HttpReq rq;
        HttpChunked ch;
        bool have_head;
        uint64_t left;           /* of a Content-Length body */
} Feeder;

static void take_body(Parsed *out, const char *p, size_t n) {
        ASSERT_TRUE(out->body_len + n <= sizeof out->body);
        memcpy(out->body + out->body_len, p, n);
        out->body_len += n;
}

/* The head, if it is in: 1 parsed, 0 more needed, or the refusal. */
static int feed_head(Feeder *f, Parsed *out, const HttpReqLimits *lim) {
        HttpReqRefusal no;
        int r = httpreq_head_end(&f->sc, f->buf, &f->len, lim, &out->head_len, &no);
        if (r == 1)
                r = httpreq_parse(&f->rq, f->buf, out->head_len, lim, &no);
        else if (r == 0)
                return 0;
        if (r < 0) {
                if (r == -EBADMSG) {
                        out->error = no.error;
                        snprintf(out->message, sizeof out->message, "%s", no.message);
                }
                return r;
        }
        f->have_head = true;
        f->pos = out->head_len;
        snprintf(out->method, sizeof out->method, "%s", f->rq.method);
        snprintf(out->uri, sizeof out->uri, "%s", f->rq.uri);
        const char *host = httpreq_header(&f->rq, "host");
        snprintf(out->host, sizeof out->host, "%s", host ? host : "");
        out->http10 = f->rq.http10;
        out->keep_alive = f->rq.keep_alive;
        out->head_method = f->rq.head_method;
        out->expect_continue = f->rq.expect_continue;
        out->chunked = f->rq.chunked;
        out->length = f->rq.length;
        out->n_hdr = f->rq.n_hdr;
        f->left = f->rq.length;
        httpreq_chunked_init(&f->ch, lim->head_max);
        return 1;
}

/* The body in buf[pos, len): 1 complete, 0 more needed, -EILSEQ malformed. */
static int feed_body(Feeder *f, Parsed *out) {
        if (!f->rq.chunked) {
                size_t n = f->len - f->pos < f->left ? f->len - f->pos : (size_t) f->left;
                take_body(out, f->buf + f->pos, n);
                f->pos += n;
                f->left -= n;
                return f->left == 0;
        }
        for (;;) {
                const char *d = f->buf + f->pos, *p;
                size_t left = f->len - f->pos, n;
                int ev = httpreq_chunked_feed(&f->ch, &d, &left, &p, &n);
                ASSERT_TRUE(d >= f->buf + f->pos && d + left == f->buf + f->len);
                f->pos = (size_t) (d - f->buf);
                if (ev < 0)
                        return -EILSEQ;
                if (ev == HTTPREQ_DONE)
                        return 1;
                if (ev == HTTPREQ_MORE)
                        return 0;
                ASSERT_TRUE(p >= f->buf && p + n <= d);
                take_body(out, p, n);
        }
}

/* Feed text in pieces of step bytes. */
static Parsed parse_lim(const char *text, size_t len, size_t step, const HttpReqLimits *lim) {
        static Feeder f;
        Parsed out = { 0 };
        memset(&f, 0, sizeof f);
        httpreq_scan_init(&f.sc);
        ASSERT_TRUE(len <= BUF_MAX);
        for (size_t off = 0; off < len;) {
                size_t n = len - off < step ? len - off : step;
                memcpy(f.buf + f.len, text + off, n);
                f.len += n;
                off += n;
                int r = f.have_head ? 0 : feed_head(&f, &out, lim);
                if (r < 0) {
                        out.result = r;
                        return out;
                }
                if (!f.have_head)
                        continue;
                r = feed_body(&f, &out);
                if (r != 0) {
                        out.result = r;
                        out.rest = f.len - f.pos + (len - off);
                        return out;
                }
        }
        return out;
}

static Parsed parse(const char *text, size_t len, size_t step) {
        return parse_lim(text, len, step, &LIM);
}

/* Every split gives the result of the whole at once. */
static Parsed parse_all_splits(const char *text, size_t len, const HttpReqLimits *lim) {
        Parsed whole = parse_lim(text, len, len ? len : 1, lim);
        for (size_t step = 1; step < len; step++) {
                Parsed r = parse_lim(text, len, step, lim);
                if (r.result != whole.result || r.error != whole.error || strcmp(r.message, whole.message) != 0 ||
                    r.head_len != whole.head_len || r.body_len != whole.body_len ||
                    memcmp(r.body, whole.body, r.body_len) != 0 || r.keep_alive != whole.keep_alive ||
                    r.rest != whole.rest || strcmp(r.uri, whole.uri) != 0)
                        FAIL_AT("step %zu of \"%.60s\": result %d/%d error %d/%d \"%s\"/\"%s\" body %zu/%zu rest %zu/%zu",
                                step, text, r.result, whole.result, r.error, whole.error, r.message, whole.message,
                                r.body_len, whole.body_len, r.rest, whole.rest);
        }
        return whole;
}

static Parsed good(const char *text) {
        Parsed r = parse_all_splits(text, strlen(text), &LIM);
        if (r.result != 1)
                FAIL_AT("\"%s\": result %d (%s)", text, r.result, r.message);
        return r;
}

/* text is refused (at every split) with that status and error type. */
static void refused_lim(const char *text, size_t len, const HttpReqLimits *lim, unsigned status, const char *type,
                        const char *message) {
        Parsed r = parse_all_splits(text, len, lim);
        if (r.result != -EBADMSG || act_error_status(r.error) != status ||
            strcmp(act_error_type(r.error), type) != 0 || (message && strcmp(r.message, message) != 0))
                FAIL_AT("\"%.60s\": result %d status %u type %s \"%s\", not %u %s", text, r.result,
                        act_error_status(r.error), act_error_type(r.error), r.message, status, type);
}

static void refused(const char *text, unsigned status, const char *type, const char *message) {
        refused_lim(text, strlen(text), &LIM, status, type, message);
}

static void bad_body(const char *text) {
        Parsed r = parse_all_splits(text, strlen(text), &LIM);
        if (r.result != -EILSEQ)
                FAIL_AT("\"%s\": result %d, not a malformed body", text, r.result);
}

TEST(activator_httpreq_length) {
        Parsed r = good("POST /fn/echo?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nX-A:  b c \t\r\n\r\nhelloGET");
        ASSERT_EQ_STR(r.method, "POST");
        ASSERT_EQ_STR(r.uri, "/fn/echo?x=1");
        ASSERT_EQ_STR(r.host, "a");
        ASSERT_EQ_UINT(r.n_hdr, 3);
        ASSERT_EQ_UINT(r.length, 5);
        ASSERT_TRUE(!r.chunked && !r.http10 && r.keep_alive && !r.head_method && !r.expect_continue);
        ASSERT_EQ_UINT(r.body_len, 5);
        ASSERT_TRUE(memcmp(r.body, "hello", 5) == 0);
        ASSERT_EQ_UINT(r.rest, 3);               /* the next request's first bytes */
        ASSERT_EQ_UINT(r.head_len, strlen("POST /fn/echo?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nX-A:  b c \t\r\n\r\n"));

        /* the same length twice; no body; bare LF line ends */
        r = good("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\nhi");
        ASSERT_EQ_UINT(r.body_len, 2);
        r = good("GET / HTTP/1.1\nHost: a\n\n");
        ASSERT_EQ_UINT(r.body_len, 0);
        ASSERT_EQ_UINT(r.length, 0);
        r = good("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 000\r\n\r\n");
        ASSERT_EQ_UINT(r.length, 0);
        const char *big = "PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 999999999999999999\r\n\r\nabc";
        r = parse(big, strlen(big), 1);
        ASSERT_EQ_INT(r.result, 0);              /* the body is still coming */
        ASSERT_EQ_UINT(r.length, 999999999999999999ull);
        ASSERT_EQ_UINT(r.body_len, 3);
}

TEST(activator_httpreq_header_values) {
        static Feeder f;
        char head[] = "GET / HTTP/1.1\r\nHost: h\r\nX-Empty:\r\nX-Tab:\tv\t\r\nx-tab: second\r\n\r\n";
        HttpReqRefusal no;
        ASSERT_EQ_INT(httpreq_parse(&f.rq, head, strlen(head), &LIM, &no), 0);
        ASSERT_EQ_STR(httpreq_header(&f.rq, "x-empty"), "");
        ASSERT_EQ_STR(httpreq_header(&f.rq, "X-TAB"), "v");   /* the first of two */
        ASSERT_EQ_STR(f.rq.hdr[3].value, "second");
        ASSERT_TRUE(httpreq_header(&f.rq, "X-None") == NULL);
}

TEST(activator_httpreq_chunked) {
        Parsed r = good("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                        "5;name=value\r\nhello\r\n1 ; ext\r\n \r\nA\r\n0123456789\r\n0\r\nX-Sum: 1\r\nX-B: 2\r\n\r\nGET");
        ASSERT_TRUE(r.chunked);
        ASSERT_EQ_UINT(r.body_len, 16);
        ASSERT_TRUE(memcmp(r.body, "hello 0123456789", 16) == 0);
        ASSERT_EQ_UINT(r.rest, 3);
        /* upper and lower case hex, leading zeros, no trailer */
        r = good("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n00b\r\nhello world\r\nB\r\n"
                 "hello world\r\n000\r\n\r\n");
        ASSERT_EQ_UINT(r.body_len, 22);
        r = good("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
        ASSERT_EQ_UINT(r.body_len, 0);
        ASSERT_EQ_UINT(r.rest, 0);
}

TEST(activator_httpreq_connection) {
        ASSERT_TRUE(good("GET / HTTP/1.1\r\nHost: a\r\n\r\n").keep_alive);
        ASSERT_TRUE(!good("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").keep_alive);
        ASSERT_TRUE(!good("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade , CLOSE\r\n\r\n").keep_alive);
        /* every Connection header counts */
        ASSERT_TRUE(!good("GET / HTTP/1.1\r\nHost: a\r\nConnection: te\r\nConnection: close\r\n\r\n").keep_alive);
        ASSERT_TRUE(good("GET / HTTP/1.1\r\nHost: a\r\nConnection: closed\r\n\r\n").keep_alive);

        Parsed r = good("GET / HTTP/1.0\r\n\r\n");        /* HTTP/1.0: no Host needed, closes by default */
        ASSERT_TRUE(r.http10 && !r.keep_alive);
        r = good("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
        ASSERT_TRUE(r.http10 && r.keep_alive);
        ASSERT_TRUE(!good("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n").keep_alive);
}

TEST(activator_httpreq_expect_head) {
        Parsed r = good("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\nx");
        ASSERT_TRUE(r.expect_continue);
        ASSERT_TRUE(!good("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx").expect_continue);
        ASSERT_TRUE(!good("POST / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n").expect_continue);
        r = good("HEAD /fn/x HTTP/1.1\r\nHost: a\r\n\r\n");
        ASSERT_TRUE(r.head_method);
        ASSERT_TRUE(!good("head /fn/x HTTP/1.1\r\nHost: a\r\n\r\n").head_method);
}

TEST(activator_httpreq_blank_lines) {
        /* empty lines before a request are dropped, up to HTTPREQ_BLANK_MAX bytes */
        char text[256];
        memset(text, '\n', HTTPREQ_BLANK_MAX);
        strcpy(text + HTTPREQ_BLANK_MAX, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        Parsed r = good(text);
        ASSERT_EQ_UINT(r.head_len, strlen("GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
        Parsed crlf = good("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
        ASSERT_EQ_STR(crlf.method, "GET");
        /* one more: the connection ends without an answer */
        memset(text, '\r', HTTPREQ_BLANK_MAX + 1);
        strcpy(text + HTTPREQ_BLANK_MAX + 1, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        ASSERT_EQ_INT(parse_all_splits(text, strlen(text), &LIM).result, -EPROTO);
}

typedef struct Refusal {
        const char *text, *message;          /* each a 400 bad_request */
} Refusal;

static void refused_400(const Refusal *t, size_t n) {
        for (size_t i = 0; i < n; i++)
                refused(t[i].text, 400, "bad_request", t[i].message);
}

#define BOTH "both Content-Length and Transfer-Encoding"
#define BAD_CL "malformed Content-Length"
#define ONLY_CHUNKED "Transfer-Encoding: only chunked is accepted (HTTP/1.1)"

TEST(activator_httpreq_refused_framing) {
        static const Refusal t[] = {
                { "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc", BOTH },
                { "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", BOTH },
                { "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
                  "conflicting Content-Length headers" },
                { "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\nabc", BAD_CL },
                { "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", BAD_CL },
                { "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n", BAD_CL },
                { "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", BAD_CL },
                { "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1234567890123456789\r\n\r\n", BAD_CL },
                { "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", ONLY_CHUNKED },
                { "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", ONLY_CHUNKED },
                { "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", ONLY_CHUNKED },
                { "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
                  "more than one Transfer-Encoding header" },
        };
        refused_400(t, sizeof t / sizeof t[0]);
}

#define FOLDED "folded header lines are not accepted"
#define BAD_LINE "malformed header line"
#define CONTROL "a header value has control characters"
#define NUL "a NUL byte in the request line or headers"
#define TWO_HOSTS "more than one Host header"

TEST(activator_httpreq_refused_lines) {
        static const Refusal t[] = {
                { "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", FOLDED },
                { "GET / HTTP/1.1\r\nHost: a\r\n\tX-A: b\r\n\r\n", FOLDED },
                { "GET / HTTP/1.1\r\nHost: a\r\nX-A : b\r\n\r\n", BAD_LINE },
                { "GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n", BAD_LINE },
                { "GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", BAD_LINE },
                { "GET / HTTP/1.1\r\nHost: a\r\nX(A): b\r\n\r\n", BAD_LINE },
                { "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\001c\r\n\r\n", CONTROL },
                { "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n", CONTROL },
                { "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\177\r\n\r\n", CONTROL },
                { "GET / HTTP/1.1\r\n\r\n", "an HTTP/1.1 request needs a Host header" },
                { "GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", TWO_HOSTS },
                { "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", TWO_HOSTS },
        };
        refused_400(t, sizeof t / sizeof t[0]);
        static const char nul[] = "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\0c\r\n\r\n";
        refused_lim(nul, sizeof nul - 1, &LIM, 400, "bad_request", NUL);
        static const char nul_line[] = "GET /\0 HTTP/1.1\r\nHost: a\r\n\r\n";
        refused_lim(nul_line, sizeof nul_line - 1, &LIM, 400, "bad_request", NUL);
}

#define VERSION "HTTP version not supported: 1.0 and 1.1 are"
#define BAD_REQUEST_LINE "malformed request line"

TEST(activator_httpreq_refused_request_line) {
        /* a well-formed version other than 1.0 and 1.1: 505 */
        static const char *const v505[] = {
                "GET / HTTP/2.0\r\nHost: a\r\n\r\n", "GET / HTTP/0.9\r\n\r\n", "GET / HTTP/1.2\r\nHost: a\r\n\r\n",
                "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        };
        for (size_t i = 0; i < sizeof v505 / sizeof v505[0]; i++)
                refused(v505[i], 505, "http_version_not_supported", VERSION);
        static const Refusal t[] = {
                { "GET / HTTP/1.1x\r\nHost: a\r\n\r\n", BAD_REQUEST_LINE },
                { "GET / HTTP/11.1\r\nHost: a\r\n\r\n", BAD_REQUEST_LINE },
                { "GET / HTTP/1.\r\nHost: a\r\n\r\n", BAD_REQUEST_LINE },
                { "GET / HTTP/\r\nHost: a\r\n\r\n", BAD_REQUEST_LINE },
                { "GET / http/1.1\r\nHost: a\r\n\r\n", BAD_REQUEST_LINE },
                { "GET /\r\nHost: a\r\n\r\n", BAD_REQUEST_LINE },
                { "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", BAD_REQUEST_LINE },
                { " GET / HTTP/1.1\r\nHost: a\r\n\r\n", BAD_REQUEST_LINE },
                { "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", BAD_REQUEST_LINE },
                { "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", "malformed request method" },
                { "GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n", "malformed request target" },
                { "GET /a\177 HTTP/1.1\r\nHost: a\r\n\r\n", "malformed request target" },
        };
        refused_400(t, sizeof t / sizeof t[0]);
}

TEST(activator_httpreq_limits) {
        char text[BUF_MAX];
        /* a target over uri_max inside a head that fits: 414 */
        int n = snprintf(text, sizeof text, "GET /%0*d HTTP/1.1\r\nHost: a\r\n\r\n", (int) LIM.uri_max, 0);
        refused_lim(text, (size_t) n, &LIM, 414, "uri_too_long", "the URL is over 256 bytes");
        n = snprintf(text, sizeof text, "GET /%0*d HTTP/1.1\r\nHost: a\r\n\r\n", (int) LIM.uri_max - 1, 0);
        ASSERT_EQ_INT(parse_all_splits(text, (size_t) n, &LIM).result, 1);
        /* a first line longer than the head may be, no LF yet: 414 */
        n = snprintf(text, sizeof text, "GET /%0*d", (int) LIM.head_max, 0);
        refused_lim(text, (size_t) n, &LIM, 414, "uri_too_long", "the URL is over 256 bytes");
        /* lines, but no end within head_max: 431 */
        n = snprintf(text, sizeof text, "GET / HTTP/1.1\r\nHost: a\r\nX-Big: %0*d", (int) LIM.head_max, 0);
        refused_lim(text, (size_t) n, &LIM, 431, "headers_too_large",
                    "the request line and headers exceed 1024 bytes");
        /* the end found, past head_max: 431 */
        HttpReqLimits wide = { .head_max = 60, .uri_max = 256 };
        const char *over = "GET / HTTP/1.1\r\nHost: a\r\nX-Big: 0123456789012345678901234\r\n\r\n";
        const char *fits = "GET / HTTP/1.1\r\nHost: a\r\nX-Big: 012345678901234567890123\r\n\r\n";
        ASSERT_EQ_UINT(strlen(fits), 60);
        refused_lim(over, strlen(over), &wide, 431, "headers_too_large", "the request line and headers exceed 60 bytes");
        ASSERT_EQ_INT(parse_all_splits(fits, 60, &wide).result, 1);
        /* header fields: HTTPREQ_HEADERS_MAX are accepted, one more is 431 */
        HttpReqLimits big = { .head_max = 16384, .uri_max = 256 };
        n = snprintf(text, sizeof text, "GET / HTTP/1.1\r\nHost: a\r\n");
        for (int i = 1; i < HTTPREQ_HEADERS_MAX; i++)
                n += snprintf(text + n, sizeof text - (size_t) n, "X-%d: v\r\n", i);
        strcpy(text + n, "\r\n");
        ASSERT_EQ_INT(parse_all_splits(text, (size_t) n + 2, &big).result, 1);
        strcpy(text + n, "X-Last: v\r\n\r\n");
        refused_lim(text, strlen(text), &big, 431, "headers_too_large", "more than 128 header fields");
}

TEST(activator_httpreq_chunk_framing) {
#define CH "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        bad_body(CH "5\nhello\r\n0\r\n\r\n");                  /* a size line without CR */
        bad_body(CH "5\r\nhello\n0\r\n\r\n");                  /* nor the line after data */
        bad_body(CH "5\r\nhello!\r\n0\r\n\r\n");               /* data longer than its size */
        bad_body(CH "x\r\nhello\r\n0\r\n\r\n");                /* not hex */
        bad_body(CH "\r\nhello\r\n0\r\n\r\n");                 /* no size */
        bad_body(CH ";x\r\n");
        bad_body(CH "5 x\r\nhello\r\n0\r\n\r\n");              /* only ;extensions after the size */
        bad_body(CH "-5\r\nhello\r\n0\r\n\r\n");
        bad_body(CH "1000000000000000\r\n");                   /* 2^60 */
        bad_body(CH "0\r\nX-A: b\n\r\n");                      /* trailers end in CRLF too */
        ASSERT_EQ_INT(parse(CH "fffffffffffffff\r\nab", strlen(CH "fffffffffffffff\r\nab"), 3).result, 0);
        ASSERT_EQ_UINT(good(CH "0000000000000000000001\r\nx\r\n0\r\n\r\n").body_len, 1);  /* zeros are free */
        /* a framing line over HTTPREQ_CHUNK_LINE_MAX, with or without its end */
        char text[4096];
        int n = snprintf(text, sizeof text, CH "1;%0*d", HTTPREQ_CHUNK_LINE_MAX, 0);
        bad_body(text);
        snprintf(text + n, sizeof text - (size_t) n, "\r\nx\r\n0\r\n\r\n");
        bad_body(text);
        n = snprintf(text, sizeof text, CH "1;%0*d\r\nx\r\n0\r\n\r\n", HTTPREQ_CHUNK_LINE_MAX - 5, 0);
        ASSERT_EQ_INT(parse_all_splits(text, (size_t) n, &LIM).result, 1);
        /* trailers past head_max */
        n = snprintf(text, sizeof text, CH "0\r\n");
        for (int i = 0; i < 40; i++)
                n += snprintf(text + n, sizeof text - (size_t) n, "X-Trailer-%02d: 0123456789\r\n", i);
        snprintf(text + n, sizeof text - (size_t) n, "\r\n");
        bad_body(text);
#undef CH
}

TEST(activator_httpreq_chunked_feed_api) {
        HttpChunked ch;
        httpreq_chunked_init(&ch, 100);
        const char *in = "3\r\nabc\r\n0\r\n\r\nrest", *d = in, *body;
        size_t len = strlen(in), bl;
        ASSERT_EQ_INT(httpreq_chunked_feed(&ch, &d, &len, &body, &bl), HTTPREQ_BODY);
        ASSERT_TRUE(body == in + 3 && bl == 3);
        ASSERT_EQ_INT(httpreq_chunked_feed(&ch, &d, &len, &body, &bl), HTTPREQ_DONE);
        ASSERT_EQ_STR(d, "rest");
        ASSERT_EQ_UINT(len, 4);
        /* after DONE nothing more is taken */
        ASSERT_EQ_INT(httpreq_chunked_feed(&ch, &d, &len, &body, &bl), HTTPREQ_DONE);
        ASSERT_EQ_UINT(len, 4);
        /* a partial line is left for the next call */
        httpreq_chunked_init(&ch, 100);
        d = "3;a=b";
        len = 5;
        ASSERT_EQ_INT(httpreq_chunked_feed(&ch, &d, &len, &body, &bl), HTTPREQ_MORE);
        ASSERT_EQ_UINT(len, 5);
}
