/* runtime/jail_child.c: the jail's init, from clone() to the box's execve().
 * It starts as host root inside fresh pid, mount, ipc, uts and net
 * namespaces, builds the root filesystem there while it still has real
 * privilege, then enters a new user namespace whose only mapping is the box
 * uid, drops every privilege, loads the seccomp filter, and forks the box.
 * It stays as the jail's pid 1 until the box exits; its exit kills the rest. */
#define _GNU_SOURCE
#include "jail_child.h"

#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
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

#define NEWROOT "/tmp"   /* staging mount point; hidden from the host by our mount ns */

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

/* The code arrives as a detached mount (open_tree() in the parent): move
 * it into place, then make it read-only. */
static void build_code(const JailChildArgs *a) {
        CHECK(a, mkdir("fn", 0755), "mkdir /fn");
        if (!a->code_is_dir) {
                int fd = open(a->code_target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
                if (fd < 0)
                        fail(a, "create /fn entry");
                close(fd);
        }
        CHECK(a, move_mount(a->code_fd, "", AT_FDCWD, a->code_target, MOVE_MOUNT_F_EMPTY_PATH), "attach /fn");
        CHECK(a, mount(NULL, a->code_target, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL),
              "remount /fn read-only");
}

/* Build the new root at NEWROOT and pivot into it. Runs as host root in a
 * private mount namespace: nothing here is visible to the host. */
static void build_root(const JailChildArgs *a) {
        CHECK(a, mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), "make / private");
        CHECK(a, mount("tmpfs", NEWROOT, "tmpfs", MS_NOSUID,
                       "size=4m,nr_inodes=1024,mode=0755"), "mount root tmpfs");
        CHECK(a, chdir(NEWROOT), "chdir new root");
        build_system(a);
        build_code(a);
        build_dev(a);
        CHECK(a, mkdir("tmp", 01777), "mkdir /tmp");
        CHECK(a, mount("tmpfs", "tmp", "tmpfs", MS_NOSUID | MS_NODEV, a->tmp_opts), "mount /tmp");
        CHECK(a, mkdir("proc", 0555), "mkdir /proc");
        /* subset=pid: only this pid namespace's processes, no /proc/sys,
         * /proc/kallsyms, /proc/sysrq-trigger or other global files */
        CHECK(a, mount("proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                       "subset=pid,hidepid=invisible"), "mount /proc");
        CHECK(a, syscall(SYS_pivot_root, ".", "."), "pivot_root");
        CHECK(a, umount2(".", MNT_DETACH), "detach old root");
        CHECK(a, chdir("/"), "chdir /");
        CHECK(a, mount(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID, NULL),
              "remount / read-only");
}

/* Enter a user namespace in which the box uid is the only uid. The parent
 * writes the maps (it has CAP_SETUID over the host ids); we wait for it. */
static void enter_userns(const JailChildArgs *a) {
        CHECK(a, setgroups(0, NULL), "setgroups");
        CHECK(a, unshare(CLONE_NEWUSER), "unshare user namespace");
        send_msg(a->sock, JAIL_MSG_USERNS, 0, 0, NULL);
        JailMsg m;
        ssize_t n = recv(a->sock, &m, sizeof m, 0);
        if (n != sizeof m || m.type != JAIL_MSG_GO)
                _exit(126); /* the parent gave up on us */
        CHECK(a, setresgid(JAIL_BOX_UID, JAIL_BOX_UID, JAIL_BOX_UID), "setresgid");
        CHECK(a, setresuid(JAIL_BOX_UID, JAIL_BOX_UID, JAIL_BOX_UID), "setresuid");
}

/* Drop every capability the user namespace gave us, for good: bounding set,
 * ambient set, securebits locked so that no uid change brings any back,
 * then the permitted/effective/inheritable sets. */
static void drop_privileges(const JailChildArgs *a) {
        for (int c = 0; c <= a->cap_last; c++)
                CHECK(a, prctl(PR_CAPBSET_DROP, c, 0, 0, 0), "drop bounding set");
        CHECK(a, prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "clear ambient caps");
        CHECK(a, prctl(PR_SET_SECUREBITS, SECBIT_NOROOT | SECBIT_NOROOT_LOCKED |
                       SECBIT_NO_SETUID_FIXUP | SECBIT_NO_SETUID_FIXUP_LOCKED |
                       SECBIT_KEEP_CAPS_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE |
                       SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED, 0, 0, 0), "securebits");
        CHECK(a, cap_set_proc(a->no_caps), "clear capabilities");
        CHECK(a, prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs");
        CHECK(a, setrlimit(RLIMIT_CORE, &a->rl_core), "rlimit core");
        CHECK(a, setrlimit(RLIMIT_FSIZE, &a->rl_fsize), "rlimit fsize");
        CHECK(a, setrlimit(RLIMIT_NOFILE, &a->rl_nofile), "rlimit nofile");
        CHECK(a, setrlimit(RLIMIT_STACK, &a->rl_stack), "rlimit stack");
        /* credential changes reset the parent-death signal; set it last */
        CHECK(a, prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0), "pdeathsig");
        CHECK(a, syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, a->filter), "seccomp");
}

_Noreturn static void exec_box(const JailChildArgs *a) {
        for (int i = 0; i < 3; i++)
                if (dup2(a->stdio[i], i) < 0)
                        fail(a, "dup2 stdio");
        /* keep the control socket until execve succeeds, to report failure */
        CHECK(a, syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC), "close_range");
        execve(a->exec_path, a->argv, a->envp);
        send_msg(a->sock, JAIL_MSG_SETUP_ERROR, errno, 0, a->exec_path);
        _exit(127);
}

/* pid 1: reap everything, report the box's status, and exit, which makes
 * the kernel kill whatever the box left behind in this pid namespace. */
_Noreturn static void run_init(const JailChildArgs *a, pid_t box) {
        for (int i = 0; i < 3; i++)
                close(a->stdio[i]);
        if (a->sock > 0)
                syscall(SYS_close_range, 0, (unsigned) a->sock - 1, 0);
        syscall(SYS_close_range, (unsigned) a->sock + 1, ~0U, 0);
        for (;;) {
                int st;
                pid_t p = waitpid(-1, &st, __WALL);
                if (p == box) {
                        send_msg(a->sock, JAIL_MSG_EXIT, 0, st, NULL);
                        _exit(0);
                }
                if (p < 0 && errno != EINTR)
                        _exit(125);
        }
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
        if (n != sizeof m || m.type != JAIL_MSG_CGROUP)
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

_Noreturn void jail_child_main(const JailChildArgs *a) {
        CHECK(a, prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0), "pdeathsig");
        CHECK(a, setsid(), "setsid");
        /* The pid namespace came with clone(); the others are made here, so
         * that the parent creates the cgroups meanwhile instead of waiting. */
        CHECK(a, unshare(CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET), "unshare namespaces");
        build_root(a);
        CHECK(a, sethostname("box", 3), "sethostname");
        join_cgroups(a);
        /* the cgroup namespace is rooted at the jail's own cgroup */
        CHECK(a, unshare(CLONE_NEWCGROUP), "unshare cgroup namespace");
        enter_userns(a);
        drop_privileges(a);
        /* vfork: no page-table copy; the box only dups fds and execs */
        pid_t box = vfork();
        if (box < 0)
                fail(a, "fork box");
        if (box == 0)
                exec_box(a);
        run_init(a, box);
}
