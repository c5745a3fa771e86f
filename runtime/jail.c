/* runtime/jail.c: spawning jails and collecting their results on a libuv
 * loop. The parent side: prepares everything the child needs (cgroup, pipes,
 * the control socket, argv and environment), clones the child into new
 * namespaces, writes its user namespace maps when asked, enforces the
 * deadline and the output caps, and turns what happened into a JailResult. */
#define _GNU_SOURCE
#include "jail.h"
#include "jail_internal.h"
#include "jail_child.h"
#include "seccomp.h"

#include <fcntl.h>
#include <libgen.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>

#include "lib/util.h"

#define READ_CHUNK 65536

/* What is the same for every jail of this process, computed once. */
typedef struct JailHost {
        bool ready;
        CgroupHost cg;
        struct sock_fprog filter;  /* points at the build-time program */
        JailTopDir topdirs[6];
        char *ld_cache;
        size_t ld_cache_len;
        cap_t no_caps;
        int cap_last;
} JailHost;

static JailHost host;
static unsigned long jail_counter;

enum { PL_PIDFD, PL_SOCK, PL_OUT, PL_ERR, PL_IN, PL_TIMER, _PL_MAX };

typedef enum KillReason { KILL_NONE, KILL_TIMEOUT, KILL_OUTPUT, KILL_REQUEST, KILL_SETUP } KillReason;

struct Jail {
        uv_loop_t *loop;
        jail_done_fn done;
        void *userdata;
        pid_t pid;
        int pidfd;
        int fds[_PL_MAX];          /* parent ends, indexed like polls */
        uv_poll_t polls[_PL_MAX];
        bool poll_open[_PL_MAX];
        unsigned open_handles;
        Cgroup cg;
        uint64_t t_start_ns;
        uv_buf_t stdin_buf;       /* remaining stdin, borrowed from the config */
        KillReason kill_reason;
        bool exited, finished;
        int wstatus;              /* init's, from waitid */
        struct rusage ru;
        bool got_exit_msg, got_setup_error;
        JailMsg last_exit, setup_error;
        JailResult result;
        uint64_t output_cap;
        char **argv, **envp;      /* owned, freed with the jail */
        char exec_path[PATH_MAX];
        uid_t host_uid;
        gid_t host_gid;
};

static uint64_t now_ns(void) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (uint64_t) t.tv_sec * 1000000000ULL + (uint64_t) t.tv_nsec;
}

/* ----- the per-process host description ----- */

/* If the process was started with 0, 1 or 2 closed (CI runs with no stdin),
 * the next pipe or socket would take that number: the box's pipes would
 * become our stdio, and libuv refuses to close fds <= 2. Fill the gaps with
 * /dev/null once, before any jail fd exists. */
static int stdio_fill(void) {
        for (int fd = 0; fd <= 2; fd++) {
                if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
                        continue;
                int n = open("/dev/null", O_RDWR); /* lowest free number: fd itself */
                if (n < 0)
                        return negative_errno();
                if (n != fd) {
                        close(n);
                        return -EBADF;
                }
        }
        return 0;
}

static int host_init(void) {
        if (host.ready)
                return 0;
        int r = stdio_fill();
        if (r < 0)
                return r;
        if ((r = cgroup_host_detect(&host.cg)) < 0)
                return r;
        if (r < 0)
                return r;
        host.filter.filter = (struct sock_filter *) syscall_filter_bpf;
        host.filter.len = syscall_filter_bpf_len;
        static const char *const tops[] = { "bin", "sbin", "lib", "lib32", "lib64", "libx32" };
        for (size_t i = 0; i < ELEMENTSOF(tops); i++) {
                JailTopDir *t = &host.topdirs[i];
                char p[32];
                struct stat st;
                snprintf(t->name, sizeof t->name, "%s", tops[i]);
                snprintf(p, sizeof p, "/%s", tops[i]);
                if (lstat(p, &st) < 0)
                        continue;
                if (S_ISLNK(st.st_mode)) {
                        ssize_t n = readlink(p, t->link, sizeof t->link - 1);
                        if (n <= 0)
                                continue;
                        t->link[n] = 0;
                } else if (!S_ISDIR(st.st_mode))
                        continue;
                t->present = true;
        }
        /* ld.so finds libraries much faster with its cache; copy it in */
        char *buf = malloc(1 << 20);
        if (buf) {
                ssize_t n = read_file_small("/etc/ld.so.cache", buf, 1 << 20);
                if (n > 0 && n < (1 << 20) - 1) {
                        host.ld_cache = buf;
                        host.ld_cache_len = (size_t) n;
                } else
                        free(buf);
        }
        host.no_caps = cap_init();
        if (!host.no_caps)
                return -ENOMEM;
        host.cap_last = cap_max_bits() - 1;
        host.ready = true;
        return 0;
}

