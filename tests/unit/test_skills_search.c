/* tests/unit/test_skills_search.c: the skill search index
 * (controller/skills_search.c): ranking on a small hand-made library,
 * identifier splitting, replace and remove (checked against a plain model
 * over random changes), namespaces, embeddings, limits and odd bytes. */
#include "test.h"

#include <errno.h>
#include <math.h>

#include "controller/skills_search.h"

#define ASSERT_NEAR(a, b)                                                    \
        do {                                                                 \
                double _a = (a), _b = (b);                                   \
                if (!(fabs(_a - _b) < 1e-6))                                 \
                        FAIL_AT("%s ~= %s: %g != %g", #a, #b, _a, _b);        \
        } while (0)

typedef struct Lib {
        const char *name, *description, *code;
} Lib;

/* A library where each query below has one obvious answer. */
static const Lib library[] = {
        { "csv-to-json", "Convert a CSV file with a header row into a JSON array of objects.",
          "import csv, json, sys\nrows = list(csv.DictReader(sys.stdin))\njson.dump(rows, sys.stdout)\n" },
        { "json-pretty", "Pretty-print a JSON document with sorted keys and two-space indentation.",
          "import json, sys\nprint(json.dumps(json.load(sys.stdin), indent=2, sort_keys=True))\n" },
        { "word-count", "Count the words, lines and characters of a text.",
          "const text = require('fs').readFileSync(0, 'utf8');\nconst wordCount = text.split(/\\s+/).length;\n" },
        { "sha256-digest", "Compute the SHA-256 hash of the input bytes, as hex.",
          "import hashlib, sys\nprint(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())\n" },
        { "http-status", "Fetch a URL and report its HTTP status code and response time.",
          "function fetchStatus(url) { return httpGet(url).statusCode; }\n" },
        { "sort-lines", "Sort the lines of the input alphabetically, dropping duplicates.",
          "sort -u\n" },
        { "date-parse", "Parse a date in any common format and print it as ISO 8601.",
          "from dateutil import parser\nprint(parser.parse(input()).isoformat())\n" },
        { "resize-image", "Scale a PNG or JPEG image to a given width, keeping the aspect ratio.",
          "from PIL import Image\nimg = Image.open(sys.stdin.buffer)\nimg.thumbnail((width, height))\n" },
};

static SkillIndex *library_index(void) {
        SkillIndex *ix = NULL;
        ASSERT_EQ_INT(skill_index_new(&ix), 0);
        for (size_t i = 0; i < sizeof(library) / sizeof(library[0]); i++)
                ASSERT_EQ_INT(skill_index_put(ix, "default", library[i].name, (int64_t) i + 1, "python3",
                                              library[i].description, library[i].code, NULL, 0), 0);
        return ix;
}

/* The best hit's name for a lexical query, or "" for none. */
static const char *best(const SkillIndex *ix, const char *ns, const char *query) {
        SkillHit h[3];
        int n = skill_index_search(ix, ns, query, NULL, 0, h, 3, NULL);
        ASSERT_TRUE(n >= 0);
        return n > 0 ? h[0].name : "";
}

static int count(const SkillIndex *ix, const char *ns, const char *query) {
        SkillHit h[64];
        return skill_index_search(ix, ns, query, NULL, 0, h, 64, NULL);
}

TEST(skills_search_obvious_answers) {
        SkillIndex *ix = library_index();
        ASSERT_EQ_UINT(skill_index_count(ix), 8);
        ASSERT_EQ_STR(best(ix, NULL, "convert csv to json"), "csv-to-json");
        ASSERT_EQ_STR(best(ix, NULL, "pretty print json"), "json-pretty");
        ASSERT_EQ_STR(best(ix, NULL, "how many words are in this text"), "word-count");
        ASSERT_EQ_STR(best(ix, NULL, "sha256 hash"), "sha256-digest");
        ASSERT_EQ_STR(best(ix, NULL, "HTTP status of a url"), "http-status");
        ASSERT_EQ_STR(best(ix, NULL, "sort lines"), "sort-lines");
        ASSERT_EQ_STR(best(ix, NULL, "parse an ISO date"), "date-parse");
        ASSERT_EQ_STR(best(ix, NULL, "thumbnail of a JPEG"), "resize-image");
        ASSERT_EQ_INT(count(ix, NULL, "kubernetes operator"), 0);

        /* scores: the best is 1, the rest below, all of it lexical */
        SkillHit h[8];
        int n = skill_index_search(ix, NULL, "json", NULL, 0, h, 8, NULL);
        ASSERT_EQ_INT(n, 2);
        ASSERT_NEAR(h[0].score, 1);
        ASSERT_NEAR(h[0].lexical, 1);
        ASSERT_NEAR(h[0].semantic, 0);
        ASSERT_NEAR(h[0].cosine, 0);
        ASSERT_TRUE(h[0].bm25 > 0);
        ASSERT_TRUE(h[1].score > 0 && h[1].score < 1);
        ASSERT_NEAR(h[1].score, h[1].bm25 / h[0].bm25);
        ASSERT_EQ_STR(h[0].ns, "default");
        ASSERT_EQ_STR(h[0].runtime, "python3");
        ASSERT_TRUE(h[0].description && strstr(h[0].description, "JSON"));

        /* the limit */
        ASSERT_EQ_INT(skill_index_search(ix, NULL, "json", NULL, 0, h, 1, NULL), 1);
        ASSERT_EQ_INT(skill_index_search(ix, NULL, "json", NULL, 0, h, 0, NULL), 0);
        skill_index_free(ix);
}

TEST(skills_search_name_outweighs_description) {
        SkillIndex *ix = NULL;
        ASSERT_EQ_INT(skill_index_new(&ix), 0);
        /* same length of text; "tokenize" in the name of one, the description of the other */
        ASSERT_EQ_INT(skill_index_put(ix, "ns", "aaa-tokenize", 1, "sh", "split text into parts", NULL, NULL, 0), 0);
        ASSERT_EQ_INT(skill_index_put(ix, "ns", "aaa-splitter", 1, "sh", "tokenize text into parts", NULL, NULL, 0), 0);
        ASSERT_EQ_STR(best(ix, NULL, "tokenize"), "aaa-tokenize");
        skill_index_free(ix);
}

TEST(skills_search_identifiers) {
        SkillIndex *ix = NULL;
        ASSERT_EQ_INT(skill_index_new(&ix), 0);
        ASSERT_EQ_INT(skill_index_put(ix, "ns", "zz", 1, "python3", "",
                                      "def parseHTTPHeader(raw_input_value):\n"
                                      "    return xmlHttpRequest + getURL2Text + MAX_RETRY_COUNT + 12345\n"
                                      "# while if else\n",
                                      NULL, 0), 0);
        const char *found[] = { "parse", "http", "header", "raw", "input", "value", "xml", "request", "get",
                                "url2", "text", "max", "retry", "count", "PARSE", "Header" };
        for (size_t i = 0; i < sizeof(found) / sizeof(found[0]); i++)
                if (count(ix, NULL, found[i]) != 1)
                        FAIL_AT("token %s not found", found[i]);
        /* keywords, numbers, one-letter tokens and unsplit identifiers are not tokens of code */
        const char *missing[] = { "def", "return", "while", "if", "else", "12345", "parsehttpheader",
                                  "xmlhttprequest", "url2text" };
        for (size_t i = 0; i < sizeof(missing) / sizeof(missing[0]); i++)
                if (count(ix, NULL, missing[i]) != 0)
                        FAIL_AT("token %s found", missing[i]);
        /* the name is a token (split on '-'), numbers count in a description */
        ASSERT_EQ_INT(count(ix, NULL, "zz"), 1);
        ASSERT_EQ_INT(skill_index_put(ix, "ns", "error-codes", 1, "sh", "Explain HTTP 404 and 500 answers", NULL, NULL, 0), 0);
        ASSERT_EQ_STR(best(ix, NULL, "404"), "error-codes");
        ASSERT_EQ_STR(best(ix, NULL, "codes"), "error-codes");
        ASSERT_EQ_INT(count(ix, NULL, "error-codes"), 1);
        skill_index_free(ix);
}

TEST(skills_search_code_counts_once) {
        SkillIndex *ix = NULL;
        ASSERT_EQ_INT(skill_index_new(&ix), 0);
        /* an identifier used 50 times weighs as much as one used once */
        char code[1024] = "";
        for (int i = 0; i < 50; i++)
                strcat(code, "frobnicate(); ");
        ASSERT_EQ_INT(skill_index_put(ix, "ns", "many", 1, "sh", "x1 y1", code, NULL, 0), 0);
        ASSERT_EQ_INT(skill_index_put(ix, "ns", "once", 1, "sh", "x1 y1", "frobnicate()", NULL, 0), 0);
        SkillHit h[2];
        ASSERT_EQ_INT(skill_index_search(ix, NULL, "frobnicate", NULL, 0, h, 2, NULL), 2);
        ASSERT_NEAR(h[0].bm25, h[1].bm25);
        ASSERT_EQ_STR(h[0].name, "many");       /* a tie: by name */
        skill_index_free(ix);
}

TEST(skills_search_replace_remove) {
        SkillIndex *ix = library_index();
        int64_t v = 0;
        ASSERT_EQ_INT(skill_index_lookup(ix, "default", "word-count", &v), 0);
        ASSERT_EQ_INT(v, 3);
        ASSERT_EQ_STR(best(ix, NULL, "words"), "word-count");

        /* replaced: the old text is gone, the new one found, still one document */
        ASSERT_EQ_INT(skill_index_put(ix, "default", "word-count", 7, "node", "Tally tokens of a stream", "tally()",
                                      NULL, 0), 0);
        ASSERT_EQ_UINT(skill_index_count(ix), 8);
        ASSERT_EQ_INT(skill_index_lookup(ix, "default", "word-count", &v), 0);
        ASSERT_EQ_INT(v, 7);
        ASSERT_EQ_INT(count(ix, NULL, "words"), 0);
        ASSERT_EQ_INT(count(ix, NULL, "wordcount"), 0);
        SkillHit h[4];
        ASSERT_EQ_INT(skill_index_search(ix, NULL, "tally", NULL, 0, h, 4, NULL), 1);
        ASSERT_EQ_STR(h[0].name, "word-count");
        ASSERT_EQ_STR(h[0].runtime, "node");
        ASSERT_EQ_INT(h[0].version, 7);

        /* a failed put leaves the document as it was */
        char big[SKILL_INDEX_DESCRIPTION_MAX + 2];
        memset(big, 'a', sizeof(big) - 1);
        big[sizeof(big) - 1] = 0;
        ASSERT_EQ_INT(skill_index_put(ix, "default", "word-count", 8, "node", big, NULL, NULL, 0), -E2BIG);
        ASSERT_EQ_INT(skill_index_lookup(ix, "default", "word-count", &v), 0);
        ASSERT_EQ_INT(v, 7);
        ASSERT_EQ_INT(count(ix, NULL, "tally"), 1);

        /* removed */
        ASSERT_EQ_INT(skill_index_remove(ix, "default", "word-count"), 0);
        ASSERT_EQ_INT(skill_index_remove(ix, "default", "word-count"), -ENOENT);
        ASSERT_EQ_INT(skill_index_remove(ix, "other", "csv-to-json"), -ENOENT);
        ASSERT_EQ_INT(skill_index_lookup(ix, "default", "word-count", &v), -ENOENT);
        ASSERT_EQ_UINT(skill_index_count(ix), 7);
        ASSERT_EQ_INT(count(ix, NULL, "tally"), 0);
        ASSERT_EQ_STR(best(ix, NULL, "convert csv to json"), "csv-to-json");

        /* everything removed, then the library again: the same answers */
        for (size_t i = 0; i < sizeof(library) / sizeof(library[0]); i++)
                skill_index_remove(ix, "default", library[i].name);
        ASSERT_EQ_UINT(skill_index_count(ix), 0);
        ASSERT_EQ_INT(count(ix, NULL, "json"), 0);
        for (size_t i = 0; i < sizeof(library) / sizeof(library[0]); i++)
                ASSERT_EQ_INT(skill_index_put(ix, "default", library[i].name, 1, "python3", library[i].description,
                                              library[i].code, NULL, 0), 0);
        ASSERT_EQ_STR(best(ix, NULL, "how many words are in this text"), "word-count");
        ASSERT_EQ_STR(best(ix, NULL, "thumbnail of a JPEG"), "resize-image");
        skill_index_free(ix);
}

/* Random puts, replaces and removes over a small vocabulary, against a
 * plain model: each word's hit count is the number of documents holding it
 * (exercises the postings' swap-removal and term reuse). */
TEST(skills_search_random_changes) {
        enum { DOCS = 300, WORDS = 40, STEPS = 4000 };
        static char words[WORDS][8];
        static bool has[DOCS][WORDS];
        static bool present[DOCS];
        for (int w = 0; w < WORDS; w++)
                snprintf(words[w], sizeof(words[w]), "w%c%c", 'a' + w / 26, 'a' + w % 26);
        SkillIndex *ix = NULL;
        ASSERT_EQ_INT(skill_index_new(&ix), 0);
        uint32_t seed = 12345;
        size_t n_present = 0;
        for (int step = 0; step < STEPS; step++) {
                seed = seed * 1103515245u + 12345u;
                int d = (seed >> 8) % DOCS;
                char name[16];
                snprintf(name, sizeof(name), "doc-%d", d);
                if ((seed >> 20) % 4 == 0) {
                        ASSERT_EQ_INT(skill_index_remove(ix, "ns", name), present[d] ? 0 : -ENOENT);
                        n_present -= present[d];
                        present[d] = false;
                        memset(has[d], 0, sizeof(has[d]));
                        continue;
                }
                char desc[WORDS * 8] = "";
                memset(has[d], 0, sizeof(has[d]));
                for (int w = 0; w < WORDS; w++) {
                        seed = seed * 1103515245u + 12345u;
                        if ((seed >> 16) % 5 == 0) {
                                strcat(desc, words[w]);
                                strcat(desc, " ");
                                has[d][w] = true;
                        }
                }
                ASSERT_EQ_INT(skill_index_put(ix, "ns", name, step, "sh", desc, NULL, NULL, 0), 0);
                n_present += !present[d];
                present[d] = true;
                if (step % 500 != 499)
                        continue;
                ASSERT_EQ_UINT(skill_index_count(ix), n_present);
                static SkillHit h[DOCS];
                for (int w = 0; w < WORDS; w++) {
                        int want = 0;
                        for (int k = 0; k < DOCS; k++)
                                want += has[k][w];
                        int n = skill_index_search(ix, NULL, words[w], NULL, 0, h, DOCS, NULL);
                        ASSERT_EQ_INT(n, want);
                        for (int k = 0; k < n; k++) {
                                int id = atoi(h[k].name + 4);
                                ASSERT_TRUE(present[id] && has[id][w]);
                        }
                }
        }
        skill_index_free(ix);
}

TEST(skills_search_namespaces) {
        SkillIndex *ix = NULL;
        ASSERT_EQ_INT(skill_index_new(&ix), 0);
        ASSERT_EQ_INT(skill_index_put(ix, "team-b", "csv-to-json", 1, "python3", "Convert CSV to JSON", NULL, NULL, 0), 0);
        ASSERT_EQ_INT(skill_index_put(ix, "team-a", "csv-to-json", 2, "python3", "Convert CSV to JSON", NULL, NULL, 0), 0);
        ASSERT_EQ_INT(skill_index_put(ix, "team-a", "ab-json", 1, "python3", "Convert CSV to JSON", NULL, NULL, 0), 0);
        ASSERT_EQ_UINT(skill_index_count(ix), 3);
        SkillHit h[4];
        ASSERT_EQ_INT(skill_index_search(ix, "team-b", "csv json", NULL, 0, h, 4, NULL), 1);
        ASSERT_EQ_STR(h[0].ns, "team-b");
        ASSERT_EQ_INT(h[0].version, 1);
        ASSERT_EQ_INT(skill_index_search(ix, "team-c", "csv json", NULL, 0, h, 4, NULL), 0);
        /* every namespace: equal documents tie on score, then go by name, then namespace */
        ASSERT_EQ_INT(skill_index_search(ix, NULL, "csv json", NULL, 0, h, 4, NULL), 3);
        ASSERT_NEAR(h[0].score, h[1].score);
        ASSERT_EQ_STR(h[0].ns, "team-a");
        ASSERT_EQ_STR(h[0].name, "csv-to-json");
        ASSERT_EQ_STR(h[1].ns, "team-b");
        ASSERT_EQ_STR(h[1].name, "csv-to-json");
        ASSERT_EQ_STR(h[2].name, "ab-json");
        /* the order does not depend on the order of insertion */
        ASSERT_EQ_INT(skill_index_remove(ix, "team-a", "csv-to-json"), 0);
        ASSERT_EQ_INT(skill_index_put(ix, "team-a", "csv-to-json", 2, "python3", "Convert CSV to JSON", NULL, NULL, 0), 0);
        ASSERT_EQ_INT(skill_index_search(ix, NULL, "csv json", NULL, 0, h, 4, NULL), 3);
        ASSERT_EQ_STR(h[0].ns, "team-a");
        ASSERT_EQ_STR(h[1].ns, "team-b");
        /* equal scores by name */
        ASSERT_EQ_INT(skill_index_put(ix, "n", "b-thing", 1, "sh", "frobnicate widgets", NULL, NULL, 0), 0);
        ASSERT_EQ_INT(skill_index_put(ix, "n", "c-thing", 1, "sh", "frobnicate widgets", NULL, NULL, 0), 0);
        ASSERT_EQ_INT(skill_index_put(ix, "n", "a-thing", 1, "sh", "frobnicate widgets", NULL, NULL, 0), 0);
        ASSERT_EQ_INT(skill_index_search(ix, "n", "frobnicate", NULL, 0, h, 4, NULL), 3);
        ASSERT_EQ_STR(h[0].name, "a-thing");
        ASSERT_EQ_STR(h[1].name, "b-thing");
        ASSERT_EQ_STR(h[2].name, "c-thing");
        ASSERT_EQ_INT(skill_index_search(ix, "n", "frobnicate", NULL, 0, h, 2, NULL), 2);
        ASSERT_EQ_STR(h[0].name, "a-thing");
        ASSERT_EQ_STR(h[1].name, "b-thing");
        skill_index_free(ix);
}

TEST(skills_search_embeddings_change_order) {
        SkillIndex *ix = NULL;
        ASSERT_EQ_INT(skill_index_new(&ix), 0);
        const float e_a[4] = { 1, 0, 0, 0 }, e_b[4] = { 0, 1, 0, 0 }, e_c[4] = { 0.1f, 0.9f, 0.3f, 0 };
        ASSERT_EQ_INT(skill_index_put(ix, "ns", "a-convert", 1, "sh", "convert data", NULL, e_a, 4), 0);
        ASSERT_EQ_INT(skill_index_put(ix, "ns", "b-convert", 1, "sh", "convert data", NULL, e_b, 4), 0);
        /* no word in common with the query, but close in meaning */
        ASSERT_EQ_INT(skill_index_put(ix, "ns", "c-transform", 1, "sh", "reshape records", NULL, e_c, 4), 0);
        ASSERT_EQ_INT(skill_index_put(ix, "ns", "d-convert", 1, "sh", "convert data", NULL, NULL, 0), 0);

        SkillHit h[8];
        bool sem = true;
        ASSERT_EQ_INT(skill_index_search(ix, NULL, "convert data", NULL, 0, h, 8, &sem), 3);
        ASSERT_TRUE(!sem);
        ASSERT_EQ_STR(h[0].name, "a-convert");          /* a three-way tie: by name */
        ASSERT_EQ_STR(h[2].name, "d-convert");

        /* the query's meaning is close to b's: b first; a (the lowest cosine) and d (no
         * embedding) tie on the words alone; c comes in on meaning alone */
        const float q[4] = { 0, 2, 0, 0 };
        ASSERT_EQ_INT(skill_index_search(ix, NULL, "convert data", q, 4, h, 8, &sem), 4);
        ASSERT_TRUE(sem);
        ASSERT_EQ_STR(h[0].name, "b-convert");
        ASSERT_NEAR(h[0].score, 1);
        ASSERT_NEAR(h[0].cosine, 1);
        ASSERT_NEAR(h[0].semantic, 1);
        ASSERT_NEAR(h[0].lexical, 1);
        ASSERT_EQ_STR(h[1].name, "a-convert");
        ASSERT_NEAR(h[1].semantic, 0);
        ASSERT_NEAR(h[1].score, 0.5);
        ASSERT_EQ_STR(h[2].name, "d-convert");
        ASSERT_NEAR(h[2].cosine, 0);
        ASSERT_NEAR(h[2].score, 0.5);
        ASSERT_EQ_STR(h[3].name, "c-transform");
        ASSERT_NEAR(h[3].lexical, 0);
        ASSERT_NEAR(h[3].bm25, 0);
        ASSERT_TRUE(h[3].cosine > 0.9);
        ASSERT_NEAR(h[3].score, 0.5 * h[3].cosine);
        for (int i = 0; i < 4; i++)
                ASSERT_NEAR(h[i].score, 0.5 * h[i].lexical + 0.5 * h[i].semantic);

        /* the other way round */
        const float q2[4] = { 3, 0, 0, 0 };
        ASSERT_EQ_INT(skill_index_search(ix, NULL, "convert data", q2, 4, h, 8, &sem), 4);
        ASSERT_EQ_STR(h[0].name, "a-convert");

        /* an empty query: meaning alone */
        ASSERT_EQ_INT(skill_index_search(ix, NULL, "", q, 4, h, 8, &sem), 3);
        ASSERT_TRUE(sem);
        ASSERT_EQ_STR(h[0].name, "b-convert");
        ASSERT_EQ_STR(h[1].name, "c-transform");
        ASSERT_EQ_STR(h[2].name, "a-convert");
        skill_index_free(ix);
}

TEST(skills_search_dimensions) {
        SkillIndex *ix = NULL;
        ASSERT_EQ_INT(skill_index_new(&ix), 0);
        const float e3[3] = { 0, 0, 1 }, e4[4] = { 1, 0, 0, 0 }, zero[4] = { 0, 0, 0, 0 };
        ASSERT_EQ_INT(skill_index_put(ix, "ns", "three", 1, "sh", "parse logs", NULL, e3, 3), 0);
        ASSERT_EQ_INT(skill_index_put(ix, "ns", "four", 1, "sh", "parse logs", NULL, e4, 4), 0);
        ASSERT_EQ_INT(skill_index_put(ix, "ns", "zero", 1, "sh", "parse logs", NULL, zero, 4), 0);

        /* a 3-dim query: only "three" has a comparable embedding */
        SkillHit h[4];
        bool sem = false;
        const float q3[3] = { 0, 0, 5 };
        ASSERT_EQ_INT(skill_index_search(ix, NULL, "parse", q3, 3, h, 4, &sem), 3);
        ASSERT_TRUE(sem);
        ASSERT_EQ_STR(h[0].name, "three");
        ASSERT_NEAR(h[0].cosine, 1);
        ASSERT_NEAR(h[1].cosine, 0);
        ASSERT_NEAR(h[1].semantic, 0);
        /* a 5-dim query: nothing comparable, lexical alone */
        const float q5[5] = { 1, 1, 1, 1, 1 };
        ASSERT_EQ_INT(skill_index_search(ix, NULL, "parse", q5, 5, h, 4, &sem), 3);
        ASSERT_TRUE(!sem);
        ASSERT_NEAR(h[0].score, 1);
        ASSERT_EQ_STR(h[0].name, "four");
        ASSERT_EQ_INT(skill_index_search(ix, NULL, "", q5, 5, h, 4, &sem), 0);
        /* an all-zero query embedding counts as none */
        ASSERT_EQ_INT(skill_index_search(ix, NULL, "parse", zero, 4, h, 4, &sem), 3);
        ASSERT_TRUE(!sem);

        /* bad embeddings */
        float nan4[4] = { 1, NAN, 0, 0 }, inf4[4] = { INFINITY, 0, 0, 0 };
        static float huge[SKILL_INDEX_DIM_MAX + 1];
        huge[0] = 1;
        ASSERT_EQ_INT(skill_index_put(ix, "ns", "bad", 1, "sh", "", NULL, nan4, 4), -EINVAL);
        ASSERT_EQ_INT(skill_index_put(ix, "ns", "bad", 1, "sh", "", NULL, inf4, 4), -EINVAL);
        ASSERT_EQ_INT(skill_index_put(ix, "ns", "bad", 1, "sh", "", NULL, huge, SKILL_INDEX_DIM_MAX + 1), -EINVAL);
        ASSERT_EQ_INT(skill_index_put(ix, "ns", "big", 1, "sh", "", NULL, huge, SKILL_INDEX_DIM_MAX), 0);
        ASSERT_EQ_INT(skill_index_search(ix, NULL, "x", nan4, 4, h, 4, NULL), -EINVAL);
        ASSERT_EQ_INT(skill_index_search(ix, NULL, "x", huge, SKILL_INDEX_DIM_MAX + 1, h, 4, NULL), -EINVAL);
        ASSERT_EQ_INT(skill_index_search(ix, NULL, "", huge, SKILL_INDEX_DIM_MAX, h, 4, &sem), 1);
        ASSERT_TRUE(sem);
        ASSERT_EQ_STR(h[0].name, "big");
        ASSERT_EQ_UINT(skill_index_count(ix), 4);
        skill_index_free(ix);
}

TEST(skills_search_empty_query) {
        SkillIndex *ix = library_index();
        SkillHit h[4];
        bool sem = true;
        ASSERT_EQ_INT(skill_index_search(ix, NULL, "", NULL, 0, h, 4, &sem), 0);
        ASSERT_TRUE(!sem);
        ASSERT_EQ_INT(skill_index_search(ix, NULL, "  -- !! a b _ ", NULL, 0, h, 4, NULL), 0);
        ASSERT_EQ_INT(skill_index_search(ix, NULL, NULL, NULL, 0, h, 4, NULL), -EINVAL);
        skill_index_free(ix);

        /* an empty index */
        ASSERT_EQ_INT(skill_index_new(&ix), 0);
        const float q[2] = { 1, 0 };
        ASSERT_EQ_INT(skill_index_search(ix, NULL, "json", q, 2, h, 4, &sem), 0);
        ASSERT_TRUE(!sem);
        ASSERT_EQ_INT(skill_index_remove(ix, "a", "b"), -ENOENT);
        skill_index_free(ix);
        skill_index_free(NULL);
}

TEST(skills_search_unicode_bytes) {
        SkillIndex *ix = NULL;
        ASSERT_EQ_INT(skill_index_new(&ix), 0);
        ASSERT_EQ_INT(skill_index_put(ix, "ns", "traduire", 1, "python3",
                                      "Traduit des données en français; café, naïve, Ärger, 数据分析",
                                      "def naïveBayes(données): pass", NULL, 0), 0);
        ASSERT_EQ_INT(skill_index_put(ix, "ns", "junk", 1, "sh", "\xff\xfe\x80 broken \xc3", "\xff\xff", NULL, 0), 0);
        ASSERT_EQ_STR(best(ix, NULL, "données"), "traduire");
        ASSERT_EQ_STR(best(ix, NULL, "CAFÉ"), "");     /* only ASCII is folded: É stays É */
        ASSERT_EQ_STR(best(ix, NULL, "café!"), "traduire");
        ASSERT_EQ_STR(best(ix, NULL, "ärger"), "");
        ASSERT_EQ_STR(best(ix, NULL, "Ärger"), "traduire");
        ASSERT_EQ_STR(best(ix, NULL, "数据分析"), "traduire");
        ASSERT_EQ_STR(best(ix, NULL, "naïve"), "traduire");
        ASSERT_EQ_STR(best(ix, NULL, "bayes"), "traduire");     /* split at the camel boundary after ï */
        ASSERT_EQ_STR(best(ix, NULL, "broken \xff"), "junk");
        ASSERT_EQ_STR(best(ix, NULL, "\xff\xfe\x80"), "junk");
        ASSERT_EQ_STR(best(ix, NULL, "\xc3"), "");              /* one byte: too short */
        skill_index_free(ix);
}

TEST(skills_search_limits) {
        SkillIndex *ix = NULL;
        ASSERT_EQ_INT(skill_index_new(&ix), 0);
        char key[SKILL_INDEX_KEY_MAX + 2];
        memset(key, 'k', sizeof(key) - 1);
        key[sizeof(key) - 1] = 0;
        ASSERT_EQ_INT(skill_index_put(ix, key, "a", 1, "sh", "", NULL, NULL, 0), -EINVAL);
        ASSERT_EQ_INT(skill_index_put(ix, "ns", key, 1, "sh", "", NULL, NULL, 0), -EINVAL);
        key[SKILL_INDEX_KEY_MAX] = 0;
        ASSERT_EQ_INT(skill_index_put(ix, key, key, 1, "sh", "", NULL, NULL, 0), 0);
        ASSERT_EQ_INT(skill_index_put(ix, "", "a", 1, "sh", "", NULL, NULL, 0), -EINVAL);
        ASSERT_EQ_INT(skill_index_put(ix, "ns", "", 1, "sh", "", NULL, NULL, 0), -EINVAL);
        ASSERT_EQ_INT(skill_index_put(ix, NULL, "a", 1, "sh", "", NULL, NULL, 0), -EINVAL);
        ASSERT_EQ_INT(skill_index_put(ix, "a/b", "c", 1, "sh", "", NULL, NULL, 0), -EINVAL);
        ASSERT_EQ_INT(skill_index_put(ix, "a", "b/c", 1, "sh", "", NULL, NULL, 0), -EINVAL);
        ASSERT_EQ_INT(skill_index_put(ix, "a", "b", 1, "abcdefghijklmnopqrstuvwxyz0123456", "", NULL, NULL, 0), -EINVAL);
        ASSERT_EQ_INT(skill_index_put(ix, "a", "b", 1, NULL, NULL, NULL, NULL, 0), 0);
        ASSERT_EQ_UINT(skill_index_count(ix), 2);

        /* a description of exactly the limit, and one byte over */
        static char desc[SKILL_INDEX_DESCRIPTION_MAX + 2];
        memset(desc, ' ', SKILL_INDEX_DESCRIPTION_MAX);
        memcpy(desc + SKILL_INDEX_DESCRIPTION_MAX - 6, "zebras", 6);
        ASSERT_EQ_INT(skill_index_put(ix, "a", "d", 1, "sh", desc, NULL, NULL, 0), 0);
        ASSERT_EQ_STR(best(ix, NULL, "zebras"), "d");
        desc[SKILL_INDEX_DESCRIPTION_MAX] = 'x';
        ASSERT_EQ_INT(skill_index_put(ix, "a", "e", 1, "sh", desc, NULL, NULL, 0), -E2BIG);

        /* code beyond the scanned bytes is not read */
        size_t clen = SKILL_INDEX_CODE_SCAN_MAX + 100;
        char *code = malloc(clen + 1);
        ASSERT_TRUE(code);
        memset(code, ' ', clen);
        memcpy(code + 10, "alpacas", 7);
        memcpy(code + SKILL_INDEX_CODE_SCAN_MAX + 10, "llamas", 6);
        code[clen] = 0;
        ASSERT_EQ_INT(skill_index_put(ix, "a", "f", 1, "sh", "", code, NULL, 0), 0);
        free(code);
        ASSERT_EQ_STR(best(ix, NULL, "alpacas"), "f");
        ASSERT_EQ_STR(best(ix, NULL, "llamas"), "");

        /* a query of exactly the limit, and one byte over */
        char q[SKILL_INDEX_QUERY_MAX + 2];
        memset(q, ' ', SKILL_INDEX_QUERY_MAX);
        memcpy(q, "zebras", 6);
        q[SKILL_INDEX_QUERY_MAX] = 0;
        SkillHit h[2];
        ASSERT_EQ_INT(skill_index_search(ix, NULL, q, NULL, 0, h, 2, NULL), 1);
        q[SKILL_INDEX_QUERY_MAX] = 'x';
        q[SKILL_INDEX_QUERY_MAX + 1] = 0;
        ASSERT_EQ_INT(skill_index_search(ix, NULL, q, NULL, 0, h, 2, NULL), -E2BIG);
        /* a query of many distinct terms */
        char many[SKILL_INDEX_QUERY_MAX + 1] = "";
        for (int i = 0; strlen(many) + 4 <= SKILL_INDEX_QUERY_MAX; i++)
                snprintf(many + strlen(many), sizeof(many) - strlen(many), "%c%c ", 'a' + i / 26 % 26, 'a' + i % 26);
        ASSERT_EQ_INT(skill_index_search(ix, NULL, many, NULL, 0, h, 2, NULL), 0);
        skill_index_free(ix);
}

TEST(skills_search_full) {
        SkillIndex *ix = NULL;
        ASSERT_EQ_INT(skill_index_new(&ix), 0);
        char name[32];
        for (int i = 0; i < SKILL_INDEX_DOCS_MAX; i++) {
                snprintf(name, sizeof(name), "s%d", i);
                ASSERT_EQ_INT(skill_index_put(ix, "ns", name, 1, "sh", i % 1000 == 0 ? "rare" : "common", NULL, NULL, 0), 0);
        }
        ASSERT_EQ_INT(skill_index_put(ix, "ns", "one-more", 1, "sh", "", NULL, NULL, 0), -ENOSPC);
        /* a replace still works when full, and so does a put after a remove */
        ASSERT_EQ_INT(skill_index_put(ix, "ns", "s1", 2, "sh", "rare", NULL, NULL, 0), 0);
        ASSERT_EQ_INT(skill_index_remove(ix, "ns", "s2"), 0);
        ASSERT_EQ_INT(skill_index_put(ix, "ns", "one-more", 1, "sh", "rare", NULL, NULL, 0), 0);
        ASSERT_EQ_UINT(skill_index_count(ix), SKILL_INDEX_DOCS_MAX);
        static SkillHit h[200];
        ASSERT_EQ_INT(skill_index_search(ix, NULL, "rare", NULL, 0, h, 200, NULL), 102);
        ASSERT_EQ_INT(skill_index_search(ix, NULL, "common", NULL, 0, h, 3, NULL), 3);
        ASSERT_EQ_STR(h[0].name, "s10");        /* all equal: by name */
        skill_index_free(ix);
}
