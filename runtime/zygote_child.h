/* runtime/zygote_child.h: the zygote's side, inside its jail. The zygote
 * waits on its control socket for FORK messages; for each it clones a child
 * into a new pid namespace, and that child turns itself into a fresh jail
 * (its own cgroup, mount, ipc, net and cgroup namespaces, /tmp and /proc, no
 * capabilities, no_new_privs, seccomp, rlimits), forks the box process and
 * stays as that namespace's init to report the box's status. The box
 * process waits for GO and then runs the request.
 *
 * The same code runs in two places: inside fnbox-runtime's jail init for
 * exec, sh and node zygotes (the box process then execs), and inside the
 * python3 zygote as a shared object loaded with ctypes (fnbox-zygote.so,
 * built from this file alone: it makes system calls only, no libcap). */
#pragma once

#include <linux/filter.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>

#define ZYGOTE_PARAMS_MAGIC 0x7a79676fU   /* "zygo" */
#define ZYGOTE_FILTER_MAX 4096            /* BPF instructions */
/* The fds a FORK message carries: the child's control socket, the box's
 * stdin, stdout and stderr, its DONE pipe (zygote_child_done), one
 * cgroup.procs fd per hierarchy, and when the message's wstatus is 1, last,
 * an earlier child's network namespace to reuse (the child sends the one
 * it ends up in back with JAIL_MSG_NETNS). */
#define ZYGOTE_FORK_FDS_MIN 6
#define ZYGOTE_FORK_FDS_MAX 10
/* A request's own environment travels with its GO: the JailMsg (err = the
 * bytes that follow), then KEY=VALUE strings, each NUL-terminated, at most
 * ZYGOTE_GO_ENV_MAX of them and ZYGOTE_GO_ENV_BYTES in all (zygote.h's
 * ZYGOTE_ENV_MAX and ZYGOTE_ENV_BYTES). Only the box process receives it:
 * the zygote never holds one request's values. */
#define ZYGOTE_GO_ENV_MAX 16
#define ZYGOTE_GO_ENV_BYTES (20U << 10)

/* What every child of a zygote gets: fixed per revision. For python3 it
 * travels in a memfd (fd 5 of the interpreter), followed by the filter. */
typedef struct ZygoteParams {
        uint32_t magic;
        uint32_t filter_len;        /* BPF instructions that follow */
        char tmp_opts[128];         /* size options of each child's /tmp */
        struct rlimit rl_core, rl_fsize, rl_nofile, rl_stack;
        int32_t cap_last;
        int32_t exec_mode;          /* in fnbox-runtime: the box process execs */
        int32_t template_;          /* a python3 template: no revision yet (ADOPT) */
} ZygoteParams;

/* A python3 template zygote (zygote.h, "Templates") is started before any
 * revision is known: an empty /fn, no entry, no revision environment.
 * Its revision comes with one ADOPT message (jail_child.h), after the
 * runtime has mounted the revision's code on /fn: the message carries a
 * memfd holding a ZygoteAdopt and then n_argv + n_env NUL-terminated
 * strings (the box's argv from its path on, "/fn/ENTRY" first, and its
 * whole environment), strings_len bytes in all. The limits in it replace
 * those of the template's ZygoteParams. */
#define ZYGOTE_ADOPT_MAGIC 0x61646f70U    /* "adop" */
#define ZYGOTE_ADOPT_MAX (1U << 20)       /* bytes of strings */
typedef struct ZygoteAdopt {
        uint32_t magic;
        uint32_t n_argv, n_env;
        uint32_t strings_len;
        char tmp_opts[128];
        struct rlimit rl_core, rl_fsize, rl_nofile, rl_stack;
} ZygoteAdopt;

/* fd numbers in a python3 zygote (the driver, runtime/zygote_driver.py);
 * ZYGOTE_FD_INIT, fnbox-zygote-init (runtime/zygote_init.c), may be absent */
enum { ZYGOTE_FD_CTL = 3, ZYGOTE_FD_SO = 4, ZYGOTE_FD_PARAMS = 5, ZYGOTE_FD_INIT = 6 };

/* The .so's entry points (also linked into fnbox-runtime). The zygote:
 * init once (0, or -errno), then wait for a FORK (returns when one came;
 * exits the process when the runtime hung up) and fork: > 0 in the zygote,
 * -errno on failure (the runtime sees the child's socket close), 0 in the
 * box process, a complete jail, before its request: it may get ready
 * (what it does then is off the request's path, and it has nothing of the
 * request), then waits for the request with zygote_child_go(), which
 * returns once GO came (the process exits if the request was given up).
 * The child in between never returns. */
int zygote_child_init(int ctl, int params_fd);
int zygote_child_init_with(int ctl, const ZygoteParams *p, const struct sock_filter *filter);
int zygote_child_wait(void);
/* A template (ZygoteParams.template_): 1, else 0. */
int zygote_child_template(void);
/* A template waits for its ADOPT (the runtime hanging up ends it): 0 and
 * the strings in zygote_adopt_strings (zygote_adopt_len bytes:
 * zygote_adopt_argc then zygote_adopt_envc strings), or -errno for a
 * message that is not a well-formed ADOPT. */
int zygote_child_adopt(void);
extern char *zygote_adopt_strings;
extern size_t zygote_adopt_len;
extern unsigned zygote_adopt_argc, zygote_adopt_envc;
int zygote_child_fork(void);
/* In the box process, its last act before exiting with code: the result
 * goes out without waiting for the exit (stdout and stderr flushed and
 * closed first). 0, or -errno. */
int zygote_child_done(int code);
int zygote_child_go(void);
/* In the box process: the request's environment as it came with GO (the
 * strings packed, zygote_go_env_len bytes; 0 when the request has none).
 * A python3 box process has it in its C environment already (environ);
 * the driver adds it to os.environ. */
extern char zygote_go_env[ZYGOTE_GO_ENV_BYTES];
extern size_t zygote_go_env_len;
/* fnbox-zygote-init's seccomp filter (zygote_child.c): an allow-list of
 * the system calls it makes, on the architectures it is written for
 * (elsewhere the init runs under the boxes' filter) */
#if defined(__x86_64__) || defined(__aarch64__)
#define ZYGOTE_INIT_FILTER 1
extern const struct sock_fprog zygote_init_filter;
#endif
/* exec, sh and node: wait for GO (zygote_child_go), then exec path with
 * envp plus the request's environment (its names replace the same names
 * of envp). */
_Noreturn void zygote_child_exec(const char *path, char *const argv[], char *const envp[]);
