/* runtime/jail_child.c: the jail's init, from clone() to the box's execve().
 * It starts as host root inside a fresh pid namespace, makes its mount, ipc,
 * uts and net namespaces, builds the request-independent root there and joins
 * its cgroup: a prepared jail, which then waits for its request. With the
 * request it mounts the code and /tmp, makes the root read-only, enters a new
 * user namespace whose only mapping is the box uid, drops every privilege,
 * loads the seccomp filter, and forks the box. It stays as the jail's pid 1
 * until the box exits; its exit kills the rest.
 *
 * It is a raw clone of the runtime, which has other threads (the reporter,
 * libuv's pool, template adoption): any lock one of them held at that moment
 * stays held here for good, malloc's arena locks among them. So nothing
 * here allocates or takes a lock: what it needs (the capability sets, the
 * filter, the ld.so cache) is made before the clone (jail.c). */
#define _GNU_SOURCE
#include "jail_child.h"

#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/seccomp.h>
#include <linux/securebits.h>
#include <unistd.h>

#include "lib/util.h"
#include "zygote_child.h"

#define NEWROOT "/tmp"   /* staging mount point; hidden from the host by our mount ns */

/* The request, as received: the START message, the code's detached mount,
 * and argv and envp pointing into the mapped spec. */
typedef struct JailRequest {
        JailStartMsg m;
        int code_fd;
        int run_fd;    /* the detached mount bound at /run/fnbox, or -1 */
        int input_fd;  /* the detached mount bound read-only at /input, or -1 */
        int output_fd; /* the detached mount bound read-write at /output, or -1 */
        const char *exec_path;
        char **argv, **envp;
} JailRequest;

static void send_msg(int sock, int type, int err, int wstatus, const char *what) {
        JailMsg m = { .type = type, .err = err, .wstatus = wstatus };
        if (what)
                strncpy(m.what, what, sizeof m.what - 1);
        (void) send(sock, &m, sizeof m, MSG_NOSIGNAL);
}

_Noreturn static void fail(const JailChildArgs *a, const char *what) {
        send_msg(a->sock, JAIL_MSG_SETUP_ERROR, errno, 0, what);
        _exit(126);
}

#define CHECK(a, expr, what)            \
        do {                            \
                if ((expr) < 0)         \
                        fail(a, what);  \
        } while (0)

static void write_small_file(const JailChildArgs *a, const char *path, const char *data, size_t len) {
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0)
                fail(a, path);
        if (write_all(fd, data, len) < 0)
                fail(a, path);
        close(fd);
}

static void bind_ro(const JailChildArgs *a, const char *src, const char *dst, unsigned long extra) {
        CHECK(a, mount(src, dst, NULL, MS_BIND, NULL), dst);
        CHECK(a, mount(NULL, dst, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | extra, NULL), dst);
}

/* /usr, the top-level links or binds, and a synthetic /etc. Relative paths:
 * the cwd is the new root. */
