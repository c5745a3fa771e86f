/* tests/unit/test_activator_http.c: the service backends' response parser
 * (activator/httpresp.c): lengths, chunked bodies, bodies to the close, no
 * body (HEAD, 204, 304), 1xx heads, every split of the input, and refusal
 * of what a broken or hostile instance could send. */
#define _GNU_SOURCE
#include "test.h"

#include <errno.h>

#include "activator/httpresp.h"

typedef struct Parsed {
        int result;              /* 1 done, 0 more needed, or the error */
        unsigned status;
        bool keep_alive;
        char body[4096];
        size_t body_len;
        size_t rest;             /* input left after DONE */
} Parsed;

/* Feed text in pieces of step bytes. */
static Parsed parse(const char *text, size_t len, size_t step, bool head) {
        static HttpResp p;
        Parsed out = { 0 };
        httpresp_init(&p, head);
        size_t off = 0;
        for (;;) {
                size_t n = len - off < step ? len - off : step;
                const char *data = text + off;
                size_t left = n;
                int ev;
                do {
                        const char *body;
                        size_t bl;
                        ev = httpresp_feed(&p, &data, &left, &body, &bl);
                        if (ev < 0) {
                                out.result = ev;
                                return out;
                        }
                        if (ev == HTTPRESP_HEADERS)
                                out.status = p.status;
                        if (ev == HTTPRESP_BODY) {
                                ASSERT_TRUE(out.body_len + bl < sizeof out.body);
                                memcpy(out.body + out.body_len, body, bl);
                                out.body_len += bl;
                        }
                        if (ev == HTTPRESP_DONE) {
                                out.result = 1;
                                out.keep_alive = p.keep_alive;
                                out.rest = left + (len - off - n);
                                return out;
                        }
                } while (ev != HTTPRESP_MORE);
                off += n;
                if (off == len)
                        return out;
        }
}

static void check_all_splits(const char *text, unsigned status, const char *body, bool keep_alive) {
        size_t len = strlen(text);
        for (size_t step = 1; step <= len; step++) {
                Parsed r = parse(text, len, step, false);
                if (r.result != 1 || r.status != status || r.body_len != strlen(body) ||
                    memcmp(r.body, body, r.body_len) != 0 || r.keep_alive != keep_alive || r.rest != 0)
                        FAIL_AT("step %zu: result %d status %u body \"%.*s\" keep-alive %d rest %zu", step, r.result,
                                r.status, (int) r.body_len, r.body, r.keep_alive, r.rest);
        }
}

TEST(activator_httpresp_length) {
        check_all_splits("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello", 200, "hello", true);
        check_all_splits("HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n", 404, "", true);
        check_all_splits("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi", 200, "hi", false);
        check_all_splits("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi", 200, "hi", false);
        check_all_splits("HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: Keep-Alive\r\n\r\nhi", 200, "hi", true);
        check_all_splits("HTTP/1.1 200 OK\nContent-Length: 2\n\nhi", 200, "hi", true);      /* bare LF */
        /* what follows the body is not this response's */
        const char *two = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxHTTP/1.1 200 OK\r\n";
        Parsed r = parse(two, strlen(two), 1000, false);
        ASSERT_EQ_INT(r.result, 1);
        ASSERT_EQ_INT(r.rest, strlen("HTTP/1.1 200 OK\r\n"));
}

TEST(activator_httpresp_headers) {
        static HttpResp p;
        const char *t = "HTTP/1.1 201 Created\r\nX-One:  spaced  \r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 0\r\n\r\n";
        const char *data = t, *body;
        size_t len = strlen(t), bl;
        httpresp_init(&p, false);
        ASSERT_EQ_INT(httpresp_feed(&p, &data, &len, &body, &bl), HTTPRESP_HEADERS);
        ASSERT_EQ_UINT(p.status, 201);
        ASSERT_EQ_STR(httpresp_header(&p, "x-one"), "spaced");
        ASSERT_EQ_UINT(p.n_headers, 4);
        ASSERT_EQ_STR(p.headers[2].value, "b=2");
        ASSERT_TRUE(p.has_length && p.length == 0);
        ASSERT_EQ_INT(httpresp_feed(&p, &data, &len, &body, &bl), HTTPRESP_DONE);
}