/* Once per process: remove jail cgroups whose runtime died (SIGKILL, crash). */
static void host_sweep(const char *parent) {
        static bool swept;
        if (swept)
                return;
        swept = true;
        cgroup_sweep_stale(&host.cg, parent);
}

/* ----- argv and environment ----- */

static char **strv_new(size_t n) { return calloc(n + 1, sizeof(char *)); }

static void strv_free(char **v) {
        for (size_t i = 0; v && v[i]; i++)
                free(v[i]);
        free(v);
}

static int build_argv(Jail *j, const JailConfig *c, bool is_dir) {
        const JailRuntimeInfo *rt = &jail_runtimes[c->runtime];
        char code_in_jail[PATH_MAX];
        if (is_dir)
                snprintf(code_in_jail, sizeof code_in_jail, "/fn/%s", c->entry ? c->entry : rt->default_entry);
        else {
                _cleanup_free_ char *copy = strdup(c->code);
                if (!copy)
                        return -ENOMEM;
                snprintf(code_in_jail, sizeof code_in_jail, "/fn/%s", basename(copy));
        }
        char **v = j->argv = strv_new(8 + c->n_args);
        if (!v)
                return -ENOMEM;
        size_t n = 0;
        if (rt->interpreter) {
                v[n++] = strdup(rt->interpreter);
                for (size_t i = 0; rt->flags[i]; i++)
                        v[n++] = strdup(rt->flags[i]);
                snprintf(j->exec_path, sizeof j->exec_path, "%s", rt->interpreter);
        } else
                snprintf(j->exec_path, sizeof j->exec_path, "%s", code_in_jail);
        v[n++] = strdup(code_in_jail);
        for (size_t i = 0; i < c->n_args; i++)
                v[n++] = strdup(c->args[i]);
        for (size_t i = 0; i < n; i++)
                if (!v[i])
                        return -ENOMEM;
        return 0;
}

static int build_env(Jail *j, const JailConfig *c) {
        static const char *const base[] = {
                "PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "TMPDIR=/tmp",
                "LANG=C.UTF-8", "USER=box", "LOGNAME=box",
        };
        char **v = j->envp = strv_new(ELEMENTSOF(base) + c->n_env);
        if (!v)
                return -ENOMEM;
        size_t n = 0;
        for (size_t i = 0; i < ELEMENTSOF(base); i++) {
                size_t klen = strcspn(base[i], "=") + 1;
                bool overridden = false;
                for (size_t k = 0; k < c->n_env; k++)
                        overridden |= strncmp(c->env[k], base[i], klen) == 0;
                if (!overridden && !(v[n++] = strdup(base[i])))
                        return -ENOMEM;
        }
        for (size_t k = 0; k < c->n_env; k++)
                if (!(v[n++] = strdup(c->env[k])))
                        return -ENOMEM;
        return 0;
}

/* ----- lifecycle ----- */

static void jail_signal(Jail *j, KillReason why) {
        if (j->kill_reason == KILL_NONE)
                j->kill_reason = why;
        if (j->pidfd >= 0 && !j->exited)
                (void) syscall(SYS_pidfd_send_signal, j->pidfd, SIGKILL, NULL, 0);
}

int jail_kill(Jail *j) {
        if (!j || j->exited)
                return -ESRCH;
        jail_signal(j, KILL_REQUEST);
        return 0;
}

pid_t jail_pid(const Jail *j) { return j ? j->pid : -1; }

static void on_handle_closed(uv_handle_t *h);

static void poll_stop(Jail *j, int which) {
        if (!j->poll_open[which])
                return;
        j->poll_open[which] = false;
        uv_poll_stop(&j->polls[which]);
        uv_close((uv_handle_t *) &j->polls[which], on_handle_closed);
}