static void build_system(const JailChildArgs *a) {
        CHECK(a, mkdir("usr", 0755), "mkdir /usr");
        bind_ro(a, "/usr", "usr", 0);
        for (size_t i = 0; i < a->n_topdirs; i++) {
                const JailTopDir *t = &a->topdirs[i];
                if (!t->present)
                        continue;
                if (t->link[0]) {
                        CHECK(a, symlink(t->link, t->name), t->name);
                        continue;
                }
                char src[32] = "/";
                strncat(src, t->name, sizeof src - 2);
                CHECK(a, mkdir(t->name, 0755), t->name);
                bind_ro(a, src, t->name, 0);
        }
        for (size_t i = 0; i < a->n_binds; i++) {
                const char *src = a->binds[i];
                if (strncmp(src, "/usr/", 5) == 0)
                        continue; /* there already */
                char rel[JAIL_BIND_LEN];
                strncpy(rel, src + 1, sizeof rel - 1);
                rel[sizeof rel - 1] = 0;
                for (char *c = rel; *c; c++)
                        if (*c == '/') {
                                *c = 0;
                                if (mkdir(rel, 0755) < 0 && errno != EEXIST)
                                        fail(a, src);
                                *c = '/';
                        }
                if (mkdir(rel, 0755) < 0 && errno != EEXIST)
                        fail(a, src);
                bind_ro(a, src, rel, 0);
        }
        static const char passwd[] = "root:x:0:0:root:/:/usr/sbin/nologin\nbox:x:1000:1000:box:/tmp:/bin/sh\n";
        static const char group[] = "root:x:0:\nbox:x:1000:\n";
        static const char hosts[] = "127.0.0.1 localhost\n::1 localhost\n";
        static const char nss[] = "passwd: files\ngroup: files\nhosts: files\n";
        CHECK(a, mkdir("etc", 0755), "mkdir /etc");
        write_small_file(a, "etc/passwd", passwd, sizeof passwd - 1);
        write_small_file(a, "etc/group", group, sizeof group - 1);
        write_small_file(a, "etc/hosts", hosts, sizeof hosts - 1);
        write_small_file(a, "etc/nsswitch.conf", nss, sizeof nss - 1);
        write_small_file(a, "etc/hostname", "box\n", 4);
        if (a->ld_cache)
                write_small_file(a, "etc/ld.so.cache", a->ld_cache, a->ld_cache_len);
        if (a->n_alts > 0)
                CHECK(a, mkdir("etc/alternatives", 0755), "mkdir /etc/alternatives");
        for (size_t i = 0; i < a->n_alts; i++) {
                char link[160];
                snprintf(link, sizeof link, "etc/alternatives/%s", a->alts[i].name);
                CHECK(a, symlink(a->alts[i].target, link), link);
        }
}

/* The five harmless devices, made with mknod while we are still host root
 * (cheaper than five bind mounts), plus the usual links. The root tmpfs
 * allows device nodes for these alone: it is read-only before the box runs,
 * and the box can never mknod. */
static void build_dev(const JailChildArgs *a) {
        static const struct { const char *path; unsigned maj, min; } nodes[] = {
                { "dev/null", 1, 3 }, { "dev/zero", 1, 5 }, { "dev/full", 1, 7 },
                { "dev/random", 1, 8 }, { "dev/urandom", 1, 9 },
        };
        CHECK(a, mkdir("dev", 0755), "mkdir /dev");
        for (size_t i = 0; i < ELEMENTSOF(nodes); i++) {
                CHECK(a, mknod(nodes[i].path, S_IFCHR | 0666, makedev(nodes[i].maj, nodes[i].min)), nodes[i].path);
                CHECK(a, chmod(nodes[i].path, 0666), nodes[i].path); /* mknod honours the umask */
        }
        CHECK(a, symlink("/proc/self/fd", "dev/fd"), "dev/fd");
        CHECK(a, symlink("/proc/self/fd/0", "dev/stdin"), "dev/stdin");
        CHECK(a, symlink("/proc/self/fd/1", "dev/stdout"), "dev/stdout");
        CHECK(a, symlink("/proc/self/fd/2", "dev/stderr"), "dev/stderr");
}

/* Build the request-independent root at NEWROOT and pivot into it: the
 * system directories, /dev, /proc, and empty /fn and /tmp, which the request
 * fills. Runs as host root in a private mount namespace: nothing here is
 * visible to the host. The root stays writable until the request's code is
 * in place (mount_request). */