TEST(activator_httpresp_chunked) {
        check_all_splits("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n",
                         200, "hello world", true);
        check_all_splits("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nA\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\n",
                         200, "0123456789", true);
        /* chunked wins over a length */
        check_all_splits("HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n",
                         200, "z", true);
}

TEST(activator_httpresp_no_body) {
        check_all_splits("HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n", 204, "", true);
        check_all_splits("HTTP/1.1 304 Not Modified\r\n\r\n", 304, "", true);
        check_all_splits("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nk", 200, "k", true);
        const char *t = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n";
        Parsed r = parse(t, strlen(t), 7, true);       /* to HEAD */
        ASSERT_EQ_INT(r.result, 1);
        ASSERT_EQ_INT(r.body_len, 0);
}

TEST(activator_httpresp_until_close) {
        static HttpResp p;
        const char *t = "HTTP/1.1 200 OK\r\nX: y\r\n\r\nsome body";
        Parsed r = parse(t, strlen(t), 3, false);
        ASSERT_EQ_INT(r.result, 0);             /* more until the close */
        ASSERT_EQ_INT(r.body_len, 9);
        const char *data = t, *body;
        size_t len = strlen(t), bl;
        httpresp_init(&p, false);
        while (len > 0)
                ASSERT_TRUE(httpresp_feed(&p, &data, &len, &body, &bl) >= 0);
        ASSERT_TRUE(!p.keep_alive);
        ASSERT_EQ_INT(httpresp_eof(&p), 1);
        /* a close before a length-delimited body ends is not a response */
        const char *cut = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
        data = cut, len = strlen(cut);
        httpresp_init(&p, false);
        while (len > 0)
                ASSERT_TRUE(httpresp_feed(&p, &data, &len, &body, &bl) >= 0);
        ASSERT_EQ_INT(httpresp_eof(&p), -ECONNRESET);
}

TEST(activator_httpresp_refused) {
        const char *bad[] = {
                "HTTP/2 200 OK\r\n\r\n",
                "HTTP/1.1 20 OK\r\n\r\n",
                "HTTP/1.1 2000 OK\r\n\r\n",
                "ICY 200 OK\r\n\r\n",
                "HTTP/1.1 200 OK\r\nNoColon\r\n\r\n",
                "HTTP/1.1 200 OK\r\n: empty name\r\n\r\n",
                "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
                "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
                "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
                "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nabc\r\n",
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n",
                "HTTP/1.1 101 Switching Protocols\r\n\r\n",
        };
        for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
                Parsed r = parse(bad[i], strlen(bad[i]), 1000, false);
                if (r.result >= 0)
                        FAIL_AT("accepted: %s", bad[i]);
        }
        /* a head over its limit, and too many headers */
        static char big[HTTPRESP_HEAD_MAX + 100];
        strcpy(big, "HTTP/1.1 200 OK\r\nX: ");
        memset(big + strlen(big), 'a', sizeof big - strlen(big) - 1);
        Parsed r = parse(big, strlen(big), 4096, false);
        ASSERT_EQ_INT(r.result, -E2BIG);
        static char many[HTTPRESP_HEADERS_MAX * 8 + 64];
        strcpy(many, "HTTP/1.1 200 OK\r\n");
        for (int i = 0; i <= HTTPRESP_HEADERS_MAX; i++)
                strcat(many, "A: b\r\n");
        strcat(many, "\r\n");
        r = parse(many, strlen(many), 100, false);
        ASSERT_EQ_INT(r.result, -E2BIG);
}
