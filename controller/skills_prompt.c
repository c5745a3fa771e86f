/* controller/skills_prompt.c: what the skill generator says to a model and
 * how it reads the answer (skills_prompt.h). Pure: strings in, strings out.
 * The prompt is built in a growable buffer with every untrusted part
 * clipped (at a UTF-8 boundary) and fenced with a fence longer than any
 * backtick run inside it; the parser works on a CRLF-normalised copy of the
 * answer and finds fenced blocks, prose and JSON in it. */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controller/skills_prompt.h"
#include "lib/util.h"

/* Budgets of the prompt's parts (bytes of content); they add up to well
 * under SKILL_PROMPT_MAX, which skill_prompt_full() checks once more. */
#define P_EXAMPLES_MAX          10
#define P_EXAMPLE_IO_MAX        1024
#define P_EXAMPLES_TOTAL        (8u << 10)
#define P_REFS_MAX              8
#define P_REF_DESC_MAX          300
#define P_CODE_MAX              (12u << 10)
#define P_FAILURES_SHOWN        8
#define P_FAILURE_IO_MAX        1024
#define P_FAILURE_STDERR_MAX    1536
#define P_FAILURES_TOTAL        (16u << 10)
#define P_PARSE_ERROR_MAX       512
#define P_NAMES_MAX             1024

#define JSON_ATTEMPTS_MAX       32      /* '[' in prose tried as the start of a tests array */

/* ---- a growable buffer ---------------------------------------------------- */

typedef struct Buf {
        char *p;
        size_t len, cap;
        bool oom;
} Buf;

static void buf_add(Buf *b, const char *s, size_t n) {
        if (b->oom)
                return;
        if (b->len + n + 1 > b->cap) {
                size_t cap = b->cap ? b->cap : 1024;
                while (cap < b->len + n + 1)
                        cap *= 2;
                char *p = realloc(b->p, cap);
                if (!p) {
                        b->oom = true;
                        return;
                }
                b->p = p;
                b->cap = cap;
        }
        memcpy(b->p + b->len, s, n);
        b->len += n;
        b->p[b->len] = 0;
}

static void buf_str(Buf *b, const char *s) {
        buf_add(b, s, strlen(s));
}

static void buf_printf(Buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_printf(Buf *b, const char *fmt, ...) {
        char *s = NULL;
        va_list ap;
        va_start(ap, fmt);
        int n = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (n < 0) {
                b->oom = true;
                return;
        }
        buf_add(b, s, (size_t) n);
        free(s);
}

static void buf_done(Buf *b) {
        free(b->p);
        *b = (Buf) { 0 };
}

/* ---- UTF-8 ------------------------------------------------------------- */

/* The length of the valid UTF-8 sequence at p (at most n bytes), 0 when it
 * is not one (overlong forms, surrogates and past U+10FFFF included). */
static size_t utf8_seq(const unsigned char *p, size_t n) {
        if (n == 0)
                return 0;
        if (p[0] < 0x80)
                return 1;
        size_t len = p[0] >= 0xf0 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc2 ? 2 : 0;
        if (len == 0 || p[0] > 0xf4 || len > n)
                return 0;
        for (size_t i = 1; i < len; i++)
                if ((p[i] & 0xc0) != 0x80)
                        return 0;
        if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] > 0x9f) || (p[0] == 0xf0 && p[1] < 0x90) ||
            (p[0] == 0xf4 && p[1] > 0x8f))
                return 0;
        return len;
}

/* The offset of the first byte that is not valid UTF-8, or len. */
static size_t utf8_valid_prefix(const char *s, size_t len) {
        size_t i = 0;
        while (i < len) {
                size_t k = utf8_seq((const unsigned char *) s + i, len - i);
                if (k == 0)
                        return i;
                i += k;
        }
        return len;
}

/* The most bytes <= max of s[0..len) that end at a character boundary. */
static size_t utf8_head(const char *s, size_t len, size_t max) {
        if (len <= max)
                return len;
        size_t n = max;
        while (n > 0 && ((unsigned char) s[n] & 0xc0) == 0x80)
                n--;
        return n;
}

/* Where the last <= max bytes of s[0..len) start, at a character boundary. */
static size_t utf8_tail(const char *s, size_t len, size_t max) {
        if (len <= max)
                return 0;
        size_t i = len - max;
        while (i < len && ((unsigned char) s[i] & 0xc0) == 0x80)
                i++;
        return i;
}

/* Append s with invalid UTF-8 and NUL bytes replaced by U+FFFD, so that the
 * result is always a valid JSON string. */
static void buf_clean(Buf *b, const char *s, size_t n) {
        size_t i = 0;
        while (i < n) {
                size_t start = i;
                while (i < n && s[i]) {
                        size_t k = utf8_seq((const unsigned char *) s + i, n - i);
                        if (k == 0)
                                break;
                        i += k;
                }
                buf_add(b, s + start, i - start);
                if (i < n) {
                        buf_str(b, "\xef\xbf\xbd");
                        i++;
                }
        }
}

/* ---- the prompt ---------------------------------------------------------- */

typedef struct RuntimeInfo {
        const char *name, *lang, *file, *run, *stdin_hint, *extra, *reuse;
} RuntimeInfo;

static const RuntimeInfo runtimes[] = {
        { "python3", "python", "main.py", "python3 -I main.py",
          "data = sys.stdin.read()",
          "Python 3 standard library, plus numpy and pandas (no pip packages).",
          "sys.path.insert(0, \"/run/fnbox\"); import fnbox; out = fnbox.call(\"skill:NAME\", data) "
          "(bytes back; raises fnbox.BrokerError with .status and .code)" },
        { "node", "javascript", "index.js", "node index.js",
          "const data = require(\"fs\").readFileSync(0, \"utf8\");",
          "Node.js built-in modules only (no npm packages); CommonJS (require).",
          "const fnbox = require(\"/run/fnbox/fnbox.js\"); const out = (await fnbox.call(\"skill:NAME\", data)).toString(); "
          "(inside an async function; throws fnbox.BrokerError)" },
        { "sh", "sh", "main.sh", "/bin/sh main.sh",
          "data=$(cat)",
          "POSIX sh (not bash) and the usual tools: cat, sed, awk, grep, tr, sort, wc, cut, head, tail, printf.",
          "out=$(printf '%s' \"$data\" | /run/fnbox/fnbox-call skill:NAME -) || exit 1" },
};

static const RuntimeInfo *runtime_info(const char *runtime) {
        for (size_t i = 0; runtime && i < ELEMENTSOF(runtimes); i++)
                if (strcmp(runtimes[i].name, runtime) == 0)
                        return &runtimes[i];
        return NULL;
}

