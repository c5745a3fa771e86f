/* activator/gateway/audit.c: the gateway's audit shipper. Workers hand
 * each finished request's record to audit_submit, which copies it into a
 * bounded ring (the oldest dropped and counted past AUDIT_QUEUE_MAX) and
 * never waits; one thread posts them to the controller in batches
 * {"records": [...]} every second, or at once when a full batch waits,
 * and retries a batch with back-off while the controller is away. The
 * controller stores them (controller/api_llm.c); `fnbox llm log` reads
 * them back. */
#define _GNU_SOURCE
#include "activator/gateway/policy.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PROG                    "fnbox-activator"
#define AUDIT_PATH              "/v1/internal/llm-audit"
#define AUDIT_BACKOFF_MAX_MS    10000
#define AUDIT_POST_TIMEOUT_MS   10000
#define AUDIT_STOP_MS           2000
#define AUDIT_ANSWER_MAX        (64u << 10)

struct Audit {
        pthread_mutex_t lock;
        pthread_cond_t cond;            /* a full batch waits, or stop */
        AuditRecord **ring;
        size_t head, count;
        bool stop;
        int64_t stop_deadline_ms;
        AuditStats stats;
        size_t in_flight;               /* taken from the ring, neither sent nor given up */
        char *url, *auth;
        pthread_t thread;
};

/* ---- records as JSON ------------------------------------------------------- */

