/* tests/store/skills.c: the skill library's versions in the store
 * (store_skill_version_* and store_skill_stamp in lib/store.h), the same
 * against SQLite and PostgreSQL: every field round-trips, numbering per
 * (namespace, name), the version selectors (N, 0 = newest promoted, -1 =
 * newest), the state machine and its messages, every argument check (and
 * that a refused add writes nothing), racing adders in processes and in
 * threads (shared and separate handles) getting distinct consecutive
 * numbers, list filters and cursors, the change stamp across handles, and
 * migration 4 applied to a database at schema 3. */
#define _GNU_SOURCE
#include "store_test.h"

#include <errno.h>
#include <pthread.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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

#define RACE_PROCS      6
#define RACE_ADDS       10

/* test_digest(1), written out: the racing threads build candidates at once,
 * and a buffer they all refilled with snprintf could be read half-written. */
static const char code[] = "sha256:0000000000000000000000000000000000000000000000000000000000000001";

/* A candidate of ns/name whose code is artifact 1 (stored by the caller). */
static StoreSkillVersion skill(const char *ns, const char *name) {
        return (StoreSkillVersion) {
                .namespace_ = (char *) ns, .name = (char *) name, .runtime = "python3", .code_digest = (char *) code,
                .description = "Adds two numbers.", .doc_json = "{\"tests\":[]}",
        };
}

static int64_t add(Store *s, const char *ns, const char *name) {
        StoreSkillVersion v = skill(ns, name);
        int64_t version = 0;
        ASSERT_OK(store_skill_version_add(s, &v, &version));
        return version;
}

static int64_t stamp(Store *s) {
        int64_t v = -1;
        ASSERT_OK(store_skill_stamp(s, &v));
        return v;
}

static int64_t get_version(Store *s, const char *ns, const char *name, int64_t which) {
        StoreSkillVersion v = {};
        int r = store_skill_version_get(s, ns, name, which, &v);
        int64_t n = r < 0 ? r : v.version;
        store_skill_version_clear(&v);
        return n;
}

TEST(skill_round_trip) {
        _cleanup_store_ Store *s = test_open();
        test_artifact(s, 1);
        StoreSkillVersion in = skill("team-a", "csv-sum");
        in.description = "Sums a CSV column.\nSecond line: é";
        in.doc_json = "{\"tests\":[{\"input\":\"1,2\",\"expected\":\"3\"}],\"rounds\":2}";
        in.embedding_json = "[0.25, -1e-3, 3]";
        in.created_ms = 1234;
        in.created_by = "token:0123456789abcdef";
        in.version = 77;                                        /* ignored */
        int64_t version = 0;
        ASSERT_OK(store_skill_version_add(s, &in, &version));
        ASSERT_EQ_INT(version, 1);

        StoreSkillVersion out = {};
        ASSERT_OK(store_skill_version_get(s, "team-a", "csv-sum", 1, &out));
        ASSERT_EQ_STR(out.namespace_, "team-a");
        ASSERT_EQ_STR(out.name, "csv-sum");
        ASSERT_EQ_INT(out.version, 1);
        ASSERT_EQ_STR(out.state, "candidate");
        ASSERT_EQ_STR(out.runtime, "python3");
        ASSERT_EQ_STR(out.code_digest, code);
        ASSERT_EQ_STR(out.description, "Sums a CSV column.\nSecond line: é");
        ASSERT_EQ_STR(out.doc_json, in.doc_json);
        ASSERT_EQ_STR(out.embedding_json, "[0.25, -1e-3, 3]");
        ASSERT_EQ_INT(out.parent, 0);
        ASSERT_EQ_INT(out.created_ms, 1234);
        ASSERT_EQ_INT(out.promoted_ms, 0);
        ASSERT_EQ_INT(out.deprecated_ms, 0);
        ASSERT_EQ_STR(out.created_by, "token:0123456789abcdef");
        ASSERT_EQ_STR(out.promoted_by, "");
        ASSERT_EQ_STR(out.deprecated_by, "");
        store_skill_version_clear(&out);

        /* defaults: no embedding (NULL, not ""), no description, created now, by "" */
        StoreSkillVersion bare = skill("team-a", "csv-sum");
        bare.description = NULL;
        bare.parent = 1;
        int64_t before = (int64_t) time(NULL) * 1000;
        ASSERT_OK(store_skill_version_add(s, &bare, &version));
        ASSERT_EQ_INT(version, 2);
        ASSERT_OK(store_skill_version_get(s, "team-a", "csv-sum", 2, &out));
        ASSERT_TRUE(out.embedding_json == NULL);
        ASSERT_EQ_STR(out.description, "");
        ASSERT_EQ_STR(out.created_by, "");
        ASSERT_EQ_INT(out.parent, 1);
        ASSERT_TRUE(out.created_ms >= before - 1000 && out.created_ms <= before + 60000);
        store_skill_version_clear(&out);

        /* added as promoted: promoted_ms and _by kept */
        StoreSkillVersion p = skill("team-a", "other");
        p.state = "promoted";
        p.promoted_ms = 5000;
        p.promoted_by = "token:feedfeedfeedfeed";
        ASSERT_OK(store_skill_version_add(s, &p, &version));
        ASSERT_EQ_INT(version, 1);
        ASSERT_OK(store_skill_version_get(s, "team-a", "other", 0, &out));
        ASSERT_EQ_STR(out.state, "promoted");
        ASSERT_EQ_INT(out.promoted_ms, 5000);
        ASSERT_EQ_STR(out.promoted_by, "token:feedfeedfeedfeed");
        store_skill_version_clear(&out);
}

