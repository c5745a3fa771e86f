/* runtime/zygote_child.c: a zygote's loop and the making of each child, on
 * the jail's side (see zygote_child.h and docs/jail.md, "Zygotes"). The
 * zygote is uid 1000 in the jail's user namespace and holds CAP_SYS_ADMIN
 * and CAP_SETPCAP there (over namespaces that namespace owns, nothing of
 * the host's); each child spends them on its own namespaces and drops
 * them for good before the box process exists. System calls only: this
 * file is also the python3 zygote's shared object. */
#define _GNU_SOURCE
#include "zygote_child.h"
#include "jail_child.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/netlink.h>
#include <linux/seccomp.h>
#include <linux/securebits.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

static struct {
        int ctl;
        ZygoteParams p;
        struct sock_fprog prog;
        int fds[ZYGOTE_FORK_FDS_MAX];   /* the FORK being served, without its netns */
        int n_fds;
        int netns;                      /* the FORK's network namespace to reuse, or -1 */
        bool exec_mode;                 /* in fnbox-runtime: the box process execs */
        int box_sock;
        int done_fd;                    /* the box process's end of its DONE pipe */
        int init_fd;                    /* python3: fnbox-zygote-init (ZYGOTE_FD_INIT), or -1 */
} zs = { .ctl = -1, .box_sock = -1, .done_fd = -1, .netns = -1, .init_fd = -1 };

/* A python3 zygote's child runs on this stack, in the zygote's memory,
 * while the zygote waits (CLONE_VM | CLONE_VFORK: zygote_child_fork). The
 * box process, forked from it, goes back to the zygote's own stack
 * through box_return (a copy of the zygote's frames, which are intact: the
 * zygote is held in clone() until its child has exec'd). */
static char child_stack[128 << 10] __attribute__((aligned(64)));
static void *box_return[5];

/* The GO of the box process's request and its environment. Written only
 * in a box process (after its fork): the zygote's copies stay empty. The
 * python3 driver reads the environment through ctypes (in_dll). */
static JailMsg go;
EXPORT char zygote_go_env[ZYGOTE_GO_ENV_BYTES];
EXPORT size_t zygote_go_env_len;

enum { F_SOCK, F_IN, F_OUT, F_ERR, F_DONE, F_PROCS };

static void send_msg(int sock, int type, int err, int wstatus, const char *what) {
        JailMsg m = { .type = type, .err = err, .wstatus = wstatus };
        if (what)
                strncpy(m.what, what, sizeof m.what - 1);
        (void) send(sock, &m, sizeof m, MSG_NOSIGNAL);
}

_Noreturn static void fail(int sock, const char *what) {
        send_msg(sock, JAIL_MSG_SETUP_ERROR, errno, 0, what);
        _exit(126);
}

#define CHECK(sock, expr, what)           \
        do {                              \
                if ((expr) < 0)           \
                        fail(sock, what); \
        } while (0)

static int cmp_int(const void *a, const void *b) { return *(const int *) a - *(const int *) b; }

/* Close every fd but the n in keep (which is sorted in place). */
static int close_all_but(int *keep, int n) {
        qsort(keep, (size_t) n, sizeof *keep, cmp_int);
        unsigned from = 0;
        for (int i = 0; i < n; i++) {
                if ((unsigned) keep[i] > from && syscall(SYS_close_range, from, (unsigned) keep[i] - 1, 0) < 0)
                        return -1;
                from = (unsigned) keep[i] + 1;
        }
        return (int) syscall(SYS_close_range, from, ~0U, 0);
}

static int send_fd(int sock, int type, int fd) {
        JailMsg m = { .type = type };
        char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
        struct iovec iov = { &m, sizeof m };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof fd);
        return sendmsg(sock, &mh, MSG_NOSIGNAL) == (ssize_t) sizeof m ? 0 : -1;
}

/* ----- the zygote ----- */

static int init_common(int ctl) {
        zs.ctl = ctl;
        /* children are reaped by the kernel: each reports to the runtime itself */
        struct sigaction ign = { .sa_handler = SIG_IGN };
        if (sigaction(SIGCHLD, &ign, NULL) < 0)
                return -errno;
        /* nothing of this process may be read through /proc, should anything
         * ever see it; and it dies with the runtime */
        if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0 || prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
                return -errno;
        send_msg(ctl, JAIL_MSG_ZYGOTE_READY, 0, 0, NULL);
        return 0;
}