static void close_stream(Jail *j, int which) {
        poll_stop(j, which);
        /* the fd itself is closed when the handle's close callback runs */
}

/* Append output, keeping at most the cap; more than the cap kills the jail. */
static void output_read(Jail *j, int which) {
        JailOutput *o = which == PL_OUT ? &j->result.out : &j->result.err;
        char buf[READ_CHUNK];
        for (int rounds = 0; rounds < 64; rounds++) {
                ssize_t n = read(j->fds[which], buf, sizeof buf);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return;
                if (n <= 0) {
                        close_stream(j, which);
                        return;
                }
                size_t room = j->output_cap - o->len, take = (size_t) n < room ? (size_t) n : room;
                if (take > 0) {
                        char *d = realloc(o->data, o->len + take + 1);
                        if (!d) {
                                jail_signal(j, KILL_SETUP);
                                return;
                        }
                        memcpy(d + o->len, buf, take);
                        o->data = d;
                        o->len += take;
                        o->data[o->len] = 0;
                }
                if ((size_t) n > take) {
                        o->truncated = true;
                        jail_signal(j, KILL_OUTPUT);
                        close_stream(j, which);
                        return;
                }
        }
}

static void stdin_write(Jail *j) {
        while (j->stdin_buf.len > 0) {
                ssize_t n = write(j->fds[PL_IN], j->stdin_buf.base, j->stdin_buf.len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return;
                if (n < 0)
                        break; /* EPIPE: the box closed its stdin */
                j->stdin_buf.base += n;
                j->stdin_buf.len -= (size_t) n;
        }
        close_stream(j, PL_IN);
}

/* Write the box's user namespace maps: its uid and gid map to the
 * unprivileged host ids, and nothing else is mapped. */
static int write_maps(Jail *j, uid_t uid, gid_t gid) {
        char path[64], map[64];
        int r;
        snprintf(path, sizeof path, "/proc/%d/setgroups", j->pid);
        if ((r = write_file_str(path, "deny")) < 0)
                return r;
        snprintf(path, sizeof path, "/proc/%d/uid_map", j->pid);
        snprintf(map, sizeof map, "%d %u 1\n", JAIL_BOX_UID, (unsigned) uid);
        if ((r = write_file_str(path, map)) < 0)
                return r;
        snprintf(path, sizeof path, "/proc/%d/gid_map", j->pid);
        snprintf(map, sizeof map, "%d %u 1\n", JAIL_BOX_UID, (unsigned) gid);
        return write_file_str(path, map);
}

static void sock_read(Jail *j) {
        for (;;) {
                JailMsg m;
                ssize_t n = recv(j->fds[PL_SOCK], &m, sizeof m, MSG_DONTWAIT);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n != sizeof m) {
                        if (n == 0 || (n < 0 && errno != EAGAIN))
                                close_stream(j, PL_SOCK);
                        return;
                }
                m.what[sizeof m.what - 1] = 0;
                switch (m.type) {
                case JAIL_MSG_USERNS: {
                        int r = write_maps(j, j->host_uid, j->host_gid);
                        JailMsg go = { .type = JAIL_MSG_GO };
                        if (r < 0 || send(j->fds[PL_SOCK], &go, sizeof go, MSG_NOSIGNAL) != sizeof go) {
                                j->setup_error = (JailMsg) { .type = JAIL_MSG_SETUP_ERROR, .err = -r };
                                snprintf(j->setup_error.what, sizeof j->setup_error.what, "write user namespace maps");
                                j->got_setup_error = true;
                                jail_signal(j, KILL_SETUP);
                        }
                        break;
                }
                case JAIL_MSG_SETUP_ERROR:
                        if (!j->got_setup_error) {
                                j->setup_error = m;
                                j->got_setup_error = true;
                        }
                        break;
                case JAIL_MSG_EXIT:
                        j->last_exit = m;
                        j->got_exit_msg = true;
                        break;
                }
        }
}

static void finish(Jail *j);

/* init has exited: every process of the jail is gone (the kernel kills and
 * reaps the rest of a pid namespace before its init's exit is reported). */
