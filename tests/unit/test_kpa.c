/* tests/unit/test_kpa.c: the autoscaler's decision on recorded traffic
 * traces: one concurrency sample per second, instances that become ready
 * at the next second (or not at all), and the decision after each sample. */
#include "test.h"

#include "controller/kpa.h"

typedef struct Sim {
        KpaState s;
        KpaConfig c;
        uint32_t ready;
        int64_t t;              /* ms */
        bool follow;            /* ready instances follow the last decision */
        KpaDecision d;
} Sim;

static void sim_init(Sim *m) {
        kpa_state_init(&m->s);
        m->c = (KpaConfig) { .min = 0, .max = 1000, .initial = 1, .target = 10, .stable_window_ms = 60000,
                             .panic_window_ms = 6000, .scale_to_zero_after_ms = 30000,
                             .max_scale_up_rate = 1000, .max_scale_down_rate = 2 };
        m->ready = 0;
        m->t = 1000000;
        m->follow = true;
}

/* One second of traffic at concurrency conc, then a decision. */
static uint32_t step(Sim *m, double conc) {
        m->t += 1000;
        kpa_record(&m->s, m->t, conc);
        KpaInput in = { .now_ms = m->t, .ready = m->ready, .reachable = true };
        kpa_decide(&m->s, &m->c, &in, &m->d);
        if (m->follow)
                m->ready = m->d.desired;
        return m->d.desired;
}

/* Run a trace; returns the last decision. */
static uint32_t run(Sim *m, const double *trace, size_t n) {
        uint32_t d = 0;
        for (size_t i = 0; i < n; i++)
                d = step(m, trace[i]);
        return d;
}

static void fill(double *a, size_t n, double v) {
        for (size_t i = 0; i < n; i++)
                a[i] = v;
}

TEST(kpa_window_average_partial_and_gaps) {
        KpaState s;
        kpa_state_init(&s);
        ASSERT_TRUE(kpa_window_average(&s, 5000, 60000) == 0);
        kpa_record(&s, 10000, 6);
        kpa_record(&s, 10500, 2);       /* same second: the larger counts */
        kpa_record(&s, 11000, 12);
        /* two seconds seen: (6 + 12) / 2, not / 60 */
        ASSERT_TRUE(kpa_window_average(&s, 11000, 60000) == 9.0);
        /* a second without a sample counts as 0 */
        ASSERT_TRUE(kpa_window_average(&s, 12000, 60000) == 6.0);
        kpa_record(&s, 9000, 1000);     /* older than the newest: ignored */
        ASSERT_TRUE(kpa_window_average(&s, 12000, 60000) == 6.0);
        /* the 6 s window after 7 quiet seconds: nothing */
        kpa_record(&s, 18000, 0);
        ASSERT_TRUE(kpa_window_average(&s, 18000, 6000) == 0);
        /* a long gap clears the ring rather than reading stale buckets */
        kpa_record(&s, 11000 + 3600 * 1000, 3);
        ASSERT_TRUE(kpa_window_average(&s, 11000 + 3600 * 1000, 1000) == 3.0);
        ASSERT_TRUE(kpa_window_average(&s, 11000 + 3600 * 1000, 2000) == 1.5);
}

/* From zero: a poke gives one instance at once, before any sample. */
TEST(kpa_burst_from_zero) {
        Sim m;
        sim_init(&m);
        m.c.initial = 0;
        KpaInput in = { .now_ms = m.t, .ready = 0, .reachable = true };
        kpa_decide(&m.s, &m.c, &in, &m.d);
        ASSERT_EQ_UINT(m.d.desired, 0);
        in.poked = true;
        kpa_decide(&m.s, &m.c, &in, &m.d);
        ASSERT_EQ_UINT(m.d.desired, 1);
        ASSERT_TRUE(strstr(m.d.reason, "a request is waiting") != NULL);
        m.ready = 1;
        /* 100 requests at once: 100 / 7 = 15 instances, in panic mode */
        ASSERT_EQ_UINT(step(&m, 100), 15);
        ASSERT_TRUE(m.d.panicking);
        ASSERT_TRUE(strstr(m.d.reason, "panic") != NULL);
}

/* Woken by a poke, the first instance takes longer than a second to be
 * ready and the activator's first report with the waiting request comes
 * late: the next decisions (zero samples, nothing ready) keep the one
 * instance instead of draining it half-started; with no traffic at all
 * it goes after scaleToZeroAfter. */
