/* cli/opts.h: table-driven command-line options. Each verb has one table of
 * OptSpec (long name, short letter, value name, setter, help text); the
 * parser takes several tables at once (the verb's, then the global one), so
 * global options may appear before or after the verb. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define OPTS_POSITIONAL_MAX 64

/* Store arg (NULL for a flag) in target; a negative errno refuses it. */
typedef int (*OptFn)(void *target, const char *arg);

typedef struct OptSpec {
        const char *name;       /* long name, without "--" */
        char short_name;        /* 0: none */
        const char *arg;        /* value name for --help ("FILE"); NULL: a flag */
        OptFn fn;
        const char *help;
} OptSpec;

typedef struct OptTable {
        const OptSpec *specs;
        size_t n;
        void *target;           /* handed to every fn of this table */
} OptTable;

typedef struct OptResult {
        char *positional[OPTS_POSITIONAL_MAX];
        size_t n_positional;
        bool help;              /* -h or --help was given */
        int next;               /* with stop_at_positional: index of the first positional */
} OptResult;

/* Parse argv[0..argc). "--name VALUE", "--name=VALUE", "-x VALUE", "-xVALUE"
 * and "--" are understood; options and positionals may mix unless
 * stop_at_positional. prog names the command in messages ("fnbox deploy").
 * Returns 0, or -EINVAL after printing one line on stderr. */
int opts_parse(const OptTable *tables, size_t n_tables, int argc, char **argv,
               bool stop_at_positional, const char *prog, OptResult *ret);

/* "  -f, --file FILE   help", aligned, one line per option; with_help adds
 * "-h, --help". */
void opts_print_help(FILE *f, const OptSpec *specs, size_t n, bool with_help);

/* The closest of names[] to s (edit distance at most 2, or a prefix), or NULL. */
const char *opts_suggest(const char *s, const char *const *names, size_t n);
