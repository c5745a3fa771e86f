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
 * memfd: nothing is installed where a jail can see it. Never sanitized. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>

#include "runtime/jail_child.h"

static int number(const char *s) {
        char *end;
        long v = strtol(s, &end, 10);
        return *s && !*end && v > 0 && v < (1L << 30) ? (int) v : -1;
}

int main(int argc, char **argv) {
        /* not dumpable: the box, under the same uid, must not reach the
         * socket the result goes on. The exec already made it so (the
         * memfd is execute-only: jail_child.c); this holds wherever not */
        if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0 || argc != 3)
                _exit(125);
        int sock = number(argv[1]);
        pid_t box = number(argv[2]);
        if (sock < 0 || box < 0)
                _exit(125);
        struct sigaction dfl = { .sa_handler = SIG_DFL };
        for (int sig = 1; sig < NSIG; sig++)
                if (sig != SIGKILL && sig != SIGSTOP)
                        (void) sigaction(sig, &dfl, NULL);
        jail_init_reap(sock, box);
}
