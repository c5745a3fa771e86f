/* cli/skill_cmd.c: `fnbox skill`, the skill library (docs/cli.md#skill).
 * generate starts a job on the controller (POST /v1/skills/generate) and
 * follows it with long polls, one progress line per change on stderr;
 * list, show, search, promote and deprecate are the REST API of
 * /v1/skills; call goes to the activator's /skills/NAME[@VERSION] through
 * call_invoke(), the same request `fnbox call` makes (with --file, in a
 * session). generate --file sends the input files' archive in base64. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "lib/manifest.h"
#include "lib/util.h"

#define SKILL_NAME_MAX          40
#define SKILL_VERSION_MAX       999999          /* skill-NAME-vN stays a DNS label */
#define SKILL_TASK_MAX          (8u << 10)
#define SKILL_EXAMPLE_MAX       (64u << 10)     /* each side of --example */
#define SKILL_MODEL_MAX         128
#define SKILL_ROUNDS_MAX        20
#define SKILL_SEARCH_LIMIT_MAX  100
#define SKILL_QUERY_MAX         1024
#define SKILL_JOB_ID_MAX        128
#define SKILL_PATH_MAX          4096
#define POLL_WAIT_MAX_S         30
#define POLL_RETRIES            3       /* transport failures in a row while following a job */
#define POLL_QUICK_MS           200     /* an unchanged answer faster than this: the server does not wait */
#define CELL_SHOWN              40      /* characters of a test's input or output in a table */
#define DESCRIPTION_SHOWN       60
#define MESSAGE_SHOWN           300

typedef struct SkillSpec {
        const char *name;
        char buf[SKILL_NAME_MAX + 1];
        int64_t version;                /* 0: none given */
} SkillSpec;

/* ---- small helpers ------------------------------------------------------- */

static const char *str(json_t *o, const char *key) {
        return json_string_value(json_object_get(o, key));
}

static int64_t num(json_t *o, const char *key) {
        json_t *v = json_object_get(o, key);
        return json_is_integer(v) ? (int64_t) json_integer_value(v) : json_is_real(v) ? (int64_t) json_real_value(v) : 0;
}

/* A field of a skill version, at its top or in its "doc". */
static json_t *field(json_t *v, const char *key) {
        json_t *f = json_object_get(v, key);
        return f ? f : json_object_get(json_object_get(v, "doc"), key);
}

static bool skill_name_valid(const char *s) {
        return strlen(s) <= SKILL_NAME_MAX && manifest_name_valid(s);
}

/* NAME or NAME@VERSION. Prints why and returns false when it is neither. */
static bool spec_parse(Cli *c, const char *arg, bool version_ok, SkillSpec *ret) {
        const char *at = strchr(arg, '@');
        size_t n = at ? (size_t) (at - arg) : strlen(arg);
        char shown[96];
        *ret = (SkillSpec) { .name = ret->buf };
        if (n <= SKILL_NAME_MAX) {
                memcpy(ret->buf, arg, n);
                ret->buf[n] = 0;
        }
        bool ok = n <= SKILL_NAME_MAX && skill_name_valid(ret->buf);
        if (ok && at) {
                const char *v = at + 1;
                char *end = NULL;
                errno = 0;
                unsigned long long x = *v >= '0' && *v <= '9' ? strtoull(v, &end, 10) : 0;
                ok = version_ok && end && !*end && errno == 0 && x >= 1 && x <= SKILL_VERSION_MAX;
                ret->version = (int64_t) x;
        }
        if (!ok)
                fprintf(stderr, "%s: '%s' is not a skill%s (expected NAME%s: 1 to %d of a-z, 0-9 and '-'%s)\n",
                        c->prog, output_sanitize(arg, shown, sizeof shown), version_ok ? " or skill version" : " name",
                        version_ok ? " or NAME@VERSION" : "", SKILL_NAME_MAX,
                        version_ok ? ", VERSION a number from 1" : "");
        return ok;
}

/* "NAME" or "NAME@3", for messages. */
static const char *spec_str(const SkillSpec *s, char *buf, size_t size) {
        if (s->version)
                snprintf(buf, size, "%s@%" PRId64, s->name, s->version);
        else
                snprintf(buf, size, "%s", s->name);
        return buf;
}

/* A number option from lo to hi. Prints why and returns false otherwise. */
static bool number_arg(Cli *c, const char *opt, const char *s, long lo, long hi, long *ret) {
        char *end = NULL;
        errno = 0;
        long v = s && *s >= '0' && *s <= '9' ? strtol(s, &end, 10) : -1;
        if (!end || *end || errno || v < lo || v > hi) {
                fprintf(stderr, "%s: --%s: expected a number from %ld to %ld\n", c->prog, opt, lo, hi);
                return false;
        }
        *ret = v;
        return true;
}

/* s for a table cell: newlines and tabs as \n and \t, other control
 * characters as '?', at most max characters, "..." when cut. */
