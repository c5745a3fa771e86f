/* runtime/zygote.h: zygotes, the speed of `fresh` mode. A zygote is a
 * prepared jail (jail_prepare) that has the revision's code mounted at /fn
 * and its interpreter loaded and initialised, and that then waits. For each
 * request it forks a child that becomes a fresh jail of its own: its own
 * cgroup with the revision's limits, its own /tmp, its own pid namespace,
 * no capabilities, no_new_privs, the jail's seccomp filter and rlimits,
 * before any of the request is read. The child runs the box with the
 * request's body on stdin and the request's own environment variables
 * (they travel with its GO to its box process only: neither the zygote
 * nor a spare ever holds them) and is gone when it is done; nothing a
 * child did or was given is visible to the next. The zygote itself never
 * runs the box's code.
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
#include <stdint.h>
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
 * code_fd, entry, args, env, limits, host_uid/gid, cgroup_parent, run_dir,
 * which the zygote and every child get read-only; stdin is ignored). c is checked as jail_spawn() checks it (-EINVAL for
 * a bad one); c's strings are copied and the code is opened (or code_fd
 * duplicated) now. The events arrive on loop. A config with input_dir or
 * output_dir (a session's files) is refused (-EINVAL): it runs in a jail
 * of its own; zygote_adopt refuses it too, and zygote_template_fits says
 * false for it. */
int zygote_new(uv_loop_t *loop, const JailConfig *c, zygote_event_fn fn, void *userdata, Zygote **ret);

/* Templates. A python3 zygote takes ~100 ms to start (its jail, the
 * interpreter, the modules it imports); a revision's first request would
 * wait for all of it. A template is that zygote started ahead, before any
 * revision is known: c names an empty code folder and an empty run_dir
 * (mounted at /fn and /run/fnbox), no args, no env (-EINVAL otherwise).
 * Its READY event says it may be adopted; it makes no children until
 * then, and zygote_fork refuses it (-ENOTCONN).
 *
 * zygote_adopt() makes a ready template the zygote of the revision c
 * (what zygote_new would take): the runtime mounts c's code on its /fn and
 * c's run_dir on its /run/fnbox, read-only, sends it the box's argv,
 * environment and limits, and from then on it is that revision's zygote,
 * with fn and userdata for its events (no READY follows: it is ready; its
 * first FORKs wait for it to compile the code). A template is adopted
 * once. On failure (-errno, why says it) it is dead: free it.
 * zygote_template_fits(c): false for a revision that sets what python3
 * reads from its environment as it starts (LANG, LC_*, LANGUAGE, TZ,
 * PYTHON*), whose zygote must start with that environment. */
int zygote_template_new(uv_loop_t *loop, const JailConfig *c, zygote_event_fn fn, void *userdata, Zygote **ret);
bool zygote_template_fits(const JailConfig *c);
int zygote_adopt(Zygote *z, const JailConfig *c, zygote_event_fn fn, void *userdata, char *why, size_t why_len);

/* One request: what only it gets. */
#define ZYGOTE_ENV_MAX   16             /* env entries */
#define ZYGOTE_ENV_BYTES (20U << 10)    /* env strings with their NULs: an
                                         * INVOKE's five fields always fit */
typedef struct ZygoteRequest {
        const void *stdin_data;  /* copied */
        size_t stdin_len;        /* at most JAIL_STDIN_MAX */
        /* NAME=VALUE ([A-Za-z_][A-Za-z0-9_]* names, values without control
         * characters), added to the revision's environment in this
         * request's box only; a name given here replaces the revision's */
        const char *const *env;
        size_t n_env;
        uint64_t timeout_ns;     /* 0: the revision's; never longer than it */
} ZygoteRequest;

/* Run one request in a fresh child: q's body on its stdin, q's
 * environment in its box's (exec, sh, node: the process's environment;
 * python3: os.environ too), the revision's limits with q's timeout, which
 * starts now and ends it as JAIL_TIMEOUT. q is not used after the call.
 * The result arrives through done, as for jail_start; stdout and stderr
 * are capped as in a jail. -EINVAL for a bad env entry, -E2BIG for too
 * many or too long ones or a body over JAIL_STDIN_MAX; at most
 * ZYGOTE_CHILDREN_MAX children run at once per zygote (-EBUSY beyond);
 * -ENOTCONN when the zygote is not ready. */
#define ZYGOTE_CHILDREN_MAX 256
int zygote_fork(Zygote *z, const ZygoteRequest *q, jail_done_fn done, void *userdata, ZygoteChild **ret);
/* Kill one child now: its request ends with JAIL_KILLED. A ZygoteChild is
 * valid until its done callback has returned. done receives the child's
 * own Jail handle, which the zygote owns (do not jail_free it); it may
 * take r->out.data and r->err.data. */
int zygote_child_kill(ZygoteChild *c);
/* The child's jail handle (its cgroup names the child: jail_cgroup_name). */
Jail *zygote_child_jail(const ZygoteChild *c);

/* How many spares to keep (1..16, default ZYGOTE_SPARES_DEFAULT): as many
 * as requests that may arrive faster than one is replaced (a few ms). */
#define ZYGOTE_SPARES_DEFAULT 3
int zygote_set_spares(Zygote *z, unsigned n);
/* Why the zygote died, or why its children keep failing ("" if nothing). */
const char *zygote_error(const Zygote *z);

/* How long a zygote may take to get ready before it is killed (and
 * reported, as dead); tests shorten it. */
extern unsigned zygote_start_ms;

bool zygote_is_ready(const Zygote *z);
unsigned zygote_children(const Zygote *z);
/* Kill the zygote and its children (running ones still report done, with
 * JAIL_KILLED); the loop finishes the teardown (no process, cgroup or
 * mount is left once it has run). No zygote event fires after this. */
void zygote_free(Zygote *z);
