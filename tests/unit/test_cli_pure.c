/* tests/unit/test_cli_pure.c: the CLI's pure parts: option parsing, the
 * config-file parser, the YAML document splitter, tables, YAML output and
 * the quantity formatters (the unit binary links cli/'s I/O-free modules). */
#define _GNU_SOURCE
#include "test.h"

#include <errno.h>

#include "lib/util.h"
#include "cli/config.h"
#include "cli/docsplit.h"
#include "cli/opts.h"
#include "cli/output.h"

/* ---- options ------------------------------------------------------------ */

typedef struct Seen {
        const char *file, *out;
        int all;
} Seen;

static int t_file(void *t, const char *a) { ((Seen *) t)->file = a; return 0; }
static int t_out(void *t, const char *a) {
        if (strcmp(a, "bad") == 0)
                return -EINVAL;
        ((Seen *) t)->out = a;
        return 0;
}
static int t_all(void *t, const char *a) { (void) a; ((Seen *) t)->all++; return 0; }

static const OptSpec t_specs[] = {
        { "file", 'f', "FILE", t_file, "a file" },
        { "output", 'o', "FORMAT", t_out, "a format" },
        { "all", 'A', NULL, t_all, "everything" },
};

static int parse(Seen *s, OptResult *res, bool stop, int argc, char **argv) {
        OptTable t = { t_specs, ELEMENTSOF(t_specs), s };
        *s = (Seen) { 0 };
        return opts_parse(&t, 1, argc, argv, stop, "test", res);
}

TEST(cli_opts_forms) {
        Seen s;
        OptResult res;
        char *argv[] = { "pos1", "--file", "a", "-o", "json", "pos2", "-AfB", "--output=yaml", "--", "-x" };
        ASSERT_EQ_INT(parse(&s, &res, false, ELEMENTSOF(argv), argv), 0);
        ASSERT_EQ_STR(s.file, "B");
        ASSERT_EQ_STR(s.out, "yaml");
        ASSERT_EQ_INT(s.all, 1);
        ASSERT_EQ_UINT(res.n_positional, 3);
        ASSERT_EQ_STR(res.positional[0], "pos1");
        ASSERT_EQ_STR(res.positional[1], "pos2");
        ASSERT_EQ_STR(res.positional[2], "-x");
        ASSERT_TRUE(!res.help);
}

TEST(cli_opts_stop_at_verb) {
        Seen s;
        OptResult res;
        char *argv[] = { "-o", "json", "list", "--all" };
        ASSERT_EQ_INT(parse(&s, &res, true, ELEMENTSOF(argv), argv), 0);
        ASSERT_EQ_INT(res.next, 2);
        ASSERT_EQ_INT(s.all, 0);
}

TEST(cli_opts_errors) {
        Seen s;
        OptResult res;
        char *unknown[] = { "--fiel", "x" }, *missing[] = { "--file" }, *flag_value[] = { "--all=1" };
        char *refused[] = { "-o", "bad" }, *short_unknown[] = { "-z" }, *help[] = { "x", "-h" };
        ASSERT_EQ_INT(parse(&s, &res, false, 2, unknown), -EINVAL);
        ASSERT_EQ_INT(parse(&s, &res, false, 1, missing), -EINVAL);
        ASSERT_EQ_INT(parse(&s, &res, false, 1, flag_value), -EINVAL);
        ASSERT_EQ_INT(parse(&s, &res, false, 2, refused), -EINVAL);
        ASSERT_EQ_INT(parse(&s, &res, false, 1, short_unknown), -EINVAL);
        ASSERT_EQ_INT(parse(&s, &res, false, 2, help), 0);
        ASSERT_TRUE(res.help);
}

TEST(cli_opts_suggest) {
        const char *names[] = { "namespace", "output", "token", "timeout" };
        ASSERT_EQ_STR(opts_suggest("nmespace", names, 4), "namespace");
        ASSERT_EQ_STR(opts_suggest("out", names, 4), "output");
        ASSERT_EQ_STR(opts_suggest("tokn", names, 4), "token");
        ASSERT_TRUE(opts_suggest("zzzzzz", names, 4) == NULL);
}

/* ---- config file -------------------------------------------------------- */

static int cfg(const char *text, ConfigFile *f, char *why) {
        *f = (ConfigFile) { 0 };
        return config_parse(text, strlen(text), f, why, 256);
}

TEST(cli_config_parse) {
        ConfigFile f;
        char why[256];
        ASSERT_EQ_INT(cfg("---\n# fnbox\nurl: http://h:1/   # comment\r\n\ntoken: 'fnb_a''b'\n"
                          "namespace: \"team-a\"  # c\n", &f, why), 0);
        ASSERT_EQ_STR(f.url, "http://h:1/");
        ASSERT_EQ_STR(f.token, "fnb_a'b");
        ASSERT_EQ_STR(f.namespace_, "team-a");
        config_file_done(&f);
        ASSERT_EQ_INT(cfg("url: http://h#frag\n", &f, why), 0);
        ASSERT_EQ_STR(f.url, "http://h#frag");     /* '#' only starts a comment after a blank */
        config_file_done(&f);
        ASSERT_EQ_INT(cfg("", &f, why), 0);
        ASSERT_TRUE(f.url == NULL && f.token == NULL);
}

