/* tests/security/boxes/sys.c: attacks through system calls the jail must
 * refuse: terminal injection, new and foreign namespaces, every mount API,
 * tracing and other processes' memory, keyrings, bpf and perf, userfaultfd
 * and io_uring, becoming root, the kernel log and symbols, and the
 * machine's clock and name. Raw syscall() is used where libc has no
 * wrapper, so that each line is exactly what the kernel (or the filter)
 * answered. */
#include "box.h"

#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/klog.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/timex.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <linux/bpf.h>
#include <linux/io_uring.h>
#include <linux/keyctl.h>
#include <linux/kcmp.h>
#include <linux/perf_event.h>
#include <linux/sched.h>

#ifndef TIOCLINUX
#define TIOCLINUX 0x541C
#endif

/* ----- terminals ----- */

static int tiocsti(int argc, char **argv) {
        char c = 'x';
        for (int fd = 0; fd < 3; fd++) {
                char step[64];
                snprintf(step, sizeof step, "TIOCSTI fd %d", fd);
                TRY(step, ioctl(fd, TIOCSTI, &c));
        }
        TRY("TIOCSTI bit 32", syscall(SYS_ioctl, 0, (1UL << 32) | TIOCSTI, &c));
        char sub = 6; /* TIOCL_GETSHIFTSTATE */
        TRY("TIOCLINUX", ioctl(0, TIOCLINUX, &sub));
        TRY("TIOCLINUX bit 32", syscall(SYS_ioctl, 0, (1UL << 32) | TIOCLINUX, &sub));
        TRY("open /dev/tty", open("/dev/tty", O_RDWR | O_CLOEXEC));
        TRY("open /dev/console", open("/dev/console", O_RDWR | O_CLOEXEC));
        return 0;
}

/* ----- namespaces ----- */

static long raw_clone(unsigned long flags) {
        long pid = syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, 0);
        if (pid == 0)
                _exit(0);
        if (pid > 0)
                waitpid((pid_t) pid, NULL, 0);
        return pid;
}

static int unshare_ns(int argc, char **argv) {
        TRY("unshare NEWUSER", unshare(CLONE_NEWUSER));
        TRY("unshare NEWNET", unshare(CLONE_NEWNET));
        TRY("unshare NEWNS", unshare(CLONE_NEWNS));
        TRY("unshare NEWUSER|NEWNS", unshare(CLONE_NEWUSER | CLONE_NEWNS));
        TRY("unshare NEWPID", unshare(CLONE_NEWPID));
        TRY("unshare NEWUTS", unshare(CLONE_NEWUTS));
        TRY("unshare NEWIPC", unshare(CLONE_NEWIPC));
        TRY("unshare NEWCGROUP", unshare(CLONE_NEWCGROUP));
        TRY("unshare NEWTIME", unshare(0x80));
        TRY("clone NEWUSER", raw_clone(CLONE_NEWUSER));
        TRY("clone NEWNET", raw_clone(CLONE_NEWNET));
        TRY("clone NEWNS", raw_clone(CLONE_NEWNS));
        struct clone_args ca = { .flags = CLONE_NEWUSER, .exit_signal = SIGCHLD };
        TRY("clone3 NEWUSER", syscall(SYS_clone3, &ca, sizeof ca));
        TRY("clone plain", raw_clone(0));
        return 0;
}

/* Enter namespaces through /proc, and look at init's root. */
static int setns_ns(int argc, char **argv) {
        static const char *const ns[] = { "net", "mnt", "user", "pid", "uts", "ipc", "cgroup" };
        for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
                char p[64], step[64];
                snprintf(p, sizeof p, "/proc/self/ns/%s", ns[i]);
                int fd = open(p, O_RDONLY | O_CLOEXEC);
                snprintf(step, sizeof step, "setns %s", ns[i]);
                if (fd < 0) {
                        say("%s: open errno=%d\n", step, errno);
                        continue;
                }
                TRY(step, setns(fd, 0));
                close(fd);
        }
        TRY("open /proc/1/ns/net", open("/proc/1/ns/net", O_RDONLY | O_CLOEXEC));
        TRY("open /proc/1/root", open("/proc/1/root", O_RDONLY | O_CLOEXEC));
        TRY("open /proc/1/root/etc/passwd", open("/proc/1/root/etc/passwd", O_RDONLY | O_CLOEXEC));
        char buf[256];
        TRY("readlink /proc/1/root", readlink("/proc/1/root", buf, sizeof buf));
        TRY("stat /proc/1", access("/proc/1", F_OK));
        return 0;
}

