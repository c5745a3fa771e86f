/* runtime/seccomp.c: the deny-list filter every box runs under. The default
 * is allow; what escapes and kernel attack surface are made of is refused:
 * tracing and cross-process memory access, keyrings, bpf and perf, io_uring
 * and userfaultfd, every mount API, namespace creation and entry, module and
 * kexec loading, handle-based opens, non-AF_UNIX sockets, terminal injection,
 * clock and hostname changes. Other architectures (i386 via int 0x80, x32) kill
 * the process. clone3 answers ENOSYS so that libc falls back to clone, whose
 * flags can be inspected. */
#define _GNU_SOURCE
#include "seccomp.h"

#include <fcntl.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "lib/util.h"

/* Refused with EPERM, whatever the arguments. */
static const char *const denied[] = {
        /* tracing, other processes' memory and files */
        "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
        "process_madvise", "move_pages", "migrate_pages",
        /* keyrings */
        "keyctl", "add_key", "request_key",
        /* kernel attack surface */
        "bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter",
        "io_uring_register", "fanotify_init", "lookup_dcookie", "vhangup",
        "modify_ldt", "iopl", "ioperm", "uselib", "ustat", "sysfs", "_sysctl",
        "nfsservctl", "personality", "syslog", "acct", "quotactl", "quotactl_fd",
        /* mounts and namespaces */
        "mount", "umount", "umount2", "fsopen", "fsconfig", "fsmount", "fspick",
        "open_tree", "move_mount", "mount_setattr", "unshare", "setns",
        "pivot_root", "chroot", "open_by_handle_at", "name_to_handle_at",
        /* the machine itself */
        "kexec_load", "kexec_file_load", "init_module", "finit_module",
        "delete_module", "create_module", "reboot", "swapon", "swapoff",
        "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
        "sethostname", "setdomainname",
};

/* clone() flags that create namespaces. CLONE_NEWTIME shares its bit with the
 * exit signal in clone(), so it can only be reached through unshare/clone3,
 * which are refused whole. */
static const unsigned long ns_flags[] = {
        CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER,
        CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWCGROUP,
};

#ifndef TIOCLINUX
#define TIOCLINUX 0x541C
#endif

static int add_rules(scmp_filter_ctx ctx) {
        int r;
        for (size_t i = 0; i < ELEMENTSOF(denied); i++) {
                int nr = seccomp_syscall_resolve_name(denied[i]);
                if (nr == __NR_SCMP_ERROR)
                        continue; /* unknown to this libseccomp or arch */
                if ((r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0)) < 0)
                        return r;
        }
        for (size_t i = 0; i < ELEMENTSOF(ns_flags); i++)
                if ((r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                                          SCMP_A0(SCMP_CMP_MASKED_EQ, ns_flags[i], ns_flags[i]))) < 0)
                        return r;
        if ((r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0)) < 0)
                return r;
        /* Sockets: AF_UNIX only. The kernel reads the domain as an int; this
         * compares all 64 bits, so a set high bit is refused too (the safe
         * direction: AF_UNIX with garbage above bit 31 is refused as well). */
        if ((r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 1,
                                  SCMP_A0_32(SCMP_CMP_NE, AF_UNIX))) < 0)
                return r;
        if ((r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socketpair), 1,
                                  SCMP_A0_32(SCMP_CMP_NE, AF_UNIX))) < 0)
                return r;
        /* Terminal injection. The kernel reads ioctl's command as 32 bits, so
         * compare only those: TIOCSTI with bit 32 set must not slip past.
         * (libseccomp 2.5's SCMP_A1_32 casts the datum but still compares
         * all 64 bits, hence the explicit mask.) */
        static const unsigned long tty_ioctls[] = { TIOCSTI, TIOCLINUX };
        for (size_t i = 0; i < ELEMENTSOF(tty_ioctls); i++)
                if ((r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
                                          SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffUL, tty_ioctls[i]))) < 0)
                        return r;
        return 0;
}

/* Compile the filter and copy its BPF out through a memfd. */
int syscall_filter_build(struct sock_fprog *ret) {
        scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
        if (!ctx)
                return -ENOMEM;
        int r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
        if (r >= 0)
                r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0); /* we set it ourselves */
        /* A binary tree of syscall numbers instead of a linear chain: the
         * kernel evaluates the filter for every syscall number when it is
         * attached (to cache the always-allowed ones), so length costs every
         * jail start, not only each filtered call. */
        if (r >= 0)
                r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
        if (r >= 0)
                r = add_rules(ctx);
        _cleanup_close_ int fd = -1;
        if (r >= 0) {
                fd = memfd_create("fnbox-seccomp", MFD_CLOEXEC);
                r = fd < 0 ? negative_errno() : seccomp_export_bpf(ctx, fd);
        }
        seccomp_release(ctx);
        if (r < 0)
                return r;
        struct stat st;
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (st.st_size <= 0 || st.st_size % sizeof(struct sock_filter) || st.st_size > 65536)
                return -EINVAL;
        struct sock_filter *f = malloc((size_t) st.st_size);
        if (!f)
                return -ENOMEM;
        if (pread(fd, f, (size_t) st.st_size, 0) != st.st_size) {
                free(f);
                return -EIO;
        }
        ret->filter = f;
        ret->len = (unsigned short) (st.st_size / sizeof(struct sock_filter));
        return 0;
}

void syscall_filter_free(struct sock_fprog *p) {
        free(p->filter);
        p->filter = NULL;
        p->len = 0;
}
