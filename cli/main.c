/* cli/main.c: `fnbox`, the command-line client of the control API. Parses
 * the global options, finds the verb in the verb table, parses the verb's
 * options (table-driven, see opts.h), resolves the settings (config.h) and
 * runs the verb. Exit codes are in cli.h and docs/cli.md. */
#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "opts.h"
#include "lib/util.h"

#define FNBOX_VERSION "0.3.0"

/* ---- option setters ----------------------------------------------------- */

static int set_url(void *t, const char *a) { ((CliFlags *) t)->url = a; return 0; }
static int set_token(void *t, const char *a) { ((CliFlags *) t)->token = a; return 0; }
static int set_namespace(void *t, const char *a) { ((CliFlags *) t)->namespace_ = a; return 0; }
static int set_timeout(void *t, const char *a) { ((CliFlags *) t)->timeout = a; return 0; }
static int set_output(void *t, const char *a) {
        if (output_format_from_string(a) < 0)
                return -EINVAL;
        ((CliFlags *) t)->output = a;
        return 0;
}

static int set_file(void *t, const char *a) { ((VerbArgs *) t)->file = a; return 0; }
static int set_all(void *t, const char *a) { (void) a; ((VerbArgs *) t)->all_namespaces = true; return 0; }
static int set_role(void *t, const char *a) { ((VerbArgs *) t)->role = a; return 0; }
static int set_namespaces(void *t, const char *a) { ((VerbArgs *) t)->namespaces = a; return 0; }
static int set_description(void *t, const char *a) { ((VerbArgs *) t)->description = a; return 0; }
static int set_data(void *t, const char *a) { ((VerbArgs *) t)->data = a; return 0; }
static int set_call_tag(void *t, const char *a) { ((VerbArgs *) t)->tag = a; return 0; }
static int set_path(void *t, const char *a) { ((VerbArgs *) t)->path = a; return 0; }
static int set_method(void *t, const char *a) { ((VerbArgs *) t)->method = a; return 0; }
static int set_activator(void *t, const char *a) { ((VerbArgs *) t)->activator = a; return 0; }
static int set_tail(void *t, const char *a) { ((VerbArgs *) t)->tail = a; return 0; }
static int set_alias(void *t, const char *a) { ((VerbArgs *) t)->alias = a; return 0; }
static int set_since(void *t, const char *a) { ((VerbArgs *) t)->since = a; return 0; }
static int set_limit(void *t, const char *a) { ((VerbArgs *) t)->limit = a; return 0; }
static int set_data_dir(void *t, const char *a) { ((VerbArgs *) t)->data_dir = a; return 0; }
static int set_store(void *t, const char *a) { ((VerbArgs *) t)->store = a; return 0; }
static int set_listen(void *t, const char *a) { ((VerbArgs *) t)->listen = a; return 0; }
static int set_api_listen(void *t, const char *a) { ((VerbArgs *) t)->api_listen = a; return 0; }
static int set_user(void *t, const char *a) { ((VerbArgs *) t)->user = a; return 0; }
static int set_node(void *t, const char *a) { ((VerbArgs *) t)->node = a; return 0; }
static int set_run_dir(void *t, const char *a) { ((VerbArgs *) t)->run_dir = a; return 0; }
static int set_ready_timeout(void *t, const char *a) { ((VerbArgs *) t)->ready_timeout = a; return 0; }
static int set_runtime(void *t, const char *a) { ((VerbArgs *) t)->runtime = a; return 0; }
static int set_model(void *t, const char *a) { ((VerbArgs *) t)->model = a; return 0; }
static int set_rounds(void *t, const char *a) { ((VerbArgs *) t)->rounds = a; return 0; }
static int set_name(void *t, const char *a) { ((VerbArgs *) t)->name = a; return 0; }
static int add_example(void *t, const char *a) {
        VerbArgs *v = t;
        if (v->n_examples >= CLI_EXAMPLES_MAX)
                return -E2BIG;
        v->examples[v->n_examples++] = a;
        return 0;
}
static int add_file(void *t, const char *a) {
        VerbArgs *v = t;
        if (v->n_files >= CLI_FILES_MAX)
                return -E2BIG;
        if (!*a)
                return -EINVAL;
        v->files[v->n_files++] = a;
        return 0;
}
static int set_output_dir(void *t, const char *a) {
        if (!*a)
                return -EINVAL;
        ((VerbArgs *) t)->output_dir = a;
        return 0;
}
static int set_check(void *t, const char *a) { (void) a; ((VerbArgs *) t)->check = true; return 0; }
static int set_no_config(void *t, const char *a) { (void) a; ((VerbArgs *) t)->no_config = true; return 0; }
static int add_header(void *t, const char *a) {
        VerbArgs *v = t;
        if (v->n_headers >= CLI_HEADERS_MAX)
                return -E2BIG;
        v->headers[v->n_headers++] = a;
        return 0;
}
static int add_label(void *t, const char *a) {
        VerbArgs *v = t;
        if (v->n_labels >= CLI_LABELS_MAX)
                return -E2BIG;
        if (!strchr(a, '='))
                return -EINVAL;
        v->labels[v->n_labels++] = a;
        return 0;
}
static int add_tag(void *t, const char *a) {
        VerbArgs *v = t;
        if (v->n_tags >= CLI_TAGS_MAX)
                return -E2BIG;
        if (!strchr(a, '='))
                return -EINVAL;
        v->tags[v->n_tags++] = a;
        return 0;
}