static void build_root(const JailChildArgs *a) {
        CHECK(a, mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), "make / private");
        CHECK(a, mount("tmpfs", NEWROOT, "tmpfs", MS_NOSUID,
                       "size=4m,nr_inodes=1024,mode=0755"), "mount root tmpfs");
        CHECK(a, chdir(NEWROOT), "chdir new root");
        build_system(a);
        build_dev(a);
        CHECK(a, mkdir("fn", 0755), "mkdir /fn");
        CHECK(a, mkdir("tmp", 01777), "mkdir /tmp");
        /* tiny until the request resizes it: a remount costs a tenth of a mount */
        CHECK(a, mount("tmpfs", "tmp", "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,nr_inodes=64,mode=1777"),
              "mount /tmp");
        CHECK(a, mkdir("proc", 0555), "mkdir /proc");
        /* subset=pid: only this pid namespace's processes, no /proc/sys,
         * /proc/kallsyms, /proc/sysrq-trigger or other global files */
        CHECK(a, mount("proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                       "subset=pid,hidepid=invisible"), "mount /proc");
        CHECK(a, syscall(SYS_pivot_root, ".", "."), "pivot_root");
        CHECK(a, umount2(".", MNT_DETACH), "detach old root");
        CHECK(a, chdir("/"), "chdir /");
}

/* The request's own devices (a GPU's), made like the five harmless ones;
 * "dri/renderD128" gets its folder. The device cgroup already allows them
 * (the parent set it before START) and nothing else. */
static void make_devices(const JailChildArgs *a, const JailStartMsg *m) {
        for (uint32_t i = 0; i < m->n_devices && i < JAIL_DEVICES_MAX; i++) {
                char p[80] = "dev/";
                strncat(p, m->devices[i].path, sizeof m->devices[i].path - 1);
                char *slash = strchr(p + 4, '/');
                if (slash) {
                        *slash = 0;
                        if (mkdir(p, 0755) < 0 && errno != EEXIST)
                                fail(a, p);
                        *slash = '/';
                }
                CHECK(a, mknod(p, m->devices[i].mode | 0666, makedev(m->devices[i].major, m->devices[i].minor)), p);
                CHECK(a, chmod(p, 0666), p);
        }
}

/* A detached mount from the parent (a checked host folder) on a new
 * folder at the root, nosuid and nodev plus flags. */
static void attach_folder(const JailChildArgs *a, int fd, const char *name, unsigned long flags, const char *what) {
        CHECK(a, mkdir(name, 0755), what);
        CHECK(a, move_mount(fd, "", AT_FDCWD, name, MOVE_MOUNT_F_EMPTY_PATH), what);
        close(fd);
        CHECK(a, mount(NULL, name, NULL, MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NODEV | flags, NULL), what);
}

/* The code arrives as a detached mount (open_tree() in the parent): move it
 * into place and make it read-only; then /tmp gets the requested size and
 * the whole root becomes read-only. Still host root in our own mount
 * namespace. */
static void mount_request(const JailChildArgs *a, const JailRequest *q) {
        const char *target = q->m.code_target;
        if (!q->m.code_is_dir) {
                int fd = open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
                if (fd < 0)
                        fail(a, "create /fn entry");
                close(fd);
        }
        CHECK(a, move_mount(q->code_fd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH), "attach /fn");
        close(q->code_fd);
        CHECK(a, mount(NULL, target, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL),
              "remount /fn read-only");
        CHECK(a, mount(NULL, "tmp", NULL, MS_REMOUNT | MS_NOSUID | MS_NODEV, q->m.tmp_opts), "size /tmp");
        if (q->run_fd >= 0) {
                /* the instance's own folder: a service's (its HTTP socket),
                 * writable but noexec; or a fresh instance's (the broker
                 * socket and its helpers, made by the runtime), read-only */
                unsigned long ro = q->m.has_run_dir == 2 ? MS_RDONLY : MS_NOEXEC;
                CHECK(a, mkdir("run", 0755), "mkdir /run");
                CHECK(a, mkdir("run/fnbox", 0755), "mkdir /run/fnbox");
                CHECK(a, move_mount(q->run_fd, "", AT_FDCWD, "run/fnbox", MOVE_MOUNT_F_EMPTY_PATH), "attach /run/fnbox");
                close(q->run_fd);
                CHECK(a, mount(NULL, "run/fnbox", NULL, MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NODEV | ro, NULL),
                      "remount /run/fnbox");
        }
        /* a session's files: what it was given, read-only, and where it
         * leaves what it makes; neither can hold a program it runs */
        if (q->input_fd >= 0)
                attach_folder(a, q->input_fd, "input", MS_RDONLY | MS_NOEXEC, "mount /input");
        if (q->output_fd >= 0)
                attach_folder(a, q->output_fd, "output", MS_NOEXEC, "mount /output");
        make_devices(a, &q->m);
        CHECK(a, mount(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID, NULL),
              "remount / read-only");
}

/* Enter a user namespace in which the box uid is the only uid. The parent
 * writes the maps (it has CAP_SETUID over the host ids); we wait for it.
 * The ids change with the system calls themselves, not glibc's wrappers:
 * in a process it believes multi-threaded (this clone of the runtime), a
 * wrapper applies the change to every thread, and first waits for any
 * thread that was being created at the clone. That thread is the
 * parent's, and never comes: the child hung on a futex whenever the
 * runtime happened to be starting a thread. */
static void enter_userns(const JailChildArgs *a) {
        CHECK(a, syscall(SYS_setgroups, 0, NULL), "setgroups");
        CHECK(a, unshare(CLONE_NEWUSER), "unshare user namespace");
        send_msg(a->sock, JAIL_MSG_USERNS, 0, 0, NULL);
        JailMsg m;
        ssize_t n = recv(a->sock, &m, sizeof m, 0);
        if (n != sizeof m || m.type != JAIL_MSG_GO)
                _exit(126); /* the parent gave up on us */
        CHECK(a, syscall(SYS_setresgid, JAIL_BOX_UID, JAIL_BOX_UID, JAIL_BOX_UID), "setresgid");
        CHECK(a, syscall(SYS_setresuid, JAIL_BOX_UID, JAIL_BOX_UID, JAIL_BOX_UID), "setresuid");
}

/* Drop every capability the user namespace gave us, for good: bounding set,
 * ambient set, securebits locked so that no uid change brings any back,
 * then the permitted/effective/inheritable sets. Then make this process
 * non-dumpable, whatever the host's fs.suid_dumpable says: the box runs as
 * the same uid, and must not read this process's memory (a copy of the
 * parent's, a daemon's included) through /proc/1/mem; it also hides /proc/1
 * (hidepid=invisible). The box's own exec makes a fresh, dumpable mm. */
static void drop_privileges(const JailChildArgs *a, const JailRequest *q) {
        for (int c = 0; c <= a->cap_last; c++)
                CHECK(a, prctl(PR_CAPBSET_DROP, c, 0, 0, 0), "drop bounding set");
        CHECK(a, prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "clear ambient caps");
        CHECK(a, prctl(PR_SET_SECUREBITS, SECBIT_NOROOT | SECBIT_NOROOT_LOCKED |
                       SECBIT_NO_SETUID_FIXUP | SECBIT_NO_SETUID_FIXUP_LOCKED |
                       SECBIT_KEEP_CAPS_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE |
                       SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED, 0, 0, 0), "securebits");
        CHECK(a, cap_set_proc(a->no_caps), "clear capabilities");
        CHECK(a, prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs");
        CHECK(a, prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), "not dumpable");
        CHECK(a, setrlimit(RLIMIT_CORE, &q->m.rl_core), "rlimit core");
        CHECK(a, setrlimit(RLIMIT_FSIZE, &q->m.rl_fsize), "rlimit fsize");
        CHECK(a, setrlimit(RLIMIT_NOFILE, &q->m.rl_nofile), "rlimit nofile");
        CHECK(a, setrlimit(RLIMIT_STACK, &q->m.rl_stack), "rlimit stack");
        /* credential changes reset the parent-death signal; set it last */
        CHECK(a, prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0), "pdeathsig");
        CHECK(a, syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, a->filter), "seccomp");
}

