/* tests/store/conformance.c: the store's contract (lib/store.h), checked the
 * same way against SQLite and PostgreSQL: migrations, deploys and revision
 * numbering, optimistic concurrency, racing writers in several processes and
 * threads, traffic, delete, pagination, artifacts, tokens, nodes, and
 * durability across kill -9. */
#define _GNU_SOURCE
#include "store_test.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/util.h"

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

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

static void store_function_clearp(StoreFunction *f) {
        store_function_clear(f);
}

static void store_revision_clearp(StoreRevision *r) {
        store_revision_clear(r);
}

/* Fork n children that each run fn(i); fail unless all exit 0. */
static void run_children(unsigned n, void (*fn)(unsigned i)) {
        pid_t pids[64];
        for (unsigned i = 0; i < n; i++) {
                fflush(NULL);
                pids[i] = fork();
                if (pids[i] < 0)
                        FAIL_AT("fork: %s", strerror(errno));
                if (pids[i] == 0) {
                        fn(i);
                        _exit(0);
                }
        }
        unsigned bad = 0;
        for (unsigned i = 0; i < n; i++) {
                int st;
                if (waitpid(pids[i], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
                        bad++;
        }
        ASSERT_EQ_UINT(bad, 0);
}

/* ---- open and migrations -------------------------------------------------- */

TEST(open_creates_schema) {
        _cleanup_store_ Store *s = test_open();
        ASSERT_EQ_STR(store_backend(s), test_is_pg() ? "postgres" : "sqlite");
        int v = store_schema_version(s);
        ASSERT_TRUE(v >= 1);
        ASSERT_EQ_INT(test_raw_int("SELECT COUNT(*) FROM schema_migrations"), v);
        ASSERT_EQ_INT(test_raw_int("SELECT MAX(version) FROM schema_migrations"), v);
        ASSERT_EQ_INT(test_raw_int("SELECT COUNT(*) FROM functions"), 0);
}

TEST(migrations_idempotent) {
        Store *s = test_open();
        int v = store_schema_version(s);
        int64_t applied = test_raw_int("SELECT MAX(applied_ms) FROM schema_migrations");
        store_close(s);
        for (int i = 0; i < 3; i++) {
                int64_t t0 = test_now_us();
                s = test_open();
                int64_t us = test_now_us() - t0;
                ASSERT_EQ_INT(store_schema_version(s), v);
                store_close(s);
                if (us > 500000)
                        FAIL_AT("reopening a migrated store took %jd ms", (intmax_t) us / 1000);
        }
        ASSERT_EQ_INT(test_raw_int("SELECT COUNT(*) FROM schema_migrations"), v);
        ASSERT_EQ_INT(test_raw_int("SELECT MAX(applied_ms) FROM schema_migrations"), applied);
}

static void open_child(unsigned i) {
        (void) i;
        _cleanup_store_ Store *s = test_open();
        ASSERT_TRUE(store_schema_version(s) >= 1);
        ASSERT_OK(test_deploy(s, "default", "hello", -1, 1, NULL, NULL));
}

/* Several controllers starting on a new database at once: one migrates,
 * the others wait and find the work done. */
TEST(migrations_concurrent_open) {
        run_children(6, open_child);
        _cleanup_store_ Store *s = test_open();
        ASSERT_EQ_INT(test_raw_int("SELECT COUNT(*) FROM schema_migrations"), store_schema_version(s));
        StoreFunction f _cleanup_(store_function_clearp) = {};
        ASSERT_OK(store_function_get(s, "default", "hello", &f));
        ASSERT_EQ_INT(f.latest_revision, 1);
}

TEST(schema_newer_refused) {
        Store *s = test_open();
        store_close(s);
        test_raw_exec("INSERT INTO schema_migrations (version, applied_ms) VALUES (999, 0)");
        s = NULL;
        ASSERT_ERR(store_open(test_url(), &s), EPROTO);
        ASSERT_TRUE(s == NULL);
        ASSERT_TRUE(strstr(store_last_error(NULL), "999") != NULL);
}

TEST(open_bad_url) {
        Store *s = NULL;
        ASSERT_ERR(store_open("mysql://x", &s), EINVAL);
        ASSERT_ERR(store_open("sqlite:", &s), EINVAL);
        ASSERT_TRUE(store_open("sqlite:/nonexistent-dir/x/y.db", &s) < 0);
        ASSERT_TRUE(strlen(store_last_error(NULL)) > 0);
        ASSERT_TRUE(s == NULL);
}

TEST(sqlite_settings) {
        SKIP_UNLESS(!test_is_pg());
        _cleanup_store_ Store *s = test_open();
        const char *path = test_url() + strlen("sqlite:");
        struct stat st;
        ASSERT_TRUE(stat(path, &st) == 0);
        ASSERT_EQ_UINT(st.st_mode & 0777, 0600);
        ASSERT_OK(test_deploy(s, "default", "hello", -1, 1, NULL, NULL));
        char wal[4200];
        snprintf(wal, sizeof wal, "%s-wal", path);
        ASSERT_TRUE(stat(wal, &st) == 0);
        ASSERT_EQ_UINT(st.st_mode & 0777, 0600);
        /* journal_mode is stored in the file; another connection sees WAL */
        ASSERT_EQ_INT(test_raw_int("SELECT journal_mode = 'wal' FROM pragma_journal_mode"), 1);
}

/* ---- deploys ------------------------------------------------------------- */

TEST(deploy_creates_revisions) {
        _cleanup_store_ Store *s = test_open();
        StoreDeployResult res;
        for (unsigned i = 1; i <= 3; i++) {
                ASSERT_OK(test_deploy(s, "default", "wordcount", -1, i, NULL, &res));
                ASSERT_EQ_INT(res.revision, i);
                ASSERT_TRUE(res.revision_created);
                ASSERT_EQ_INT(res.function_created, i == 1);
                ASSERT_EQ_INT(res.resource_version, i);
        }
        StoreFunction f _cleanup_(store_function_clearp) = {};
        ASSERT_OK(store_function_get(s, "default", "wordcount", &f));
        ASSERT_EQ_STR(f.namespace_, "default");
        ASSERT_EQ_STR(f.name, "wordcount");
        ASSERT_EQ_INT(f.resource_version, 3);
        ASSERT_EQ_INT(f.latest_revision, 3);
        ASSERT_TRUE(strstr(f.spec_json, "\"spec\":3") != NULL);
        ASSERT_EQ_STR(f.traffic_json, "[{\"latestRevision\":true,\"percent\":100}]");
        ASSERT_TRUE(f.created_ms > 0 && f.updated_ms >= f.created_ms);

        StoreRevision r _cleanup_(store_revision_clearp) = {};
        ASSERT_OK(store_revision_get(s, "default", "wordcount", 2, &r));
        char code[72];
        test_digest(code, 2);
        ASSERT_EQ_INT(r.number, 2);
        ASSERT_EQ_STR(r.function, "wordcount");
        ASSERT_EQ_STR(r.spec_json, "{\"spec\":2}");
        ASSERT_EQ_STR(r.code_digest, code);
        ASSERT_EQ_UINT(strlen(r.spec_digest), 64);
        ASSERT_TRUE(r.created_ms > 0);
        ASSERT_ERR(store_revision_get(s, "default", "wordcount", 4, &r), ENOENT);
        ASSERT_ERR(store_function_get(s, "other", "wordcount", &f), ENOENT);
}

TEST(deploy_unchanged_creates_none) {
        _cleanup_store_ Store *s = test_open();
        StoreDeployResult res;
        ASSERT_OK(test_deploy(s, "default", "fn", -1, 7, NULL, &res));
        ASSERT_OK(test_deploy(s, "default", "fn", -1, 7, NULL, &res));
        ASSERT_TRUE(!res.revision_created && !res.function_created);
        ASSERT_EQ_INT(res.revision, 1);
        ASSERT_EQ_INT(res.resource_version, 1);       /* nothing changed: no bump */
        /* the same code and revision spec with other traffic: no revision,
         * but the function changed */
        const char *traffic = "[{\"revision\":\"fn-00001\",\"percent\":100,\"tag\":\"stable\"}]";
        ASSERT_OK(test_deploy(s, "default", "fn", 1, 7, traffic, &res));
        ASSERT_TRUE(!res.revision_created);
        ASSERT_EQ_INT(res.revision, 1);
        ASSERT_EQ_INT(res.resource_version, 2);
        StoreFunction f _cleanup_(store_function_clearp) = {};
        ASSERT_OK(store_function_get(s, "default", "fn", &f));
        ASSERT_EQ_STR(f.traffic_json, traffic);
        ASSERT_EQ_INT(test_raw_int("SELECT COUNT(*) FROM revisions"), 1);
        /* back to an earlier spec: a new revision (only the latest compares) */
        ASSERT_OK(test_deploy(s, "default", "fn", -1, 8, NULL, &res));
        ASSERT_OK(test_deploy(s, "default", "fn", -1, 7, NULL, &res));
        ASSERT_TRUE(res.revision_created);
        ASSERT_EQ_INT(res.revision, 3);
}

TEST(deploy_expected_version) {
        _cleanup_store_ Store *s = test_open();
        StoreDeployResult res = {};
        ASSERT_ERR(test_deploy(s, "default", "fn", 3, 1, NULL, &res), ESTALE);     /* absent is version 0 */
        ASSERT_OK(test_deploy(s, "default", "fn", 0, 1, NULL, &res));
        ASSERT_TRUE(res.function_created);
        ASSERT_ERR(test_deploy(s, "default", "fn", 0, 2, NULL, &res), ESTALE);     /* exists already */
        ASSERT_ERR(test_deploy(s, "default", "fn", 2, 2, NULL, &res), ESTALE);
        ASSERT_OK(test_deploy(s, "default", "fn", 1, 2, NULL, &res));
        ASSERT_EQ_INT(res.resource_version, 2);
        ASSERT_ERR(test_deploy(s, "default", "fn", 1, 3, NULL, &res), ESTALE);
        /* a refused deploy leaves no trace */
        StoreFunction f _cleanup_(store_function_clearp) = {};
        ASSERT_OK(store_function_get(s, "default", "fn", &f));
        ASSERT_EQ_INT(f.resource_version, 2);
        ASSERT_EQ_INT(f.latest_revision, 2);
        ASSERT_EQ_INT(test_raw_int("SELECT COUNT(*) FROM revisions"), 2);
}

TEST(deploy_missing_artifact) {
        _cleanup_store_ Store *s = test_open();
        char code[72], digest[65];
        test_digest(code, 99);
        snprintf(digest, sizeof digest, "%064x", 99);
        StoreDeploy d = { "default", "fn", -1, "{}", "[]", "{}", digest, code };
        StoreDeployResult res = { .revision = 42 };
        ASSERT_ERR(store_deploy(s, &d, &res), ENOENT);
        ASSERT_EQ_INT(res.revision, 42);      /* untouched on failure */
        StoreFunction f = {};
        ASSERT_ERR(store_function_get(s, "default", "fn", &f), ENOENT);
        ASSERT_EQ_INT(test_raw_int("SELECT COUNT(*) FROM functions"), 0);
        ASSERT_EQ_INT(test_raw_int("SELECT COUNT(*) FROM revisions"), 0);
        test_artifact(s, 99);
        ASSERT_OK(store_deploy(s, &d, &res));
        ASSERT_EQ_INT(res.revision, 1);
}

TEST(deploy_invalid_arguments) {
        _cleanup_store_ Store *s = test_open();
        char code[72], digest[65];
        test_artifact(s, 1);
        test_digest(code, 1);
        snprintf(digest, sizeof digest, "%064x", 1);
        StoreDeploy ok = { "default", "fn", -1, "{}", "[]", "{}", digest, code }, d;
        d = ok, d.name = "";
        ASSERT_ERR(store_deploy(s, &d, NULL), EINVAL);
        d = ok, d.name = "a/b";
        ASSERT_ERR(store_deploy(s, &d, NULL), EINVAL);
        d = ok, d.namespace_ = NULL;
        ASSERT_ERR(store_deploy(s, &d, NULL), EINVAL);
        d = ok, d.code_digest = "sha256:XYZ";
        ASSERT_ERR(store_deploy(s, &d, NULL), EINVAL);
        d = ok, d.spec_json = NULL;
        ASSERT_ERR(store_deploy(s, &d, NULL), EINVAL);
        d = ok, d.expected_version = -2;
        ASSERT_ERR(store_deploy(s, &d, NULL), EINVAL);
        ASSERT_ERR(store_deploy(s, NULL, NULL), EINVAL);
        ASSERT_OK(store_deploy(s, &ok, NULL));
}

/* ---- racing writers ------------------------------------------------------ */

#define RACE_WRITERS    4
#define RACE_DEPLOYS    25

static void race_any_child(unsigned i) {
        _cleanup_store_ Store *s = test_open();
        for (unsigned k = 0; k < RACE_DEPLOYS; k++) {
                StoreDeployResult res;
                ASSERT_OK(test_deploy(s, "default", "race", -1, 1000 * (i + 1) + k, NULL, &res));
                ASSERT_TRUE(res.revision_created);
        }
}

/* Every revision of a function exists, numbered 1..n without a gap, and
 * their spec digests are n distinct values. */
static void assert_revisions_contiguous(Store *s, const char *name, int64_t n) {
        StoreFunction f _cleanup_(store_function_clearp) = {};
        ASSERT_OK(store_function_get(s, "default", name, &f));
        ASSERT_EQ_INT(f.latest_revision, n);
        StoreRevision *revs = NULL;
        size_t nrevs = 0;
        ASSERT_OK(store_revision_list(s, "default", name, 0, STORE_LIST_MAX, &revs, &nrevs));
        ASSERT_EQ_UINT(nrevs, n);
        for (size_t i = 0; i < nrevs; i++) {
                ASSERT_EQ_INT(revs[i].number, n - (int64_t) i);
                for (size_t j = 0; j < i; j++)
                        if (strcmp(revs[i].spec_digest, revs[j].spec_digest) == 0)
                                FAIL_AT("revisions %jd and %jd have the same digest",
                                        (intmax_t) revs[i].number, (intmax_t) revs[j].number);
        }
        store_revision_array_free(revs, nrevs);
}

TEST(deploy_race_serialised) {
        run_children(RACE_WRITERS, race_any_child);
        _cleanup_store_ Store *s = test_open();
        assert_revisions_contiguous(s, "race", RACE_WRITERS * RACE_DEPLOYS);
}

static void race_optimistic_child(unsigned i) {
        _cleanup_store_ Store *s = test_open();
        for (unsigned k = 0; k < 10; k++) {
                for (unsigned tries = 0;; tries++) {
                        StoreFunction f = {};
                        int64_t version = 0;
                        int r = store_function_get(s, "default", "opt", &f);
                        if (r >= 0)
                                version = f.resource_version;
                        else if (r != -ENOENT)
                                FAIL_AT("store_function_get: %s", strerror(-r));
                        store_function_clear(&f);
                        r = test_deploy(s, "default", "opt", version, 1000 * (i + 1) + k, NULL, NULL);
                        if (r >= 0)
                                break;
                        if (r != -ESTALE || tries > 1000)
                                FAIL_AT("deploy: %s", strerror(-r));
                }
        }
}

/* The CLI's way: read the version, deploy with it, re-read on 409. */
TEST(deploy_race_optimistic) {
        run_children(RACE_WRITERS, race_optimistic_child);
        _cleanup_store_ Store *s = test_open();
        assert_revisions_contiguous(s, "opt", RACE_WRITERS * 10);
}

static void race_create_child(unsigned i) {
        _cleanup_store_ Store *s = test_open();
        StoreDeployResult res;
        ASSERT_OK(test_deploy(s, "default", "new", -1, 100 + i, NULL, &res));
}

/* First deploys of one function racing: on PostgreSQL there is no row to
 * lock yet, so this takes the insert-conflict path. */
TEST(deploy_race_create) {
        run_children(8, race_create_child);
        _cleanup_store_ Store *s = test_open();
        assert_revisions_contiguous(s, "new", 8);
        ASSERT_EQ_INT(test_raw_int("SELECT COUNT(*) FROM functions"), 1);
        ASSERT_EQ_INT(test_raw_int("SELECT resource_version FROM functions"), 8);
}

typedef struct ThreadArg {
        Store *s;
        unsigned i;
} ThreadArg;

static void *thread_deployer(void *p) {
        ThreadArg *a = p;
        for (unsigned k = 0; k < RACE_DEPLOYS; k++) {
                StoreFunction *items = NULL;
                size_t n = 0;
                ASSERT_OK(test_deploy(a->s, "default", a->i % 2 ? "odd" : "even", -1, 1000 * (a->i + 1) + k,
                                      NULL, NULL));
                ASSERT_OK(store_function_list(a->s, NULL, NULL, 10, &items, &n, NULL));
                store_function_array_free(items, n);
        }
        return NULL;
}

/* One handle shared by threads, as the controller's HTTP threads do. */
TEST(threads_share_handle) {
        _cleanup_store_ Store *s = test_open();
        pthread_t th[4];
        ThreadArg args[4];
        for (unsigned i = 0; i < 4; i++) {
                args[i] = (ThreadArg) { s, i };
                ASSERT_TRUE(pthread_create(&th[i], NULL, thread_deployer, &args[i]) == 0);
        }
        for (unsigned i = 0; i < 4; i++)
                pthread_join(th[i], NULL);
        assert_revisions_contiguous(s, "even", 2 * RACE_DEPLOYS);
        assert_revisions_contiguous(s, "odd", 2 * RACE_DEPLOYS);
}

/* ---- traffic, delete ----------------------------------------------------- */

TEST(traffic_set) {
        _cleanup_store_ Store *s = test_open();
        int64_t v = 0;
        ASSERT_OK(test_deploy(s, "default", "fn", -1, 1, NULL, NULL));
        ASSERT_OK(test_deploy(s, "default", "fn", -1, 2, NULL, NULL));
        const char *split = "[{\"revision\":\"fn-00001\",\"percent\":50},{\"latestRevision\":true,\"percent\":50}]";
        ASSERT_ERR(store_traffic_set(s, "default", "fn", 1, split, &v), ESTALE);
        ASSERT_OK(store_traffic_set(s, "default", "fn", 2, split, &v));
        ASSERT_EQ_INT(v, 3);
        ASSERT_OK(store_traffic_set(s, "default", "fn", -1, split, &v));
        ASSERT_EQ_INT(v, 3);                            /* unchanged: no bump */
        StoreFunction f _cleanup_(store_function_clearp) = {};
        ASSERT_OK(store_function_get(s, "default", "fn", &f));
        ASSERT_EQ_STR(f.traffic_json, split);
        ASSERT_EQ_INT(f.resource_version, 3);
        ASSERT_EQ_INT(f.latest_revision, 2);
        ASSERT_ERR(store_traffic_set(s, "default", "nope", -1, split, &v), ENOENT);
        ASSERT_ERR(store_traffic_set(s, "default", "fn", -1, NULL, &v), EINVAL);
}

TEST(function_delete) {
        _cleanup_store_ Store *s = test_open();
        ASSERT_OK(test_deploy(s, "default", "fn", -1, 1, NULL, NULL));
        ASSERT_OK(test_deploy(s, "default", "fn", -1, 2, NULL, NULL));
        ASSERT_OK(test_deploy(s, "default", "keep", -1, 1, NULL, NULL));
        ASSERT_ERR(store_function_delete(s, "default", "fn", 1), ESTALE);
        ASSERT_OK(store_function_delete(s, "default", "fn", 2));
        StoreFunction f _cleanup_(store_function_clearp) = {};
        StoreRevision r = {};
        StoreRevision *revs = NULL;
        size_t n = 0;
        ASSERT_ERR(store_function_get(s, "default", "fn", &f), ENOENT);
        ASSERT_ERR(store_revision_get(s, "default", "fn", 1, &r), ENOENT);
        ASSERT_ERR(store_revision_list(s, "default", "fn", 0, 10, &revs, &n), ENOENT);
        ASSERT_ERR(store_function_delete(s, "default", "fn", -1), ENOENT);
        ASSERT_EQ_INT(test_raw_int("SELECT COUNT(*) FROM revisions"), 1);
        /* artifacts are shared and stay */
        char code[72];
        test_digest(code, 2);
        ASSERT_EQ_INT(store_artifact_exists(s, code), 1);
        /* a function made again starts over at revision 1 */
        StoreDeployResult res;
        ASSERT_OK(test_deploy(s, "default", "fn", 0, 3, NULL, &res));
        ASSERT_TRUE(res.function_created);
        ASSERT_EQ_INT(res.revision, 1);
        ASSERT_EQ_INT(res.resource_version, 1);
}

/* ---- lists --------------------------------------------------------------- */

#define PAGE_FUNCTIONS 2500

static void page_child(unsigned i) {
        static const char *const ns[] = { "default", "team-a", "team-b" };
        _cleanup_store_ Store *s = test_open();
        char name[32];
        for (unsigned k = i; k < PAGE_FUNCTIONS; k += 4) {
                snprintf(name, sizeof name, "fn-%05u", k * 7919 % PAGE_FUNCTIONS);
                ASSERT_OK(test_deploy(s, ns[k % 3], name, -1, 1, NULL, NULL));
        }
}

static size_t walk_pages(Store *s, const char *ns, size_t limit, int64_t *ret_max_us) {
        _cleanup_free_ char *cursor = NULL, *last = NULL;
        size_t total = 0;
        *ret_max_us = 0;
        for (;;) {
                StoreFunction *items = NULL;
                size_t n = 0;
                char *next = NULL;
                int64_t t0 = test_now_us();
                ASSERT_OK(store_function_list(s, ns, cursor, limit, &items, &n, &next));
                int64_t us = test_now_us() - t0;
                if (us > *ret_max_us)
                        *ret_max_us = us;
                ASSERT_TRUE(n <= limit);
                ASSERT_TRUE(next == NULL || n == limit);
                for (size_t i = 0; i < n; i++) {
                        char *key;
                        ASSERT_TRUE(asprintf(&key, "%s/%s", items[i].namespace_, items[i].name) > 0);
                        if (ns)
                                ASSERT_EQ_STR(items[i].namespace_, ns);
                        if (last && strcmp(last, key) >= 0)
                                FAIL_AT("out of order: %s after %s", key, last);
                        free(last);
                        last = key;
                }
                total += n;
                store_function_array_free(items, n);
                free(cursor);
                cursor = next;
                if (!next)
                        return total;
        }
}

TEST(function_list_pagination) {
        run_children(4, page_child);
        _cleanup_store_ Store *s = test_open();
        int64_t max_us;
        ASSERT_EQ_UINT(walk_pages(s, NULL, 100, &max_us), PAGE_FUNCTIONS);
        if (max_us > 100000 && !RUNNING_ON_VALGRIND)
                FAIL_AT("a page of 100 took %jd ms", (intmax_t) max_us / 1000);
        ASSERT_EQ_UINT(walk_pages(s, NULL, 999, &max_us), PAGE_FUNCTIONS);
        ASSERT_EQ_UINT(walk_pages(s, NULL, STORE_LIST_MAX, &max_us), PAGE_FUNCTIONS);
        size_t a = walk_pages(s, "team-a", 77, &max_us);
        size_t b = walk_pages(s, "team-b", 1000, &max_us);
        size_t d = walk_pages(s, "default", 1, &max_us);
        ASSERT_EQ_UINT(a + b + d, PAGE_FUNCTIONS);
        ASSERT_EQ_UINT(walk_pages(s, "nobody", 10, &max_us), 0);
}

TEST(function_list_arguments) {
        _cleanup_store_ Store *s = test_open();
        StoreFunction *items = NULL;
        size_t n = 7;
        char *next = (char *) "x";
        ASSERT_OK(store_function_list(s, NULL, NULL, 10, &items, &n, &next));
        ASSERT_EQ_UINT(n, 0);
        ASSERT_TRUE(next == NULL);
        store_function_array_free(items, n);
        ASSERT_ERR(store_function_list(s, NULL, NULL, 0, &items, &n, &next), EINVAL);
        ASSERT_ERR(store_function_list(s, NULL, NULL, STORE_LIST_MAX + 1, &items, &n, &next), EINVAL);
        ASSERT_ERR(store_function_list(s, "team-a", "team-b/x", 10, &items, &n, &next), EINVAL);
        ASSERT_ERR(store_function_list(s, NULL, "no-slash", 10, &items, &n, &next), EINVAL);
        /* a cursor past a deleted item still works: it is a position, not a row */
        ASSERT_OK(test_deploy(s, "default", "b", -1, 1, NULL, NULL));
        ASSERT_OK(test_deploy(s, "default", "c", -1, 1, NULL, NULL));
        ASSERT_OK(store_function_list(s, "default", "default/a", 1, &items, &n, &next));
        ASSERT_EQ_UINT(n, 1);
        ASSERT_EQ_STR(items[0].name, "b");
        ASSERT_EQ_STR(next, "default/b");
        store_function_array_free(items, n);
        free(next);
}

TEST(revision_list_pages) {
        _cleanup_store_ Store *s = test_open();
        for (unsigned i = 1; i <= 5; i++)
                ASSERT_OK(test_deploy(s, "default", "fn", -1, i, NULL, NULL));
        StoreRevision *revs = NULL;
        size_t n = 0;
        ASSERT_OK(store_revision_list(s, "default", "fn", 0, 2, &revs, &n));
        ASSERT_EQ_UINT(n, 2);
        ASSERT_EQ_INT(revs[0].number, 5);
        ASSERT_EQ_INT(revs[1].number, 4);
        store_revision_array_free(revs, n);
        ASSERT_OK(store_revision_list(s, "default", "fn", 4, 10, &revs, &n));
        ASSERT_EQ_UINT(n, 3);
        ASSERT_EQ_INT(revs[0].number, 3);
        ASSERT_EQ_INT(revs[2].number, 1);
        ASSERT_EQ_STR(revs[2].spec_json, "{\"spec\":1}");
        store_revision_array_free(revs, n);
        ASSERT_OK(store_revision_list(s, "default", "fn", 1, 10, &revs, &n));
        ASSERT_EQ_UINT(n, 0);
        store_revision_array_free(revs, n);
        ASSERT_ERR(store_revision_list(s, "default", "fn", 0, 0, &revs, &n), EINVAL);
}

/* ---- artifacts ----------------------------------------------------------- */

TEST(artifacts) {
        _cleanup_store_ Store *s = test_open();
        char digest[72];
        test_digest(digest, 0xabc);
        size_t len = 3u << 20;
        _cleanup_free_ unsigned char *data = malloc(len);
        for (size_t i = 0; i < len; i++)
                data[i] = (unsigned char) (i * 131 + (i >> 9));     /* zero bytes included */
        ASSERT_EQ_INT(store_artifact_exists(s, digest), 0);
        void *got = NULL;
        size_t got_len = 0;
        ASSERT_ERR(store_artifact_get(s, digest, &got, &got_len), ENOENT);
        ASSERT_OK(store_artifact_put(s, digest, data, len));
        ASSERT_EQ_INT(store_artifact_exists(s, digest), 1);
        ASSERT_OK(store_artifact_put(s, digest, data, len));       /* idempotent */
        ASSERT_OK(store_artifact_get(s, digest, &got, &got_len));
        ASSERT_EQ_UINT(got_len, len);
        ASSERT_TRUE(memcmp(got, data, len) == 0);
        free(got);
        ASSERT_EQ_INT(test_raw_int("SELECT COUNT(*) FROM artifacts"), 1);

        char empty[72];
        test_digest(empty, 0);
        ASSERT_OK(store_artifact_put(s, empty, NULL, 0));
        ASSERT_OK(store_artifact_get(s, empty, &got, &got_len));
        ASSERT_EQ_UINT(got_len, 0);
        free(got);

        char big[72];
        test_digest(big, 0xb16);
        ASSERT_ERR(store_artifact_put(s, big, data, (size_t) STORE_ARTIFACT_MAX + 1), E2BIG);
        ASSERT_EQ_INT(store_artifact_exists(s, big), 0);
        ASSERT_ERR(store_artifact_put(s, "sha256:abc", data, 1), EINVAL);
        ASSERT_ERR(store_artifact_put(s, "md5:00", data, 1), EINVAL);
        ASSERT_ERR(store_artifact_exists(s, "sha256:ABCDEF"), EINVAL);
}

/* ---- tokens -------------------------------------------------------------- */

TEST(tokens) {
        _cleanup_store_ Store *s = test_open();
        int64_t count = -1;
        ASSERT_OK(store_token_count(s, &count));
        ASSERT_EQ_INT(count, 0);
        StoreToken a = { (char *) "0123456789abcdef", (char *) "aa", (char *) "admin", (char *) "*",
                         (char *) "first start", 1000, 0 };
        StoreToken b = { (char *) "fedcba9876543210", (char *) "bb", (char *) "developer",
                         (char *) "team-a,team-b", NULL, 2000, 0 };
        ASSERT_OK(store_token_create(s, &a));
        ASSERT_OK(store_token_create(s, &b));
        ASSERT_ERR(store_token_create(s, &a), EEXIST);
        StoreToken t = {};
        ASSERT_OK(store_token_get(s, b.id, &t));
        ASSERT_EQ_STR(t.secret_hash, "bb");
        ASSERT_EQ_STR(t.role, "developer");
        ASSERT_EQ_STR(t.namespaces, "team-a,team-b");
        ASSERT_EQ_STR(t.description, "");
        ASSERT_EQ_INT(t.created_ms, 2000);
        ASSERT_EQ_INT(t.revoked_ms, 0);
        store_token_clear(&t);
        ASSERT_ERR(store_token_get(s, "nope", &t), ENOENT);

        ASSERT_OK(store_token_revoke(s, a.id));
        ASSERT_OK(store_token_get(s, a.id, &t));
        int64_t revoked = t.revoked_ms;
        ASSERT_TRUE(revoked > 0);
        store_token_clear(&t);
        ASSERT_OK(store_token_revoke(s, a.id));                    /* idempotent */
        ASSERT_OK(store_token_get(s, a.id, &t));
        ASSERT_EQ_INT(t.revoked_ms, revoked);
        store_token_clear(&t);
        ASSERT_ERR(store_token_revoke(s, "nope"), ENOENT);

        StoreToken *list = NULL;
        size_t n = 0;
        ASSERT_OK(store_token_list(s, &list, &n));
        ASSERT_EQ_UINT(n, 2);
        ASSERT_EQ_STR(list[0].id, a.id);
        ASSERT_EQ_STR(list[0].description, "first start");
        ASSERT_TRUE(list[0].revoked_ms > 0);
        ASSERT_EQ_STR(list[1].id, b.id);
        store_token_array_free(list, n);
        ASSERT_OK(store_token_count(s, &count));
        ASSERT_EQ_INT(count, 2);                                   /* revoked ones count */
}

/* ---- nodes --------------------------------------------------------------- */

TEST(nodes) {
        _cleanup_store_ Store *s = test_open();
        StoreNode n1 = { (char *) "node-b", (char *) "{\"arch\":\"x86_64\"}", (char *) "{\"gpus\":0}",
                         (char *) "ready", 5000, 4000 };
        StoreNode n2 = { (char *) "node-a", (char *) "{}", (char *) "{}", (char *) "ready", 0, 0 };
        ASSERT_OK(store_node_put(s, &n1));
        ASSERT_OK(store_node_put(s, &n2));
        StoreNode again = n1;
        again.labels_json = (char *) "{\"arch\":\"aarch64\"}";
        again.state = (char *) "lost";
        again.heartbeat_ms = 9000;
        again.registered_ms = 8000;
        ASSERT_OK(store_node_put(s, &again));
        StoreNode *list = NULL;
        size_t n = 0;
        ASSERT_OK(store_node_list(s, &list, &n));
        ASSERT_EQ_UINT(n, 2);
        ASSERT_EQ_STR(list[0].name, "node-a");
        ASSERT_TRUE(list[0].heartbeat_ms > 0 && list[0].registered_ms > 0);   /* 0: now */
        ASSERT_EQ_STR(list[1].name, "node-b");
        ASSERT_EQ_STR(list[1].labels_json, "{\"arch\":\"aarch64\"}");
        ASSERT_EQ_STR(list[1].capacity_json, "{\"gpus\":0}");
        ASSERT_EQ_STR(list[1].state, "lost");
        ASSERT_EQ_INT(list[1].heartbeat_ms, 9000);
        ASSERT_EQ_INT(list[1].registered_ms, 4000);                 /* the first registration stays */
        store_node_array_free(list, n);
        ASSERT_OK(store_node_delete(s, "node-a"));
        ASSERT_ERR(store_node_delete(s, "node-a"), ENOENT);
        ASSERT_OK(store_node_list(s, &list, &n));
        ASSERT_EQ_UINT(n, 1);
        store_node_array_free(list, n);
        ASSERT_ERR(store_node_put(s, &(StoreNode) { (char *) "x", NULL, (char *) "{}", (char *) "ready", 0, 0 }),
                   EINVAL);
}

/* ---- durability and connections ------------------------------------------ */

/* A child deploys in a loop and reports each acknowledged revision on a
 * pipe; it is killed with SIGKILL mid-stream. Every acknowledged revision
 * must be there when the store is opened again. */
TEST(durability_kill9) {
        int fds[2];
        ASSERT_TRUE(pipe(fds) == 0);
        fflush(NULL);
        pid_t pid = fork();
        ASSERT_TRUE(pid >= 0);
        if (pid == 0) {
                close(fds[0]);
                Store *s = test_open();
                for (unsigned k = 1;; k++) {
                        StoreDeployResult res;
                        if (test_deploy(s, "default", "durable", -1, k, NULL, &res) < 0)
                                _exit(1);
                        int64_t rev = res.revision;
                        if (write(fds[1], &rev, sizeof rev) != sizeof rev)
                                _exit(1);
                }
        }
        close(fds[1]);
        int64_t acked = 0, rev;
        while (acked < 20 && read(fds[0], &rev, sizeof rev) == sizeof rev)
                acked = rev;
        kill(pid, SIGKILL);
        while (read(fds[0], &rev, sizeof rev) == sizeof rev)    /* acknowledged before the kill */
                acked = rev;
        close(fds[0]);
        int st;
        waitpid(pid, &st, 0);
        ASSERT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
        ASSERT_TRUE(acked >= 20);

        _cleanup_store_ Store *s = test_open();
        StoreFunction f _cleanup_(store_function_clearp) = {};
        ASSERT_OK(store_function_get(s, "default", "durable", &f));
        ASSERT_TRUE(f.latest_revision >= acked);
        StoreRevision r _cleanup_(store_revision_clearp) = {};
        ASSERT_OK(store_revision_get(s, "default", "durable", acked, &r));
        /* and the store still works after the crash */
        ASSERT_OK(test_deploy(s, "default", "durable", -1, 100000, NULL, NULL));
}

/* The server ends our session (a restart, a failover): the next operation
 * reconnects once and succeeds. */
TEST(pg_reconnect) {
        SKIP_UNLESS(test_is_pg());
        _cleanup_store_ Store *s = test_open();
        ASSERT_OK(test_deploy(s, "default", "fn", -1, 1, NULL, NULL));
        test_raw_exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                      " WHERE application_name = 'fnbox' AND pid <> pg_backend_pid()");
        StoreFunction f _cleanup_(store_function_clearp) = {};
        ASSERT_OK(store_function_get(s, "default", "fn", &f));
        ASSERT_EQ_INT(f.latest_revision, 1);
        test_raw_exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                      " WHERE application_name = 'fnbox' AND pid <> pg_backend_pid()");
        ASSERT_OK(test_deploy(s, "default", "fn", -1, 2, NULL, NULL));
        ASSERT_EQ_INT(store_schema_version(s), test_raw_int("SELECT MAX(version) FROM schema_migrations"));
}

