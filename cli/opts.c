/* cli/opts.c: the option parser behind every verb. It walks argv against a
 * list of OptSpec tables (the verb's first, then the global options), calls
 * each option's setter, collects positionals, and turns every mistake into
 * one line with a hint ("did you mean --file?"). */
#include "opts.h"

#include <errno.h>
#include <string.h>

#include "lib/util.h"

#define NAME_MAX_LEN 64

/* Levenshtein distance, for suggestions; long strings count as far apart. */
static size_t edit_distance(const char *a, const char *b) {
        size_t la = strlen(a), lb = strlen(b);
        if (la > NAME_MAX_LEN || lb > NAME_MAX_LEN)
                return (size_t) -1;
        size_t prev[NAME_MAX_LEN + 1], cur[NAME_MAX_LEN + 1];
        for (size_t j = 0; j <= lb; j++)
                prev[j] = j;
        for (size_t i = 1; i <= la; i++) {
                cur[0] = i;
                for (size_t j = 1; j <= lb; j++) {
                        size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
                        size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
                        cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
                }
                memcpy(prev, cur, sizeof cur);
        }
        return prev[lb];
}

const char *opts_suggest(const char *s, const char *const *names, size_t n) {
        const char *best = NULL;
        size_t best_d = 3;
        size_t ls = strlen(s);
        for (size_t i = 0; i < n; i++) {
                if (ls >= 2 && strncmp(names[i], s, ls) == 0)
                        return names[i];
                size_t d = edit_distance(s, names[i]);
                if (d < best_d) {
                        best_d = d;
                        best = names[i];
                }
        }
        return best;
}

static const OptSpec *find_long(const OptTable *t, size_t nt, const char *name, size_t len, void **target) {
        for (size_t i = 0; i < nt; i++)
                for (size_t j = 0; j < t[i].n; j++)
                        if (strlen(t[i].specs[j].name) == len && strncmp(t[i].specs[j].name, name, len) == 0) {
                                *target = t[i].target;
                                return &t[i].specs[j];
                        }
        return NULL;
}

static const OptSpec *find_short(const OptTable *t, size_t nt, char c, void **target) {
        for (size_t i = 0; i < nt; i++)
                for (size_t j = 0; j < t[i].n; j++)
                        if (t[i].specs[j].short_name == c) {
                                *target = t[i].target;
                                return &t[i].specs[j];
                        }
        return NULL;
}

static void unknown_option(const OptTable *t, size_t nt, const char *prog, const char *opt, size_t len) {
        const char *names[128];
        size_t n = 0;
        for (size_t i = 0; i < nt; i++)
                for (size_t j = 0; j < t[i].n && n < 127; j++)
                        names[n++] = t[i].specs[j].name;
        names[n++] = "help";
        char want[NAME_MAX_LEN + 1];
        snprintf(want, sizeof want, "%.*s", (int) (len < NAME_MAX_LEN ? len : NAME_MAX_LEN), opt);
        const char *s = opts_suggest(want, names, n);
        fprintf(stderr, "%s: unknown option '--%s'%s%s%s; see '%s --help'\n", prog, want,
                s ? " (did you mean '--" : "", s ? s : "", s ? "'?)" : "", prog);
}

static int apply(const OptSpec *s, void *target, const char *value, const char *prog) {
        int r = s->fn(target, value);
        if (r >= 0)
                return 0;
        if (r == -E2BIG)
                fprintf(stderr, "%s: --%s given too many times\n", prog, s->name);
        else
                fprintf(stderr, "%s: invalid value '%s' for --%s (%s)\n", prog, value ? value : "",
                        s->name, s->help);
        return -EINVAL;
}

