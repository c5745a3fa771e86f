/* tests/unit/test_proto.c: the daemon protocol (runtime/proto.c): round
 * trips of a request and a reply, and refusal of what a hostile peer could
 * send: unknown types, oversize lengths, truncated or padded payloads,
 * strings that do not end where they say, frames out of order, more output
 * than announced. Random mutations must be refused or parsed, never crash
 * (run under the sanitizer build). */
#define _GNU_SOURCE
#include "test.h"

#include <errno.h>
#include <math.h>

#include "runtime/proto.h"

static char *args[] = { "one", "two words", "" };
static char *envs[] = { "A=1", "B=two" };

static JailConfig sample_config(void) {
        JailConfig c;
        jail_config_init(&c);
        c.runtime = JAIL_RUNTIME_PYTHON3;
        c.code = "/srv/boxes/hello";
        c.entry = "main.py";
        c.args = args;
        c.n_args = 3;
        c.env = envs;
        c.n_env = 2;
        c.limits.memory_bytes = 64ULL << 20;
        c.limits.timeout_ns = 1500000000ULL;
        return c;
}

/* The RUN payload (without its header) for c. */
static ProtoBuf run_payload(const JailConfig *c) {
        ProtoBuf b = { 0 };
        ASSERT_EQ_INT(proto_put_run(&b, c, 4242, "fnbox/test"), 0);
        return b;
}

/* Feed all of buf to a reader in pieces of step bytes; every frame goes to
 * the request. Returns the last feed's result (1: complete). */
static int feed_request(ProtoRequest *q, const uint8_t *buf, size_t len, size_t step) {
        ProtoReader rd = { 0 };
        size_t off = 0;
        int r = 0;
        while (r == 0) {
                ProtoFrame f;
                while ((r = proto_reader_next(&rd, &f)) > 0)
                        if ((r = proto_request_feed(q, &f)) != 0)
                                break;
                if (r != 0 || off == len)
                        break;
                uint8_t *space;
                size_t room;
                ASSERT_EQ_INT(proto_reader_space(&rd, &space, &room), 0);
                size_t n = len - off < step ? len - off : step;
                n = n < room ? n : room;
                memcpy(space, buf + off, n);
                proto_reader_advance(&rd, n);
                off += n;
        }
        proto_reader_clear(&rd);
        return r;
}

TEST(proto_request_round_trip) {
        JailConfig c = sample_config();
        ProtoBuf b = run_payload(&c);
        ASSERT_EQ_INT(proto_put_frame(&b, PROTO_STDIN, "hello ", 6), 0);
        ASSERT_EQ_INT(proto_put_frame(&b, PROTO_STDIN, "world", 5), 0);
        ASSERT_EQ_INT(proto_put_frame(&b, PROTO_GO, NULL, 0), 0);
        for (size_t step = 1; step <= b.len; step = step * 3 + 1) {
                ProtoRequest q = { 0 };
                ASSERT_EQ_INT(feed_request(&q, b.data, b.len, step), 1);
                ASSERT_EQ_INT(q.cfg.runtime, JAIL_RUNTIME_PYTHON3);
                ASSERT_EQ_STR(q.cfg.code, "/srv/boxes/hello");
                ASSERT_EQ_STR(q.cfg.entry, "main.py");
                ASSERT_EQ_STR(q.cgroup_parent, "fnbox/test");
                ASSERT_EQ_UINT(q.uid, 4242);
                ASSERT_EQ_UINT(q.cfg.n_args, 3);
                ASSERT_EQ_STR(q.cfg.args[1], "two words");
                ASSERT_EQ_STR(q.cfg.args[2], "");
                ASSERT_EQ_UINT(q.cfg.n_env, 2);
                ASSERT_EQ_STR(q.cfg.env[1], "B=two");
                ASSERT_EQ_UINT(q.cfg.limits.memory_bytes, 64ULL << 20);
                ASSERT_EQ_UINT(q.cfg.limits.timeout_ns, 1500000000ULL);
                ASSERT_EQ_UINT(q.cfg.stdin_len, 11);
                ASSERT_TRUE(memcmp(q.cfg.stdin_data, "hello world", 11) == 0);
                ASSERT_EQ_INT(q.cfg.code_fd, -1);
                proto_request_clear(&q);
        }
        proto_buf_clear(&b);
}

