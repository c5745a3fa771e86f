/* tests/store/main.c: the store conformance runner. `store-conformance URL
 * [FILTER]` runs every test against a fresh database of URL's backend (a new
 * SQLite file per test; for PostgreSQL the public schema is dropped and made
 * again, so point it at a throwaway database), each forked with a timeout,
 * and ends with "store (BACKEND): N passed, N failed". */
#define _GNU_SOURCE
#include "store_test.h"
#include "lib/util.h"
#include "tests/unit/fork_run.h"

#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TEST_TIMEOUT_S  180

static TestCase *tests;
static const char *base_url;
static char cur_url[4200];
static bool pg;

void test_register(TestCase *t) {
        t->next = tests;
        tests = t;
}

const char *test_url(void) {
        return cur_url;
}

bool test_is_pg(void) {
        return pg;
}

int64_t test_now_us(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

const char *test_pg_conninfo(const char *url) {
        if (strstr(url, "://"))
                return url;
        return strchr(url, ':') + 1;
}

static const char *sqlite_path(const char *url) {
        const char *p = url + strlen("sqlite:");
        return strncmp(p, "//", 2) == 0 ? p + 2 : p;
}

/* ---- raw access, beside the store --------------------------------------- */

static int64_t raw_sqlite(const char *sql, bool want_int) {
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        int64_t v = 0;
        if (sqlite3_open_v2(sqlite_path(cur_url), &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
                FAIL_AT("sqlite3_open %s: %s", cur_url, sqlite3_errmsg(db));
        sqlite3_busy_timeout(db, 10000);
        if (!want_int) {
                if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
                        FAIL_AT("%s: %s", sql, sqlite3_errmsg(db));
        } else {
                if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW)
                        FAIL_AT("%s: %s", sql, sqlite3_errmsg(db));
                v = sqlite3_column_int64(st, 0);
                sqlite3_finalize(st);
        }
        sqlite3_close(db);
        return v;
}

static void quiet_notice(void *arg, const char *msg) {
        (void) arg;
        (void) msg;
}

static int64_t raw_pg(const char *url, const char *sql, bool want_int) {
        PGconn *c = PQconnectdb(test_pg_conninfo(url));
        int64_t v = 0;
        if (PQstatus(c) != CONNECTION_OK)
                FAIL_AT("connecting to %s: %s", url, PQerrorMessage(c));
        PQsetNoticeProcessor(c, quiet_notice, NULL);
        PGresult *res = PQexec(c, sql);
        ExecStatusType st = PQresultStatus(res);
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
                FAIL_AT("%s: %s", sql, PQerrorMessage(c));
        if (want_int) {
                if (PQntuples(res) < 1)
                        FAIL_AT("%s: no row", sql);
                v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        }
        PQclear(res);
        PQfinish(c);
        return v;
}

void test_raw_exec(const char *sql) {
        if (pg)
                raw_pg(cur_url, sql, false);
        else
                raw_sqlite(sql, false);
}

int64_t test_raw_int(const char *sql) {
        return pg ? raw_pg(cur_url, sql, true) : raw_sqlite(sql, true);
}

/* ---- helpers for the tests ---------------------------------------------- */

Store *test_open(void) {
        Store *s = NULL;
        int r = store_open(cur_url, &s);
        if (r < 0)
                FAIL_AT("store_open(%s): %s: %s", cur_url, strerror(-r), store_last_error(NULL));
        return s;
}

void test_digest(char ret[72], unsigned n) {
        snprintf(ret, 72, "sha256:%064x", n);
}

void test_artifact(Store *s, unsigned n) {
        char digest[72], data[64];
        test_digest(digest, n);
        int len = snprintf(data, sizeof data, "artifact %u", n);
        int r = store_artifact_put(s, digest, data, (size_t) len);
        if (r < 0)
                FAIL_AT("store_artifact_put: %s: %s", strerror(-r), store_last_error(s));
}

int test_deploy(Store *s, const char *ns, const char *name, int64_t expected, unsigned spec,
                const char *traffic, StoreDeployResult *ret) {
        char code[72], digest[72], spec_json[256], rev_json[64];
        if (!traffic)
                traffic = "[{\"latestRevision\":true,\"percent\":100}]";
        test_artifact(s, spec);
        test_digest(code, spec);
        snprintf(digest, sizeof digest, "%064x", spec);
        snprintf(spec_json, sizeof spec_json, "{\"spec\":%u,\"traffic\":%s}", spec, traffic);
        snprintf(rev_json, sizeof rev_json, "{\"spec\":%u}", spec);
        StoreDeploy d = {
                .namespace_ = ns, .name = name, .expected_version = expected,
                .spec_json = spec_json, .traffic_json = traffic, .revision_json = rev_json,
                .spec_digest = digest, .code_digest = code,
        };
        return store_deploy(s, &d, ret);
}

/* ---- the runner --------------------------------------------------------- */

static void sqlite_remove(const char *path) {
        char p[4300];
        const char *suffix[] = { "", "-wal", "-shm", "-journal" };
        for (size_t i = 0; i < ELEMENTSOF(suffix); i++) {
                snprintf(p, sizeof p, "%s%s", path, suffix[i]);
                unlink(p);
        }
}

int test_fresh_db(unsigned idx) {
        if (!pg) {
                char path[4096];
                snprintf(path, sizeof path, "%s.%u", sqlite_path(base_url), idx);
                sqlite_remove(path);
                snprintf(cur_url, sizeof cur_url, "sqlite:%s", path);
                return 0;
        }
        snprintf(cur_url, sizeof cur_url, "%s", base_url);
        raw_pg(cur_url, "DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;", false);
        return 0;
}

static int run_one(const TestCase *t, unsigned idx) {
        test_fresh_db(idx);
        int st = test_fork_run(t->fn, TEST_TIMEOUT_S);
        if (!pg)
                sqlite_remove(sqlite_path(cur_url));
        if (st >= 0 && WIFEXITED(st))
                return WEXITSTATUS(st) == 0 ? 0 : WEXITSTATUS(st) == TEST_SKIP_STATUS ? 1 : -1;
        return -1;
}

static TestCase *tests_in_order(void) {
        TestCase *rev = NULL;
        while (tests) {
                TestCase *n = tests->next;
                tests->next = rev;
                rev = tests;
                tests = n;
        }
        return rev;
}

static int usage(void) {
        fprintf(stderr, "usage: store-conformance sqlite:PATH|postgres://... [FILTER]\n"
                        "       store-conformance --bench sqlite:PATH|postgres://... [FUNCTIONS]\n");
        return 2;
}

int main(int argc, char **argv) {
        /* keep fds 0-2 taken, so no database fd lands there when started with
         * stdio closed */
        for (int fd = 0; fd <= 2; fd++)
                if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) != fd)
                        return 2;
        setvbuf(stdout, NULL, _IOLBF, 0);
        bool bench = argc > 1 && strcmp(argv[1], "--bench") == 0;
        if (argc < 2 + bench)
                return usage();
        base_url = argv[1 + bench];
        pg = strncmp(base_url, "postgres", 8) == 0;
        if (!pg && strncmp(base_url, "sqlite:", 7) != 0)
                return usage();
        if (bench)
                return store_bench(base_url, argc > 3 ? (unsigned) atoi(argv[3]) : 10000);

        const char *filter = argc > 2 ? argv[2] : NULL;
        unsigned passed = 0, failed = 0, skipped = 0, idx = 0;
        for (TestCase *t = tests_in_order(); t; t = t->next) {
                if (filter && !strstr(t->name, filter))
                        continue;
                int64_t start = test_now_us();
                int r = run_one(t, idx++);
                printf("%s %s (%.0f ms)\n", r == 0 ? "ok  " : r > 0 ? "skip" : "FAIL", t->name,
                       (double) (test_now_us() - start) / 1000);
                if (r < 0)
                        failed++;
                else if (r > 0)
                        skipped++;
                else
                        passed++;
        }
        printf("store (%s): %u passed, %u failed", pg ? "postgres" : "sqlite", passed, failed);
        if (skipped)
                printf(" (%u skipped: for the other backend)", skipped);
        printf("\n");
        return failed ? 1 : 0;
}