TEST(cli_config_strict) {
        static const struct { const char *text, *why; } bad[] = {
                { "colour: blue\n", "1: unknown key 'colour'" },
                { "url: a\nurl: b\n", "2: 'url' is set twice" },
                { "  url: a\n", "1: nested values" },
                { "url: [a]\n", "1: only plain or quoted" },
                { "url a\n", "1: expected 'key: value'" },
                { "url:a\n", "1: expected 'key: value'" },
                { "url:\n", "1: 'url' has no value" },
                { "token: \"abc\n", "1: unterminated" },
                { "token: \"a\\n\"\n", "1: only \\\" and \\\\" },
                { "token: 'a' b\n", "1: unexpected text" },
                { "url: a\n---\n", "2: expected 'key: value'" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                ConfigFile f;
                char why[256] = "";
                ASSERT_EQ_INT(cfg(bad[i].text, &f, why), -EINVAL);
                if (strncmp(why, bad[i].why, strlen(bad[i].why)) != 0)
                        FAIL_AT("%s: got \"%s\", expected \"%s...\"", bad[i].text, why, bad[i].why);
                config_file_done(&f);
        }
        ConfigFile f = { 0 };
        char why[256];
        ASSERT_EQ_INT(config_parse("url: a\0b", 8, &f, why, sizeof why), -EINVAL);
}

TEST(cli_config_values) {
        ASSERT_TRUE(config_url_valid("http://127.0.0.1:8081"));
        ASSERT_TRUE(config_url_valid("https://fnbox.example/api"));
        ASSERT_TRUE(!config_url_valid("ftp://x"));
        ASSERT_TRUE(!config_url_valid("http://"));
        ASSERT_TRUE(!config_url_valid("http://a b"));
        ASSERT_TRUE(!config_url_valid("http://a\r\nX: y"));
        ASSERT_TRUE(!config_url_valid("http://a/?q=1"));
        ASSERT_TRUE(config_token_valid("fnb_abc_DEF-123"));
        ASSERT_TRUE(!config_token_valid(""));
        ASSERT_TRUE(!config_token_valid("a b"));
        ASSERT_TRUE(!config_token_valid("a\nb"));
        ASSERT_TRUE(!config_token_valid("caf\xc3\xa9"));
}

/* ---- document splitting ------------------------------------------------- */

static int split(const char *text, YamlDoc *docs) {
        return docsplit(text, strlen(text), docs, 8);
}

static void expect_doc(const char *text, const YamlDoc *d, const char *want, unsigned line) {
        char got[512];
        snprintf(got, sizeof got, "%.*s", (int) d->len, text + d->offset);
        ASSERT_EQ_STR(got, want);
        ASSERT_EQ_UINT(d->line, line);
}

TEST(cli_docsplit_basic) {
        YamlDoc d[8];
        const char *one = "a: 1\nb: 2\n";
        ASSERT_EQ_INT(split(one, d), 1);
        expect_doc(one, &d[0], one, 1);
        const char *two = "# head\n---\na: 1\n---   # second\nb: 2\n";
        ASSERT_EQ_INT(split(two, d), 2);
        expect_doc(two, &d[0], "---\na: 1\n", 2);
        expect_doc(two, &d[1], "---   # second\nb: 2\n", 4);
        const char *ends = "a: 1\n...\n---\nb: 2\n...\n# trailing\n";
        ASSERT_EQ_INT(split(ends, d), 2);
        expect_doc(ends, &d[0], "a: 1\n", 1);
        expect_doc(ends, &d[1], "---\nb: 2\n", 3);
        ASSERT_EQ_INT(split("", d), 0);
        ASSERT_EQ_INT(split("# only\n---\n# comments\n---\n", d), 0);
}

TEST(cli_docsplit_markers_inside_content) {
        YamlDoc d[8];
        /* indented or glued "---" is content; a column-0 marker ends even a block scalar */
        const char *t = "a: |\n  --- x\n---x: 1\nb: \"--- y\"\n--- |\n  text\n";
        ASSERT_EQ_INT(split(t, d), 2);
        expect_doc(t, &d[0], "a: |\n  --- x\n---x: 1\nb: \"--- y\"\n", 1);
        expect_doc(t, &d[1], "--- |\n  text\n", 5);
}

TEST(cli_docsplit_directives_bom_crlf) {
        YamlDoc d[8];
        const char *t = "a: 1\n...\n%YAML 1.1\n---\nb: 2\n";
        ASSERT_EQ_INT(split(t, d), 2);
        expect_doc(t, &d[1], "%YAML 1.1\n---\nb: 2\n", 3);
        const char *bom = "\xef\xbb\xbf---\r\na: 1\r\n---\r\nb: 2\r\n";
        ASSERT_EQ_INT(split(bom, d), 2);
        expect_doc(bom, &d[0], "---\r\na: 1\r\n", 1);   /* the mark stays behind */
        expect_doc(bom, &d[1], "---\r\nb: 2\r\n", 3);
        char many[256] = "";
        for (int i = 0; i < 9; i++)
                strcat(many, "---\na: 1\n");
        ASSERT_EQ_INT(split(many, d), -E2BIG);
}

/* ---- output ------------------------------------------------------------- */

TEST(cli_format_quantities) {
        char b[64];
        format_bytes(134217728, b, sizeof b);
        ASSERT_EQ_STR(b, "128Mi");
        format_bytes(1536, b, sizeof b);
        ASSERT_EQ_STR(b, "1536");
        format_bytes(65536, b, sizeof b);
        ASSERT_EQ_STR(b, "64Ki");
        format_bytes(0, b, sizeof b);
        ASSERT_EQ_STR(b, "0");
        format_ms(10000, b, sizeof b);
        ASSERT_EQ_STR(b, "10s");
        format_ms(250, b, sizeof b);
        ASSERT_EQ_STR(b, "250ms");
        format_ms(60000, b, sizeof b);
        ASSERT_EQ_STR(b, "1m");
        format_ms(7200000, b, sizeof b);
        ASSERT_EQ_STR(b, "2h");
        format_cpu(500, b, sizeof b);
        ASSERT_EQ_STR(b, "500m");
        format_cpu(2000, b, sizeof b);
        ASSERT_EQ_STR(b, "2");
        time_t now = 1700000000; /* 2023-11-14T22:13:20Z */
        format_age("2023-11-14T22:13:00.000Z", now, b, sizeof b);
        ASSERT_EQ_STR(b, "20s");
        format_age("2023-11-14T20:13:20Z", now, b, sizeof b);
        ASSERT_EQ_STR(b, "2h");
        format_age("2023-11-10T22:13:20Z", now, b, sizeof b);
        ASSERT_EQ_STR(b, "4d");
        format_age("yesterday", now, b, sizeof b);
        ASSERT_EQ_STR(b, "yesterday");
}

TEST(cli_sanitize) {
        char b[16];
        ASSERT_EQ_STR(output_sanitize("a\x1b[31mb\n", b, sizeof b), "a?[31mb?");
        ASSERT_EQ_STR(output_sanitize("x\xc2\x9by", b, sizeof b), "x?y");
        ASSERT_EQ_STR(output_sanitize("0123456789abcdefghij", b, sizeof b), "0123456789ab...");
        /* never cut inside a UTF-8 character: "é" is two bytes */
        ASSERT_EQ_STR(output_sanitize("0123456789a\xc3\xa9zzzzz", b, sizeof b), "0123456789a...");
        ASSERT_EQ_UINT(output_width("caf\xc3\xa9"), 4);
}

static char *capture_table(Table *t) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        table_print(t, f, false);
        fclose(f);
        return buf;
}

