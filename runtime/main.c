/* runtime/main.c: fnbox-runtime, the node agent. `serve` is the daemon that
 * keeps prepared jails; `run` runs one box, in one of the daemon's jails
 * when it is there, else in a one-shot jail of its own. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "run_cmd.h"
#include "serve.h"

typedef struct Verb {
        const char *name;
        int (*fn)(int argc, char **argv);
        const char *help;
} Verb;

static const Verb verbs[] = {
        { "run", run_cmd_main, "run one box in a jail (the daemon's, or a one-shot one)" },
        { "serve", serve_cmd_main, "the runtime daemon: a pool of prepared jails on a unix socket" },
};

int main(int argc, char **argv) {
        if (argc >= 2)
                for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
                        if (strcmp(argv[1], verbs[i].name) == 0)
                                return verbs[i].fn(argc - 1, argv + 1);
        bool help = argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0);
        FILE *f = help ? stdout : stderr;
        if (argc >= 2 && !help)
                fprintf(stderr, "fnbox-runtime: unknown command '%s'\n", argv[1]);
        fprintf(f, "usage: fnbox-runtime COMMAND [OPTIONS]\n\ncommands:\n");
        for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
                fprintf(f, "  %-8s %s\n", verbs[i].name, verbs[i].help);
        return f == stderr ? 2 : 0;
}
