/* runtime/pool.c: the prepared-jail pool. Each slot holds a jail built up to
 * the request-dependent steps (jail_prepare); a jail leaves the pool once,
 * to run one request, and a replacement is built on a timer so that the
 * work interleaves with the loop's other events. A jail that dies while it
 * waits is dropped and replaced, with a growing delay if that repeats. */
#define _GNU_SOURCE
#include "pool.h"

#include <stdlib.h>

#include "lib/util.h"

#define BACKOFF_MAX_MS 2000
/* After the first fill, a replacement starts a little after the reply that
 * asked for it: its client and the jail's teardown come first. */
#define REFILL_DELAY_MS 2

struct Pool {
        uv_loop_t *loop;
        uv_timer_t timer;
        Jail *slots[POOL_MAX];
        unsigned n, size;
        unsigned failures;       /* in a row; reset when a jail is ready */
        char *cgroup_parent;
        bool settled, closing;
        pool_settled_fn on_settled;
        void *userdata;
};

static void pool_check_settled(Pool *p, bool failed) {
        if (p->settled || (!failed && pool_ready(p) < p->size))
                return;
        p->settled = true;
        if (p->on_settled)
                p->on_settled(p, pool_ready(p), p->userdata);
}

static void slot_remove(Pool *p, Jail *j) {
        for (unsigned i = 0; i < p->n; i++)
                if (p->slots[i] == j) {
                        p->slots[i] = p->slots[--p->n];
                        return;
                }
}

static void on_jail_event(Jail *j, JailEvent ev, int error, void *userdata) {
        Pool *p = userdata;
        (void) error;
        if (ev == JAIL_EVENT_READY) {
                p->failures = 0;
                pool_check_settled(p, false);
                return;
        }
        /* died while waiting: preparing failed, or someone killed it */
        slot_remove(p, j);
        jail_free(j);
        p->failures++;
        pool_check_settled(p, true);
        pool_refill(p);
}

static void on_timer(uv_timer_t *t) {
        Pool *p = t->data;
        if (p->closing || p->n >= p->size)
                return;
        Jail *j;
        int r = jail_prepare(p->loop, p->cgroup_parent, &j);
        if (r < 0) {
                p->failures++;
                pool_check_settled(p, true);
        } else {
                jail_set_events(j, on_jail_event, p);
                p->slots[p->n++] = j;
        }
        pool_refill(p);
}

void pool_refill(Pool *p) {
        if (p->closing || p->n >= p->size || uv_is_active((uv_handle_t *) &p->timer))
                return;
        uint64_t delay = p->settled ? REFILL_DELAY_MS : 0;
        if (p->failures > 0) {
                unsigned shift = p->failures > 8 ? 8 : p->failures;
                delay = 10ULL << shift;
                if (delay > BACKOFF_MAX_MS)
                        delay = BACKOFF_MAX_MS;
        }
        uv_timer_start(&p->timer, on_timer, delay, 0);
}

int pool_new(uv_loop_t *loop, unsigned size, const char *cgroup_parent,
             pool_settled_fn settled, void *userdata, Pool **ret) {
        if (size > POOL_MAX)
                return -EINVAL;
        Pool *p = calloc(1, sizeof *p);
        if (!p)
                return -ENOMEM;
        *p = (Pool) { .loop = loop, .size = size, .on_settled = settled, .userdata = userdata };
        if (!(p->cgroup_parent = strdup(cgroup_parent))) {
                free(p);
                return -ENOMEM;
        }
        uv_timer_init(loop, &p->timer);
        p->timer.data = p;
        *ret = p;
        pool_refill(p);
        pool_check_settled(p, false); /* size 0: settled at once */
        return 0;
}

/* Prefer a jail that finished preparing; one still being built is next best
 * (its request waits in its socket): either beats building one now. */
Jail *pool_take(Pool *p) {
        int pick = -1;
        for (unsigned i = 0; i < p->n && pick < 0; i++)
                if (jail_is_ready(p->slots[i]))
                        pick = (int) i;
        for (unsigned i = 0; i < p->n && pick < 0; i++)
                if (!jail_is_started(p->slots[i]))
                        pick = (int) i;
        if (pick < 0)
                return NULL;
        Jail *j = p->slots[pick];
        p->slots[pick] = p->slots[--p->n];
        jail_set_events(j, NULL, NULL);
        return j;
}

void pool_put(Pool *p, Jail *j) {
        if (p->closing || p->n >= POOL_MAX || jail_is_started(j)) {
                jail_free(j);
                return;
        }
        jail_set_events(j, on_jail_event, p);
        p->slots[p->n++] = j;
}

unsigned pool_ready(const Pool *p) {
        unsigned n = 0;
        for (unsigned i = 0; i < p->n; i++)
                n += jail_is_ready(p->slots[i]);
        return n;
}

static void on_timer_closed(uv_handle_t *h) {
        Pool *p = h->data;
        free(p->cgroup_parent);
        free(p);
}

void pool_free(Pool *p) {
        if (!p)
                return;
        p->closing = true;
        for (unsigned i = 0; i < p->n; i++) {
                jail_set_events(p->slots[i], NULL, NULL);
                jail_free(p->slots[i]); /* killed; released after its teardown */
        }
        p->n = 0;
        uv_close((uv_handle_t *) &p->timer, on_timer_closed);
}