TEST(skill_numbering_per_name) {
        _cleanup_store_ Store *s = test_open();
        test_artifact(s, 1);
        ASSERT_EQ_INT(add(s, "a", "x"), 1);
        ASSERT_EQ_INT(add(s, "a", "x"), 2);
        ASSERT_EQ_INT(add(s, "a", "y"), 1);
        ASSERT_EQ_INT(add(s, "b", "x"), 1);
        ASSERT_EQ_INT(add(s, "a", "x"), 3);
        ASSERT_EQ_INT(test_raw_int("SELECT COUNT(*) FROM skill_versions"), 5);
        /* a handle opened later continues the numbers */
        _cleanup_store_ Store *t = test_open();
        ASSERT_EQ_INT(add(t, "a", "x"), 4);
}

TEST(skill_get_selectors) {
        _cleanup_store_ Store *s = test_open();
        test_artifact(s, 1);
        ASSERT_ERR(get_version(s, "a", "x", -1), ENOENT);
        ASSERT_TRUE(strstr(store_last_error(s), "no skill a/x") != NULL);
        add(s, "a", "x");
        ASSERT_ERR(get_version(s, "a", "x", 0), ENOENT);        /* nothing promoted yet */
        ASSERT_TRUE(strstr(store_last_error(s), "no promoted version") != NULL);
        ASSERT_EQ_INT(get_version(s, "a", "x", -1), 1);
        ASSERT_OK(store_skill_version_set_state(s, "a", "x", 1, "promoted", "token:a", 0));
        ASSERT_EQ_INT(get_version(s, "a", "x", 0), 1);
        add(s, "a", "x");
        ASSERT_EQ_INT(get_version(s, "a", "x", 0), 1);          /* a newer candidate is not it */
        ASSERT_EQ_INT(get_version(s, "a", "x", -1), 2);
        add(s, "a", "x");
        ASSERT_OK(store_skill_version_set_state(s, "a", "x", 2, "promoted", "token:a", 0));
        ASSERT_EQ_INT(get_version(s, "a", "x", 0), 2);
        ASSERT_EQ_INT(get_version(s, "a", "x", -1), 3);
        ASSERT_OK(store_skill_version_set_state(s, "a", "x", 2, "deprecated", "token:b", 0));
        ASSERT_EQ_INT(get_version(s, "a", "x", 0), 1);          /* back to the older promoted one */
        ASSERT_OK(store_skill_version_set_state(s, "a", "x", 1, "deprecated", "token:b", 0));
        ASSERT_ERR(get_version(s, "a", "x", 0), ENOENT);
        ASSERT_EQ_INT(get_version(s, "a", "x", -1), 3);
        ASSERT_EQ_INT(get_version(s, "a", "x", 2), 2);          /* deprecated, still there */
        ASSERT_ERR(get_version(s, "a", "x", 4), ENOENT);
        ASSERT_ERR(get_version(s, "b", "x", 1), ENOENT);        /* other namespace */
        ASSERT_ERR(get_version(s, "a", "x", -2), EINVAL);
        ASSERT_ERR(get_version(s, "a", "X", 1), EINVAL);
        ASSERT_ERR(get_version(s, "a/b", "x", 1), EINVAL);
        ASSERT_ERR(store_skill_version_get(s, "a", "x", 1, NULL), EINVAL);
}

