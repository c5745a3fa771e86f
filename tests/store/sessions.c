/* tests/store/sessions.c: sessions in the store (store_session_* in
 * lib/store.h), the same against SQLite and PostgreSQL: every field and
 * blob round-trips (a 1 MiB blob, an empty one, one of exactly the limit),
 * digests and sizes computed by the store, every argument check (and that a
 * refused call writes nothing), the state machine created -> running ->
 * done/failed with its errors, racing claimers in threads (shared and
 * separate handles) and in processes of which exactly one wins each session,
 * finish keeping or replacing stdin, list paging and the namespace filter,
 * delete, prune (past one batch), and migration 5 applied to a database at
 * schema 4. */
#define _GNU_SOURCE
#include "store_test.h"

#include <errno.h>
#include <pthread.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/artifact.h"
#include "lib/util.h"

#define ASSERT_OK(expr)                                                      \
        do {                                                                 \
                int _r = (expr);                                             \
                if (_r < 0)                                                  \
                        FAIL_AT("%s: %s (%s)", #expr, strerror(-_r),         \
                                store_last_error(NULL));                     \
        } while (0)

#define ASSERT_ERR(expr, err)                                                \
        do {                                                                 \
                int _r = (expr);                                             \
                if (_r != -(err))                                            \
                        FAIL_AT("%s: expected -%s, got %d (%s)", #expr, #err, \
                                _r, _r < 0 ? strerror(-_r) : "success");     \
        } while (0)

#define ASSERT_MSG(s, text)                                                  \
        do {                                                                 \
                if (!strstr(store_last_error(s), (text)))                    \
                        FAIL_AT("store_last_error: \"%s\" lacks \"%s\"",     \
                                store_last_error(s), (text));                \
        } while (0)

#define RACE_SESSIONS   24
#define RACE_CLAIMERS   4
#define DAY_MS          86400000LL

typedef char SessionId[STORE_SESSION_ID_LEN + 1];

static char code[72];

/* The id of a session created at ms with random part rnd. */
static char *sid(SessionId ret, uint64_t ms, uint64_t rnd) {
        snprintf(ret, sizeof(SessionId), "s-%012" PRIx64 "%020" PRIx64, ms, rnd);
        return ret;
}

static StoreSession session(const char *id, const char *ns) {
        return (StoreSession) {
                .id = (char *) id, .namespace_ = (char *) ns, .created_by = "token:0123456789abcdef",
                .created_ms = 1000, .expires_ms = 1000 + 7 * DAY_MS,
        };
}

static void create(Store *s, const char *id, const char *ns) {
        StoreSession v = session(id, ns);
        ASSERT_OK(store_session_create(s, &v, "in", 2, NULL, 0));
}

static void start(Store *s, const char *id) {
        test_digest(code, 7);
        ASSERT_OK(store_session_start(s, id, "fn", "fn-00001", code, 0));
}

/* The blob `which` of session id is exactly data[0..len). */
static void assert_blob(Store *s, const char *id, const char *which, const void *data, size_t len) {
        void *got = NULL;
        size_t n = 7;
        ASSERT_OK(store_session_blob(s, id, which, &got, &n));
        ASSERT_TRUE(got != NULL);
        ASSERT_EQ_UINT(n, len);
        ASSERT_TRUE(len == 0 || memcmp(got, data, len) == 0);
        free(got);
}

static void assert_digest(const char *got, const void *data, size_t len) {
        char want[ARTIFACT_DIGEST_LEN] = "";
        if (len > 0)
                artifact_digest(data, len, want);
        ASSERT_EQ_STR(got, want);
}

static const char *state_of(Store *s, const char *id) {
        static char state[16];
        StoreSession v = {};
        ASSERT_OK(store_session_get(s, id, &v));
        snprintf(state, sizeof state, "%s", v.state);
        store_session_clear(&v);
        return state;
}

