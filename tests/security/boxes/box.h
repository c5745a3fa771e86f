/* tests/security/boxes/box.h: what every hostile box shares. A box is one
 * program holding a table of named attacks; argv[1] picks one. Attacks
 * report each step as one line on stdout, "STEP: ok" or "STEP: errno=N",
 * written with write(2) so that nothing is lost when the box is killed. The
 * runner (tests/security/run.py) compares those lines with what it expects. */
#pragma once
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef int (*attack_fn)(int argc, char **argv);

typedef struct Attack {
        const char *name;
        attack_fn fn;
} Attack;

static void say(const char *fmt, ...) {
        char buf[4096];
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
        if (n > (int) sizeof buf - 1)
                n = sizeof buf - 1;
        for (int off = 0; off < n;) {
                ssize_t w = write(1, buf + off, (size_t) (n - off));
                if (w <= 0)
                        return;
                off += (int) w;
        }
}

/* One line for a call that returns -1 and sets errno on failure. */
static void report(const char *step, long rc, int err) {
        if (rc < 0)
                say("%s: errno=%d\n", step, err);
        else
                say("%s: ok\n", step);
}

#define TRY(step, expr)                           \
        do {                                      \
                errno = 0;                        \
                long _rc = (long) (expr);         \
                report(step, _rc, errno);         \
        } while (0)

static int box_main(const Attack *attacks, size_t n, int argc, char **argv) {
        if (argc < 2) {
                say("usage: %s ATTACK [ARGS...]\n", argv[0]);
                return 64;
        }
        for (size_t i = 0; i < n; i++)
                if (strcmp(attacks[i].name, argv[1]) == 0)
                        return attacks[i].fn(argc - 1, argv + 1);
        say("unknown attack %s\n", argv[1]);
        return 64;
}

#define BOX_MAIN(table) \
        int main(int argc, char **argv) { return box_main(table, sizeof table / sizeof table[0], argc, argv); }