TEST(skill_state_transitions) {
        _cleanup_store_ Store *s = test_open();
        test_artifact(s, 1);
        for (int i = 0; i < 4; i++)
                add(s, "ns", "sk");
        StoreSkillVersion v = {};

        /* candidate -> promoted */
        ASSERT_OK(store_skill_version_set_state(s, "ns", "sk", 1, "promoted", "token:p", 1111));
        ASSERT_OK(store_skill_version_get(s, "ns", "sk", 1, &v));
        ASSERT_EQ_STR(v.state, "promoted");
        ASSERT_EQ_INT(v.promoted_ms, 1111);
        ASSERT_EQ_STR(v.promoted_by, "token:p");
        ASSERT_EQ_INT(v.deprecated_ms, 0);
        ASSERT_EQ_STR(v.doc_json, "{\"tests\":[]}");            /* content untouched */
        store_skill_version_clear(&v);
        ASSERT_ERR(store_skill_version_set_state(s, "ns", "sk", 1, "promoted", "token:p", 0), EINVAL);
        ASSERT_TRUE(strstr(store_last_error(s), "already promoted") != NULL);

        /* promoted -> deprecated: keeps the promotion's fields */
        ASSERT_OK(store_skill_version_set_state(s, "ns", "sk", 1, "deprecated", NULL, 2222));
        ASSERT_OK(store_skill_version_get(s, "ns", "sk", 1, &v));
        ASSERT_EQ_STR(v.state, "deprecated");
        ASSERT_EQ_INT(v.promoted_ms, 1111);
        ASSERT_EQ_STR(v.promoted_by, "token:p");
        ASSERT_EQ_INT(v.deprecated_ms, 2222);
        ASSERT_EQ_STR(v.deprecated_by, "");
        store_skill_version_clear(&v);
        ASSERT_ERR(store_skill_version_set_state(s, "ns", "sk", 1, "deprecated", NULL, 0), EINVAL);
        ASSERT_TRUE(strstr(store_last_error(s), "already deprecated") != NULL);
        ASSERT_ERR(store_skill_version_set_state(s, "ns", "sk", 1, "promoted", NULL, 0), EINVAL);
        ASSERT_TRUE(strstr(store_last_error(s), "only a candidate") != NULL);

        /* candidate -> deprecated: never promoted; at_ms 0 is now */
        ASSERT_OK(store_skill_version_set_state(s, "ns", "sk", 2, "deprecated", "token:d", 0));
        ASSERT_OK(store_skill_version_get(s, "ns", "sk", 2, &v));
        ASSERT_EQ_STR(v.state, "deprecated");
        ASSERT_EQ_INT(v.promoted_ms, 0);
        ASSERT_TRUE(v.deprecated_ms > 1600000000000);
        ASSERT_EQ_STR(v.deprecated_by, "token:d");
        store_skill_version_clear(&v);
        ASSERT_ERR(store_skill_version_set_state(s, "ns", "sk", 2, "promoted", NULL, 0), EINVAL);

        /* never back to candidate, no other states */
        ASSERT_ERR(store_skill_version_set_state(s, "ns", "sk", 3, "candidate", NULL, 0), EINVAL);
        ASSERT_TRUE(strstr(store_last_error(s), "promoted or deprecated only") != NULL);
        ASSERT_OK(store_skill_version_set_state(s, "ns", "sk", 3, "promoted", NULL, 0));
        ASSERT_ERR(store_skill_version_set_state(s, "ns", "sk", 3, "candidate", NULL, 0), EINVAL);
        ASSERT_ERR(store_skill_version_set_state(s, "ns", "sk", 4, "retired", NULL, 0), EINVAL);
        ASSERT_ERR(store_skill_version_set_state(s, "ns", "sk", 4, NULL, NULL, 0), EINVAL);
        ASSERT_ERR(store_skill_version_set_state(s, "ns", "sk", 4, "promoted", "bad\nby", 0), EINVAL);
        ASSERT_ERR(store_skill_version_set_state(s, "ns", "sk", 4, "promoted", NULL, -5), EINVAL);
        ASSERT_ERR(store_skill_version_set_state(s, "ns", "sk", 0, "promoted", NULL, 0), EINVAL);
        ASSERT_ERR(store_skill_version_set_state(s, "ns", "sk", 5, "promoted", NULL, 0), ENOENT);
        ASSERT_ERR(store_skill_version_set_state(s, "ns", "nope", 1, "promoted", NULL, 0), ENOENT);
        ASSERT_ERR(store_skill_version_set_state(s, "ns", "-sk", 1, "promoted", NULL, 0), EINVAL);
        ASSERT_OK(store_skill_version_get(s, "ns", "sk", 4, &v));
        ASSERT_EQ_STR(v.state, "candidate");                    /* the refusals changed nothing */
        store_skill_version_clear(&v);
        ASSERT_EQ_INT(test_raw_int("SELECT COUNT(*) FROM skill_versions WHERE state = 'promoted'"), 1);
        ASSERT_EQ_INT(test_raw_int("SELECT COUNT(*) FROM skill_versions WHERE state = 'deprecated'"), 2);
}