EXPORT int zygote_child_init_with(int ctl, const ZygoteParams *p, const struct sock_filter *filter) {
        zs.exec_mode = filter != NULL && p->exec_mode;
        if (p->magic != ZYGOTE_PARAMS_MAGIC || p->filter_len == 0 || p->filter_len > ZYGOTE_FILTER_MAX)
                return -EINVAL;
        zs.p = *p;
        zs.p.tmp_opts[sizeof zs.p.tmp_opts - 1] = 0;
        zs.prog.len = (unsigned short) p->filter_len;
        zs.prog.filter = (struct sock_filter *) filter;
        return init_common(ctl);
}

/* The python3 zygote: the parameters and the filter from a memfd, and
 * fnbox-zygote-init at ZYGOTE_FD_INIT where the runtime could give it
 * (else each child is a copy of the interpreter, as in exec mode). */
EXPORT int zygote_child_init(int ctl, int params_fd) {
        if (fcntl(ZYGOTE_FD_INIT, F_SETFD, FD_CLOEXEC) == 0)
                zs.init_fd = ZYGOTE_FD_INIT;
        ZygoteParams p;
        if (pread(params_fd, &p, sizeof p, 0) != (ssize_t) sizeof p)
                return -EINVAL;
        if (p.magic != ZYGOTE_PARAMS_MAGIC || p.filter_len == 0 || p.filter_len > ZYGOTE_FILTER_MAX)
                return -EINVAL;
        size_t len = p.filter_len * sizeof(struct sock_filter);
        struct sock_filter *f = malloc(len);
        if (!f)
                return -ENOMEM;
        if (pread(params_fd, f, len, sizeof p) != (ssize_t) len) {
                free(f);
                return -EINVAL;
        }
        close(params_fd);
        return zygote_child_init_with(ctl, &p, f); /* f lives as long as the zygote */
}

/* The next message from the runtime with its fds (at most max); the
 * runtime hanging up ends the zygote. Returns the fd count, or -1 for a
 * message that is not one whole JailMsg (its fds are closed). */
static int recv_ctl(JailMsg *m, int *fds, int max) {
        for (;;) {
                char cbuf[CMSG_SPACE(sizeof(int) * ZYGOTE_FORK_FDS_MAX)];
                struct iovec iov = { m, sizeof *m };
                struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                                     .msg_controllen = CMSG_SPACE(sizeof(int) * (size_t) max) };
                ssize_t n = recvmsg(zs.ctl, &mh, MSG_CMSG_CLOEXEC);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        _exit(0);
                struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
                int nfds = c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS
                                   ? (int) ((c->cmsg_len - CMSG_LEN(0)) / sizeof(int)) : 0;
                if (nfds > 0)
                        memcpy(fds, CMSG_DATA(c), (size_t) nfds * sizeof(int));
                if (n != sizeof *m || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
                        for (int i = 0; i < nfds; i++)
                                close(fds[i]);
                        return -1;
                }
                return nfds;
        }
}

/* The next FORK: its fds are kept for zygote_child_fork(). */
EXPORT int zygote_child_wait(void) {
        JailMsg m;
        int fds[ZYGOTE_FORK_FDS_MAX];
        int nfds = recv_ctl(&m, fds, ZYGOTE_FORK_FDS_MAX);
        int has_netns = m.wstatus == 1;
        if (nfds < ZYGOTE_FORK_FDS_MIN + has_netns || m.type != JAIL_MSG_FORK || m.err != nfds ||
            (m.wstatus != 0 && !has_netns))
                _exit(125); /* the runtime never sends this: stop rather than guess */
        memcpy(zs.fds, fds, sizeof fds);
        zs.n_fds = nfds - has_netns;
        zs.netns = has_netns ? fds[nfds - 1] : -1;
        return 0;
}

/* ----- a template's revision (ADOPT) ----- */

EXPORT char *zygote_adopt_strings;
EXPORT size_t zygote_adopt_len;
EXPORT unsigned zygote_adopt_argc, zygote_adopt_envc;

