/* runtime/jail.c: preparing jails, starting them with a request, and
 * collecting their results on a libuv loop. The parent side: prepares what
 * the child needs (cgroup, pipes, the control socket), clones the child into
 * new namespaces, sends it the request, writes its user namespace maps when
 * asked, enforces the deadline and the output caps, turns what happened
 * into a JailResult as soon as the box is done, and tears the jail down. */
#define _GNU_SOURCE
#include "jail.h"
#include "jail_internal.h"
#include "seccomp.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <linux/nsfs.h>
#include <sys/ioctl.h>
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
        JailAlt alts[JAIL_ALTS_MAX];
        size_t n_alts;
        cap_t no_caps;
        cap_t zygote_caps;
        int cap_last;
        char binds[JAIL_BINDS_MAX][JAIL_BIND_LEN];  /* jail_host_binds */
        size_t n_binds;
} JailHost;

static JailHost host;
static unsigned long jail_counter;

/* The limits of a prepared jail's cgroup until its request: its init alone,
 * which has nothing to do but wait. */
static const CgroupLimits idle_limits = { .memory_bytes = 16ULL << 20, .pids = 1, .cpu_millis = 100 };

/* PL_DONE: a zygote child's box says its exit code there just before it
 * exits (docs/jail.md, "Zygotes"); one-shot jails have none. */
enum { PL_PIDFD, PL_SOCK, PL_OUT, PL_ERR, PL_IN, PL_TIMER, PL_DONE, _PL_MAX };

typedef enum KillReason { KILL_NONE, KILL_TIMEOUT, KILL_OUTPUT, KILL_REQUEST, KILL_SETUP } KillReason;