static int64_t mono_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The length of the valid UTF-8 sequence at s (at most n bytes), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
        size_t len;
        unsigned min;
        if (s[0] < 0x80)
                return 1;
        if (s[0] >= 0xc2 && s[0] <= 0xdf)
                len = 2, min = 0x80;
        else if (s[0] >= 0xe0 && s[0] <= 0xef)
                len = 3, min = 0x800;
        else if (s[0] >= 0xf0 && s[0] <= 0xf4)
                len = 4, min = 0x10000;
        else
                return 0;
        if (len > n)
                return 0;
        unsigned cp = s[0] & (0x7f >> len);
        for (size_t k = 1; k < len; k++) {
                if ((s[k] & 0xc0) != 0x80)
                        return 0;
                cp = (cp << 6) | (s[k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        return len;
}

/* A JSON string of at most max bytes of s: valid UTF-8 (each bad byte a
 * '?'), never cut inside a character; NUL ends it. *cut: it was longer. */
static json_t *json_text(const char *s, size_t max, bool *cut) {
        size_t n = strnlen(s, max + 1), o = 0;
        char *buf = malloc(n + 1);
        if (!buf)
                return NULL;
        if (cut)
                *cut = n > max;
        if (n > max) {
                /* not inside a character: back to its first byte */
                n = max;
                for (unsigned k = 0; k < 3 && n > 0 && ((unsigned char) s[n] & 0xc0) == 0x80; k++)
                        n--;
        }
        for (size_t i = 0; i < n;) {
                size_t k = utf8_seq((const unsigned char *) s + i, n - i);
                if (k == 0) {
                        buf[o++] = '?';
                        i++;
                        continue;
                }
                memcpy(buf + o, s + i, k);
                o += k;
                i += k;
        }
        json_t *j = json_stringn_nocheck(buf, o);
        free(buf);
        return j;
}

/* A field of a fixed-size array, which may lack its NUL. */
#define FIELD(rec, f) json_text((rec)->f, strnlen((rec)->f, sizeof (rec)->f), NULL)

static int record_body(json_t *o, const char *key, const char *body, bool cut) {
        char flag[32];
        if (!body)
                return 0;
        bool over = false;
        if (json_object_set_new(o, key, json_text(body, AUDIT_BODY_MAX, &over)) < 0)
                return -ENOMEM;
        cut = cut || over;
        snprintf(flag, sizeof flag, "%sTruncated", key);
        return cut && json_object_set_new(o, flag, json_true()) < 0 ? -ENOMEM : 0;
}

static json_t *record_rules(DataRuleSet rules) {
        json_t *a = json_array();
        for (int i = 0; a && i < _DATA_RULE_MAX; i++)
                if (rules & (1u << i))
                        json_array_append_new(a, json_string(data_rule_name(i)));
        return a;
}

json_t *audit_record_json(const AuditRecord *rec) {
        if (!rec)
                return NULL;
        json_t *chain = json_array();
        for (unsigned i = 0; chain && i < rec->chain_n && i < AUDIT_CHAIN_MAX; i++)
                json_array_append_new(chain, FIELD(rec, chain[i]));
        json_t *o = json_pack("{s:o, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:I, s:I, s:b, s:f, s:o, s:i, s:o, s:o, s:b}",
                              "requestId", FIELD(rec, request_id),
                              "timeMs", (json_int_t) rec->at_ms,
                              "namespace", FIELD(rec, ns),
                              "caller", FIELD(rec, caller),
                              "endpoint", FIELD(rec, endpoint),
                              "alias", FIELD(rec, alias),
                              "upstream", rec->upstream[0] ? FIELD(rec, upstream) : json_null(),
                              "chain", chain,
                              "tokensIn", (json_int_t) (rec->tokens_in > INT64_MAX ? INT64_MAX : rec->tokens_in),
                              "tokensOut", (json_int_t) (rec->tokens_out > INT64_MAX ? INT64_MAX : rec->tokens_out),
                              "tokensCounted", rec->tokens_counted,
                              "latencyMs", rec->latency_ms >= 0 ? rec->latency_ms : 0.0,
                              "ttftMs", rec->ttft_ms >= 0 ? json_real(rec->ttft_ms) : json_null(),
                              "status", (int) rec->status,
                              "errorType", rec->error_type[0] ? FIELD(rec, error_type) : json_null(),
                              "rules", record_rules(rec->rules),
                              "stream", rec->stream);
        if (o && (record_body(o, "requestBody", rec->request_body, false) < 0 ||
                  record_body(o, "responseBody", rec->response_body, rec->response_body_cut) < 0)) {
                json_decref(o);
                return NULL;
        }
        return o;
}

static void record_free(AuditRecord *r) {
        if (!r)
                return;
        audit_record_clear(r);
        free(r);
}

/* ---- the queue ------------------------------------------------------------- */

/* A body kept to AUDIT_BODY_MAX bytes and one more, so that the JSON
 * knows it was cut: a large body must not sit in the queue whole. */
static char *body_take(char **p) {
        char *b = *p;
        *p = NULL;
        if (b && strnlen(b, AUDIT_BODY_MAX + 2) > AUDIT_BODY_MAX + 1) {
                b[AUDIT_BODY_MAX + 1] = 0;
                char *small = realloc(b, AUDIT_BODY_MAX + 2);
                return small ? small : b;
        }
        return b;
}

void audit_submit(Audit *a, AuditRecord *rec) {
        if (!rec)
                return;
        AuditRecord *r = a ? malloc(sizeof *r) : NULL;
        if (r)
                audit_stream_finish(rec);       /* out of memory: the record goes without the body */
        if (!r) {
                audit_record_clear(rec);
                if (a) {
                        pthread_mutex_lock(&a->lock);
                        a->stats.dropped++;
                        pthread_mutex_unlock(&a->lock);
                }
                return;
        }
        *r = *rec;
        r->request_body = body_take(&rec->request_body);
        r->response_body = body_take(&rec->response_body);
        r->stream_body = NULL;

        AuditRecord *old = NULL;
        pthread_mutex_lock(&a->lock);
        if (a->count == AUDIT_QUEUE_MAX) {
                old = a->ring[a->head];
                a->head = (a->head + 1) % AUDIT_QUEUE_MAX;
                a->count--;
                a->stats.dropped++;
        }
        a->ring[(a->head + a->count) % AUDIT_QUEUE_MAX] = r;
        a->count++;
        if (a->count >= AUDIT_BATCH_MAX)
                pthread_cond_signal(&a->cond);
        pthread_mutex_unlock(&a->lock);
        record_free(old);
}

static AuditRecord *queue_pop(Audit *a) {
        AuditRecord *r = NULL;
        pthread_mutex_lock(&a->lock);
        if (a->count > 0) {
                r = a->ring[a->head];
                a->head = (a->head + 1) % AUDIT_QUEUE_MAX;
                a->count--;
                a->in_flight++;
        }
        pthread_mutex_unlock(&a->lock);
        return r;
}

/* ---- batches ----------------------------------------------------------------- */

typedef struct Batch {
        char *body;                     /* {"records":[...]} */
        size_t len, cap, n;
        char *carry;                    /* a record that did not fit: the next batch's first */
} Batch;

static int batch_append(Batch *b, const char *s, size_t n) {
        if (b->len + n + 1 > b->cap) {
                size_t cap = b->cap ? b->cap : 64 << 10;
                while (cap < b->len + n + 1)
                        cap *= 2;
                char *p = realloc(b->body, cap);
                if (!p)
                        return -ENOMEM;
                b->body = p;
                b->cap = cap;
        }
        memcpy(b->body + b->len, s, n);
        b->len += n;
        b->body[b->len] = 0;
        return 0;
}

/* Add one record's JSON text; -E2BIG when it would pass the byte limit. */
static int batch_add(Batch *b, const char *rec) {
        size_t n = strlen(rec);
        if (b->len + n + 3 > AUDIT_BATCH_BYTES_MAX && b->n > 0)
                return -E2BIG;
        if ((b->n == 0 && batch_append(b, "{\"records\":[", 12) < 0) ||
            (b->n > 0 && batch_append(b, ",", 1) < 0) || batch_append(b, rec, n) < 0)
                return -ENOMEM;
        b->n++;
        return 0;
}

/* Records taken from the queue that will not be sent (out of memory). */
static void batch_lost(Audit *a, size_t n) {
        pthread_mutex_lock(&a->lock);
        a->stats.dropped += n;
        a->in_flight -= n <= a->in_flight ? n : a->in_flight;
        pthread_mutex_unlock(&a->lock);
}

/* Fill the batch from the queue: up to AUDIT_BATCH_MAX records and
 * AUDIT_BATCH_BYTES_MAX bytes. Returns the number of records in it. */
static size_t batch_fill(Audit *a, Batch *b) {
        b->len = b->n = 0;
        if (b->carry) {
                if (batch_add(b, b->carry) < 0)
                        batch_lost(a, 1);
                free(b->carry);
                b->carry = NULL;
        }
        while (b->n < AUDIT_BATCH_MAX && !b->carry) {
                AuditRecord *r = queue_pop(a);
                if (!r)
                        break;
                json_t *j = audit_record_json(r);
                char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
                json_decref(j);
                record_free(r);
                int k = text ? batch_add(b, text) : -ENOMEM;
                if (k == -E2BIG) {
                        b->carry = text;
                        break;
                }
                free(text);
                if (k < 0)
                        batch_lost(a, 1);
        }
        if (b->n > 0 && batch_append(b, "]}", 2) < 0) {
                batch_lost(a, b->n);
                b->n = 0;
        }
        return b->n;
}

static size_t discard_answer(char *data, size_t size, size_t n, void *cls) {
        size_t *total = cls;
        (void) data;
        *total += size * n;
        return *total > AUDIT_ANSWER_MAX ? 0 : size * n;
}

/* POST the batch; the HTTP status, or 0 when there was no answer. */
static long batch_post(Audit *a, CURL *h, const Batch *b, long timeout_ms, char err[CURL_ERROR_SIZE]) {
        size_t answer = 0;
        long status = 0;
        struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
        if (hdrs && a->auth)
                hdrs = curl_slist_append(hdrs, a->auth);
        if (!hdrs) {
                snprintf(err, CURL_ERROR_SIZE, "out of memory");
                return 0;
        }
        curl_easy_reset(h);
        curl_easy_setopt(h, CURLOPT_URL, a->url);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, b->body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) b->len);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard_answer);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &answer);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 2000 ? timeout_ms : 2000L);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, err);
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
        err[0] = 0;
        CURLcode rc = curl_easy_perform(h);
        curl_slist_free_all(hdrs);
        if (rc == CURLE_OK)
                curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        else if (!err[0])
                snprintf(err, CURL_ERROR_SIZE, "%s", curl_easy_strerror(rc));
        return status;
}