/* Open descriptors below 1024, as a set. */
static void fds_open(bool ret[1024]) {
        for (int fd = 0; fd < 1024; fd++)
                ret[fd] = fcntl(fd, F_GETFD) >= 0;
}

/* Every descriptor the store opens (database file, WAL, shm, socket) is
 * close-on-exec: the controller forks helpers that must not inherit them. */
TEST(fds_cloexec) {
        static bool before[1024], after[1024];
        fds_open(before);
        _cleanup_store_ Store *s = test_open();
        ASSERT_OK(test_deploy(s, "default", "fn", -1, 1, NULL, NULL));
        fds_open(after);
        unsigned checked = 0;
        for (int fd = 0; fd < 1024; fd++) {
                if (!after[fd] || before[fd])
                        continue;
                if (!(fcntl(fd, F_GETFD) & FD_CLOEXEC))
                        FAIL_AT("fd %d is not close-on-exec", fd);
                checked++;
        }
        ASSERT_TRUE(checked >= 1);
}

TEST(documents_too_big) {
        _cleanup_store_ Store *s = test_open();
        ASSERT_OK(test_deploy(s, "default", "fn", -1, 1, NULL, NULL));
        size_t len = (8u << 20) + 1;
        _cleanup_free_ char *doc = malloc(len + 1);
        memset(doc, 'x', len);
        doc[len] = 0;
        ASSERT_ERR(store_traffic_set(s, "default", "fn", -1, doc, NULL), E2BIG);
        StoreNode n = { (char *) "node", doc, (char *) "{}", (char *) "ready", 0, 0 };
        ASSERT_TRUE(store_node_put(s, &n) < 0);
}