TEST(kpa_slow_first_instance_kept) {
        Sim m;
        sim_init(&m);
        m.c.initial = 0;
        m.c.scale_to_zero_after_ms = 5000;
        m.follow = false;
        KpaInput in = { .now_ms = m.t, .ready = 0, .reachable = true, .poked = true };
        kpa_decide(&m.s, &m.c, &in, &m.d);
        ASSERT_EQ_UINT(m.d.desired, 1);
        ASSERT_EQ_UINT(step(&m, 0), 1);
        ASSERT_EQ_UINT(step(&m, 0), 1);
        ASSERT_TRUE(strstr(m.d.reason, "holding 1") != NULL);
        m.ready = 1;
        ASSERT_EQ_UINT(step(&m, 0), 1);
        ASSERT_EQ_UINT(step(&m, 0), 1);
        ASSERT_EQ_UINT(step(&m, 0), 0);
        ASSERT_TRUE(strstr(m.d.reason, "scale to zero") != NULL);
}

/* A steady 35 concurrent requests: 35 / (10 x 0.7) = 5 instances, no panic. */
TEST(kpa_steady_load) {
        Sim m;
        sim_init(&m);
        m.ready = 5;
        double trace[180];
        fill(trace, 180, 35);
        for (size_t i = 0; i < 180; i++) {
                ASSERT_EQ_UINT(step(&m, trace[i]), 5);
                ASSERT_TRUE(!m.d.panicking);
        }
        ASSERT_TRUE(strstr(m.d.reason, "stable: concurrency 35.0 over 60s") != NULL);
        /* 36 needs a sixth */
        m.ready = 5;
        for (int i = 0; i < 60; i++)
                step(&m, 36);
        ASSERT_EQ_UINT(m.d.desired, 6);
}

/* A spike to 10x: panic at once, no scale-down while panicking, and panic
 * lasts one stable window after the last second over the threshold. */
TEST(kpa_spike_panics) {
        Sim m;
        sim_init(&m);
        m.ready = 1;
        double calm[60];
        fill(calm, 60, 7);
        ASSERT_EQ_UINT(run(&m, calm, 60), 1);
        ASSERT_TRUE(!m.d.panicking);
        /* first spike second: panic window (5 x 7 + 70) / 6 = 17.5 -> 3 >= 2 x 1;
         * the next seconds grow with the window but stay under 2x ready */
        ASSERT_EQ_UINT(step(&m, 70), 3);
        ASSERT_TRUE(m.d.panicking);
        int64_t trigger = m.t;
        for (int i = 0; i < 5; i++) {
                step(&m, 70);
                ASSERT_TRUE(m.d.panicking);
        }
        ASSERT_EQ_UINT(m.d.desired, 10);        /* 70 / 7 */
        uint32_t held = m.d.desired;
        /* back to calm: still panicking, never below what panic decided,
         * until one stable window after the trigger */
        while (m.t - trigger < 59000) {
                step(&m, 7);
                ASSERT_TRUE(m.d.panicking);
                ASSERT_EQ_UINT(m.d.desired, held);
        }
        /* then panic ends, and the scale-down is limited to ready / 2 */
        step(&m, 7);
        ASSERT_TRUE(!m.d.panicking);
        ASSERT_EQ_UINT(m.d.desired, 5);
        ASSERT_TRUE(strstr(m.d.reason, "maxScaleDownRate") != NULL);
        step(&m, 7);
        ASSERT_TRUE(m.d.desired < 5);
}

/* Traffic stops: one instance stays until scaleToZeroAfter has passed with
 * no traffic at all, then zero (even though the 60 s average is not 0). */
TEST(kpa_decay_to_zero) {
        Sim m;
        sim_init(&m);
        m.ready = 1;
        double load[60];
        fill(load, 60, 5);
        ASSERT_EQ_UINT(run(&m, load, 60), 1);
        int64_t last = m.t;
        uint32_t d = 0;
        for (int i = 1; i < 30; i++) {
                d = step(&m, 0);
                ASSERT_TRUE(d >= 1);
        }
        ASSERT_EQ_UINT(d, 1);
        ASSERT_TRUE(m.t - last == 29000);
        ASSERT_EQ_UINT(step(&m, 0), 0);
        ASSERT_TRUE(strstr(m.d.reason, "no traffic for 30s: scale to zero") != NULL);
        /* a single request in between restarts the clock */
        m.ready = 1;
        step(&m, 1);
        for (int i = 0; i < 29; i++)
                ASSERT_EQ_UINT(step(&m, 0), 1);
        ASSERT_EQ_UINT(step(&m, 0), 0);
        /* min 1: never zero */
        m.c.min = 1;
        for (int i = 0; i < 40; i++)
                ASSERT_EQ_UINT(step(&m, 0), 1);
}