bool skill_runtime_valid(const char *runtime) {
        return runtime_info(runtime) != NULL;
}

static void buf_size(Buf *b, uint64_t bytes) {
        if (bytes >= (1u << 20) && bytes % (1u << 20) == 0)
                buf_printf(b, "%" PRIu64 " MiB", bytes >> 20);
        else if (bytes >= 1024)
                buf_printf(b, "%" PRIu64 " KiB", bytes >> 10);
        else
                buf_printf(b, "%" PRIu64 " bytes", bytes);
}

static void prompt_system(Buf *b, const SkillPromptInput *in, const RuntimeInfo *rt) {
        buf_printf(b,
                   "You write small programs called boxes for fnbox, a serverless platform. Each call of a box "
                   "runs your program in a fresh sandbox:\n"
                   "- The request body is the program's stdin; its answer is what it writes to stdout. Write "
                   "nothing else to stdout.\n"
                   "- Exit status 0 means success; any other status is a failure. Write diagnostics to stderr.\n"
                   "- There is no network. The file system is read-only except a small /tmp. Files sent with a "
                   "call are at /input (read-only); files the program writes to /output are returned to the "
                   "caller.\n"
                   "- Limits: ");
        if (in->memory_bytes) {
                buf_str(b, "memory ");
                buf_size(b, in->memory_bytes);
        } else
                buf_str(b, "little memory");
        if (in->timeout_ms)
                buf_printf(b, ", %g s of wall-clock time", (double) in->timeout_ms / 1000);
        else
                buf_str(b, ", a few seconds of time");
        buf_str(b, ", few processes. A program past a limit is killed.\n");
        buf_printf(b,
                   "- Existing skills (other boxes) can be reused through the broker, a unix socket whose path is "
                   "in the environment variable FNBOX_BROKER: run `/run/fnbox/fnbox-call skill:NAME INPUT` (INPUT "
                   "`-` reads stdin; prints the skill's answer; exit status 0 on success, 1 on an error). "
                   "In %s: %s\n\n"
                   "The runtime is %s: the program is the file %s, run as `%s`. %s Read all of stdin first, "
                   "e.g. `%s`.\n\n",
                   rt->name, rt->reuse, rt->name, rt->file, rt->run, rt->extra, rt->stdin_hint);
        buf_printf(b,
                   "Answer in exactly this format and nothing else:\n"
                   "1. The whole program in one fenced code block tagged %s: ```%s ... ```\n"
                   "2. A line that starts with \"Description:\" followed by one paragraph saying what the box does, "
                   "what input it expects and what output it gives (people and other boxes find it by this).\n"
                   "3. The tests in one fenced code block tagged json: an array of 3 to 10 objects "
                   "{\"name\": \"short-name\", \"input\": \"the stdin text\", \"expected\": \"the exact stdout\"}. "
                   "Use \"expected\": null when only success (exit 0) can be checked. Cover the examples, edge "
                   "cases such as empty input, and errors. Output is compared with trailing spaces of each line "
                   "and trailing newlines removed.\n",
                   rt->lang, rt->lang);
}

/* A fence of backticks longer than any run of them in s. */
static void fence_for(const char *s, size_t n, char fence[16]) {
        size_t run = 0, most = 0;
        for (size_t i = 0; i < n; i++) {
                run = s[i] == '`' ? run + 1 : 0;
                most = run > most ? run : most;
        }
        size_t k = most >= 3 ? most + 1 : 3;
        k = k > 15 ? 15 : k;
        memset(fence, '`', k);
        fence[k] = 0;
}

typedef enum Clip { CLIP_HEAD, CLIP_TAIL, CLIP_BOTH } Clip;

/* s as a fenced block of at most max bytes of content (the head, the tail,
 * or both with a note in between), with a note when clipped. */
static void buf_block(Buf *b, const char *lang, const char *s, size_t n, size_t max, Clip how) {
        char fence[16];
        size_t head = n, tail = n;
        if (n > max) {
                head = how == CLIP_TAIL ? 0 : utf8_head(s, n, how == CLIP_BOTH ? max / 2 : max);
                tail = how == CLIP_HEAD ? n : utf8_tail(s, n, how == CLIP_BOTH ? max / 2 : max);
        }
        fence_for(s, n, fence);
        buf_printf(b, "%s%s\n", fence, lang ? lang : "");
        buf_clean(b, s, head);
        if (head < tail)
                buf_printf(b, "%s[... %zu bytes left out ...]%s", head ? "\n" : "", tail - head, tail < n ? "\n" : "");
        buf_clean(b, s + tail, n - tail);
        buf_printf(b, "%s%s\n", !b->oom && b->p[b->len - 1] != '\n' ? "\n" : "", fence);
}

static void prompt_examples(Buf *b, const SkillExample *ex, size_t n) {
        size_t used = 0, shown = 0;
        if (n == 0)
                return;
        buf_str(b, "\nExamples (the box must give exactly these outputs; they are added to the tests):\n");
        for (size_t i = 0; i < n && i < P_EXAMPLES_MAX && used < P_EXAMPLES_TOTAL; i++, shown++) {
                const char *input = ex[i].input ? ex[i].input : "";
                size_t start = b->len;
                buf_printf(b, "Example %zu input:\n", i + 1);
                buf_block(b, NULL, input, strlen(input), P_EXAMPLE_IO_MAX, CLIP_HEAD);
                if (ex[i].output) {
                        buf_printf(b, "Example %zu output:\n", i + 1);
                        buf_block(b, NULL, ex[i].output, strlen(ex[i].output), P_EXAMPLE_IO_MAX, CLIP_HEAD);
                }
                used += b->len - start;
        }
        if (shown < n)
                buf_printf(b, "(%zu more examples not shown)\n", n - shown);
}

/* One line of text: control characters and newlines become spaces. */
static void buf_line(Buf *b, const char *s, size_t max) {
        size_t n = utf8_head(s, strlen(s), max);
        size_t start = b->len;
        buf_clean(b, s, n);
        for (size_t i = start; !b->oom && i < b->len; i++)
                if ((unsigned char) b->p[i] < 0x20 || b->p[i] == 0x7f)
                        b->p[i] = ' ';
        if (n < strlen(s))
                buf_str(b, "...");
}

