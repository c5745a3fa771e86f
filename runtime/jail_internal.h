/* runtime/jail_internal.h: shared between the parts of the jail module. */
#pragma once

#include "jail.h"
#include "jail_child.h"

typedef struct JailRuntimeInfo {
        const char *name;
        const char *interpreter;   /* NULL: the code itself is executed */
        const char *flags[4];
        const char *default_entry; /* for a code folder */
} JailRuntimeInfo;

extern const JailRuntimeInfo jail_runtimes[_JAIL_RUNTIME_MAX];

struct stat;
/* Check an open (O_PATH) fd of the code: what is checked is what gets
 * mounted. Returns its stat. */
int jail_code_check(const JailConfig *c, int fd, char *why, size_t len, struct stat *ret_st);
/* Open --code once (O_PATH) and check the opened file. */
int jail_code_open(const JailConfig *c, char *why, size_t len, int *ret_fd, struct stat *ret_st);
int jail_config_check_rest(const JailConfig *c, char *why, size_t len);

/* What a prepared jail receives with START (jail_request.c). */
typedef struct JailStartParts {
        JailStartMsg msg;
        int code_fd;   /* the code's detached mount (open_tree) */
        int spec_fd;   /* memfd: exec path, argv, envp */
        int run_fd;    /* the run_dir's detached mount, or -1 */
        int input_fd;  /* the input_dir's detached mount, or -1 */
        int output_fd; /* the output_dir's detached mount, or -1 */
} JailStartParts;

/* zygote: JAIL_ZYGOTE_* (what the jail becomes instead of running the box) */
int jail_request_build(const JailConfig *c, int path_fd, bool is_dir, int zygote, JailStartParts *ret);
void jail_request_clear(JailStartParts *p);
/* The fds START carries, in order, into fds; their count. */
size_t jail_request_fds(const JailStartParts *p, int fds[static 5]);
/* The name a single-file code has under /fn. */
int jail_code_name(const char *code, char *ret, size_t len);
/* A template zygote's ADOPT for c (zygote_child.h): a memfd in *ret_fd. */
int jail_adopt_build(const JailConfig *c, bool is_dir, int *ret_fd);
/* Mount c's code (code_fd, checked) and run_dir, read-only, on /fn and
 * /run/fnbox in the mount namespace of the template zygote pid
 * (jail_adopt.c). */
int jail_adopt_mount(pid_t pid, const JailConfig *c, int code_fd, bool is_dir, char *why, size_t why_len);

/* ----- zygotes (runtime/zygote.c) ----- */

typedef void (*jail_msg_fn)(Jail *j, const JailMsg *m, void *userdata);

/* Build a jail that becomes a zygote of kind JAIL_ZYGOTE_EXEC or _PYTHON
 * (checking c and its code as jail_spawn does), in a cgroup with limits
 * cg, without a deadline. Its messages other than the jail's own (the
 * zygote's READY) go to msg_fn; done fires when it is gone. */
int jail_zygote_spawn(uv_loop_t *loop, const JailConfig *c, const CgroupLimits *cg, int kind, jail_done_fn done,
                      void *userdata, jail_msg_fn msg_fn, void *msg_userdata, char *why, size_t why_len,
                      Jail **ret);
/* Ask the zygote for a child: a cgroup of its own with c's limits, the
 * box's pipes and a control socket, sent with FORK. The child is a jail
 * handle like a prepared one (JAIL_EVENT_READY once it waits, END when it
 * is gone), whose request starts with jail_zchild_go(). */
bool jail_has_exited(Jail *j);
/* A template zygote (kind JAIL_ZYGOTE_TEMPLATE, ready) becomes c's: c
 * and its code checked as for jail_zygote_spawn, the code and run_dir
 * mounted in its jail, then ADOPT sent. On failure the template is in an
 * unknown state: kill it. */
int jail_zygote_adopt(Jail *z, const JailConfig *c, char *why, size_t why_len);
/* What an ended child of a zygote leaves for a later one: its emptied
 * cgroup and its network namespace (an fd, or -1). */
typedef struct JailKept {
        Cgroup cg;
        int netns;
} JailKept;
/* reuse: NULL, or what the child starts from: a recycled cgroup of an
 * earlier child's (taken; n == 0: a new one is made) and a network
 * namespace to offer it (-1: none; the caller keeps and closes it). Either
 * way the child's cgroup and namespace then outlive it, for
 * jail_take_kept(). */
int jail_zchild_new(Jail *zygote, const JailConfig *c, JailKept *reuse, Jail **ret);
/* At END, a child made with reuse gives up what it leaves (cg.n == 0 and
 * netns -1 when nothing, or before END); else all is removed when the
 * jail is freed. */
void jail_take_kept(Jail *j, JailKept *ret);
/* go_data: what travels with GO (the request's environment, zygote_child.h) */
int jail_zchild_go(Jail *j, const JailConfig *c, const void *stdin_data, size_t stdin_len, const void *go_data,
                   size_t go_len, jail_done_fn done, void *userdata);