_Noreturn static void exec_box(const JailChildArgs *a, const JailRequest *q) {
        for (int i = 0; i < 3; i++)
                if (dup2(a->stdio[i], i) < 0)
                        fail(a, "dup2 stdio");
        /* keep the control socket until execve succeeds, to report failure */
        CHECK(a, syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC), "close_range");
        execve(q->exec_path, q->argv, q->envp);
        send_msg(a->sock, JAIL_MSG_SETUP_ERROR, errno, 0, q->exec_path);
        _exit(127);
}

/* pid 1: reap everything, report the box's status and usage (so that the
 * parent can answer before the namespaces are torn down), and exit, which
 * makes the kernel kill whatever the box left behind in this pid namespace. */
_Noreturn static void run_init(const JailChildArgs *a, pid_t box) {
        for (int i = 0; i < 3; i++)
                close(a->stdio[i]);
        if (a->sock > 0)
                syscall(SYS_close_range, 0, (unsigned) a->sock - 1, 0);
        syscall(SYS_close_range, (unsigned) a->sock + 1, ~0U, 0);
        jail_init_reap(a->sock, box);
}

/* Receive the cgroup.procs fds the parent opened while we were building the
 * root, and move ourselves into every one of them. */
static void join_cgroups(const JailChildArgs *a) {
        JailMsg m;
        int fds[_CG_MAX];
        char cbuf[CMSG_SPACE(sizeof fds)];
        struct iovec iov = { &m, sizeof m };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
        ssize_t n = recvmsg(a->sock, &mh, MSG_CMSG_CLOEXEC);
        if (n != sizeof m || m.type != JAIL_MSG_CGROUP || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)))
                _exit(126); /* the parent gave up on us */
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        if (!c || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN((size_t) m.err * sizeof(int)) ||
            m.err < 1 || m.err > _CG_MAX)
                _exit(126);
        memcpy(fds, CMSG_DATA(c), (size_t) m.err * sizeof(int));
        for (int i = 0; i < m.err; i++) {
                CHECK(a, write_fd_str(fds[i], "0"), "join cgroup");
                close(fds[i]);
        }
}