/* ---- the tables --------------------------------------------------------- */

static const OptSpec global_opts[] = {
        { "url", 0, "URL", set_url, "control API address (FNBOX_URL; default " CLI_DEFAULT_URL ")" },
        { "token", 0, "TOKEN", set_token, "bearer token (FNBOX_TOKEN; else the config file, else a readable admin.token)" },
        { "namespace", 'n', "NS", set_namespace, "namespace (FNBOX_NAMESPACE; default " CLI_DEFAULT_NAMESPACE ")" },
        { "output", 'o', "FORMAT", set_output, "table, wide, json or yaml (default table)" },
        { "timeout", 0, "DURATION", set_timeout, "limit for each request, such as 30s (default 60s)" },
};

static const OptSpec deploy_opts[] = {
        { "file", 'f', "FILE|DIR", set_file, "a manifest file (one or more documents) or a folder of *.yaml/*.yml" },
};
static const OptSpec list_opts[] = {
        { "all-namespaces", 'A', NULL, set_all, "list every namespace the token may see" },
};
static const OptSpec traffic_opts[] = {
        { "tag", 0, "REV=TAG", add_tag, "give REV (a revision, its number, or @latest) the tag TAG; TAG empty removes it" },
};
static const OptSpec call_opts[] = {
        { "data", 'd', "DATA|@FILE|@-", set_data, "the request body: text, a file's bytes, or stdin's (then POST)" },
        { "header", 'H', "NAME:VALUE", add_header, "a request header (repeatable)" },
        { "tag", 0, "TAG", set_call_tag, "call the revision with this traffic tag (NAME@TAG)" },
        { "path", 0, "/SUB[?QUERY]", set_path, "a path below the function's address" },
        { "request", 'X', "METHOD", set_method, "the HTTP method (default POST with -d, else GET)" },
        { "activator", 0, "URL", set_activator, "invocation address (FNBOX_ACTIVATOR; default " CLI_DEFAULT_ACTIVATOR ")" },
        { "file", 0, "PATH", add_file, "an input file, at /input/NAME in the box (repeatable; runs in a session)" },
        { "output-dir", 0, "DIR", set_output_dir, "where the box's /output goes (default ./fnbox-output/SESSION)" },
};
static const OptSpec replay_opts[] = {
        { "output-dir", 0, "DIR", set_output_dir, "where the replay's /output goes (default ./fnbox-output/NEW)" },
        { "check", 0, NULL, set_check, "exit 1 when stdout, output or status differ from the original" },
};
static const OptSpec logs_opts[] = {
        { "tail", 0, "N", set_tail, "the last N lines (1 to 1000; default 100)" },
};
static const OptSpec llm_log_opts[] = {
        { "alias", 0, "ALIAS", set_alias, "only requests for this model alias" },
        { "since", 0, "DURATION", set_since, "only requests that started this long ago or later (90s, 15m, 2h, 7d)" },
        { "limit", 0, "N", set_limit, "at most N records, newest first (1 to 1000; default 50)" },
        { "all-namespaces", 'A', NULL, set_all, "every namespace (needs a token for every namespace)" },
};
static const OptSpec up_opts[] = {
        { "data-dir", 0, "DIR", set_data_dir, "the controller's data folder (default /var/lib/fnbox)" },
        { "store", 0, "URL", set_store, "sqlite:PATH or postgres://... (default sqlite:DATA_DIR/fnbox.db)" },
        { "listen", 0, "ADDR:PORT", set_listen, "the activator's address, for /fn/NAME (default 127.0.0.1:8080)" },
        { "api-listen", 0, "ADDR:PORT", set_api_listen, "the control API's address (default 127.0.0.1:8081)" },
        { "label", 0, "KEY=VALUE", add_label, "a label of this node, for nodeSelector (repeatable)" },
        { "node", 0, "NAME", set_node, "this node's name (default: the host name)" },
        { "user", 0, "NAME", set_user, "the user the controller and activator run as (default fnbox)" },
        { "run-dir", 0, "DIR", set_run_dir, "where the runtime's sockets go (default /run/fnbox)" },
        { "ready-timeout", 0, "DURATION", set_ready_timeout, "how long each daemon may take to be ready (default 60s)" },
        { "no-config", 0, NULL, set_no_config, "do not write the CLI config file" },
};
static const OptSpec skill_generate_opts[] = {
        { "runtime", 0, "RUNTIME", set_runtime, "python3, node or sh (default python3)" },
        { "example", 0, "IN=>OUT", add_example, "an input and the output it must give (repeatable; each becomes a test)" },
        { "model", 0, "ALIAS", set_model, "the LLM gateway's model alias to ask (default: the controller's)" },
        { "rounds", 0, "N", set_rounds, "at most N rounds of writing and testing (1 to 20; default 4)" },
        { "name", 0, "NAME", set_name, "the skill's name: 1 to 40 of a-z, 0-9 and '-' (default: from the task)" },
        { "file", 0, "PATH", add_file, "an input file every test gets at /input/NAME (repeatable)" },
};
static const OptSpec skill_search_opts[] = {
        { "limit", 0, "N", set_limit, "at most N skills, best first (1 to 100; default 5)" },
};
static const OptSpec skill_call_opts[] = {
        { "data", 'd', "DATA|@FILE|@-", set_data, "the request body: text, a file's bytes, or stdin's (then POST)" },
        { "header", 'H', "NAME:VALUE", add_header, "a request header (repeatable)" },
        { "path", 0, "/SUB[?QUERY]", set_path, "a path below the skill's address" },
        { "request", 'X', "METHOD", set_method, "the HTTP method (default POST with -d, else GET)" },
        { "activator", 0, "URL", set_activator, "invocation address (FNBOX_ACTIVATOR; default " CLI_DEFAULT_ACTIVATOR ")" },
        { "file", 0, "PATH", add_file, "an input file, at /input/NAME in the box (repeatable; runs in a session)" },
        { "output-dir", 0, "DIR", set_output_dir, "where the box's /output goes (default ./fnbox-output/SESSION)" },
};
static const OptSpec token_create_opts[] = {
        { "role", 0, "ROLE", set_role, "admin, developer or invoker" },
        { "namespace", 'n', "NS[,NS]", set_namespaces, "namespaces the token may touch" },
        { "description", 0, "TEXT", set_description, "what the token is for" },
};