TEST(session_round_trip) {
        _cleanup_store_ Store *s = test_open();
        SessionId id, other;
        sid(id, 0x18f00000000, 1);
        static const char input[] = "a tar archive, as far as the store cares\0with a NUL";
        StoreSession in = session(id, "team-a");
        in.function = "csv-sum";
        in.replay_of = sid(other, 0x18e00000000, 2);
        in.created_ms = 1234;
        in.expires_ms = 1234 + DAY_MS;
        in.state = "done";                                      /* ignored, as are these */
        in.revision = "x-00009";
        in.started_ms = 99;
        ASSERT_OK(store_session_create(s, &in, input, sizeof input, "stdin\n", 6));

        StoreSession out = {};
        ASSERT_OK(store_session_get(s, id, &out));
        ASSERT_EQ_STR(out.id, id);
        ASSERT_EQ_STR(out.namespace_, "team-a");
        ASSERT_EQ_STR(out.function, "csv-sum");
        ASSERT_EQ_STR(out.state, "created");
        ASSERT_EQ_STR(out.revision, "");
        ASSERT_EQ_STR(out.code_digest, "");
        ASSERT_EQ_STR(out.replay_of, other);
        ASSERT_EQ_STR(out.created_by, "token:0123456789abcdef");
        assert_digest(out.input_digest, input, sizeof input);
        ASSERT_EQ_INT(out.input_size, sizeof input);
        assert_digest(out.stdin_digest, "stdin\n", 6);
        ASSERT_EQ_INT(out.stdin_size, 6);
        ASSERT_EQ_STR(out.stdout_digest, "");
        ASSERT_EQ_INT(out.stdout_size, 0);
        ASSERT_EQ_STR(out.output_digest, "");
        ASSERT_EQ_INT(out.output_size, 0);
        ASSERT_TRUE(out.result_json == NULL);
        ASSERT_EQ_INT(out.created_ms, 1234);
        ASSERT_EQ_INT(out.started_ms, 0);
        ASSERT_EQ_INT(out.finished_ms, 0);
        ASSERT_EQ_INT(out.expires_ms, 1234 + DAY_MS);
        store_session_clear(&out);
        assert_blob(s, id, "input", input, sizeof input);
        assert_blob(s, id, "stdin", "stdin\n", 6);
        assert_blob(s, id, "stdout", "", 0);                    /* never set: a 1-byte buffer, len 0 */
        assert_blob(s, id, "output", "", 0);

        /* 1 MiB of every byte value; no stdin (NULL) and defaults */
        size_t big = 1u << 20;
        _cleanup_free_ unsigned char *mib = malloc(big);
        for (size_t i = 0; i < big; i++)
                mib[i] = (unsigned char) (i * 7 + i / 251);
        SessionId id2;
        sid(id2, 0x18f00000001, 3);
        StoreSession bare = { .id = id2, .namespace_ = "team-a", .expires_ms = INT64_MAX };
        int64_t before = (int64_t) time(NULL) * 1000;
        ASSERT_OK(store_session_create(s, &bare, mib, big, NULL, 0));
        ASSERT_OK(store_session_get(s, id2, &out));
        ASSERT_EQ_STR(out.function, "");
        ASSERT_EQ_STR(out.replay_of, "");
        ASSERT_EQ_STR(out.created_by, "");
        assert_digest(out.input_digest, mib, big);
        ASSERT_EQ_INT(out.input_size, big);
        ASSERT_EQ_STR(out.stdin_digest, "");
        ASSERT_EQ_INT(out.stdin_size, 0);
        ASSERT_TRUE(out.created_ms >= before - 1000 && out.created_ms <= before + 60000);
        ASSERT_EQ_INT(out.expires_ms, INT64_MAX);
        store_session_clear(&out);
        assert_blob(s, id2, "input", mib, big);
        assert_blob(s, id2, "stdin", "", 0);

        /* an empty input and an empty (not NULL) stdin: no digests */
        SessionId id3;
        sid(id3, 0x18f00000002, 4);
        StoreSession empty = session(id3, "team-b");
        ASSERT_OK(store_session_create(s, &empty, NULL, 0, "", 0));
        ASSERT_OK(store_session_get(s, id3, &out));
        ASSERT_EQ_STR(out.input_digest, "");
        ASSERT_EQ_INT(out.input_size, 0);
        ASSERT_EQ_STR(out.stdin_digest, "");
        ASSERT_EQ_INT(out.stdin_size, 0);
        store_session_clear(&out);
        assert_blob(s, id3, "input", "", 0);
        assert_blob(s, id3, "stdin", "", 0);
        ASSERT_EQ_INT(test_raw_int("SELECT COUNT(*) FROM sessions"), 3);
}

/* A blob of exactly STORE_SESSION_BLOB_MAX bytes fits, in and out. */
TEST(session_blob_at_the_limit) {
        _cleanup_store_ Store *s = test_open();
        size_t max = STORE_SESSION_BLOB_MAX;
        _cleanup_free_ unsigned char *data = calloc(1, max);
        for (size_t i = 0; i < max; i += 4096)
                data[i] = (unsigned char) (i >> 12);
        data[max - 1] = 0xa5;
        SessionId id;
        sid(id, 0x18f00000000, 1);
        StoreSession v = session(id, "ns");
        ASSERT_OK(store_session_create(s, &v, data, max, NULL, 0));
        start(s, id);
        ASSERT_OK(store_session_finish(s, id, "done", "{}", NULL, 0, data, max, NULL, 0, 0));
        void *got = NULL;
        size_t n = 0;
        ASSERT_OK(store_session_blob(s, id, "stdout", &got, &n));
        ASSERT_EQ_UINT(n, max);
        ASSERT_TRUE(memcmp(got, data, max) == 0);
        free(got);
        StoreSession out = {};
        ASSERT_OK(store_session_get(s, id, &out));
        ASSERT_EQ_INT(out.input_size, max);
        ASSERT_EQ_INT(out.stdout_size, max);
        assert_digest(out.stdout_digest, data, max);
        ASSERT_EQ_STR(out.stdout_digest, out.input_digest);
        store_session_clear(&out);
}