static void prompt_refs(Buf *b, const SkillRef *refs, size_t n) {
        if (n == 0) {
                buf_str(b, "\nNo existing skill fits this task; write it from scratch.\n");
                return;
        }
        buf_str(b, "\nExisting skills that may help (call one with fnbox-call skill:NAME when it does part of "
                   "the task, instead of writing that part again; otherwise ignore them):\n");
        for (size_t i = 0; i < n && i < P_REFS_MAX; i++) {
                buf_str(b, "- ");
                buf_line(b, refs[i].name ? refs[i].name : "?", 64);
                buf_printf(b, " (version %" PRId64 ", ", refs[i].version);
                buf_line(b, refs[i].runtime ? refs[i].runtime : "?", 16);
                buf_str(b, "): ");
                buf_line(b, refs[i].description ? refs[i].description : "", P_REF_DESC_MAX);
                buf_str(b, "\n");
        }
}

static const char *jstr(json_t *o, const char *key) {
        return json_string_value(json_object_get(o, key));
}

/* Why a test failed, in words. */
static void failure_reason(Buf *b, json_t *r) {
        const char *err = jstr(r, "error");
        json_t *code = json_object_get(r, "exitCode"), *sig = json_object_get(r, "signal");
        if (err && strcmp(err, "timeout") == 0)
                buf_str(b, "timed out: killed at the time limit");
        else if (err && strcmp(err, "out_of_memory") == 0)
                buf_str(b, "ran out of memory: killed at the memory limit");
        else if (err && strcmp(err, "output_too_large") == 0)
                buf_str(b, "wrote more output than allowed");
        else if (json_is_integer(code) && json_integer_value(code) != 0)
                buf_printf(b, "exited with status %" JSON_INTEGER_FORMAT, json_integer_value(code));
        else if (json_is_integer(sig))
                buf_printf(b, "killed by signal %" JSON_INTEGER_FORMAT, json_integer_value(sig));
        else if (err) {
                buf_str(b, "failed: ");
                buf_line(b, err, 64);
                if (json_is_integer(json_object_get(r, "status")))
                        buf_printf(b, " (HTTP %" JSON_INTEGER_FORMAT ")", json_integer_value(json_object_get(r, "status")));
        } else
                buf_str(b, "wrong output (exit status 0)");
}

static void failure_part(Buf *b, const char *label, json_t *v, size_t max, Clip how) {
        const char *s = json_string_value(v);
        if (!s)
                return;
        buf_printf(b, "%s:\n", label);
        buf_block(b, NULL, s, json_string_length(v), max, how);
}

static void prompt_failure(Buf *b, json_t *r, size_t index) {
        const char *name = jstr(r, "name");
        json_t *expected = json_object_get(r, "expected");
        buf_str(b, "\nTest ");
        if (name) {
                buf_str(b, "\"");
                buf_line(b, name, SKILL_TEST_NAME_MAX);
                buf_str(b, "\"");
        } else
                buf_printf(b, "%zu", index + 1);
        buf_str(b, " FAILED: ");
        failure_reason(b, r);
        buf_str(b, ".\n");
        failure_part(b, "input", json_object_get(r, "input"), P_FAILURE_IO_MAX, CLIP_HEAD);
        if (json_is_string(expected))
                failure_part(b, "expected output", expected, P_FAILURE_IO_MAX, CLIP_HEAD);
        else
                buf_str(b, "expected: exit status 0\n");
        failure_part(b, "actual output", json_object_get(r, "actual"), P_FAILURE_IO_MAX, CLIP_HEAD);
        const char *err = jstr(r, "stderr");
        if (err && *err)
                failure_part(b, "stderr (its end)", json_object_get(r, "stderr"), P_FAILURE_STDERR_MAX, CLIP_TAIL);
}

/* The names of results[] that passed (or failed), comma-separated, bounded. */
static void result_names(Buf *b, json_t *results, bool passed, size_t skip_failed) {
        size_t i, used = 0, failed = 0, left = 0;
        json_t *r;
        json_array_foreach(results, i, r) {
                bool p = json_is_true(json_object_get(r, "passed"));
                if (p != passed || (!p && failed++ < skip_failed))
                        continue;
                const char *name = jstr(r, "name");
                if (used >= P_NAMES_MAX) {
                        left++;
                        continue;
                }
                size_t start = b->len;
                buf_str(b, used ? ", " : "");
                buf_line(b, name ? name : "?", SKILL_TEST_NAME_MAX);
                used += b->len - start;
        }
        if (left)
                buf_printf(b, " and %zu more", left);
}

static void prompt_feedback(Buf *b, const SkillPromptInput *in, json_t *results, const char *parse_error) {
        size_t n = json_array_size(results), failed = 0, i;
        json_t *r;
        json_array_foreach(results, i, r)
                failed += !json_is_true(json_object_get(r, "passed"));
        if (in->round && in->rounds)
                buf_printf(b, "This is round %u of %u. ", in->round, in->rounds);
        if (parse_error) {
                buf_str(b, "Your previous answer could not be used: ");
                buf_line(b, parse_error, P_PARSE_ERROR_MAX);
                buf_str(b, ".\n");
        } else if (n)
                buf_printf(b, "The box above failed %zu of its %zu tests. Each was run in a fresh sandbox.\n",
                           failed, n);
        else
                buf_str(b, "The box above did not pass its tests.\n");
        if (n > failed) {
                buf_str(b, "Passed: ");
                result_names(b, results, true, 0);
                buf_str(b, ".\n");
        }
        size_t shown = 0, start = b->len;
        json_array_foreach(results, i, r) {
                if (json_is_true(json_object_get(r, "passed")))
                        continue;
                if (shown >= P_FAILURES_SHOWN || b->len - start >= P_FAILURES_TOTAL)
                        break;
                prompt_failure(b, r, i);
                shown++;
        }
        if (failed > shown) {
                buf_printf(b, "\n%zu more tests failed: ", failed - shown);
                result_names(b, results, false, shown);
                buf_str(b, ".\n");
        }
        buf_str(b, "\nFix the program so that every test passes. If a test itself is wrong (its expected output "
                   "contradicts the task), correct that test, but never weaken a test only to pass it. Answer "
                   "again with the whole program, the description and all the tests, in exactly the required "
                   "format.\n");
}

static int add_message(json_t *msgs, const char *role, Buf *b) {
        if (b->oom)
                return -ENOMEM;
        json_t *m = json_pack("{s:s,s:s%}", "role", role, "content", b->p ? b->p : "", b->len);
        return m && json_array_append_new(msgs, m) == 0 ? 0 : -ENOMEM;
}

static size_t prompt_size(json_t *msgs) {
        size_t i, n = 0;
        json_t *m;
        json_array_foreach(msgs, i, m)
                n += json_string_length(json_object_get(m, "content"));
        return n;
}

