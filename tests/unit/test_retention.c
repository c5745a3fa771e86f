/* tests/unit/test_retention.c: the controller's LLM audit retention
 * (controller/retention.c) over a SQLite store in a temporary folder: the
 * option's durations, one prune that removes the old records and keeps
 * the new, and the thread, which prunes at start and again every period
 * (records that age past the retention while it runs go too), and stops
 * at once. The prune's SQL on both backends is in tests/store. */
#define _GNU_SOURCE
#include "test.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "controller/retention.h"
#include "lib/store.h"

#define DAY_MS 86400000LL

static int64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static Store *open_tmp(char dir[64]) {
        char url[128];
        Store *s = NULL;
        snprintf(dir, 64, "/tmp/fnbox-retention.XXXXXX");
        if (!mkdtemp(dir))
                FAIL_AT("mkdtemp: %m");
        snprintf(url, sizeof url, "sqlite:%s/store.db", dir);
        int r = store_open(url, &s);
        if (r < 0)
                FAIL_AT("store_open: %s", strerror(-r));
        return s;
}

static void close_tmp(Store *s, const char *dir) {
        char cmd[128];
        store_close(s);
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
                FAIL_AT("cannot remove %s", dir);
}

static void add(Store *s, const char *id, int64_t at_ms) {
        StoreLlmAudit a = {
                .request_id = (char *) id, .at_ms = at_ms, .namespace_ = "team-a", .caller = "token:0123456789abcdef",
                .endpoint = "chat.completions", .alias = "small", .upstream = "local", .chain_json = "[\"local\"]",
                .tokens_in = 1, .tokens_out = 2, .latency_us = 1000, .ttft_us = -1, .status = 200, .error_type = "",
                .rules = "",
        };
        ASSERT_EQ_INT(store_llm_audit_add(s, &a, 1), 1);
}

/* The request ids left, newest first, joined with spaces. */
static char *left(Store *s) {
        StoreLlmAudit *out = NULL;
        size_t n = 0;
        static char buf[512];
        buf[0] = 0;
        ASSERT_EQ_INT(store_llm_audit_list(s, &(StoreLlmAuditQuery) { .limit = 100 }, &out, &n), 0);
        for (size_t i = 0; i < n; i++)
                snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s", i ? " " : "", out[i].request_id);
        store_llm_audit_array_free(out, n);
        return buf;
}

TEST(retention_parse) {
        int64_t ms = -1;
        ASSERT_EQ_INT(retention_parse("30d", RETENTION_MAX_MS, &ms), 0);
        ASSERT_EQ_INT(ms, 30 * DAY_MS);
        ASSERT_EQ_INT(retention_parse("12h", RETENTION_MAX_MS, &ms), 0);
        ASSERT_EQ_INT(ms, 12 * 3600000LL);
        ASSERT_EQ_INT(retention_parse("90m", RETENTION_MAX_MS, &ms), 0);
        ASSERT_EQ_INT(ms, 90 * 60000LL);
        ASSERT_EQ_INT(retention_parse("250ms", RETENTION_MAX_MS, &ms), 0);
        ASSERT_EQ_INT(ms, 250);
        ASSERT_EQ_INT(retention_parse("0", RETENTION_MAX_MS, &ms), 0);
        ASSERT_EQ_INT(ms, 0);
        ASSERT_EQ_INT(retention_parse("36500d", RETENTION_MAX_MS, &ms), 0);
        const char *bad[] = { "", "d", "0d", "-1d", "1.5d", "36501d", "forever", "10x", "0s", "1us", "9999999999999999999d" };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
                if (retention_parse(bad[i], RETENTION_MAX_MS, &ms) != -EINVAL)
                        FAIL_AT("%s was taken", bad[i]);
        ASSERT_EQ_INT(retention_parse(NULL, RETENTION_MAX_MS, &ms), -EINVAL);
        ASSERT_EQ_INT(retention_parse("8d", RETENTION_PERIOD_MAX_MS, &ms), -EINVAL);
}

TEST(retention_prune_old_not_new) {
        char dir[64];
        Store *s = open_tmp(dir);
        int64_t now = now_ms();
        add(s, "older", now - 40 * DAY_MS);
        add(s, "old", now - 31 * DAY_MS);
        add(s, "recent", now - 29 * DAY_MS);
        add(s, "now", now);
        ASSERT_EQ_INT(retention_prune(s, 30 * DAY_MS, now), 2);
        ASSERT_EQ_STR(left(s), "now recent");
        ASSERT_EQ_INT(retention_prune(s, 30 * DAY_MS, now), 0);
        ASSERT_EQ_INT(retention_prune(s, 0, now), -EINVAL);
        ASSERT_EQ_INT(retention_prune(s, 30 * DAY_MS, 1000), 0);      /* a clock before the retention */
        ASSERT_EQ_STR(left(s), "now recent");
        close_tmp(s, dir);
}

TEST(retention_thread_prunes_at_start_and_periodically) {
        char dir[64];
        Store *s = open_tmp(dir);
        Retention *r = NULL;
        int64_t now = now_ms();
        add(s, "ancient", now - 3 * DAY_MS);
        add(s, "soon-old", now - 2 * DAY_MS + 1500);    /* past 2 days in 1.5 s */
        add(s, "fresh", now);
        ASSERT_EQ_INT(retention_start(s, 2 * DAY_MS, 200, &r), 0);
        ASSERT_TRUE(r != NULL);
        for (int i = 0; i < 100 && retention_runs(r) < 1; i++)
                usleep(10000);
        ASSERT_TRUE(retention_runs(r) >= 1);
        ASSERT_EQ_STR(left(s), "fresh soon-old");       /* at start: the ancient one */
        for (int i = 0; i < 400 && strcmp(left(s), "fresh") != 0; i++)
                usleep(10000);
        ASSERT_EQ_STR(left(s), "fresh");                /* a later run: the one that aged */
        ASSERT_TRUE(retention_runs(r) >= 5);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        retention_stop(r);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        ASSERT_TRUE((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 < 150);
        close_tmp(s, dir);
}

TEST(retention_off_and_bad_arguments) {
        char dir[64];
        Store *s = open_tmp(dir);
        Retention *r = (Retention *) 1;
        add(s, "ancient", 1000);
        ASSERT_EQ_INT(retention_start(s, 0, 1000, &r), 0);     /* 0: keep everything, no thread */
        ASSERT_TRUE(r == NULL);
        ASSERT_EQ_STR(left(s), "ancient");
        ASSERT_EQ_INT(retention_start(s, DAY_MS, 10, &r), -EINVAL);
        ASSERT_EQ_INT(retention_start(NULL, DAY_MS, 1000, &r), -EINVAL);
        retention_stop(NULL);
        close_tmp(s, dir);
}