struct Jail {
        uv_loop_t *loop;
        jail_done_fn done;
        void *userdata;
        jail_event_fn event;
        void *event_userdata;
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
        bool ready, started, exited, reported, ended, free_requested;
        bool background;          /* prepared at SCHED_IDLE for a pool */
        struct rusage ru;         /* init's, from waitid */
        bool got_exit_msg, got_setup_error;
        bool got_done;            /* the box's own word on its exit code (PL_DONE) */
        uint8_t done_code;
        JailMsg last_exit, setup_error;
        JailResult result;
        uint64_t output_cap;
        jail_output_fn output_fn;  /* streamed output instead of the capped buffers */
        void *output_userdata;
        uid_t host_uid;
        gid_t host_gid;
        /* a zygote's child (jail_zchild_new): not our child process; its
         * pidfd arrives with its HELLO, its usage with its EXIT */
        bool adopted;
        bool kept;                /* its cgroup and network namespace outlive it: jail_take_kept() */
        int netns;                /* a zygote's child's network namespace (JAIL_MSG_NETNS), or -1 */
        long long cpu_base_ns;    /* the cgroup's CPU time before the request */
        jail_msg_fn msg_fn;       /* messages the jail does not handle itself */
        bool hung_up;             /* its control socket reached its end */
        void *msg_userdata;
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
int jail_stdio_fill(void) {
        return stdio_fill();
}

/* What a zygote keeps, as libcap's set: made here, since the child may
 * not allocate (jail_child.c). */
static cap_t zygote_caps_new(void) {
        cap_t caps = cap_init();
        if (!caps)
                return NULL;
        if (cap_set_flag(caps, CAP_PERMITTED, JAIL_ZYGOTE_KEEP, jail_zygote_keep, CAP_SET) < 0 ||
            cap_set_flag(caps, CAP_EFFECTIVE, JAIL_ZYGOTE_KEEP, jail_zygote_keep, CAP_SET) < 0 ||
            cap_set_flag(caps, CAP_INHERITABLE, JAIL_ZYGOTE_KEEP, jail_zygote_keep, CAP_SET) < 0) {
                cap_free(caps);
                return NULL;
        }
        return caps;
}

/* The library links of /etc/alternatives (names with ".so"), whose targets
 * are absolute paths outside /etc, /proc, /sys and /dev: the jail's /etc
 * gets the same links (jail_child.c). Nothing else of /etc/alternatives. */
static void host_alternatives(void) {
        DIR *d = opendir("/etc/alternatives");
        struct dirent *de;
        while (d && host.n_alts < JAIL_ALTS_MAX && (de = readdir(d))) {
                JailAlt *a = &host.alts[host.n_alts];
                char path[512];
                if (!strstr(de->d_name, ".so") || strlen(de->d_name) >= sizeof a->name || strchr(de->d_name, '/'))
                        continue;
                snprintf(path, sizeof path, "/etc/alternatives/%s", de->d_name);
                ssize_t n = readlink(path, a->target, sizeof a->target - 1);
                if (n <= 1)
                        continue;
                a->target[n] = 0;
                if (a->target[0] != '/' || strstr(a->target, "/..") || strncmp(a->target, "/etc/", 5) == 0 ||
                    strncmp(a->target, "/proc/", 6) == 0 || strncmp(a->target, "/sys/", 5) == 0 ||
                    strncmp(a->target, "/dev/", 5) == 0)
                        continue;
                snprintf(a->name, sizeof a->name, "%s", de->d_name);
                host.n_alts++;
        }
        if (d)
                closedir(d);
}

static int host_init(void) {
        if (host.ready)
                return 0;
        int r = jail_stdio_fill();
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
        host_alternatives();
        host.no_caps = cap_init();
        if (!host.no_caps)
                return -ENOMEM;
        host.zygote_caps = zygote_caps_new();
        if (!host.zygote_caps)
                return -ENOMEM;
        host.cap_last = cap_max_bits() - 1;
        host.ready = true;
        return 0;
}

int jail_host_binds(const char (*paths)[JAIL_BIND_LEN], size_t n) {
        if (n > JAIL_BINDS_MAX)
                return -E2BIG;
        for (size_t i = 0; i < n; i++) {
                size_t len = strnlen(paths[i], JAIL_BIND_LEN);
                if (paths[i][0] != '/' || len < 2 || len >= JAIL_BIND_LEN || strstr(paths[i], "/..") ||
                    strncmp(paths[i], "/proc", 5) == 0 || strncmp(paths[i], "/sys", 4) == 0 ||
                    strncmp(paths[i], "/dev", 4) == 0 || strncmp(paths[i], "/etc", 4) == 0)
                        return -EINVAL;
        }
        /* as the host resolves them: /lib/x on a merged-/usr host is
         * /usr/lib/x, in every jail already */
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
                char real[PATH_MAX];
                if (!realpath(paths[i], real))
                        return negative_errno();
                if (strlen(real) >= JAIL_BIND_LEN || strcmp(real, "/") == 0 || strncmp(real, "/proc", 5) == 0 ||
                    strncmp(real, "/sys", 4) == 0 || strncmp(real, "/dev", 4) == 0 || strncmp(real, "/etc", 4) == 0)
                        return -EINVAL;
                if (strncmp(real, "/usr/", 5) != 0)
                        snprintf(host.binds[k++], JAIL_BIND_LEN, "%s", real);
        }
        host.n_binds = k;
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

int jail_sweep_stale(const char *cgroup_parent) {
        int r = host_init();
        if (r < 0)
                return r;
        host_sweep(cgroup_parent);
        return 0;
}

/* ----- lifecycle ----- */

static void jail_signal(Jail *j, KillReason why) {
        if (j->kill_reason == KILL_NONE)
                j->kill_reason = why;
        if (j->pidfd >= 0 && !j->exited)
                (void) syscall(SYS_pidfd_send_signal, j->pidfd, SIGKILL, NULL, 0);
        else if (j->adopted && !j->exited && j->fds[PL_SOCK] >= 0)
                /* a zygote's child that has not said hello: hang up on it;
                 * its socket's end is its end (and it cannot start now) */
                (void) shutdown(j->fds[PL_SOCK], SHUT_RDWR);
}

int jail_kill(Jail *j) {
        if (!j || j->exited)
                return -ESRCH;
        jail_signal(j, KILL_REQUEST);
        return 0;
}

pid_t jail_pid(const Jail *j) { return j ? j->pid : -1; }

const char *jail_cgroup_name(const Jail *j) {
        const char *slash = j && j->cg.n > 0 ? strrchr(j->cg.path[0], '/') : NULL;
        return slash ? slash + 1 : NULL;
}
bool jail_is_ready(const Jail *j) { return j->ready && !j->started && !j->exited && j->kill_reason == KILL_NONE; }
bool jail_is_started(const Jail *j) { return j->started; }

void jail_set_events(Jail *j, jail_event_fn fn, void *userdata) {
        j->event = fn;
        j->event_userdata = userdata;
}

static void on_handle_closed(uv_handle_t *h);

static void poll_stop(Jail *j, int which) {
        if (!j->poll_open[which])
                return;
        j->poll_open[which] = false;
        uv_poll_stop(&j->polls[which]);
        /* the fd itself is closed when the handle's close callback runs */
        uv_close((uv_handle_t *) &j->polls[which], on_handle_closed);
}

static void maybe_report(Jail *j);

/* Append output, keeping at most the cap; more than the cap kills the jail.
 * Streamed output goes to output_fn instead, one chunk per loop turn
 * (the poll is level-triggered: the rest comes on the next turns), or
 * all of it once the writers are gone (last). */
static void output_read(Jail *j, int which, bool last) {
        JailOutput *o = which == PL_OUT ? &j->result.out : &j->result.err;
        char buf[READ_CHUNK];
        for (int rounds = 0; rounds < 64; rounds++) {
                ssize_t n = read(j->fds[which], buf, sizeof buf);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return;
                if (n <= 0)
                        break;
                if (j->output_fn) {
                        j->output_fn(which == PL_OUT ? 1 : 2, buf, (size_t) n, j->output_userdata);
                        if (!last)
                                return;
                        continue; /* the writers are gone: a pipe's worth is left at most */
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
                        break;
                }
                if (rounds == 63)
                        return;
        }
        poll_stop(j, which); /* EOF, an error, or past the cap */
        maybe_report(j);
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
        poll_stop(j, PL_IN);
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

/* The timerfd fires at deadline_ns (CLOCK_MONOTONIC); 0 disarms it. */
static int arm_timer(int fd, uint64_t deadline_ns) {
        struct itimerspec its = { .it_value = { (time_t) (deadline_ns / 1000000000ULL),
                                                (long) (deadline_ns % 1000000000ULL) } };
        return timerfd_settime(fd, TFD_TIMER_ABSTIME, &its, NULL) < 0 ? negative_errno() : 0;
}

static void setup_failed(Jail *j, int err, const char *what) {
        if (!j->got_setup_error) {
                j->setup_error = (JailMsg) { .type = JAIL_MSG_SETUP_ERROR, .err = err };
                snprintf(j->setup_error.what, sizeof j->setup_error.what, "%s", what);
                j->got_setup_error = true;
        }
        jail_signal(j, KILL_SETUP);
}

static void on_message(Jail *j, const JailMsg *m) {
        switch (m->type) {
        case JAIL_MSG_READY:
                j->ready = true;
                if (!j->started && j->poll_open[PL_TIMER]) { /* the prepare deadline is met */
                        (void) arm_timer(j->fds[PL_TIMER], 0);
                        uv_poll_stop(&j->polls[PL_TIMER]);
                }
                if (j->event && !j->started)
                        j->event(j, JAIL_EVENT_READY, 0, j->event_userdata);
                break;
        case JAIL_MSG_USERNS: {
                if (!j->started || j->adopted) {
                        setup_failed(j, EPROTO, "user namespace before the request");
                        return;
                }
                int r = write_maps(j, j->host_uid, j->host_gid);
                JailMsg go = { .type = JAIL_MSG_GO };
                if (r < 0 || send(j->fds[PL_SOCK], &go, sizeof go, MSG_NOSIGNAL) != sizeof go)
                        setup_failed(j, r < 0 ? -r : errno, "write user namespace maps");
                break;
        }
        case JAIL_MSG_SETUP_ERROR:
                if (!j->got_setup_error) {
                        j->setup_error = *m;
                        j->got_setup_error = true;
                }
                break;
        case JAIL_MSG_EXIT:
                j->last_exit = *m;
                j->got_exit_msg = true;
                maybe_report(j);
                break;
        default:
                if (j->msg_fn)
                        j->msg_fn(j, m, j->msg_userdata);
                break;
        }
}

static void on_poll(uv_poll_t *h, int status, int events);

/* A zygote's child is in its cgroup and sends its own pidfd: from now on
 * it can be killed, and its exit is seen, as a jail's init is. */
static void on_hello(Jail *j, int fd) {
        int r = 0;
        /* a pidfd (of a live child, or of one already gone: ESRCH) */
        if (!j->adopted || j->pidfd >= 0 || fd < 0 ||
            (syscall(SYS_pidfd_send_signal, fd, 0, NULL, 0) < 0 && errno != ESRCH)) {
                safe_close(fd);
                setup_failed(j, EPROTO, "hello from the child");
                return;
        }
        j->pidfd = fd;
        if ((r = uv_poll_init(j->loop, &j->polls[PL_PIDFD], fd)) < 0 ||
            (j->polls[PL_PIDFD].data = j, j->poll_open[PL_PIDFD] = true, j->open_handles++,
             uv_poll_start(&j->polls[PL_PIDFD], UV_READABLE, on_poll)) < 0) {
                setup_failed(j, -r, "watch the child");
                return;
        }
        if (j->kill_reason != KILL_NONE)
                (void) syscall(SYS_pidfd_send_signal, j->pidfd, SIGKILL, NULL, 0);
}

/* A zygote's child's network namespace, once, before it is ready: kept
 * for a later child (jail_take_kept). */
static void on_netns(Jail *j, int fd) {
        if (!j->adopted || j->ready || j->netns >= 0 || fd < 0 || ioctl(fd, NS_GET_NSTYPE) != CLONE_NEWNET) {
                safe_close(fd);
                setup_failed(j, EPROTO, "network namespace from the child");
                return;
        }
        j->netns = fd;
}

static void init_gone(Jail *j);

static void sock_read(Jail *j) {
        for (;;) {
                JailMsg m;
                char cbuf[CMSG_SPACE(sizeof(int))];
                struct iovec iov = { &m, sizeof m };
                struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                                     .msg_controllen = sizeof cbuf };
                ssize_t n = recvmsg(j->fds[PL_SOCK], &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
                if (n < 0 && errno == EINTR)
                        continue;
                /* at most one fd fits (the kernel closes any more): a HELLO's pidfd */
                int fd = -1;
                struct cmsghdr *c = n > 0 ? CMSG_FIRSTHDR(&mh) : NULL;
                if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
                    c->cmsg_len == CMSG_LEN(sizeof(int)))
                        memcpy(&fd, CMSG_DATA(c), sizeof fd);
                if (n != sizeof m) {
                        safe_close(fd);
                        if (n == 0 || (n < 0 && errno != EAGAIN)) {
                                j->hung_up = true;
                                poll_stop(j, PL_SOCK);
                                if (j->adopted && j->pidfd < 0 && !j->exited)
                                        init_gone(j); /* it never came to life */
                        }
                        return;
                }
                m.what[sizeof m.what - 1] = 0;
                if (m.type == JAIL_MSG_HELLO)
                        on_hello(j, fd);
                else if (m.type == JAIL_MSG_NETNS)
                        on_netns(j, fd);
                else if (fd >= 0) {
                        safe_close(fd);
                        setup_failed(j, EPROTO, "unexpected fd from the jail");
                } else
                        on_message(j, &m);
                if (!j->poll_open[PL_SOCK])
                        return;
        }
}

/* init has exited: every process of the jail is gone (the kernel kills and
 * reaps the rest of a pid namespace before its init's exit is reported). */
static void on_init_exit(Jail *j) {
        siginfo_t si = { 0 };
        /* a zygote's child is the zygote's to reap; its pidfd turned
         * readable once it and its pid namespace were gone */
        if (!j->adopted && syscall(SYS_waitid, P_PIDFD, j->pidfd, &si, WEXITED, &j->ru) < 0)
                return; /* spurious wake-up */
        init_gone(j);
}

static void init_gone(Jail *j) {
        j->exited = true;
        if (!j->reported)
                j->result.wall_ms = (double) (now_ns() - j->t_start_ns) / 1e6;
        poll_stop(j, PL_PIDFD);
        poll_stop(j, PL_TIMER);
        poll_stop(j, PL_IN);
        poll_stop(j, PL_DONE);
        if (j->poll_open[PL_SOCK])
                sock_read(j);
        poll_stop(j, PL_SOCK);
        /* every writer is dead: what is left in the pipes is all there is */
        for (int w = PL_OUT; w <= PL_ERR; w++)
                if (j->poll_open[w])
                        output_read(j, w, true);
        for (int w = PL_OUT; w <= PL_ERR; w++)
                poll_stop(j, w);
        maybe_report(j);
}

/* A box process of a zygote writes its exit code (one byte) and closes its
 * end just before it exits: with stdout and stderr at EOF, that is the
 * result, without waiting for the kernel to take its copy of the
 * interpreter apart. The code is the box's to choose anyway; anything but
 * one byte is ignored (the result then waits for init's word). */
static void done_read(Jail *j) {
        uint8_t b[2];
        ssize_t n = read(j->fds[PL_DONE], b, sizeof b);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
                return;
        if (n == 1 && !j->got_done) {
                j->got_done = true;
                j->done_code = b[0];
        }
        poll_stop(j, PL_DONE);
        maybe_report(j);
}

static void on_poll(uv_poll_t *h, int status, int events) {
        Jail *j = h->data;
        int which = (int) (h - j->polls);
        (void) events;
        if (status < 0 && which != PL_PIDFD) {
                poll_stop(j, which);
                j->hung_up |= which == PL_SOCK;
                if (which == PL_SOCK && j->adopted && j->pidfd < 0 && !j->exited)
                        init_gone(j); /* a zygote's child that never came to life */
                else
                        maybe_report(j);
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
                output_read(j, which, false);
                break;
        case PL_IN:
                stdin_write(j);
                break;
        case PL_DONE:
                done_read(j);
                break;
        case PL_TIMER: {
                uint64_t ticks;
                if (read(j->fds[PL_TIMER], &ticks, sizeof ticks) != sizeof ticks)
                        break; /* re-armed since it fired */
                if (j->started) {
                        jail_signal(j, KILL_TIMEOUT);
                } else {
                        char what[64];
                        snprintf(what, sizeof what, "prepare the jail within %u ms", jail_prepare_ms);
                        setup_failed(j, ETIMEDOUT, what);
                }
                poll_stop(j, PL_TIMER);
                break;
        }
        }
}

static void classify_status(Jail *j, bool oom) {
        JailResult *r = &j->result;
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
        } else if (j->got_done) {
                r->status = JAIL_EXITED;
                r->exit_code = j->done_code;
        } else {
                r->status = JAIL_SETUP_ERROR;
                snprintf(r->error, sizeof r->error, "jail init ended early");
        }
        if (r->status == JAIL_TIMEOUT || r->status == JAIL_OUTPUT_LIMIT || r->status == JAIL_KILLED ||
            r->status == JAIL_OUT_OF_MEMORY)
                r->signal = SIGKILL;
}

