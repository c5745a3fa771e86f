/* tests/unit/test_seccomp.c: the filter linked into fnbox-runtime is the one
 * runtime/seccomp.c builds today, and it behaves as documented when loaded. */
#define _GNU_SOURCE
#include "test.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/seccomp.h>
#include <unistd.h>

#include "runtime/seccomp.h"

TEST(seccomp_embedded_filter_is_current) {
        struct sock_fprog p;
        ASSERT_EQ_INT(syscall_filter_build(&p), 0);
        ASSERT_EQ_UINT(p.len, syscall_filter_bpf_len);
        ASSERT_TRUE(memcmp(p.filter, syscall_filter_bpf, p.len * sizeof(struct sock_filter)) == 0);
        syscall_filter_free(&p);
}

static void load_filter(void) {
        struct sock_fprog p = { syscall_filter_bpf_len, (struct sock_filter *) syscall_filter_bpf };
        ASSERT_EQ_INT(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
        ASSERT_EQ_INT(syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &p), 0);
}

#define ASSERT_ERRNO(call, e)                                    \
        do {                                                     \
                errno = 0;                                       \
                long _r = (long) (call);                         \
                ASSERT_EQ_INT(_r, -1);                           \
                ASSERT_EQ_INT(errno, e);                         \
        } while (0)

TEST(seccomp_denies) {
        load_filter();
        ASSERT_ERRNO(socket(AF_INET, SOCK_STREAM, 0), EAFNOSUPPORT);
        ASSERT_ERRNO(syscall(SYS_socket, (1UL << 32) | AF_INET, SOCK_STREAM, 0), EAFNOSUPPORT);
        ASSERT_ERRNO(socket(AF_NETLINK, SOCK_RAW, 0), EAFNOSUPPORT);
        ASSERT_ERRNO(unshare(CLONE_NEWUSER), EPERM);
        ASSERT_ERRNO(syscall(SYS_ptrace, 0, 0, 0, 0), EPERM);
        ASSERT_ERRNO(syscall(SYS_io_uring_setup, 1, NULL), EPERM);
        ASSERT_ERRNO(syscall(SYS_clone3, NULL, 0), ENOSYS);
        ASSERT_ERRNO(syscall(SYS_clone, CLONE_NEWNET | SIGCHLD, 0, 0, 0, 0), EPERM);
        ASSERT_ERRNO(ioctl(0, TIOCSTI, "x"), EPERM);
        ASSERT_ERRNO(syscall(SYS_ioctl, 0, (1UL << 32) | TIOCSTI, "x"), EPERM);
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        ASSERT_TRUE(fd >= 0);
        close(fd);
        /* plain fork still works */
        pid_t p = fork();
        if (p == 0)
                _exit(7);
        int st;
        ASSERT_EQ_INT(waitpid(p, &st, 0), p);
        ASSERT_EQ_INT(WEXITSTATUS(st), 7);
        /* LeakSanitizer's exit-time scan uses ptrace, which this process
         * may no longer use: leave without it */
        _exit(0);
}

TEST(seccomp_x32_kills) {
        pid_t p = fork();
        if (p == 0) {
                load_filter();
                syscall(0x40000000 | SYS_getpid);
                _exit(0);
        }
        int st;
        ASSERT_EQ_INT(waitpid(p, &st, 0), p);
        ASSERT_TRUE(WIFSIGNALED(st));
        ASSERT_EQ_INT(WTERMSIG(st), SIGSYS);
}