static const char *cell(const char *s, size_t max, char *buf, size_t size) {
        size_t k = 0, chars = 0;
        if (!s)
                return NULL;
        for (; *s && k + 8 < size; s++) {
                unsigned char ch = (unsigned char) *s;
                if ((ch & 0xc0) != 0x80 && chars++ >= max) {
                        memcpy(buf + k, "...", 3);
                        k += 3;
                        break;
                }
                if (ch == '\n' || ch == '\t') {
                        buf[k++] = '\\';
                        buf[k++] = ch == '\n' ? 'n' : 't';
                } else
                        buf[k++] = ch < 0x20 || ch == 0x7f ? '?' : (char) ch;
        }
        while (k > 0 && ((unsigned char) buf[k - 1] & 0xc0) == 0xc0)
                k--;    /* a character cut in half at the end of buf */
        buf[k] = 0;
        return buf;
}

/* The bytes of s's first max characters (UTF-8). */
static size_t utf8_cut(const char *s, size_t max) {
        size_t i = 0, chars = 0;
        for (; s[i]; i++)
                if (((unsigned char) s[i] & 0xc0) != 0x80 && chars++ == max)
                        break;
        return i;
}

/* A time as the API gives it: ISO 8601 text, or milliseconds since 1970. */
static const char *time_cell(json_t *v, char *buf, size_t size) {
        if (json_is_string(v))
                return output_sanitize(json_string_value(v), buf, size);
        if (!json_is_integer(v) || json_integer_value(v) <= 0)
                return NULL;
        int64_t ms = json_integer_value(v);
        time_t t = (time_t) (ms / 1000);
        struct tm tm;
        if (!gmtime_r(&t, &tm))
                return NULL;
        snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                 tm.tm_hour, tm.tm_min, tm.tm_sec, (int) (ms % 1000));
        return buf;
}

static const char *age_cell(json_t *v, char *buf, size_t size) {
        char iso[64];
        if (!time_cell(v, iso, sizeof iso))
                return NULL;
        format_age(iso, time(NULL), buf, size);
        return buf;
}

