/* activator/control.c: the controller client threads (see control.h). */
#define _GNU_SOURCE
#include "activator/control.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/util.h"

#define PROG "fnbox-activator"

struct Control {
        Router *router;
        char *url, *auth, *id;
        pthread_t routes, report, sync;
        bool routes_started, report_started, sync_started;
        _Atomic bool stop;
        pthread_mutex_t lock;
        pthread_cond_t cond;
};

typedef struct Body {
        char *p;
        size_t len;
        bool over;
} Body;

static size_t on_data(char *data, size_t size, size_t n, void *cls) {
        Body *b = cls;
        size_t len = size * n;
        if (b->len + len > CONTROL_TABLE_MAX) {
                b->over = true;
                return 0;
        }
        char *p = realloc(b->p, b->len + len + 1);
        if (!p)
                return 0;
        memcpy(p + b->len, data, len);
        b->p = p;
        b->len += len;
        b->p[b->len] = 0;
        return len;
}

static int on_progress(void *cls, curl_off_t a _unused_, curl_off_t b _unused_, curl_off_t c _unused_,
                       curl_off_t d _unused_) {
        Control *ctl = cls;
        return atomic_load(&ctl->stop) ? 1 : 0;
}

/* One request; the status (0 when there was no answer) and the body. */
static long control_call(Control *ctl, CURL *h, const char *method, const char *path, const char *json,
                         long timeout_ms, Body *ret, char *err) {
        char url[4200];
        snprintf(url, sizeof url, "%s%s", ctl->url, path);
        struct curl_slist *hdrs = curl_slist_append(NULL, ctl->auth);
        if (json)
                hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        curl_easy_reset(h);
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
        if (json)
                curl_easy_setopt(h, CURLOPT_POSTFIELDS, json);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, ret);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, ctl);
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, err);
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
        err[0] = 0;
        CURLcode rc = curl_easy_perform(h);
        curl_slist_free_all(hdrs);
        long status = 0;
        if (rc == CURLE_OK)
                curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        else if (!err[0])
                snprintf(err, CURL_ERROR_SIZE, "%s", curl_easy_strerror(rc));
        return status;
}

/* Sleep ms unless stopping. */
static void control_sleep(Control *ctl, unsigned ms) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += ms / 1000;
        ts.tv_nsec += (long) (ms % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
        }
        pthread_mutex_lock(&ctl->lock);
        while (!atomic_load(&ctl->stop))
                if (pthread_cond_timedwait(&ctl->cond, &ctl->lock, &ts) == ETIMEDOUT)
                        break;
        pthread_mutex_unlock(&ctl->lock);
}

/* Take a table from a 200 answer (only_newer: router_swap_newer). 1:
 * swapped in, 0: same version, <0: bad. */
static int routes_take(Control *ctl, const Body *b, uint64_t *version, bool only_newer, char *why, size_t why_len) {
        json_error_t je;
        json_t *doc = json_loadb(b->p ? b->p : "", b->len, 0, &je);
        if (!doc) {
                snprintf(why, why_len, "not JSON: %s", je.text);
                return -EINVAL;
        }
        json_t *v = json_object_get(doc, "version");
        if (json_is_integer(v) && (uint64_t) json_integer_value(v) == *version) {
                json_decref(doc);
                return 0;
        }
        RouteTable *t = NULL;
        int r = route_table_parse(doc, &t, why, why_len);
        json_decref(doc);
        if (r < 0)
                return r;
        *version = t->version;
        (only_newer ? router_swap_newer : router_swap)(ctl->router, t);
        return 1;
}

static void *routes_main(void *arg) {
        Control *ctl = arg;
        CURL *h = curl_easy_init();
        uint64_t version = 0;
        unsigned backoff = CONTROL_BACKOFF_MIN_MS;
        bool failing = false, ever = false;
        char err[CURL_ERROR_SIZE], why[512], path[128];
        while (h && !atomic_load(&ctl->stop)) {
                Body b = { 0 };
                snprintf(path, sizeof path, "/v1/routes?after=%llu&waitMs=%u",
                         (unsigned long long) (failing ? 0 : version), CONTROL_WAIT_MS);
                long st = control_call(ctl, h, "GET", path, NULL, CONTROL_WAIT_MS + 15000, &b, err);
                int r = -EIO;
                if (st == 200)
                        r = routes_take(ctl, &b, &version, false, why, sizeof why);
                else if (st)
                        snprintf(why, sizeof why, "HTTP %ld", st);
                else
                        snprintf(why, sizeof why, "%s", err);
                free(b.p);
                if (atomic_load(&ctl->stop))
                        break;
                router_set_live(ctl->router, r >= 0);
                if (r >= 0) {
                        if (r > 0 && (failing || !ever))
                                fprintf(stderr, PROG ": routes: version %llu from the controller\n",
                                        (unsigned long long) version);
                        failing = false;
                        ever = true;
                        backoff = CONTROL_BACKOFF_MIN_MS;
                        continue;
                }
                if (!failing)
                        fprintf(stderr, PROG ": routes: %s; keeping the table of version %llu, retrying\n", why,
                                (unsigned long long) version);
                failing = true;
                control_sleep(ctl, backoff);
                backoff = backoff * 2 > CONTROL_BACKOFF_MAX_MS ? CONTROL_BACKOFF_MAX_MS : backoff * 2;
        }
        curl_easy_cleanup(h);
        return NULL;
}

