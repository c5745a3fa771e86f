/* tests/unit/test_skills_prompt.c: the skill generator's prompt and answer
 * parser (controller/skills_prompt.c): the box contract and the parts of a
 * round-1 and a later-round prompt, the clipping that keeps any prompt under
 * its bound, and the parser on many answer shapes: well-formed, untagged,
 * several blocks, CRLF, relaxed JSON, "IN => OUT" lines, and the unusable
 * ones (prose only, empty, garbage, huge, code in another language). */
#define _GNU_SOURCE
#include "test.h"

#include <errno.h>
#include <jansson.h>

#include "controller/skills_prompt.h"

/* ---- helpers ------------------------------------------------------------ */

static const char *content(json_t *msgs, size_t i) {
        return json_string_value(json_object_get(json_array_get(msgs, i), "content"));
}

static const char *role(json_t *msgs, size_t i) {
        return json_string_value(json_object_get(json_array_get(msgs, i), "role"));
}

#define ASSERT_CONTAINS(hay, needle)                                                     \
        do {                                                                             \
                const char *_h = (hay), *_n = (needle);                                  \
                if (!_h || !strstr(_h, _n))                                              \
                        FAIL_AT("expected \"%s\" in:\n%s", _n, _h ? _h : "(null)");      \
        } while (0)

#define ASSERT_NOT_CONTAINS(hay, needle)                                                 \
        do {                                                                             \
                const char *_h = (hay), *_n = (needle);                                  \
                if (_h && strstr(_h, _n))                                                \
                        FAIL_AT("did not expect \"%s\" in:\n%s", _n, _h);               \
        } while (0)

static size_t total(json_t *msgs) {
        size_t n = 0;
        for (size_t i = 0; i < json_array_size(msgs); i++)
                n += strlen(content(msgs, i));
        return n;
}

/* Parse s for runtime and expect success; why is kept for the caller. */
static char why[512];
static SkillAnswer parse_ok(const char *s, const char *runtime) {
        SkillAnswer a = { 0 };
        int r = skill_answer_parse(s, strlen(s), runtime, &a, why, sizeof why);
        if (r != 0)
                FAIL_AT("skill_answer_parse: %d (%s) on:\n%s", r, why, s);
        return a;
}

static void parse_fails(const char *s, size_t len, const char *runtime, const char *why_part) {
        SkillAnswer a = { .code = (char *) "untouched" };
        int r = skill_answer_parse(s, len, runtime, &a, why, sizeof why);
        if (r != -EBADMSG)
                FAIL_AT("expected -EBADMSG, got %d (%s)", r, why);
        ASSERT_EQ_STR(a.code, "untouched");
        ASSERT_CONTAINS(why, why_part);
}

static char *repeat(const char *unit, size_t times) {
        size_t n = strlen(unit);
        char *s = malloc(n * times + 1);
        for (size_t i = 0; i < times; i++)
                memcpy(s + i * n, unit, n);
        s[n * times] = 0;
        return s;
}

static const char good_python[] =
        "Here is the box.\n"
        "\n"
        "```python\n"
        "import sys\n"
        "data = sys.stdin.read()\n"
        "print(len(data.split()))\n"
        "```\n"
        "\n"
        "Description: Counts the words of its input\n"
        "and prints the number.\n"
        "\n"
        "```json\n"
        "[\n"
        "  {\"name\": \"two\", \"input\": \"a b\", \"expected\": \"2\"},\n"
        "  {\"name\": \"empty\", \"input\": \"\", \"expected\": \"0\\n\"},\n"
        "  {\"name\": \"runs\", \"input\": \"x\", \"expected\": null}\n"
        "]\n"
        "```\n";

/* ---- the prompt --------------------------------------------------------- */