/* Usage: init reports its children's with the box's status; when the jail
 * was killed, init's own rusage (waitid) holds what was reaped. The cgroup
 * counts every task, including those the kernel reaped itself while tearing
 * a killed jail's pid namespace down. */
static void classify(Jail *j) {
        JailResult *r = &j->result;
        classify_status(j, cgroup_oom_killed(&j->cg));
        long long cpu_ns = cgroup_cpu_usage_ns(&j->cg), peak = cgroup_memory_peak(&j->cg);
        if (cpu_ns >= 0 && j->cpu_base_ns > 0)
                cpu_ns = cpu_ns > j->cpu_base_ns ? cpu_ns - j->cpu_base_ns : 0;
        long long ru_us = (j->ru.ru_utime.tv_sec + j->ru.ru_stime.tv_sec) * 1000000LL +
                          j->ru.ru_utime.tv_usec + j->ru.ru_stime.tv_usec;
        if (j->got_exit_msg && j->last_exit.cpu_us > ru_us)
                ru_us = j->last_exit.cpu_us;
        r->cpu_ms = cpu_ns >= 0 ? (double) cpu_ns / 1e6 : (double) ru_us / 1e3;
        r->max_rss_kb = j->ru.ru_maxrss;
        if (j->got_exit_msg && j->last_exit.maxrss_kb > r->max_rss_kb)
                r->max_rss_kb = (long) j->last_exit.maxrss_kb;
        if ((j->kill_reason != KILL_NONE || !j->got_exit_msg) && peak / 1024 > r->max_rss_kb)
                r->max_rss_kb = (long) (peak / 1024);
}