/* Map the spec (exec path, argv, envp as NUL-terminated strings) and point
 * argv and envp into it; every string must end inside the mapping. */
static void map_spec(const JailChildArgs *a, JailRequest *q, int fd) {
        struct stat st;
        size_t len = q->m.spec_len, na = q->m.n_argv, ne = q->m.n_env;
        errno = EINVAL;
        if (len == 0 || len > JAIL_SPEC_MAX || na < 1 || na > JAIL_SPEC_ARGS || ne > JAIL_SPEC_ENV ||
            fstat(fd, &st) < 0 || (uint64_t) st.st_size != len)
                fail(a, "read the request");
        const char *p = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
        char **v = mmap(NULL, (na + ne + 2) * sizeof(char *), PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED || v == MAP_FAILED)
                fail(a, "map the request");
        size_t off = 0, k = 0;
        for (size_t i = 0; i < 1 + na + ne; i++) {
                const char *end = off < len ? memchr(p + off, 0, len - off) : NULL;
                errno = EINVAL;
                if (!end)
                        fail(a, "read the request");
                if (i == 0)
                        q->exec_path = p + off;
                else
                        v[k++] = (char *) (p + off);
                if (i == na)
                        v[k++] = NULL; /* end of argv */
                off = (size_t) (end - p) + 1;
        }
        errno = EINVAL;
        if (off != len)
                fail(a, "read the request");
        v[k] = NULL;
        q->argv = v;
        q->envp = v + na + 1;
}

/* Wait for the request: the START message with the code's detached mount
 * and the spec attached. If the parent closes the socket instead (the pool
 * is shutting down), leave quietly. */