TEST(skills_prompt_round1_contract) {
        SkillExample ex[] = { { "hello world", "2" }, { "only input", NULL } };
        SkillRef refs[] = { { "word-split", "Splits text into words, one per line.", "python3", 3 },
                            { "upper", "Upper-cases text.", "sh", 1 } };
        json_t *m = skill_prompt("Count the words of the input", "python3", ex, 2, refs, 2, NULL, NULL);
        ASSERT_TRUE(m != NULL);
        ASSERT_EQ_UINT(json_array_size(m), 2);
        ASSERT_EQ_STR(role(m, 0), "system");
        ASSERT_EQ_STR(role(m, 1), "user");
        const char *sys = content(m, 0), *user = content(m, 1);
        ASSERT_CONTAINS(sys, "stdin");
        ASSERT_CONTAINS(sys, "stdout");
        ASSERT_CONTAINS(sys, "Exit status 0 means success");
        ASSERT_CONTAINS(sys, "stderr");
        ASSERT_CONTAINS(sys, "no network");
        ASSERT_CONTAINS(sys, "FNBOX_BROKER");
        ASSERT_CONTAINS(sys, "fnbox-call skill:NAME");
        ASSERT_CONTAINS(sys, "/input (read-only)");
        ASSERT_CONTAINS(sys, "/output");
        ASSERT_CONTAINS(sys, "python3 -I main.py");
        ASSERT_CONTAINS(sys, "```python");
        ASSERT_CONTAINS(sys, "Description:");
        ASSERT_CONTAINS(sys, "\"expected\"");
        ASSERT_CONTAINS(user, "Task: Count the words of the input");
        ASSERT_CONTAINS(user, "Example 1 input:\n```\nhello world\n```");
        ASSERT_CONTAINS(user, "Example 1 output:\n```\n2\n```");
        ASSERT_CONTAINS(user, "Example 2 input:\n```\nonly input\n```");
        ASSERT_NOT_CONTAINS(user, "Example 2 output");
        ASSERT_CONTAINS(user, "- word-split (version 3, python3): Splits text into words, one per line.");
        ASSERT_CONTAINS(user, "- upper (version 1, sh): Upper-cases text.");
        json_decref(m);
}

TEST(skills_prompt_runtimes_and_limits) {
        SkillPromptInput in = { .task = "t", .runtime = "node", .memory_bytes = 64u << 20, .timeout_ms = 5000 };
        json_t *m = skill_prompt_full(&in);
        ASSERT_TRUE(m != NULL);
        ASSERT_CONTAINS(content(m, 0), "node index.js");
        ASSERT_CONTAINS(content(m, 0), "```javascript");
        ASSERT_CONTAINS(content(m, 0), "memory 64 MiB, 5 s of wall-clock time");
        ASSERT_CONTAINS(content(m, 1), "No existing skill fits");
        json_decref(m);
        in.runtime = "sh";
        m = skill_prompt_full(&in);
        ASSERT_CONTAINS(content(m, 0), "/bin/sh main.sh");
        ASSERT_CONTAINS(content(m, 0), "POSIX sh");
        json_decref(m);
        ASSERT_TRUE(skill_prompt("t", "ruby", NULL, 0, NULL, 0, NULL, NULL) == NULL);
        ASSERT_TRUE(skill_prompt("", "sh", NULL, 0, NULL, 0, NULL, NULL) == NULL);
        ASSERT_TRUE(skill_prompt(NULL, "sh", NULL, 0, NULL, 0, NULL, NULL) == NULL);
        ASSERT_TRUE(skill_runtime_valid("python3") && skill_runtime_valid("node") && skill_runtime_valid("sh"));
        ASSERT_TRUE(!skill_runtime_valid("python") && !skill_runtime_valid(NULL) && !skill_runtime_valid("exec"));
}