/* The result is known once stdout and stderr reached EOF and either the box's
 * status came from init or from the box itself (PL_DONE) and nobody killed
 * the jail, or init is gone. */
static void maybe_report(Jail *j) {
        if (!j->started || j->reported || j->poll_open[PL_OUT] || j->poll_open[PL_ERR])
                return;
        if (!j->exited && !((j->got_exit_msg || j->got_done) && j->kill_reason == KILL_NONE))
                return;
        j->reported = true;
        if (!j->exited)
                j->result.wall_ms = (double) (now_ns() - j->t_start_ns) / 1e6;
        poll_stop(j, PL_TIMER);
        poll_stop(j, PL_IN);
        classify(j);
        if (j->done)
                j->done(j, &j->result, j->userdata); /* may ask for jail_free: deferred */
}

static void jail_release(Jail *j) {
        (void) cgroup_destroy(&j->cg); /* a kept one nobody took */
        safe_close(j->netns);
        jail_result_clear(&j->result);
        free(j);
}

/* Everything is closed and init is gone: remove the cgroup, say so. */
static void teardown(Jail *j) {
        for (int i = 0; i < _PL_MAX; i++)
                j->fds[i] = safe_close(j->fds[i]); /* ends that were never polled */
        j->pidfd = safe_close(j->pidfd);
        int r = j->kept ? 0 : cgroup_destroy(&j->cg);
        j->ended = true;
        if (j->free_requested) {
                if (j->event)
                        j->event(j, JAIL_EVENT_END, r, j->event_userdata);
                jail_release(j);
        } else if (j->event)
                j->event(j, JAIL_EVENT_END, r, j->event_userdata); /* may jail_free */
}

static void on_handle_closed(uv_handle_t *h) {
        Jail *j = h->data;
        int which = (int) ((uv_poll_t *) h - j->polls);
        if (which != PL_PIDFD)
                j->fds[which] = safe_close(j->fds[which]);
        if (--j->open_handles == 0 && j->exited)
                teardown(j);
}

Jail *jail_free(Jail *j) {
        if (!j)
                return NULL;
        if (j->ended) {
                jail_release(j);
                return NULL;
        }
        /* still alive or tearing down: finish on the loop, then release;
         * a jail whose result is not in yet is killed, and done never fires */
        j->free_requested = true;
        j->done = NULL;
        if (!j->reported)
                jail_signal(j, KILL_REQUEST);
        return NULL;
}

/* ----- prepare ----- */

static int make_pipe(int fds[2], bool parent_reads) {
        if (pipe2(fds, O_CLOEXEC) < 0)
                return negative_errno();
        int parent = parent_reads ? fds[0] : fds[1];
        return fcntl(parent, F_SETFL, O_NONBLOCK) < 0 ? negative_errno() : 0;
}

static int poll_init(Jail *j, int which, int fd) {
        int r = uv_poll_init(j->loop, &j->polls[which], fd);
        if (r < 0)
                return r;
        j->polls[which].data = j;
        j->poll_open[which] = true;
        j->open_handles++;
        return 0;
}

static int poll_start(Jail *j, int which, int events) {
        return uv_poll_start(&j->polls[which], events, on_poll);
}

/* Every handle is made while preparing (libuv checks and sets up each fd,
 * a few system calls apiece): a request only starts them. */
static int polls_init(Jail *j) {
        int r;
        for (int i = 0; i < _PL_MAX; i++)
                if (i != PL_DONE && (r = poll_init(j, i, i == PL_PIDFD ? j->pidfd : j->fds[i])) < 0)
                        return r;
        if ((r = poll_start(j, PL_PIDFD, UV_READABLE)) < 0)
                return r;
        return poll_start(j, PL_SOCK, UV_READABLE);
}