/* The misses' rounds: the table as it is now, at once (the long poll may
 * be on its way with it, or not yet woken). */
static void *sync_main(void *arg) {
        Control *ctl = arg;
        CURL *h = curl_easy_init();
        char err[CURL_ERROR_SIZE], why[512], path[128];
        uint64_t round;
        while (h && (round = router_wait_misses(ctl->router))) {
                uint64_t version = router_version(ctl->router);
                Body b = { 0 };
                snprintf(path, sizeof path, "/v1/routes?after=%llu&waitMs=0", (unsigned long long) version);
                long st = control_call(ctl, h, "GET", path, NULL, CONTROL_SYNC_TIMEOUT_MS, &b, err);
                if (st == 200 && routes_take(ctl, &b, &version, true, why, sizeof why) < 0)
                        fprintf(stderr, PROG ": routes: %s\n", why);
                free(b.p);
                router_misses_done(ctl->router, round);
        }
        curl_easy_cleanup(h);
        return NULL;
}

static void post_json(Control *ctl, CURL *h, const char *path, json_t *doc, bool *failing) {
        char err[CURL_ERROR_SIZE];
        char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
        json_decref(doc);
        if (!text)
                return;
        Body b = { 0 };
        long st = control_call(ctl, h, "POST", path, text, 2000, &b, err);
        free(text);
        free(b.p);
        bool bad = st < 200 || st >= 300;
        if (bad && !*failing)
                fprintf(stderr, PROG ": %s: %s%s\n", path, st ? "answered " : "", st ? (st >= 500 ? "5xx" : "4xx") : err);
        *failing = bad;
}

static void *report_main(void *arg) {
        Control *ctl = arg;
        CURL *h = curl_easy_init();
        bool failing_stats = false, failing_poke = false;
        uint64_t next = router_now_ns() + CONTROL_STATS_MS * 1000000ull;
        while (h && !atomic_load(&ctl->stop)) {
                uint64_t tick = router_now_ns() + CONTROL_TICK_MS * 1000000ull;
                json_t *pokes = router_wait_pokes(ctl->router, tick < next ? tick : next);
                router_tick(ctl->router);
                size_t i;
                json_t *p;
                json_array_foreach(pokes, i, p)
                        post_json(ctl, h, "/v1/activator/poke", json_incref(p), &failing_poke);
                json_decref(pokes);
                uint64_t now = router_now_ns();
                if (now >= next && !atomic_load(&ctl->stop)) {
                        post_json(ctl, h, "/v1/activator/stats", router_stats(ctl->router, ctl->id), &failing_stats);
                        next = now + CONTROL_STATS_MS * 1000000ull;
                }
        }
        curl_easy_cleanup(h);
        return NULL;
}

int control_start(Router *r, const char *url, const char *token, const char *id, Control **ret) {
        Control *ctl = calloc(1, sizeof *ctl);
        if (!ctl)
                return -ENOMEM;
        ctl->router = r;
        pthread_mutex_init(&ctl->lock, NULL);
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&ctl->cond, &ca);
        pthread_condattr_destroy(&ca);
        size_t ul = strlen(url);
        while (ul > 0 && url[ul - 1] == '/')
                ul--;
        ctl->url = strndup(url, ul);
        ctl->id = strdup(id);
        if (!ctl->url || !ctl->id || asprintf(&ctl->auth, "Authorization: Bearer %s", token) < 0) {
                ctl->auth = NULL;
                control_stop(ctl);
                return -ENOMEM;
        }
        int e = pthread_create(&ctl->routes, NULL, routes_main, ctl);
        ctl->routes_started = e == 0;
        if (e == 0)
                e = pthread_create(&ctl->report, NULL, report_main, ctl);
        ctl->report_started = ctl->routes_started && e == 0;
        if (ctl->report_started)
                e = pthread_create(&ctl->sync, NULL, sync_main, ctl);
        ctl->sync_started = ctl->report_started && e == 0;
        if (e) {
                control_stop(ctl);
                return -e;
        }
        *ret = ctl;
        return 0;
}

void control_stop(Control *ctl) {
        if (!ctl)
                return;
        atomic_store(&ctl->stop, true);
        pthread_mutex_lock(&ctl->lock);
        pthread_cond_broadcast(&ctl->cond);
        pthread_mutex_unlock(&ctl->lock);
        router_interrupt(ctl->router);
        if (ctl->routes_started)
                pthread_join(ctl->routes, NULL);
        if (ctl->report_started)
                pthread_join(ctl->report, NULL);
        if (ctl->sync_started)
                pthread_join(ctl->sync, NULL);
        pthread_mutex_destroy(&ctl->lock);
        pthread_cond_destroy(&ctl->cond);
        free(ctl->url);
        free(ctl->auth);
        free(ctl->id);
        free(ctl);
}
