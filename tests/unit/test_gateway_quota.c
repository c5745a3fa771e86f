/* tests/unit/test_gateway_quota.c: the gateway's quota book
 * (activator/gateway/quota.c): the sliding minute and its Retry-After, the
 * daily token budget with reservations settled once, the day's roll-over,
 * both keys all or nothing, reloads that keep usage, the messages; and
 * threads racing on one budget, which never get more than it between
 * them. Time is passed in, so nothing here sleeps. */
#define _GNU_SOURCE
#include "test.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>

#include "activator/gateway/policy.h"

#define S(x) ((int64_t) (x) * 1000000000)
#define DAY0 S(20000 * 86400)           /* a UTC midnight */

static Quota *book(const char *key, uint64_t rpm, uint64_t tpd) {
        Quota *q = quota_new();
        ASSERT_TRUE(q != NULL);
        if (key)
                ASSERT_EQ_INT(quota_set_limit(q, key, &(QuotaLimit) { rpm, tpd }), 0);
        return q;
}

static int admit(Quota *q, const char *ns, const char *tok, uint64_t tokens, int64_t now, QuotaReservation *res,
                 unsigned *retry, char *msg) {
        char m[512];
        unsigned r = 0;
        QuotaReservation tmp;
        int k = quota_admit(q, ns, tok, tokens, now, res ? res : &tmp, msg ? msg : m, 512, &r);
        if (retry)
                *retry = r;
        return k;
}

TEST(quota_args) {
        Quota *q = quota_new();
        QuotaReservation r;
        ASSERT_EQ_INT(quota_set_limit(q, "team-a", &(QuotaLimit) { 1, 1 }), -EINVAL);     /* no kind */
        ASSERT_EQ_INT(quota_set_limit(q, "ns:", &(QuotaLimit) { 1, 1 }), -EINVAL);
        ASSERT_EQ_INT(quota_set_limit(q, NULL, &(QuotaLimit) { 1, 1 }), -EINVAL);
        ASSERT_EQ_INT(quota_set_limit(q, "ns:a", NULL), -EINVAL);
        ASSERT_EQ_INT(quota_admit(q, NULL, NULL, 1, DAY0, &r, NULL, 0, NULL), -EINVAL);
        ASSERT_EQ_INT(quota_admit(q, "", NULL, 1, DAY0, &r, NULL, 0, NULL), -EINVAL);
        char longns[200];
        memset(longns, 'a', sizeof longns - 1);
        longns[sizeof longns - 1] = 0;
        ASSERT_EQ_INT(quota_admit(q, longns, NULL, 1, DAY0, &r, NULL, 0, NULL), -EINVAL);
        /* no limit anywhere: unlimited */
        for (int i = 0; i < 1000; i++)
                ASSERT_EQ_INT(admit(q, "free", "t1", 1000000, DAY0, NULL, NULL, NULL), 0);
        quota_free(q);
        ASSERT_TRUE(quota_free(NULL) == NULL);
}

TEST(quota_minute_sliding) {
        Quota *q = book("ns:a", 3, 0);
        unsigned retry;
        char msg[512];
        ASSERT_EQ_INT(admit(q, "a", NULL, 0, DAY0 + S(10), NULL, NULL, NULL), 0);
        ASSERT_EQ_INT(admit(q, "a", NULL, 0, DAY0 + S(10), NULL, NULL, NULL), 0);
        ASSERT_EQ_INT(admit(q, "a", NULL, 0, DAY0 + S(40), NULL, NULL, NULL), 0);
        /* at 40.5 s: full; the two of second 10 leave at 70 s: 29.5 s, rounded up */
        ASSERT_EQ_INT(admit(q, "a", NULL, 0, DAY0 + S(40) + 500000000, NULL, &retry, msg), -EDQUOT);
        ASSERT_EQ_UINT(retry, 30);
        ASSERT_TRUE(strstr(msg, "namespace a allows 3 requests per minute") != NULL);
        ASSERT_TRUE(strstr(msg, "retry in 30 s") != NULL);
        /* 69.9 s: still full (sliding, not a fixed minute that reset at 60) */
        ASSERT_EQ_INT(admit(q, "a", NULL, 0, DAY0 + S(69) + 900000000, NULL, &retry, NULL), -EDQUOT);
        ASSERT_EQ_UINT(retry, 1);
        /* 70 s: two free, the one of 40 s stays */
        ASSERT_EQ_INT(admit(q, "a", NULL, 0, DAY0 + S(70), NULL, NULL, NULL), 0);
        ASSERT_EQ_INT(admit(q, "a", NULL, 0, DAY0 + S(70), NULL, NULL, NULL), 0);
        ASSERT_EQ_INT(admit(q, "a", NULL, 0, DAY0 + S(70), NULL, &retry, NULL), -EDQUOT);
        ASSERT_EQ_UINT(retry, 30);
        /* refused requests did not count: at 100 s one is free again */
        ASSERT_EQ_INT(admit(q, "a", NULL, 0, DAY0 + S(100), NULL, NULL, NULL), 0);
        /* other namespaces are not limited by a's */
        ASSERT_EQ_INT(admit(q, "b", NULL, 0, DAY0 + S(100), NULL, NULL, NULL), 0);
        quota_free(q);
}