static int spawn_child(Jail *j, bool background) {
        int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 }, sp[2] = { -1, -1 };
        int r;
        if ((r = make_pipe(in, false)) < 0 || (r = make_pipe(out, true)) < 0 || (r = make_pipe(err, true)) < 0)
                goto out;
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0) {
                r = negative_errno();
                goto out;
        }
        JailChildArgs a = {
                .sock = sp[1], .stdio = { in[0], out[1], err[1] },
                .topdirs = host.topdirs, .n_topdirs = ELEMENTSOF(host.topdirs),
                .ld_cache = host.ld_cache, .ld_cache_len = host.ld_cache_len,
                .alts = host.alts, .n_alts = host.n_alts,
                .filter = &host.filter, .no_caps = host.no_caps,
                .zygote_caps = host.zygote_caps, .cap_last = host.cap_last,
                .background = background, .binds = host.binds, .n_binds = host.n_binds,
        };
        int pidfd = -1;
        /* A fork-like clone into a new pid namespace. The child is still
         * host root: it makes its other namespaces and its root filesystem,
         * waits for its request, then gives every privilege up before the
         * box runs (jail_child.c). */
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

static Jail *jail_new(uv_loop_t *loop) {
        Jail *j = calloc(1, sizeof *j);
        if (!j)
                return NULL;
        *j = (Jail) { .loop = loop, .pid = -1, .pidfd = -1, .netns = -1 };
        for (int i = 0; i < _PL_MAX; i++)
                j->fds[i] = -1;
        cgroup_init(&j->cg);
        return j;
}

/* Undo a jail whose child never got going: kill and reap it, remove all. */
static void jail_abort(Jail *j) {
        if (j->pidfd >= 0) {
                (void) syscall(SYS_pidfd_send_signal, j->pidfd, SIGKILL, NULL, 0);
                (void) syscall(SYS_waitid, P_PIDFD, j->pidfd, NULL, WEXITED, NULL);
        }
        cgroup_destroy(&j->cg);
        safe_close(j->pidfd);
        for (int i = 0; i < _PL_MAX; i++)
                safe_close(j->fds[i]);
        free(j);
}

unsigned jail_prepare_ms = 20000;

static int prepare_with(uv_loop_t *loop, const char *cgroup_parent, const CgroupLimits *l, bool background,
                        Jail **ret) {
        int r = host_init();
        if (r < 0)
                return r;
        host_sweep(cgroup_parent);
        Jail *j = jail_new(loop);
        if (!j)
                return -ENOMEM;
        char name[64];
        snprintf(name, sizeof name, "jail-%d-%lu", (int) getpid(), ++jail_counter);
        if ((r = spawn_child(j, background)) < 0) {
                jail_abort(j);
                return r;
        }
        /* while the child builds its namespaces and root: its cgroups */
        if ((r = cgroup_create(&host.cg, cgroup_parent, name, l, true, &j->cg)) < 0 || (r = send_cgroup(j)) < 0) {
                jail_abort(j);
                return r;
        }
        j->background = background;
        cgroup_close_fds(&j->cg);
        if ((j->fds[PL_TIMER] = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK)) < 0) {
                r = negative_errno();
                jail_abort(j);
                return r;
        }
        /* a jail prepared ahead that never gets READY (its child stuck on
         * anything) is killed, and the pool makes another, rather than
         * wait for a request that would then wait out its deadline */
        if ((r = polls_init(j)) < 0 ||
            (background && ((r = arm_timer(j->fds[PL_TIMER], now_ns() + jail_prepare_ms * 1000000ULL)) < 0 ||
                            (r = poll_start(j, PL_TIMER, UV_READABLE)) < 0))) {
                /* a started handle will still deliver the exit */
                jail_signal(j, KILL_SETUP);
                j->free_requested = true;
                return r;
        }
        *ret = j;
        return 0;
}

int jail_prepare(uv_loop_t *loop, const char *cgroup_parent, Jail **ret) {
        if (!cgroup_parent || !*cgroup_parent || strstr(cgroup_parent, "..") || cgroup_parent[0] == '/')
                return -EINVAL;
        return prepare_with(loop, cgroup_parent, &idle_limits, true, ret);
}

/* ----- start ----- */

/* Send one message with n fds attached (SCM_RIGHTS). */
#define SEND_FDS_MAX (5 + _CG_MAX)   /* a FORK's: zchild_send_fork */

static int send_with_fds(int sock, const void *msg, size_t len, const int *fds, size_t n, int flags) {
        char cbuf[CMSG_SPACE(SEND_FDS_MAX * sizeof(int))] = { 0 };
        struct iovec iov = { (void *) msg, len };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                             .msg_controllen = CMSG_SPACE(n * sizeof(int)) };
        if (n == 0 || n > SEND_FDS_MAX)
                return -EINVAL;
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(n * sizeof(int));
        memcpy(CMSG_DATA(c), fds, n * sizeof(int));
        return sendmsg(sock, &mh, MSG_NOSIGNAL | flags) == (ssize_t) len ? 0 : negative_errno();
}

static int send_start(Jail *j, const JailStartParts *p) {
        int fds[5];
        size_t n = jail_request_fds(p, fds);
        return send_with_fds(j->fds[PL_SOCK], &p->msg, sizeof p->msg, fds, n, 0);
}

/* How a request is run: a box (the limits of its config) or a zygote. */
typedef struct StartOpts {
        int zygote;             /* JAIL_ZYGOTE_* */
        CgroupLimits cg;
        uint64_t timeout_ns;    /* 0: no deadline (a zygote) */
        uint64_t output_cap;
} StartOpts;

static StartOpts box_opts(const JailConfig *c) {
        /* one more pid than asked for: the jail's init */
        return (StartOpts) { .cg = { c->limits.memory_bytes, c->limits.pids + 1, c->limits.cpu_millis },
                             .timeout_ns = c->limits.timeout_ns, .output_cap = c->limits.output_bytes };
}

