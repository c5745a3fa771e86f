/* runtime/jail.h: the jail as a library. jail_spawn() builds a one-shot jail
 * (namespaces, a pivoted read-only root, cgroup limits, seccomp, no
 * capabilities) around one box process, feeds it stdin and collects its
 * capped stdout and stderr on a libuv loop; the done callback receives the
 * result. A jail can also be prepared ahead (jail_prepare: namespaces, root
 * and cgroup, no code) and started later with a request (jail_start): the
 * runtime daemon keeps a pool of them. jail_spawn() is exactly prepare then
 * start. Many jails may run on one loop at once. Callers must ignore SIGPIPE,
 * and must have fds 0-2 open before creating their loop (jail_run does it).
 * Nothing here logs: errors are returned as negative errno values. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

typedef enum JailRuntime {
        JAIL_RUNTIME_EXEC,
        JAIL_RUNTIME_SH,
        JAIL_RUNTIME_PYTHON3,
        JAIL_RUNTIME_NODE,
        _JAIL_RUNTIME_MAX,
} JailRuntime;

typedef struct JailLimits {
        uint64_t memory_bytes;  /* cgroup memory (and swap) limit */
        uint64_t timeout_ns;    /* wall clock, from spawn to kill */
        uint64_t cpu_millis;    /* CPU bandwidth, 1000 = one core */
        uint64_t pids;          /* cgroup pids.max */
        uint64_t tmp_bytes;     /* size of the /tmp tmpfs */
        uint64_t tmp_inodes;    /* inodes of the /tmp tmpfs */
        uint64_t output_bytes;  /* cap on stdout and on stderr, each */
        uint64_t fsize_bytes;   /* RLIMIT_FSIZE */
        uint64_t nofile;        /* RLIMIT_NOFILE */
        uint64_t stack_bytes;   /* RLIMIT_STACK */
} JailLimits;

#define JAIL_STDIN_MAX (1ULL << 30)  /* the most stdin a jail is fed */

/* A piece of a box's stdout (fd 1) or stderr (fd 2) as it arrives, for
 * a jail started with JailConfig.output_fn. It runs on the loop and must
 * not free or kill the jail. */
typedef void (*jail_output_fn)(int fd, const char *data, size_t len, void *userdata);

/* A device node made in the jail's /dev for it alone (a GPU's), and allowed
 * in its device cgroup; the five harmless devices are always there. */
#define JAIL_DEVICES_MAX 16
typedef struct JailDevice {
        char path[64];          /* under /dev: "nvidia0", "dri/renderD128" */
        char type;              /* 'c' or 'b' */
        unsigned major, minor;
} JailDevice;

/* Host folders bound read-only at the same place in every jail this
 * process makes from now on (a GPU node's driver folders outside /usr;
 * /usr itself is in every jail already): absolute, not under /proc, /sys,
 * /dev or /etc. Call before the first jail (the pool's included). */
#define JAIL_BINDS_MAX 8
#define JAIL_BIND_LEN 256
int jail_host_binds(const char (*paths)[JAIL_BIND_LEN], size_t n);

/* A device entry as a jail would take it: -EINVAL with why otherwise. */
int jail_device_check(const JailDevice *d, char *why, size_t len);

