/* controller/retention.h: how long the controller keeps the LLM gateway's
 * audit records (--llm-audit-retention): a thread prunes the older ones
 * from the store at start and then every period (--llm-audit-prune-every). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "lib/store.h"

#define RETENTION_DEFAULT_MS    (30LL * 86400000)       /* 30 days */
#define RETENTION_MAX_MS        (36500LL * 86400000)    /* a century */
#define RETENTION_PERIOD_DEFAULT_MS 3600000LL           /* hourly */
#define RETENTION_PERIOD_MIN_MS 100LL
#define RETENTION_PERIOD_MAX_MS (7LL * 86400000)

typedef struct Retention Retention;

/* "30d", "12h", "90m", "3600s" (a duration, days allowed) into
 * milliseconds; "0" is 0. -EINVAL for anything else or past max_ms. */
int retention_parse(const char *s, int64_t max_ms, int64_t *ret_ms);

/* Delete the records that started more than keep_ms before now_ms (wall
 * clock, milliseconds). The number deleted, or a negative errno. */
int retention_prune(Store *store, int64_t keep_ms, int64_t now_ms);

/* Start the thread: it prunes at once, then every period_ms, logging what
 * it deleted (and any failure) to stderr. keep_ms 0: nothing is started
 * and *ret is NULL (records are kept until deleted by hand). */
int retention_start(Store *store, int64_t keep_ms, int64_t period_ms, Retention **ret);
/* Stop and join the thread (a prune in progress finishes its batch). */
void retention_stop(Retention *r);
/* Prunes the thread has run so far (for tests). */
uint64_t retention_runs(Retention *r);
