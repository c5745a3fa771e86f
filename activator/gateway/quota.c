/* activator/gateway/quota.c: the gateway's quota book: requests per minute
 * and tokens per UTC day, per key ("ns:NAMESPACE", "token:ID"). The minute
 * is a sliding window of 60 one-second buckets (exact to the second, no
 * burst of twice the limit at a minute's edge). Tokens are reserved at
 * admission (prompt estimate + max_tokens) and settled once from the real
 * usage, so concurrent requests cannot spend more than the budget between
 * them. One mutex guards the book; nothing here blocks or does I/O. */
#define _GNU_SOURCE
#include "activator/gateway/policy.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define QUOTA_WINDOW_S          60
#define QUOTA_DAY_S             86400
#define QUOTA_BUCKETS_INITIAL   64      /* hash buckets; doubles at load 1 */
#define QUOTA_KEYS_MAX          100000  /* tracked keys; beyond, unlimited ones go untracked */
#define QUOTA_KEY_MAX           127

typedef struct QuotaEntry {
        char *key;
        bool has_limit;
        QuotaLimit limit;
        int64_t sec[QUOTA_WINDOW_S];    /* the second each bucket counts */
        uint32_t count[QUOTA_WINDOW_S];
        int64_t day;                    /* the UTC day tokens_used counts */
        uint64_t tokens_used;           /* settled today */
        uint64_t tokens_reserved;       /* admitted, not yet settled (any day) */
        struct QuotaEntry *next;
} QuotaEntry;

struct Quota {
        pthread_mutex_t lock;
        QuotaEntry **buckets;
        size_t n_buckets, n_entries;
        uint64_t active, active_tokens;  /* reservations admitted and not settled, and their tokens */
};

/* ---- the table ----------------------------------------------------------- */

static uint64_t hash_key(const char *s) {
        uint64_t h = 1469598103934665603ull;            /* FNV-1a */
        for (; *s; s++)
                h = (h ^ (unsigned char) *s) * 1099511628211ull;
        return h;
}

Quota *quota_new(void) {
        Quota *q = calloc(1, sizeof *q);
        if (!q)
                return NULL;
        q->buckets = calloc(QUOTA_BUCKETS_INITIAL, sizeof *q->buckets);
        if (!q->buckets) {
                free(q);
                return NULL;
        }
        q->n_buckets = QUOTA_BUCKETS_INITIAL;
        pthread_mutex_init(&q->lock, NULL);
        return q;
}

Quota *quota_free(Quota *q) {
        if (!q)
                return NULL;
        for (size_t b = 0; b < q->n_buckets; b++)
                for (QuotaEntry *e = q->buckets[b], *next; e; e = next) {
                        next = e->next;
                        free(e->key);
                        free(e);
                }
        free(q->buckets);
        pthread_mutex_destroy(&q->lock);
        free(q);
        return NULL;
}

static QuotaEntry *entry_find(Quota *q, const char *key) {
        for (QuotaEntry *e = q->buckets[hash_key(key) % q->n_buckets]; e; e = e->next)
                if (strcmp(e->key, key) == 0)
                        return e;
        return NULL;
}

static void table_grow(Quota *q) {
        size_t n = q->n_buckets * 2;
        QuotaEntry **b = calloc(n, sizeof *b);
        if (!b)
                return;                 /* longer chains, still correct */
        for (size_t i = 0; i < q->n_buckets; i++)
                for (QuotaEntry *e = q->buckets[i], *next; e; e = next) {
                        next = e->next;
                        size_t k = hash_key(e->key) % n;
                        e->next = b[k];
                        b[k] = e;
                }
        free(q->buckets);
        q->buckets = b;
        q->n_buckets = n;
}

/* The entry of key, made when missing (NULL: out of memory, or the table
 * is full and force is false). */
static QuotaEntry *entry_get(Quota *q, const char *key, bool force) {
        QuotaEntry *e = entry_find(q, key);
        if (e)
                return e;
        if (!force && q->n_entries >= QUOTA_KEYS_MAX)
                return NULL;
        e = calloc(1, sizeof *e);
        if (!e || !(e->key = strdup(key))) {
                free(e);
                return NULL;
        }
        e->day = -1;
        if (q->n_entries >= q->n_buckets)
                table_grow(q);
        size_t k = hash_key(key) % q->n_buckets;
        e->next = q->buckets[k];
        q->buckets[k] = e;
        q->n_entries++;
        return e;
}

static bool key_ok(const char *key) {
        if (!key)
                return false;
        size_t n = strlen(key);
        return n <= QUOTA_KEY_MAX && ((strncmp(key, "ns:", 3) == 0 && n > 3) ||
                                      (strncmp(key, "token:", 6) == 0 && n > 6));
}

int quota_set_limit(Quota *q, const char *key, const QuotaLimit *limit) {
        if (!q || !key_ok(key) || !limit)
                return -EINVAL;
        pthread_mutex_lock(&q->lock);
        QuotaEntry *e = entry_get(q, key, true);
        if (e) {
                e->has_limit = true;
                e->limit = *limit;
        }
        pthread_mutex_unlock(&q->lock);
        return e ? 0 : -ENOMEM;
}