EXPORT int zygote_child_template(void) {
        return zs.p.template_ != 0;
}

static int adopt_read(int fd) {
        ZygoteAdopt a;
        if (pread(fd, &a, sizeof a, 0) != (ssize_t) sizeof a || a.magic != ZYGOTE_ADOPT_MAGIC ||
            a.strings_len == 0 || a.strings_len > ZYGOTE_ADOPT_MAX || a.n_argv == 0)
                return -EINVAL;
        char *buf = malloc(a.strings_len);
        if (!buf)
                return -ENOMEM;
        if (pread(fd, buf, a.strings_len, sizeof a) != (ssize_t) a.strings_len || buf[a.strings_len - 1] != 0) {
                free(buf);
                return -EINVAL;
        }
        size_t n = 0;
        for (size_t i = 0; i < a.strings_len; i++)
                n += buf[i] == 0;
        if (n != (size_t) a.n_argv + a.n_env) {
                free(buf);
                return -EINVAL;
        }
        memcpy(zs.p.tmp_opts, a.tmp_opts, sizeof zs.p.tmp_opts);
        zs.p.tmp_opts[sizeof zs.p.tmp_opts - 1] = 0;
        zs.p.rl_core = a.rl_core;
        zs.p.rl_fsize = a.rl_fsize;
        zs.p.rl_nofile = a.rl_nofile;
        zs.p.rl_stack = a.rl_stack;
        zs.p.template_ = 0;
        zygote_adopt_strings = buf;
        zygote_adopt_len = a.strings_len;
        zygote_adopt_argc = a.n_argv;
        zygote_adopt_envc = a.n_env;
        return 0;
}

EXPORT int zygote_child_adopt(void) {
        JailMsg m;
        int fds[ZYGOTE_FORK_FDS_MAX];
        if (!zs.p.template_)
                return -EALREADY;
        int nfds = recv_ctl(&m, fds, 1);
        if (nfds != 1 || m.type != JAIL_MSG_ADOPT)
                _exit(125);
        int r = adopt_read(fds[0]);
        close(fds[0]);
        return r;
}

/* ----- a child: from the clone to the box ----- */

/* fnbox-zygote-init's filter: what it calls, from the execveat that
 * starts it to its exit (runtime/zygote_init.c; fail() here on the way),
 * and nothing else, which kills it. The boxes' deny-list would serve too,
 * but it is 129 instructions, and every install of a filter costs its
 * check, its JIT and the kernel's per-syscall cache of its answers: this
 * one is a fifth of that, and allows far less. */
#ifdef ZYGOTE_INIT_FILTER
#if defined(__x86_64__)
#define INIT_ARCH AUDIT_ARCH_X86_64
#else
#define INIT_ARCH AUDIT_ARCH_AARCH64
#endif
#define INIT_ALLOW(nr) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)
static const struct sock_filter init_insns[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, INIT_ARCH, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        INIT_ALLOW(SYS_execveat), INIT_ALLOW(SYS_prctl), INIT_ALLOW(SYS_rt_sigaction),
        INIT_ALLOW(SYS_wait4), INIT_ALLOW(SYS_getrusage), INIT_ALLOW(SYS_sendto),
        INIT_ALLOW(SYS_exit_group), INIT_ALLOW(SYS_exit), INIT_ALLOW(SYS_restart_syscall),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
};
EXPORT const struct sock_fprog zygote_init_filter = {
        .len = sizeof init_insns / sizeof init_insns[0], .filter = (struct sock_filter *) init_insns
};
#endif

/* Every capability and privilege goes, as in a one-shot jail's init
 * (jail_child.c, drop_privileges), then the seccomp filter prog. */