/* Every refused add: its error, and nothing written. */
TEST(skill_add_invalid) {
        _cleanup_store_ Store *s = test_open();
        test_artifact(s, 1);
        add(s, "ns", "ok");
        int64_t st = stamp(s);
        StoreSkillVersion v;
        int64_t version = -7;

        static const char *const bad_names[] = {
                "", "-a", "a-", "A", "a_b", "a.b", "a/b", "a b", "é",
                "a1234567890123456789012345678901234567890",   /* 41 */
        };
        for (size_t i = 0; i < ELEMENTSOF(bad_names); i++) {
                v = skill("ns", bad_names[i]);
                int r = store_skill_version_add(s, &v, &version);
                if (r != -EINVAL)
                        FAIL_AT("name \"%s\": expected -EINVAL, got %d", bad_names[i], r);
                ASSERT_TRUE(strstr(store_last_error(s), "skill name") != NULL);
        }
        v = skill("ns", NULL);
        ASSERT_ERR(store_skill_version_add(s, &v, &version), EINVAL);
        ASSERT_EQ_INT(add(s, "ns", "a123456789012345678901234567890123456789"), 1);      /* 40 */
        ASSERT_EQ_INT(add(s, "ns", "0"), 1);
        ASSERT_EQ_INT(add(s, "ns", "a-b--c9"), 1);
        st = stamp(s);

        v = skill("a/b", "x");
        ASSERT_ERR(store_skill_version_add(s, &v, &version), EINVAL);
        v = skill("", "x");
        ASSERT_ERR(store_skill_version_add(s, &v, &version), EINVAL);
        v = skill(NULL, "x");
        ASSERT_ERR(store_skill_version_add(s, &v, &version), EINVAL);
        v = skill("ns", "x");
        v.state = "deprecated";
        ASSERT_ERR(store_skill_version_add(s, &v, &version), EINVAL);
        v.state = "bogus";
        ASSERT_ERR(store_skill_version_add(s, &v, &version), EINVAL);
        v = skill("ns", "x");
        v.runtime = "";
        ASSERT_ERR(store_skill_version_add(s, &v, &version), EINVAL);
        ASSERT_TRUE(strstr(store_last_error(s), "runtime") != NULL);
        v.runtime = NULL;
        ASSERT_ERR(store_skill_version_add(s, &v, &version), EINVAL);
        v.runtime = "py\tthon";
        ASSERT_ERR(store_skill_version_add(s, &v, &version), EINVAL);
        v = skill("ns", "x");
        v.code_digest = "sha256:xyz";
        ASSERT_ERR(store_skill_version_add(s, &v, &version), EINVAL);
        v.code_digest = NULL;
        ASSERT_ERR(store_skill_version_add(s, &v, &version), EINVAL);
        char other[72];
        test_digest(other, 2);                                  /* never stored */
        v.code_digest = other;
        ASSERT_ERR(store_skill_version_add(s, &v, &version), ENOENT);
        ASSERT_TRUE(strstr(store_last_error(s), "no artifact") != NULL);

        /* description: 4096 bytes fit, 4097 do not; UTF-8 only */
        char desc[STORE_SKILL_DESCRIPTION_MAX + 2];
        memset(desc, 'd', sizeof desc - 1);
        desc[sizeof desc - 1] = 0;
        v = skill("ns", "x");
        v.description = desc;
        ASSERT_ERR(store_skill_version_add(s, &v, &version), E2BIG);
        ASSERT_TRUE(strstr(store_last_error(s), "description") != NULL);
        static const char *const bad_utf8[] = { "\xff", "a\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80" };
        for (size_t i = 0; i < ELEMENTSOF(bad_utf8); i++) {
                v.description = (char *) bad_utf8[i];
                ASSERT_ERR(store_skill_version_add(s, &v, &version), EINVAL);
        }

        /* the document: required, 8 MiB at most, UTF-8 */
        v = skill("ns", "x");
        v.doc_json = NULL;
        ASSERT_ERR(store_skill_version_add(s, &v, &version), EINVAL);
        size_t big = (8u << 20) + 1;
        _cleanup_free_ char *doc = malloc(big + 1);
        memset(doc, ' ', big);
        doc[big] = 0;
        v.doc_json = doc;
        ASSERT_ERR(store_skill_version_add(s, &v, &version), E2BIG);
        v.doc_json = "{\"x\":\"\xfe\"}";
        ASSERT_ERR(store_skill_version_add(s, &v, &version), EINVAL);

        /* the embedding: a non-empty JSON array of numbers, 64 KiB at most */
        static const char *const bad_emb[] = {
                "", "{}", "[]", "[ ]", "[1,]", "[,1]", "[1 2]", "[nan]", "[inf]", "[01]", "[1.]", "[.5]",
                "[1e]", "[0x10]", "[\"1\"]", "[[1]]", "[1] x", "[1", "1", "[+1]", "[null]",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad_emb); i++) {
                v = skill("ns", "x");
                v.embedding_json = (char *) bad_emb[i];
                int r = store_skill_version_add(s, &v, &version);
                if (r != -EINVAL)
                        FAIL_AT("embedding \"%s\": expected -EINVAL, got %d", bad_emb[i], r);
        }
        _cleanup_free_ char *emb = malloc(STORE_SKILL_EMBEDDING_MAX + 16);
        size_t n = 0;
        emb[n++] = '[';
        while (n < STORE_SKILL_EMBEDDING_MAX - 1) {
                emb[n++] = '0';
                emb[n++] = ',';
        }
        emb[n - 1] = ']';                                       /* exactly 64 KiB - 1 ... */
        emb[n] = 0;
        v = skill("ns", "x");
        v.embedding_json = emb;
        ASSERT_TRUE(strlen(emb) <= STORE_SKILL_EMBEDDING_MAX);
        ASSERT_OK(store_skill_version_add(s, &v, &version));    /* fits */
        ASSERT_EQ_INT(version, 1);
        strcpy(emb + n - 1, ",0,0]");                           /* ... now over */
        ASSERT_TRUE(strlen(emb) > STORE_SKILL_EMBEDDING_MAX);
        ASSERT_ERR(store_skill_version_add(s, &v, &version), E2BIG);
        st = stamp(s);

        /* parent: an existing version of the same skill */
        v = skill("ns", "x");
        v.parent = 2;
        ASSERT_ERR(store_skill_version_add(s, &v, &version), EINVAL);
        ASSERT_TRUE(strstr(store_last_error(s), "parent") != NULL);
        v.parent = -1;
        ASSERT_ERR(store_skill_version_add(s, &v, &version), EINVAL);
        v = skill("ns", "ok");
        v.parent = 1;
        v.namespace_ = "other";                                 /* ok@1 is in ns, not here */
        ASSERT_ERR(store_skill_version_add(s, &v, &version), EINVAL);
        v = skill("ns", "x");
        v.created_by = "token:\x01";
        ASSERT_ERR(store_skill_version_add(s, &v, &version), EINVAL);
        v.created_by = NULL;
        v.created_ms = -1;
        ASSERT_ERR(store_skill_version_add(s, &v, &version), EINVAL);
        ASSERT_ERR(store_skill_version_add(s, NULL, &version), EINVAL);

        /* none of that wrote anything or moved the stamp */
        ASSERT_EQ_INT(version, 1);
        ASSERT_EQ_INT(stamp(s), st);
        ASSERT_EQ_INT(test_raw_int("SELECT COUNT(*) FROM skill_versions"), 5);
        v = skill("ns", "ok");
        v.parent = 1;
        ASSERT_OK(store_skill_version_add(s, &v, NULL));        /* ret_version may be NULL */
        ASSERT_EQ_INT(get_version(s, "ns", "ok", -1), 2);
}