static int prompt_build(json_t *msgs, const SkillPromptInput *in, const RuntimeInfo *rt) {
        Buf b = { 0 };
        json_t *prev = in->prev_results, *results = json_is_array(prev) ? prev : json_object_get(prev, "results");
        const char *parse_error = json_is_object(prev) ? jstr(prev, "parseError") : NULL;
        const char *code = in->prev_code ? in->prev_code : json_is_object(prev) ? jstr(prev, "code") : NULL;
        prompt_system(&b, in, rt);
        int r = add_message(msgs, "system", &b);
        buf_done(&b);
        buf_str(&b, "Task: ");
        size_t tn = strlen(in->task), th = utf8_head(in->task, tn, SKILL_TASK_MAX);
        buf_clean(&b, in->task, th);
        buf_str(&b, th < tn ? " [...]\n" : "\n");
        buf_printf(&b, "\nRuntime: %s\n", rt->name);
        prompt_examples(&b, in->examples, in->n_examples);
        if (in->files && *in->files) {
                size_t fn = strlen(in->files), fh = utf8_head(in->files, fn, SKILL_FILES_MAX);
                buf_str(&b, "\nInput files: every call, the tests' included, has these at /input (read-only); "
                        "read them from there:\n");
                buf_clean(&b, in->files, fh);
                buf_str(&b, fh < fn ? " [...]\n" : "\n");
        }
        prompt_refs(&b, in->refs, in->n_refs);
        buf_str(&b, "\nWrite the box now, in the required format.\n");
        r = r < 0 ? r : add_message(msgs, "user", &b);
        buf_done(&b);
        if (!prev && !code)
                return r;
        if (code) {
                buf_block(&b, rt->lang, code, strlen(code), P_CODE_MAX, CLIP_BOTH);
                r = r < 0 ? r : add_message(msgs, "assistant", &b);
                buf_done(&b);
        }
        prompt_feedback(&b, in, json_is_array(results) ? results : NULL, parse_error);
        r = r < 0 ? r : add_message(msgs, "user", &b);
        buf_done(&b);
        return r;
}

json_t *skill_prompt_full(const SkillPromptInput *in) {
        const RuntimeInfo *rt = in ? runtime_info(in->runtime) : NULL;
        if (!rt || !in->task || !*in->task)
                return NULL;
        json_t *msgs = json_array();
        if (!msgs || prompt_build(msgs, in, rt) < 0 || prompt_size(msgs) > SKILL_PROMPT_MAX) {
                json_decref(msgs);
                return NULL;
        }
        return msgs;
}

json_t *skill_prompt(const char *task, const char *runtime, const SkillExample *ex, size_t n_ex,
                     const SkillRef *refs, size_t n_refs, const char *prev_code, json_t *prev_results) {
        SkillPromptInput in = {
                .task = task, .runtime = runtime, .examples = ex, .n_examples = n_ex, .refs = refs,
                .n_refs = n_refs, .prev_code = prev_code, .prev_results = prev_results,
        };
        return skill_prompt_full(&in);
}

/* ---- the answer: fenced blocks ------------------------------------------- */

typedef enum Lang { LANG_NONE, LANG_PYTHON, LANG_NODE, LANG_SH, LANG_JSON, LANG_TEXT, LANG_OTHER } Lang;

typedef struct Block {
        const char *start, *end;        /* the whole block, fences included */
        const char *body;
        size_t body_len;
        Lang lang;
        char tag[32];
} Block;

#define BLOCKS_MAX 64

static Lang lang_from_tag(const char *tag) {
        static const struct { const char *tag; Lang lang; } tags[] = {
                { "python", LANG_PYTHON }, { "python3", LANG_PYTHON }, { "py", LANG_PYTHON }, { "py3", LANG_PYTHON },
                { "javascript", LANG_NODE }, { "js", LANG_NODE }, { "node", LANG_NODE }, { "nodejs", LANG_NODE },
                { "mjs", LANG_NODE }, { "cjs", LANG_NODE },
                { "sh", LANG_SH }, { "bash", LANG_SH }, { "shell", LANG_SH }, { "posix", LANG_SH }, { "dash", LANG_SH },
                { "json", LANG_JSON }, { "jsonc", LANG_JSON }, { "json5", LANG_JSON },
                { "text", LANG_TEXT }, { "txt", LANG_TEXT }, { "plain", LANG_TEXT }, { "plaintext", LANG_TEXT },
                { "tests", LANG_TEXT }, { "test", LANG_TEXT },
        };
        if (!*tag)
                return LANG_NONE;
        for (size_t i = 0; i < ELEMENTSOF(tags); i++)
                if (strcmp(tags[i].tag, tag) == 0)
                        return tags[i].lang;
        return LANG_OTHER;
}

static Lang lang_of_runtime(const char *runtime) {
        return strcmp(runtime, "python3") == 0 ? LANG_PYTHON : strcmp(runtime, "node") == 0 ? LANG_NODE : LANG_SH;
}

static const char *line_end(const char *p) {
        const char *e = strchr(p, '\n');
        return e ? e : p + strlen(p);
}

/* A fence line: blanks, then 3 or more of ` or ~. Returns the fence's
 * length and character, 0 when the line is not one. */
static size_t fence_at(const char *p, const char *eol, char *ret_ch, const char **ret_after) {
        while (p < eol && (*p == ' ' || *p == '\t'))
                p++;
        if (p >= eol || (*p != '`' && *p != '~'))
                return 0;
        char ch = *p;
        size_t n = 0;
        while (p + n < eol && p[n] == ch)
                n++;
        if (n < 3)
                return 0;
        *ret_ch = ch;
        *ret_after = p + n;
        return n;
}

/* The info string's first word, lower case, without "{." decoration. */
static void block_tag(const char *p, const char *eol, char *tag, size_t size) {
        size_t n = 0;
        while (p < eol && (*p == ' ' || *p == '\t' || *p == '{' || *p == '.'))
                p++;
        while (p < eol && n + 1 < size && (isalnum((unsigned char) *p) || *p == '-' || *p == '_' || *p == '+'))
                tag[n++] = (char) tolower((unsigned char) *p++);
        tag[n] = 0;
}

