/* controller/kpa.c: Knative's KPA decision. Desired instances come from the
 * average concurrency over a stable window (60 s) and a panic window (6 s),
 * aiming each instance at target x 0.7; demand in the panic window at 2x the
 * ready instances starts panic mode, which only scales up and lasts at least
 * one stable window after the last time the threshold was crossed. Then the
 * rate limits, initial, min and max scale, and scale to zero only after
 * scaleToZeroAfter without any traffic. Pure: the caller brings the clock. */
#include "controller/kpa.h"

#define MANIFEST_SCALE_LIMIT 1e6  /* no decision goes above this many instances */

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void kpa_state_init(KpaState *s) {
        memset(s, 0, sizeof *s);
        s->first_sec = s->last_sec = -1;
        s->last_traffic_ms = s->panic_since_ms = s->last_panic_ms = s->initial_reached_ms = -1;
}

static int64_t sec_of(int64_t ms) {
        return ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
}

void kpa_record(KpaState *s, int64_t now_ms, double concurrency) {
        int64_t sec = sec_of(now_ms);
        if (!(concurrency >= 0))        /* NaN or negative: nothing observed */
                concurrency = 0;
        if (s->first_sec < 0 && s->last_sec < 0) {
                s->first_sec = s->last_sec = sec;
                s->buckets[sec % KPA_WINDOW_MAX_S] = 0;
        }
        if (sec < s->last_sec)
                return;
        for (int64_t k = s->last_sec + 1, n = 0; k <= sec && n < KPA_WINDOW_MAX_S; k++, n++)
                s->buckets[k % KPA_WINDOW_MAX_S] = 0;
        s->last_sec = sec;
        float *b = &s->buckets[sec % KPA_WINDOW_MAX_S];
        if (concurrency > *b)
                *b = (float) concurrency;
        if (concurrency > 0)
                s->last_traffic_ms = now_ms;
        s->started = true;
}

double kpa_window_average(const KpaState *s, int64_t now_ms, uint64_t window_ms) {
        int64_t now = sec_of(now_ms), w = (int64_t) (window_ms / 1000);
        if (s->first_sec < 0 || now < s->first_sec)
                return 0;
        if (w < 1)
                w = 1;
        if (w > KPA_WINDOW_MAX_S)
                w = KPA_WINDOW_MAX_S;
        int64_t lo = now - w + 1;
        if (lo < s->first_sec)
                lo = s->first_sec;
        double sum = 0;
        for (int64_t k = lo; k <= now && k <= s->last_sec; k++)
                if (k > s->last_sec - KPA_WINDOW_MAX_S)
                        sum += s->buckets[k % KPA_WINDOW_MAX_S];
        return sum / (double) (now - lo + 1);
}

__attribute__((format(printf, 2, 3)))
static void reason_add(KpaDecision *d, const char *fmt, ...) {
        size_t n = strlen(d->reason);
        if (n + 3 >= sizeof d->reason)
                return;
        if (n > 0) {
                memcpy(d->reason + n, "; ", 3);
                n += 2;
        }
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(d->reason + n, sizeof d->reason - n, fmt, ap);
        va_end(ap);
}

/* ceil and floor for the non-negative values here, without libm. */
static double up_int(double v) {
        if (!(v > 0))
                return 0;
        if (v >= 9e15)
                return 9e15;
        double t = (double) (int64_t) v;
        return t < v ? t + 1 : t;
}

static double down_int(double v) {
        return v > 0 ? (v >= 9e15 ? 9e15 : (double) (int64_t) v) : 0;
}

static double clampd(double v, double lo, double hi) {
        return v < lo ? lo : v > hi ? hi : v;
}

/* Panic mode starts when the panic window's demand reaches the threshold and
 * ends one stable window after the last time it did. */
static void panic_update(KpaState *s, const KpaConfig *cfg, int64_t now, bool over) {
        if (over) {
                if (s->panic_since_ms < 0)
                        s->panic_since_ms = now;
                s->last_panic_ms = now;
        } else if (s->panic_since_ms >= 0 && now - s->last_panic_ms >= (int64_t) cfg->stable_window_ms) {
                s->panic_since_ms = -1;
                s->max_panic = 0;
        }
}

/* The window arithmetic: stable (or, panicking, the larger of stable and
 * panic, never below what panic mode already decided), within the rates. */
