/* lib/daemon.h: what the two network daemons (fnbox-controller,
 * fnbox-activator) do alike before they serve: their command line (a table
 * of "--name VALUE" options, all strings), and giving up root. */
#pragma once

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

typedef struct DaemonOption {
        const char *name;       /* "--listen" */
        size_t offset;          /* of a `const char *` in the caller's options struct */
        const char *arg;        /* "ADDR:PORT", for usage */
        const char *help;
} DaemonOption;

/* "--name VALUE" and "--name=VALUE" into the strings of opts; a repeated
 * option keeps the last value. Returns 0, 1 after --help or -h, or -EINVAL
 * after printing "PROG: why" to stderr (an unknown option, a missing or
 * empty value). */
int daemon_options_parse(const char *prog, const DaemonOption *table, size_t n, int argc, char **argv, void *opts);
/* The table as help text, aligned, then --help. */
void daemon_options_print(FILE *f, const DaemonOption *table, size_t n);

/* Become user (by name): only its own group (setgroups), its gid, its uid,
 * then check that root cannot be regained. -ESRCH for a missing user and
 * -EPERM for root itself or a failed change, with a sentence naming --user
 * in err. Sanitizer builds stay dumpable for LeakSanitizer. */
int daemon_become_user(const char *user, uid_t *ret_uid, gid_t *ret_gid, char *err, size_t errsize);
/* Look the user up only: what daemon_become_user would become. */
int daemon_user_lookup(const char *user, uid_t *ret_uid, gid_t *ret_gid, char *err, size_t errsize);