TEST(skills_prompt_later_round_failures) {
        json_t *results = json_loads(
                "[{\"name\": \"two\", \"input\": \"a b\", \"expected\": \"2\", \"actual\": \"2\\n\", \"passed\": true},"
                " {\"name\": \"empty\", \"input\": \"\", \"expected\": \"0\", \"actual\": \"\", \"passed\": false,"
                "  \"status\": 500, \"error\": \"function_error\", \"exitCode\": 3,"
                "  \"stderr\": \"Traceback: IndexError: list index out of range\"},"
                " {\"name\": \"slow\", \"input\": \"x\", \"expected\": \"1\", \"passed\": false, \"status\": 504,"
                "  \"error\": \"timeout\"},"
                " {\"name\": \"big\", \"input\": \"y\", \"expected\": null, \"passed\": false, \"status\": 507,"
                "  \"error\": \"out_of_memory\"},"
                " {\"name\": \"wrong\", \"input\": \"a\", \"expected\": \"1\", \"actual\": \"7\", \"passed\": false,"
                "  \"exitCode\": 0}]", 0, NULL);
        ASSERT_TRUE(results != NULL);
        SkillPromptInput in = { .task = "count words", .runtime = "python3", .prev_code = "print(1)\n",
                                .prev_results = results, .round = 2, .rounds = 4 };
        json_t *m = skill_prompt_full(&in);
        ASSERT_TRUE(m != NULL);
        ASSERT_EQ_UINT(json_array_size(m), 4);
        ASSERT_EQ_STR(role(m, 2), "assistant");
        ASSERT_EQ_STR(role(m, 3), "user");
        ASSERT_EQ_STR(content(m, 2), "```python\nprint(1)\n```\n");
        const char *fb = content(m, 3);
        ASSERT_CONTAINS(fb, "This is round 2 of 4.");
        ASSERT_CONTAINS(fb, "failed 4 of its 5 tests");
        ASSERT_CONTAINS(fb, "Passed: two.");
        ASSERT_CONTAINS(fb, "Test \"empty\" FAILED: exited with status 3.");
        ASSERT_CONTAINS(fb, "IndexError: list index out of range");
        ASSERT_CONTAINS(fb, "Test \"slow\" FAILED: timed out");
        ASSERT_CONTAINS(fb, "Test \"big\" FAILED: ran out of memory");
        ASSERT_CONTAINS(fb, "expected: exit status 0");
        ASSERT_CONTAINS(fb, "Test \"wrong\" FAILED: wrong output (exit status 0).\ninput:\n```\na\n```\n"
                            "expected output:\n```\n1\n```\nactual output:\n```\n7\n```\n");
        ASSERT_CONTAINS(fb, "Fix the program");
        json_decref(m);
        json_decref(results);
}

TEST(skills_prompt_parse_error_round) {
        json_t *round = json_pack("{s:i,s:s,s:s}", "round", 1, "parseError", "no code: the answer has no fenced code block",
                                  "code", "");
        json_t *m = skill_prompt("t", "sh", NULL, 0, NULL, 0, NULL, round);
        ASSERT_TRUE(m != NULL);
        /* the ROUND's empty code is still shown, as an assistant turn */
        ASSERT_EQ_UINT(json_array_size(m), 4);
        ASSERT_CONTAINS(content(m, 3), "Your previous answer could not be used: no code: the answer has no fenced code block.");
        json_decref(m);
        json_decref(round);
        round = json_pack("{s:s,s:[{s:s,s:b,s:s}]}", "code", "echo hi", "results", "name", "t1", "passed", 0,
                          "error", "node_failed");
        m = skill_prompt("t", "sh", NULL, 0, NULL, 0, NULL, round);
        ASSERT_EQ_STR(content(m, 2), "```sh\necho hi\n```\n");
        ASSERT_CONTAINS(content(m, 3), "Test \"t1\" FAILED: failed: node_failed.");
        json_decref(m);
        json_decref(round);
}

TEST(skills_prompt_clipped_under_bound) {
        char *task = repeat("\xc3\xa9", 50000);          /* 100 KB of é: clipped on a character boundary */
        char *big = repeat("0123456789", 10000);
        char *code = repeat("x = 1  # ```` fences\n", 50000);
        SkillExample ex[100];
        SkillRef refs[100];
        for (size_t i = 0; i < 100; i++) {
                ex[i] = (SkillExample) { big, big };
                refs[i] = (SkillRef) { "name", big, "python3", (int64_t) i + 1 };
        }
        json_t *results = json_array();
        for (int i = 0; i < 200; i++)
                json_array_append_new(results, json_pack("{s:s,s:s,s:s,s:s,s:s,s:b,s:s,s:i}", "name", "t",
                                                         "input", big, "expected", big, "actual", big, "stderr", big,
                                                         "passed", 0, "error", "function_error", "exitCode", 1));
        json_t *m = skill_prompt(task, "python3", ex, 100, refs, 100, code, results);
        ASSERT_TRUE(m != NULL);
        ASSERT_TRUE(total(m) < SKILL_PROMPT_MAX);
        ASSERT_TRUE(total(m) < 64u << 10);
        ASSERT_CONTAINS(content(m, 1), "[...]");
        ASSERT_CONTAINS(content(m, 1), "more examples not shown");
        ASSERT_CONTAINS(content(m, 2), "bytes left out");
        ASSERT_CONTAINS(content(m, 2), "`````python\n");   /* a fence longer than the code's ```` */
        ASSERT_CONTAINS(content(m, 3), "more tests failed");
        ASSERT_CONTAINS(content(m, 3), "bytes left out");
        json_decref(m);
        json_decref(results);
        free(task);
        free(big);
        free(code);
}