typedef struct JailConfig {
        JailRuntime runtime;
        const char *code;        /* host path of a file or directory, bound at /fn */
        int code_fd;             /* >= 0: an O_PATH fd of the code that the caller
                                  * opened (borrowed); the checks apply to it and it
                                  * is what gets mounted; code then only names it
                                  * (its last component is the name at /fn/).
                                  * -1 (the default): open code */
        const char *entry;       /* for a directory: the file to run, relative to it */
        char *const *args;       /* extra arguments after the program */
        size_t n_args;
        char *const *env;        /* "KEY=VALUE" entries added to the base environment */
        size_t n_env;
        const void *stdin_data;  /* fed to the box's stdin, then closed */
        size_t stdin_len;
        JailLimits limits;
        uid_t host_uid;          /* unprivileged host uid/gid the box maps to */
        gid_t host_gid;
        const char *cgroup_parent; /* relative to each hierarchy's root, e.g. "fnbox" */
        const char *run_dir;     /* NULL, or an absolute host folder bound read-write
                                  * (nosuid, nodev, noexec) at /run/fnbox in the jail:
                                  * a service's socket folder. It must be a real
                                  * directory (not a symlink) that the box's host uid
                                  * can write; it is not under /proc, /sys or /dev */
        bool run_dir_readonly;   /* bind run_dir read-only (nosuid, nodev) instead:
                                  * the box only enters it (a fresh instance's
                                  * broker socket and helpers); the box's uid
                                  * need not write it */
        /* A session's files (docs/jail.md). Each is NULL, or an absolute
         * host folder checked as run_dir is (a real directory, not a
         * symlink, not under /proc, /sys or /dev); the two must differ.
         * Zygotes and templates refuse them (-EINVAL): a request with
         * files runs in a pool jail (jail_start) or a one-shot one. */
        const char *input_dir;   /* NULL, or an absolute host folder bound read-only
                                  * (nosuid, nodev, noexec) at /input; the box's host
                                  * uid must be able to enter and read it */
        const char *output_dir;  /* NULL, or an absolute host folder bound read-write
                                  * (nosuid, nodev, noexec) at /output; the box's
                                  * host uid must be able to write it */
        /* NULL (the default): stdout and stderr are collected into the
         * result, each capped at limits.output_bytes (more kills the jail:
         * JAIL_OUTPUT_LIMIT). Set: both are handed to output_fn piece by
         * piece as they arrive (at most 64 KiB per stream per loop turn, so
         * that a chatty box cannot hold the loop), never kept and never
         * capped; the result's out and err stay empty. For long-lived boxes
         * (services), whose output is a log. jail_spawn and jail_start. */
        jail_output_fn output_fn;
        void *output_userdata;
        /* device nodes for this jail (at most JAIL_DEVICES_MAX): made in its
         * /dev (mode 0666: the cgroup decides) and allowed in its device
         * cgroup, nothing else. A zygote's children share the zygote's.
         * Template zygotes (jail_zygote_adopt) take none. */
        const JailDevice *devices;
        size_t n_devices;
} JailConfig;

typedef enum JailStatus {
        JAIL_EXITED,
        JAIL_SIGNALED,
        JAIL_TIMEOUT,
        JAIL_OUT_OF_MEMORY,
        JAIL_OUTPUT_LIMIT,
        JAIL_KILLED,
        JAIL_SETUP_ERROR,
        _JAIL_STATUS_MAX,
} JailStatus;

typedef struct JailOutput {
        char *data;
        size_t len;
        bool truncated;
} JailOutput;

typedef struct JailResult {
        JailStatus status;
        int exit_code;       /* JAIL_EXITED */
        int signal;          /* JAIL_SIGNALED, or the signal that ended a killed box */
        double wall_ms;
        double cpu_ms;
        long max_rss_kb;
        JailOutput out, err;
        char error[160];     /* JAIL_SETUP_ERROR: what failed */
} JailResult;

typedef struct Jail Jail;

/* When callbacks fire, for a jail that was started (jail_start/jail_spawn):
 *
 *   done  as soon as the result is known: the box's exit status has arrived
 *         and its stdout and stderr reached EOF (or fnbox killed the jail and
 *         its init is gone). The jail's teardown (init's exit, which ends the
 *         pid and mount namespaces and kills what the box left, and the
 *         removal of its cgroup) may still be running: a daemon can answer
 *         its client first. r is owned by the jail; done may take
 *         r->out.data and r->err.data, and may call jail_free().
 *   JAIL_EVENT_END  once the jail is entirely gone (no process, no cgroup),
 *         with 0 or the negative errno of removing its cgroup. It follows
 *         done for a started jail; a prepared jail that dies before it was
 *         started (killed, or its preparation failed) gets END only.
 *   JAIL_EVENT_READY  a prepared jail finished preparing and waits.
 *
 * The loop keeps running until END (uv_run returns only after the
 * teardown), so nothing is left behind when a caller's loop ends. */