TEST(proto_request_defaults) {
        JailConfig c = sample_config();
        c.entry = NULL;
        ProtoBuf b = { 0 };
        ASSERT_EQ_INT(proto_put_run(&b, &c, 0, NULL), 0);
        ProtoRequest q = { 0 };
        ProtoFrame f = { PROTO_RUN, (uint32_t) (b.len - PROTO_HEADER_SIZE), b.data + PROTO_HEADER_SIZE };
        ASSERT_EQ_INT(proto_request_feed(&q, &f), 0);
        ASSERT_TRUE(q.cfg.entry == NULL);
        ASSERT_TRUE(q.cgroup_parent == NULL);
        ASSERT_EQ_UINT(q.uid, 0);
        proto_request_clear(&q);
        proto_buf_clear(&b);
}

TEST(proto_frames_out_of_order) {
        JailConfig c = sample_config();
        ProtoBuf b = run_payload(&c);
        ProtoFrame run = { PROTO_RUN, (uint32_t) (b.len - PROTO_HEADER_SIZE), b.data + PROTO_HEADER_SIZE };
        ProtoFrame in = { PROTO_STDIN, 3, (const uint8_t *) "abc" }, go = { PROTO_GO, 0, NULL };
        ProtoFrame result = { PROTO_RESULT, 0, NULL };
        ProtoRequest q = { 0 };
        ASSERT_EQ_INT(proto_request_feed(&q, &in), -EBADMSG);   /* stdin before the request */
        ASSERT_EQ_INT(proto_request_feed(&q, &go), -EBADMSG);   /* nothing to run */
        ASSERT_EQ_INT(proto_request_feed(&q, &result), -EBADMSG); /* a daemon's frame */
        ASSERT_EQ_INT(proto_request_feed(&q, &run), 0);
        ASSERT_EQ_INT(proto_request_feed(&q, &run), -EBADMSG);  /* a second request */
        ASSERT_EQ_INT(proto_request_feed(&q, &go), 1);
        ASSERT_EQ_INT(proto_request_feed(&q, &in), -EBADMSG);   /* after GO */
        proto_request_clear(&q);
        proto_buf_clear(&b);
}

static int reader_with(uint32_t type, uint32_t len) {
        ProtoReader rd = { 0 };
        uint8_t *space;
        size_t room;
        ASSERT_EQ_INT(proto_reader_space(&rd, &space, &room), 0);
        ASSERT_EQ_UINT(room, PROTO_HEADER_SIZE); /* a header first, nothing more */
        uint32_t h[2] = { type, len };
        memcpy(space, h, sizeof h);
        proto_reader_advance(&rd, sizeof h);
        ProtoFrame f;
        int r = proto_reader_next(&rd, &f);
        int r2 = proto_reader_space(&rd, &space, &room);
        if (r >= 0 && r2 >= 0 && len <= PROTO_CHUNK_MAX)
                ASSERT_EQ_UINT(room, len); /* exactly the frame, never more */
        proto_reader_clear(&rd);
        return r < 0 ? r : r2;
}

TEST(proto_reader_refuses_bad_headers) {
        ASSERT_EQ_INT(reader_with(0, 0), -EBADMSG);
        ASSERT_EQ_INT(reader_with(99, 4), -EBADMSG);
        ASSERT_EQ_INT(reader_with(0xffffffffu, 0), -EBADMSG);
        ASSERT_EQ_INT(reader_with(PROTO_STDIN, PROTO_CHUNK_MAX + 1), -EMSGSIZE);
        ASSERT_EQ_INT(reader_with(PROTO_STDIN, 0xffffffffu), -EMSGSIZE);
        ASSERT_EQ_INT(reader_with(PROTO_RUN, PROTO_RUN_MAX + 1), -EMSGSIZE);
        ASSERT_EQ_INT(reader_with(PROTO_GO, 1), -EMSGSIZE);
        ASSERT_EQ_INT(reader_with(PROTO_END, 1), -EMSGSIZE);
        ASSERT_EQ_INT(reader_with(PROTO_RESULT, 4096), -EMSGSIZE);
        ASSERT_EQ_INT(reader_with(PROTO_ERROR, 4096), -EMSGSIZE);
        ASSERT_EQ_INT(reader_with(PROTO_STDIN, 100), 0);
        ASSERT_EQ_INT(proto_payload_max(12345), -EBADMSG);
        ProtoBuf b = { 0 };
        static char big[PROTO_CHUNK_MAX + 1];
        ASSERT_EQ_INT(proto_put_frame(&b, PROTO_STDIN, big, sizeof big), -EMSGSIZE);
        ASSERT_EQ_INT(proto_put_frame(&b, 77, "x", 1), -EMSGSIZE);
        proto_buf_clear(&b);
}

static int decode(const uint8_t *p, size_t len) {
        ProtoRequest q = { 0 };
        int r = proto_run_decode(p, len, &q);
        proto_request_clear(&q);
        return r;
}

