/* runtime/zygote_init.c: fnbox-zygote-init, pid 1 of a python3 zygote's
 * child. The child is cloned sharing the zygote's memory (no copy of the
 * interpreter), makes its namespaces, forks the box process from that
 * memory and then execs this small static program, so that the only copy
 * of the interpreter a request pays for is the box's own. It is run as
 * `fnbox-zygote-init SOCK BOX` with the child's control socket and the
 * box's pid, and reports the box's exit there (the box itself says READY
 * once it has made its jail). No capabilities, the boxes' seccomp filter
 * and the parent-death signal it inherits; it stays in the zygote's
 * cgroup and mount, network and IPC namespaces, which the box leaves.
 * Linked into fnbox-runtime as data (zygote_blob.S) and executed from a
 * memfd: nothing is installed where a jail can see it. Never sanitized.
 *
 * One runs for every request, so it is built without a C library
 * (-nostdlib): a static glibc program spends most of a millisecond of CPU
 * starting and ending (CPU feature and cache probes with cpuid, each a
 * trap to the hypervisor in a VM, /proc/self/exe, TLS, relocations, the
 * pages it writes), and this one makes six system calls of its own. The
 * few functions jail_init_reap() (jail_child.h) uses are defined below
 * as system calls. */
#define _GNU_SOURCE
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include "runtime/jail_child.h"

#if defined(__x86_64__)
static long sys6(long n, long a, long b, long c, long d, long e, long f) {
        register long r10 __asm__("r10") = d, r8 __asm__("r8") = e, r9 __asm__("r9") = f;
        long r;
        __asm__ volatile("syscall"
                         : "=a"(r)
                         : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                         : "rcx", "r11", "memory");
        return r;
}
/* the kernel's stack at entry: argc, then argv */
__asm__(".text\n.global _start\n_start:\n"
        "  xor %rbp, %rbp\n  mov %rsp, %rdi\n  and $-16, %rsp\n  call start_c\n  hlt\n");
#elif defined(__aarch64__)
static long sys6(long n, long a, long b, long c, long d, long e, long f) {
        register long x8 __asm__("x8") = n, x0 __asm__("x0") = a, x1 __asm__("x1") = b,
                      x2 __asm__("x2") = c, x3 __asm__("x3") = d, x4 __asm__("x4") = e, x5 __asm__("x5") = f;
        __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5) : "memory");
        return x0;
}
__asm__(".text\n.global _start\n_start:\n"
        "  mov x0, sp\n  and sp, x0, #-16\n  bl start_c\n  brk #0\n");
#else
#error "fnbox-zygote-init: _start and a system call for this architecture are missing"
#endif

static int err_no;

int *__errno_location(void) {
        return &err_no;
}

static long sys(long n, long a, long b, long c, long d) {
        long r = sys6(n, a, b, c, d, 0, 0); /* sendto: no address */
        if (r < 0 && r > -4096) {
                err_no = (int) -r;
                return -1;
        }
        return r;
}

_Noreturn void _exit(int code) {
        for (;;)
                sys6(SYS_exit_group, code, 0, 0, 0, 0, 0);
}

pid_t waitpid(pid_t pid, int *status, int options) {
        return (pid_t) sys(SYS_wait4, pid, (long) status, options, 0);
}

int getrusage(__rusage_who_t who, struct rusage *usage) {
        return (int) sys(SYS_getrusage, who, (long) usage, 0, 0);
}

ssize_t send(int fd, const void *buf, size_t len, int flags) {
        return sys(SYS_sendto, fd, (long) buf, (long) len, flags);
}

/* what the compiler may call for a struct's initialisation */
void *memset(void *d, int c, size_t n) {
        unsigned char *p = d;
        while (n--)
                *p++ = (unsigned char) c;
        return d;
}

static int number(const char *s) {
        long v = 0;
        if (!*s)
                return -1;
        for (; *s; s++) {
                if (*s < '0' || *s > '9' || v >= (1L << 30))
                        return -1;
                v = v * 10 + (*s - '0');
        }
        return v > 0 && v < (1L << 30) ? (int) v : -1;
}

_Noreturn void start_c(long *sp);

_Noreturn void start_c(long *sp) {
        long argc = sp[0];
        char **argv = (char **) (sp + 1);
        /* not dumpable: the box, under the same uid, must not reach the
         * socket the result goes on. The exec already made it so (the
         * memfd is execute-only: jail_child.c); this holds wherever not */
        if (sys(SYS_prctl, PR_SET_DUMPABLE, 0, 0, 0) < 0 || argc != 3)
                _exit(125);
        int sock = number(argv[1]);
        pid_t box = number(argv[2]);
        if (sock < 0 || box < 0)
                _exit(125);
        /* exec reset every handled signal; an ignored SIGCHLD would stay
         * ignored, and then the kernel would reap the box before
         * waitpid() could report it (the kernel's struct sigaction:
         * handler, flags, restorer, mask) */
        long dfl[4] = { (long) SIG_DFL, 0, 0, 0 };
        if (sys6(SYS_rt_sigaction, SIGCHLD, (long) dfl, 0, 8, 0, 0) < 0)
                _exit(125);
        jail_init_reap(sock, box);
}
