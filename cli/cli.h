/* cli/cli.h: what every `fnbox` verb shares: the exit codes, the resolved
 * settings (server URL, token, namespace, output format), the verb's parsed
 * arguments, and the verbs themselves. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"
#include "output.h"

/* Exit codes (docs/cli.md). */
enum {
        CLI_EXIT_OK = 0,
        CLI_EXIT_ERROR = 1,             /* the server failed, or anything else */
        CLI_EXIT_USAGE = 2,             /* bad command line or configuration */
        CLI_EXIT_INVALID = 3,           /* a manifest is invalid (here or on the server) */
        CLI_EXIT_UNAUTHENTICATED = 4,   /* 401 */
        CLI_EXIT_FORBIDDEN = 5,         /* 403 */
        CLI_EXIT_NOT_FOUND = 6,         /* 404 */
        CLI_EXIT_CONFLICT = 7,          /* 409 after every retry */
        CLI_EXIT_UNREACHABLE = 8,       /* no answer from the server */
        CLI_EXIT_FUNCTION = 9,          /* call: the function ran and failed */
};

#define CLI_DEFAULT_URL         "http://127.0.0.1:8081"
#define CLI_DEFAULT_ACTIVATOR   "http://127.0.0.1:8080"
#define CLI_DEFAULT_NAMESPACE   "default"
#define CLI_DEFAULT_TIMEOUT_MS  60000
#define CLI_TAGS_MAX            16
#define CLI_CONFLICT_RETRIES    5       /* re-reads after a 409 */
#define CLI_HEADERS_MAX         64      /* call -H */
#define CLI_LABELS_MAX          32      /* up --label */
#define CLI_EXAMPLES_MAX        20      /* skill generate --example */
#define CLI_FILES_MAX           1000    /* call --file: a session's input archive holds at most 1000 */
#define SESSION_ID_LEN          34      /* "s-" + 32 lowercase hex */

/* Settings after flag > environment > config file > default. */
typedef struct Cli {
        char *url;              /* without a trailing '/' */
        char *activator;        /* the invocation address (call) */
        const char *activator_from;
        char *token;            /* NULL: none */
        const char *token_from; /* "--token", "FNBOX_TOKEN", a file name */
        char *namespace_;
        bool namespace_given;   /* set by flag, environment or config file */
        OutputFormat output;    /* never OUTPUT_WIDE: that is table and wide */
        bool wide;              /* -o wide */
        uint64_t timeout_ms;
        const char *prog;       /* "fnbox deploy", for messages */
        Http *http;
} Cli;

/* Options of the verbs (each verb's table fills only its own). */
typedef struct VerbArgs {
        const char *file;                       /* deploy -f */
        const char *tags[CLI_TAGS_MAX];         /* traffic --tag REV=TAG */
        size_t n_tags;
        const char *role;                       /* token create */
        const char *namespaces;
        const char *description;
        bool all_namespaces;                    /* list -A */
        const char *data;                       /* call -d DATA|@FILE|@- */
        const char *headers[CLI_HEADERS_MAX];   /* call -H K:V */
        size_t n_headers;
        const char *tag;                        /* call --tag */
        const char *path;                       /* call --path */
        const char *method;                     /* call -X */
        const char *activator;                  /* call --activator */
        const char *tail;                       /* logs --tail */
        const char *alias;                      /* llm log --alias */
        const char *since;                      /* llm log --since */
        const char *limit;                      /* llm log --limit, skill search --limit */
        const char *runtime;                    /* skill generate */
        const char *examples[CLI_EXAMPLES_MAX]; /* skill generate --example IN=>OUT */
        size_t n_examples;
        const char *model;
        const char *rounds;
        const char *name;
        const char *files[CLI_FILES_MAX];       /* call, skill call, skill generate --file */
        size_t n_files;
        const char *output_dir;                 /* call, skill call, replay --output-dir */
        bool check;                             /* replay --check */
        const char *data_dir;                   /* up */
        const char *store;
        const char *listen;
        const char *api_listen;
        const char *labels[CLI_LABELS_MAX];
        size_t n_labels;
        const char *user;
        const char *node;
        const char *run_dir;
        const char *ready_timeout;
        bool no_config;
        char **pos;                             /* positional arguments */
        size_t n_pos;
} VerbArgs;

typedef int (*VerbFn)(Cli *c, const VerbArgs *a);