static void child_drop(int sock, const struct sock_fprog *prog) {
        /* each drop is a new set of credentials (and an RCU free of the
         * old): only the zygote's two are left to drop */
        for (int c = 0; c <= zs.p.cap_last; c++)
                if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) != 0)
                        CHECK(sock, prctl(PR_CAPBSET_DROP, c, 0, 0, 0), "drop bounding set");
        CHECK(sock, prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "clear ambient caps");
        CHECK(sock, prctl(PR_SET_SECUREBITS, SECBIT_NOROOT | SECBIT_NOROOT_LOCKED |
                          SECBIT_NO_SETUID_FIXUP | SECBIT_NO_SETUID_FIXUP_LOCKED |
                          SECBIT_KEEP_CAPS_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE |
                          SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED, 0, 0, 0), "securebits");
        struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
        struct __user_cap_data_struct none[2] = { { 0 } };
        CHECK(sock, syscall(SYS_capset, &hdr, none), "clear capabilities");
        CHECK(sock, prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs");
        CHECK(sock, prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), "not dumpable");
        CHECK(sock, setrlimit(RLIMIT_CORE, &zs.p.rl_core), "rlimit core");
        CHECK(sock, setrlimit(RLIMIT_FSIZE, &zs.p.rl_fsize), "rlimit fsize");
        CHECK(sock, setrlimit(RLIMIT_NOFILE, &zs.p.rl_nofile), "rlimit nofile");
        CHECK(sock, setrlimit(RLIMIT_STACK, &zs.p.rl_stack), "rlimit stack");
        CHECK(sock, prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0), "pdeathsig");
        CHECK(sock, syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, prog), "seccomp");
}

/* No unix socket in the network namespace this process is in: the only
 * thing a box can leave in one (seccomp allows it no other socket family,
 * and it holds no capability to change the namespace itself). False when
 * the kernel cannot say (unix_diag). */
static bool netns_empty(void) {
        int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
        if (fd < 0)
                return false;
        struct {
                struct nlmsghdr h;
                struct unix_diag_req r;
        } q = { .h = { .nlmsg_len = sizeof q, .nlmsg_type = SOCK_DIAG_BY_FAMILY,
                       .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP, .nlmsg_seq = 1 },
                .r = { .sdiag_family = AF_UNIX, .udiag_states = ~0U } };
        union {
                struct nlmsghdr h;
                char b[4096];
        } a;
        bool empty = false;
        if (send(fd, &q, sizeof q, 0) == (ssize_t) sizeof q) {
                ssize_t n = recv(fd, &a, sizeof a, 0);
                empty = n >= (ssize_t) sizeof a.h && NLMSG_OK(&a.h, (size_t) n) && a.h.nlmsg_type == NLMSG_DONE;
        }
        close(fd);
        return empty;
}

/* The child's network namespace: an earlier child's that the runtime kept
 * (that child and everything it started are gone) if nothing of it is
 * left there, else a new one. Making and tearing down a namespace costs
 * the kernel a loopback device, sysctl tables and an RCU-deferred cleanup
 * per request; entering one costs a system call. Then the runtime gets it,
 * to hand it to a later child once this one is gone. */
static void child_net(int sock) {
        bool reused = zs.netns >= 0 && setns(zs.netns, CLONE_NEWNET) == 0 && netns_empty();
        if (zs.netns >= 0)
                close(zs.netns);
        zs.netns = -1;
        if (!reused)
                CHECK(sock, unshare(CLONE_NEWNET), "unshare network namespace");
        int net = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
        if (net < 0 || send_fd(sock, JAIL_MSG_NETNS, net) < 0)
                fail(sock, "send network namespace");
        close(net);
}

/* The child's own namespaces and filesystems: mount (a fresh /tmp, a /proc
 * of its own pid namespace), ipc (no SysV object outlives it or reaches a
 * sibling), net (no abstract socket name is shared with a sibling:
 * child_net), and a cgroup namespace rooted at the cgroup it has just
 * joined. */
static void child_namespaces(int sock) {
        child_net(sock);
        CHECK(sock, unshare(CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWCGROUP), "unshare namespaces");
        char opts[160];
        size_t n = strlen(zs.p.tmp_opts);
        memcpy(opts, zs.p.tmp_opts, n);
        memcpy(opts + n, ",mode=1777", sizeof ",mode=1777");
        CHECK(sock, mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, opts), "mount /tmp");
        CHECK(sock, mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "subset=pid,hidepid=invisible"),
              "mount /proc");
}

/* The request's environment as the runtime packed it: whole strings,
 * each NAME=VALUE with a name, within the bounds. */