/* Every refused create: its error, and nothing written. */
TEST(session_create_invalid) {
        _cleanup_store_ Store *s = test_open();
        SessionId id, other;
        sid(id, 0x18f00000000, 1);
        create(s, id, "ns");
        StoreSession v = session(id, "ns");
        ASSERT_ERR(store_session_create(s, &v, NULL, 0, NULL, 0), EEXIST);
        ASSERT_MSG(s, "exists");
        v.namespace_ = "other";                                 /* ids are global */
        ASSERT_ERR(store_session_create(s, &v, NULL, 0, NULL, 0), EEXIST);

        static const char *const bad_ids[] = {
                "", "s-", "s-0", "s-0123456789abcdef0123456789abcde",                    /* 33 */
                "s-0123456789abcdef0123456789abcdef0",                                   /* 35 */
                "s-0123456789ABCDEF0123456789abcdef", "s-0123456789abcdeg0123456789abcdef",
                "t-0123456789abcdef0123456789abcdef", "S-0123456789abcdef0123456789abcdef",
                "s_0123456789abcdef0123456789abcdef", "s-0123456789abcdef0123456789abcd/f",
                "s-0123456789abcdef 123456789abcdef", "s-0123456789abcdef0123456789abcde\n",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad_ids); i++) {
                v = session(bad_ids[i], "ns");
                int r = store_session_create(s, &v, NULL, 0, NULL, 0);
                if (r != -EINVAL)
                        FAIL_AT("id \"%s\": expected -EINVAL, got %d", bad_ids[i], r);
                ASSERT_MSG(s, "session id");
        }
        v = session(NULL, "ns");
        ASSERT_ERR(store_session_create(s, &v, NULL, 0, NULL, 0), EINVAL);
        ASSERT_ERR(store_session_create(s, NULL, NULL, 0, NULL, 0), EINVAL);

        sid(id, 0x18f00000000, 2);
        char longns[300];
        memset(longns, 'n', 254);
        longns[254] = 0;
        static const char *const bad_ns[] = { "", "a/b", "a\nb", "a\x7f" };
        for (size_t i = 0; i < ELEMENTSOF(bad_ns); i++) {
                v = session(id, bad_ns[i]);
                ASSERT_ERR(store_session_create(s, &v, NULL, 0, NULL, 0), EINVAL);
                ASSERT_MSG(s, "namespace");
        }
        v = session(id, longns);
        ASSERT_ERR(store_session_create(s, &v, NULL, 0, NULL, 0), EINVAL);
        longns[253] = 0;                                        /* 253 bytes: a namespace */
        ASSERT_OK(store_session_create(s, &v, NULL, 0, NULL, 0));

        sid(id, 0x18f00000000, 3);
        static const char *const bad_fn[] = { "Fn", "-fn", "fn-", "f_n", "f/n", "f n",
                "a123456789012345678901234567890123456789012345678901234567890123" };     /* 64 */
        for (size_t i = 0; i < ELEMENTSOF(bad_fn); i++) {
                v = session(id, "ns");
                v.function = (char *) bad_fn[i];
                int r = store_session_create(s, &v, NULL, 0, NULL, 0);
                if (r != -EINVAL)
                        FAIL_AT("function \"%s\": expected -EINVAL, got %d", bad_fn[i], r);
                ASSERT_MSG(s, "function");
        }
        v = session(id, "ns");
        v.replay_of = "s-123";
        ASSERT_ERR(store_session_create(s, &v, NULL, 0, NULL, 0), EINVAL);
        ASSERT_MSG(s, "replay_of");
        v = session(id, "ns");
        v.created_by = "token:\n";
        ASSERT_ERR(store_session_create(s, &v, NULL, 0, NULL, 0), EINVAL);
        v = session(id, "ns");
        v.expires_ms = v.created_ms;
        ASSERT_ERR(store_session_create(s, &v, NULL, 0, NULL, 0), EINVAL);
        ASSERT_MSG(s, "expires");
        v.expires_ms = 0;
        ASSERT_ERR(store_session_create(s, &v, NULL, 0, NULL, 0), EINVAL);
        v.created_ms = 0;                                       /* now */
        v.expires_ms = 5000;                                    /* long past */
        ASSERT_ERR(store_session_create(s, &v, NULL, 0, NULL, 0), EINVAL);
        v = session(id, "ns");
        v.created_ms = -1;
        ASSERT_ERR(store_session_create(s, &v, NULL, 0, NULL, 0), EINVAL);

        /* blobs: a length without data; one byte over the limit (never read) */
        v = session(id, "ns");
        ASSERT_ERR(store_session_create(s, &v, NULL, 3, NULL, 0), EINVAL);
        ASSERT_ERR(store_session_create(s, &v, NULL, 0, NULL, 3), EINVAL);
        size_t over = (size_t) STORE_SESSION_BLOB_MAX + 1;
        _cleanup_free_ char *huge = calloc(1, over);
        ASSERT_TRUE(huge != NULL);
        ASSERT_ERR(store_session_create(s, &v, huge, over, NULL, 0), E2BIG);
        ASSERT_MSG(s, "input");
        ASSERT_ERR(store_session_create(s, &v, NULL, 0, huge, over), E2BIG);
        ASSERT_MSG(s, "stdin");

        /* none of that wrote anything */
        ASSERT_EQ_INT(test_raw_int("SELECT COUNT(*) FROM sessions"), 2);
        StoreSession out = {};
        ASSERT_ERR(store_session_get(s, id, &out), ENOENT);
        ASSERT_MSG(s, "no session");
        v = session(id, "ns");
        v.function = "a12345678901234567890123456789012345678901234567890123456789012";   /* 63 */
        v.replay_of = sid(other, 1, 1);
        ASSERT_OK(store_session_create(s, &v, NULL, 0, NULL, 0));
}