TEST(quota_tokens_reserve_settle) {
        Quota *q = book("token:t1", 0, 1000);
        QuotaReservation r1, r2, r3;
        unsigned retry;
        char msg[512];
        int64_t now = DAY0 + S(3600);   /* 01:00 UTC */

        ASSERT_EQ_INT(admit(q, "a", "t1", 600, now, &r1, NULL, NULL), 0);
        ASSERT_TRUE(r1.active);
        ASSERT_EQ_STR(r1.ns_key, "ns:a");
        ASSERT_EQ_STR(r1.token_key, "token:t1");
        /* 600 reserved: 500 more does not fit while r1 is in flight */
        ASSERT_EQ_INT(admit(q, "a", "t1", 500, now, NULL, &retry, msg), -EDQUOT);
        ASSERT_EQ_UINT(retry, 1);
        ASSERT_TRUE(strstr(msg, "in flight") != NULL);
        /* r1 used only 100: the rest comes back */
        quota_settle(q, &r1, 100);
        ASSERT_TRUE(!r1.active);
        quota_settle(q, &r1, 100);      /* once only */
        quota_settle(q, &r1, 900);
        ASSERT_EQ_INT(admit(q, "a", "t1", 500, now, &r2, NULL, NULL), 0);
        ASSERT_EQ_INT(admit(q, "a", "t1", 400, now, &r3, NULL, NULL), 0);     /* 100 + 500 + 400 */
        ASSERT_EQ_INT(admit(q, "a", "t1", 1, now, NULL, NULL, NULL), -EDQUOT);
        quota_settle(q, &r2, 450);
        quota_settle(q, &r3, 0);        /* a failed request gives all back */
        ASSERT_EQ_INT(admit(q, "a", "t1", 451, now, NULL, &retry, msg), -EDQUOT);
        ASSERT_EQ_UINT(retry, 23 * 3600);       /* until 00:00 UTC */
        ASSERT_TRUE(strstr(msg, "token t1 has used 550 of its 1000 tokens today") != NULL);
        ASSERT_EQ_INT(admit(q, "a", "t1", 450, now, NULL, NULL, NULL), 0);

        json_t *u = quota_usage_json(q);
        json_t *t = json_object_get(u, "token:t1");
        ASSERT_TRUE(t != NULL);
        ASSERT_EQ_INT(json_integer_value(json_object_get(t, "reserved")), 450);
        ASSERT_EQ_INT(json_integer_value(json_object_get(t, "tokens_per_day")), 1000);
        ASSERT_TRUE(json_object_get(u, "ns:a") != NULL);
        json_decref(u);
        quota_free(q);
}

TEST(quota_more_than_the_budget) {
        Quota *q = book("ns:a", 0, 1000);
        char msg[512];
        unsigned retry;
        ASSERT_EQ_INT(admit(q, "a", NULL, 1001, DAY0, NULL, &retry, msg), -EDQUOT);
        ASSERT_TRUE(strstr(msg, "more than namespace a's whole daily budget of 1000") != NULL);
        ASSERT_TRUE(strstr(msg, "max_tokens") != NULL);
        ASSERT_EQ_INT(admit(q, "a", NULL, 1000, DAY0, NULL, NULL, NULL), 0);
        quota_free(q);
}

