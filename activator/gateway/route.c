/* activator/gateway/route.c: the upstream pick and what attempts teach
 * (see route.h). */
#include "activator/gateway/route.h"

#include <stddef.h>

static bool member_usable(const GwMember *m, bool local_only) {
        return m->weight > 0 && (!local_only || m->up->local);
}

static bool cooling(const GwUpState *s, uint64_t now_ns) {
        return s && s->cooldown_until_ns > now_ns;
}

/* The candidates: usable, not cooling down, untried if any is. */
static size_t candidates(const GwAlias *a, const bool *tried, bool local_only, uint64_t now_ns, int *out,
                         uint64_t *ret_wait_ms) {
        size_t n = 0, n_untried = 0;
        uint64_t wait = 0;
        for (size_t i = 0; i < a->n_members; i++) {
                const GwMember *m = &a->members[i];
                if (!member_usable(m, local_only))
                        continue;
                if (cooling(m->up->state, now_ns)) {
                        uint64_t left = (m->up->state->cooldown_until_ns - now_ns + 999999) / 1000000;
                        wait = wait == 0 || left < wait ? left : wait;
                        continue;
                }
                out[n++] = (int) i;
                n_untried += !tried[i];
        }
        *ret_wait_ms = n ? 0 : wait;
        if (n_untried == 0 || n_untried == n)
                return n;
        size_t k = 0;
        for (size_t j = 0; j < n; j++)
                if (!tried[out[j]])
                        out[k++] = out[j];
        return k;
}

static int pick_weighted(const GwAlias *a, const int *c, size_t n, uint64_t rnd) {
        uint64_t total = 0;
        for (size_t j = 0; j < n; j++)
                total += a->members[c[j]].weight;
        uint64_t point = rnd % total;
        for (size_t j = 0; j < n; j++) {
                if (point < a->members[c[j]].weight)
                        return c[j];
                point -= a->members[c[j]].weight;
        }
        return c[n - 1];
}

/* The lowest score wins; ties go by weight. */
static int pick_lowest(const GwAlias *a, const int *c, size_t n, uint64_t rnd, bool latency) {
        int best[GW_MEMBERS_MAX];
        size_t nb = 0;
        double best_score = 0;
        for (size_t j = 0; j < n; j++) {
                const GwUpState *s = a->members[c[j]].up->state;
                /* an upstream never measured is tried first, so that it gets measured */
                double score = !s ? 0 : latency ? (s->measured ? s->latency_ms : -1) : (double) s->inflight;
                if (nb == 0 || score < best_score) {
                        best_score = score;
                        nb = 0;
                }
                if (score == best_score)
                        best[nb++] = c[j];
        }
        return pick_weighted(a, best, nb, rnd);
}

int gw_route_pick(const GwAlias *a, const bool *tried, bool local_only, uint64_t now_ns, uint64_t rnd,
                  uint64_t *ret_wait_ms) {
        int c[GW_MEMBERS_MAX];
        size_t n = candidates(a, tried, local_only, now_ns, c, ret_wait_ms);
        if (n == 0)
                return -1;
        switch (a->strategy) {
        case GW_STRATEGY_LEAST_BUSY:
                return pick_lowest(a, c, n, rnd, false);
        case GW_STRATEGY_LOWEST_LATENCY:
                return pick_lowest(a, c, n, rnd, true);
        default:
                return pick_weighted(a, c, n, rnd);
        }
}

bool gw_route_has_local(const GwAlias *a) {
        for (size_t i = 0; i < a->n_members; i++)
                if (member_usable(&a->members[i], true))
                        return true;
        return false;
}

bool gw_route_result(GwUpState *s, const GwAlias *a, bool ok, double ttfb_ms, uint64_t now_ns) {
        if (!s)
                return false;
        if (ok) {
                s->fails = 0;
                if (ttfb_ms >= 0) {
                        s->latency_ms = s->measured ? (1 - GW_LATENCY_ALPHA) * s->latency_ms + GW_LATENCY_ALPHA * ttfb_ms
                                                    : ttfb_ms;
                        s->measured = true;
                }
                return false;
        }
        s->fails++;
        if (a->cooldown_failures == 0 || s->fails < a->cooldown_failures)
                return false;
        s->fails = 0;
        s->cooldown_until_ns = now_ns + a->cooldown_ms * 1000000ull;
        return true;
}