typedef void (*jail_done_fn)(Jail *j, JailResult *r, void *userdata);
typedef enum JailEvent { JAIL_EVENT_READY, JAIL_EVENT_END } JailEvent;
typedef void (*jail_event_fn)(Jail *j, JailEvent ev, int error, void *userdata);

void jail_limits_default(JailLimits *l);
void jail_config_init(JailConfig *c);

/* Validate a config before anything is built. On failure returns -EINVAL
 * (or another errno) and writes a one-line reason to why. */
int jail_config_check(const JailConfig *c, char *why, size_t why_len);

/* Build and start a jail: jail_prepare() then jail_start(). The result
 * arrives through done on loop. */
int jail_spawn(uv_loop_t *loop, const JailConfig *c, jail_done_fn done, void *userdata, Jail **ret);

/* Build a jail up to the steps that depend on a request: a new pid, mount,
 * ipc, uts and net namespace, the root filesystem without the code, and a
 * fresh cgroup under cgroup_parent (with small idle limits) that its init has
 * joined. Its init then waits, as host root in those namespaces, having read
 * nothing of any request. It prepares at idle priority (SCHED_IDLE), so
 * that it only takes CPU time no running box wants; jail_start() brings it
 * back to SCHED_OTHER. */
int jail_prepare(uv_loop_t *loop, const char *cgroup_parent, Jail **ret);
/* A prepared jail that is not READY within this many ms of jail_prepare()
 * (and not started) is killed, with the setup error "prepare the jail
 * within N ms", and ends unused (JAIL_EVENT_END). Tests shorten it. */
extern unsigned jail_prepare_ms;
/* Give a prepared jail its request: check c (the code's fd included),
 * write the cgroup limits, and send the code, the /tmp size, rlimits, argv
 * and environment; the jail then mounts them and runs the box as in a
 * one-shot jail. A prepared jail runs at most one request. On a failed check
 * (or out of memory) returns a negative errno, writes why when given, and
 * leaves the jail unused; after that, failures come through done as
 * JAIL_SETUP_ERROR. c's strings and stdin must live until done. */
int jail_start(Jail *j, const JailConfig *c, jail_done_fn done, void *userdata, char *why, size_t why_len);
void jail_set_events(Jail *j, jail_event_fn fn, void *userdata);
bool jail_is_ready(const Jail *j);   /* prepared, waiting, not started */
bool jail_is_started(const Jail *j);

/* Kill the whole jail now; a started one reports JAIL_KILLED. */
int jail_kill(Jail *j);
pid_t jail_pid(const Jail *j);
/* The name of the jail's own cgroup ("jail-PID-N", the last component of
 * its path in every hierarchy), or NULL before it has one: what a
 * process's /proc/PID/cgroup shows for the jail it is in. */
const char *jail_cgroup_name(const Jail *j);
/* Release the handle (once). Before END, the jail is torn down on the loop
 * first and releases itself then; a jail whose result has not come yet is
 * killed, and its done callback will not fire (END still does). */
Jail *jail_free(Jail *j);

/* Open /dev/null on whichever of fds 0-2 is closed, so that no jail fd
 * (or loop fd) takes their place: call it before creating a loop. */
int jail_stdio_fill(void);
/* Check a config and open its code (O_PATH): the fd, which the checks
 * applied to, can be passed on as code_fd (to the daemon, for one). */
int jail_config_check_open(const JailConfig *c, char *why, size_t why_len, int *ret_code_fd);

/* Remove the jail cgroups under cgroup_parent whose runtime died (they
 * are named for its pid), killing what is left in them: a daemon's start
 * over the leftovers of one that was killed. The first jail of a process
 * does it too; this is for a daemon that may build none. */
int jail_sweep_stale(const char *cgroup_parent);

/* Spawn on a private loop and wait: the one-shot path used by the CLI. */
int jail_run(const JailConfig *c, JailResult *ret);
void jail_result_clear(JailResult *r);

const char *jail_status_to_string(JailStatus s);
const char *jail_runtime_to_string(JailRuntime r);
int jail_runtime_from_string(const char *s);
