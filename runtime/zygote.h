/* runtime/zygote.h: zygotes, the speed of `fresh` mode. A zygote is a
 * prepared jail (jail_prepare) that has the revision's code mounted at /fn
 * and its interpreter loaded and initialised, and that then waits. For each
 * request it forks a child that becomes a fresh jail of its own: its own
 * cgroup with the revision's limits, its own /tmp, its own pid namespace,
 * no capabilities, no_new_privs, the jail's seccomp filter and rlimits,
 * before any of the request is read. The child runs the box with the
 * request's body on stdin and is gone when it is done; nothing a child did
 * is visible to the next. The zygote itself never runs the box's code.
 *
 * python3: the interpreter with the standard library modules boxes use
 * most, imported once. exec and sh: the fork saves the namespace and root
 * setup, then the child execs the box. node: no fork in node, so a node
 * zygote forks before the interpreter and execs it (still without the jail
 * setup cost).
 *
 * Children are made ahead: a zygote keeps a few spares (its children that
 * have set themselves up as complete jails, in their own cgroups, and wait
 * for a request), so that zygote_fork() only hands one its request, and
 * asks for a replacement after. A spare is used once, like a request's
 * jail.
 *
 * All of it runs on the caller's libuv loop. A zygote that dies (killed, or
 * crashed by a child that found a way) reports ZYGOTE_EVENT_DIED; the
 * requests it was running end with JAIL_KILLED (done still fires for
 * each); the caller replaces it. */
#pragma once

#include <stdbool.h>
#include <uv.h>

#include "jail.h"

typedef struct Zygote Zygote;
typedef struct ZygoteChild ZygoteChild;

typedef enum ZygoteEvent {
        ZYGOTE_EVENT_READY,     /* the interpreter is loaded: zygote_fork works */
        ZYGOTE_EVENT_DIED,      /* it is gone (error: negative errno or 0) */
} ZygoteEvent;

typedef void (*zygote_event_fn)(Zygote *z, ZygoteEvent ev, int error, void *userdata);

/* Build a zygote for the revision described by c (runtime, code or
 * code_fd, entry, args, env, limits, host_uid/gid, cgroup_parent; stdin and
 * run_dir are ignored). c is checked as jail_spawn() checks it (-EINVAL for
 * a bad one); c's strings are copied and the code is opened (or code_fd
 * duplicated) now. The events arrive on loop. */
int zygote_new(uv_loop_t *loop, const JailConfig *c, zygote_event_fn fn, void *userdata, Zygote **ret);

/* Run one request in a fresh child: stdin_data (copied) on its stdin,
 * limits for it (its timeout starts now). The result arrives through done,
 * as for jail_start; stdout and stderr are capped as in a jail. At most
 * ZYGOTE_CHILDREN_MAX children run at once per zygote (-EBUSY beyond);
 * -ENOTCONN when the zygote is not ready. */
#define ZYGOTE_CHILDREN_MAX 256
int zygote_fork(Zygote *z, const void *stdin_data, size_t stdin_len, jail_done_fn done,
                void *userdata, ZygoteChild **ret);
/* Kill one child now: its request ends with JAIL_KILLED. A ZygoteChild is
 * valid until its done callback has returned. done receives the child's
 * own Jail handle, which the zygote owns (do not jail_free it); it may
 * take r->out.data and r->err.data. */
int zygote_child_kill(ZygoteChild *c);

/* How many spares to keep (1..16, default ZYGOTE_SPARES_DEFAULT): as many
 * as requests that may arrive faster than one is replaced (a few ms). */
#define ZYGOTE_SPARES_DEFAULT 2
int zygote_set_spares(Zygote *z, unsigned n);
/* Why the zygote died, or why its children keep failing ("" if nothing). */
const char *zygote_error(const Zygote *z);

bool zygote_is_ready(const Zygote *z);
unsigned zygote_children(const Zygote *z);
/* Kill the zygote and its children (running ones still report done, with
 * JAIL_KILLED); the loop finishes the teardown (no process, cgroup or
 * mount is left once it has run). No zygote event fires after this. */
void zygote_free(Zygote *z);