static const char *int_cell(json_t *v, char *buf, size_t size) {
        if (!json_is_integer(v))
                return NULL;
        snprintf(buf, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return buf;
}

static int print_table(Cli *c, Table *t, FILE *f) {
        if (table_print(t, f, output_use_bold(f)) < 0) {
                fprintf(stderr, "%s: cannot write the table\n", c->prog);
                return CLI_EXIT_ERROR;
        }
        return 0;
}

static int out_of_memory(Cli *c) {
        fprintf(stderr, "%s: out of memory\n", c->prog);
        return CLI_EXIT_ERROR;
}

/* ---- test results -------------------------------------------------------- */

/* How one test went: "ok", "timeout", "exit 1", "wrong output"... */
static const char *result_word(json_t *r, char *buf, size_t size) {
        const char *err = str(r, "error");
        json_t *code = json_object_get(r, "exitCode"), *sig = json_object_get(r, "signal");
        if (json_is_true(json_object_get(r, "passed")))
                return "ok";
        if (err && (strcmp(err, "timeout") == 0 || strcmp(err, "out_of_memory") == 0 ||
                    strcmp(err, "output_too_large") == 0))
                snprintf(buf, size, "FAIL %s", err);
        else if (json_is_integer(code) && json_integer_value(code) != 0)
                snprintf(buf, size, "FAIL exit %" JSON_INTEGER_FORMAT, json_integer_value(code));
        else if (json_is_integer(sig))
                snprintf(buf, size, "FAIL signal %" JSON_INTEGER_FORMAT, json_integer_value(sig));
        else if (err) {
                char e[64];
                snprintf(buf, size, "FAIL %s", output_sanitize(err, e, sizeof e));
        } else
                snprintf(buf, size, "FAIL wrong output");
        return buf;
}

/* TEST RESULT EXPECTED ACTUAL, one row per result. */
static int print_results(Cli *c, json_t *results, FILE *f) {
        static const char *const headers[] = { "TEST", "RESULT", "EXPECTED", "ACTUAL" };
        _cleanup_table_ Table *t = table_new(4, headers);
        size_t i;
        json_t *r;
        if (!t)
                return out_of_memory(c);
        json_array_foreach(results, i, r) {
                char name[128], word[96], exp[CELL_SHOWN * 4 + 16], act[CELL_SHOWN * 4 + 16];
                json_t *e = json_object_get(r, "expected");
                const char *cells[] = { cell(str(r, "name"), 40, name, sizeof name), result_word(r, word, sizeof word),
                                        json_is_string(e) ? cell(json_string_value(e), CELL_SHOWN, exp, sizeof exp)
                                                          : "(exit 0)",
                                        cell(str(r, "actual"), CELL_SHOWN, act, sizeof act) };
                if (table_add(t, cells) < 0)
                        return out_of_memory(c);
        }
        return print_table(c, t, f);
}

/* ---- generate ------------------------------------------------------------- */

static int example_add(Cli *c, json_t *examples, const char *ex) {
        const char *arrow = strstr(ex, "=>");
        char shown[64];
        if (!arrow) {
                fprintf(stderr, "%s: --example '%s': expected INPUT=>OUTPUT\n", c->prog,
                        output_sanitize(ex, shown, sizeof shown));
                return CLI_EXIT_USAGE;
        }
        size_t in_len = (size_t) (arrow - ex), out_len = strlen(arrow + 2);
        if (in_len > SKILL_EXAMPLE_MAX || out_len > SKILL_EXAMPLE_MAX) {
                fprintf(stderr, "%s: --example: each side may hold at most %u KiB\n", c->prog, SKILL_EXAMPLE_MAX >> 10);
                return CLI_EXIT_USAGE;
        }
        json_t *in = json_stringn(ex, in_len), *out = json_stringn(arrow + 2, out_len);
        if (!in || !out) {
                json_decref(in);
                json_decref(out);
                fprintf(stderr, "%s: --example '%s': not valid UTF-8\n", c->prog, output_sanitize(ex, shown, sizeof shown));
                return CLI_EXIT_USAGE;
        }
        json_t *e = json_pack("{s:o,s:o}", "input", in, "output", out);
        return e && json_array_append_new(examples, e) == 0 ? 0 : out_of_memory(c);
}

static int generate_check(Cli *c, const VerbArgs *a) {
        const char *task = a->pos[0];
        char shown[64];
        long v;
        if (!*task || strlen(task) > SKILL_TASK_MAX) {
                fprintf(stderr, "%s: the task must hold 1 to %u bytes\n", c->prog, SKILL_TASK_MAX);
                return CLI_EXIT_USAGE;
        }
        if (a->runtime && strcmp(a->runtime, "python3") != 0 && strcmp(a->runtime, "node") != 0 &&
            strcmp(a->runtime, "sh") != 0) {
                fprintf(stderr, "%s: --runtime '%s': expected python3, node or sh\n", c->prog,
                        output_sanitize(a->runtime, shown, sizeof shown));
                return CLI_EXIT_USAGE;
        }
        if (a->model && (!*a->model || strlen(a->model) > SKILL_MODEL_MAX)) {
                fprintf(stderr, "%s: --model: expected a model alias of 1 to %d bytes\n", c->prog, SKILL_MODEL_MAX);
                return CLI_EXIT_USAGE;
        }
        if (a->rounds && !number_arg(c, "rounds", a->rounds, 1, SKILL_ROUNDS_MAX, &v))
                return CLI_EXIT_USAGE;
        if (a->name && !skill_name_valid(a->name)) {
                fprintf(stderr, "%s: --name '%s': expected 1 to %d of a-z, 0-9 and '-', starting and ending with a "
                        "letter or digit\n", c->prog, output_sanitize(a->name, shown, sizeof shown), SKILL_NAME_MAX);
                return CLI_EXIT_USAGE;
        }
        return 0;
}

/* The body of POST /v1/skills/generate. */
static int generate_body(Cli *c, const VerbArgs *a, json_t **ret) {
        int code = generate_check(c, a);
        if (code != 0)
                return code;
        json_t *task = json_string(a->pos[0]);
        if (!task) {
                fprintf(stderr, "%s: the task is not valid UTF-8\n", c->prog);
                return CLI_EXIT_USAGE;
        }
        json_t *body = json_pack("{s:o,s:[]}", "task", task, "examples");
        if (!body)
                return out_of_memory(c);
        for (size_t i = 0; code == 0 && i < a->n_examples; i++)
                code = example_add(c, json_object_get(body, "examples"), a->examples[i]);
        const char *keys[] = { "runtime", "model", "name" }, *vals[] = { a->runtime, a->model, a->name };
        for (size_t i = 0; code == 0 && i < ELEMENTSOF(keys); i++)
                if (vals[i] && json_object_set_new(body, keys[i], json_string(vals[i])) < 0)
                        code = out_of_memory(c);
        if (code == 0 && a->rounds && json_object_set_new(body, "rounds", json_integer(atol(a->rounds))) < 0)
                code = out_of_memory(c);
        if (code == 0 && a->n_files) {
                /* every test runs with these files at /input (docs/skills.md) */
                char *input = NULL;
                code = session_input_base64(c, a, &input);
                if (code == 0 && json_object_set_new(body, "input", json_string(input)) < 0)
                        code = out_of_memory(c);
                free(input);
        }
        if (code != 0) {
                json_decref(body);
                return code;
        }
        *ret = body;
        return 0;
}

/* One line about where the job stands. */
static void job_line(json_t *job, char *buf, size_t size) {
        int64_t round = num(job, "round"), rounds = num(job, "rounds"), in = num(job, "tokensIn"),
                out = num(job, "tokensOut");
        const char *msg = str(job, "message");
        char m[MESSAGE_SHOWN];
        int n;
        if (round > 0)
                n = snprintf(buf, size, "round %" PRId64 "/%" PRId64 ": %" PRId64 "/%" PRId64 " tests passed, %" PRId64
                             " tokens (%" PRId64 " in, %" PRId64 " out)", round, rounds, num(job, "testsPassed"),
                             num(job, "testsTotal"), in + out, in, out);
        else
                n = snprintf(buf, size, "starting");
        if (n >= 0 && (size_t) n < size && msg && *msg)
                snprintf(buf + n, size - (size_t) n, ": %s", output_sanitize(msg, m, sizeof m));
}

static int64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms) {
        struct timespec d = { ms / 1000, (ms % 1000) * 1000000L };
        while (nanosleep(&d, &d) < 0 && errno == EINTR)
                ;
}