typedef struct Verb {
        const char *name;
        const char *args;               /* after "fnbox NAME" in the usage line */
        const char *summary;
        const char *description;
        const OptSpec *opts;
        size_t n_opts;
        size_t min_pos, max_pos;
        VerbFn fn;
        const struct Verb *subs;
        size_t n_subs;
} Verb;

#define OPTS(t) t, ELEMENTSOF(t)

static const Verb token_verbs[] = {
        { "create", "--role ROLE [--namespace NS[,NS]] [--description TEXT]", "create a token (shown once)",
          "Create a bearer token with a role (admin, developer, invoker) scoped to namespaces.\n"
          "The token itself is printed only now; store it safely. Needs an admin token.",
          OPTS(token_create_opts), 0, 0, token_create_main, NULL, 0 },
        { "list", "", "list tokens (never their secrets)",
          "List every token: id, role, namespaces, description, creation time, revoked or not.",
          NULL, 0, 0, 0, token_list_main, NULL, 0 },
        { "revoke", "ID", "revoke a token at once",
          "Revoke the token ID; requests that carry it get 401 from now on.",
          NULL, 0, 1, 1, token_revoke_main, NULL, 0 },
};

static const Verb llm_verbs[] = {
        { "log", "[--alias ALIAS] [--since DURATION] [--limit N]", "show the LLM gateway's audit log",
          "Show the gateway's record of each LLM request of the namespace (-n NS, or -A for all),\n"
          "newest first: when, the caller, the model alias, the upstream that answered, the status,\n"
          "tokens in/out (* when the gateway counted them), latency and the data rules that\n"
          "fired. -o wide adds the request id, the fallback chain and the time to first token;\n"
          "-o json and -o yaml print the records whole, with bodies where the namespace keeps them.\n"
          "Needs a developer token of the namespace.",
          OPTS(llm_log_opts), 0, 0, llm_log_main, NULL, 0 },
};