static void wait_start(const JailChildArgs *a, JailRequest *q) {
        int fds[5];
        char cbuf[CMSG_SPACE(sizeof fds)];
        struct iovec iov = { &q->m, sizeof q->m };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
        ssize_t n;
        do
                n = recvmsg(a->sock, &mh, MSG_CMSG_CLOEXEC);
        while (n < 0 && errno == EINTR);
        if (n != sizeof q->m || q->m.type != JAIL_MSG_START || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)))
                _exit(126);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        size_t nfds = 2 + !!q->m.has_run_dir + !!q->m.has_input + !!q->m.has_output, k = 2;
        if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
            c->cmsg_len != CMSG_LEN(nfds * sizeof(int)))
                _exit(126);
        memcpy(fds, CMSG_DATA(c), nfds * sizeof(int));
        /* in the order jail_request_fds() sends them */
        q->run_fd = q->m.has_run_dir ? fds[k++] : -1;
        q->input_fd = q->m.has_input ? fds[k++] : -1;
        q->output_fd = q->m.has_output ? fds[k++] : -1;
        q->m.code_target[sizeof q->m.code_target - 1] = 0;
        q->m.tmp_opts[sizeof q->m.tmp_opts - 1] = 0;
        q->code_fd = fds[0];
        map_spec(a, q, fds[1]);
        close(fds[1]);
}

/* Close every fd inherited from the parent but our own: a prepared jail may
 * wait a long time, and must not hold the parent's sockets or other jails'
 * pipes (a copy of another box's stdin would keep it from ever seeing EOF). */
static void close_inherited(const JailChildArgs *a) {
        int keep[4] = { a->sock, a->stdio[0], a->stdio[1], a->stdio[2] };
        for (int i = 1; i < 4; i++)
                for (int k = i; k > 0 && keep[k - 1] > keep[k]; k--) {
                        int t = keep[k];
                        keep[k] = keep[k - 1];
                        keep[k - 1] = t;
                }
        unsigned from = 0;
        for (int i = 0; i < 4; i++) {
                if ((unsigned) keep[i] > from)
                        CHECK(a, syscall(SYS_close_range, from, (unsigned) keep[i] - 1, 0), "close inherited fds");
                from = (unsigned) keep[i] + 1;
        }
        CHECK(a, syscall(SYS_close_range, from, ~0U, 0), "close inherited fds");
}

/* Nothing of the parent's signal state survives: handlers it installed
 * (a daemon's libuv handlers) would otherwise be "handled" signals that a box
 * could send to its pid 1, and ignored ones (SIGPIPE) would pass to the box. */
static void reset_signals(const JailChildArgs *a) {
        struct sigaction dfl = { .sa_handler = SIG_DFL };
        for (int sig = 1; sig < NSIG; sig++)
                if (sig != SIGKILL && sig != SIGSTOP)
                        (void) sigaction(sig, &dfl, NULL);
        sigset_t none;
        sigemptyset(&none);
        CHECK(a, sigprocmask(SIG_SETMASK, &none, NULL), "signal mask");
}

/* A jail prepared ahead for a pool builds itself at idle priority, so that
 * it takes only CPU time no running box wants; its request brings it back
 * to the normal policy (and the parent does, if it takes the jail early).
 * The box always starts under SCHED_OTHER, as in a one-shot jail. */
static void set_policy(const JailChildArgs *a, int policy) {
        struct sched_param sp = { 0 };
        if (a->background)
                CHECK(a, sched_setscheduler(0, policy, &sp), "scheduling policy");
}

/* Everything that does not depend on the request; then wait for it. */
static void prepare(const JailChildArgs *a) {
        CHECK(a, prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0), "pdeathsig");
        set_policy(a, SCHED_IDLE);
        close_inherited(a);
        reset_signals(a);
        umask(022);
        CHECK(a, setsid(), "setsid");
        /* The pid namespace came with clone(); the others are made here, so
         * that the parent creates the cgroups meanwhile instead of waiting. */
        CHECK(a, unshare(CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET), "unshare namespaces");
        build_root(a);
        CHECK(a, sethostname("box", 3), "sethostname");
        join_cgroups(a);
        send_msg(a->sock, JAIL_MSG_READY, 0, 0, NULL);
}

/* ----- zygotes ----- */

/* The zygote keeps, in the jail's user namespace only, what making its
 * children takes: CAP_SYS_ADMIN (their namespaces, /tmp and /proc) and
 * CAP_SETPCAP (their own drop of the bounding set and securebits). The
 * bounding set loses everything else now, securebits lock out any way back
 * to root, and no_new_privs is set. For python3 both are raised ambient, so
 * that they survive the interpreter's execve. The zygote runs no seccomp
 * filter (it needs unshare, clone and mount); it runs only fnbox's code and
 * the host's interpreter, never the box's. */