static uint32_t decide_windows(KpaState *s, const KpaConfig *cfg, const KpaInput *in, KpaDecision *d) {
        double ready = in->ready > 0 ? in->ready : 1;
        double per = (double) cfg->target * KPA_TARGET_UTILIZATION;
        d->stable_concurrency = kpa_window_average(s, in->now_ms, cfg->stable_window_ms);
        d->panic_concurrency = kpa_window_average(s, in->now_ms, cfg->panic_window_ms);
        double dspc = up_int(d->stable_concurrency / per), dppc = up_int(d->panic_concurrency / per);
        double up = up_int(cfg->max_scale_up_rate * ready), down = down_int(ready / cfg->max_scale_down_rate);
        if (up > MANIFEST_SCALE_LIMIT)
                up = MANIFEST_SCALE_LIMIT;
        double stable = clampd(dspc, down, up), panic = clampd(dppc, down, up);
        panic_update(s, cfg, in->now_ms, dppc / ready >= KPA_PANIC_THRESHOLD);
        d->panicking = s->panic_since_ms >= 0;
        uint32_t want = (uint32_t) stable;
        if (!d->panicking) {
                reason_add(d, "stable: concurrency %.1f over %llus / (target %u x 0.7) = %.0f", d->stable_concurrency,
                           (unsigned long long) (cfg->stable_window_ms / 1000), cfg->target, dspc);
        } else {
                if (panic > want)
                        want = (uint32_t) panic;
                if (want > s->max_panic)
                        s->max_panic = want;
                reason_add(d, "panic: concurrency %.1f over %llus needs %.0f, >= 2x %u ready; no scale-down while "
                           "panicking (holding %u)", d->panic_concurrency,
                           (unsigned long long) (cfg->panic_window_ms / 1000), dppc, in->ready, s->max_panic);
                want = s->max_panic;
        }
        double wanted = d->panicking && dppc > dspc ? dppc : dspc;
        if (wanted > up)
                reason_add(d, "limited by maxScaleUpRate %g x %.0f ready = %.0f", cfg->max_scale_up_rate, ready, up);
        else if (!d->panicking && wanted < down)
                reason_add(d, "limited by maxScaleDownRate: %.0f ready / %g = %.0f", ready, cfg->max_scale_down_rate, down);
        return want;
}

/* Scale to zero only after scale_to_zero_after_ms without any traffic;
 * until then keep one instance if there is one. */
static uint32_t apply_idle(KpaState *s, const KpaConfig *cfg, const KpaInput *in, uint32_t want, KpaDecision *d) {
        int64_t since = s->last_traffic_ms > s->initial_reached_ms ? s->last_traffic_ms : s->initial_reached_ms;
        int64_t quiet_ms = since >= 0 ? in->now_ms - since : 0;
        if (quiet_ms >= (int64_t) cfg->scale_to_zero_after_ms && cfg->min == 0 && !d->panicking) {
                int64_t ready_ms = in->ready > 0 && in->ready_since_ms >= 0 ? in->now_ms - in->ready_since_ms : -1;
                if (ready_ms >= 0 && ready_ms < (int64_t) cfg->retention_ms) {
                        reason_add(d, "no traffic for %llus, holding 1 for its retention: ready %llus of %llus",
                                   (unsigned long long) (cfg->scale_to_zero_after_ms / 1000),
                                   (unsigned long long) (ready_ms / 1000),
                                   (unsigned long long) (cfg->retention_ms / 1000));
                        return 1;
                }
                if (want > 0 || in->ready > 0)
                        reason_add(d, "no traffic for %llus: scale to zero",
                                   (unsigned long long) (cfg->scale_to_zero_after_ms / 1000));
                return 0;
        }
        /* also while the first instance is still starting: the request that
         * woke the revision may not be in any sample yet (the activator's
         * report comes up to a second later), and dropping the instance
         * half-started would only start another */
        if (want == 0 && (in->ready > 0 || (s->last_traffic_ms >= 0 && !in->poked))) {
                reason_add(d, "holding 1 until %llus without traffic",
                           (unsigned long long) (cfg->scale_to_zero_after_ms / 1000));
                return 1;
        }
        return want;
}

void kpa_decide(KpaState *s, const KpaConfig *cfg, const KpaInput *in, KpaDecision *d) {
        memset(d, 0, sizeof *d);
        s->started = true;
        if (!in->reachable) {
                s->panic_since_ms = -1;
                s->max_panic = 0;
                reason_add(d, "not in the traffic split: scale to zero");
                return;
        }
        if (in->poked)
                s->last_traffic_ms = in->now_ms;
        if (!s->initial_reached && in->ready >= cfg->initial) {
                s->initial_reached = true;
                s->initial_reached_ms = in->now_ms;
        }
        uint32_t want = decide_windows(s, cfg, in, d);
        want = apply_idle(s, cfg, in, want, d);
        if (in->poked && want < 1) {
                want = 1;
                reason_add(d, "a request is waiting: scale from zero");
        }
        if (!s->initial_reached && want < cfg->initial) {
                want = cfg->initial;
                reason_add(d, "initial scale %u", cfg->initial);
        }
        if (want < cfg->min) {
                want = cfg->min;
                reason_add(d, "min %u", cfg->min);
        }
        if (want > cfg->max) {
                want = cfg->max;
                reason_add(d, "max %u", cfg->max);
        }
        d->desired = want;
}
