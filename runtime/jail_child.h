/* runtime/jail_child.h: what the parent prepares for a jail's first process
 * (its init), and the messages the two exchange over a SOCK_SEQPACKET pair.
 * The request-independent part is computed before clone(); the request
 * (code, /tmp size, rlimits, argv, environment) arrives later in one START
 * message, so that a jail can be prepared ahead and wait for it. The child
 * runs in a copy of a possibly multi-threaded parent, so it makes system
 * calls only (no malloc, no stdio). */
#pragma once

#include <linux/filter.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <errno.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <sys/capability.h>

#include "cgroup.h"
#include "jail.h"

#define JAIL_BOX_UID 1000   /* the box's uid and gid inside its user namespace */

enum {
        JAIL_MSG_CGROUP = 1,  /* parent -> child: cgroup.procs fds attached (SCM_RIGHTS) */
        JAIL_MSG_READY,       /* child -> parent: prepared, waiting for START */
        JAIL_MSG_START,       /* parent -> child: JailStartMsg, code and spec fds attached */
        JAIL_MSG_USERNS,      /* child -> parent: user namespace made, write its maps */
        JAIL_MSG_GO,          /* parent -> child: maps written */
        JAIL_MSG_SETUP_ERROR, /* child -> parent: a setup step failed */
        JAIL_MSG_EXIT,        /* init -> parent: the box's wait status and usage */
        /* zygotes (runtime/zygote.h, zygote_child.h) */
        JAIL_MSG_ZYGOTE_READY, /* zygote -> parent: interpreter loaded, FORK works */
        JAIL_MSG_FORK,        /* parent -> zygote: make a child; its fds attached (err = count) */
        JAIL_MSG_HELLO,       /* child -> parent: in its cgroup; its own pidfd attached */
        JAIL_MSG_ADOPT,       /* parent -> template zygote: its revision (a memfd attached) */
        JAIL_MSG_NETNS,       /* zygote's child -> parent: its network namespace (fd attached) */
};

typedef struct JailMsg {
        int32_t type;
        int32_t err;        /* errno for SETUP_ERROR; fd count for CGROUP */
        int32_t wstatus;    /* for EXIT */
        int32_t pad;
        int64_t maxrss_kb;  /* for EXIT: the largest child of init (getrusage) */
        int64_t cpu_us;     /* for EXIT: user + system time of init's children */
        char what[80];      /* the step that failed */
} JailMsg;

/* The init of a jail (and of a zygote's child): reap everything, and when
 * the box itself exits, report its status and its children's usage on
 * sock, then exit (which ends the pid namespace and what the box left).
 * Inline: the zygote's in-jail helper (a shared object of its own) runs
 * it too. */
static inline _Noreturn void jail_init_reap(int sock, pid_t box) {
        for (;;) {
                int st;
                pid_t p = waitpid(-1, &st, __WALL);
                if (p == box) {
                        JailMsg m = { .type = JAIL_MSG_EXIT, .wstatus = st };
                        struct rusage ru;
                        if (getrusage(RUSAGE_CHILDREN, &ru) == 0) {
                                m.maxrss_kb = ru.ru_maxrss;
                                m.cpu_us = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000LL +
                                           ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
                        }
                        (void) send(sock, &m, sizeof m, MSG_NOSIGNAL);
                        _exit(0);
                }
                if (p < 0 && errno != EINTR)
                        _exit(125);
        }
}

/* JailStartMsg.zygote */
/* TEMPLATE: a python3 zygote without a revision yet (zygote_child.h, ADOPT) */
enum { JAIL_ZYGOTE_NONE, JAIL_ZYGOTE_EXEC, JAIL_ZYGOTE_PYTHON, JAIL_ZYGOTE_TEMPLATE };

/* The python3 zygote's shared object and driver, linked in from
 * zygote_blob.S (the driver is NUL-terminated). */
extern const char zygote_so_start[], zygote_so_end[], zygote_driver_py[];
/* fnbox-zygote-init (runtime/zygote_init.c), a static program */
extern const char zygote_init_start[], zygote_init_end[];

/* Limits of what a START message may ask for. */
#define JAIL_SPEC_MAX   (16U << 20)   /* bytes of the argv/env spec */
#define JAIL_SPEC_ARGS  (4096 + 8)    /* argv entries: the caller's and ours */
#define JAIL_SPEC_ENV   (256 + 8)

/* The request, as the parent sends it to a prepared child. Its strings
 * (exec path, argv, envp, each NUL-terminated, in that order) travel in a
 * memfd of spec_len bytes, attached with the code's detached mount. */
typedef struct JailStartMsg {
        int32_t type;               /* JAIL_MSG_START */
        uint32_t code_is_dir;
        uint32_t zygote;            /* become a zygote (zygote_child.h) instead of running the box */
        uint32_t has_run_dir;       /* a third fd: the detached mount bound at /run/fnbox
                                     * (1: read-write and noexec, 2: read-only) */
        uint32_t has_input;         /* one more fd (after run_dir's): the detached
                                     * mount bound read-only at /input */
        uint32_t has_output;        /* one more fd (last): the detached mount bound
                                     * read-write at /output */
        uint32_t n_argv, n_env;
        uint64_t spec_len;
        char code_target[300];      /* relative to the new root: "fn" or "fn/NAME" */
        char tmp_opts[128];         /* size options of /tmp (a remount) */
        struct rlimit rl_core, rl_fsize, rl_nofile, rl_stack;
        uint32_t n_devices;         /* device nodes to make under /dev */
        struct {
                char path[64];      /* relative to /dev, checked by the parent */
                uint32_t mode;      /* S_IFCHR or S_IFBLK */
                uint32_t major, minor;
        } devices[JAIL_DEVICES_MAX];
} JailStartMsg;

/* A top-level host directory such as /lib: replicated as a symlink on
 * merged-/usr systems, bound read-only otherwise. */
typedef struct JailTopDir {
        char name[16];
        char link[64];    /* non-empty: symlink target */
        bool present;
} JailTopDir;

/* A library link of the host's /etc/alternatives (libblas.so.3-...), made
 * again in the jail's /etc/alternatives: libraries that Debian's
 * alternatives system chooses (BLAS, LAPACK for numpy) resolve through it. */
#define JAIL_ALTS_MAX 64
typedef struct JailAlt {
        char name[128];
        char target[256];
} JailAlt;

typedef struct JailChildArgs {
        int sock;
        int stdio[3];                 /* child ends of the box's stdin/stdout/stderr */
        const JailTopDir *topdirs;
        size_t n_topdirs;
        const char *ld_cache;         /* host /etc/ld.so.cache contents, may be NULL */
        const JailAlt *alts;          /* host /etc/alternatives library links */
        size_t n_alts;
        size_t ld_cache_len;
        const struct sock_fprog *filter;
        cap_t no_caps;
        cap_t zygote_caps;            /* what a zygote keeps (jail_child.c) */
        int cap_last;
        bool background;              /* prepared ahead: SCHED_IDLE until START */
        const char (*binds)[JAIL_BIND_LEN]; /* more host folders, bound read-only */
        size_t n_binds;
} JailChildArgs;

/* The capabilities a zygote keeps (jail_child.c, zygote_privileges); the
 * parent makes their cap_t (JailChildArgs.zygote_caps) before any clone. */
#define JAIL_ZYGOTE_KEEP 2
extern const cap_value_t jail_zygote_keep[JAIL_ZYGOTE_KEEP];

/* Runs in the cloned child; never returns. */
_Noreturn void jail_child_main(const JailChildArgs *a);
