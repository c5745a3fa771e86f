/* tests/unit/runner.c: runs every registered unit test in its own forked
 * process with a timeout, and ends with "N passed, N failed". An optional
 * argument runs only the tests whose names contain it. */
#include "test.h"
#include "tests/unit/fork_run.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#define TEST_TIMEOUT_S 30

static TestCase *tests;

void test_register(TestCase *t) {
        t->next = tests;
        tests = t;
}

static int run_one(const TestCase *t) {
        int st = test_fork_run(t->fn, TEST_TIMEOUT_S);
        return st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

int main(int argc, char **argv) {
        const char *filter = argc > 1 ? argv[1] : NULL;
        /* tests that make their own libuv loop need fds 0-2 taken, as the
         * jail API asks of its callers; CI runs us with no stdin */
        for (int fd = 0; fd <= 2; fd++)
                if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) != fd)
                        return 2;
        /* registration order is reversed; restore source order */
        TestCase *rev = NULL;
        while (tests) {
                TestCase *n = tests->next;
                tests->next = rev;
                rev = tests;
                tests = n;
        }
        unsigned passed = 0, failed = 0;
        for (TestCase *t = rev; t; t = t->next) {
                if (filter && !strstr(t->name, filter))
                        continue;
                int r = run_one(t);
                printf("%s %s\n", r == 0 ? "ok  " : "FAIL", t->name);
                if (r == 0)
                        passed++;
                else
                        failed++;
        }
        printf("unit: %u passed, %u failed\n", passed, failed);
        return failed ? 1 : 0;
}