TEST(skills_prompt_bad_utf8_replaced) {
        json_t *none = json_array();
        json_t *m = skill_prompt("t\x01", "sh", NULL, 0, NULL, 0, "echo \xff\xfe ok", none);
        ASSERT_TRUE(m != NULL);
        ASSERT_CONTAINS(content(m, 2), "echo \xef\xbf\xbd\xef\xbf\xbd ok");
        ASSERT_CONTAINS(content(m, 3), "did not pass its tests");
        json_decref(m);
        json_decref(none);
}

/* ---- answers that parse ------------------------------------------------- */

TEST(skills_answer_well_formed) {
        SkillAnswer a = parse_ok(good_python, "python3");
        ASSERT_EQ_STR(a.code, "import sys\ndata = sys.stdin.read()\nprint(len(data.split()))\n");
        ASSERT_EQ_STR(a.description, "Counts the words of its input and prints the number.");
        ASSERT_EQ_UINT(a.n_tests, 3);
        ASSERT_EQ_STR(a.tests[0].name, "two");
        ASSERT_EQ_STR(a.tests[0].input, "a b");
        ASSERT_EQ_STR(a.tests[0].expected, "2");
        ASSERT_EQ_STR(a.tests[1].input, "");
        ASSERT_EQ_STR(a.tests[1].expected, "0\n");
        ASSERT_TRUE(a.tests[2].expected == NULL);
        ASSERT_EQ_STR(why, "");
        skill_answer_clear(&a);
        ASSERT_TRUE(a.code == NULL && a.tests == NULL && a.n_tests == 0);
        skill_answer_clear(&a);
        skill_answer_clear(NULL);
}

TEST(skills_answer_crlf) {
        char buf[2048];
        size_t k = 0;
        for (const char *p = good_python; *p; p++) {
                if (*p == '\n')
                        buf[k++] = '\r';
                buf[k++] = *p;
        }
        buf[k] = 0;
        SkillAnswer a = parse_ok(buf, "python3");
        ASSERT_EQ_STR(a.code, "import sys\ndata = sys.stdin.read()\nprint(len(data.split()))\n");
        ASSERT_EQ_STR(a.description, "Counts the words of its input and prints the number.");
        ASSERT_EQ_UINT(a.n_tests, 3);
        ASSERT_EQ_STR(a.tests[1].expected, "0\n");
        skill_answer_clear(&a);
}

TEST(skills_answer_untagged_fences) {
        SkillAnswer a = parse_ok("Sure!\n```\n#!/bin/sh\ntr a-z A-Z\n```\nThis box shouts its input back.\n\n"
                                 "```\n[{\"input\": \"hi\", \"expected\": \"HI\"}, {\"input\": \"\", \"expected\": \"\"}]\n```\n"
                                 "Hope this helps!\n", "sh");
        ASSERT_EQ_STR(a.code, "#!/bin/sh\ntr a-z A-Z\n");
        ASSERT_EQ_STR(a.description, "Sure!");   /* no label: the first prose paragraph */
        ASSERT_EQ_UINT(a.n_tests, 2);
        ASSERT_EQ_STR(a.tests[0].name, "test-1");
        ASSERT_EQ_STR(a.tests[1].name, "test-2");
        ASSERT_EQ_STR(a.tests[0].expected, "HI");
        skill_answer_clear(&a);
}