const cap_value_t jail_zygote_keep[JAIL_ZYGOTE_KEEP] = { CAP_SYS_ADMIN, CAP_SETPCAP };

static void zygote_privileges(const JailChildArgs *a) {
        for (int c = 0; c <= a->cap_last; c++)
                if (c != jail_zygote_keep[0] && c != jail_zygote_keep[1])
                        CHECK(a, prctl(PR_CAPBSET_DROP, c, 0, 0, 0), "drop bounding set");
        CHECK(a, prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "clear ambient caps");
        CHECK(a, prctl(PR_SET_SECUREBITS, SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
                       SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED, 0, 0, 0), "securebits");
        CHECK(a, cap_set_proc(a->zygote_caps), "keep the zygote's capabilities");
        for (size_t i = 0; i < JAIL_ZYGOTE_KEEP; i++)
                CHECK(a, prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, jail_zygote_keep[i], 0, 0), "ambient caps");
        CHECK(a, prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs");
        struct rlimit none = { 0, 0 };
        CHECK(a, setrlimit(RLIMIT_CORE, &none), "rlimit core");
}

static void zygote_params(const JailChildArgs *a, const JailRequest *q, ZygoteParams *p) {
        *p = (ZygoteParams) { .magic = ZYGOTE_PARAMS_MAGIC, .filter_len = a->filter->len,
                              .rl_core = q->m.rl_core, .rl_fsize = q->m.rl_fsize, .rl_nofile = q->m.rl_nofile,
                              .rl_stack = q->m.rl_stack, .cap_last = a->cap_last,
                              .exec_mode = q->m.zygote == JAIL_ZYGOTE_EXEC,
                              .template_ = q->m.zygote == JAIL_ZYGOTE_TEMPLATE };
        memcpy(p->tmp_opts, q->m.tmp_opts, sizeof p->tmp_opts);
}

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

/* A memfd holding len bytes of data, at fd number at least 10. One to be
 * executed asks for that (a kernel before 6.3 knows no such flag: any
 * memfd may be executed there); -1 where the host forbids it
 * (vm.memfd_noexec = 2). */
static int memfd_with(const JailChildArgs *a, const char *name, bool exec, const void *d1, size_t l1,
                      const void *d2, size_t l2) {
        int fd = memfd_create(name, MFD_CLOEXEC | (exec ? MFD_EXEC : 0));
        if (fd < 0 && exec && errno == EINVAL)
                fd = memfd_create(name, MFD_CLOEXEC);
        if (fd < 0 && exec && errno == EACCES)
                return -1;
        if (fd < 0 || write_all(fd, d1, l1) < 0 || (l2 && write_all(fd, d2, l2) < 0))
                fail(a, name);
        /* execute-only: a program its runner may not read is not dumpable
         * from the exec on (the kernel's would_dump), before its first
         * instruction, so no box ever finds fnbox-zygote-init readable
         * through /proc, not even until its own prctl */
        if (exec && fchmod(fd, S_IXUSR) < 0)
                fail(a, name);
        int high = fcntl(fd, F_DUPFD_CLOEXEC, 10);
        if (high < 0)
                fail(a, name);
        close(fd);
        return high;
}

/* python3: exec the interpreter with the driver (zygote_driver.py), which
 * imports the common modules and then serves FORKs through the shared
 * object. fds: 0-2 the zygote's own stdio (the jail's pipes), 3 the
 * control socket, 4 the shared object, 5 the parameters and the filter,
 * 6 the init of its children (fnbox-zygote-init) unless the host forbids
 * executable memfds. */