static void race_child(unsigned i) {
        (void) i;
        _cleanup_store_ Store *s = test_open();
        for (unsigned k = 0; k < RACE_ADDS; k++)
                add(s, "race", "sk");
}

/* All versions 1..n present once, each a distinct number. */
static void assert_versions_contiguous(Store *s, const char *ns, const char *name, int64_t n) {
        StoreSkillVersion *items = NULL;
        size_t count = 0;
        ASSERT_OK(store_skill_version_list(s, ns, name, NULL, STORE_LIST_MAX, &items, &count, NULL));
        ASSERT_EQ_UINT(count, (size_t) n);
        for (size_t i = 0; i < count; i++)
                ASSERT_EQ_INT(items[i].version, (int64_t) i + 1);
        store_skill_version_array_free(items, count);
}

/* Several controllers adding versions of one skill at once. */
TEST(skill_add_race_processes) {
        {
                _cleanup_store_ Store *s = test_open();
                test_artifact(s, 1);
        }
        pid_t pids[RACE_PROCS];
        for (unsigned i = 0; i < RACE_PROCS; i++) {
                fflush(NULL);
                pids[i] = fork();
                ASSERT_TRUE(pids[i] >= 0);
                if (pids[i] == 0) {
                        race_child(i);
                        _exit(0);
                }
        }
        for (unsigned i = 0; i < RACE_PROCS; i++) {
                int st;
                ASSERT_TRUE(waitpid(pids[i], &st, 0) == pids[i] && WIFEXITED(st) && WEXITSTATUS(st) == 0);
        }
        _cleanup_store_ Store *s = test_open();
        assert_versions_contiguous(s, "race", "sk", RACE_PROCS * RACE_ADDS);
        ASSERT_EQ_INT(stamp(s), RACE_PROCS * RACE_ADDS);
}