/* GET the job (long-polled); transport failures are retried a few times.
 * Returns 0 with *ret, or the exit code after printing why. */
static int job_get(Cli *c, const char *path, json_t **ret) {
        for (unsigned attempt = 0;; attempt++) {
                HttpResponse resp = { 0 };
                int r = http_request(c->http, "GET", path, NULL, NULL, 0, &resp), code;
                if (r == 0 && resp.status >= 200 && resp.status <= 299) {
                        bool ok = json_is_object(resp.json);
                        if (ok)
                                *ret = TAKE_PTR(resp.json);
                        else
                                fprintf(stderr, "%s: job: the server's answer is not a JSON object\n", c->prog);
                        http_response_done(&resp);
                        return ok ? 0 : CLI_EXIT_ERROR;
                }
                if (r < 0 && r != -EFBIG && r != -ENOMEM && attempt + 1 < POLL_RETRIES) {
                        http_response_done(&resp);
                        sleep_ms(1000);
                        continue;
                }
                code = cli_report(c, "job", r, &resp);
                http_response_done(&resp);
                return code;
        }
}

/* Follow the job until it is no longer running, printing a line on stderr
 * whenever its progress changes. Each poll says which change it saw last
 * (after=CHANGES, when the job tells), so that no change is waited past.
 * *job: the first answer in, the last out. */
static int job_follow(Cli *c, const char *id, json_t **job) {
        char path[SKILL_PATH_MAX], line[512], last[512] = "";
        _cleanup_free_ char *e = http_escape(id);
        long wait_s = (long) (c->timeout_ms / 2000);
        wait_s = wait_s > POLL_WAIT_MAX_S ? POLL_WAIT_MAX_S : wait_s;
        if (!e)
                return out_of_memory(c);
        for (;;) {
                const char *state = str(*job, "state");
                json_t *changes = json_object_get(*job, "changes");
                job_line(*job, line, sizeof line);
                bool changed = strcmp(line, last) != 0;
                if (changed)
                        fprintf(stderr, "%s\n", line);
                snprintf(last, sizeof last, "%s", line);
                if (!state || strcmp(state, "running") != 0)
                        return 0;
                int r = json_is_integer(changes) && json_integer_value(changes) >= 0
                        ? cli_path(c, path, sizeof path, NULL, "/v1/skills/jobs/%s?wait=%ld&after=%" JSON_INTEGER_FORMAT,
                                   e, wait_s, json_integer_value(changes))
                        : cli_path(c, path, sizeof path, NULL, "/v1/skills/jobs/%s?wait=%ld", e, wait_s);
                if (r < 0)
                        return out_of_memory(c);
                int64_t start = now_ms();
                json_t *next = NULL;
                int code = job_get(c, path, &next);
                if (code != 0)
                        return code;
                json_decref(*job);
                *job = next;
                if (!changed && now_ms() - start < POLL_QUICK_MS)
                        sleep_ms(1000);
        }
}

/* The job is over: say how, with the last round's results when it failed. */
static int job_report(Cli *c, const char *id, json_t *job) {
        const char *state = str(job, "state"), *name = str(job, "name"), *msg = str(job, "message");
        char n[64], m[MESSAGE_SHOWN], s[SKILL_JOB_ID_MAX + 1];
        json_t *evidence = json_object_get(job, "evidence");
        json_t *last = json_array_get(evidence, json_array_size(evidence) ? json_array_size(evidence) - 1 : 0);
        output_sanitize(name ? name : "?", n, sizeof n);
        output_sanitize(msg ? msg : "", m, sizeof m);
        if (state && strcmp(state, "passed") == 0) {
                if (c->output == OUTPUT_TABLE) {
                        printf("%s@%" PRId64 ": candidate, passed %" PRId64 "/%" PRId64 " tests in %" PRId64 " rounds "
                               "(%" PRId64 " tokens)\n", n, num(job, "version"), num(job, "testsPassed"),
                               num(job, "testsTotal"), num(job, "round"), num(job, "tokensIn") + num(job, "tokensOut"));
                        fprintf(stderr, "Promote it with: fnbox skill promote %s@%" PRId64 "\n", n, num(job, "version"));
                }
                return 0;
        }
        if (state && strcmp(state, "failed") == 0) {
                fprintf(stderr, "%s: %s: no candidate after %" PRId64 " rounds%s%s\n", c->prog, n, num(job, "round"),
                        *m ? ": " : "", m);
                const char *pe = str(last, "parseError");
                if (pe)
                        fprintf(stderr, "the last answer could not be used: %s\n", output_sanitize(pe, m, sizeof m));
                else if (json_array_size(json_object_get(last, "results")))
                        print_results(c, json_object_get(last, "results"), stderr);
                fprintf(stderr, "Every round's code and results: fnbox skill generate ... -o json (job %s)\n",
                        output_sanitize(id, s, sizeof s));
                return CLI_EXIT_FUNCTION;
        }
        fprintf(stderr, "%s: %s: job %s ended in state %s%s%s\n", c->prog, n, output_sanitize(id, s, sizeof s),
                state ? state : "(none)", *m ? ": " : "", m);
        return CLI_EXIT_ERROR;
}

