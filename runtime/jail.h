/* runtime/jail.h: the jail as a library. jail_spawn() builds a one-shot jail
 * (namespaces, a pivoted read-only root, cgroup limits, seccomp, no
 * capabilities) around one box process, feeds it stdin and collects its
 * capped stdout and stderr on a libuv loop; the done callback receives the
 * result. Many jails may run on one loop at once. Callers must ignore SIGPIPE,
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

typedef struct JailConfig {
        JailRuntime runtime;
        const char *code;        /* host path of a file or directory, bound at /fn */
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
/* r is owned by the jail; the callback may take r->out.data and r->err.data. */
typedef void (*jail_done_fn)(Jail *j, JailResult *r, void *userdata);

void jail_limits_default(JailLimits *l);
void jail_config_init(JailConfig *c);

/* Validate a config before anything is built. On failure returns -EINVAL
 * (or another errno) and writes a one-line reason to why. */
int jail_config_check(const JailConfig *c, char *why, size_t why_len);

/* Build and start a jail. The result arrives through done on loop; after
 * done returns, the caller may jail_free() the handle. */
int jail_spawn(uv_loop_t *loop, const JailConfig *c, jail_done_fn done, void *userdata, Jail **ret);
/* Kill the whole jail now; the result reports JAIL_KILLED. */
int jail_kill(Jail *j);
pid_t jail_pid(const Jail *j);
Jail *jail_free(Jail *j);

/* Spawn on a private loop and wait: the one-shot path used by the CLI. */
int jail_run(const JailConfig *c, JailResult *ret);
void jail_result_clear(JailResult *r);

const char *jail_status_to_string(JailStatus s);
const char *jail_runtime_to_string(JailRuntime r);
int jail_runtime_from_string(const char *s);