/* Every fenced block of t, in order; an unclosed one runs to the end. */
static size_t blocks_find(const char *t, Block *blocks, size_t max) {
        size_t n = 0;
        const char *p = t;
        while (*p && n < max) {
                const char *eol = line_end(p), *after;
                char ch;
                size_t k = fence_at(p, eol, &ch, &after);
                if (!k || (ch == '`' && memchr(after, '`', (size_t) (eol - after)))) {
                        p = *eol ? eol + 1 : eol;
                        continue;
                }
                Block *b = &blocks[n++];
                *b = (Block) { .start = p, .body = *eol ? eol + 1 : eol };
                block_tag(after, eol, b->tag, sizeof b->tag);
                b->lang = lang_from_tag(b->tag);
                const char *q = b->body;
                for (;;) {
                        const char *qe = line_end(q), *qa;
                        char qc;
                        size_t qk = *q ? fence_at(q, qe, &qc, &qa) : 0;
                        if (!*q) {
                                b->body_len = (size_t) (q - b->body);
                                b->end = q;
                                break;
                        }
                        if (qk >= k && qc == ch && qa + strspn(qa, " \t") >= qe) {
                                b->body_len = (size_t) (q - b->body);
                                b->end = *qe ? qe + 1 : qe;
                                break;
                        }
                        q = *qe ? qe + 1 : qe;
                }
                p = b->end;
        }
        return n;
}

static bool blank(const char *s, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (!isspace((unsigned char) s[i]))
                        return false;
        return true;
}

/* The interpreter a #! line names, LANG_NONE when there is none. */
static Lang shebang_lang(const char *s, size_t n) {
        if (n < 2 || s[0] != '#' || s[1] != '!')
                return LANG_NONE;
        const char *e = memchr(s, '\n', n);
        size_t len = e ? (size_t) (e - s) : n;
        _cleanup_free_ char *line = strndup(s, len);
        if (!line)
                return LANG_NONE;
        if (strstr(line, "python"))
                return LANG_PYTHON;
        if (strstr(line, "node"))
                return LANG_NODE;
        if (strstr(line, "sh"))
                return LANG_SH;
        return LANG_OTHER;
}

/* Lines with "=>" make up every non-blank line of s. */
static bool test_lines_only(const char *s, size_t n) {
        bool any = false;
        const char *p = s, *end = s + n;
        while (p < end) {
                const char *e = memchr(p, '\n', (size_t) (end - p));
                e = e ? e : end;
                if (!blank(p, (size_t) (e - p))) {
                        if (!memmem(p, (size_t) (e - p), "=>", 2))
                                return false;
                        any = true;
                }
                p = e + 1;
        }
        return any;
}

static bool parses_as_json(const char *s, size_t n) {
        json_t *j = json_loadb(s, n, JSON_DECODE_ANY, NULL);
        bool ok = json_is_array(j) || json_is_object(j);
        json_decref(j);
        return ok;
}

static const char *lang_name(Lang l) {
        switch (l) {
        case LANG_PYTHON: return "python";
        case LANG_NODE: return "javascript";
        case LANG_SH: return "sh";
        default: return "?";
        }
}

/* The code block: the longest one tagged with the runtime's language, else
 * the longest untagged one that is code. NULL with why set otherwise. */
static const Block *code_pick(const Block *blocks, size_t n, const char *runtime, char *why, size_t why_len) {
        Lang want = lang_of_runtime(runtime);
        const Block *best = NULL, *other = NULL;
        for (size_t i = 0; i < n; i++)
                if (blocks[i].lang == want && !blank(blocks[i].body, blocks[i].body_len) &&
                    (!best || blocks[i].body_len > best->body_len))
                        best = &blocks[i];
        for (size_t i = 0; !best && i < n; i++) {
                const Block *b = &blocks[i];
                Lang sb = shebang_lang(b->body, b->body_len);
                if (b->lang != LANG_NONE || blank(b->body, b->body_len) || (sb != LANG_NONE && sb != want) ||
                    parses_as_json(b->body, b->body_len) || test_lines_only(b->body, b->body_len))
                        continue;
                if (!other || b->body_len > other->body_len)
                        other = b;
        }
        if (best || other)
                return best ? best : other;
        for (size_t i = 0; i < n; i++)
                if ((blocks[i].lang == LANG_PYTHON || blocks[i].lang == LANG_NODE || blocks[i].lang == LANG_SH ||
                     blocks[i].lang == LANG_OTHER) && !blank(blocks[i].body, blocks[i].body_len)) {
                        snprintf(why, why_len, "no %s code: the code block is tagged %s, but the runtime is %s "
                                 "(expected a ```%s block)", runtime, blocks[i].tag, runtime, lang_name(want));
                        return NULL;
                }
        snprintf(why, why_len, "no code: the answer has no fenced code block with the program (expected ```%s ... ```)",
                 lang_name(want));
        return NULL;
}

/* ---- the answer: tests ------------------------------------------------- */

typedef struct Tests {
        SkillTest *v;
        size_t n;
        size_t dropped_big, dropped_many, renamed;
} Tests;

static void tests_free(Tests *t) {
        for (size_t i = 0; i < t->n; i++) {
                free(t->v[i].name);
                free(t->v[i].input);
                free(t->v[i].expected);
        }
        free(t->v);
        *t = (Tests) { 0 };
}

static bool tests_has_name(const Tests *t, const char *name) {
        for (size_t i = 0; i < t->n; i++)
                if (strcmp(t->v[i].name, name) == 0)
                        return true;
        return false;
}

/* A test's name: printable, at most SKILL_TEST_NAME_MAX bytes, "test-N"
 * when none, made unique with "-2", "-3"... */
static char *test_name(Tests *t, const char *given) {
        char base[SKILL_TEST_NAME_MAX + 1], name[SKILL_TEST_NAME_MAX + 16];
        size_t n = given ? utf8_head(given, strlen(given), SKILL_TEST_NAME_MAX) : 0, k = 0;
        for (size_t i = 0; i < n; i++)
                base[k++] = (unsigned char) given[i] < 0x20 || given[i] == 0x7f ? ' ' : given[i];
        while (k && base[k - 1] == ' ')
                k--;
        base[k] = 0;
        if (k == 0)
                snprintf(base, sizeof base, "test-%zu", t->n + 1);
        snprintf(name, sizeof name, "%s", base);
        for (unsigned i = 2; tests_has_name(t, name); i++)
                snprintf(name, sizeof name, "%s-%u", base, i);
        if (strcmp(name, base) != 0)
                t->renamed++;
        return strdup(name);
}