static bool env_valid(const char *p, size_t len) {
        size_t n = 0;
        if (len > 0 && p[len - 1] != 0)
                return false;
        for (const char *end = p + len; p < end; p += strlen(p) + 1) {
                const char *eq = strchr(p, '=');
                if (++n > ZYGOTE_GO_ENV_MAX || !eq || eq == p)
                        return false;
        }
        return true;
}

/* Is the name of NAME=VALUE one the request's environment sets? */
static bool env_has_name(const char *a) {
        size_t klen = strcspn(a, "=") + 1;
        for (const char *p = zygote_go_env, *end = p + zygote_go_env_len; p < end; p += strlen(p) + 1)
                if (strncmp(p, a, klen) == 0)
                        return true;
        return false;
}

/* The box's environment: base without the names the request sets, then
 * the request's (pointers into zygote_go_env). A static array, no
 * allocation: an exec box is a bare clone, and a python3 box pays for
 * every page it writes (they are the zygote's until then). NULL when it
 * does not fit. */
static char *box_env[JAIL_SPEC_ENV + ZYGOTE_GO_ENV_MAX + 1];

static char **env_merge(char *const *base) {
        char **env = box_env;
        size_t n = 0;
        for (size_t i = 0; base && base[i]; i++) {
                if (env_has_name(base[i]))
                        continue;
                if (n == JAIL_SPEC_ENV)
                        return NULL;
                env[n++] = base[i];
        }
        for (char *p = zygote_go_env, *end = p + zygote_go_env_len; p < end; p += strlen(p) + 1)
                env[n++] = p;
        env[n] = NULL;
        return env;
}

/* The box process: its stdio, its control socket and its DONE pipe
 * (close-on-exec: an exec box and any process a box starts go without it),
 * nothing else. */
static void box_stdio(int sock) {
        int fds[3] = { zs.fds[F_IN], zs.fds[F_OUT], zs.fds[F_ERR] };
        for (int i = 0; i < 3; i++)
                if (dup2(fds[i], i) < 0)
                        _exit(126);
        int done = zs.fds[F_DONE];
        int keep[5] = { 0, 1, 2, sock, done };
        if (close_all_but(keep, 5) < 0 || fcntl(done, F_SETFD, FD_CLOEXEC) < 0)
                _exit(126);
        zs.box_sock = sock;
        zs.done_fd = done;
        /* the pages GO and its environment are written to, made now (a
         * first write costs a page fault) rather than on the request's path */
        memset(&go, 0, sizeof go);
        memset(zygote_go_env, 0, sizeof zygote_go_env);
        memset(box_env, 0, sizeof box_env);
        *(char **volatile *) &environ = environ;
}

/* The box process waits for its request's GO and takes the request's
 * environment that comes with it. */
EXPORT int zygote_child_go(void) {
        int sock = zs.box_sock;
        struct iovec iov[2] = { { &go, sizeof go }, { zygote_go_env, sizeof zygote_go_env } };
        struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
        ssize_t n;
        do /* MSG_TRUNC: the packet's real length, to refuse a longer one */
                n = recvmsg(sock, &mh, MSG_TRUNC);
        while (n < 0 && errno == EINTR);
        if (n < (ssize_t) sizeof go || go.type != JAIL_MSG_GO)
                _exit(126); /* the request was given up */
        size_t len = (size_t) n - sizeof go;
        if (len > sizeof zygote_go_env || go.err != (int32_t) len || !env_valid(zygote_go_env, len)) {
                errno = EBADMSG;
                fail(sock, "request environment");
        }
        zygote_go_env_len = len;
        /* a python3 box runs in this process: its C environment (getenv,
         * child processes) gets the request's now; the driver adds it to
         * os.environ */
        if (!zs.exec_mode && len > 0) {
                char **env = env_merge(environ);
                if (!env) {
                        errno = E2BIG;
                        fail(sock, "request environment");
                }
                environ = env;
        }
        /* The control socket stays with the init: the box cannot forge its
         * result. An exec box keeps it until its execve succeeds, to report
         * a failure (zygote_child_exec). */
        if (zs.exec_mode) {
                if (fcntl(sock, F_SETFD, FD_CLOEXEC) < 0)
                        _exit(126);
        } else {
                close(sock);
                zs.box_sock = -1;
        }
        /* its own /proc/self again; only its own pid namespace can see it */
        (void) prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
        return 0;
}

