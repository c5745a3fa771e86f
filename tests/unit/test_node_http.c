/* tests/unit/test_node_http.c: the node agent's HTTP client parser
 * (runtime/ctlclient_http.c) against canned responses, fed whole and a
 * byte at a time, and against hostile ones: both framings, two lengths,
 * folded or oversized headers, bare LFs, bad chunk sizes, bodies over the
 * limit. Also the controller URL parser. */
#define _GNU_SOURCE
#include "test.h"

#include <errno.h>

#include "runtime/ctlclient_http.h"

/* Parse all of text with the given step; returns the parser's last result
 * and the body. */
static int parse(const char *text, size_t step, size_t max_body, bool head, HttpParser *p) {
        http_parser_init(p, max_body, head);
        size_t len = strlen(text), off = 0;
        int r = 0;
        while (off < len && r == 0) {
                size_t n = len - off < step ? len - off : step, used;
                r = http_parser_feed(p, text + off, n, &used);
                off += used;
        }
        return r;
}

static void expect_body(const char *text, size_t max_body, int status, const char *body) {
        for (size_t step = 1; step <= strlen(text); step = step < 8 ? step + 1 : step * 3) {
                HttpParser p;
                int r = parse(text, step, max_body, false, &p);
                if (r != 1)
                        FAIL_AT("step %zu: %d for %s", step, r, text);
                ASSERT_EQ_INT(p.status, status);
                size_t len;
                char *b = http_parser_take_body(&p, &len);
                ASSERT_EQ_STR(b, body);
                ASSERT_EQ_UINT(len, strlen(body));
                free(b);
                http_parser_clear(&p);
        }
}

TEST(http_parser_content_length) {
        expect_body("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}", 100,
                    200, "{\"a\":1}");
        expect_body("HTTP/1.0 404 Not Found\r\ncontent-length:  2 \r\n\r\n{}", 100, 404, "{}");
        expect_body("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", 100, 200, "");
        expect_body("HTTP/1.1 204 No Content\r\n\r\n", 100, 204, "");
        /* the same length twice is fine */
        expect_body("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok", 100, 200, "ok");
        HttpParser p;
        ASSERT_EQ_INT(parse("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok", 5, 10,
                            false, &p), 1);
        ASSERT_EQ_STR(p.content_type, "text/plain");
        http_parser_clear(&p);
}

TEST(http_parser_chunked) {
        expect_body("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-Trailer: 1\r\n\r\n",
                    100, 200, "Wikipedia in\r\n\r\nchunks.");
        expect_body("HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n", 100, 200, "");
}

TEST(http_parser_skips_100_continue) {
        expect_body("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\nx", 10, 201, "x");
}

TEST(http_parser_stops_at_the_end) {
        HttpParser p;
        http_parser_init(&p, 100, false);
        const char *t = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA";
        size_t used;
        ASSERT_EQ_INT(http_parser_feed(&p, t, strlen(t), &used), 1);
        ASSERT_EQ_UINT(used, strlen(t) - 5);
        http_parser_clear(&p);
        /* a response to HEAD has no body, whatever its length says */
        ASSERT_EQ_INT(parse("HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", 3, 10, true, &p), 1);
        http_parser_clear(&p);
}