/* The device cgroup: the base devices and c's, nothing else. */
static int jail_cgroup_devices(Cgroup *cg, const JailConfig *c) {
        CgroupDevice d[JAIL_DEVICES_MAX];
        size_t n = c->n_devices < JAIL_DEVICES_MAX ? c->n_devices : JAIL_DEVICES_MAX;
        for (size_t i = 0; i < n; i++)
                d[i] = (CgroupDevice) { c->devices[i].type, c->devices[i].major, c->devices[i].minor };
        return cgroup_devices_set(cg, d, n);
}

/* From here on the jail is committed to this request: every failure is a
 * setup error in the result, never a return value. */
static int commit_steps(Jail *j, const JailConfig *c, const StartOpts *o, const JailStartParts *p,
                        const char **what) {
        int r = 0;
        /* the request's limits, before the box can exist: it is forked only
         * after START, which is sent below */
        *what = "set the cgroup limits";
        if ((r = cgroup_set_limits(&j->cg, &o->cg)) < 0) /* writes only what changed */
                return r;
        *what = "allow the devices";
        if (c->n_devices > 0 && (r = jail_cgroup_devices(&j->cg, c)) < 0)
                return r;
        /* a pool jail waits (or is still preparing) at idle priority: it
         * is on the request's critical path from now on */
        struct sched_param sp = { 0 };
        *what = "scheduling policy";
        if (j->background && sched_setscheduler(j->pid, SCHED_OTHER, &sp) < 0 && errno != ESRCH)
                return negative_errno();
        *what = "arm the deadline";   /* it replaces the prepare deadline; none (0) for a zygote */
        if ((r = arm_timer(j->fds[PL_TIMER], o->timeout_ns ? j->t_start_ns + o->timeout_ns : 0)) < 0)
                return r;
        *what = "send the request";
        if ((r = send_start(j, p)) < 0)
                return r;
        *what = "watch the jail";
        if ((r = poll_start(j, PL_OUT, UV_READABLE)) < 0 || (r = poll_start(j, PL_ERR, UV_READABLE)) < 0 ||
            (r = poll_start(j, PL_TIMER, UV_READABLE)) < 0)
                return r;
        if (c->stdin_len == 0)
                poll_stop(j, PL_IN); /* closes the box's stdin: EOF at once */
        else if ((r = poll_start(j, PL_IN, UV_WRITABLE)) < 0)
                return r;
        return 0;
}

/* From here on the jail is committed to this request: every failure is a
 * setup error in the result, never a return value. */
static void commit(Jail *j, const JailConfig *c, const StartOpts *o, const JailStartParts *p) {
        const char *what;
        int r = commit_steps(j, c, o, p, &what);
        if (r < 0)
                setup_failed(j, -r, what);
}

static int start_checked(Jail *j, const JailConfig *c, const StartOpts *o, int path_fd, const struct stat *st,
                         jail_done_fn done, void *userdata, uint64_t t_start_ns) {
        if (j->started || j->exited || j->kill_reason != KILL_NONE || j->adopted)
                return -ESRCH;
        JailStartParts p;
        int r = jail_request_build(c, path_fd, S_ISDIR(st->st_mode), o->zygote, &p);
        if (r < 0)
                return r;
        j->started = true;
        j->done = done;
        j->userdata = userdata;
        j->t_start_ns = t_start_ns;
        j->output_cap = o->output_cap;
        j->output_fn = o->zygote ? NULL : c->output_fn;
        j->output_userdata = c->output_userdata;
        j->host_uid = c->host_uid;
        j->host_gid = c->host_gid;
        j->stdin_buf = uv_buf_init((char *) c->stdin_data, (unsigned) c->stdin_len);
        commit(j, c, o, &p);
        jail_request_clear(&p);
        return 0;
}

/* Check the config and the code (the fd the caller gave, or one opened
 * here), then run the request-dependent steps. */
int jail_start(Jail *j, const JailConfig *c, jail_done_fn done, void *userdata, char *why, size_t why_len) {
        char buf[256];
        _cleanup_close_ int opened = -1;
        struct stat st;
        if (!why)
                why = buf, why_len = sizeof buf;
        int r = jail_config_check_rest(c, why, why_len);
        if (r >= 0)
                r = c->code_fd >= 0 ? jail_code_check(c, c->code_fd, why, why_len, &st)
                                    : jail_code_open(c, why, why_len, &opened, &st);
        if (r < 0)
                return r;
        StartOpts o = box_opts(c);
        return start_checked(j, c, &o, c->code_fd >= 0 ? c->code_fd : opened, &st, done, userdata, now_ns());
}

/* One-shot: check, then prepare with the request's limits (no second write)
 * and start at once; the child builds its root while the request is made. */
int jail_spawn(uv_loop_t *loop, const JailConfig *c, jail_done_fn done, void *userdata, Jail **ret) {
        char why[256];
        _cleanup_close_ int opened = -1;
        struct stat st;
        uint64_t t0 = now_ns();
        int r = jail_config_check_rest(c, why, sizeof why);
        if (r >= 0)
                r = c->code_fd >= 0 ? jail_code_check(c, c->code_fd, why, sizeof why, &st)
                                    : jail_code_open(c, why, sizeof why, &opened, &st);
        if (r < 0)
                return r;
        StartOpts o = box_opts(c);
        Jail *j;
        if ((r = prepare_with(loop, c->cgroup_parent, &o.cg, false, &j)) < 0)
                return r;
        if ((r = start_checked(j, c, &o, c->code_fd >= 0 ? c->code_fd : opened, &st, done, userdata, t0)) < 0) {
                jail_free(j); /* killed; the loop tears it down */
                return r;
        }
        *ret = j;
        return 0;
}

/* ----- zygotes (zygote.c): the zygote's jail and its children ----- */

/* Is the jail's init gone or going (even if the loop has not seen it yet)?
 * Its control socket hangs up as its files are closed, before it is a
 * zombie. */
bool jail_has_exited(Jail *j) {
        siginfo_t si = { 0 };
        if (j->exited || j->hung_up)
                return true;
        if (j->fds[PL_SOCK] >= 0) {
                struct pollfd p = { .fd = j->fds[PL_SOCK], .events = POLLIN };
                if (poll(&p, 1, 0) == 1 && (p.revents & POLLHUP))
                        return true;
        }
        if (j->pidfd < 0 || j->adopted)
                return false;
        return syscall(SYS_waitid, P_PIDFD, j->pidfd, &si, WEXITED | WNOHANG | WNOWAIT, NULL) == 0 && si.si_pid != 0;
}