TEST(proto_run_truncated_or_padded) {
        JailConfig c = sample_config();
        ProtoBuf b = run_payload(&c);
        const uint8_t *p = b.data + PROTO_HEADER_SIZE;
        size_t len = b.len - PROTO_HEADER_SIZE;
        ASSERT_EQ_INT(decode(p, len), 0);
        for (size_t n = 0; n < len; n++)
                ASSERT_EQ_INT(decode(p, n), -EBADMSG);
        uint8_t *padded = malloc(len + 1);
        memcpy(padded, p, len);
        padded[len] = 0;
        ASSERT_EQ_INT(decode(padded, len + 1), -EBADMSG);
        free(padded);
        proto_buf_clear(&b);
}

/* Offsets in a RUN payload: 6 u32, 10 u64, then the code string. */
#define OFF_VERSION 0
#define OFF_RUNTIME 4
#define OFF_FLAGS 12
#define OFF_NARGS 16
#define OFF_NENV 20
#define OFF_CODE 104

static int decode_patched(size_t off, uint32_t v) {
        JailConfig c = sample_config();
        ProtoBuf b = run_payload(&c);
        memcpy(b.data + PROTO_HEADER_SIZE + off, &v, sizeof v);
        int r = decode(b.data + PROTO_HEADER_SIZE, b.len - PROTO_HEADER_SIZE);
        proto_buf_clear(&b);
        return r;
}

TEST(proto_run_bad_fields) {
        ASSERT_EQ_INT(decode_patched(OFF_VERSION, 2), -EBADMSG);
        ASSERT_EQ_INT(decode_patched(OFF_RUNTIME, _JAIL_RUNTIME_MAX), -EBADMSG);
        ASSERT_EQ_INT(decode_patched(OFF_RUNTIME, 0xffffffffu), -EBADMSG);
        ASSERT_EQ_INT(decode_patched(OFF_FLAGS, 1), -EBADMSG);
        ASSERT_EQ_INT(decode_patched(OFF_NARGS, PROTO_ARGS_MAX + 1), -EBADMSG);
        ASSERT_EQ_INT(decode_patched(OFF_NARGS, 0xffffffffu), -EBADMSG);
        ASSERT_EQ_INT(decode_patched(OFF_NENV, PROTO_ENV_MAX + 1), -EBADMSG);
        ASSERT_EQ_INT(decode_patched(OFF_NARGS, 4), -EBADMSG); /* more than there are */
        ASSERT_EQ_INT(decode_patched(OFF_NARGS, 2), -EBADMSG); /* fewer: bytes left over */
        /* the code string's length: past the end, or huge (no overflow) */
        ASSERT_EQ_INT(decode_patched(OFF_CODE, 1000), -EBADMSG);
        ASSERT_EQ_INT(decode_patched(OFF_CODE, 0xffffffffu), -EBADMSG);
        ASSERT_EQ_INT(decode_patched(OFF_CODE, 0xfffffffeu), -EBADMSG);
        ASSERT_EQ_INT(decode_patched(OFF_CODE, PROTO_PATH_MAX + 1), -EBADMSG);
        /* one byte shorter: the terminating NUL is not where it should be */
        ASSERT_EQ_INT(decode_patched(OFF_CODE, (uint32_t) strlen("/srv/boxes/hello") - 1), -EBADMSG);
        /* a NUL inside the string */
        JailConfig c = sample_config();
        ProtoBuf b = run_payload(&c);
        b.data[PROTO_HEADER_SIZE + OFF_CODE + 4 + 3] = 0;
        ASSERT_EQ_INT(decode(b.data + PROTO_HEADER_SIZE, b.len - PROTO_HEADER_SIZE), -EBADMSG);
        proto_buf_clear(&b);
}

TEST(proto_stdin_bounded) {
        JailConfig c = sample_config();
        ProtoBuf b = run_payload(&c);
        ProtoFrame run = { PROTO_RUN, (uint32_t) (b.len - PROTO_HEADER_SIZE), b.data + PROTO_HEADER_SIZE };
        ProtoRequest q = { 0 };
        ASSERT_EQ_INT(proto_request_feed(&q, &run), 0);
        /* as if almost a whole JAIL_STDIN_MAX had come already: one more
         * frame must be refused before anything is allocated for it */
        q.stdin_len = JAIL_STDIN_MAX - 2;
        ProtoFrame in = { PROTO_STDIN, 3, (const uint8_t *) "abc" };
        ASSERT_EQ_INT(proto_request_feed(&q, &in), -EFBIG);
        q.stdin_len = 0;
        proto_request_clear(&q);
        proto_buf_clear(&b);
}