static void on_init_exit(Jail *j) {
        siginfo_t si = { 0 };
        if (syscall(SYS_waitid, P_PIDFD, j->pidfd, &si, WEXITED, &j->ru) < 0)
                return; /* spurious wake-up */
        j->exited = true;
        j->result.wall_ms = (double) (now_ns() - j->t_start_ns) / 1e6;
        j->wstatus = si.si_code == CLD_EXITED ? si.si_status : 128 + si.si_status;
        poll_stop(j, PL_PIDFD);
        poll_stop(j, PL_TIMER);
        poll_stop(j, PL_IN);
        if (j->poll_open[PL_SOCK])
                sock_read(j);
        poll_stop(j, PL_SOCK);
        /* every writer is dead: what is left in the pipes is all there is */
        for (int w = PL_OUT; w <= PL_ERR; w++) {
                if (j->poll_open[w])
                        output_read(j, w);
                close_stream(j, w);
        }
}

static void on_poll(uv_poll_t *h, int status, int events) {
        Jail *j = h->data;
        int which = (int) (h - j->polls);
        (void) events;
        if (status < 0 && which != PL_PIDFD) {
                close_stream(j, which);
                return;
        }
        switch (which) {
        case PL_PIDFD:
                on_init_exit(j);
                break;
        case PL_SOCK:
                sock_read(j);
                break;
        case PL_OUT:
        case PL_ERR:
                output_read(j, which);
                break;
        case PL_IN:
                stdin_write(j);
                break;
        case PL_TIMER: {
                uint64_t ticks;
                if (read(j->fds[PL_TIMER], &ticks, sizeof ticks) == sizeof ticks)
                        jail_signal(j, KILL_TIMEOUT);
                poll_stop(j, PL_TIMER);
                break;
        }
        }
}

static void on_handle_closed(uv_handle_t *h) {
        Jail *j = h->data;
        int which = (int) ((uv_poll_t *) h - j->polls);
        j->fds[which] = safe_close(j->fds[which]);
        if (--j->open_handles == 0 && j->exited)
                finish(j);
}

static void classify(Jail *j) {
        JailResult *r = &j->result;
        bool oom = cgroup_oom_killed(&j->cg);
        if (j->kill_reason == KILL_TIMEOUT)
                r->status = JAIL_TIMEOUT;
        else if (j->kill_reason == KILL_OUTPUT)
                r->status = JAIL_OUTPUT_LIMIT;
        else if (oom)
                r->status = JAIL_OUT_OF_MEMORY;
        else if (j->got_setup_error) {
                r->status = JAIL_SETUP_ERROR;
                snprintf(r->error, sizeof r->error, "%s: %s", j->setup_error.what, strerror(j->setup_error.err));
        } else if (j->kill_reason == KILL_REQUEST)
                r->status = JAIL_KILLED;
        else if (j->got_exit_msg) {
                int st = j->last_exit.wstatus;
                if (WIFEXITED(st)) {
                        r->status = JAIL_EXITED;
                        r->exit_code = WEXITSTATUS(st);
                } else {
                        r->status = JAIL_SIGNALED;
                        r->signal = WTERMSIG(st);
                }
        } else {
                r->status = JAIL_SETUP_ERROR;
                snprintf(r->error, sizeof r->error, "jail init ended early (status %d)", j->wstatus);
        }
        if (r->status == JAIL_TIMEOUT || r->status == JAIL_OUTPUT_LIMIT || r->status == JAIL_KILLED ||
            r->status == JAIL_OUT_OF_MEMORY)
                r->signal = SIGKILL;
        /* The cgroup counts every task; rusage misses the tasks the kernel
         * reaped itself when a killed jail's pid namespace was torn down. */
        long long cpu_ns = cgroup_cpu_usage_ns(&j->cg), peak = cgroup_memory_peak(&j->cg);
        r->cpu_ms = cpu_ns >= 0 ? (double) cpu_ns / 1e6
                                : (double) (j->ru.ru_utime.tv_sec + j->ru.ru_stime.tv_sec) * 1e3 +
                                          (double) (j->ru.ru_utime.tv_usec + j->ru.ru_stime.tv_usec) / 1e3;
        r->max_rss_kb = j->ru.ru_maxrss;
        if (j->kill_reason != KILL_NONE && peak / 1024 > r->max_rss_kb)
                r->max_rss_kb = (long) (peak / 1024);
}