TEST(cli_table) {
        Table *t = table_new(3, (const char *[]) { "NAME", "LATEST", "TAG" });
        ASSERT_TRUE(t != NULL);
        ASSERT_EQ_INT(table_row(t, "hello", "hello-00001", "stable"), 0);
        ASSERT_EQ_INT(table_row(t, "caf\xc3\xa9", NULL, ""), 0);
        char *out = capture_table(t);
        ASSERT_EQ_STR(out, "NAME   LATEST       TAG\n"
                           "hello  hello-00001  stable\n"
                           "caf\xc3\xa9   -\n");
        free(out);
        table_free(t);
        ASSERT_TRUE(table_new(0, NULL) == NULL);
}

static char *capture_yaml(const char *json) {
        json_t *v = json_loads(json, 0, NULL);
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        output_yaml(f, v);
        fclose(f);
        json_decref(v);
        return buf;
}

TEST(cli_yaml_quoting) {
        char *out = capture_yaml("{\"b\": [\"true\", \"123\", \"2026-11-21T10:00:00Z\", \"a: b\", \"\", \"plain text\","
                                 " \"sha256:ab\", \"-x\", \"No\"], \"a\": {\"n\": 5, \"t\": true, \"z\": null,"
                                 " \"e\": {}, \"l\": []}}");
        /* "n" is a boolean to YAML 1.1 readers, so even a key is quoted */
        ASSERT_EQ_STR(out, "a:\n  e: {}\n  l: []\n  \"n\": 5\n  t: true\n  z: null\nb:\n- \"true\"\n- \"123\"\n"
                           "- \"2026-11-21T10:00:00Z\"\n- \"a: b\"\n- \"\"\n- plain text\n- sha256:ab\n"
                           "- \"-x\"\n- \"No\"\n");
        free(out);
}