typedef struct ReplyRead {
        unsigned frames, stderr_frames, batches;
} ReplyRead;

/* Write a reply with the daemon's writer, a batch at a time, and read each
 * batch back with the client's reader into p: every batch is whole frames.
 * proto_reply_feed's last answer (1: complete) or the first error. */
static int reply_read(ProtoReplyWriter *w, ProtoReply *p, ReplyRead *ret) {
        struct iovec iov[PROTO_REPLY_IOV];
        int n, fed = 0;
        *ret = (ReplyRead) { 0 };
        while ((n = proto_reply_next(w, iov)) > 0) {
                ASSERT_TRUE(n <= PROTO_REPLY_IOV);
                size_t len = 0;
                for (int i = 0; i < n; i++)
                        len += iov[i].iov_len;
                uint8_t *batch = malloc(len);
                ASSERT_TRUE(batch);
                len = 0;
                for (int i = 0; i < n; i++) {
                        memcpy(batch + len, iov[i].iov_base, iov[i].iov_len);
                        len += iov[i].iov_len;
                }
                ProtoReader rd = { .buf = batch, .len = len, .cap = len };
                ProtoFrame f;
                ret->batches++;
                while (fed >= 0 && proto_reader_next(&rd, &f) == 1) {
                        ret->frames++;
                        ret->stderr_frames += f.type == PROTO_STDERR;
                        fed = fed == 1 ? -EBADMSG : proto_reply_feed(p, &f);    /* nothing after END */
                }
                ASSERT_TRUE(fed < 0 || rd.start == len);
                free(batch);
                if (fed < 0)
                        return fed;
        }
        return n < 0 ? n : fed;
}

static int reply_round_trip(const JailResult *r, ProtoReply *p, ReplyRead *ret) {
        ProtoReplyWriter w = { .r = r };
        int fed = reply_read(&w, p, ret);
        proto_reply_writer_clear(&w);
        return fed;
}

TEST(proto_reply_round_trip) {
        JailResult r = { .status = JAIL_EXITED, .exit_code = 3, .wall_ms = 2.5, .cpu_ms = 1.25, .max_rss_kb = 972 };
        size_t big = 2 * PROTO_CHUNK_MAX + 17;
        r.out.data = malloc(big + 1);
        memset(r.out.data, 'o', big);
        r.out.len = big;
        r.out.truncated = true;
        r.err.data = strdup("err\n");
        r.err.len = 4;
        snprintf(r.error, sizeof r.error, "nothing");
        ProtoReply p;
        ReplyRead rr;
        proto_reply_init(&p);
        /* RESULT, three STDOUT pieces, one STDERR, END: one batch */
        ASSERT_EQ_INT(reply_round_trip(&r, &p, &rr), 1);
        ASSERT_EQ_UINT(rr.frames, 6);
        ASSERT_EQ_UINT(rr.batches, 1);
        ASSERT_EQ_INT(p.result.status, JAIL_EXITED);
        ASSERT_EQ_INT(p.result.exit_code, 3);
        ASSERT_TRUE(p.result.wall_ms == 2.5 && p.result.cpu_ms == 1.25);
        ASSERT_EQ_INT(p.result.max_rss_kb, 972);
        ASSERT_EQ_UINT(p.result.out.len, big);
        ASSERT_TRUE(memcmp(p.result.out.data, r.out.data, big) == 0);
        ASSERT_TRUE(p.result.out.truncated && !p.result.err.truncated);
        ASSERT_EQ_STR(p.result.err.data, "err\n");
        ASSERT_EQ_STR(p.result.error, "nothing");
        proto_reply_clear(&p);
        jail_result_clear(&r);
        /* nothing at all on either stream */
        JailResult empty = { .status = JAIL_SIGNALED, .signal = 9 };
        proto_reply_init(&p);
        ASSERT_EQ_INT(reply_round_trip(&empty, &p, &rr), 1);
        ASSERT_EQ_UINT(rr.frames, 2);
        ASSERT_EQ_INT(p.result.signal, 9);
        ASSERT_EQ_UINT(p.result.out.len + p.result.err.len, 0);
        proto_reply_clear(&p);
}

static ProtoFrame frame_of(ProtoBuf *b) {
        return (ProtoFrame) { 0, (uint32_t) (b->len - PROTO_HEADER_SIZE), b->data + PROTO_HEADER_SIZE };
}