static const Verb skill_verbs[] = {
        { "generate", "\"TASK\" [--runtime RUNTIME] [--example IN=>OUT]... [--model ALIAS] [--rounds N] [--name NAME]"
                      " [--file PATH]...",
          "have an LLM write a box and its tests, verified in the jail",
          "Start a generate job on the controller: a model writes a box for TASK and its tests, the\n"
          "platform runs every test in a fresh jail and sends the failures back, for at most --rounds\n"
          "rounds. Prints a line per change on stderr (round, tests passed, tokens), then the\n"
          "candidate NAME@VERSION (exit 0), or the last round's failures (exit 9). -o json prints the\n"
          "whole job with every round's code and results. With --file, every test runs with those\n"
          "files at /input. Needs a developer token.",
          OPTS(skill_generate_opts), 1, 1, skill_generate_main, NULL, 0 },
        { "list", "[NAME]", "list skills, or the versions of one",
          "Without NAME, list the skills of the namespace: the newest promoted version, the newest\n"
          "version of any state, runtime and description. With NAME, list its versions.",
          NULL, 0, 0, 1, skill_list_main, NULL, 0 },
        { "show", "NAME[@VERSION]", "show a skill version: code digest, tests, evidence, provenance",
          "Show a skill version (NAME alone: the newest promoted one): state, runtime, description,\n"
          "code digest, parent, who created, promoted or deprecated it and when, its provenance\n"
          "(model, prompt digest, tokens), its tests and the evidence of every round.",
          NULL, 0, 1, 1, skill_show_main, NULL, 0 },
        { "search", "\"QUERY\" [--limit N]", "find skills by what they do",
          "Search the skills of the namespace: lexical ranking over name, description and the code's\n"
          "identifiers, merged with embeddings when the controller has an embedding model.\n"
          "Prints each hit's score and its lexical and semantic parts.",
          OPTS(skill_search_opts), 1, 1, skill_search_main, NULL, 0 },
        { "promote", "NAME[@VERSION]", "re-run a candidate's tests and promote it",
          "Re-run the tests of a candidate (NAME alone: the newest candidate) in fresh jails and,\n"
          "when all pass, promote it: NAME then means this version, at /skills/NAME. Failing tests\n"
          "are printed (exit 9). Needs a developer or admin token of the namespace.",
          NULL, 0, 1, 1, skill_promote_main, NULL, 0 },
        { "deprecate", "NAME[@VERSION]", "deprecate a skill version (or every version)",
          "Deprecate NAME@VERSION (NAME alone: every version). A deprecated version is no longer\n"
          "what NAME means, but NAME@VERSION keeps working. Needs a developer token.",
          NULL, 0, 1, 1, skill_deprecate_main, NULL, 0 },
        { "call", "NAME[@VERSION] [--file PATH]... [--output-dir DIR]", "call a skill over HTTP and print its answer",
          "Send a request to a promoted skill through the activator (/skills/NAME, /skills/NAME@3,\n"
          "/skills/NS/NAME) and print the body of the answer on stdout; errors and exit codes as\n"
          "for 'fnbox call', --file and --output-dir too (a session).",
          OPTS(skill_call_opts), 1, 1, skill_call_main, NULL, 0 },
};