TEST(skills_answer_picks_runtime_language) {
        const char *s =
                "Run it with:\n```bash\necho 'a b' | python3 main.py\n```\n"
                "```javascript\nconsole.log(1)\n```\n"
                "```python\nimport sys\nprint(2)\n```\n"
                "Description: prints two.\n"
                "```json\n[{\"name\": \"x\", \"input\": \"\", \"expected\": \"2\"}]\n```\n";
        SkillAnswer a = parse_ok(s, "python3");
        ASSERT_EQ_STR(a.code, "import sys\nprint(2)\n");
        skill_answer_clear(&a);
        a = parse_ok(s, "node");
        ASSERT_EQ_STR(a.code, "console.log(1)\n");
        skill_answer_clear(&a);
        a = parse_ok(s, "sh");
        ASSERT_EQ_STR(a.code, "echo 'a b' | python3 main.py\n");
        skill_answer_clear(&a);
        /* two blocks of the right language: the longer one is the program */
        a = parse_ok("```py\nhelper()\n```\nThe whole program:\n```Python3\nimport sys\ndef helper():\n    pass\nhelper()\n```\n"
                     "- `` => ``\n", "python3");
        ASSERT_EQ_STR(a.code, "import sys\ndef helper():\n    pass\nhelper()\n");
        ASSERT_EQ_UINT(a.n_tests, 1);
        ASSERT_EQ_STR(a.tests[0].input, "");
        skill_answer_clear(&a);
}

TEST(skills_answer_shebang_of_other_language_skipped) {
        SkillAnswer a = parse_ok("```\n#!/usr/bin/env python3\nprint(1)\n```\n```\ncat\n```\n1 => 1\n", "sh");
        ASSERT_EQ_STR(a.code, "cat\n");
        skill_answer_clear(&a);
}

TEST(skills_answer_json_with_trailing_prose_and_commas) {
        const char *s =
                "```js\nconst d = require('fs').readFileSync(0, 'utf8');\nconsole.log(d.split('').reverse().join(''));\n```\n"
                "**Description:** Reverses the characters of its input.\n\n"
                "```json\n"
                "// the tests\n"
                "[\n  {\"name\": \"abc\", \"input\": \"abc\", \"expected\": \"cba\",},\n"
                "  {\"name\": \"url\", \"input\": \"http://x\", \"expected\": \"x//:ptth\"},\n]\n"
                "These cover the basics.\n```\n";
        SkillAnswer a = parse_ok(s, "node");
        ASSERT_EQ_STR(a.description, "Reverses the characters of its input.");
        ASSERT_EQ_UINT(a.n_tests, 2);
        ASSERT_EQ_STR(a.tests[1].input, "http://x");
        ASSERT_EQ_STR(a.tests[1].expected, "x//:ptth");
        skill_answer_clear(&a);
        /* trailing prose after a strict JSON array, in the block */
        a = parse_ok("```sh\ncat\n```\n```json\n[{\"input\": \"a\", \"expected\": \"a\"}]\nNote: more could be added.\n```\n",
                     "sh");
        ASSERT_EQ_UINT(a.n_tests, 1);
        skill_answer_clear(&a);
}

TEST(skills_answer_json_object_and_value_kinds) {
        const char *s =
                "```python\nimport json,sys\nprint(sum(json.load(sys.stdin)))\n```\n"
                "```json\n{\"description\": \"Sums a JSON array of numbers.\", \"tests\": [\n"
                " {\"name\": \"sum\", \"stdin\": [1, 2, 3], \"output\": 6},\n"
                " {\"name\": \"sum\", \"input\": \"[]\", \"expected_output\": \"0\"},\n"
                " {\"name\": \"no-check\", \"input\": \"[1]\"},\n"
                " \"not a test\", {\"comment\": \"neither input nor expected\"}\n]}\n```\n";
        SkillAnswer a = parse_ok(s, "python3");
        ASSERT_EQ_STR(a.description, "Sums a JSON array of numbers.");
        ASSERT_EQ_UINT(a.n_tests, 3);
        ASSERT_EQ_STR(a.tests[0].input, "[1,2,3]");
        ASSERT_EQ_STR(a.tests[0].expected, "6");
        ASSERT_EQ_STR(a.tests[1].name, "sum-2");
        ASSERT_EQ_STR(a.tests[1].expected, "0");
        ASSERT_TRUE(a.tests[2].expected == NULL);
        ASSERT_CONTAINS(why, "renamed 1 tests with a duplicate name");
        skill_answer_clear(&a);
}

