/* runtime/jail_child.h: what the parent prepares for a jail's first process
 * (its init), and the messages the two exchange over a SOCK_SEQPACKET pair.
 * Everything the child needs is computed before clone(): the child runs in a
 * copy of a possibly multi-threaded parent, so it makes system calls only. */
#pragma once

#include <linux/filter.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/capability.h>

#include "cgroup.h"

#define JAIL_BOX_UID 1000   /* the box's uid and gid inside its user namespace */

enum {
        JAIL_MSG_CGROUP = 1,  /* parent -> child: cgroup.procs fds attached (SCM_RIGHTS) */
        JAIL_MSG_USERNS,      /* child -> parent: user namespace made, write its maps */
        JAIL_MSG_GO,          /* parent -> child: maps written */
        JAIL_MSG_SETUP_ERROR, /* child -> parent: a setup step failed */
        JAIL_MSG_EXIT,        /* init -> parent: the box's wait status */
};

typedef struct JailMsg {
        int32_t type;
        int32_t err;      /* errno for SETUP_ERROR */
        int32_t wstatus;  /* for EXIT */
        char what[80];    /* the step that failed */
} JailMsg;

/* A top-level host directory such as /lib: replicated as a symlink on
 * merged-/usr systems, bound read-only otherwise. */
typedef struct JailTopDir {
        char name[16];
        char link[64];    /* non-empty: symlink target */
        bool present;
} JailTopDir;

typedef struct JailChildArgs {
        int sock;
        int stdio[3];                 /* child ends of the box's stdin/stdout/stderr */
        int code_fd;                  /* O_PATH fd of the code */
        bool code_is_dir;
        char code_target[300];        /* relative to the new root: "fn" or "fn/NAME" */
        const JailTopDir *topdirs;
        size_t n_topdirs;
        const char *ld_cache;         /* host /etc/ld.so.cache contents, may be NULL */
        size_t ld_cache_len;
        char tmp_opts[128];           /* mount options of /tmp */
        const struct sock_fprog *filter;
        cap_t no_caps;
        int cap_last;
        const char *exec_path;
        char *const *argv;
        char *const *envp;
        struct rlimit rl_core, rl_fsize, rl_nofile, rl_stack;
} JailChildArgs;

/* Runs in the cloned child; never returns. */
_Noreturn void jail_child_main(const JailChildArgs *a);
