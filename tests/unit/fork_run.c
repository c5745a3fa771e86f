/* tests/unit/fork_run.c: one test in its own process, so that a crash or a
 * hang fails that test only. */
#include "tests/unit/fork_run.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int test_fork_run(void (*fn)(void), unsigned timeout_s) {
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0) {
                perror("fork");
                return -1;
        }
        if (pid == 0) {
                alarm(timeout_s);
                fn();
                exit(0); /* runs the test's atexit clean-ups */
        }
        int st;
        while (waitpid(pid, &st, 0) < 0)
                if (errno != EINTR)
                        return -1;
        if (WIFSIGNALED(st))
                fprintf(stderr, "  killed by signal %d%s\n", WTERMSIG(st),
                        WTERMSIG(st) == SIGALRM ? " (timeout)" : "");
        return st;
}