TEST(skills_answer_arrow_lines) {
        const char *s =
                "```javascript\nconst f = (x) => x.toUpperCase();\nprocess.stdout.write(f(require('fs').readFileSync(0, 'utf8')));\n```\n"
                "Description: upper-cases.\n\nTests:\n"
                "- `hello` => `HELLO`\n"
                "2. \"a\\nb\" => \"A\\nB\"\n"
                "Input: x => Output: X\n"
                "'q' => 'Q'\n";
        SkillAnswer a = parse_ok(s, "node");
        ASSERT_EQ_UINT(a.n_tests, 4);           /* the arrow function in the code is not a test */
        ASSERT_EQ_STR(a.tests[0].input, "hello");
        ASSERT_EQ_STR(a.tests[0].expected, "HELLO");
        ASSERT_EQ_STR(a.tests[1].input, "a\nb");
        ASSERT_EQ_STR(a.tests[1].expected, "A\nB");
        ASSERT_EQ_STR(a.tests[2].input, "x");
        ASSERT_EQ_STR(a.tests[2].expected, "X");
        ASSERT_EQ_STR(a.tests[3].input, "q");
        ASSERT_EQ_STR(a.description, "upper-cases.");
        skill_answer_clear(&a);
        /* an untagged block of test lines */
        a = parse_ok("```sh\nwc -c\n```\n```\nabc => 3\n => 0\n```\n", "sh");
        ASSERT_EQ_UINT(a.n_tests, 2);
        ASSERT_EQ_STR(a.tests[1].input, "");
        ASSERT_EQ_STR(a.tests[1].expected, "0");
        skill_answer_clear(&a);
}

TEST(skills_answer_unfenced_json_tests) {
        SkillAnswer a = parse_ok("```sh\ncat\n```\nTests: [{\"name\": \"echo\", \"input\": \"x\", \"expected\": \"x\"}] "
                                 "as requested.\n", "sh");
        ASSERT_EQ_UINT(a.n_tests, 1);
        ASSERT_EQ_STR(a.tests[0].name, "echo");
        skill_answer_clear(&a);
}

TEST(skills_answer_fence_shapes) {
        /* tildes, a longer fence holding ``` inside, an indented fence, a heading description */
        const char *s =
                "## Description\n\nPrints a markdown fence.\n\n"
                "````python\nprint('```')\n````\n"
                "  ~~~json\n  [{\"input\": \"\", \"expected\": \"```\"}]\n  ~~~\n";
        SkillAnswer a = parse_ok(s, "python3");
        ASSERT_EQ_STR(a.code, "print('```')\n");
        ASSERT_EQ_STR(a.description, "Prints a markdown fence.");
        ASSERT_EQ_UINT(a.n_tests, 1);
        ASSERT_EQ_STR(a.tests[0].expected, "```");
        skill_answer_clear(&a);
        /* an answer cut off inside its last block (the model hit max_tokens) still has its code */
        a = parse_ok("```sh\ncat\n```\n```json\n[{\"input\": \"a\", \"expected\": \"a\"}]", "sh");
        ASSERT_EQ_UINT(a.n_tests, 1);
        skill_answer_clear(&a);
}