typedef struct RaceArg {
        Store *s;
        int64_t got[RACE_ADDS];
} RaceArg;

static void *race_thread(void *p) {
        RaceArg *a = p;
        for (unsigned k = 0; k < RACE_ADDS; k++) {
                a->got[k] = add(a->s, "race", "th");
                if (k % 3 == 0)         /* promotions interleaved with the adds */
                        ASSERT_OK(store_skill_version_set_state(a->s, "race", "th", a->got[k], "promoted", NULL, 0));
        }
        return NULL;
}

/* Threads of one controller: two share a handle, two have their own. */
TEST(skill_add_race_threads) {
        _cleanup_store_ Store *a = test_open(), *b = test_open(), *c = test_open();
        test_artifact(a, 1);
        RaceArg args[4] = { { .s = a }, { .s = a }, { .s = b }, { .s = c } };
        pthread_t th[4];
        int64_t st0 = stamp(b);
        for (unsigned i = 0; i < 4; i++)
                ASSERT_TRUE(pthread_create(&th[i], NULL, race_thread, &args[i]) == 0);
        for (unsigned i = 0; i < 4; i++)
                pthread_join(th[i], NULL);
        assert_versions_contiguous(c, "race", "th", 4 * RACE_ADDS);
        /* what each adder was told is what it got: every number once */
        bool seen[4 * RACE_ADDS + 1] = {};
        for (unsigned i = 0; i < 4; i++)
                for (unsigned k = 0; k < RACE_ADDS; k++) {
                        int64_t n = args[i].got[k];
                        ASSERT_TRUE(n >= 1 && n <= 4 * RACE_ADDS && !seen[n]);
                        seen[n] = true;
                        if (k > 0)
                                ASSERT_TRUE(n > args[i].got[k - 1]);
                }
        ASSERT_EQ_INT(test_raw_int("SELECT COUNT(*) FROM skill_versions WHERE state = 'promoted'"), 4 * 4);
        /* 40 adds and 16 promotions, each one step */
        ASSERT_EQ_INT(stamp(a) - st0, 4 * RACE_ADDS + 4 * 4);
}