static const Verb verbs[] = {
        { "deploy", "-f FILE|DIR", "validate manifests, upload code, deploy functions",
          "Validate every manifest in FILE (several YAML documents allowed) or in the folder DIR\n"
          "(*.yaml and *.yml, not recursive) before anything is uploaded; then pack each\n"
          "function's code, upload it unless the server has it, and deploy. A deploy that\n"
          "changed neither spec nor code creates no revision and says so.",
          OPTS(deploy_opts), 0, 1, deploy_main, NULL, 0 },
        { "list", "[-A]", "list functions",
          "List the functions of the namespace (every namespace the token may see with -A).",
          OPTS(list_opts), 0, 0, list_main, NULL, 0 },
        { "describe", "NAME", "show one function",
          "Show a function: its latest revision, spec, limits, scale and traffic, and, once the\n"
          "platform runs it, per revision the desired and ready instances, the queue, why it\n"
          "cannot be scheduled, and the recent scaling decisions with their reasons.",
          NULL, 0, 1, 1, describe_main, NULL, 0 },
        { "delete", "NAME", "delete a function and its revisions",
          "Delete a function, its revisions and its traffic routes.",
          NULL, 0, 1, 1, delete_main, NULL, 0 },
        { "revisions", "NAME", "list a function's revisions, newest first",
          "List the revisions of a function, newest first, with their code digests and traffic.",
          NULL, 0, 1, 1, revisions_main, NULL, 0 },
        { "traffic", "NAME [REV=PCT|@latest=PCT]... [--tag REV=TAG]...", "show or split traffic",
          "Without assignments, show the traffic of NAME. With them, replace the split: REV is a\n"
          "revision name (NAME-00002) or its number (2), @latest follows the newest revision;\n"
          "percentages must sum to 100. Tags stay with their revision unless --tag changes them.",
          OPTS(traffic_opts), 1, 1 + CLI_TAGS_MAX, traffic_main, NULL, 0 },
        { "call", "NAME [--file PATH]... [--output-dir DIR]", "call a function over HTTP and print its answer",
          "Send a request to NAME through the activator (/fn/NAME, /fn/NS/NAME, /fn/NAME@TAG)\n"
          "and print the body of the answer on stdout. A 2xx answer exits 0; any other prints\n"
          "the error on stderr and exits non-zero (9 when the function itself failed).\n"
          "With --file (or --output-dir) the call runs in a session: the files are read-only at\n"
          "/input/NAME in the box, and what the box writes to /output is written into DIR\n"
          "(default ./fnbox-output/SESSION). 'fnbox replay SESSION' runs it again.",
          OPTS(call_opts), 1, 1, call_main, NULL, 0 },
        { "replay", "SESSION [--output-dir DIR] [--check]", "run a session again and compare",
          "Run the revision that ran SESSION again, with the same input files and stdin, as a new\n"
          "session; print its stdout, write its /output into DIR (default ./fnbox-output/NEW), and\n"
          "say on stderr whether stdout, output and status are the same as the original's.\n"
          "--check: exit 1 when any differs. -o json or yaml prints the server's answer instead of\n"
          "stdout. Needs an invoker token of the session's namespace.",
          OPTS(replay_opts), 1, 1, replay_main, NULL, 0 },
        { "sessions", "[list] | show SESSION | delete SESSION", "list, show or delete sessions",
          "Without arguments (or with list), list the sessions of the namespace, newest first: id,\n"
          "function, state, the revision that ran, how it ended, when it was created and when it\n"
          "expires. 'show SESSION' prints one: its revision and code digest, input and output\n"
          "files, stdin, stdout and result. 'delete SESSION' deletes it (developer token).",
          NULL, 0, 0, 2, sessions_main, NULL, 0 },
        { "logs", "NAME", "show recent stderr of a function's instances",
          "Print the recent stderr lines of NAME's instances, oldest first, with the time and the\n"
          "instance. The controller keeps the last 1000 lines of each function.",
          OPTS(logs_opts), 1, 1, logs_main, NULL, 0 },
        { "nodes", "", "list the nodes (runtimes) and their state",
          "List the nodes that registered with the controller: state, labels, capacity,\n"
          "instances and the age of the last heartbeat (-o wide: more). Needs an admin token.",
          NULL, 0, 0, 0, nodes_main, NULL, 0 },
        { "up", "", "start the platform on this machine, in the foreground",
          "Start fnbox-controller, then fnbox-runtime and fnbox-activator (found next to this\n"
          "fnbox), wait until each is ready, print where they listen, and run until Ctrl-C or\n"
          "SIGTERM, which stops all three. Needs root (the runtime makes namespaces and\n"
          "cgroups). Writes the CLI config so that fnbox in another terminal finds them.",
          OPTS(up_opts), 0, 0, NULL, NULL, 0 },
        { "token", "create|list|revoke", "manage API tokens (admin)",
          "Create, list and revoke bearer tokens. Needs an admin token.",
          NULL, 0, 0, 0, NULL, token_verbs, ELEMENTSOF(token_verbs) },
        { "skill", "generate|list|show|search|promote|deprecate|call", "the skill library: generate, promote, search, call",
          "Commands for the skill library: boxes written by an LLM, verified in the jail, promoted\n"
          "into immutable versions, searched and called like functions.",
          NULL, 0, 0, 0, NULL, skill_verbs, ELEMENTSOF(skill_verbs) },
        { "llm", "log", "the LLM gateway: its audit log",
          "Commands for the LLM gateway.",
          NULL, 0, 0, 0, NULL, llm_verbs, ELEMENTSOF(llm_verbs) },
        { "version", "", "print the CLI's version", "Print the version of this fnbox CLI.",
          NULL, 0, 0, 0, NULL, NULL, 0 },
};