TEST(session_start_and_finish) {
        _cleanup_store_ Store *s = test_open();
        SessionId id, missing;
        sid(id, 0x18f00000000, 1);
        sid(missing, 0x18f00000000, 99);
        char digest[72];
        test_digest(digest, 5);
        StoreSession v = session(id, "ns");
        ASSERT_OK(store_session_create(s, &v, "tar", 3, "given", 5));

        /* finishing what did not start */
        ASSERT_ERR(store_session_finish(s, id, "done", "{}", NULL, 0, NULL, 0, NULL, 0, 0), EBUSY);
        ASSERT_MSG(s, "is created, not running");
        ASSERT_EQ_STR(state_of(s, id), "created");

        /* argument checks come first */
        ASSERT_ERR(store_session_start(s, "s-1", "fn", "fn-00001", digest, 0), EINVAL);
        ASSERT_ERR(store_session_start(s, id, NULL, "fn-00001", digest, 0), EINVAL);
        ASSERT_ERR(store_session_start(s, id, "", "fn-00001", digest, 0), EINVAL);
        ASSERT_ERR(store_session_start(s, id, "Fn", "fn-00001", digest, 0), EINVAL);
        ASSERT_ERR(store_session_start(s, id, "fn", "", digest, 0), EINVAL);
        ASSERT_ERR(store_session_start(s, id, "fn", NULL, digest, 0), EINVAL);
        ASSERT_ERR(store_session_start(s, id, "fn", "fn-00001", "sha256:00", 0), EINVAL);
        ASSERT_ERR(store_session_start(s, id, "fn", "fn-00001", NULL, 0), EINVAL);
        ASSERT_ERR(store_session_start(s, id, "fn", "fn-00001", digest, -1), EINVAL);
        ASSERT_ERR(store_session_start(s, missing, "fn", "fn-00001", digest, 0), ENOENT);
        ASSERT_MSG(s, "no session");
        ASSERT_EQ_STR(state_of(s, id), "created");

        /* created -> running: a session created for any function takes the claimer's */
        ASSERT_OK(store_session_start(s, id, "fn", "fn-00003", digest, 5555));
        StoreSession out = {};
        ASSERT_OK(store_session_get(s, id, &out));
        ASSERT_EQ_STR(out.state, "running");
        ASSERT_EQ_STR(out.function, "fn");
        ASSERT_EQ_STR(out.revision, "fn-00003");
        ASSERT_EQ_STR(out.code_digest, digest);
        ASSERT_EQ_INT(out.started_ms, 5555);
        ASSERT_EQ_INT(out.finished_ms, 0);
        ASSERT_TRUE(out.result_json == NULL);
        store_session_clear(&out);

        /* claimed once only */
        ASSERT_ERR(store_session_start(s, id, "fn", "fn-00003", digest, 0), EBUSY);
        ASSERT_MSG(s, "is running, not created");
        ASSERT_ERR(store_session_start(s, id, "other", "other-00001", digest, 0), EBUSY);

        /* finish: its checks, then running -> done, stdin NULL keeps the given one */
        ASSERT_ERR(store_session_finish(s, id, "running", "{}", NULL, 0, NULL, 0, NULL, 0, 0), EINVAL);
        ASSERT_ERR(store_session_finish(s, id, "created", "{}", NULL, 0, NULL, 0, NULL, 0, 0), EINVAL);
        ASSERT_ERR(store_session_finish(s, id, NULL, "{}", NULL, 0, NULL, 0, NULL, 0, 0), EINVAL);
        ASSERT_ERR(store_session_finish(s, id, "done", NULL, NULL, 0, NULL, 0, NULL, 0, 0), EINVAL);
        ASSERT_ERR(store_session_finish(s, id, "done", "", NULL, 0, NULL, 0, NULL, 0, 0), EINVAL);
        ASSERT_ERR(store_session_finish(s, id, "done", "{\"e\":\"\xff\"}", NULL, 0, NULL, 0, NULL, 0, 0), EINVAL);
        ASSERT_ERR(store_session_finish(s, id, "done", "{}", NULL, 0, NULL, 0, NULL, 0, -1), EINVAL);
        ASSERT_ERR(store_session_finish(s, id, "done", "{}", NULL, 0, NULL, 4, NULL, 0, 0), EINVAL);
        char result[STORE_SESSION_RESULT_MAX + 2];
        memset(result, ' ', sizeof result - 1);
        result[sizeof result - 1] = 0;
        ASSERT_ERR(store_session_finish(s, id, "done", result, NULL, 0, NULL, 0, NULL, 0, 0), E2BIG);
        ASSERT_MSG(s, "result");
        size_t over = (size_t) STORE_SESSION_BLOB_MAX + 1;
        _cleanup_free_ char *huge = calloc(1, over);
        ASSERT_TRUE(huge != NULL);
        ASSERT_ERR(store_session_finish(s, id, "done", "{}", NULL, 0, huge, over, NULL, 0, 0), E2BIG);
        ASSERT_MSG(s, "stdout");
        ASSERT_ERR(store_session_finish(s, id, "done", "{}", NULL, 0, NULL, 0, huge, over, 0), E2BIG);
        ASSERT_MSG(s, "output");
        ASSERT_ERR(store_session_finish(s, id, "done", "{}", huge, over, NULL, 0, NULL, 0, 0), E2BIG);
        ASSERT_ERR(store_session_finish(s, missing, "done", "{}", NULL, 0, NULL, 0, NULL, 0, 0), ENOENT);
        ASSERT_EQ_STR(state_of(s, id), "running");

        result[STORE_SESSION_RESULT_MAX] = 0;                   /* 64 KiB exactly: fits */
        result[0] = '{';
        result[STORE_SESSION_RESULT_MAX - 1] = '}';
        ASSERT_OK(store_session_finish(s, id, "done", result, NULL, 0, "out\n", 4, "otar", 4, 7777));
        ASSERT_OK(store_session_get(s, id, &out));
        ASSERT_EQ_STR(out.state, "done");
        ASSERT_EQ_STR(out.result_json, result);
        ASSERT_EQ_INT(out.finished_ms, 7777);
        ASSERT_EQ_INT(out.started_ms, 5555);
        assert_digest(out.stdin_digest, "given", 5);            /* kept */
        ASSERT_EQ_INT(out.stdin_size, 5);
        assert_digest(out.stdout_digest, "out\n", 4);
        ASSERT_EQ_INT(out.stdout_size, 4);
        assert_digest(out.output_digest, "otar", 4);
        ASSERT_EQ_INT(out.output_size, 4);
        assert_digest(out.input_digest, "tar", 3);
        ASSERT_EQ_STR(out.revision, "fn-00003");
        store_session_clear(&out);
        assert_blob(s, id, "stdin", "given", 5);
        assert_blob(s, id, "stdout", "out\n", 4);
        assert_blob(s, id, "output", "otar", 4);
        assert_blob(s, id, "input", "tar", 3);

        /* finished once only; never started again */
        ASSERT_ERR(store_session_finish(s, id, "failed", "{}", NULL, 0, NULL, 0, NULL, 0, 0), EBUSY);
        ASSERT_MSG(s, "is done, not running");
        ASSERT_ERR(store_session_start(s, id, "fn", "fn-00003", digest, 0), EBUSY);
        ASSERT_EQ_STR(state_of(s, id), "done");
}