static bool job_id_valid(const char *id) {
        size_t n = id ? strlen(id) : 0;
        return n > 0 && n <= SKILL_JOB_ID_MAX && strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                            "0123456789-_.") == n;
}

int skill_generate_main(Cli *c, const VerbArgs *a) {
        char path[SKILL_PATH_MAX];
        json_t *body = NULL, *job = NULL;
        int code = generate_body(c, a, &body);
        if (code != 0)
                return code;
        if (cli_path(c, path, sizeof path, c->namespace_, "/v1/skills/generate") < 0) {
                json_decref(body);
                return out_of_memory(c);
        }
        code = cli_call(c, NULL, "POST", path, body, &job);
        json_decref(body);
        if (code != 0)
                return code;
        const char *id = str(job, "job") ? str(job, "job") : str(job, "id");
        _cleanup_free_ char *idc = id ? strdup(id) : NULL;
        if (!job_id_valid(idc)) {
                fprintf(stderr, "%s: the server's answer names no valid job (\"job\")\n", c->prog);
                json_decref(job);
                return CLI_EXIT_ERROR;
        }
        fprintf(stderr, "job %s: generating skill %s in namespace %s\n", idc, str(job, "name") ? str(job, "name") : "?",
                c->namespace_);
        code = job_follow(c, idc, &job);
        if (code == 0) {
                code = job_report(c, idc, job);
                if (c->output != OUTPUT_TABLE && output_value(stdout, c->output, job) < 0)
                        code = CLI_EXIT_ERROR;
        }
        json_decref(job);
        return code;
}

/* ---- list, show, search ---------------------------------------------------- */

static int list_skills(Cli *c) {
        static const char *const headers[] = { "NAME", "VERSION", "LATEST", "STATE", "RUNTIME", "AGE", "DESCRIPTION" };
        char path[SKILL_PATH_MAX];
        json_t *all = NULL, *e;
        size_t i;
        if (cli_path(c, path, sizeof path, c->namespace_, "/v1/skills") < 0)
                return out_of_memory(c);
        int code = cli_get_all(c, NULL, path, &all);
        if (code != 0)
                return code;
        json_t *items = json_object_get(all, "items");
        _cleanup_table_ Table *t = c->output == OUTPUT_TABLE ? table_new(7, headers) : NULL;
        if (c->output != OUTPUT_TABLE)
                code = output_value(stdout, c->output, all) < 0 ? CLI_EXIT_ERROR : 0;
        else if (!json_array_size(items))
                fprintf(stderr, "No skills in namespace %s.\n", c->namespace_);
        else if (!t)
                code = out_of_memory(c);
        else {
                json_array_foreach(items, i, e) {
                        char v[32], l[32], age[32], d[DESCRIPTION_SHOWN * 4 + 16], n[128];
                        const char *cells[] = { cell(str(e, "name"), 64, n, sizeof n),
                                                int_cell(json_object_get(e, "version"), v, sizeof v),
                                                int_cell(json_object_get(e, "latestVersion"), l, sizeof l),
                                                str(e, "latestState") ? str(e, "latestState") : str(e, "state"),
                                                str(e, "runtime"), age_cell(json_object_get(e, "createdAt"), age, sizeof age),
                                                cell(str(e, "description"), DESCRIPTION_SHOWN, d, sizeof d) };
                        if (table_add(t, cells) < 0) {
                                code = out_of_memory(c);
                                break;
                        }
                }
                code = code ? code : print_table(c, t, stdout);
        }
        json_decref(all);
        return code;
}

static int list_versions(Cli *c, const SkillSpec *s) {
        static const char *const headers[] = { "VERSION", "STATE", "RUNTIME", "CODE", "AGE", "DESCRIPTION" };
        char path[SKILL_PATH_MAX];
        json_t *answer = NULL, *e;
        size_t i;
        if (cli_path(c, path, sizeof path, c->namespace_, "/v1/skills/%s/versions", s->name) < 0)
                return out_of_memory(c);
        int code = cli_call(c, s->name, "GET", path, NULL, &answer);
        if (code != 0)
                return code;
        json_t *items = json_object_get(answer, "items");
        _cleanup_table_ Table *t = c->output == OUTPUT_TABLE ? table_new(6, headers) : NULL;
        if (c->output != OUTPUT_TABLE)
                code = output_value(stdout, c->output, answer) < 0 ? CLI_EXIT_ERROR : 0;
        else if (!json_is_array(items)) {
                fprintf(stderr, "%s: the server's answer has no \"items\" list\n", c->prog);
                code = CLI_EXIT_ERROR;
        } else if (!t)
                code = out_of_memory(c);
        else {
                json_array_foreach(items, i, e) {
                        char v[32], age[32], d[DESCRIPTION_SHOWN * 4 + 16], dg[80];
                        const char *digest = str(e, "codeDigest");
                        if (digest && strncmp(digest, "sha256:", 7) == 0)
                                digest += 7;
                        if (digest) {
                                output_sanitize(digest, dg, sizeof dg);
                                dg[utf8_cut(dg, 12)] = 0;       /* the first 12, as `fnbox revisions` */
                                digest = dg;
                        }
                        const char *cells[] = { int_cell(json_object_get(e, "version"), v, sizeof v), str(e, "state"),
                                                str(e, "runtime"), digest,
                                                age_cell(json_object_get(e, "createdAt"), age, sizeof age),
                                                cell(str(e, "description"), DESCRIPTION_SHOWN, d, sizeof d) };
                        if (table_add(t, cells) < 0) {
                                code = out_of_memory(c);
                                break;
                        }
                }
                code = code ? code : print_table(c, t, stdout);
        }
        json_decref(answer);
        return code;
}

