/* activator/gateway/route.h: which upstream of an alias takes the next
 * attempt. What the gateway learns of each upstream (in flight, failures
 * in a row, cooldown, latency) lives in a GwUpState that outlives config
 * reloads (keyed by the upstream's name); the pick applies the alias's
 * strategy to the members that may take the request. Pure: the caller
 * holds the lock that guards the states and passes the time and the
 * random bits. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "activator/gateway/config.h"

#define GW_LATENCY_ALPHA 0.3     /* weight of a new sample in the moving average */

struct GwUpState {
        char *name;
        uint32_t inflight;
        uint32_t fails;                  /* consecutive failures */
        uint64_t cooldown_until_ns;      /* CLOCK_MONOTONIC; 0: not cooling down */
        double latency_ms;               /* moving average of the time to the first byte */
        bool measured;
        struct GwUpState *next;
};

/* The member for the next attempt, or -1. tried[i]: member i had an
 * attempt already (others are preferred; a tried one is taken again only
 * when nothing else may). local_only: only upstreams marked local. With
 * -1, *ret_wait_ms is the shortest time until a member that may take the
 * request leaves its cooldown (0: none cools down; no member may take it
 * at all). Members of weight 0 are never picked. */
int gw_route_pick(const GwAlias *a, const bool *tried, bool local_only, uint64_t now_ns, uint64_t rnd,
                  uint64_t *ret_wait_ms);
/* Whether any member of a is local. */
bool gw_route_has_local(const GwAlias *a);
/* An attempt on s ended: ok resets its failure count and feeds the
 * latency (ttfb_ms >= 0); a failure counts, and the alias's
 * cooldown_failures in a row cool it down for cooldown_ms. Returns true
 * when this failure started a cooldown. */
bool gw_route_result(GwUpState *s, const GwAlias *a, bool ok, double ttfb_ms, uint64_t now_ns);