/* stdin given at finish replaces the one given at creation (also with an
 * empty one); a session created for one function is claimed by it only. */
TEST(session_finish_replaces_stdin) {
        _cleanup_store_ Store *s = test_open();
        SessionId a, b;
        sid(a, 0x18f00000000, 1);
        sid(b, 0x18f00000000, 2);
        StoreSession v = session(a, "ns");
        ASSERT_OK(store_session_create(s, &v, NULL, 0, "old stdin", 9));
        v = session(b, "ns");
        v.function = "fn";
        ASSERT_OK(store_session_create(s, &v, NULL, 0, "old stdin", 9));

        start(s, a);
        ASSERT_OK(store_session_finish(s, a, "failed", "{\"status\":\"setup_error\"}", "new", 3, NULL, 0,
                                       NULL, 0, 0));
        StoreSession out = {};
        ASSERT_OK(store_session_get(s, a, &out));
        ASSERT_EQ_STR(out.state, "failed");
        ASSERT_EQ_STR(out.result_json, "{\"status\":\"setup_error\"}");
        assert_digest(out.stdin_digest, "new", 3);
        ASSERT_EQ_INT(out.stdin_size, 3);
        ASSERT_EQ_STR(out.stdout_digest, "");
        ASSERT_EQ_STR(out.output_digest, "");
        ASSERT_TRUE(out.finished_ms > 1600000000000);          /* 0: now */
        store_session_clear(&out);
        assert_blob(s, a, "stdin", "new", 3);
        assert_blob(s, a, "stdout", "", 0);

        ASSERT_ERR(store_session_start(s, b, "other", "other-00001", code, 0), EBUSY);
        ASSERT_MSG(s, "is for function fn, not other");
        ASSERT_EQ_STR(state_of(s, b), "created");
        start(s, b);                                            /* "fn" */
        ASSERT_OK(store_session_finish(s, b, "done", "{}", "", 0, NULL, 0, NULL, 0, 0));
        ASSERT_OK(store_session_get(s, b, &out));
        ASSERT_EQ_STR(out.stdin_digest, "");
        ASSERT_EQ_INT(out.stdin_size, 0);
        store_session_clear(&out);
        assert_blob(s, b, "stdin", "", 0);
}

TEST(session_blob_arguments) {
        _cleanup_store_ Store *s = test_open();
        SessionId id, missing;
        sid(id, 0x18f00000000, 1);
        sid(missing, 0x18f00000000, 2);
        create(s, id, "ns");
        void *data = NULL;
        size_t n = 0;
        static const char *const bad[] = { "", "INPUT", "inputs", "result", "stderr", "input_data" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                int r = store_session_blob(s, id, bad[i], &data, &n);
                if (r != -EINVAL)
                        FAIL_AT("blob \"%s\": expected -EINVAL, got %d", bad[i], r);
        }
        ASSERT_ERR(store_session_blob(s, id, NULL, &data, &n), EINVAL);
        ASSERT_ERR(store_session_blob(s, id, "input", NULL, &n), EINVAL);
        ASSERT_ERR(store_session_blob(s, id, "input", &data, NULL), EINVAL);
        ASSERT_ERR(store_session_blob(s, "s-x", "input", &data, &n), EINVAL);
        ASSERT_ERR(store_session_blob(s, missing, "input", &data, &n), ENOENT);
        ASSERT_MSG(s, "no session");
        ASSERT_TRUE(data == NULL);
        assert_blob(s, id, "input", "in", 2);
        StoreSession out;
        ASSERT_ERR(store_session_get(s, "s-x", &out), EINVAL);
        ASSERT_ERR(store_session_get(s, id, NULL), EINVAL);
}