int skill_list_main(Cli *c, const VerbArgs *a) {
        SkillSpec s;
        if (a->n_pos == 0)
                return list_skills(c);
        return spec_parse(c, a->pos[0], false, &s) ? list_versions(c, &s) : CLI_EXIT_USAGE;
}

/* "2026-...Z (5m ago) by token:ID" for a time and who. */
static void when_by(json_t *at, const char *by, char *buf, size_t size) {
        char iso[64], age[32], b[128];
        if (!time_cell(at, iso, sizeof iso)) {
                snprintf(buf, size, "-");
                return;
        }
        format_age(iso, time(NULL), age, sizeof age);
        snprintf(buf, size, "%s (%s ago)%s%s", iso, age, by && *by ? " by " : "",
                 by && *by ? output_sanitize(by, b, sizeof b) : "");
}

static void show_line(const char *key, const char *value) {
        char v[1024];
        printf("%-13s %s\n", key, value ? output_sanitize(value, v, sizeof v) : "-");
}

static void show_provenance(json_t *p) {
        char buf[256];
        if (!json_is_object(p))
                return;
        static const char *const keys[] = { "model", "upstream", "promptDigest", "rounds", "tokensIn", "tokensOut",
                                            "generatedBy", "job" };
        static const char *const labels[] = { "Model:", "Upstream:", "Prompt:", "Rounds:", "Tokens in:", "Tokens out:",
                                              "Generated by:", "Job:" };
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                json_t *v = json_object_get(p, keys[i]);
                if (json_is_string(v))
                        show_line(labels[i], json_string_value(v));
                else if (int_cell(v, buf, sizeof buf))
                        show_line(labels[i], buf);
        }
}

static int show_tests(Cli *c, json_t *tests) {
        static const char *const headers[] = { "TEST", "INPUT", "EXPECTED" };
        _cleanup_table_ Table *t = table_new(3, headers);
        size_t i;
        json_t *e;
        if (!t)
                return out_of_memory(c);
        json_array_foreach(tests, i, e) {
                char n[128], in[CELL_SHOWN * 4 + 16], ex[CELL_SHOWN * 4 + 16];
                json_t *x = json_object_get(e, "expected");
                const char *cells[] = { cell(str(e, "name"), 40, n, sizeof n), cell(str(e, "input"), CELL_SHOWN, in, sizeof in),
                                        json_is_string(x) ? cell(json_string_value(x), CELL_SHOWN, ex, sizeof ex) : "(exit 0)" };
                if (table_add(t, cells) < 0)
                        return out_of_memory(c);
        }
        printf("\nTests:\n");
        return print_table(c, t, stdout);
}

/* One row per round of the generation: its model, tokens and results. */
static int show_evidence(Cli *c, json_t *evidence) {
        static const char *const headers[] = { "ROUND", "MODEL", "TOKENS", "PASSED", "NOTE" };
        _cleanup_table_ Table *t = table_new(5, headers);
        size_t i, j;
        json_t *e, *r;
        if (!t)
                return out_of_memory(c);
        json_array_foreach(evidence, i, e) {
                char round[32], tokens[64], passed[64], note[128], model[128];
                size_t ok = 0;
                json_t *results = json_object_get(e, "results");
                json_array_foreach(results, j, r)
                        ok += json_is_true(json_object_get(r, "passed"));
                snprintf(round, sizeof round, "%" PRId64, num(e, "round") ? num(e, "round") : (int64_t) i + 1);
                snprintf(tokens, sizeof tokens, "%" PRId64 "/%" PRId64, num(e, "tokensIn"), num(e, "tokensOut"));
                snprintf(passed, sizeof passed, "%zu/%zu", ok, json_array_size(results));
                const char *cells[] = { round, cell(str(e, "model"), 40, model, sizeof model), tokens, passed,
                                        str(e, "parseError") ? cell(str(e, "parseError"), 60, note, sizeof note) : NULL };
                if (table_add(t, cells) < 0)
                        return out_of_memory(c);
        }
        printf("\nEvidence (rounds):\n");
        return print_table(c, t, stdout);
}