void quota_clear_limits(Quota *q) {
        if (!q)
                return;
        pthread_mutex_lock(&q->lock);
        for (size_t b = 0; b < q->n_buckets; b++)
                for (QuotaEntry *e = q->buckets[b]; e; e = e->next)
                        e->has_limit = false;
        pthread_mutex_unlock(&q->lock);
}

/* ---- the windows --------------------------------------------------------- */

static void day_roll(QuotaEntry *e, int64_t day) {
        if (e->day != day) {
                e->day = day;
                e->tokens_used = 0;
        }
}

/* Requests counted in the 60 s ending with second now_s. */
static uint64_t window_count(const QuotaEntry *e, int64_t now_s) {
        uint64_t n = 0;
        for (size_t k = 0; k < QUOTA_WINDOW_S; k++)
                if (e->sec[k] > now_s - QUOTA_WINDOW_S && e->sec[k] <= now_s)
                        n += e->count[k];
        return n;
}

static void window_add(QuotaEntry *e, int64_t now_s) {
        size_t k = (size_t) (now_s % QUOTA_WINDOW_S);
        if (e->sec[k] != now_s) {
                e->sec[k] = now_s;
                e->count[k] = 0;
        }
        if (e->count[k] < UINT32_MAX)
                e->count[k]++;
}

/* Whole seconds (at least 1) until the window ending now has room for one
 * more request: the oldest buckets leave it 60 s after their second. */
static unsigned window_retry(const QuotaEntry *e, int64_t now_ns, uint64_t limit) {
        int64_t now_s = now_ns / 1000000000;
        uint64_t n = window_count(e, now_s);
        for (int64_t s = now_s - QUOTA_WINDOW_S + 1; s <= now_s; s++) {
                const size_t k = (size_t) (s % QUOTA_WINDOW_S);
                if (e->sec[k] == s)
                        n -= e->count[k] <= n ? e->count[k] : n;
                if (n < limit) {
                        int64_t ns = (s + QUOTA_WINDOW_S) * 1000000000 - now_ns;
                        return ns <= 0 ? 1 : (unsigned) ((ns + 999999999) / 1000000000);
                }
        }
        return QUOTA_WINDOW_S;
}

static unsigned until_midnight(int64_t now_ns) {
        int64_t s = now_ns / 1000000000;
        int64_t left = (s / QUOTA_DAY_S + 1) * QUOTA_DAY_S - s;
        return left > 0 ? (unsigned) left : 1;
}

static const char *key_kind(const char *key) {
        return strncmp(key, "ns:", 3) == 0 ? "namespace" : "token";
}

static const char *key_name(const char *key) {
        return strchr(key, ':') + 1;
}

/* Whether one more request of `tokens` fits e's limits; when not, the
 * sentence and the wait. */
static bool entry_admits(const QuotaEntry *e, uint64_t tokens, int64_t now_ns, char *msg, size_t msg_len,
                         unsigned *retry) {
        int64_t now_s = now_ns / 1000000000;
        if (!e || !e->has_limit)
                return true;
        uint64_t rpm = e->limit.requests_per_minute, tpd = e->limit.tokens_per_day;
        if (rpm > 0 && window_count(e, now_s) >= rpm) {
                *retry = window_retry(e, now_ns, rpm);
                snprintf(msg, msg_len, "rate limit: %s %s allows %" PRIu64 " requests per minute; retry in %u s",
                         key_kind(e->key), key_name(e->key), rpm, *retry);
                return false;
        }
        if (tpd == 0)
                return true;
        uint64_t used = e->day == now_s / QUOTA_DAY_S ? e->tokens_used : 0;
        if (tokens > tpd) {
                *retry = until_midnight(now_ns);
                snprintf(msg, msg_len, "token quota: this request may use up to %" PRIu64 " tokens, more than "
                         "%s %s's whole daily budget of %" PRIu64 "; lower max_tokens",
                         tokens, key_kind(e->key), key_name(e->key), tpd);
                return false;
        }
        if (used >= tpd || tokens > tpd - used) {
                *retry = until_midnight(now_ns);
                snprintf(msg, msg_len, "token quota: %s %s has used %" PRIu64 " of its %" PRIu64 " tokens today "
                         "(UTC) and this request may use up to %" PRIu64 "; resets at 00:00 UTC, in %u s",
                         key_kind(e->key), key_name(e->key), used, tpd, tokens, *retry);
                return false;
        }
        if (e->tokens_reserved > tpd - used - tokens) {
                *retry = 1;
                snprintf(msg, msg_len, "token quota: %s %s's requests in flight hold %" PRIu64 " of the %" PRIu64
                         " tokens left today; retry when they finish",
                         key_kind(e->key), key_name(e->key), e->tokens_reserved, tpd - used);
                return false;
        }
        return true;
}