/* The box is done: its exit code goes to the runtime now, before the
 * exit itself (the kernel taking a copy of the interpreter apart is most
 * of a millisecond). The caller has flushed and closed its stdout and
 * stderr and exits with the same code right after. Once only. */
EXPORT int zygote_child_done(int code) {
        if (zs.done_fd < 0)
                return -EBADF;
        uint8_t b = (uint8_t) code;
        ssize_t n = write(zs.done_fd, &b, 1);
        close(zs.done_fd);
        zs.done_fd = -1;
        return n == 1 ? 0 : -EIO;
}

/* The child's init (pid 1 of its pid namespace): reap everything, report
 * the box's status and usage, exit; the kernel then kills the rest. */
_Noreturn static void child_init(int sock, pid_t box) {
        for (int i = F_IN; i <= F_DONE; i++)
                close(zs.fds[i]);
        struct sigaction dfl = { .sa_handler = SIG_DFL };
        for (int sig = 1; sig < NSIG; sig++)
                if (sig != SIGKILL && sig != SIGSTOP)
                        (void) sigaction(sig, &dfl, NULL);
        send_msg(sock, JAIL_MSG_READY, 0, 0, NULL);
        jail_init_reap(sock, box);
}

/* In the clone, pid 1 of a new pid namespace, still with the zygote's
 * capabilities in the jail's user namespace: nothing of the zygote's fds
 * (not its control socket, not the interpreter's files), only this
 * child's own, and its own session (a process group signal must not
 * reach the zygote). */
static void child_fds(int sock) {
        int keep[ZYGOTE_FORK_FDS_MAX + 2];
        memcpy(keep, zs.fds, sizeof zs.fds);
        int n_keep = zs.n_fds;
        if (zs.netns >= 0)
                keep[n_keep++] = zs.netns;
        if (zs.init_fd >= 0)
                keep[n_keep++] = zs.init_fd;
        if (close_all_but(keep, n_keep) < 0)
                _exit(126);
        CHECK(sock, setsid(), "setsid");
}

/* The jail of the box's process tree: the child's own cgroup (the
 * runtime opened it as root) joined before anything else happens in it,
 * HELLO with the pidfd of the pid namespace's init, the namespaces, then
 * every privilege dropped. */
static void child_jail(int sock, pid_t init) {
        for (int i = F_PROCS; i < zs.n_fds; i++) {
                CHECK(sock, write(zs.fds[i], "0", 1), "join cgroup");
                close(zs.fds[i]);
        }
        int pidfd = (int) syscall(SYS_pidfd_open, init, 0);
        if (pidfd < 0 || send_fd(sock, JAIL_MSG_HELLO, pidfd) < 0)
                fail(sock, "hello");
        close(pidfd);
        child_namespaces(sock);
        child_drop(sock, &zs.prog);
}

/* The child as a copy of the zygote (exec, sh and node, whose zygote is
 * fnbox-runtime; python3 where fnbox-zygote-init cannot be executed): it
 * makes the jail, forks the box and stays as its init. */
static int child_main(void) {
        int sock = zs.fds[F_SOCK];
        child_fds(sock);
        child_jail(sock, getpid());
        /* the box's SIGCHLD is the default one (the zygote ignores it) */
        struct sigaction dfl = { .sa_handler = SIG_DFL };
        CHECK(sock, sigaction(SIGCHLD, &dfl, NULL), "SIGCHLD");
        /* In fnbox-runtime the box process only execs: a bare clone, without
         * the atfork handlers of the runtime's libraries (libuv's would
         * close and remake fds it thinks are its own). python3 needs glibc's
         * fork, which keeps its idea of the thread up to date. */
        pid_t box = zs.exec_mode ? (pid_t) syscall(SYS_clone, SIGCHLD, NULL, NULL, NULL, 0) : fork();
        if (box < 0)
                fail(sock, "fork box");
        if (box == 0) {
                box_stdio(sock);
                return 0; /* the box process, before its request */
        }
        child_init(sock, box);
}