static void finish(Jail *j) {
        if (j->finished)
                return;
        j->finished = true;
        classify(j);
        if (cgroup_destroy(&j->cg) < 0 && j->result.status != JAIL_SETUP_ERROR)
                snprintf(j->result.error, sizeof j->result.error, "could not remove the jail's cgroup");
        j->pidfd = safe_close(j->pidfd);
        j->done(j, &j->result, j->userdata);
}

/* ----- spawn ----- */

static int make_pipe(int fds[2], bool parent_reads) {
        if (pipe2(fds, O_CLOEXEC) < 0)
                return negative_errno();
        int parent = parent_reads ? fds[0] : fds[1];
        return fcntl(parent, F_SETFL, O_NONBLOCK) < 0 ? negative_errno() : 0;
}

static int arm_timer(uint64_t ns) {
        int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
        if (fd < 0)
                return negative_errno();
        struct itimerspec its = { .it_value = { (time_t) (ns / 1000000000ULL), (long) (ns % 1000000000ULL) } };
        if (timerfd_settime(fd, 0, &its, NULL) < 0)
                return safe_close(fd), negative_errno();
        return fd;
}

/* Fill in what only the child needs; fds index the child's own copies. */
static void child_args(JailChildArgs *a, const Jail *j, const JailConfig *c, int sock,
                       const int stdio[3], int code_fd, bool is_dir, const char *target) {
        const JailLimits *l = &c->limits;
        uint64_t inodes = l->tmp_inodes ? l->tmp_inodes : l->tmp_bytes / 4096;
        uint64_t fsize = l->fsize_bytes ? l->fsize_bytes : l->tmp_bytes;
        *a = (JailChildArgs) {
                .sock = sock, .code_fd = code_fd, .code_is_dir = is_dir,
                .topdirs = host.topdirs, .n_topdirs = ELEMENTSOF(host.topdirs),
                .ld_cache = host.ld_cache, .ld_cache_len = host.ld_cache_len,
                .filter = &host.filter, .no_caps = host.no_caps, .cap_last = host.cap_last,
                .exec_path = j->exec_path, .argv = j->argv, .envp = j->envp,
                .rl_core = { 0, 0 },
                .rl_fsize = { fsize, fsize },
                .rl_nofile = { l->nofile, l->nofile },
                .rl_stack = { l->stack_bytes, l->stack_bytes },
        };
        memcpy(a->stdio, stdio, sizeof a->stdio);
        snprintf(a->code_target, sizeof a->code_target, "%s", target);
        snprintf(a->tmp_opts, sizeof a->tmp_opts, "size=%llu,nr_inodes=%llu,mode=1777",
                 (unsigned long long) l->tmp_bytes, (unsigned long long) (inodes < 64 ? 64 : inodes));
}

static int start_polls(Jail *j) {
        static const int ev[_PL_MAX] = {
                [PL_PIDFD] = UV_READABLE, [PL_SOCK] = UV_READABLE, [PL_OUT] = UV_READABLE,
                [PL_ERR] = UV_READABLE, [PL_IN] = UV_WRITABLE, [PL_TIMER] = UV_READABLE,
        };
        j->fds[PL_PIDFD] = j->pidfd;
        for (int i = 0; i < _PL_MAX; i++) {
                int r = uv_poll_init(j->loop, &j->polls[i], j->fds[i]);
                if (r < 0)
                        return r;
                j->polls[i].data = j;
                j->poll_open[i] = true;
                j->open_handles++;
                if ((r = uv_poll_start(&j->polls[i], ev[i], on_poll)) < 0)
                        return r;
        }
        /* the pidfd is owned by j->pidfd, not by the poll */
        j->fds[PL_PIDFD] = -1;
        return 0;
}