static int show_table(Cli *c, json_t *v) {
        char buf[512], ver[64];
        json_t *parent = json_object_get(v, "parent");
        show_line("Name:", str(v, "name"));
        show_line("Namespace:", str(v, "namespace"));
        snprintf(ver, sizeof ver, "%" PRId64 " (%s)", num(v, "version"), str(v, "state") ? str(v, "state") : "?");
        show_line("Version:", ver);
        show_line("Runtime:", str(v, "runtime"));
        show_line("Description:", str(v, "description"));
        show_line("Code:", str(v, "codeDigest"));
        show_line("Parent:", json_is_integer(parent) && json_integer_value(parent) > 0 ? int_cell(parent, buf, sizeof buf) : NULL);
        when_by(json_object_get(v, "createdAt"), str(v, "createdBy"), buf, sizeof buf);
        show_line("Created:", buf);
        when_by(json_object_get(v, "promotedAt"), str(v, "promotedBy"), buf, sizeof buf);
        show_line("Promoted:", buf);
        when_by(json_object_get(v, "deprecatedAt"), str(v, "deprecatedBy"), buf, sizeof buf);
        show_line("Deprecated:", buf);
        show_provenance(field(v, "provenance"));
        int code = 0;
        if (json_array_size(field(v, "tests")))
                code = show_tests(c, field(v, "tests"));
        if (code == 0 && json_array_size(field(v, "evidence")))
                code = show_evidence(c, field(v, "evidence"));
        return code;
}

int skill_show_main(Cli *c, const VerbArgs *a) {
        SkillSpec s;
        char path[SKILL_PATH_MAX], what[64];
        json_t *v = NULL;
        if (!spec_parse(c, a->pos[0], true, &s))
                return CLI_EXIT_USAGE;
        if (cli_path(c, path, sizeof path, c->namespace_, "/v1/skills/%s", s.name) < 0)
                return out_of_memory(c);
        if (s.version)
                snprintf(path + strlen(path), sizeof path - strlen(path), "&version=%" PRId64, s.version);
        int code = cli_call(c, spec_str(&s, what, sizeof what), "GET", path, NULL, &v);
        if (code != 0)
                return code;
        if (c->output != OUTPUT_TABLE)
                code = output_value(stdout, c->output, v) < 0 ? CLI_EXIT_ERROR : 0;
        else
                code = show_table(c, v);
        json_decref(v);
        return code;
}

static const char *score_cell(json_t *v, char *buf, size_t size) {
        if (!json_is_number(v))
                return NULL;
        snprintf(buf, size, "%.3f", json_number_value(v));
        return buf;
}

static int search_table(Cli *c, json_t *answer, const char *query) {
        static const char *const headers[] = { "NAME", "VERSION", "SCORE", "LEXICAL", "SEMANTIC", "RUNTIME",
                                               "DESCRIPTION" };
        json_t *items = json_object_get(answer, "items"), *e;
        size_t i;
        char q[128];
        if (!json_is_array(items)) {
                fprintf(stderr, "%s: the server's answer has no \"items\" list\n", c->prog);
                return CLI_EXIT_ERROR;
        }
        if (!json_array_size(items)) {
                fprintf(stderr, "No skill in namespace %s matches '%s'.\n", c->namespace_, output_sanitize(query, q, sizeof q));
                return 0;
        }
        _cleanup_table_ Table *t = table_new(7, headers);
        if (!t)
                return out_of_memory(c);
        json_array_foreach(items, i, e) {
                char v[32], s[32], l[32], m[32], d[DESCRIPTION_SHOWN * 4 + 16], n[128];
                const char *cells[] = { cell(str(e, "name"), 64, n, sizeof n), int_cell(json_object_get(e, "version"), v, sizeof v),
                                        score_cell(json_object_get(e, "score"), s, sizeof s),
                                        score_cell(json_object_get(e, "lexical"), l, sizeof l),
                                        score_cell(json_object_get(e, "semantic"), m, sizeof m), str(e, "runtime"),
                                        cell(str(e, "description"), DESCRIPTION_SHOWN, d, sizeof d) };
                if (table_add(t, cells) < 0)
                        return out_of_memory(c);
        }
        int code = print_table(c, t, stdout);
        if (code == 0 && json_is_false(json_object_get(answer, "semantic")))
                fprintf(stderr, "(lexical ranking only: no embedding model is configured)\n");
        return code;
}

int skill_search_main(Cli *c, const VerbArgs *a) {
        const char *query = a->pos[0];
        char path[SKILL_PATH_MAX];
        long limit = 0;
        json_t *answer = NULL;
        if (!*query || strlen(query) > SKILL_QUERY_MAX) {
                fprintf(stderr, "%s: the query must hold 1 to %d bytes\n", c->prog, SKILL_QUERY_MAX);
                return CLI_EXIT_USAGE;
        }
        if (a->limit && !number_arg(c, "limit", a->limit, 1, SKILL_SEARCH_LIMIT_MAX, &limit))
                return CLI_EXIT_USAGE;
        _cleanup_free_ char *q = http_escape(query);
        if (!q || cli_path(c, path, sizeof path, c->namespace_, "/v1/skills/search") < 0)
                return out_of_memory(c);
        size_t n = strlen(path);
        if ((size_t) snprintf(path + n, sizeof path - n, "&q=%s", q) >= sizeof path - n)
                return out_of_memory(c);
        n = strlen(path);
        if (limit)
                snprintf(path + n, sizeof path - n, "&limit=%ld", limit);
        int code = cli_call(c, NULL, "GET", path, NULL, &answer);
        if (code != 0)
                return code;
        if (c->output != OUTPUT_TABLE)
                code = output_value(stdout, c->output, answer) < 0 ? CLI_EXIT_ERROR : 0;
        else
                code = search_table(c, answer, query);
        json_decref(answer);
        return code;
}