TEST(skills_answer_limits_on_tests) {
        char *s = malloc(64 << 10);
        size_t k = (size_t) sprintf(s, "```sh\ncat\n```\n```json\n[");
        for (int i = 0; i < 60; i++)
                k += (size_t) sprintf(s + k, "%s{\"name\": \"t%d\", \"input\": \"%d\", \"expected\": \"%d\"}", i ? "," : "",
                                      i, i, i);
        sprintf(s + k, "]\n```\n");
        SkillAnswer a = parse_ok(s, "sh");
        ASSERT_EQ_UINT(a.n_tests, SKILL_TESTS_MAX);
        ASSERT_EQ_STR(a.tests[49].name, "t49");
        ASSERT_CONTAINS(why, "kept the first 50 tests, left out 10 more");
        skill_answer_clear(&a);
        free(s);

        char *big = repeat("a", SKILL_TEST_IO_MAX + 1);
        char *ans = NULL;
        if (asprintf(&ans, "```sh\ncat\n```\n```json\n[{\"name\": \"big\", \"input\": \"%s\"}, {\"name\": \"small\", "
                     "\"input\": \"b\", \"expected\": \"b\"}]\n```\n", big) < 0)
                FAIL_AT("asprintf");
        a = parse_ok(ans, "sh");
        ASSERT_EQ_UINT(a.n_tests, 1);
        ASSERT_EQ_STR(a.tests[0].name, "small");
        ASSERT_CONTAINS(why, "left out 1 tests over 64 KiB");
        skill_answer_clear(&a);
        free(ans);
        if (asprintf(&ans, "```sh\ncat\n```\n```json\n[{\"name\": \"big\", \"input\": \"%s\"}]\n```\n", big) < 0)
                FAIL_AT("asprintf");
        parse_fails(ans, strlen(ans), "sh", "no tests: every test's input or expected output is over 64 KiB");
        free(ans);
        free(big);
}

TEST(skills_answer_long_names_and_control_chars) {
        char *name = repeat("n", 200);
        char *ans = NULL;
        if (asprintf(&ans, "```sh\ncat\n```\n```json\n[{\"name\": \"%s\", \"input\": \"\"}, {\"name\": \"a\\tb\\u001b[31m\", "
                     "\"input\": \"\"}, {\"name\": \"\", \"input\": \"\"}, {\"name\": 5, \"input\": \"\"}]\n```\n", name) < 0)
                FAIL_AT("asprintf");
        SkillAnswer a = parse_ok(ans, "sh");
        ASSERT_EQ_UINT(a.n_tests, 4);
        ASSERT_EQ_UINT(strlen(a.tests[0].name), SKILL_TEST_NAME_MAX);
        ASSERT_EQ_STR(a.tests[1].name, "a b [31m");
        ASSERT_EQ_STR(a.tests[2].name, "test-3");
        ASSERT_EQ_STR(a.tests[3].name, "test-4");
        skill_answer_clear(&a);
        free(ans);
        free(name);
}

TEST(skills_answer_description_forms) {
        SkillAnswer a = parse_ok("Here is the code:\n\n```sh\ncat\n```\n\nThe box echoes\nits input unchanged.\n\n"
                                 "a => a\n", "sh");
        ASSERT_EQ_STR(a.description, "The box echoes its input unchanged.");
        skill_answer_clear(&a);
        a = parse_ok("```sh\ncat\n```\n1. **Description**: Echo.\n\n```json\n[{\"input\": \"\"}]\n```\n", "sh");
        ASSERT_EQ_STR(a.description, "Echo.");
        skill_answer_clear(&a);
        a = parse_ok("```sh\ncat\n```\n```json\n[{\"input\": \"\"}]\n```\n", "sh");
        ASSERT_EQ_STR(a.description, "");
        skill_answer_clear(&a);
        char *longd = repeat("word ", 2000), *ans = NULL;
        if (asprintf(&ans, "```sh\ncat\n```\nDescription: %s\n```json\n[{\"input\": \"\"}]\n```\n", longd) < 0)
                FAIL_AT("asprintf");
        a = parse_ok(ans, "sh");
        ASSERT_TRUE(strlen(a.description) <= SKILL_DESCRIPTION_MAX);
        ASSERT_TRUE(strlen(a.description) > SKILL_DESCRIPTION_MAX - 8);
        skill_answer_clear(&a);
        free(ans);
        free(longd);
}

/* ---- unusable answers --------------------------------------------------- */

TEST(skills_answer_prose_only) {
        const char *s = "I'm sorry, but I can't write code that does that. Counting words is easy though: split "
                        "the text on spaces and count the pieces.\n";
        parse_fails(s, strlen(s), "python3", "no code: the answer has no fenced code block");
}