TEST(kpa_rate_limits) {
        Sim m;
        sim_init(&m);
        m.c.max_scale_up_rate = 2;
        m.ready = 2;
        m.follow = false;
        /* 700 concurrent wants 100; at most 2 x 2 ready = 4 */
        ASSERT_EQ_UINT(step(&m, 700), 4);
        ASSERT_TRUE(strstr(m.d.reason, "maxScaleUpRate 2 x 2 ready = 4") != NULL);
        m.ready = 4;
        ASSERT_EQ_UINT(step(&m, 700), 8);
        /* scale-down: 10 ready, demand for 1: at most halve */
        sim_init(&m);
        m.follow = false;
        m.ready = 10;
        double low[60];
        fill(low, 60, 7);
        ASSERT_EQ_UINT(run(&m, low, 60), 5);
        m.ready = 5;
        ASSERT_EQ_UINT(step(&m, 7), 2);         /* floor(5 / 2) */
        m.ready = 2;
        ASSERT_EQ_UINT(step(&m, 7), 1);
}

TEST(kpa_min_max_initial) {
        Sim m;
        sim_init(&m);
        m.c.initial = 3;
        m.c.max = 4;
        m.follow = false;
        /* no traffic: initial scale until it has been reached */
        ASSERT_EQ_UINT(step(&m, 0), 3);
        ASSERT_TRUE(strstr(m.d.reason, "initial scale 3") != NULL);
        m.ready = 2;
        ASSERT_EQ_UINT(step(&m, 0), 3);
        m.ready = 3;
        ASSERT_EQ_UINT(step(&m, 0), 1);         /* reached: now the idle rules */
        m.ready = 1;
        for (int i = 0; i < 29; i++)
                ASSERT_EQ_UINT(step(&m, 0), 1);
        ASSERT_EQ_UINT(step(&m, 0), 0);
        /* max caps even a panic */
        m.ready = 1;
        ASSERT_EQ_UINT(step(&m, 500), 4);
        ASSERT_TRUE(strstr(m.d.reason, "max 4") != NULL);
        /* min floors */
        sim_init(&m);
        m.c.min = 2;
        m.c.initial = 2;
        ASSERT_EQ_UINT(step(&m, 0), 2);
        for (int i = 0; i < 100; i++)
                ASSERT_EQ_UINT(step(&m, 0), 2);
}

/* A revision the traffic split no longer names goes to zero at once, min
 * or not (Knative does not keep min-scale for unreachable revisions). */
TEST(kpa_unreachable) {
        Sim m;
        sim_init(&m);
        m.c.min = 3;
        m.ready = 3;
        KpaInput in = { .now_ms = m.t, .ready = 3, .reachable = false };
        kpa_record(&m.s, m.t, 50);
        kpa_decide(&m.s, &m.c, &in, &m.d);
        ASSERT_EQ_UINT(m.d.desired, 0);
        ASSERT_TRUE(strstr(m.d.reason, "not in the traffic split") != NULL);
}

/* Per-function windows: a 10 s stable window forgets a burst sooner. */
TEST(kpa_custom_windows) {
        Sim m;
        sim_init(&m);
        m.c.stable_window_ms = 10000;
        m.c.panic_window_ms = 2000;
        m.c.scale_to_zero_after_ms = 1000000;
        m.ready = 1;
        step(&m, 70);
        ASSERT_TRUE(m.d.panicking);
        for (int i = 0; i < 20; i++)
                step(&m, 0);
        ASSERT_TRUE(!m.d.panicking);
        ASSERT_TRUE(m.d.stable_concurrency == 0);
        ASSERT_EQ_UINT(m.d.desired, 1);         /* holding 1: not idle long enough */
        ASSERT_TRUE(strstr(m.d.reason, "holding 1 until 1000s without traffic") != NULL);
}