/* ----- mounts ----- */

static int mounts(int argc, char **argv) {
        mkdir("/tmp/m", 0755);
        mkdir("/tmp/cg", 0755);
        TRY("mount tmpfs", mount("none", "/tmp/m", "tmpfs", 0, NULL));
        TRY("bind / to /tmp/m", mount("/", "/tmp/m", NULL, MS_BIND | MS_REC, NULL));
        TRY("remount /usr rw", mount(NULL, "/usr", NULL, MS_REMOUNT | MS_BIND, NULL));
        TRY("remount / rw", mount(NULL, "/", NULL, MS_REMOUNT, NULL));
        TRY("mount cgroup v1", mount("cgroup", "/tmp/cg", "cgroup", 0, "memory"));
        TRY("mount cgroup2", mount("cgroup2", "/tmp/cg", "cgroup2", 0, NULL));
        TRY("mount proc", mount("proc", "/tmp/m", "proc", 0, NULL));
        TRY("umount /proc", umount2("/proc", MNT_DETACH));
        TRY("fsopen tmpfs", syscall(SYS_fsopen, "tmpfs", 0));
        TRY("fsopen cgroup", syscall(SYS_fsopen, "cgroup", 0));
        TRY("fspick /usr", syscall(SYS_fspick, AT_FDCWD, "/usr", 0));
        TRY("fsmount", syscall(SYS_fsmount, 0, 0, 0));
        TRY("open_tree /usr", syscall(SYS_open_tree, AT_FDCWD, "/usr", 1 /* OPEN_TREE_CLONE */));
        TRY("move_mount", syscall(SYS_move_mount, AT_FDCWD, "/usr", AT_FDCWD, "/tmp/m", 0));
        TRY("mount_setattr", syscall(SYS_mount_setattr, AT_FDCWD, "/usr", 0, NULL, 0));
        TRY("pivot_root", syscall(SYS_pivot_root, "/tmp", "/tmp/m"));
        TRY("chroot", chroot("/tmp"));
        TRY("mknod /tmp/mem", mknod("/tmp/mem", S_IFCHR | 0666, makedev(1, 1)));
        TRY("mknod /tmp/sda", mknod("/tmp/sda", S_IFBLK | 0666, makedev(8, 0)));
        TRY("write release_agent", open("/sys/fs/cgroup/memory/release_agent", O_WRONLY | O_CLOEXEC));
        TRY("write /tmp/cg/release_agent", open("/tmp/cg/release_agent", O_WRONLY | O_CLOEXEC));
        return 0;
}

/* ----- other processes ----- */

static int ptrace_attacks(int argc, char **argv) {
        pid_t child = fork();
        if (child == 0) {
                pause();
                _exit(0);
        }
        static char secret[64] = "secret";
        char buf[64];
        struct iovec local = { buf, sizeof buf }, remote = { secret, sizeof secret };
        TRY("ptrace TRACEME", syscall(SYS_ptrace, 0 /* PTRACE_TRACEME */, 0, 0, 0));
        TRY("ptrace ATTACH", syscall(SYS_ptrace, 16 /* PTRACE_ATTACH */, child, 0, 0));
        TRY("ptrace SEIZE", syscall(SYS_ptrace, 0x4206 /* PTRACE_SEIZE */, child, 0, 0));
        TRY("process_vm_readv", process_vm_readv(child, &local, 1, &remote, 1, 0));
        TRY("process_vm_writev", process_vm_writev(child, &local, 1, &remote, 1, 0));
        int pidfd = (int) syscall(SYS_pidfd_open, child, 0);
        report("pidfd_open", pidfd, errno);
        TRY("pidfd_getfd", syscall(SYS_pidfd_getfd, pidfd, 0, 0));
        TRY("kcmp", syscall(SYS_kcmp, getpid(), child, KCMP_FILE, 0, 0));
        TRY("process_madvise", syscall(SYS_process_madvise, pidfd, &local, 1, 0, 0));
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        return 0;
}