TEST(quota_overspend_charged) {
        /* upstream used more than reserved: charged, and then nothing fits */
        Quota *q = book("ns:a", 0, 1000);
        QuotaReservation r;
        ASSERT_EQ_INT(admit(q, "a", NULL, 100, DAY0, &r, NULL, NULL), 0);
        quota_settle(q, &r, 1200);
        ASSERT_EQ_INT(admit(q, "a", NULL, 0, DAY0, NULL, NULL, NULL), -EDQUOT);
        ASSERT_EQ_INT(admit(q, "a", NULL, 0, DAY0 + S(86400), NULL, NULL, NULL), 0);
        quota_free(q);
}

TEST(quota_day_rolls) {
        Quota *q = book("ns:a", 0, 1000);
        QuotaReservation late;
        unsigned retry;
        int64_t before = DAY0 + S(86400 - 10);          /* 23:59:50 */
        ASSERT_EQ_INT(admit(q, "a", NULL, 900, before, NULL, NULL, NULL), 0);
        ASSERT_EQ_INT(admit(q, "a", NULL, 100, before, &late, NULL, NULL), 0);
        ASSERT_EQ_INT(admit(q, "a", NULL, 1, before, NULL, &retry, NULL), -EDQUOT);
        ASSERT_EQ_UINT(retry, 1);               /* in flight */
        /* after midnight: the unsettled reservations still hold their tokens */
        int64_t after = DAY0 + S(86400 + 5);
        ASSERT_EQ_INT(admit(q, "a", NULL, 1, after, NULL, NULL, NULL), -EDQUOT);
        /* settled after midnight: charged to yesterday, today stays free */
        QuotaReservation *all[1] = { &late };
        quota_settle(q, all[0], 100);
        ASSERT_EQ_INT(admit(q, "a", NULL, 100, after, NULL, NULL, NULL), 0);
        quota_free(q);
}

TEST(quota_both_keys_all_or_nothing) {
        Quota *q = book("ns:a", 2, 0);
        ASSERT_EQ_INT(quota_set_limit(q, "token:t1", &(QuotaLimit) { 1, 0 }), 0);
        char msg[512];
        ASSERT_EQ_INT(admit(q, "a", "t1", 0, DAY0, NULL, NULL, NULL), 0);
        /* t1 is out; its refusal does not count against namespace a */
        ASSERT_EQ_INT(admit(q, "a", "t1", 0, DAY0, NULL, NULL, msg), -EDQUOT);
        ASSERT_TRUE(strstr(msg, "token t1 allows 1 requests per minute") != NULL);
        ASSERT_EQ_INT(admit(q, "a", "t1", 0, DAY0, NULL, NULL, NULL), -EDQUOT);
        ASSERT_EQ_INT(admit(q, "a", "t2", 0, DAY0, NULL, NULL, NULL), 0);
        ASSERT_EQ_INT(admit(q, "a", NULL, 0, DAY0, NULL, NULL, msg), -EDQUOT);
        ASSERT_TRUE(strstr(msg, "namespace a allows 2") != NULL);
        quota_free(q);
}

TEST(quota_reload_keeps_usage) {
        Quota *q = book("ns:a", 1, 0);
        ASSERT_EQ_INT(admit(q, "a", NULL, 0, DAY0, NULL, NULL, NULL), 0);
        ASSERT_EQ_INT(admit(q, "a", NULL, 0, DAY0, NULL, NULL, NULL), -EDQUOT);
        quota_clear_limits(q);
        ASSERT_EQ_INT(admit(q, "a", NULL, 0, DAY0, NULL, NULL, NULL), 0);      /* unlimited now */
        ASSERT_EQ_INT(quota_set_limit(q, "ns:a", &(QuotaLimit) { 2, 0 }), 0);
        /* the two already counted this minute still count */
        ASSERT_EQ_INT(admit(q, "a", NULL, 0, DAY0, NULL, NULL, NULL), -EDQUOT);
        quota_free(q);
}

/* ---- threads ------------------------------------------------------------------ */

#define THREADS 8
#define TRIES   2000

typedef struct Racer {
        Quota *q;
        unsigned seed;
        uint64_t admitted, used;
} Racer;