TEST(proto_reply_refuses_hostile) {
        JailResult r = { .status = JAIL_EXITED };
        r.out.len = 3; /* announced: 3 bytes of stdout, none of stderr */
        r.out.data = "abc";
        ProtoBuf b = { 0 };
        ASSERT_EQ_INT(proto_put_result(&b, &r), 0);
        ProtoFrame res = frame_of(&b);
        res.type = PROTO_RESULT;
        ProtoFrame four = { PROTO_STDOUT, 4, (const uint8_t *) "abcd" }, two = { PROTO_STDOUT, 2, (const uint8_t *) "ab" };
        ProtoFrame err = { PROTO_STDERR, 1, (const uint8_t *) "e" }, end = { PROTO_END, 0, NULL };
        ProtoReply p;
        proto_reply_init(&p);
        ASSERT_EQ_INT(proto_reply_feed(&p, &four), -EBADMSG); /* output before RESULT */
        ASSERT_EQ_INT(proto_reply_feed(&p, &res), 0);
        ASSERT_EQ_INT(proto_reply_feed(&p, &res), -EBADMSG);  /* RESULT twice */
        ASSERT_EQ_INT(proto_reply_feed(&p, &four), -EBADMSG); /* more than announced */
        ASSERT_EQ_INT(proto_reply_feed(&p, &two), 0);
        ASSERT_EQ_INT(proto_reply_feed(&p, &end), -EBADMSG);  /* END with a byte missing */
        ASSERT_EQ_INT(proto_reply_feed(&p, &err), -EBADMSG);  /* stderr before stdout is whole */
        ASSERT_EQ_INT(proto_reply_feed(&p, &two), -EBADMSG);  /* 4 > 3 */
        proto_reply_clear(&p);
        proto_buf_clear(&b);
}

static int result_patched(size_t off, const void *v, size_t n) {
        JailResult r = { .status = JAIL_EXITED };
        ProtoBuf b = { 0 };
        ASSERT_EQ_INT(proto_put_result(&b, &r), 0);
        memcpy(b.data + PROTO_HEADER_SIZE + off, v, n);
        ProtoFrame f = frame_of(&b);
        f.type = PROTO_RESULT;
        ProtoReply p;
        proto_reply_init(&p);
        int ret = proto_reply_feed(&p, &f);
        proto_reply_clear(&p);
        proto_buf_clear(&b);
        return ret;
}

TEST(proto_result_bad_fields) {
        uint32_t status = _JAIL_STATUS_MAX, code = 256, sig = 65, flags = 4, huge = 0xffffffffu;
        double nan_ = NAN, neg = -1;
        uint64_t too_long = PROTO_OUTPUT_MAX + 1;
        ASSERT_EQ_INT(result_patched(0, &status, 4), -EBADMSG);
        ASSERT_EQ_INT(result_patched(4, &code, 4), -EBADMSG);
        ASSERT_EQ_INT(result_patched(8, &sig, 4), -EBADMSG);
        ASSERT_EQ_INT(result_patched(12, &flags, 4), -EBADMSG);
        ASSERT_EQ_INT(result_patched(16, &nan_, 8), -EBADMSG);
        ASSERT_EQ_INT(result_patched(24, &neg, 8), -EBADMSG);
        ASSERT_EQ_INT(result_patched(40, &too_long, 8), -EBADMSG);
        ASSERT_EQ_INT(result_patched(48, &too_long, 8), -EBADMSG);
        ASSERT_EQ_INT(result_patched(56, &huge, 4), -EBADMSG); /* the error text's length */
        /* an ERROR frame: status 1..255 and one line */
        ProtoBuf b = { 0 };
        ASSERT_EQ_INT(proto_put_error(&b, 2, "--code x: no such file\nsecond line"), 0);
        ProtoFrame f = frame_of(&b);
        f.type = PROTO_ERROR;
        ProtoReply p;
        proto_reply_init(&p);
        ASSERT_EQ_INT(proto_reply_feed(&p, &f), 1);
        ASSERT_TRUE(p.refused);
        ASSERT_EQ_INT(p.exit_status, 2);
        ASSERT_EQ_STR(p.text, "--code x: no such file");
        proto_reply_clear(&p);
        uint32_t zero = 0;
        memcpy(b.data + PROTO_HEADER_SIZE, &zero, 4);
        proto_reply_init(&p);
        ASSERT_EQ_INT(proto_reply_feed(&p, &f), -EBADMSG);
        proto_reply_clear(&p);
        proto_buf_clear(&b);
}