/* One "--name[=value]" at argv[*i]; may consume argv[*i + 1]. */
static int parse_long(const OptTable *t, size_t nt, int argc, char **argv, int *i, const char *prog) {
        const char *a = argv[*i] + 2, *eq = strchr(a, '=');
        size_t len = eq ? (size_t) (eq - a) : strlen(a);
        void *target = NULL;
        const OptSpec *s = find_long(t, nt, a, len, &target);
        if (!s) {
                unknown_option(t, nt, prog, a, len);
                return -EINVAL;
        }
        if (!s->arg) {
                if (eq) {
                        fprintf(stderr, "%s: --%s takes no value\n", prog, s->name);
                        return -EINVAL;
                }
                return apply(s, target, NULL, prog);
        }
        const char *v = eq ? eq + 1 : NULL;
        if (!v && *i + 1 < argc)
                v = argv[++*i];
        if (!v) {
                fprintf(stderr, "%s: --%s needs a value (%s)\n", prog, s->name, s->arg);
                return -EINVAL;
        }
        return apply(s, target, v, prog);
}

/* One "-x", "-xVALUE", "-x VALUE" or a cluster of flags "-xy". */
static int parse_short(const OptTable *t, size_t nt, int argc, char **argv, int *i, const char *prog) {
        const char *a = argv[*i] + 1;
        for (; *a; a++) {
                void *target = NULL;
                const OptSpec *s = find_short(t, nt, *a, &target);
                if (!s) {
                        fprintf(stderr, "%s: unknown option '-%c'; see '%s --help'\n", prog, *a, prog);
                        return -EINVAL;
                }
                if (!s->arg) {
                        if (apply(s, target, NULL, prog) < 0)
                                return -EINVAL;
                        continue;
                }
                const char *v = a[1] ? a + 1 : (*i + 1 < argc ? argv[++*i] : NULL);
                if (!v) {
                        fprintf(stderr, "%s: -%c needs a value (%s)\n", prog, *a, s->arg);
                        return -EINVAL;
                }
                return apply(s, target, v, prog);
        }
        return 0;
}

static bool is_help(const char *a) {
        return strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0;
}

static int add_positional(OptResult *ret, char *a, const char *prog) {
        if (ret->n_positional >= OPTS_POSITIONAL_MAX) {
                fprintf(stderr, "%s: too many arguments (at most %d)\n", prog, OPTS_POSITIONAL_MAX);
                return -EINVAL;
        }
        ret->positional[ret->n_positional++] = a;
        return 0;
}

int opts_parse(const OptTable *tables, size_t n_tables, int argc, char **argv,
               bool stop_at_positional, const char *prog, OptResult *ret) {
        bool only_positional = false;
        *ret = (OptResult) { .next = argc };
        for (int i = 0; i < argc; i++) {
                char *a = argv[i];
                int r = 0;
                if (only_positional || a[0] != '-' || a[1] == 0) {
                        if (stop_at_positional) {
                                ret->next = i;
                                return 0;
                        }
                        r = add_positional(ret, a, prog);
                } else if (strcmp(a, "--") == 0) {
                        only_positional = true;
                        if (stop_at_positional) {
                                ret->next = i + 1;
                                return 0;
                        }
                } else if (is_help(a))
                        ret->help = true;
                else if (a[1] == '-')
                        r = parse_long(tables, n_tables, argc, argv, &i, prog);
                else
                        r = parse_short(tables, n_tables, argc, argv, &i, prog);
                if (r < 0)
                        return r;
        }
        return 0;
}

void opts_print_help(FILE *f, const OptSpec *specs, size_t n, bool with_help) {
        static const OptSpec help = { "help", 'h', NULL, NULL, "show this help" };
        char col[65][96];
        int width = 0;
        if (n > 64)
                n = 64;
        for (size_t i = 0; i <= n; i++) {
                const OptSpec *s = i < n ? &specs[i] : &help;
                char sh[8] = "    ";
                if (i == n && !with_help)
                        break;
                if (s->short_name)
                        snprintf(sh, sizeof sh, "-%c, ", s->short_name);
                int w = snprintf(col[i], sizeof col[i], "%s--%s%s%s", sh, s->name,
                                 s->arg ? " " : "", s->arg ? s->arg : "");
                if (w > width && w < (int) sizeof col[i])
                        width = w;
        }
        for (size_t i = 0; i < n + with_help; i++)
                fprintf(f, "  %-*s  %s\n", width, col[i], i < n ? specs[i].help : help.help);
}