/* Admit with a reservation of 100 (max_tokens), then settle with what a
 * reply "used": 1 to 100. */
static void *race(void *arg) {
        Racer *r = arg;
        for (int i = 0; i < TRIES; i++) {
                QuotaReservation res;
                char msg[256];
                unsigned retry;
                if (quota_admit(r->q, "a", "t1", 100, DAY0 + S(i / 1000), &res, msg, sizeof msg, &retry) < 0)
                        continue;
                r->admitted++;
                uint64_t u = 1 + rand_r(&r->seed) % 100;
                r->used += u;
                quota_settle(r->q, &res, u);
                quota_settle(r->q, &res, u);    /* a second settle changes nothing */
        }
        return NULL;
}

TEST(quota_threads_cannot_overspend) {
        Quota *q = book("ns:a", 0, 50000);
        ASSERT_EQ_INT(quota_set_limit(q, "token:t1", &(QuotaLimit) { 0, 40000 }), 0);
        Racer r[THREADS];
        pthread_t th[THREADS];
        for (int i = 0; i < THREADS; i++) {
                r[i] = (Racer) { q, (unsigned) i * 7919u + 1, 0, 0 };
                ASSERT_EQ_INT(pthread_create(&th[i], NULL, race, &r[i]), 0);
        }
        uint64_t admitted = 0, used = 0;
        for (int i = 0; i < THREADS; i++) {
                pthread_join(th[i], NULL);
                admitted += r[i].admitted;
                used += r[i].used;
        }
        fprintf(stderr, "  %" PRIu64 " of %d admitted, %" PRIu64 " tokens used of 40000\n", admitted,
                THREADS * TRIES, used);
        ASSERT_TRUE(used <= 40000);
        ASSERT_TRUE(used > 40000 - 100);        /* the budget was used up, not refused early */
        /* the book holds exactly what the threads used: the rest fits, one more does not */
        ASSERT_EQ_INT(admit(q, "a", "t1", 40000 - used + 1, DAY0 + S(5), NULL, NULL, NULL), -EDQUOT);
        QuotaReservation last;
        ASSERT_EQ_INT(admit(q, "a", "t1", 40000 - used, DAY0 + S(5), &last, NULL, NULL), 0);
        quota_settle(q, &last, 0);
        json_t *u = quota_usage_json(q);
        ASSERT_EQ_INT(json_integer_value(json_object_get(json_object_get(u, "token:t1"), "reserved")), 0);
        ASSERT_EQ_INT(json_integer_value(json_object_get(json_object_get(u, "ns:a"), "reserved")), 0);
        json_decref(u);
        quota_free(q);
}

typedef struct Counter {
        Quota *q;
        int admitted;
        QuotaReservation held[TRIES];
} Counter;

/* Admit and hold: nothing settles, so reservations alone must bound it. */
static void *race_hold(void *arg) {
        Counter *c = arg;
        for (int i = 0; i < TRIES; i++)
                if (quota_admit(c->q, "b", NULL, 7, DAY0, &c->held[c->admitted], NULL, 0, NULL) == 0)
                        c->admitted++;
        return NULL;
}

TEST(quota_threads_minute_and_reservations) {
        Quota *q = book("ns:b", 1000, 7 * 900);
        static Counter c[THREADS];
        pthread_t th[THREADS];
        for (int i = 0; i < THREADS; i++) {
                c[i] = (Counter) { .q = q };
                ASSERT_EQ_INT(pthread_create(&th[i], NULL, race_hold, &c[i]), 0);
        }
        int total = 0;
        for (int i = 0; i < THREADS; i++) {
                pthread_join(th[i], NULL);
                total += c[i].admitted;
        }
        ASSERT_EQ_INT(total, 900);              /* the tokens bound first: exactly */
        for (int i = 0; i < THREADS; i++)
                for (int k = 0; k < c[i].admitted; k++)
                        quota_settle(q, &c[i].held[k], 0);
        /* all given back: 100 more fit the minute's 1000 */
        int more = 0;
        while (admit(q, "b", NULL, 7, DAY0, NULL, NULL, NULL) == 0)
                more++;
        ASSERT_EQ_INT(more, 100);
        quota_free(q);
}