/* ---- the thread -------------------------------------------------------------- */

/* Wait until ms from now, a full batch (when full_wakes), or stop. Returns
 * whether stopping. */
static bool audit_wait(Audit *a, unsigned ms, bool full_wakes) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += ms / 1000;
        ts.tv_nsec += (long) (ms % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
        }
        pthread_mutex_lock(&a->lock);
        while (!a->stop && !(full_wakes && a->count >= AUDIT_BATCH_MAX))
                if (pthread_cond_timedwait(&a->cond, &a->lock, &ts) == ETIMEDOUT)
                        break;
        bool stop = a->stop;
        pthread_mutex_unlock(&a->lock);
        return stop;
}

static long time_left_ms(Audit *a, bool stopping) {
        if (!stopping)
                return AUDIT_POST_TIMEOUT_MS;
        long left = (long) (a->stop_deadline_ms - mono_ms());
        return left < AUDIT_POST_TIMEOUT_MS ? left : AUDIT_POST_TIMEOUT_MS;
}

/* Post b until the controller takes it (or refuses it), or until stopping
 * runs out of time. Returns false when it gave up for the stop. */
static bool batch_deliver(Audit *a, CURL *h, Batch *b, bool *stopping) {
        unsigned backoff = AUDIT_FLUSH_MS;
        bool failing = false;
        for (;;) {
                char err[CURL_ERROR_SIZE];
                long left = time_left_ms(a, *stopping);
                if (left <= 0)
                        return false;
                long st = batch_post(a, h, b, left, err);
                pthread_mutex_lock(&a->lock);
                if (st >= 200 && st < 300)
                        a->stats.sent += b->n;
                else if (st >= 400 && st < 500 && st != 401 && st != 403 && st != 408 && st != 429)
                        a->stats.rejected += b->n;
                else
                        a->stats.failures++;
                bool done = st >= 200 && st < 500 && st != 401 && st != 403 && st != 408 && st != 429;
                if (done)
                        a->in_flight -= b->n <= a->in_flight ? b->n : a->in_flight;
                pthread_mutex_unlock(&a->lock);
                if (done) {
                        if (st >= 400)
                                fprintf(stderr, PROG ": llm audit: the controller refused a batch of %zu records "
                                        "(%ld); they are dropped\n", b->n, st);
                        else if (failing)
                                fprintf(stderr, PROG ": llm audit: the controller takes records again\n");
                        return true;
                }
                if (!failing && st)
                        fprintf(stderr, PROG ": llm audit: the controller answered %ld; keeping %zu records "
                                "and retrying\n", st, b->n);
                else if (!failing)
                        fprintf(stderr, PROG ": llm audit: %s; keeping %zu records and retrying\n", err, b->n);
                failing = true;
                if (!*stopping)
                        *stopping = audit_wait(a, backoff, false);
                else
                        nanosleep(&(struct timespec) { .tv_nsec = 100 * 1000000 }, NULL);
                backoff = backoff * 2 > AUDIT_BACKOFF_MAX_MS ? AUDIT_BACKOFF_MAX_MS : backoff * 2;
        }
}