/* ---- promote, deprecate ----------------------------------------------------- */

/* POST a state change. A 409 tests_failed (promotion re-ran the tests and
 * one failed) prints the results too and is exit 9, like a box that failed. */
static int skill_post(Cli *c, const SkillSpec *s, const char *action, json_t **ret) {
        char path[SKILL_PATH_MAX], what[64];
        HttpResponse resp = { 0 };
        json_t *body = s->version ? json_pack("{s:I}", "version", (json_int_t) s->version) : json_object();
        if (!body || cli_path(c, path, sizeof path, c->namespace_, "/v1/skills/%s/%s", s->name, action) < 0) {
                json_decref(body);
                return out_of_memory(c);
        }
        int r = http_request_json(c->http, "POST", path, body, &resp);
        json_decref(body);
        spec_str(s, what, sizeof what);
        if (r == 0 && resp.status >= 200 && resp.status <= 299) {
                *ret = resp.json ? json_incref(resp.json) : json_object();
                http_response_done(&resp);
                return *ret ? 0 : out_of_memory(c);
        }
        int code = cli_report(c, what, r, &resp);
        json_t *err = json_object_get(resp.json, "error");
        const char *type = str(err, "type");
        if (r == 0 && type && strcmp(type, "tests_failed") == 0) {
                json_t *results = json_object_get(resp.json, "results");
                results = results ? results : json_object_get(err, "results");
                if (json_array_size(results))
                        print_results(c, results, stderr);
                code = CLI_EXIT_FUNCTION;
        }
        http_response_done(&resp);
        return code;
}

/* "NAME@V: promoted (5/5 tests passed again)". */
static void promoted_line(const SkillSpec *s, json_t *answer) {
        char what[64];
        json_t *results = json_object_get(answer, "results"), *r;
        size_t i, ok = 0;
        SkillSpec shown = { .name = s->name, .version = num(answer, "version") > 0 ? num(answer, "version") : s->version };
        json_array_foreach(results, i, r)
                ok += json_is_true(json_object_get(r, "passed"));
        printf("%s: promoted", spec_str(&shown, what, sizeof what));
        if (json_array_size(results))
                printf(" (%zu/%zu tests passed again)", ok, json_array_size(results));
        printf("\n");
}

/* "NAME@V: deprecated", "NAME: deprecated versions 1, 2", "NAME@V: already deprecated". */
static void deprecated_line(const SkillSpec *s, json_t *answer) {
        char what[64];
        json_t *done = json_object_get(answer, "deprecated"), *v;
        size_t i;
        spec_str(s, what, sizeof what);
        if (!json_is_array(done)) {
                printf("%s: deprecated%s\n", what, s->version ? "" : " (every version)");
                return;
        }
        if (json_array_size(done) == 0) {
                printf("%s: %s\n", what, s->version ? "already deprecated" : "every version was deprecated already");
                return;
        }
        if (s->version) {
                printf("%s: deprecated\n", what);
                return;
        }
        printf("%s: deprecated version%s", what, json_array_size(done) > 1 ? "s" : "");
        json_array_foreach(done, i, v)
                printf("%s%" JSON_INTEGER_FORMAT, i ? ", " : " ", json_integer_value(v));
        printf("\n");
}

static int state_change(Cli *c, const VerbArgs *a, const char *action) {
        SkillSpec s;
        json_t *answer = NULL;
        if (!spec_parse(c, a->pos[0], true, &s))
                return CLI_EXIT_USAGE;
        int code = skill_post(c, &s, action, &answer);
        if (code != 0)
                return code;
        if (c->output != OUTPUT_TABLE)
                code = output_value(stdout, c->output, answer) < 0 ? CLI_EXIT_ERROR : 0;
        else if (strcmp(action, "promote") == 0)
                promoted_line(&s, answer);
        else
                deprecated_line(&s, answer);
        json_decref(answer);
        return code;
}

int skill_promote_main(Cli *c, const VerbArgs *a) {
        return state_change(c, a, "promote");
}

int skill_deprecate_main(Cli *c, const VerbArgs *a) {
        return state_change(c, a, "deprecate");
}

/* ---- call -------------------------------------------------------------- */

int skill_call_main(Cli *c, const VerbArgs *a) {
        SkillSpec s;
        char target[64], fn[80];
        if (!spec_parse(c, a->pos[0], true, &s))
                return CLI_EXIT_USAGE;
        spec_str(&s, target, sizeof target);
        if (s.version)
                snprintf(fn, sizeof fn, "skill-%s-v%" PRId64, s.name, s.version);
        return call_invoke(c, a, "skills", target, target, s.version ? fn : NULL, NULL);
}