TEST(skill_list_pages) {
        _cleanup_store_ Store *s = test_open();
        test_artifact(s, 1);
        /* 2 namespaces x 3 names x 3 versions, added out of order */
        static const char *const ns[] = { "nb", "na" }, *const names[] = { "zz", "a", "m-1" };
        for (int k = 0; k < 3; k++)
                for (size_t i = 0; i < 2; i++)
                        for (size_t j = 0; j < 3; j++)
                                add(s, ns[i], names[j]);
        StoreSkillVersion *items = NULL;
        size_t n = 0;
        char *next = NULL;

        /* everything, 4 at a time, in (namespace, name, version) order */
        static const char *const want[] = { "na/a/1", "na/a/2", "na/a/3", "na/m-1/1", "na/m-1/2", "na/m-1/3",
                "na/zz/1", "na/zz/2", "na/zz/3", "nb/a/1", "nb/a/2", "nb/a/3", "nb/m-1/1", "nb/m-1/2",
                "nb/m-1/3", "nb/zz/1", "nb/zz/2", "nb/zz/3" };
        size_t seen = 0, pages = 0;
        _cleanup_free_ char *cursor = NULL;
        do {
                ASSERT_OK(store_skill_version_list(s, NULL, NULL, cursor, 4, &items, &n, &next));
                for (size_t i = 0; i < n; i++) {
                        char key[300];
                        snprintf(key, sizeof key, "%s/%s/%jd", items[i].namespace_, items[i].name,
                                 (intmax_t) items[i].version);
                        ASSERT_TRUE(seen < ELEMENTSOF(want));
                        ASSERT_EQ_STR(key, want[seen]);
                        seen++;
                }
                store_skill_version_array_free(items, n);
                free(cursor);
                cursor = next;
                pages++;
        } while (cursor);
        ASSERT_EQ_UINT(seen, 18);
        ASSERT_EQ_UINT(pages, 5);

        /* one namespace */
        ASSERT_OK(store_skill_version_list(s, "nb", NULL, NULL, 5, &items, &n, &next));
        ASSERT_EQ_UINT(n, 5);
        ASSERT_EQ_STR(items[0].namespace_, "nb");
        ASSERT_EQ_STR(next, "nb/m-1/2");
        store_skill_version_array_free(items, n);
        ASSERT_OK(store_skill_version_list(s, "nb", NULL, next, 100, &items, &n, NULL));
        ASSERT_EQ_UINT(n, 4);
        ASSERT_EQ_STR(items[0].name, "m-1");
        ASSERT_EQ_INT(items[0].version, 3);
        ASSERT_EQ_STR(items[3].name, "zz");
        store_skill_version_array_free(items, n);
        free(next);

        /* one skill */
        ASSERT_OK(store_skill_version_list(s, "na", "m-1", NULL, 2, &items, &n, &next));
        ASSERT_EQ_UINT(n, 2);
        ASSERT_EQ_INT(items[1].version, 2);
        ASSERT_EQ_STR(next, "na/m-1/2");
        store_skill_version_array_free(items, n);
        ASSERT_OK(store_skill_version_list(s, "na", "m-1", next, 2, &items, &n, NULL));
        ASSERT_EQ_UINT(n, 1);
        ASSERT_EQ_INT(items[0].version, 3);
        store_skill_version_array_free(items, n);
        free(next);
        next = (char *) "untouched";
        ASSERT_OK(store_skill_version_list(s, "na", "m-1", NULL, 3, &items, &n, &next));
        ASSERT_EQ_UINT(n, 3);
        ASSERT_TRUE(next == NULL);                              /* the last page */
        store_skill_version_array_free(items, n);

        /* one name in every namespace */
        ASSERT_OK(store_skill_version_list(s, NULL, "zz", "na/zz/3", 10, &items, &n, NULL));
        ASSERT_EQ_UINT(n, 3);
        ASSERT_EQ_STR(items[0].namespace_, "nb");
        ASSERT_EQ_STR(items[0].name, "zz");
        store_skill_version_array_free(items, n);

        /* nothing there */
        ASSERT_OK(store_skill_version_list(s, "empty", NULL, NULL, 10, &items, &n, NULL));
        ASSERT_EQ_UINT(n, 0);
        store_skill_version_array_free(items, n);

        /* bad arguments and cursors */
        ASSERT_ERR(store_skill_version_list(s, NULL, NULL, NULL, 0, &items, &n, NULL), EINVAL);
        ASSERT_ERR(store_skill_version_list(s, NULL, NULL, NULL, STORE_LIST_MAX + 1, &items, &n, NULL), EINVAL);
        ASSERT_ERR(store_skill_version_list(s, "a/b", NULL, NULL, 1, &items, &n, NULL), EINVAL);
        ASSERT_ERR(store_skill_version_list(s, NULL, "Bad", NULL, 1, &items, &n, NULL), EINVAL);
        static const char *const bad[] = { "na", "na/a", "na/a/", "na/a/x", "na/a/0", "na/a/-1", "na/a/1x",
                                           "/a/1", "na//1", "na/a/1/2" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                int r = store_skill_version_list(s, NULL, NULL, bad[i], 1, &items, &n, NULL);
                if (r != -EINVAL)
                        FAIL_AT("cursor \"%s\": expected -EINVAL, got %d", bad[i], r);
        }
        ASSERT_ERR(store_skill_version_list(s, "nb", NULL, "na/a/1", 1, &items, &n, NULL), EINVAL);
        ASSERT_ERR(store_skill_version_list(s, "na", "a", "na/zz/1", 1, &items, &n, NULL), EINVAL);
        ASSERT_ERR(store_skill_version_list(s, NULL, NULL, NULL, 1, NULL, &n, NULL), EINVAL);
}