typedef struct RaceArg {
        Store *s;
        unsigned claimer;
        pthread_barrier_t *barrier;
        const SessionId *ids;
        int won[RACE_SESSIONS];
} RaceArg;

/* Try to claim every session; the revision names the claimer. */
static unsigned race_claim(Store *s, unsigned claimer, const SessionId *ids, int *won) {
        char rev[32], digest[72];
        unsigned wins = 0;
        snprintf(rev, sizeof rev, "fn-%05u", claimer + 1);
        test_digest(digest, claimer + 1);
        for (unsigned i = 0; i < RACE_SESSIONS; i++) {
                int r = store_session_start(s, ids[i], "fn", rev, digest, 0);
                if (r != 0 && r != -EBUSY)
                        FAIL_AT("claimer %u, session %u: %s (%s)", claimer, i, strerror(-r), store_last_error(s));
                won[i] = r == 0;
                wins += r == 0;
        }
        return wins;
}

static void *race_thread(void *p) {
        RaceArg *a = p;
        pthread_barrier_wait(a->barrier);
        race_claim(a->s, a->claimer, a->ids, a->won);
        return NULL;
}

static void race_sessions(Store *s, SessionId ids[RACE_SESSIONS]) {
        for (unsigned i = 0; i < RACE_SESSIONS; i++)
                create(s, sid(ids[i], 0x18f00000000 + i, i), "race");
}

/* Each session is running, and its revision names the one claimer that was
 * told it won. */
static void assert_one_winner(Store *s, const SessionId *ids, unsigned i, int64_t winners) {
        StoreSession v = {};
        ASSERT_OK(store_session_get(s, ids[i], &v));
        ASSERT_EQ_STR(v.state, "running");
        char rev[32];
        snprintf(rev, sizeof rev, "fn-%05jd", (intmax_t) winners + 1);
        ASSERT_EQ_STR(v.revision, rev);
        store_session_clear(&v);
}

/* Threads of one runtime: two share a handle, two have their own. */
TEST(session_start_race_threads) {
        _cleanup_store_ Store *a = test_open(), *b = test_open(), *c = test_open();
        SessionId ids[RACE_SESSIONS];
        race_sessions(a, ids);
        pthread_barrier_t barrier;
        pthread_barrier_init(&barrier, NULL, RACE_CLAIMERS);
        Store *handles[RACE_CLAIMERS] = { a, a, b, c };
        RaceArg args[RACE_CLAIMERS];
        pthread_t th[RACE_CLAIMERS];
        for (unsigned i = 0; i < RACE_CLAIMERS; i++) {
                args[i] = (RaceArg) { .s = handles[i], .claimer = i, .barrier = &barrier, .ids = ids };
                ASSERT_TRUE(pthread_create(&th[i], NULL, race_thread, &args[i]) == 0);
        }
        for (unsigned i = 0; i < RACE_CLAIMERS; i++)
                pthread_join(th[i], NULL);
        pthread_barrier_destroy(&barrier);
        for (unsigned i = 0; i < RACE_SESSIONS; i++) {
                int64_t winner = -1, nwin = 0;
                for (unsigned k = 0; k < RACE_CLAIMERS; k++)
                        if (args[k].won[i]) {
                                winner = k;
                                nwin++;
                        }
                if (nwin != 1)
                        FAIL_AT("session %u: %jd winners", i, (intmax_t) nwin);
                assert_one_winner(c, ids, i, winner);
        }
}

/* Runtimes on several nodes: processes with their own handles. A child
 * exits with 2 + the number of sessions it won (a failed assertion exits 1). */
TEST(session_start_race_processes) {
        SessionId ids[RACE_SESSIONS];
        {
                _cleanup_store_ Store *s = test_open();
                race_sessions(s, ids);
        }
        int pipefd[2];
        ASSERT_TRUE(pipe(pipefd) == 0);
        pid_t pids[RACE_CLAIMERS];
        for (unsigned i = 0; i < RACE_CLAIMERS; i++) {
                fflush(NULL);
                pids[i] = fork();
                ASSERT_TRUE(pids[i] >= 0);
                if (pids[i] == 0) {
                        close(pipefd[1]);
                        Store *s = test_open();
                        char go;
                        /* start together: when the parent closes the pipe */
                        if (read(pipefd[0], &go, 1) < 0)
                                _exit(100);
                        int won[RACE_SESSIONS];
                        unsigned wins = race_claim(s, i, (const SessionId *) ids, won);
                        store_close(s);
                        _exit(2 + (int) wins);
                }
        }
        close(pipefd[0]);
        usleep(100000);
        close(pipefd[1]);
        int64_t total = 0, wins[RACE_CLAIMERS];
        for (unsigned i = 0; i < RACE_CLAIMERS; i++) {
                int st;
                ASSERT_TRUE(waitpid(pids[i], &st, 0) == pids[i] && WIFEXITED(st));
                ASSERT_TRUE(WEXITSTATUS(st) >= 2 && WEXITSTATUS(st) <= 2 + RACE_SESSIONS);
                wins[i] = WEXITSTATUS(st) - 2;
                total += wins[i];
        }
        ASSERT_EQ_INT(total, RACE_SESSIONS);
        /* what each claimer was told is what the store recorded */
        for (unsigned i = 0; i < RACE_CLAIMERS; i++) {
                char sql[128];
                snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM sessions WHERE revision = 'fn-%05u'"
                         " AND state = 'running'", i + 1);
                ASSERT_EQ_INT(test_raw_int(sql), wins[i]);
        }
}

