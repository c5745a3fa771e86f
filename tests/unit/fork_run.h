/* tests/unit/fork_run.h: run one test function in a forked child with a
 * timeout (SIGALRM), shared by the unit runner and the store suite. */
#pragma once

/* Returns the child's wait status, or -1 when fork failed. A child killed by
 * a signal is reported on stderr ("killed by signal N (timeout)"). */
int test_fork_run(void (*fn)(void), unsigned timeout_s);