TEST(skill_stamp_changes) {
        _cleanup_store_ Store *s = test_open(), *t = test_open();
        test_artifact(s, 1);
        int64_t st = stamp(s);
        ASSERT_EQ_INT(stamp(t), st);
        add(s, "ns", "sk");
        int64_t st1 = stamp(t);                                 /* seen by the other handle */
        ASSERT_TRUE(st1 != st);
        ASSERT_EQ_INT(stamp(s), st1);
        add(t, "ns", "sk");
        int64_t st2 = stamp(s);
        ASSERT_TRUE(st2 != st1);

        /* reads and refusals leave it */
        StoreSkillVersion *items = NULL;
        size_t n = 0;
        ASSERT_OK(store_skill_version_list(s, NULL, NULL, NULL, 10, &items, &n, NULL));
        store_skill_version_array_free(items, n);
        ASSERT_EQ_INT(get_version(s, "ns", "sk", -1), 2);
        ASSERT_ERR(store_skill_version_set_state(s, "ns", "sk", 9, "promoted", NULL, 0), ENOENT);
        ASSERT_ERR(store_skill_version_set_state(s, "ns", "sk", 1, "candidate", NULL, 0), EINVAL);
        ASSERT_EQ_INT(stamp(t), st2);

        /* each state change moves it */
        ASSERT_OK(store_skill_version_set_state(t, "ns", "sk", 1, "promoted", NULL, 0));
        int64_t st3 = stamp(s);
        ASSERT_TRUE(st3 != st2);
        ASSERT_ERR(store_skill_version_set_state(s, "ns", "sk", 1, "promoted", NULL, 0), EINVAL);
        ASSERT_EQ_INT(stamp(t), st3);
        ASSERT_OK(store_skill_version_set_state(s, "ns", "sk", 1, "deprecated", NULL, 0));
        int64_t st4 = stamp(t);
        ASSERT_TRUE(st4 != st3 && st4 != st2 && st4 != st1);

        /* function deploys are not skill changes */
        ASSERT_OK(test_deploy(s, "ns", "fn", -1, 3, NULL, NULL));
        ASSERT_EQ_INT(stamp(t), st4);
        ASSERT_ERR(store_skill_stamp(s, NULL), EINVAL);
}

/* A database made before the skill library (schema 3, with data) gains
 * migration 4 on open and keeps what it had. */
TEST(skill_migration_from_3) {
        {
                _cleanup_store_ Store *s = test_open();
                ASSERT_EQ_INT(store_schema_version(s), 5);
                ASSERT_OK(test_deploy(s, "default", "fn", -1, 1, NULL, NULL));
        }
        /* back to schema 3: the later migrations' tables go too */
        test_raw_exec("DROP TABLE sessions; DROP TABLE skill_stamp; DROP TABLE skill_versions;"
                      " DELETE FROM schema_migrations WHERE version >= 4");
        _cleanup_store_ Store *s = test_open();
        ASSERT_EQ_INT(store_schema_version(s), 5);
        ASSERT_EQ_INT(test_raw_int("SELECT COUNT(*) FROM functions"), 1);
        ASSERT_EQ_INT(stamp(s), 0);
        ASSERT_EQ_INT(add(s, "default", "sk"), 1);
        ASSERT_EQ_INT(stamp(s), 1);
        /* the state column takes only the three states, whoever writes */
        ASSERT_EQ_INT(test_raw_int(test_is_pg()
                ? "SELECT COUNT(*) FROM pg_constraint WHERE conname = 'skill_versions_state_check'"
                : "SELECT COUNT(*) FROM sqlite_master WHERE name = 'skill_versions'"
                  " AND sql LIKE '%CHECK (state IN (''candidate'', ''promoted'', ''deprecated''))%'"), 1);
        ASSERT_EQ_INT(get_version(s, "default", "sk", 1), 1);
}