static int spawn_child(Jail *j, const JailConfig *c, int code_fd, bool is_dir, const char *target) {
        int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 }, sp[2] = { -1, -1 };
        int r;
        if ((r = make_pipe(in, false)) < 0 || (r = make_pipe(out, true)) < 0 || (r = make_pipe(err, true)) < 0)
                goto out;
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0) {
                r = negative_errno();
                goto out;
        }
        JailChildArgs a;
        child_args(&a, j, c, sp[1], (int[3]) { in[0], out[1], err[1] }, code_fd, is_dir, target);
        int pidfd = -1;
        /* A fork-like clone into a new pid namespace. The child is still
         * host root: it makes its other namespaces and its root filesystem,
         * then gives every privilege up (jail_child.c). */
        long pid = syscall(SYS_clone, CLONE_NEWPID | CLONE_PIDFD | SIGCHLD, NULL, &pidfd, NULL, 0);
        if (pid < 0) {
                r = negative_errno();
                goto out;
        }
        if (pid == 0)
                jail_child_main(&a);
        j->pid = (pid_t) pid;
        j->pidfd = pidfd;
        j->fds[PL_IN] = TAKE_FD(in[1]);
        j->fds[PL_OUT] = TAKE_FD(out[0]);
        j->fds[PL_ERR] = TAKE_FD(err[0]);
        j->fds[PL_SOCK] = TAKE_FD(sp[0]);
        r = 0;
out:
        safe_close(in[0]), safe_close(in[1]), safe_close(out[0]), safe_close(out[1]);
        safe_close(err[0]), safe_close(err[1]), safe_close(sp[0]), safe_close(sp[1]);
        return r;
}

/* Hand the child its cgroup.procs fds; it moves itself in. */
static int send_cgroup(Jail *j) {
        int n = j->cg.n; /* procs_fd[0..n-1] are all open */
        JailMsg m = { .type = JAIL_MSG_CGROUP, .err = n };
        char cbuf[CMSG_SPACE(sizeof j->cg.procs_fd)] = { 0 };
        struct iovec iov = { &m, sizeof m };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                             .msg_controllen = CMSG_SPACE((size_t) n * sizeof(int)) };
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN((size_t) n * sizeof(int));
        memcpy(CMSG_DATA(c), j->cg.procs_fd, (size_t) n * sizeof(int));
        return sendmsg(j->fds[PL_SOCK], &mh, MSG_NOSIGNAL) == (ssize_t) sizeof m ? 0 : negative_errno();
}

/* A detached copy of the checked code's mount, which the child moves into
 * its own mount namespace (a plain bind cannot cross namespaces). */