#define ZYGOTE_OUTPUT_CAP (64U << 10)  /* what a zygote may say on stdout/stderr */

/* A zygote's config and its code (c->code_fd, else opened now into
 * *opened), checked as jail_spawn checks them. */
static int zygote_config_check(const JailConfig *c, char *why, size_t why_len, int *opened, struct stat *st) {
        int r = jail_config_check_rest(c, why, why_len);
        if (r < 0)
                return r;
        /* a zygote and its children share one mount namespace's binds: a
         * request's files never go to one */
        if (c->input_dir || c->output_dir) {
                snprintf(why, why_len, "a zygote takes no input or output folder (a session runs in a jail of its own)");
                return -EINVAL;
        }
        return c->code_fd >= 0 ? jail_code_check(c, c->code_fd, why, why_len, st)
                               : jail_code_open(c, why, why_len, opened, st);
}

int jail_zygote_spawn(uv_loop_t *loop, const JailConfig *c, const CgroupLimits *cg, int kind, jail_done_fn done,
                      void *userdata, jail_msg_fn msg_fn, void *msg_userdata, char *why, size_t why_len,
                      Jail **ret) {
        _cleanup_close_ int opened = -1;
        struct stat st;
        int r = zygote_config_check(c, why, why_len, &opened, &st);
        if (r < 0)
                return r;
        StartOpts o = { .zygote = kind, .cg = *cg, .timeout_ns = 0, .output_cap = ZYGOTE_OUTPUT_CAP };
        Jail *j;
        if ((r = prepare_with(loop, c->cgroup_parent, cg, false, &j)) < 0)
                return r;
        j->msg_fn = msg_fn;
        j->msg_userdata = msg_userdata;
        if ((r = start_checked(j, c, &o, c->code_fd >= 0 ? c->code_fd : opened, &st, done, userdata, now_ns())) < 0) {
                jail_free(j);
                return r;
        }
        *ret = j;
        return 0;
}

int jail_zygote_adopt(Jail *z, const JailConfig *c, char *why, size_t why_len) {
        _cleanup_close_ int opened = -1, adopt = -1;
        struct stat st;
        int r = zygote_config_check(c, why, why_len, &opened, &st);
        if (r < 0)
                return r;
        if (c->n_devices > 0) {
                snprintf(why, why_len, "a template zygote takes no devices");
                return -EOPNOTSUPP;
        }
        bool is_dir = S_ISDIR(st.st_mode);
        if ((r = jail_adopt_build(c, is_dir, &adopt)) < 0) {
                snprintf(why, why_len, "the revision's ADOPT: %s", strerror(-r));
                return r;
        }
        /* the template is alive (its socket is open) and pid is still it:
         * we hold its pidfd, so the number cannot have gone to another */
        if (z->exited || z->fds[PL_SOCK] < 0 || jail_has_exited(z)) {
                snprintf(why, why_len, "the template is gone");
                return -ENOTCONN;
        }
        if ((r = jail_adopt_mount(z->pid, c, c->code_fd >= 0 ? c->code_fd : opened, is_dir, why, why_len)) < 0)
                return r;
        JailMsg m = { .type = JAIL_MSG_ADOPT };
        if ((r = send_with_fds(z->fds[PL_SOCK], &m, sizeof m, &adopt, 1, MSG_DONTWAIT)) < 0)
                snprintf(why, why_len, "send ADOPT: %s", strerror(-r));
        return r;
}

/* The child's end of everything: its control socket, the box's stdio,
 * and the procs files of its cgroup, opened by us (root): the child
 * writes "0" to them to join it, first thing. */
static int zchild_send_fork(Jail *z, Jail *j, int sp, int in, int out, int err, int done, int netns) {
        int fds[6 + _CG_MAX] = { sp, in, out, err, done };
        size_t n = 5;
        for (int i = 0; i < j->cg.n; i++)
                fds[n++] = j->cg.procs_fd[i];
        if (netns >= 0)
                fds[n++] = netns;
        JailMsg m = { .type = JAIL_MSG_FORK, .err = (int32_t) n, .wstatus = netns >= 0 };
        if (z->exited || z->fds[PL_SOCK] < 0)
                return -ENOTCONN;
        /* never blocks the loop: a zygote that does not read gets no child */
        return send_with_fds(z->fds[PL_SOCK], &m, sizeof m, fds, n, MSG_DONTWAIT);
}

static int zchild_polls(Jail *j) {
        int r;
        for (int i = 0; i < _PL_MAX; i++)
                if (i != PL_PIDFD && (r = poll_init(j, i, j->fds[i])) < 0)
                        return r;
        return poll_start(j, PL_SOCK, UV_READABLE);
}

void jail_take_kept(Jail *j, JailKept *ret) {
        cgroup_init(&ret->cg);
        ret->netns = -1;
        if (!j->ended || !j->kept)
                return;
        ret->cg = j->cg;
        cgroup_init(&j->cg);
        ret->netns = j->netns;
        j->netns = -1;
}