TEST(session_list_pages) {
        _cleanup_store_ Store *s = test_open();
        SessionId ids[10];
        /* created oldest first, alternating namespaces: ids[i] is in ns-(i%2) */
        for (unsigned i = 0; i < 10; i++) {
                StoreSession v = session(sid(ids[i], 0x18f00000000 + i * 1000, 0xabc + i), i % 2 ? "nb" : "na");
                ASSERT_OK(store_session_create(s, &v, "xyz", 3, NULL, 0));
        }
        StoreSession *items = NULL;
        size_t n = 0;
        char *next = NULL;

        /* everything, 3 at a time, newest first */
        _cleanup_free_ char *cursor = NULL;
        size_t seen = 0, pages = 0;
        do {
                ASSERT_OK(store_session_list(s, NULL, cursor, 3, &items, &n, &next));
                for (size_t i = 0; i < n; i++) {
                        ASSERT_TRUE(seen < 10);
                        ASSERT_EQ_STR(items[i].id, ids[9 - seen]);
                        ASSERT_EQ_STR(items[i].namespace_, (9 - seen) % 2 ? "nb" : "na");
                        ASSERT_EQ_STR(items[i].state, "created");
                        assert_digest(items[i].input_digest, "xyz", 3);
                        ASSERT_EQ_INT(items[i].input_size, 3);
                        ASSERT_TRUE(items[i].result_json == NULL);
                        seen++;
                }
                if (next)
                        ASSERT_EQ_STR(next, items[n - 1].id);
                store_session_array_free(items, n);
                free(cursor);
                cursor = next;
                pages++;
        } while (cursor);
        ASSERT_EQ_UINT(seen, 10);
        ASSERT_EQ_UINT(pages, 4);

        /* one namespace: ids 8, 6, 4 then 2, 0 */
        ASSERT_OK(store_session_list(s, "na", NULL, 3, &items, &n, &next));
        ASSERT_EQ_UINT(n, 3);
        ASSERT_EQ_STR(items[0].id, ids[8]);
        ASSERT_EQ_STR(items[2].id, ids[4]);
        ASSERT_EQ_STR(next, ids[4]);
        store_session_array_free(items, n);
        char *prev = next;
        next = (char *) "untouched";
        ASSERT_OK(store_session_list(s, "na", prev, 3, &items, &n, &next));
        ASSERT_EQ_UINT(n, 2);
        ASSERT_EQ_STR(items[0].id, ids[2]);
        ASSERT_EQ_STR(items[1].id, ids[0]);
        ASSERT_TRUE(next == NULL);                              /* the last page */
        store_session_array_free(items, n);
        free(prev);
        ASSERT_OK(store_session_list(s, "nb", "", STORE_LIST_MAX, &items, &n, NULL));
        ASSERT_EQ_UINT(n, 5);
        for (size_t i = 0; i < n; i++)
                ASSERT_EQ_STR(items[i].id, ids[9 - 2 * i]);
        store_session_array_free(items, n);
        /* a cursor from another list, or of a deleted session, still orders */
        ASSERT_OK(store_session_delete(s, ids[5]));
        ASSERT_OK(store_session_list(s, "nb", ids[5], 10, &items, &n, NULL));
        ASSERT_EQ_UINT(n, 2);
        ASSERT_EQ_STR(items[0].id, ids[3]);
        store_session_array_free(items, n);
        ASSERT_OK(store_session_list(s, "empty", NULL, 10, &items, &n, NULL));
        ASSERT_EQ_UINT(n, 0);
        store_session_array_free(items, n);

        /* a list shows progress */
        start(s, ids[9]);
        ASSERT_OK(store_session_list(s, "nb", NULL, 1, &items, &n, NULL));
        ASSERT_EQ_UINT(n, 1);
        ASSERT_EQ_STR(items[0].state, "running");
        ASSERT_EQ_STR(items[0].revision, "fn-00001");
        store_session_array_free(items, n);

        /* bad arguments */
        ASSERT_ERR(store_session_list(s, NULL, NULL, 0, &items, &n, NULL), EINVAL);
        ASSERT_ERR(store_session_list(s, NULL, NULL, STORE_LIST_MAX + 1, &items, &n, NULL), EINVAL);
        ASSERT_ERR(store_session_list(s, "a/b", NULL, 1, &items, &n, NULL), EINVAL);
        ASSERT_ERR(store_session_list(s, "", NULL, 1, &items, &n, NULL), EINVAL);
        ASSERT_ERR(store_session_list(s, NULL, "s-1", 1, &items, &n, NULL), EINVAL);
        ASSERT_ERR(store_session_list(s, NULL, "na/x", 1, &items, &n, NULL), EINVAL);
        ASSERT_MSG(s, "cursor");
        ASSERT_ERR(store_session_list(s, NULL, NULL, 1, NULL, &n, NULL), EINVAL);
        ASSERT_ERR(store_session_list(s, NULL, NULL, 1, &items, NULL, NULL), EINVAL);
}

