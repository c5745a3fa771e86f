/* controller/retention.c: the LLM audit's retention. One thread deletes
 * the audit records older than the retention from the store, at start and
 * then every period, in the store's batches (store_llm_audit_prune), so
 * that the table stays bounded without an operator's cron job. With
 * several controllers on one PostgreSQL store each prunes; the deletes
 * are idempotent. */
#include "controller/retention.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/quantity.h"

#define PROG "fnbox-controller"

struct Retention {
        Store *store;
        int64_t keep_ms, period_ms;
        pthread_mutex_t lock;
        pthread_cond_t wake;            /* stop */
        bool stop;
        uint64_t runs;
        pthread_t thread;
};

int retention_parse(const char *s, int64_t max_ms, int64_t *ret_ms) {
        uint64_t v = 0, ns = 0;
        size_t n = s ? strlen(s) : 0;
        if (n == 0 || n > 20)
                return -EINVAL;
        if (strcmp(s, "0") == 0) {
                *ret_ms = 0;
                return 0;
        }
        if (s[n - 1] == 'd') {
                char num[21];
                memcpy(num, s, n - 1);
                num[n - 1] = 0;
                if (n < 2 || quantity_parse_uint(num, &v) < 0 || v == 0 || v > (uint64_t) (max_ms / 86400000))
                        return -EINVAL;
                *ret_ms = (int64_t) v * 86400000;
                return 0;
        }
        if (quantity_parse_duration(s, &ns) < 0 || ns / 1000000 == 0 || ns / 1000000 > (uint64_t) max_ms)
                return -EINVAL;
        *ret_ms = (int64_t) (ns / 1000000);
        return 0;
}

int retention_prune(Store *store, int64_t keep_ms, int64_t now_ms) {
        if (!store || keep_ms <= 0)
                return -EINVAL;
        if (now_ms <= keep_ms)
                return 0;
        return store_llm_audit_prune(store, now_ms - keep_ms);
}

static int64_t wall_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void prune_once(Retention *r) {
        int n = retention_prune(r->store, r->keep_ms, wall_ms());
        if (n < 0)
                fprintf(stderr, PROG ": llm audit retention: cannot prune: %s: %s\n", strerror(-n),
                        store_last_error(r->store));
        else if (n > 0)
                fprintf(stderr, PROG ": llm audit retention: deleted %d record%s older than %lld s\n", n,
                        n == 1 ? "" : "s", (long long) (r->keep_ms / 1000));
}

static void *retention_main(void *arg) {
        Retention *r = arg;
        pthread_mutex_lock(&r->lock);
        while (!r->stop) {
                pthread_mutex_unlock(&r->lock);
                prune_once(r);
                pthread_mutex_lock(&r->lock);
                r->runs++;
                struct timespec ts;
                clock_gettime(CLOCK_MONOTONIC, &ts);
                ts.tv_sec += r->period_ms / 1000;
                ts.tv_nsec += (r->period_ms % 1000) * 1000000;
                if (ts.tv_nsec >= 1000000000) {
                        ts.tv_sec++;
                        ts.tv_nsec -= 1000000000;
                }
                while (!r->stop && pthread_cond_timedwait(&r->wake, &r->lock, &ts) != ETIMEDOUT)
                        ;
        }
        pthread_mutex_unlock(&r->lock);
        return NULL;
}

int retention_start(Store *store, int64_t keep_ms, int64_t period_ms, Retention **ret) {
        pthread_condattr_t ca;
        *ret = NULL;
        if (!store || keep_ms < 0 || period_ms < RETENTION_PERIOD_MIN_MS)
                return -EINVAL;
        if (keep_ms == 0)
                return 0;
        Retention *r = calloc(1, sizeof *r);
        if (!r)
                return -ENOMEM;
        r->store = store;
        r->keep_ms = keep_ms;
        r->period_ms = period_ms;
        pthread_mutex_init(&r->lock, NULL);
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&r->wake, &ca);
        pthread_condattr_destroy(&ca);
        int k = -pthread_create(&r->thread, NULL, retention_main, r);
        if (k < 0) {
                pthread_cond_destroy(&r->wake);
                pthread_mutex_destroy(&r->lock);
                free(r);
                return k;
        }
        *ret = r;
        return 0;
}

void retention_stop(Retention *r) {
        if (!r)
                return;
        pthread_mutex_lock(&r->lock);
        r->stop = true;
        pthread_cond_signal(&r->wake);
        pthread_mutex_unlock(&r->lock);
        pthread_join(r->thread, NULL);
        pthread_cond_destroy(&r->wake);
        pthread_mutex_destroy(&r->lock);
        free(r);
}

uint64_t retention_runs(Retention *r) {
        if (!r)
                return 0;
        pthread_mutex_lock(&r->lock);
        uint64_t n = r->runs;
        pthread_mutex_unlock(&r->lock);
        return n;
}
