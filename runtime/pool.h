/* runtime/pool.h: a pool of prepared jails (jail_prepare) on a libuv loop.
 * pool_take() hands one out, to be started with exactly one request and
 * then freed; the pool never reuses a jail. It builds replacements when
 * asked (pool_refill), which the daemon does once a reply is out, so that
 * building them stays off the requests' critical path. */
#pragma once

#include <stdbool.h>
#include <uv.h>

#include "jail.h"

#define POOL_MAX 64

typedef struct Pool Pool;
typedef void (*pool_settled_fn)(Pool *p, unsigned ready, void *userdata);

/* A pool of size jails (0..POOL_MAX) under cgroup_parent. settled is
 * called once, when the first fill is over: every jail is prepared, or an
 * attempt failed (then the pool keeps retrying, more and more slowly). */
int pool_new(uv_loop_t *loop, unsigned size, const char *cgroup_parent,
             pool_settled_fn settled, void *userdata, Pool **ret);
/* A prepared jail that is waiting, or NULL if there is none. The caller
 * owns it: jail_start() it once, and jail_free() it. */
Jail *pool_take(Pool *p);
/* Give back a jail that pool_take() handed out but that was never started
 * (its request was refused): it is still as prepared. */
void pool_put(Pool *p, Jail *j);
/* Top the pool up in the background, one jail per loop iteration. */
void pool_refill(Pool *p);
unsigned pool_ready(const Pool *p);
/* Kill the jails that wait; the loop finishes their teardown. */
void pool_free(Pool *p);