static void *audit_thread(void *arg) {
        Audit *a = arg;
        Batch b = {};
        CURL *h = curl_easy_init();
        bool stopping = false;

        while (h) {
                if (!stopping)
                        stopping = audit_wait(a, AUDIT_FLUSH_MS, true);
                if (stopping) {
                        pthread_mutex_lock(&a->lock);
                        bool empty = a->count == 0 && !b.carry;
                        pthread_mutex_unlock(&a->lock);
                        if (empty)
                                break;
                }
                if (batch_fill(a, &b) == 0)
                        continue;
                if (!batch_deliver(a, h, &b, &stopping))
                        break;
        }
        pthread_mutex_lock(&a->lock);
        a->stats.dropped += a->in_flight;      /* the unsent batch and the carried record */
        a->in_flight = 0;
        pthread_mutex_unlock(&a->lock);
        free(b.body);
        free(b.carry);
        if (h)
                curl_easy_cleanup(h);
        return NULL;
}

/* ---- life cycle -------------------------------------------------------------- */

Audit *audit_new(const char *controller_url, const char *auth_header) {
        pthread_condattr_t ca;
        if (!controller_url || !*controller_url)
                return NULL;
        Audit *a = calloc(1, sizeof *a);
        if (!a)
                return NULL;
        a->ring = calloc(AUDIT_QUEUE_MAX, sizeof *a->ring);
        size_t n = strlen(controller_url);
        while (n > 0 && controller_url[n - 1] == '/')
                n--;
        if (!a->ring || asprintf(&a->url, "%.*s%s", (int) n, controller_url, AUDIT_PATH) < 0 ||
            (auth_header && !(a->auth = strdup(auth_header)))) {
                free(a->ring);
                free(a->auth);
                free(a);
                return NULL;
        }
        pthread_mutex_init(&a->lock, NULL);
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&a->cond, &ca);
        pthread_condattr_destroy(&ca);
        if (pthread_create(&a->thread, NULL, audit_thread, a) != 0) {
                pthread_cond_destroy(&a->cond);
                pthread_mutex_destroy(&a->lock);
                free(a->ring);
                free(a->url);
                free(a->auth);
                free(a);
                return NULL;
        }
        return a;
}

Audit *audit_free(Audit *a) {
        if (!a)
                return NULL;
        pthread_mutex_lock(&a->lock);
        a->stop = true;
        a->stop_deadline_ms = mono_ms() + AUDIT_STOP_MS;
        pthread_cond_broadcast(&a->cond);
        pthread_mutex_unlock(&a->lock);
        pthread_join(a->thread, NULL);
        for (AuditRecord *r; (r = queue_pop(a));) {
                a->stats.dropped++;
                record_free(r);
        }
        pthread_cond_destroy(&a->cond);
        pthread_mutex_destroy(&a->lock);
        if (a->auth)
                explicit_bzero(a->auth, strlen(a->auth));
        free(a->auth);
        free(a->url);
        free(a->ring);
        free(a);
        return NULL;
}

uint64_t audit_dropped(Audit *a) {
        AuditStats s;
        audit_stats(a, &s);
        return s.dropped;
}

void audit_stats(Audit *a, AuditStats *ret) {
        if (!ret)
                return;
        *ret = (AuditStats) {};
        if (!a)
                return;
        pthread_mutex_lock(&a->lock);
        *ret = a->stats;
        ret->queued = a->count + a->in_flight;
        pthread_mutex_unlock(&a->lock);
}