static int keys(int argc, char **argv) {
        TRY("keyctl GET_KEYRING_ID", syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0));
        TRY("keyctl JOIN_SESSION_KEYRING", syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, "pwn"));
        TRY("add_key", syscall(SYS_add_key, "user", "pwn", "data", 4, KEY_SPEC_PROCESS_KEYRING));
        TRY("request_key", syscall(SYS_request_key, "user", "pwn", NULL, KEY_SPEC_PROCESS_KEYRING));
        return 0;
}

static int bpf_perf(int argc, char **argv) {
        union bpf_attr map = { .map_type = BPF_MAP_TYPE_ARRAY, .key_size = 4, .value_size = 4, .max_entries = 1 };
        TRY("bpf MAP_CREATE", syscall(SYS_bpf, BPF_MAP_CREATE, &map, sizeof map));
        struct bpf_insn prog[] = { { .code = 0xb7, .dst_reg = 0, .imm = 0 }, { .code = 0x95 } };
        union bpf_attr load = { .prog_type = BPF_PROG_TYPE_SOCKET_FILTER, .insn_cnt = 2,
                                .insns = (unsigned long) prog, .license = (unsigned long) "GPL" };
        TRY("bpf PROG_LOAD", syscall(SYS_bpf, BPF_PROG_LOAD, &load, sizeof load));
        struct perf_event_attr pa = { .type = PERF_TYPE_SOFTWARE, .size = sizeof pa,
                                      .config = PERF_COUNT_SW_CPU_CLOCK, .exclude_kernel = 1 };
        TRY("perf_event_open self", syscall(SYS_perf_event_open, &pa, 0, -1, -1, 0));
        TRY("perf_event_open cpu 0", syscall(SYS_perf_event_open, &pa, -1, 0, -1, 0));
        return 0;
}

static int uffd_uring(int argc, char **argv) {
        TRY("userfaultfd", syscall(SYS_userfaultfd, O_CLOEXEC));
        TRY("userfaultfd user-mode-only", syscall(SYS_userfaultfd, O_CLOEXEC | 1));
        TRY("open /dev/userfaultfd", open("/dev/userfaultfd", O_RDWR | O_CLOEXEC));
        struct io_uring_params p = { 0 };
        TRY("io_uring_setup", syscall(SYS_io_uring_setup, 8, &p));
        TRY("io_uring_enter", syscall(SYS_io_uring_enter, 0, 1, 0, 0, NULL, 0));
        TRY("io_uring_register", syscall(SYS_io_uring_register, 0, 0, NULL, 0));
        return 0;
}

/* ----- becoming root ----- */

/* Run a setuid program with LD_SHOW_AUXV=1. ld.so prints the auxiliary
 * vector only when the exec was not a secure (privilege-raising) one, so
 * its AT_EUID and AT_SECURE lines prove the setuid bit was not honoured.
 * Only those lines (and suidprobe's own) are passed on, prefixed. */