/* Add one test; input and expected are taken over (freed on failure). */
static int tests_add(Tests *t, const char *name, char *input, char *expected) {
        if (t->n >= SKILL_TESTS_MAX || strlen(input) > SKILL_TEST_IO_MAX ||
            (expected && strlen(expected) > SKILL_TEST_IO_MAX)) {
                if (t->n >= SKILL_TESTS_MAX)
                        t->dropped_many++;
                else
                        t->dropped_big++;
                free(input);
                free(expected);
                return 0;
        }
        SkillTest *v = reallocarray(t->v, t->n + 1, sizeof *v);
        if (v)
                t->v = v;
        char *nm = v ? test_name(t, name) : NULL;
        if (!nm) {
                free(input);
                free(expected);
                return -ENOMEM;
        }
        t->v[t->n++] = (SkillTest) { .name = nm, .input = input, .expected = expected };
        return 0;
}

/* A JSON value as stdin text: a string as it is, anything else compact JSON. */
static int json_text(json_t *v, char **ret) {
        if (json_is_string(v))
                *ret = strndup(json_string_value(v), json_string_length(v));
        else
                *ret = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        return *ret ? 0 : -ENOMEM;
}

static json_t *json_get_any(json_t *o, const char *const *keys, size_t n, bool *found) {
        for (size_t i = 0; i < n; i++) {
                json_t *v = json_object_get(o, keys[i]);
                if (v) {
                        *found = true;
                        return v;
                }
        }
        return NULL;
}

static int tests_from_json_item(Tests *t, json_t *item) {
        static const char *const in_keys[] = { "input", "stdin", "in" };
        static const char *const out_keys[] = { "expected", "expected_output", "expectedOutput", "output",
                                                "stdout", "out" };
        bool has_in = false, has_out = false;
        if (!json_is_object(item))
                return 0;
        json_t *in = json_get_any(item, in_keys, ELEMENTSOF(in_keys), &has_in);
        json_t *out = json_get_any(item, out_keys, ELEMENTSOF(out_keys), &has_out);
        if (!has_in && !has_out)
                return 0;
        char *input = NULL, *expected = NULL;
        if (in && !json_is_null(in) && json_text(in, &input) < 0)
                return -ENOMEM;
        if (!input && !(input = strdup("")))
                return -ENOMEM;
        if (out && !json_is_null(out) && json_text(out, &expected) < 0) {
                free(input);
                return -ENOMEM;
        }
        return tests_add(t, jstr(item, "name"), input, expected);
}

/* Tests of a JSON value: an array of test objects, or an object with
 * "tests" (or "test_cases"). *ret_desc: the object's "description". */
