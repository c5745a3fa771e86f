/* controller/skills_prompt.h: the skill generator's side of the
 * conversation with a model, pure (no I/O, no logging): the chat messages
 * that ask for a box (round 1) or for a fix (later rounds, with what
 * failed), the parser of the model's answer (code, description, tests),
 * and the rule that compares a test's expected output with the actual one.
 *
 * Refinements of notes/issue6-design.md (compatible with it):
 * - skill_prompt()'s prev_results may be the previous round's RESULT array
 *   (as designed) or its ROUND object: then "parseError" (an unusable
 *   answer: the model is told why) and "results" are taken from it, and
 *   "code" when prev_code is NULL.
 * - skill_prompt_full() takes the same and more (the box's limits, round
 *   numbers) in a struct; skill_prompt() is it with the limits unstated.
 * - skill_answer_parse() sets why on success too: "" or a note on what it
 *   left out (tests past SKILL_TESTS_MAX, tests over SKILL_TEST_IO_MAX, a
 *   duplicate name renamed).
 * - skill_output_matches(): the comparison the prompt promises the model. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SKILL_ANSWER_MAX        (1u << 20)      /* a model's answer parsed at most */
#define SKILL_CODE_MAX          (256u << 10)
#define SKILL_TESTS_MAX         50
#define SKILL_TEST_IO_MAX       (64u << 10)     /* each test's input and expected output */
#define SKILL_TEST_NAME_MAX     64
#define SKILL_DESCRIPTION_MAX   4096
#define SKILL_TASK_MAX          (8u << 10)      /* longer tasks are clipped in the prompt */
#define SKILL_PROMPT_MAX        (60u << 10)     /* the contents of all messages together, at most */

typedef struct SkillExample { const char *input, *output; } SkillExample;
typedef struct SkillRef { const char *name, *description, *runtime; int64_t version; } SkillRef;

/* The runtimes a skill may have: "python3", "node", "sh". */
bool skill_runtime_valid(const char *runtime);

typedef struct SkillPromptInput {
        const char *task;               /* required, non-empty */
        const char *runtime;            /* python3, node or sh */
        const SkillExample *examples;   /* output NULL: the example shows only an input */
        size_t n_examples;
        const SkillRef *refs;           /* existing skills, best first (shown: the first 8) */
        size_t n_refs;
        const char *prev_code;          /* later rounds: the code that failed (NULL: round 1) */
        json_t *prev_results;           /* later rounds: RESULT array or ROUND object (NULL: round 1) */
        uint64_t memory_bytes;          /* the box's limits; 0: not stated */
        uint64_t timeout_ms;
        unsigned round, rounds;         /* this round and the most; 0: not stated */
        const char *files;              /* the input files every test gets at /input: names, sizes and
                                         * first lines, as text (NULL: none; clipped to SKILL_FILES_MAX) */
} SkillPromptInput;
#define SKILL_FILES_MAX (6u << 10)

/* The chat messages, a new jansson array of {"role", "content"}: system (the
 * box contract and the answer format), user (task, examples, existing
 * skills); for a later round also assistant (the previous code) and user
 * (what failed: each failing test with input, expected and actual output,
 * stderr, exit status, timeout or out-of-memory). Every part is clipped so
 * that the contents stay under SKILL_PROMPT_MAX. NULL when task is empty,
 * runtime unknown, or memory runs out. */
json_t *skill_prompt_full(const SkillPromptInput *in);
json_t *skill_prompt(const char *task, const char *runtime, const SkillExample *ex, size_t n_ex,
                     const SkillRef *refs, size_t n_refs, const char *prev_code, json_t *prev_results);

typedef struct SkillTest { char *name, *input, *expected; } SkillTest;   /* expected NULL: only exit 0 */
typedef struct SkillAnswer { char *code, *description; SkillTest *tests; size_t n_tests; } SkillAnswer;

/* Parse a model's answer. The code: the longest fenced block in the
 * runtime's language (tagged python/py, javascript/js/node, sh/bash/shell;
 * an untagged block that is neither JSON nor test lines counts too, unless
 * its #! names another interpreter). The description: the paragraph after
 * "Description:", else a JSON object's "description", else the first
 * paragraph of prose ("" when none); whitespace folded, at most
 * SKILL_DESCRIPTION_MAX bytes. The tests: a JSON array of {"name", "input",
 * "expected"} (or an object with "tests"), fenced or not, prose after it
 * ignored; else "INPUT => OUTPUT" lines outside the code. CRLF is LF.
 * Returns 0, or -EBADMSG with why saying what was missing or wrong (no code,
 * code in another language, no tests, code over SKILL_CODE_MAX, not UTF-8,
 * an answer over SKILL_ANSWER_MAX), -ENOMEM. ret is set only on success. */
int skill_answer_parse(const char *text, size_t len, const char *runtime, SkillAnswer *ret, char *why, size_t why_len);
void skill_answer_clear(SkillAnswer *a);

/* Whether a box's output passes a test's expected output: equal once
 * trailing blanks (space, tab, CR) are removed from every line and trailing
 * newlines from the end. expected NULL: always (the exit status decides). */
bool skill_output_matches(const char *expected, const char *actual, size_t actual_len);
