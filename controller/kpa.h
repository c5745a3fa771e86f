/* controller/kpa.h: the autoscaler's decision, Knative's KPA arithmetic, as
 * a pure function over an explicit state: the caller records one observed
 * concurrency sample per second and asks for a decision; nothing here reads
 * a clock, allocates, or keeps a global. docs/autoscaling.md explains it. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#define KPA_WINDOW_MAX_S        3600    /* the longest stable window, in seconds */
#define KPA_TARGET_UTILIZATION  0.7     /* aim each instance at target x 0.7 */
#define KPA_PANIC_THRESHOLD     2.0     /* panic when demand reaches 2x ready */
#define KPA_REASON_MAX          200

typedef struct KpaConfig {
        uint32_t min, max, initial;
        uint32_t target;                        /* concurrency per instance to aim for */
        uint64_t stable_window_ms;              /* 6 s .. 1 h */
        uint64_t panic_window_ms;               /* 1 s .. stable_window_ms */
        uint64_t scale_to_zero_after_ms;
        uint64_t retention_ms;                  /* the last instance's least ready time; 0: none */
        double max_scale_up_rate;               /* > 1 */
        double max_scale_down_rate;             /* > 1 */
} KpaConfig;

/* kpa_state_init it to start. Samples live in a ring of one bucket
 * per second; seconds with no sample recorded count as 0. */
typedef struct KpaState {
        float buckets[KPA_WINDOW_MAX_S];
        int64_t first_sec;                      /* first second with a sample; -1 none */
        int64_t last_sec;                       /* newest second written */
        bool started;                           /* any sample or decision yet */
        int64_t last_traffic_ms;                /* last time demand was above 0; -1 never */
        int64_t panic_since_ms;                 /* -1: not panicking */
        int64_t last_panic_ms;                  /* last time the panic threshold was crossed */
        uint32_t max_panic;                     /* highest count decided while panicking */
        bool initial_reached;                   /* initial scale was reached once */
        int64_t initial_reached_ms;             /* when; idle time counts from then */
} KpaState;

typedef struct KpaInput {
        int64_t now_ms;                         /* the caller's clock (monotonic) */
        uint32_t ready;                         /* ready instances now */
        bool reachable;                         /* routed by the traffic split */
        bool poked;                             /* a request waits with nothing ready */
        int64_t ready_since_ms;                 /* when the longest-ready instance became ready; -1: none */
} KpaInput;

typedef struct KpaDecision {
        uint32_t desired;
        bool panicking;
        double stable_concurrency;              /* averages over each window */
        double panic_concurrency;
        char reason[KPA_REASON_MAX];            /* one sentence, for `fnbox describe` */
} KpaDecision;

void kpa_state_init(KpaState *s);
/* One observed concurrency (in-flight + queued, over every activator) at
 * now_ms. Several samples in one second: the largest counts. Samples older
 * than the newest one are ignored. */
void kpa_record(KpaState *s, int64_t now_ms, double concurrency);
/* Average over the last window_ms up to now_ms (from the first sample on,
 * while the window is not full yet). */
double kpa_window_average(const KpaState *s, int64_t now_ms, uint64_t window_ms);
/* The decision, updating the panic and scale-to-zero bookkeeping in s. */
void kpa_decide(KpaState *s, const KpaConfig *cfg, const KpaInput *in, KpaDecision *ret);