/* v in decimal into out (no snprintf: system calls only). */
static char *decimal(char out[12], unsigned v) {
        char *p = out + 11;
        *p = 0;
        do
                *--p = (char) ('0' + v % 10);
        while ((v /= 10) > 0);
        return memmove(out, p, (size_t) (out + 12 - p));
}

/* python3: the child shares the zygote's memory and runs on child_stack
 * while the zygote waits, so it does only what must come before the box
 * exists: its fds, a fork (glibc's, which keeps the thread's idea of
 * itself up to date: the one copy of the interpreter), and an exec of
 * fnbox-zygote-init with nothing but the socket, which frees the zygote.
 * It writes nothing of zs. The box process makes its jail itself (it is
 * a copy of the zygote, with the same capabilities the child has), in
 * parallel with the zygote's next child, and says READY. */
static int child_vm(void *arg) {
        (void) arg;
        int sock = zs.fds[F_SOCK];
        child_fds(sock);
        /* the init reaps the box: SIGCHLD is the default one (the zygote
         * ignores it, and an ignored signal stays ignored across exec) */
        struct sigaction dfl = { .sa_handler = SIG_DFL };
        CHECK(sock, sigaction(SIGCHLD, &dfl, NULL), "SIGCHLD");
        pid_t box = fork();
        if (box < 0)
                fail(sock, "fork box");
        if (box == 0) {
                child_jail(sock, 1);
                box_stdio(sock);
                send_msg(sock, JAIL_MSG_READY, 0, 0, NULL);
                __builtin_longjmp(box_return, 1); /* out of zygote_child_fork */
        }
        int keep[2] = { sock, zs.init_fd };
        if (close_all_but(keep, 2) < 0)
                _exit(126);
#ifdef ZYGOTE_INIT_FILTER
        child_drop(sock, &zygote_init_filter);
#else
        child_drop(sock, &zs.prog);
#endif
        char sock_s[12], box_s[12];
        char *argv[] = { "fnbox-zygote-init", decimal(sock_s, (unsigned) sock), decimal(box_s, (unsigned) box), NULL };
        char *envp[] = { NULL };
        syscall(SYS_execveat, zs.init_fd, "", argv, envp, AT_EMPTY_PATH);
        fail(sock, "exec fnbox-zygote-init");
}

EXPORT int zygote_child_fork(void) {
        if (zs.n_fds < ZYGOTE_FORK_FDS_MIN)
                return -EINVAL;
        /* what the zygote closes after: a child sharing its memory may
         * change zs */
        int fds[ZYGOTE_FORK_FDS_MAX + 1], n = zs.n_fds;
        memcpy(fds, zs.fds, sizeof zs.fds);
        if (zs.netns >= 0)
                fds[n++] = zs.netns;
        /* the child is pid 1 of a new pid namespace (owned by the jail's
         * user namespace), so it and all it starts can name neither the
         * zygote nor a sibling */
        long pid;
        int err;
        if (zs.init_fd >= 0) {
                if (__builtin_setjmp(box_return))
                        return 0; /* the box process, before its request */
                pid = clone(child_vm, child_stack + sizeof child_stack,
                            CLONE_VM | CLONE_VFORK | CLONE_NEWPID | SIGCHLD, NULL);
                err = errno;
        } else {
                pid = syscall(SYS_clone, CLONE_NEWPID | SIGCHLD, NULL, NULL, NULL, 0);
                err = errno;
                if (pid == 0)
                        return child_main();
        }
        for (int i = 0; i < n; i++)
                close(fds[i]); /* a failed clone: the runtime sees the child's socket close */
        zs.n_fds = 0;
        zs.netns = -1;
        return pid < 0 ? -err : (int) pid;
}

/* The box process of an exec, sh or node zygote: its program, with the
 * environment built for the revision and the request's own on top. */
_Noreturn void zygote_child_exec(const char *path, char *const argv[], char *const envp[]) {
        zygote_child_go();
        char **env = zygote_go_env_len > 0 ? env_merge(envp) : (char **) envp;
        if (!env) {
                send_msg(zs.box_sock, JAIL_MSG_SETUP_ERROR, E2BIG, 0, "environment");
                _exit(127);
        }
        execve(path, argv, env);
        send_msg(zs.box_sock, JAIL_MSG_SETUP_ERROR, errno, 0, path);
        _exit(127);
}