_Noreturn static void zygote_exec_python(const JailChildArgs *a, const JailRequest *q, const ZygoteParams *p) {
        int so = memfd_with(a, "fnbox-zygote.so", false, zygote_so_start,
                            (size_t) (zygote_so_end - zygote_so_start), NULL, 0);
        int params = memfd_with(a, "fnbox-zygote-params", false, p, sizeof *p, a->filter->filter,
                                a->filter->len * sizeof(struct sock_filter));
        int init = memfd_with(a, "fnbox-zygote-init", true, zygote_init_start,
                              (size_t) (zygote_init_end - zygote_init_start), NULL, 0);
        int ctl = fcntl(a->sock, F_DUPFD_CLOEXEC, 10);
        if (ctl < 0 || dup2(ctl, ZYGOTE_FD_CTL) < 0 || dup2(so, ZYGOTE_FD_SO) < 0 ||
            dup2(params, ZYGOTE_FD_PARAMS) < 0 || (init >= 0 && dup2(init, ZYGOTE_FD_INIT) < 0))
                fail(a, "zygote fds");
        CHECK(a, syscall(SYS_close_range, init >= 0 ? ZYGOTE_FD_INIT + 1 : ZYGOTE_FD_PARAMS + 1, ~0U, 0),
              "close_range");
        execve(q->exec_path, q->argv, q->envp);
        send_msg(ZYGOTE_FD_CTL, JAIL_MSG_SETUP_ERROR, errno, 0, q->exec_path);
        _exit(127);
}

/* exec, sh and node: this process is the zygote; its box processes exec. */
_Noreturn static void zygote_serve(const JailChildArgs *a, const JailRequest *q, const ZygoteParams *p) {
        if (a->sock > 3)
                CHECK(a, syscall(SYS_close_range, 3, (unsigned) a->sock - 1, 0), "close_range");
        CHECK(a, syscall(SYS_close_range, (unsigned) a->sock + 1, ~0U, 0), "close_range");
        int r = zygote_child_init_with(a->sock, p, a->filter->filter);
        if (r < 0) {
                errno = -r;
                fail(a, "zygote init");
        }
        for (;;) {
                zygote_child_wait();
                if (zygote_child_fork() == 0)
                        zygote_child_exec(q->exec_path, q->argv, q->envp);
        }
}

/* A zygote: the request's code and mounts, the user namespace, then the
 * zygote's reduced privileges, and it waits for FORKs. Its stdio are the
 * jail's pipes (a python3 zygote that fails to start says why there). */
_Noreturn static void zygote_main(const JailChildArgs *a, const JailRequest *q) {
        mount_request(a, q);
        CHECK(a, unshare(CLONE_NEWCGROUP), "unshare cgroup namespace");
        enter_userns(a);
        zygote_privileges(a);
        CHECK(a, prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0), "pdeathsig");
        for (int i = 0; i < 3; i++)
                if (dup2(a->stdio[i], i) < 0)
                        fail(a, "dup2 stdio");
        ZygoteParams p;
        zygote_params(a, q, &p);
        if (q->m.zygote == JAIL_ZYGOTE_PYTHON || q->m.zygote == JAIL_ZYGOTE_TEMPLATE)
                zygote_exec_python(a, q, &p);
        zygote_serve(a, q, &p);
}

_Noreturn void jail_child_main(const JailChildArgs *a) {
        prepare(a);
        /* A prepared jail: host root in its own namespaces, no code, no box,
         * in its own cgroup. It has read nothing that a client controls;
         * the request below comes from the parent, which checked it. */
        JailRequest q;
        wait_start(a, &q);
        set_policy(a, SCHED_OTHER);
        if (q.m.zygote)
                zygote_main(a, &q);
        mount_request(a, &q);
        /* the cgroup namespace is rooted at the jail's own cgroup */
        CHECK(a, unshare(CLONE_NEWCGROUP), "unshare cgroup namespace");
        enter_userns(a);
        drop_privileges(a, &q);
        /* vfork: no page-table copy; the box only dups fds and execs */
        pid_t box = vfork();
        if (box < 0)
                fail(a, "fork box");
        if (box == 0)
                exec_box(a, &q);
        run_init(a, box);
}