int jail_zchild_new(Jail *zygote, const JailConfig *c, JailKept *reuse, Jail **ret) {
        int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 }, done[2] = { -1, -1 }, sp[2] = { -1, -1 };
        int r = host_init();
        if (r < 0)
                return r;
        Jail *j = jail_new(zygote->loop);
        if (!j)
                return -ENOMEM;
        j->adopted = true;
        char name[64];
        snprintf(name, sizeof name, "jail-%d-%lu", (int) getpid(), ++jail_counter);
        StartOpts o = box_opts(c);
        /* v1: the child stays in its zygote's devices cgroup, made for the
         * zygote's devices; v2 has no such inheritance between siblings:
         * the child's own cgroup gets the same filter */
        bool v2 = host.cg.version == 2;
        j->kept = reuse != NULL;
        if (reuse && reuse->cg.n > 0) {
                /* one of its zygote's earlier children's (cgroup_recycle):
                 * the same revision's, so the same devices */
                j->cg = reuse->cg;
                cgroup_init(&reuse->cg);
                r = cgroup_set_limits(&j->cg, &o.cg);
        } else if ((r = cgroup_create(&host.cg, c->cgroup_parent, name, &o.cg, v2, &j->cg)) >= 0 && v2 &&
                   c->n_devices > 0)
                r = jail_cgroup_devices(&j->cg, c);
        if (r < 0 ||
            (r = make_pipe(in, false)) < 0 || (r = make_pipe(out, true)) < 0 || (r = make_pipe(err, true)) < 0 ||
            (r = make_pipe(done, true)) < 0)
                goto fail;
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0 ||
            (j->fds[PL_TIMER] = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK)) < 0) {
                r = negative_errno();
                goto fail;
        }
        if ((r = zchild_send_fork(zygote, j, sp[1], in[0], out[1], err[1], done[1],
                                  reuse ? reuse->netns : -1)) < 0)
                goto fail;
        j->fds[PL_IN] = TAKE_FD(in[1]);
        j->fds[PL_OUT] = TAKE_FD(out[0]);
        j->fds[PL_ERR] = TAKE_FD(err[0]);
        j->fds[PL_DONE] = TAKE_FD(done[0]);
        j->fds[PL_SOCK] = TAKE_FD(sp[0]);
        cgroup_close_fds(&j->cg);
        r = zchild_polls(j);
        if (r < 0) {
                /* the socket's handle (made first) still sees the end */
                jail_signal(j, KILL_SETUP);
                j->free_requested = true;
                goto out;
        }
        *ret = j;
        goto out;
fail:
        jail_abort(j);
out:
        safe_close(in[0]), safe_close(in[1]), safe_close(out[0]), safe_close(out[1]);
        safe_close(err[0]), safe_close(err[1]), safe_close(done[0]), safe_close(done[1]);
        safe_close(sp[0]), safe_close(sp[1]);
        return r;
}

/* A zygote's child runs its request: GO (with go_len bytes of go_data
 * after it in the same packet), the deadline, the output. The child was
 * set up while it waited; its CPU time so far is not the box's. */
int jail_zchild_go(Jail *j, const JailConfig *c, const void *stdin_data, size_t stdin_len, const void *go_data,
                   size_t go_len, jail_done_fn done, void *userdata) {
        if (!j->adopted || j->started || j->exited || j->kill_reason != KILL_NONE)
                return -ESRCH;
        if (go_len > INT32_MAX)
                return -E2BIG;
        j->started = true;
        j->done = done;
        j->userdata = userdata;
        j->t_start_ns = now_ns();
        j->output_cap = c->limits.output_bytes;
        j->stdin_buf = uv_buf_init((char *) stdin_data, (unsigned) stdin_len);
        j->cpu_base_ns = cgroup_cpu_usage_ns(&j->cg);
        /* Everything is in place before GO wakes the box: the deadline,
         * the watches, and the body in its pipe (it usually fits), so that
         * the box finds its stdin there and this loop goes back to waiting
         * at once instead of competing with it for the CPU. */
        const char *what = "arm the deadline";
        int r = arm_timer(j->fds[PL_TIMER], j->t_start_ns + c->limits.timeout_ns);
        if (r >= 0) {
                what = "watch the jail";
                if ((r = poll_start(j, PL_OUT, UV_READABLE)) >= 0 && (r = poll_start(j, PL_ERR, UV_READABLE)) >= 0 &&
                    (r = poll_start(j, PL_DONE, UV_READABLE)) >= 0)
                        r = poll_start(j, PL_TIMER, UV_READABLE);
        }
        if (r >= 0)
                stdin_write(j);
        if (r >= 0 && j->poll_open[PL_IN])
                r = poll_start(j, PL_IN, UV_WRITABLE);
        if (r >= 0) {
                JailMsg go = { .type = JAIL_MSG_GO, .err = (int32_t) go_len };
                struct iovec iov[2] = { { &go, sizeof go }, { (void *) go_data, go_len } };
                struct msghdr mh = { .msg_iov = iov, .msg_iovlen = go_len ? 2 : 1 };
                what = "send the request";
                r = sendmsg(j->fds[PL_SOCK], &mh, MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t) (sizeof go + go_len)
                            ? 0 : negative_errno();
        }
        if (r < 0)
                setup_failed(j, -r, what);
        return 0;
}

void jail_result_clear(JailResult *r) {
        free(r->out.data);
        free(r->err.data);
        memset(r, 0, sizeof *r);
}

typedef struct RunState {
        JailResult *result;
        Jail *jail;
        uv_signal_t sigs[3];
        bool have_result;
} RunState;

static void run_done(Jail *j, JailResult *r, void *userdata) {
        RunState *st = userdata;
        (void) j;
        *st->result = *r;
        memset(r, 0, sizeof *r); /* buffers now belong to the caller */
        st->have_result = true;
}

/* The jail is gone: report a cgroup that could not be removed, and stop
 * listening for signals so that the loop can end. */
static void run_event(Jail *j, JailEvent ev, int error, void *userdata) {
        RunState *st = userdata;
        (void) j;
        if (ev != JAIL_EVENT_END)
                return;
        if (error < 0 && st->have_result && !st->result->error[0] && st->result->status != JAIL_SETUP_ERROR)
                snprintf(st->result->error, sizeof st->result->error, "could not remove the jail's cgroup");
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
        int r = jail_stdio_fill(); /* before the loop's own fds exist */
        if (r < 0 || (r = uv_loop_init(&loop)) < 0)
                return r;
        RunState st = { .result = ret };
        *ret = (JailResult) { 0 };
        r = jail_spawn(&loop, c, run_done, &st, &st.jail);
        if (r >= 0) {
                jail_set_events(st.jail, run_event, &st);
                static const int signums[] = { SIGINT, SIGTERM, SIGHUP };
                for (size_t i = 0; i < ELEMENTSOF(signums); i++) {
                        uv_signal_init(&loop, &st.sigs[i]);
                        st.sigs[i].data = &st;
                        uv_signal_start(&st.sigs[i], run_signal, signums[i]);
                }
        }
        uv_run(&loop, UV_RUN_DEFAULT); /* also finishes a jail that failed to start */
        if (r >= 0)
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