TEST(skills_answer_empty_and_garbage) {
        parse_fails("", 0, "sh", "the answer is empty");
        parse_fails(" \n\t\r\n", 5, "sh", "the answer is empty");
        parse_fails(NULL, 0, "sh", "the answer is empty");
        parse_fails("```sh\ncat\n```\n\xff\xfe\x80garbage", 19, "sh", "not valid UTF-8 (at byte 14)");
        parse_fails("```sh\nca\0t\n```\n", 14, "sh", "NUL byte");
        parse_fails("\xc0\xaf```", 5, "sh", "not valid UTF-8 (at byte 0)");    /* an overlong '/' */
        parse_fails("```\n```\n```\n\n```\n", 17, "sh", "no code");
        parse_fails("}}}{{{[[[```]]]", 15, "python3", "no code");
        SkillAnswer a;
        ASSERT_EQ_INT(skill_answer_parse("```sh\ncat\n```\na => a\n", 20, "ruby", &a, why, sizeof why), -EINVAL);
        ASSERT_CONTAINS(why, "unknown runtime ruby");
        /* no why buffer: still safe */
        ASSERT_EQ_INT(skill_answer_parse("", 0, "sh", &a, NULL, 0), -EBADMSG);
}

TEST(skills_answer_no_tests) {
        const char *s = "```python\nprint(1)\n```\nDescription: prints 1.\n";
        parse_fails(s, strlen(s), "python3", "no tests: expected a ```json block");
        s = "```python\nprint(1)\n```\n```json\n[{\"input\": \"a\", \"expected\": }]\n```\n";
        parse_fails(s, strlen(s), "python3", "no tests: the json block does not parse (line 1:");
        s = "```python\nprint(1)\n```\n```json\n{\"tests\": []}\n```\n";
        parse_fails(s, strlen(s), "python3", "no tests");
}

TEST(skills_answer_wrong_language) {
        const char *s = "```javascript\nconsole.log(1)\n```\n```json\n[{\"input\": \"\"}]\n```\n";
        parse_fails(s, strlen(s), "python3", "no python3 code: the code block is tagged javascript, but the runtime is python3");
        s = "```ruby\nputs 1\n```\n1 => 1\n";
        parse_fails(s, strlen(s), "sh", "tagged ruby");
}

TEST(skills_answer_huge) {
        char *code = repeat("echo 0123456789012345678901234567890123456789012345678901234567890\n", 4100);
        char *ans = NULL;
        if (asprintf(&ans, "```sh\n%s```\na => a\n", code) < 0)
                FAIL_AT("asprintf");
        parse_fails(ans, strlen(ans), "sh", "more than 256 KiB");
        free(ans);
        free(code);
        char *huge = repeat("x", SKILL_ANSWER_MAX + 1);
        parse_fails(huge, strlen(huge), "sh", "more than 1024 KiB");
        free(huge);
        /* a megabyte of brackets in prose: bounded work, then a clear failure */
        char *brackets = repeat("[{", (SKILL_ANSWER_MAX - 64) / 2), *b2 = NULL;
        if (asprintf(&b2, "```sh\ncat\n```\n%s", brackets) < 0)
                FAIL_AT("asprintf");
        parse_fails(b2, strlen(b2), "sh", "no tests");
        free(b2);
        free(brackets);
        /* many fences */
        char *fences = repeat("```\n```\n", 10000);
        parse_fails(fences, strlen(fences), "sh", "no code");
        free(fences);
}

/* ---- output comparison -------------------------------------------------- */

TEST(skills_output_matches) {
        ASSERT_TRUE(skill_output_matches("2", "2\n", 2));
        ASSERT_TRUE(skill_output_matches("2\n", "2", 1));
        ASSERT_TRUE(skill_output_matches("a\nb", "a  \r\nb\t\n\n", 9));
        ASSERT_TRUE(skill_output_matches(NULL, "anything", 8));
        ASSERT_TRUE(skill_output_matches("", "", 0));
        ASSERT_TRUE(skill_output_matches("", "\n \n", 3));
        ASSERT_TRUE(skill_output_matches("", NULL, 0));
        ASSERT_TRUE(!skill_output_matches("2", "3", 1));
        ASSERT_TRUE(!skill_output_matches("a\nb", "a\n\nb", 4));
        ASSERT_TRUE(!skill_output_matches(" a", "a", 1));       /* leading blanks count */
        ASSERT_TRUE(!skill_output_matches("ab", "a", 1));
        ASSERT_TRUE(!skill_output_matches("a", "a\0b", 3));
        ASSERT_TRUE(!skill_output_matches("x", "", 0));
}