static void run_setuid(const char *path) {
        int p[2];
        if (pipe(p) < 0)
                return say("%s pipe: errno=%d\n", path, errno);
        pid_t pid = fork();
        if (pid == 0) {
                int null = open("/dev/null", O_RDWR);
                dup2(null, 0);
                dup2(p[1], 1);
                dup2(p[1], 2);
                char *argv[] = { (char *) path, "--help", NULL };
                char *envp[] = { "LD_SHOW_AUXV=1", "PATH=/usr/bin", NULL };
                execve(path, argv, envp);
                say("execve: errno=%d\n", errno);
                _exit(127);
        }
        close(p[1]);
        FILE *f = fdopen(p[0], "r");
        char line[1024];
        while (f && fgets(line, sizeof line, f)) {
                char key[64], val[256];
                if (strncmp(line, "suidprobe:", 10) == 0 || strncmp(line, "execve:", 7) == 0)
                        say("%s %s", path, line);
                else if (sscanf(line, "%63[A-Z_]: %255s", key, val) == 2 &&
                         (!strcmp(key, "AT_UID") || !strcmp(key, "AT_EUID") || !strcmp(key, "AT_SECURE")))
                        say("%s %s: %s\n", path, key, val);
        }
        if (f)
                fclose(f);
        waitpid(pid, NULL, 0);
}

static int become_root(int argc, char **argv) {
        TRY("setuid 0", setuid(0));
        TRY("setresuid 0", setresuid(0, 0, 0));
        TRY("setgid 0", setgid(0));
        setfsuid(0);
        say("fsuid: %d\n", setfsuid(-1));
        TRY("setgroups 0", setgroups(1, (gid_t[]) { 0 }));
        TRY("setuid 65534", setuid(65534));
        TRY("setuid 1000", setuid(1000));
        uid_t r, e, s;
        getresuid(&r, &e, &s);
        say("resuid: %u %u %u\n", r, e, s);
        for (int i = 1; i < argc; i++)
                run_setuid(argv[i]);
        return 0;
}

/* ----- the kernel's secrets ----- */

static void dump_file(const char *prefix, const char *path) {
        FILE *f = fopen(path, "re");
        if (!f)
                return say("%s: errno=%d\n", prefix, errno);
        char line[4096];
        while (fgets(line, sizeof line, f))
                say("%s: %s", prefix, line);
        fclose(f);
}

static int kernel_info(int argc, char **argv) {
        TRY("open /proc/kallsyms", open("/proc/kallsyms", O_RDONLY | O_CLOEXEC));
        TRY("open /proc/modules", open("/proc/modules", O_RDONLY | O_CLOEXEC));
        TRY("open /dev/kmsg", open("/dev/kmsg", O_RDONLY | O_CLOEXEC));
        TRY("open /dev/mem", open("/dev/mem", O_RDONLY | O_CLOEXEC));
        char buf[256];
        TRY("syslog READ_ALL", klogctl(3, buf, sizeof buf));
        TRY("syslog SIZE_BUFFER", klogctl(10, NULL, 0));
        TRY("syslog CONSOLE_OFF", klogctl(6, NULL, 0));
        dump_file("mountinfo", "/proc/self/mountinfo");
        dump_file("init mountinfo", "/proc/1/mountinfo");
        dump_file("cgroup", "/proc/self/cgroup");
        return 0;
}

/* ----- the machine's name and clock ----- */

static int machine(int argc, char **argv) {
        TRY("sethostname", sethostname("pwned", 5));
        TRY("setdomainname", setdomainname("pwned", 5));
        struct timeval tv;
        gettimeofday(&tv, NULL);
        tv.tv_sec += 3600;
        TRY("settimeofday", settimeofday(&tv, NULL));
        struct timespec ts = { tv.tv_sec, 0 };
        TRY("clock_settime", clock_settime(CLOCK_REALTIME, &ts));
        struct timex tx = { .modes = ADJ_OFFSET, .offset = 1000 };
        TRY("adjtimex", adjtimex(&tx));
        TRY("clock_adjtime", syscall(SYS_clock_adjtime, CLOCK_REALTIME, &tx));
        struct utsname u;
        uname(&u);
        say("nodename: %s\n", u.nodename);
        return 0;
}

static const Attack attacks[] = {
        { "tiocsti", tiocsti },
        { "unshare", unshare_ns },
        { "setns", setns_ns },
        { "mount", mounts },
        { "ptrace", ptrace_attacks },
        { "keys", keys },
        { "bpf", bpf_perf },
        { "uffd", uffd_uring },
        { "setuid", become_root },
        { "kernel", kernel_info },
        { "machine", machine },
};

BOX_MAIN(attacks)