/* Random damage to a valid request stream: refused or parsed, never more. */
TEST(proto_random_mutations) {
        JailConfig c = sample_config();
        ProtoBuf b = run_payload(&c);
        ASSERT_EQ_INT(proto_put_frame(&b, PROTO_STDIN, "data", 4), 0);
        ASSERT_EQ_INT(proto_put_frame(&b, PROTO_GO, NULL, 0), 0);
        uint8_t *m = malloc(b.len);
        srandom(42);
        for (int round = 0; round < 3000; round++) {
                memcpy(m, b.data, b.len);
                int flips = 1 + (int) (random() % 4);
                for (int k = 0; k < flips; k++)
                        m[random() % b.len] = (uint8_t) random();
                size_t len = round % 5 == 0 ? (size_t) random() % b.len : b.len;
                ProtoRequest q = { 0 };
                int r = feed_request(&q, m, len, 1 + (size_t) (random() % 64));
                if (r == 1) {
                        ASSERT_TRUE(q.cfg.code != NULL);
                        ASSERT_TRUE(q.cfg.n_args <= PROTO_ARGS_MAX && q.cfg.n_env <= PROTO_ENV_MAX);
                }
                proto_request_clear(&q);
        }
        free(m);
        proto_buf_clear(&b);
}

/* ----- the invoke socket: HELLO and INVOKE ----- */

/* Frame payload of the first frame in b. */
static ProtoFrame first_frame(const ProtoBuf *b) {
        ProtoFrame f;
        memcpy(&f.type, b->data, 4);
        memcpy(&f.len, b->data + 4, 4);
        f.payload = b->data + PROTO_HEADER_SIZE;
        return f;
}

TEST(proto_hello_round_trip) {
        ProtoBuf b = { 0 };
        ASSERT_EQ_INT(proto_put_hello(&b, "s3cret"), 0);
        ProtoFrame f = first_frame(&b);
        ASSERT_EQ_UINT(f.type, PROTO_HELLO);
        ProtoHello h;
        ASSERT_EQ_INT(proto_hello_decode(f.payload, f.len, &h), 0);
        ASSERT_EQ_STR(h.secret, "s3cret");
        proto_buf_clear(&b);
        ASSERT_EQ_INT(proto_put_hello(&b, NULL), 0);
        f = first_frame(&b);
        ASSERT_EQ_INT(proto_hello_decode(f.payload, f.len, &h), 0);
        ASSERT_EQ_STR(h.secret, "");
        proto_buf_clear(&b);
}

TEST(proto_hello_refuses_hostile) {
        static const char *const bad[] = {
                "", "[]", "{}", "{\"version\":\"1\"}", "{\"version\":1,\"secret\":5}",
                "{\"version\":1,\"other\":true}", "{\"version\":1,\"version\":1}", "{\"version\":1} x",
                "{\"version\":1,\"secret\":\"a\\u0000b\"}", "{\"version\":1,\"secret\":\"line\\n\"}",
        };
        ProtoHello h;
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
                if (proto_hello_decode((const uint8_t *) bad[i], strlen(bad[i]), &h) >= 0)
                        FAIL_AT("accepted HELLO %s", bad[i]);
        const char *v2 = "{\"version\":2}";
        ASSERT_EQ_INT(proto_hello_decode((const uint8_t *) v2, strlen(v2), &h), -EPROTONOSUPPORT);
        char big[PROTO_SECRET_MAX + 40];
        int n = snprintf(big, sizeof big, "{\"version\":1,\"secret\":\"%0*d\"}", PROTO_SECRET_MAX + 1, 0);
        ASSERT_TRUE(proto_hello_decode((const uint8_t *) big, (size_t) n, &h) < 0);
        char secret[PROTO_SECRET_MAX + 2];
        memset(secret, 'x', sizeof secret - 1);
        secret[sizeof secret - 1] = 0;
        ProtoBuf b = { 0 };
        ASSERT_EQ_INT(proto_put_hello(&b, secret), -EMSGSIZE);
        proto_buf_clear(&b);
}

