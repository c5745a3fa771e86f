/* tests/security/boxes/procs.c: attacks on the process limits: fork bombs,
 * a daemon that tries to outlive the box, signals the box will not obey,
 * and CPU spinning on every core. */
#include "box.h"

#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

/* Processes of the jail this box can see in /proc. */
static int count_procs(void) {
        DIR *d = opendir("/proc");
        if (!d)
                return -1;
        int n = 0;
        struct dirent *e;
        while ((e = readdir(d)))
                n += e->d_name[0] >= '0' && e->d_name[0] <= '9';
        closedir(d);
        return n;
}

/* Fork children that wait, until the pids limit refuses one. */
static int forkcount(int argc, char **argv) {
        int n = 0;
        for (;;) {
                pid_t p = fork();
                if (p == 0) {
                        pause();
                        _exit(0);
                }
                if (p < 0) {
                        say("fork: errno=%d after %d\n", errno, n);
                        return 0;
                }
                if (++n > 100000) {
                        say("fork: never refused\n");
                        return 1;
                }
        }
}

/* A real bomb: every child forks forever. The box itself then asks for one
 * more process and reports how many it can see. */
static int forkbomb(int argc, char **argv) {
        pid_t p = fork();
        if (p == 0) {
                for (;;)
                        (void) fork();
        }
        struct timespec t = { 1, 0 };
        nanosleep(&t, NULL);
        pid_t q = fork();
        if (q == 0)
                _exit(0);
        say("bomb fork: %s%d\n", q < 0 ? "errno=" : "pid=", q < 0 ? errno : (int) q);
        say("bomb procs: %d\n", count_procs());
        return 0;
}

/* Classic double fork: the grandchild starts its own session, keeps stdout
 * open and sleeps; its parents exit at once. */
static int daemonize(int argc, char **argv) {
        pid_t p = fork();
        if (p < 0)
                return say("fork: errno=%d\n", errno), 1;
        if (p == 0) {
                setsid();
                signal(SIGHUP, SIG_IGN);
                if (fork() == 0) {
                        sleep(30);
                        say("daemon: still alive\n");
                        _exit(0);
                }
                _exit(0);
        }
        waitpid(p, NULL, 0);
        say("parent: exiting\n");
        return 0;
}

/* Ignore every signal that can be ignored, take a SIGTERM, try to ignore
 * SIGKILL and SIGSTOP, then stop ourselves: only the deadline ends this. */
static int sigstop(int argc, char **argv) {
        for (int s = 1; s < NSIG; s++)
                if (s != SIGKILL && s != SIGSTOP)
                        signal(s, SIG_IGN);
        TRY("raise SIGTERM", raise(SIGTERM));
        say("after SIGTERM: alive\n");
        struct sigaction sa = { .sa_handler = SIG_IGN };
        TRY("ignore SIGKILL", sigaction(SIGKILL, &sa, NULL));
        TRY("ignore SIGSTOP", sigaction(SIGSTOP, &sa, NULL));
        say("stopping\n");
        kill(getpid(), SIGSTOP);
        say("continued\n");
        return 0;
}

static void *spin(void *arg) {
        for (volatile unsigned long i = 0;; i++)
                ;
        return arg;
}

static double clock_ms(clockid_t c) {
        struct timespec t;
        clock_gettime(c, &t);
        return (double) t.tv_sec * 1e3 + (double) t.tv_nsec / 1e6;
}

/* Busy threads on more cores than the box may use. With a duration (ms) the
 * box stops after it and reports the CPU time it got against the wall time;
 * without one it spins until it is killed. */
static int cpuspin(int argc, char **argv) {
        int n = argc > 1 ? atoi(argv[1]) : 4;
        double ms = argc > 2 ? atof(argv[2]) : 0;
        for (int i = 1; i < n; i++) {
                pthread_t t;
                pthread_create(&t, NULL, spin, NULL);
        }
        say("spinning: %d threads\n", n);
        if (ms <= 0)
                spin(NULL);
        double w0 = clock_ms(CLOCK_MONOTONIC), c0 = clock_ms(CLOCK_PROCESS_CPUTIME_ID);
        while (clock_ms(CLOCK_MONOTONIC) - w0 < ms)
                ;
        double wall = clock_ms(CLOCK_MONOTONIC) - w0, cpu = clock_ms(CLOCK_PROCESS_CPUTIME_ID) - c0;
        say("cpu: %.0f ms in %.0f ms wall\n", cpu, wall);
        return 0;
}

static const Attack attacks[] = {
        { "forkcount", forkcount },
        { "forkbomb", forkbomb },
        { "daemon", daemonize },
        { "sigstop", sigstop },
        { "cpuspin", cpuspin },
};

BOX_MAIN(attacks)