int deploy_main(Cli *c, const VerbArgs *a);
int list_main(Cli *c, const VerbArgs *a);
int describe_main(Cli *c, const VerbArgs *a);
int delete_main(Cli *c, const VerbArgs *a);
int revisions_main(Cli *c, const VerbArgs *a);
int traffic_main(Cli *c, const VerbArgs *a);
int nodes_main(Cli *c, const VerbArgs *a);
int call_main(Cli *c, const VerbArgs *a);
int logs_main(Cli *c, const VerbArgs *a);
/* up runs without the settings: it starts the daemons the settings point at. */
int up_main(const VerbArgs *a, const char *prog);
int token_create_main(Cli *c, const VerbArgs *a);
int token_list_main(Cli *c, const VerbArgs *a);
int token_revoke_main(Cli *c, const VerbArgs *a);
int llm_log_main(Cli *c, const VerbArgs *a);
int skill_generate_main(Cli *c, const VerbArgs *a);
int skill_list_main(Cli *c, const VerbArgs *a);
int skill_show_main(Cli *c, const VerbArgs *a);
int skill_search_main(Cli *c, const VerbArgs *a);
int skill_promote_main(Cli *c, const VerbArgs *a);
int skill_deprecate_main(Cli *c, const VerbArgs *a);
int skill_call_main(Cli *c, const VerbArgs *a);
int replay_main(Cli *c, const VerbArgs *a);
int sessions_main(Cli *c, const VerbArgs *a);

/* One request to the activator at ACTIVATOR/PREFIX/[NS/]TARGET[--path] with
 * call's -d, -H, -X, --path and --activator (a->tag is not read): a 2xx
 * body streams to stdout; anything else is one line on stderr naming what.
 * logs_name, when not NULL, is the function `fnbox logs` would show the
 * stderr of. With --file or --output-dir the call runs in a new session
 * (session_prepare and the rest below) created for function (NULL: any
 * function of the namespace, as for skills). Returns the exit code
 * (docs/cli.md, call). */
int call_invoke(Cli *c, const VerbArgs *a, const char *prefix, const char *target, const char *what,
                const char *logs_name, const char *function);

/* A call in a session (cli/session_cmd.c): prepare reads and packs the
 * --file inputs and checks --output-dir (nothing is sent); start creates
 * the session (POST /v1/sessions) and fills id; finish, given the call's
 * exit code, writes the session's output into the folder and says so on
 * stderr, and returns the exit code to use. Each returns 0 or an exit code
 * after printing why. */
typedef struct SessionRun {
        void *input;                    /* the input archive */
        size_t input_len;
        const char *output_dir;         /* NULL: ./fnbox-output/ID */
        char id[SESSION_ID_LEN + 1];
} SessionRun;

int session_prepare(Cli *c, const VerbArgs *a, SessionRun *ret);
int session_start(Cli *c, SessionRun *s, const char *function);
int session_finish(Cli *c, SessionRun *s, int call_code);
void session_run_done(SessionRun *s);
/* The --file inputs as the base64 of their archive (skill generate's "input"). */
int session_input_base64(Cli *c, const VerbArgs *a, char **ret);
/* "s-" and 32 lowercase hex digits. */
bool session_id_valid(const char *id);

/* One request to the API. On a 2xx answer returns 0 and hands over the JSON
 * body (*ret may be NULL); otherwise prints one line on stderr, "PROG: WHAT:
 * STATUS TYPE: MESSAGE (field F)" or the transport failure, and returns the
 * exit code. what may be NULL. */
int cli_call(Cli *c, const char *what, const char *method, const char *path, json_t *body, json_t **ret);

/* Like cli_call for GET of a list: follows "next" and returns
 * {"items": [every item]} (bounded). */
int cli_get_all(Cli *c, const char *what, const char *path, json_t **ret);

/* The exit code and message for a finished request that did not succeed
 * (transport error r < 0, or a non-2xx status). Prints one line. */
int cli_report(Cli *c, const char *what, int r, const HttpResponse *resp);

/* "/v1/functions/NAME...?namespace=NS": path and a query parameter for the
 * namespace appended (escaped). Returns -ENAMETOOLONG when it does not fit. */
int cli_path(Cli *c, char *buf, size_t size, const char *ns, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));

/* Sleep before retry number attempt (0-based) after a conflict: 50 ms,
 * doubling, times a random factor in [0.5, 1.5). */
void cli_backoff(unsigned attempt);

/* The traffic table of describe and traffic: REVISION PERCENT TAG LATEST. */
int cli_print_traffic(json_t *traffic);

/* A function name from the command line; prints why and returns false when
 * it is not a DNS-1123 label. */
bool cli_check_name(Cli *c, const char *what, const char *name);