static ProtoInvoke sample_invoke(void) {
        ProtoInvoke inv = { .timeout_ms = 2500 };
        strcpy(inv.instance, "hello-00001-3fa2c1");
        strcpy(inv.request_id, "req-1");
        strcpy(inv.traceparent, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        strcpy(inv.method, "GET");
        strcpy(inv.path, "/fn/hello");
        strcpy(inv.query, "a=b&c=d");
        return inv;
}

/* An invoke request (INVOKE, two STDIN pieces, GO) through a reader, in
 * pieces of every size. */
TEST(proto_invoke_round_trip) {
        ProtoInvoke inv = sample_invoke();
        ProtoBuf b = { 0 };
        ASSERT_EQ_INT(proto_put_invoke(&b, &inv), 0);
        ASSERT_EQ_INT(proto_put_frame(&b, PROTO_STDIN, "body ", 5), 0);
        ASSERT_EQ_INT(proto_put_frame(&b, PROTO_STDIN, "here", 4), 0);
        ASSERT_EQ_INT(proto_put_frame(&b, PROTO_GO, NULL, 0), 0);
        for (size_t step = 1; step <= b.len; step = step * 2 + 1) {
                ProtoReader rd = { 0 };
                ProtoInvokeRequest q = { 0 };
                size_t off = 0;
                int r = 0;
                while (r == 0) {
                        ProtoFrame f;
                        while (r == 0 && proto_reader_next(&rd, &f) > 0)
                                r = proto_invoke_feed(&q, &f);
                        if (r != 0 || off == b.len)
                                break;
                        uint8_t *space;
                        size_t room;
                        ASSERT_EQ_INT(proto_reader_space(&rd, &space, &room), 0);
                        size_t n = b.len - off < step ? b.len - off : step;
                        n = n < room ? n : room;
                        memcpy(space, b.data + off, n);
                        proto_reader_advance(&rd, n);
                        off += n;
                }
                ASSERT_EQ_INT(r, 1);
                ASSERT_EQ_STR(q.inv.instance, inv.instance);
                ASSERT_EQ_STR(q.inv.request_id, "req-1");
                ASSERT_EQ_STR(q.inv.traceparent, inv.traceparent);
                ASSERT_EQ_STR(q.inv.method, "GET");
                ASSERT_EQ_STR(q.inv.path, "/fn/hello");
                ASSERT_EQ_STR(q.inv.query, "a=b&c=d");
                ASSERT_EQ_UINT(q.inv.timeout_ms, 2500);
                ASSERT_EQ_UINT(q.stdin_len, 9);
                ASSERT_TRUE(memcmp(q.stdin_data, "body here", 9) == 0);
                proto_invoke_request_clear(&q);
                ASSERT_EQ_INT(q.state, 0);
                proto_reader_clear(&rd);
        }
        proto_buf_clear(&b);
}

TEST(proto_invoke_defaults) {
        const char *min = "{\"instance\":\"x-00001-000000\"}";
        ProtoInvoke inv;
        ASSERT_EQ_INT(proto_invoke_decode((const uint8_t *) min, strlen(min), &inv), 0);
        ASSERT_EQ_STR(inv.method, "POST");
        ASSERT_EQ_STR(inv.path, "/");
        ASSERT_EQ_STR(inv.query, "");
        ASSERT_EQ_UINT(inv.timeout_ms, 0);
}

TEST(proto_invoke_refuses_hostile) {
        static const char *const bad[] = {
                "{}", "[]", "null", "{\"instance\":\"\"}", "{\"instance\":7}",
                "{\"instance\":\"a\",\"method\":\"GET POST\"}", "{\"instance\":\"a\",\"method\":\"\"}",
                "{\"instance\":\"a\",\"path\":\"relative\"}", "{\"instance\":\"a\",\"path\":\"/x\\r\\nHost: y\"}",
                "{\"instance\":\"a\",\"timeoutMs\":-1}", "{\"instance\":\"a\",\"timeoutMs\":1.5}",
                "{\"instance\":\"a\",\"timeoutMs\":86400001}", "{\"instance\":\"a\",\"unknown\":1}",
                "{\"instance\":\"a\",\"instance\":\"b\"}", "{\"instance\":\"a\"}{}",
                "{\"instance\":\"a\",\"method\":\"GETGETGETGETGETGET\"}",
        };
        ProtoInvoke inv;
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
                if (proto_invoke_decode((const uint8_t *) bad[i], strlen(bad[i]), &inv) >= 0)
                        FAIL_AT("accepted INVOKE %s", bad[i]);
        /* an id one byte over its bound */
        char big[PROTO_ID_MAX + 40];
        int n = snprintf(big, sizeof big, "{\"instance\":\"%0*d\"}", PROTO_ID_MAX + 1, 0);
        ASSERT_TRUE(proto_invoke_decode((const uint8_t *) big, (size_t) n, &inv) < 0);
        n = snprintf(big, sizeof big, "{\"instance\":\"%0*d\"}", PROTO_ID_MAX, 0);
        ASSERT_EQ_INT(proto_invoke_decode((const uint8_t *) big, (size_t) n, &inv), 0);
}

/* Frames out of order, RUN on the invoke socket, a body over its limit, an
 * INVOKE header announcing more than 64 KiB. */
TEST(proto_invoke_request_order_and_limits) {
        ProtoInvokeRequest q = { .stdin_max = 8 };
        ProtoFrame go = { PROTO_GO, 0, NULL }, in = { PROTO_STDIN, 5, (const uint8_t *) "12345" };
        ASSERT_EQ_INT(proto_invoke_feed(&q, &go), -EBADMSG);
        ASSERT_EQ_INT(proto_invoke_feed(&q, &in), -EBADMSG);
        JailConfig c = sample_config();
        ProtoBuf b = run_payload(&c);
        ProtoFrame run = first_frame(&b);
        ASSERT_EQ_INT(proto_invoke_feed(&q, &run), -EBADMSG);
        proto_buf_clear(&b);
        ProtoInvoke inv = sample_invoke();
        ASSERT_EQ_INT(proto_put_invoke(&b, &inv), 0);
        ProtoFrame f = first_frame(&b);
        ASSERT_EQ_INT(proto_invoke_feed(&q, &f), 0);
        ASSERT_EQ_INT(proto_invoke_feed(&q, &f), -EBADMSG); /* a second INVOKE */
        ASSERT_EQ_INT(proto_invoke_feed(&q, &in), 0);
        ASSERT_EQ_INT(proto_invoke_feed(&q, &in), -EFBIG);
        proto_invoke_request_clear(&q);
        ASSERT_EQ_UINT(q.stdin_max, 8);
        proto_buf_clear(&b);
        /* the reader refuses an oversize INVOKE before buffering it */
        ProtoReader rd = { 0 };
        uint8_t *space;
        size_t room;
        uint32_t head[2] = { PROTO_INVOKE, PROTO_INVOKE_MAX + 1 };
        ASSERT_EQ_INT(proto_reader_space(&rd, &space, &room), 0);
        memcpy(space, head, sizeof head);
        proto_reader_advance(&rd, sizeof head);
        ProtoFrame g;
        ASSERT_EQ_INT(proto_reader_next(&rd, &g), -EMSGSIZE);
        proto_reader_clear(&rd);
        /* and the daemon's RUN socket refuses HELLO and INVOKE */
        ProtoRequest rq = { 0 };
        ASSERT_EQ_INT(proto_request_feed(&rq, &f), -EBADMSG);
        proto_request_clear(&rq);
}

/* The invoke reply, read back as the client reads it: without "stderr"
 * RESULT announces none and none is sent; with it (a skill's test run)
 * RESULT announces the tail and a STDERR frame carries it before END. */
TEST(proto_invoke_reply_stderr_or_not) {
        for (int want = 0; want < 2; want++) {
                JailResult res = { .status = JAIL_EXITED, .exit_code = 3, .wall_ms = 1.5 };
                res.out = (JailOutput) { strdup("out"), 3, false };
                res.err = (JailOutput) { strdup("the tail"), 8, true };
                ProtoReplyWriter w = { .r = &res, .no_stderr = !want };
                ProtoReply rep;
                ReplyRead rr;
                proto_reply_init(&rep);
                ASSERT_EQ_INT(reply_read(&w, &rep, &rr), 1);
                ASSERT_EQ_UINT(rr.frames, 3 + (unsigned) want);
                ASSERT_EQ_UINT(rr.stderr_frames, (unsigned) want);
                ASSERT_EQ_UINT(rep.result.out.len, 3);
                ASSERT_EQ_INT(rep.result.exit_code, 3);
                ASSERT_EQ_UINT(rep.err_len, want ? 8 : 0);
                if (want)
                        ASSERT_TRUE(rep.result.err.truncated && memcmp(rep.result.err.data, "the tail", 8) == 0);
                else
                        ASSERT_TRUE(rep.result.err.len == 0 && !rep.result.err.truncated);
                proto_reply_clear(&rep);
                proto_reply_writer_clear(&w);
                jail_result_clear(&res);
        }
}

/* A reply past one batch (nine chunks: PROTO_REPLY_IOV holds RESULT, seven
 * and END) goes out in whole frames over two batches. */
TEST(proto_reply_batches) {
        JailResult r = { .status = JAIL_EXITED };
        size_t big = 9 * (size_t) PROTO_CHUNK_MAX;
        r.out.data = malloc(big);
        ASSERT_TRUE(r.out.data);
        for (size_t i = 0; i < big; i++)
                r.out.data[i] = (char) ('a' + i % 23);
        r.out.len = big;
        ProtoReply p;
        ReplyRead rr;
        proto_reply_init(&p);
        ASSERT_EQ_INT(reply_round_trip(&r, &p, &rr), 1);
        ASSERT_EQ_UINT(rr.frames, 11);
        ASSERT_EQ_UINT(rr.batches, 2);
        ASSERT_EQ_UINT(p.result.out.len, big);
        ASSERT_TRUE(memcmp(p.result.out.data, r.out.data, big) == 0);
        proto_reply_clear(&p);
        jail_result_clear(&r);
}