/* ---- help --------------------------------------------------------------- */

static void verb_list(FILE *f, const Verb *v, size_t n) {
        for (size_t i = 0; i < n; i++)
                fprintf(f, "  %-10s  %s\n", v[i].name, v[i].summary);
}

static void main_usage(FILE *f) {
        fputs("usage: fnbox [OPTIONS] COMMAND [ARGS...]\n\n"
              "Deploy and manage functions on an fnbox control plane.\n\nCommands:\n", f);
        verb_list(f, verbs, ELEMENTSOF(verbs));
        fputs("\nGlobal options (before or after the command):\n", f);
        opts_print_help(f, global_opts, ELEMENTSOF(global_opts), true);
        fputs("\nSettings: flag, then FNBOX_URL / FNBOX_TOKEN / FNBOX_NAMESPACE, then the config file\n"
              "($FNBOX_CONFIG or ~/.config/fnbox/config.yaml), then the default.\n"
              "Exit codes: 0 ok, 1 error, 2 usage, 3 invalid manifest, 4 unauthenticated,\n"
              "5 forbidden, 6 not found, 7 conflict, 8 server unreachable, 9 the function\n"
              "failed (call) (docs/cli.md).\n"
              "Run 'fnbox COMMAND --help' for a command's options.\n", f);
}

static void verb_usage(FILE *f, const char *prog, const Verb *v) {
        fprintf(f, "usage: %s %s%s[OPTIONS]\n\n%s\n", prog, v->args, *v->args ? " " : "", v->description);
        if (v->subs) {
                fputs("\nCommands:\n", f);
                verb_list(f, v->subs, v->n_subs);
                fprintf(f, "\nRun '%s COMMAND --help' for a command's options.\n", prog);
                return;
        }
        if (v->n_opts) {
                fputs("\nOptions:\n", f);
                opts_print_help(f, v->opts, v->n_opts, false);
        }
        /* the verb's own options shadow global ones of the same name */
        OptSpec shown[ELEMENTSOF(global_opts)];
        size_t n = 0;
        for (size_t i = 0; i < ELEMENTSOF(global_opts); i++) {
                bool shadowed = false;
                for (size_t j = 0; j < v->n_opts; j++)
                        shadowed = shadowed || strcmp(v->opts[j].name, global_opts[i].name) == 0;
                if (!shadowed)
                        shown[n++] = global_opts[i];
        }
        fputs("\nGlobal options:\n", f);
        opts_print_help(f, shown, n, true);
}

/* ---- dispatch ----------------------------------------------------------- */

static const Verb *verb_find(const char *prog, const Verb *v, size_t n, const char *name) {
        const char *names[32];
        for (size_t i = 0; i < n; i++)
                if (strcmp(v[i].name, name) == 0)
                        return &v[i];
        for (size_t i = 0; i < n && i < ELEMENTSOF(names); i++)
                names[i] = v[i].name;
        const char *s = opts_suggest(name, names, n < ELEMENTSOF(names) ? n : ELEMENTSOF(names));
        char shown[64];
        fprintf(stderr, "%s: unknown command '%s'%s%s%s; see '%s --help'\n", prog,
                output_sanitize(name, shown, sizeof shown), s ? " (did you mean '" : "", s ? s : "",
                s ? "'?)" : "", prog);
        return NULL;
}