static void entry_charge(QuotaEntry *e, uint64_t tokens, int64_t now_s) {
        if (!e)
                return;
        day_roll(e, now_s / QUOTA_DAY_S);
        window_add(e, now_s);
        e->tokens_reserved = tokens > UINT64_MAX - e->tokens_reserved ? UINT64_MAX : e->tokens_reserved + tokens;
}

/* ---- admission and settling ---------------------------------------------- */

int quota_admit(Quota *q, const char *ns, const char *token_id, uint64_t tokens, int64_t now_ns,
                QuotaReservation *ret, char *msg, size_t msg_len, unsigned *retry_after_s) {
        QuotaReservation res = { .tokens = tokens, .day = now_ns / 1000000000 / QUOTA_DAY_S, .active = true };
        unsigned retry = 1;
        char why[512];

        if (!q || !ns || !*ns || !ret || now_ns < 0)
                return -EINVAL;
        if ((size_t) snprintf(res.ns_key, sizeof res.ns_key, "ns:%s", ns) >= sizeof res.ns_key)
                return -EINVAL;
        if (token_id && *token_id &&
            (size_t) snprintf(res.token_key, sizeof res.token_key, "token:%s", token_id) >= sizeof res.token_key)
                return -EINVAL;

        pthread_mutex_lock(&q->lock);
        QuotaEntry *ens = entry_get(q, res.ns_key, false);
        QuotaEntry *etok = res.token_key[0] ? entry_get(q, res.token_key, false) : NULL;
        bool ok = entry_admits(ens, tokens, now_ns, why, sizeof why, &retry) &&
                  entry_admits(etok, tokens, now_ns, why, sizeof why, &retry);
        if (ok) {
                entry_charge(ens, tokens, now_ns / 1000000000);
                entry_charge(etok, tokens, now_ns / 1000000000);
                q->active++;
                q->active_tokens = tokens > UINT64_MAX - q->active_tokens ? UINT64_MAX : q->active_tokens + tokens;
        }
        pthread_mutex_unlock(&q->lock);

        if (!ok) {
                if (msg && msg_len)
                        snprintf(msg, msg_len, "%s", why);
                if (retry_after_s)
                        *retry_after_s = retry;
                return -EDQUOT;
        }
        *ret = res;
        return 0;
}

/* The reservation is released whatever day it was made on; the tokens
 * used count against the day of the admission (a request that runs over
 * midnight does not eat into the new day: yesterday's books are closed). */
static void entry_settle(QuotaEntry *e, uint64_t reserved, uint64_t used, int64_t day) {
        if (!e)
                return;
        e->tokens_reserved -= reserved <= e->tokens_reserved ? reserved : e->tokens_reserved;
        if (day == e->day)
                e->tokens_used = used > UINT64_MAX - e->tokens_used ? UINT64_MAX : e->tokens_used + used;
}

void quota_settle(Quota *q, QuotaReservation *res, uint64_t used_tokens) {
        if (!q || !res)
                return;
        pthread_mutex_lock(&q->lock);
        if (res->active) {
                res->active = false;
                q->active -= q->active > 0;
                q->active_tokens -= res->tokens <= q->active_tokens ? res->tokens : q->active_tokens;
                entry_settle(entry_find(q, res->ns_key), res->tokens, used_tokens, res->day);
                if (res->token_key[0])
                        entry_settle(entry_find(q, res->token_key), res->tokens, used_tokens, res->day);
        }
        pthread_mutex_unlock(&q->lock);
}

json_t *quota_usage_json(Quota *q) {
        struct timespec ts;
        json_t *o = json_object();
        if (!q || !o)
                return o;
        clock_gettime(CLOCK_REALTIME, &ts);
        pthread_mutex_lock(&q->lock);
        for (size_t b = 0; b < q->n_buckets; b++)
                for (QuotaEntry *e = q->buckets[b]; e; e = e->next) {
                        uint64_t today = e->day == ts.tv_sec / QUOTA_DAY_S ? e->tokens_used : 0;
                        json_t *v = json_pack("{s:I, s:I, s:I}", "rpm_used", (json_int_t) window_count(e, ts.tv_sec),
                                              "tokens_today", (json_int_t) today,
                                              "reserved", (json_int_t) e->tokens_reserved);
                        if (v && e->has_limit) {
                                json_object_set_new(v, "rpm_limit", json_integer((json_int_t) e->limit.requests_per_minute));
                                json_object_set_new(v, "tokens_per_day", json_integer((json_int_t) e->limit.tokens_per_day));
                        }
                        if (v)
                                json_object_set_new(o, e->key, v);
                }
        pthread_mutex_unlock(&q->lock);
        return o;
}

void quota_stats(Quota *q, QuotaStats *ret) {
        if (!ret)
                return;
        *ret = (QuotaStats) {};
        if (!q)
                return;
        pthread_mutex_lock(&q->lock);
        ret->reservations = q->active;
        ret->tokens_reserved = q->active_tokens;
        pthread_mutex_unlock(&q->lock);
}