static int tests_from_json(Tests *t, json_t *v, char **ret_desc) {
        json_t *arr = json_is_array(v) ? v : json_object_get(v, "tests");
        size_t i;
        json_t *item;
        if (!arr && json_is_object(v))
                arr = json_object_get(v, "test_cases");
        if (json_is_object(v) && jstr(v, "description") && ret_desc && !*ret_desc &&
            !(*ret_desc = strdup(jstr(v, "description"))))
                return -ENOMEM;
        json_array_foreach(arr, i, item) {
                int r = tests_from_json_item(t, item);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* A copy of s without // comments and trailing commas (outside strings),
 * which models write into JSON. */
static char *json_relax(const char *s, size_t n) {
        char *out = malloc(n + 1);
        size_t k = 0;
        bool in_str = false;
        if (!out)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (in_str) {
                        out[k++] = c;
                        if (c == '\\' && i + 1 < n)
                                out[k++] = s[++i];
                        else if (c == '"')
                                in_str = false;
                        continue;
                }
                if (c == '/' && i + 1 < n && s[i + 1] == '/') {
                        while (i < n && s[i] != '\n')
                                i++;
                        if (i < n)
                                out[k++] = '\n';
                        continue;
                }
                if (c == ',') {
                        size_t j = i + 1;
                        while (j < n && isspace((unsigned char) s[j]))
                                j++;
                        if (j < n && (s[j] == ']' || s[j] == '}'))
                                continue;
                }
                in_str = c == '"';
                out[k++] = c;
        }
        out[k] = 0;
        return out;
}

/* Parse the first JSON value of s (prose after it is ignored), relaxed on a
 * second try. jerr: the first error, for the message. */
static json_t *json_first(const char *s, size_t n, json_error_t *jerr) {
        json_t *v = json_loadb(s, n, JSON_DISABLE_EOF_CHECK, jerr);
        if (v)
                return v;
        _cleanup_free_ char *relaxed = json_relax(s, n);
        return relaxed ? json_loads(relaxed, JSON_DISABLE_EOF_CHECK, NULL) : NULL;
}

static int tests_from_blocks(Tests *t, const Block *blocks, size_t n, const Block *code, char **desc,
                             char *jerr_msg, size_t jerr_len) {
        for (size_t i = 0; i < n && t->n == 0; i++) {
                const Block *b = &blocks[i];
                if (b == code || (b->lang != LANG_JSON && b->lang != LANG_NONE && b->lang != LANG_TEXT))
                        continue;
                const char *open = b->body + strcspn(b->body, "[{");
                if (open >= b->body + b->body_len)
                        continue;
                json_error_t jerr;
                json_t *v = json_first(open, b->body_len - (size_t) (open - b->body), &jerr);
                if (!v) {
                        if (b->lang == LANG_JSON && !jerr_msg[0])
                                snprintf(jerr_msg, jerr_len, "the json block does not parse (line %d: %s)",
                                         jerr.line, jerr.text);
                        continue;
                }
                int r = tests_from_json(t, v, desc);
                json_decref(v);
                if (r < 0)
                        return r;
        }
        return 0;
}

static bool inside(const Block *blocks, size_t n, const char *p) {
        for (size_t i = 0; i < n; i++)
                if (p >= blocks[i].start && p < blocks[i].end)
                        return true;
        return false;
}

/* A JSON array of tests written without a fence: tried at each '[' of the
 * prose (a bounded number of times). */
static int tests_from_prose_json(Tests *t, const char *text, const Block *blocks, size_t n) {
        unsigned attempts = 0;
        for (const char *p = strchr(text, '['); p && t->n == 0 && attempts < JSON_ATTEMPTS_MAX; p = strchr(p + 1, '[')) {
                if (inside(blocks, n, p))
                        continue;
                const char *q = p + 1 + strspn(p + 1, " \t\n");
                if (*q != '{')
                        continue;
                attempts++;
                json_t *v = json_first(p, strlen(p), &(json_error_t) { 0 });
                if (!v)
                        continue;
                int r = tests_from_json(t, v, NULL);
                json_decref(v);
                if (r < 0)
                        return r;
        }
        return 0;
}

static void trim(const char **s, const char **e) {
        while (*s < *e && isspace((unsigned char) **s))
                (*s)++;
        while (*e > *s && isspace((unsigned char) (*e)[-1]))
                (*e)--;
}

/* A side of "IN => OUT": labels, bullets, backticks and quotes removed; a
 * "double-quoted" side is a JSON string (escapes understood). */
static char *side_value(const char *s, const char *e, bool left) {
        trim(&s, &e);
        if (left) {
                if (e - s >= 2 && (s[0] == '-' || s[0] == '*' || s[0] == '+') && s[1] == ' ')
                        s += 2;
                else if (isdigit((unsigned char) *s)) {
                        const char *d = s;
                        while (d < e && isdigit((unsigned char) *d))
                                d++;
                        if (d + 1 < e && (*d == '.' || *d == ')') && d[1] == ' ')
                                s = d + 2;
                }
        }
        trim(&s, &e);
        static const char *const labels[] = { "input:", "output:", "expected:", "in:", "out:" };
        for (size_t i = 0; i < ELEMENTSOF(labels); i++)
                if ((size_t) (e - s) >= strlen(labels[i]) && strncasecmp(s, labels[i], strlen(labels[i])) == 0) {
                        s += strlen(labels[i]);
                        break;
                }
        trim(&s, &e);
        if (e > s && e[-1] == ',' && !left)
                e--;
        if (e - s >= 2 && *s == '`' && e[-1] == '`') {
                s++;
                e--;
        }
        if (e - s >= 2 && *s == '"' && e[-1] == '"') {
                json_t *v = json_loadb(s, (size_t) (e - s), JSON_DECODE_ANY, NULL);
                char *r = json_is_string(v) ? strndup(json_string_value(v), json_string_length(v)) : NULL;
                json_decref(v);
                if (r)
                        return r;
        }
        if (e - s >= 2 && ((*s == '\'' && e[-1] == '\'') || (*s == '"' && e[-1] == '"'))) {
                s++;
                e--;
        }
        return strndup(s, (size_t) (e - s));
}

static int tests_from_lines(Tests *t, const char *text, const Block *blocks, size_t n, const Block *code) {
        for (const char *p = text; *p; ) {
                const char *eol = line_end(p), *arrow = memmem(p, (size_t) (eol - p), "=>", 2);
                bool usable = arrow != NULL;
                for (size_t i = 0; usable && i < n; i++)
                        if (p >= blocks[i].start && p < blocks[i].end)
                                usable = &blocks[i] != code &&
                                         (blocks[i].lang == LANG_NONE || blocks[i].lang == LANG_TEXT);
                if (usable && strncasecmp(p + strspn(p, " \t*#_"), "description", 11) != 0) {
                        char *input = side_value(p, arrow, true), *expected = side_value(arrow + 2, eol, false);
                        if (!input || !expected) {
                                free(input);
                                free(expected);
                                return -ENOMEM;
                        }
                        int r = tests_add(t, NULL, input, expected);
                        if (r < 0)
                                return r;
                }
                p = *eol ? eol + 1 : eol;
        }
        return 0;
}

/* ---- the answer: the description ----------------------------------------- */

/* Whitespace folded to single spaces, markdown emphasis at the ends dropped,
 * clipped to SKILL_DESCRIPTION_MAX. */
static char *fold(const char *s, const char *e) {
        Buf b = { 0 };
        bool space = false;
        trim(&s, &e);
        while (s < e && (*s == '*' || *s == '_'))
                s++;
        while (e > s && (e[-1] == '*' || e[-1] == '_'))
                e--;
        trim(&s, &e);
        buf_str(&b, "");
        for (; s < e && b.len < SKILL_DESCRIPTION_MAX + 8; s++) {
                if (isspace((unsigned char) *s)) {
                        space = true;
                        continue;
                }
                if (space && b.len)
                        buf_add(&b, " ", 1);
                space = false;
                buf_add(&b, s, 1);
        }
        if (b.oom)
                return NULL;
        b.p[utf8_head(b.p, b.len, SKILL_DESCRIPTION_MAX)] = 0;
        return b.p;
}

/* The end of the paragraph that starts at p: a blank line, a fence, or a
 * block. */
static const char *paragraph_end(const char *p, const Block *blocks, size_t n) {
        while (*p) {
                const char *eol = line_end(p), *after;
                char ch;
                if (blank(p, (size_t) (eol - p)) || fence_at(p, eol, &ch, &after) || inside(blocks, n, p))
                        return p;
                p = *eol ? eol + 1 : eol;
        }
        return p;
}

/* "Description: ...", "**Description:** ...", "## Description" then a paragraph. */
static char *description_labelled(const char *text, const Block *blocks, size_t n) {
        for (const char *p = text; *p; ) {
                const char *eol = line_end(p), *q = p + strspn(p, " \t#*_>0123456789.");
                p = *eol ? eol + 1 : eol;
                if (inside(blocks, n, q) || strncasecmp(q, "description", 11) != 0)
                        continue;
                q += 11;
                q += strspn(q, " \t*_");
                if (*q == ':')
                        q += 1 + strspn(q + 1, " \t*_");
                else if (q < eol)
                        continue;       /* "Description of ...": prose, not a label */
                const char *start = q;
                if (blank(q, (size_t) (eol - q)))
                        for (start = eol; *start == '\n'; start++)
                                ;
                char *d = fold(start, paragraph_end(start, blocks, n));
                if (!d || *d)
                        return d;
                free(d);
        }
        return NULL;
}

/* The first paragraph of prose that is not a lead-in ("Here is the code:"),
 * a heading or a test line. */
static char *description_prose(const char *text, const Block *blocks, size_t n) {
        for (const char *p = text; *p; ) {
                const char *eol = line_end(p);
                if (inside(blocks, n, p) || blank(p, (size_t) (eol - p)) || *(p + strspn(p, " \t")) == '#') {
                        p = *eol ? eol + 1 : eol;
                        continue;
                }
                const char *e = paragraph_end(p, blocks, n), *te = e, *ts = p;
                trim(&ts, &te);
                if (te > ts && te[-1] != ':' && !memmem(ts, (size_t) (te - ts), "=>", 2))
                        return fold(ts, te);
                p = e > p ? e : (*eol ? eol + 1 : eol);
        }
        return strdup("");
}

/* ---- the answer ---------------------------------------------------------- */

/* text with CRLF and lone CR as LF, NUL-terminated. */
static char *normalise(const char *text, size_t len) {
        char *t = malloc(len + 1);
        size_t k = 0;
        if (!t)
                return NULL;
        for (size_t i = 0; i < len; i++) {
                if (text[i] == '\r') {
                        t[k++] = '\n';
                        if (i + 1 < len && text[i + 1] == '\n')
                                i++;
                } else
                        t[k++] = text[i];
        }
        t[k] = 0;
        return t;
}

static int answer_check(const char *text, size_t len, const char *runtime, char *why, size_t why_len) {
        if (!skill_runtime_valid(runtime)) {
                snprintf(why, why_len, "unknown runtime %s (expected python3, node or sh)", runtime ? runtime : "(none)");
                return -EINVAL;
        }
        if (!text || blank(text, len)) {
                snprintf(why, why_len, "the answer is empty");
                return -EBADMSG;
        }
        if (len > SKILL_ANSWER_MAX) {
                snprintf(why, why_len, "the answer is %zu bytes, more than %u KiB", len, SKILL_ANSWER_MAX >> 10);
                return -EBADMSG;
        }
        if (memchr(text, 0, len)) {
                snprintf(why, why_len, "the answer holds a NUL byte");
                return -EBADMSG;
        }
        size_t bad = utf8_valid_prefix(text, len);
        if (bad < len) {
                snprintf(why, why_len, "the answer is not valid UTF-8 (at byte %zu)", bad);
                return -EBADMSG;
        }
        return 0;
}

static int answer_tests(const char *t, const Block *blocks, size_t n, const Block *code, Tests *tests,
                        char **json_desc, char *why, size_t why_len) {
        char jerr[256] = "";
        int r = tests_from_blocks(tests, blocks, n, code, json_desc, jerr, sizeof jerr);
        if (r >= 0 && tests->n == 0)
                r = tests_from_prose_json(tests, t, blocks, n);
        if (r >= 0 && tests->n == 0)
                r = tests_from_lines(tests, t, blocks, n, code);
        if (r < 0)
                return r;
        if (tests->n == 0) {
                if (tests->dropped_big)
                        snprintf(why, why_len, "no tests: every test's input or expected output is over %u KiB",
                                 SKILL_TEST_IO_MAX >> 10);
                else
                        snprintf(why, why_len, "no tests: %s%sexpected a ```json block with an array of "
                                 "{\"name\", \"input\", \"expected\"} objects, or INPUT => OUTPUT lines",
                                 jerr, jerr[0] ? "; " : "");
                return -EBADMSG;
        }
        return 0;
}

static void answer_note(const Tests *t, char *why, size_t why_len) {
        size_t off = 0;
        why[0] = 0;
        if (t->dropped_many)
                off += (size_t) snprintf(why, why_len, "kept the first %d tests, left out %zu more", SKILL_TESTS_MAX,
                                         t->dropped_many);
        if (t->dropped_big && off < why_len)
                off += (size_t) snprintf(why + off, why_len - off, "%sleft out %zu tests over %u KiB", off ? "; " : "",
                                         t->dropped_big, SKILL_TEST_IO_MAX >> 10);
        if (t->renamed && off < why_len)
                snprintf(why + off, why_len - off, "%srenamed %zu tests with a duplicate name", off ? "; " : "",
                         t->renamed);
}

int skill_answer_parse(const char *text, size_t len, const char *runtime, SkillAnswer *ret, char *why, size_t why_len) {
        char dummy[8];
        if (!why || why_len == 0) {
                why = dummy;
                why_len = sizeof dummy;
        }
        why[0] = 0;
        int r = answer_check(text, len, runtime, why, why_len);
        if (r < 0)
                return r;
        _cleanup_free_ char *t = normalise(text, len);
        _cleanup_free_ Block *blocks = calloc(BLOCKS_MAX, sizeof *blocks);
        if (!t || !blocks)
                return -ENOMEM;
        size_t n = blocks_find(t, blocks, BLOCKS_MAX);
        const Block *code = code_pick(blocks, n, runtime, why, why_len);
        if (!code)
                return -EBADMSG;
        if (code->body_len > SKILL_CODE_MAX) {
                snprintf(why, why_len, "the code is %zu bytes, more than %u KiB", code->body_len, SKILL_CODE_MAX >> 10);
                return -EBADMSG;
        }
        Tests tests = { 0 };
        _cleanup_free_ char *json_desc = NULL;
        r = answer_tests(t, blocks, n, code, &tests, &json_desc, why, why_len);
        if (r < 0) {
                tests_free(&tests);
                return r;
        }
        char *desc = description_labelled(t, blocks, n);
        if (!desc && json_desc)
                desc = fold(json_desc, json_desc + strlen(json_desc));
        if (!desc)
                desc = description_prose(t, blocks, n);
        char *c = strndup(code->body, code->body_len);
        if (!desc || !c) {
                free(desc);
                free(c);
                tests_free(&tests);
                return -ENOMEM;
        }
        answer_note(&tests, why, why_len);
        *ret = (SkillAnswer) { .code = c, .description = desc, .tests = tests.v, .n_tests = tests.n };
        return 0;
}

void skill_answer_clear(SkillAnswer *a) {
        if (!a)
                return;
        for (size_t i = 0; i < a->n_tests; i++) {
                free(a->tests[i].name);
                free(a->tests[i].input);
                free(a->tests[i].expected);
        }
        free(a->tests);
        free(a->code);
        free(a->description);
        *a = (SkillAnswer) { 0 };
}

/* ---- comparing outputs --------------------------------------------------- */

/* The next line of s[*pos..len) with its trailing blanks removed; false at
 * the end. */
static bool next_line(const char *s, size_t len, size_t *pos, const char **ret, size_t *ret_len) {
        if (*pos >= len)
                return false;
        const char *p = s + *pos, *e = memchr(p, '\n', len - *pos);
        size_t n = e ? (size_t) (e - p) : len - *pos;
        *pos += n + (e ? 1 : 0);
        while (n && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r'))
                n--;
        *ret = p;
        *ret_len = n;
        return true;
}

/* The length of s once trailing whitespace (of any line) is gone. */
static size_t trimmed_len(const char *s, size_t len) {
        while (len && isspace((unsigned char) s[len - 1]))
                len--;
        return len;
}

bool skill_output_matches(const char *expected, const char *actual, size_t actual_len) {
        if (!expected)
                return true;
        if (!actual)
                actual = "";
        size_t el = trimmed_len(expected, strlen(expected)), al = trimmed_len(actual, actual_len), ep = 0, ap = 0;
        for (;;) {
                const char *a, *b;
                size_t an, bn;
                bool ha = next_line(expected, el, &ep, &a, &an), hb = next_line(actual, al, &ap, &b, &bn);
                if (!ha || !hb)
                        return ha == hb;
                if (an != bn || memcmp(a, b, an) != 0)
                        return false;
        }
}