static int code_target(const JailConfig *c, int path_fd, bool is_dir, int *ret_fd, char *target, size_t len) {
        if (is_dir)
                snprintf(target, len, "fn");
        else {
                _cleanup_free_ char *copy = strdup(c->code);
                if (!copy)
                        return -ENOMEM;
                snprintf(target, len, "fn/%s", basename(copy));
        }
        int fd = open_tree(path_fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
        if (fd < 0)
                return negative_errno();
        *ret_fd = fd;
        return 0;
}

int jail_spawn(uv_loop_t *loop, const JailConfig *c, jail_done_fn done, void *userdata, Jail **ret) {
        char why[256];
        _cleanup_close_ int path_fd = -1;
        struct stat st;
        int r = jail_config_check_rest(c, why, sizeof why);
        if (r < 0 || (r = jail_code_open(c, why, sizeof why, &path_fd, &st)) < 0)
                return r;
        if ((r = host_init()) < 0)
                return r;
        host_sweep(c->cgroup_parent);
        Jail *j = calloc(1, sizeof *j);
        if (!j)
                return -ENOMEM;
        *j = (Jail) { .loop = loop, .done = done, .userdata = userdata, .pid = -1, .pidfd = -1,
                      .t_start_ns = now_ns(), .output_cap = c->limits.output_bytes,
                      .host_uid = c->host_uid, .host_gid = c->host_gid,
                      .stdin_buf = uv_buf_init((char *) c->stdin_data, (unsigned) c->stdin_len) };
        for (int i = 0; i < _PL_MAX; i++)
                j->fds[i] = -1;
        for (int i = 0; i < _CG_MAX; i++)
                j->cg.procs_fd[i] = -1;
        _cleanup_close_ int code_fd = -1;
        bool is_dir = S_ISDIR(st.st_mode);
        char target[300], name[64];
        if ((r = build_argv(j, c, is_dir)) < 0 || (r = build_env(j, c)) < 0 ||
            (r = code_target(c, path_fd, is_dir, &code_fd, target, sizeof target)) < 0)
                goto fail;
        snprintf(name, sizeof name, "jail-%d-%lu", (int) getpid(), ++jail_counter);
        if ((r = j->fds[PL_TIMER] = arm_timer(c->limits.timeout_ns)) < 0)
                goto fail;
        if ((r = spawn_child(j, c, code_fd, is_dir, target)) < 0)
                goto fail;
        /* while the child builds its namespaces and root: its cgroups. One
         * more pid than asked for: the jail's init. */
        CgroupLimits cl = { c->limits.memory_bytes, c->limits.pids + 1, c->limits.cpu_millis };
        if ((r = cgroup_create(&host.cg, c->cgroup_parent, name, &cl, &j->cg)) < 0 ||
            (r = send_cgroup(j)) < 0) {
                (void) syscall(SYS_pidfd_send_signal, j->pidfd, SIGKILL, NULL, 0);
                (void) syscall(SYS_waitid, P_PIDFD, j->pidfd, NULL, WEXITED, NULL);
                goto fail;
        }
        cgroup_close_fds(&j->cg);
        if ((r = start_polls(j)) < 0) {
                jail_signal(j, KILL_SETUP);
                /* handles already started will still deliver the exit */
                *ret = j;
                return 0;
        }
        if (c->stdin_len == 0)
                close_stream(j, PL_IN);
        *ret = j;
        return 0;
fail:
        cgroup_destroy(&j->cg);
        safe_close(j->pidfd);
        for (int i = 0; i < _PL_MAX; i++)
                safe_close(j->fds[i]);
        strv_free(j->argv);
        strv_free(j->envp);
        free(j);
        return r;
}

void jail_result_clear(JailResult *r) {
        free(r->out.data);
        free(r->err.data);
        memset(r, 0, sizeof *r);
}

Jail *jail_free(Jail *j) {
        if (!j)
                return NULL;
        /* a jail is freed only after done ran, when every handle is closed */
        jail_result_clear(&j->result);
        strv_free(j->argv);
        strv_free(j->envp);
        safe_close(j->pidfd);
        free(j);
        return NULL;
}

typedef struct RunState {
        JailResult *result;
        Jail *jail;
        uv_signal_t sigs[3];
} RunState;

static void run_done(Jail *j, JailResult *r, void *userdata) {
        RunState *st = userdata;
        (void) j;
        *st->result = *r;
        memset(r, 0, sizeof *r); /* buffers now belong to the caller */
        for (size_t i = 0; i < ELEMENTSOF(st->sigs); i++)
                uv_close((uv_handle_t *) &st->sigs[i], NULL);
}

/* SIGINT, SIGTERM or SIGHUP to the caller kills the jail; the normal clean-up
 * (cgroups removed) follows and jail_run returns its result. */
static void run_signal(uv_signal_t *h, int signum) {
        RunState *st = h->data;
        (void) signum;
        jail_kill(st->jail);
}

int jail_run(const JailConfig *c, JailResult *ret) {
        uv_loop_t loop;
        int r = stdio_fill(); /* before the loop's own fds exist */
        if (r < 0 || (r = uv_loop_init(&loop)) < 0)
                return r;
        RunState st = { .result = ret };
        *ret = (JailResult) { 0 };
        r = jail_spawn(&loop, c, run_done, &st, &st.jail);
        if (r >= 0) {
                static const int signums[] = { SIGINT, SIGTERM, SIGHUP };
                for (size_t i = 0; i < ELEMENTSOF(signums); i++) {
                        uv_signal_init(&loop, &st.sigs[i]);
                        st.sigs[i].data = &st;
                        uv_signal_start(&st.sigs[i], run_signal, signums[i]);
                }
                uv_run(&loop, UV_RUN_DEFAULT);
        }
        jail_free(st.jail);
        uv_loop_close(&loop);
        return r;
}

const char *jail_status_to_string(JailStatus s) {
        static const char *const names[_JAIL_STATUS_MAX] = {
                [JAIL_EXITED] = "exited", [JAIL_SIGNALED] = "signaled",
                [JAIL_TIMEOUT] = "timeout", [JAIL_OUT_OF_MEMORY] = "out_of_memory",
                [JAIL_OUTPUT_LIMIT] = "output_limit", [JAIL_KILLED] = "killed",
                [JAIL_SETUP_ERROR] = "setup_error",
        };
        return s < _JAIL_STATUS_MAX ? names[s] : "unknown";
}