TEST(session_delete) {
        _cleanup_store_ Store *s = test_open();
        SessionId a, b;
        sid(a, 0x18f00000000, 1);
        sid(b, 0x18f00000000, 2);
        create(s, a, "ns");
        create(s, b, "ns");
        start(s, b);
        ASSERT_OK(store_session_delete(s, a));
        StoreSession out = {};
        ASSERT_ERR(store_session_get(s, a, &out), ENOENT);
        void *data = NULL;
        size_t n = 0;
        ASSERT_ERR(store_session_blob(s, a, "input", &data, &n), ENOENT);
        ASSERT_ERR(store_session_start(s, a, "fn", "fn-00001", code, 0), ENOENT);
        ASSERT_ERR(store_session_delete(s, a), ENOENT);
        ASSERT_MSG(s, "no session");
        ASSERT_ERR(store_session_delete(s, "s-"), EINVAL);
        ASSERT_ERR(store_session_delete(s, NULL), EINVAL);
        ASSERT_OK(store_session_delete(s, b));                  /* whatever its state */
        ASSERT_ERR(store_session_finish(s, b, "done", "{}", NULL, 0, NULL, 0, NULL, 0, 0), ENOENT);
        ASSERT_EQ_INT(test_raw_int("SELECT COUNT(*) FROM sessions"), 0);
        create(s, a, "ns");                                     /* the id is free again */
        ASSERT_EQ_STR(state_of(s, a), "created");
}

TEST(session_prune) {
        _cleanup_store_ Store *s = test_open();
        SessionId id;
        /* 150 (more than a prune batch) expire at 2000..2149, 3 much later */
        for (unsigned i = 0; i < 150; i++) {
                StoreSession v = session(sid(id, 0x18f00000000, i), "ns");
                v.expires_ms = 2000 + i;
                ASSERT_OK(store_session_create(s, &v, "in", 2, NULL, 0));
        }
        int64_t now = (int64_t) time(NULL) * 1000;
        for (unsigned i = 0; i < 3; i++) {
                StoreSession v = session(sid(id, 0x18f00000001, i), "ns");
                v.created_ms = 0;
                v.expires_ms = now + DAY_MS;
                ASSERT_OK(store_session_create(s, &v, NULL, 0, NULL, 0));
        }
        ASSERT_ERR(store_session_prune(s, -1), EINVAL);
        ASSERT_EQ_INT(store_session_prune(s, 1999), 0);
        ASSERT_EQ_INT(store_session_prune(s, 2009), 10);        /* expires_ms <= now: 2000..2009 */
        ASSERT_EQ_INT(test_raw_int("SELECT COUNT(*) FROM sessions WHERE expires_ms <= 2009"), 0);
        ASSERT_EQ_INT(store_session_prune(s, 2009), 0);
        ASSERT_EQ_INT(store_session_prune(s, 0), 140);          /* 0: now */
        ASSERT_EQ_INT(test_raw_int("SELECT COUNT(*) FROM sessions"), 3);
        StoreSession out = {};
        ASSERT_OK(store_session_get(s, id, &out));              /* the last kept one */
        store_session_clear(&out);
        ASSERT_EQ_INT(store_session_prune(s, now + DAY_MS), 3);
        ASSERT_EQ_INT(test_raw_int("SELECT COUNT(*) FROM sessions"), 0);
}

/* A database made before sessions (schema 4, with data) gains migration 5
 * on open and keeps what it had. */
TEST(session_migration_from_4) {
        {
                _cleanup_store_ Store *s = test_open();
                ASSERT_EQ_INT(store_schema_version(s), 5);
                ASSERT_OK(test_deploy(s, "default", "fn", -1, 1, NULL, NULL));
        }
        test_raw_exec("DROP TABLE sessions; DELETE FROM schema_migrations WHERE version = 5");
        _cleanup_store_ Store *s = test_open();
        ASSERT_EQ_INT(store_schema_version(s), 5);
        ASSERT_EQ_INT(test_raw_int("SELECT COUNT(*) FROM functions"), 1);
        SessionId id;
        create(s, sid(id, 0x18f00000000, 1), "default");
        ASSERT_EQ_STR(state_of(s, id), "created");
        /* the state column takes only the four states, whoever writes; the
         * list and the prune have their indexes */
        ASSERT_EQ_INT(test_raw_int(test_is_pg()
                ? "SELECT COUNT(*) FROM pg_constraint WHERE conname = 'sessions_state_check'"
                : "SELECT COUNT(*) FROM sqlite_master WHERE name = 'sessions'"
                  " AND sql LIKE '%CHECK (state IN (''created'', ''running'', ''done'', ''failed''))%'"), 1);
        ASSERT_EQ_INT(test_raw_int(test_is_pg()
                ? "SELECT COUNT(*) FROM pg_indexes WHERE indexname IN ('sessions_namespace', 'sessions_expires')"
                : "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index'"
                  " AND name IN ('sessions_namespace', 'sessions_expires')"), 2);
}