static void cli_done(Cli *c) {
        free(c->url);
        if (c->token)
                explicit_bzero(c->token, strlen(c->token));
        free(c->token);
        free(c->namespace_);
        free(c->activator);
        c->http = http_free(c->http);
}

static int verb_execute(const Verb *v, CliFlags *flags, VerbArgs *args, const char *prog) {
        Cli c = { .prog = prog };
        if (strcmp(v->name, "version") == 0) {
                printf("fnbox %s\n", FNBOX_VERSION);
                return CLI_EXIT_OK;
        }
        if (strcmp(v->name, "up") == 0)
                return up_main(args, prog);
        if (config_resolve(flags, &c) < 0) {
                cli_done(&c);
                return CLI_EXIT_USAGE;
        }
        int r = http_new(c.url, c.token, c.timeout_ms, &c.http);
        if (r < 0) {
                fprintf(stderr, "%s: cannot set up the HTTP client: %s\n", prog, strerror(-r));
                cli_done(&c);
                return CLI_EXIT_ERROR;
        }
        r = v->fn(&c, args);
        fflush(stdout);
        cli_done(&c);
        return r;
}

static int verb_run(const Verb *v, CliFlags *flags, int argc, char **argv, const char *parent);

/* "token [GLOBAL OPTIONS] create ...": global options may come before the
 * sub-verb too. */
static int verb_run_sub(const Verb *v, CliFlags *flags, int argc, char **argv, const char *prog) {
        OptTable global = { OPTS(global_opts), flags };
        OptResult res;
        if (opts_parse(&global, 1, argc, argv, true, prog, &res) < 0)
                return CLI_EXIT_USAGE;
        if (res.help || res.next >= argc) {
                verb_usage(res.help ? stdout : stderr, prog, v);
                return res.help ? CLI_EXIT_OK : CLI_EXIT_USAGE;
        }
        const Verb *s = verb_find(prog, v->subs, v->n_subs, argv[res.next]);
        return s ? verb_run(s, flags, argc - res.next - 1, argv + res.next + 1, prog) : CLI_EXIT_USAGE;
}

static int verb_run(const Verb *v, CliFlags *flags, int argc, char **argv, const char *parent) {
        char prog[64];
        snprintf(prog, sizeof prog, "%s %s", parent, v->name);
        if (v->subs)
                return verb_run_sub(v, flags, argc, argv, prog);
        VerbArgs args = { 0 };
        OptTable tables[] = { { v->opts, v->n_opts, &args }, { OPTS(global_opts), flags } };
        OptResult res;
        if (opts_parse(tables, ELEMENTSOF(tables), argc, argv, false, prog, &res) < 0)
                return CLI_EXIT_USAGE;
        if (res.help) {
                verb_usage(stdout, prog, v);
                return CLI_EXIT_OK;
        }
        if (res.n_positional < v->min_pos || res.n_positional > v->max_pos) {
                fprintf(stderr, "%s: expected %s%s; see '%s --help'\n", prog,
                        *v->args ? v->args : "no arguments", *v->args ? " as arguments" : "", prog);
                return CLI_EXIT_USAGE;
        }
        args.pos = res.positional;
        args.n_pos = res.n_positional;
        return verb_execute(v, flags, &args, prog);
}

int main(int argc, char **argv) {
        CliFlags flags = { 0 };
        OptTable global = { OPTS(global_opts), &flags };
        OptResult res;
        if (opts_parse(&global, 1, argc - 1, argv + 1, true, "fnbox", &res) < 0)
                return CLI_EXIT_USAGE;
        if (res.help) {
                main_usage(stdout);
                return CLI_EXIT_OK;
        }
        if (res.next >= argc - 1) {
                main_usage(stderr);
                return CLI_EXIT_USAGE;
        }
        const char *name = argv[res.next + 1];
        const Verb *v = verb_find("fnbox", verbs, ELEMENTSOF(verbs), name);
        if (!v)
                return CLI_EXIT_USAGE;
        return verb_run(v, &flags, argc - res.next - 2, argv + res.next + 2, "fnbox");
}