TEST(http_parser_refuses_hostile) {
        static const struct { const char *text; int err; } bad[] = {
                { "HTTP/2 200 OK\r\n\r\n", -EBADMSG },
                { "HTTP/1.1 20 OK\r\n\r\n", -EBADMSG },
                { "HTTP/1.1 2000 OK\r\n\r\n", -EBADMSG },
                { "HTTP/1.1 999 OK\r\n\r\n", -EBADMSG },
                { "HTTP/1.1 101 Switching\r\n\r\n", -EBADMSG },
                { "ICY 200 OK\r\n\r\n", -EBADMSG },
                { "HTTP/1.1 200 OK\nContent-Length: 0\n\n", -EBADMSG },         /* bare LF */
                { "HTTP/1.1 200 OK\r\nContent-Length: 0\rX\r\n\r\n", -EBADMSG },  /* bare CR */
                { "HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n", -EBADMSG },
                { "HTTP/1.1 200 OK\r\nA: b\r\n folded\r\n\r\n", -EBADMSG },
                { "HTTP/1.1 200 OK\r\nBad Name: x\r\nContent-Length: 0\r\n\r\n", -EBADMSG },
                { "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx", -EBADMSG },
                { "HTTP/1.1 200 OK\r\nContent-Length: 1, 1\r\n\r\nx", -EBADMSG },
                { "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", -EBADMSG },
                { "HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\nx", -EBADMSG },
                { "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", -EBADMSG },
                { "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n", -EBADMSG },
                { "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", -EBADMSG },
                { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", -EBADMSG },
                { "HTTP/1.1 200 OK\r\n\r\nbody until close", -EBADMSG },           /* no framing */
                { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", -EBADMSG },
                { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n", -EBADMSG },
                { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nxy\r\n", -EBADMSG },  /* no CRLF after data */
                { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n", -EBADMSG },
                { "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n", -EFBIG },         /* over max_body (10) */
                { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n123456\r\n6\r\n", -EFBIG },
                { "HTTP/1.1 200 OK\r\nX: a\001b\r\nContent-Length: 0\r\n\r\n", -EBADMSG },
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
                for (size_t step = 1; step <= 64; step *= 4) {
                        HttpParser p;
                        int r = parse(bad[i].text, step, 10, false, &p);
                        http_parser_clear(&p);
                        if (r != bad[i].err)
                                FAIL_AT("case %zu step %zu: %d, expected %d: %s", i, step, r, bad[i].err, bad[i].text);
                }
}

TEST(http_parser_head_limits) {
        /* a header line over HTTP_LINE_MAX, then a head over HTTP_HEAD_MAX,
         * then more headers than HTTP_HEADERS_MAX */
        size_t cap = HTTP_HEAD_MAX * 2;
        char *t = malloc(cap);
        HttpParser p;
        int n = snprintf(t, cap, "HTTP/1.1 200 OK\r\nX: ");
        memset(t + n, 'a', HTTP_LINE_MAX + 10);
        strcpy(t + n + HTTP_LINE_MAX + 10, "\r\n\r\n");
        ASSERT_EQ_INT(parse(t, 4096, 10, false, &p), -EMSGSIZE);
        http_parser_clear(&p);
        n = snprintf(t, cap, "HTTP/1.1 200 OK\r\n");
        while ((size_t) n < HTTP_HEAD_MAX + 100)
                n += snprintf(t + n, cap - (size_t) n, "X-Pad: %04000d\r\n", 0);
        strcpy(t + n, "\r\n");
        ASSERT_EQ_INT(parse(t, 999, 10, false, &p), -EMSGSIZE);
        http_parser_clear(&p);
        n = snprintf(t, cap, "HTTP/1.1 200 OK\r\n");
        for (int i = 0; i <= HTTP_HEADERS_MAX; i++)
                n += snprintf(t + n, cap - (size_t) n, "X-%d: 1\r\n", i);
        strcpy(t + n, "Content-Length: 0\r\n\r\n");
        ASSERT_EQ_INT(parse(t, 999, 10, false, &p), -EMSGSIZE);
        http_parser_clear(&p);
        free(t);
}

TEST(http_target_parse_urls) {
        HttpTarget t;
        ASSERT_EQ_INT(http_target_parse("http://127.0.0.1:8081", &t), 0);
        ASSERT_EQ_STR(t.host, "127.0.0.1");
        ASSERT_EQ_STR(t.port, "8081");
        ASSERT_EQ_STR(t.prefix, "");
        ASSERT_EQ_INT(http_target_parse("http://ctl.example/api/", &t), 0);
        ASSERT_EQ_STR(t.host, "ctl.example");
        ASSERT_EQ_STR(t.port, "80");
        ASSERT_EQ_STR(t.prefix, "/api");
        ASSERT_EQ_INT(http_target_parse("http://[::1]:9/", &t), 0);
        ASSERT_EQ_STR(t.host, "::1");
        ASSERT_EQ_STR(t.port, "9");
        ASSERT_EQ_INT(http_target_parse("unix:/run/x.sock", &t), 0);
        ASSERT_TRUE(t.is_unix);
        ASSERT_EQ_STR(t.unix_path, "/run/x.sock");
        static const char *const bad[] = {
                "https://x", "ftp://x", "http://", "http://:80", "http://x:0", "http://x:65536", "http://x:8a",
                "http://u@x", "http://x/?q", "http://x/a b", "x:80", "unix:relative", "http://[::1",
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
                if (http_target_parse(bad[i], &t) >= 0)
                        FAIL_AT("accepted %s", bad[i]);
}
