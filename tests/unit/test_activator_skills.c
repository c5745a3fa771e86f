/* tests/unit/test_activator_skills.c: skills on the activator (issue 6):
 * /skills/ URLs taken apart, the route table's "skills", a skill resolved
 * to its function skill-NAME-vN (as a token sees the table), the role a
 * routed request carries, the error body with a box's stderr, and the
 * INVOKE frame's "stderr" flag. */
#define _GNU_SOURCE
#include "test.h"

#include <errno.h>
#include <jansson.h>

#include "activator/fnpath.h"
#include "activator/outcome.h"
#include "activator/router.h"
#include "activator/table.h"
#include "lib/token.h"
#include "runtime/proto.h"

/* ---- URLs ---- */

/* n copies of c (n < 100). */
static const char *repeat(char c, size_t n) {
        static char buf[100];
        memset(buf, c, n);
        buf[n] = 0;
        return buf;
}

TEST(activator_skills_path_forms) {
        FnPath p;
        ASSERT_EQ_INT(fnpath_parse("/skills/csv-sum", &p), 0);
        ASSERT_TRUE(p.skill && !p.has_second && p.first.valid && !p.query);
        ASSERT_EQ_STR(p.first.name, "csv-sum");
        ASSERT_EQ_STR(p.first.tag, "");

        ASSERT_EQ_INT(fnpath_parse("/skills/csv-sum@12/a/b?x=1", &p), 0);
        ASSERT_TRUE(p.skill && !p.has_second);          /* NAME@V is never a namespace */
        ASSERT_EQ_STR(p.first.name, "csv-sum");
        ASSERT_EQ_STR(p.first.tag, "12");
        ASSERT_TRUE(p.first.rest_len == 4 && strncmp(p.first.rest, "/a/b", 4) == 0);
        ASSERT_EQ_STR(p.query, "x=1");

        /* leading zeros are the same version */
        ASSERT_EQ_INT(fnpath_parse("/skills/csv-sum@007", &p), 0);
        ASSERT_EQ_STR(p.first.tag, "7");

        ASSERT_EQ_INT(fnpath_parse("/skills/team-a/csv-sum@3/x", &p), 0);
        ASSERT_TRUE(p.has_second && p.first.valid);     /* both readings */
        ASSERT_EQ_STR(p.first.name, "team-a");
        ASSERT_EQ_STR(p.second.name, "csv-sum");
        ASSERT_EQ_STR(p.second.tag, "3");
        ASSERT_EQ_INT(p.second.rest_len, 2);
        ASSERT_EQ_INT(p.first.rest_len, 12);

        /* a namespace of 41 to 63 characters is no skill name: one reading */
        char ns63[128];
        snprintf(ns63, sizeof ns63, "/skills/%s/s", repeat('n', 63));
        ASSERT_EQ_INT(fnpath_parse(ns63, &p), 0);
        ASSERT_TRUE(p.has_second && !p.first.valid && p.first.ns_ok);
        ASSERT_EQ_INT(strlen(p.first.name), 63);
        ASSERT_EQ_STR(p.second.name, "s");

        /* a second segment that is no skill: only SKILL with a path */
        ASSERT_EQ_INT(fnpath_parse("/skills/s/Upper", &p), 0);
        ASSERT_TRUE(!p.has_second && p.first.valid);
        ASSERT_EQ_INT(fnpath_parse("/skills/s/x@latest", &p), 0);
        ASSERT_TRUE(!p.has_second);

        /* 40 characters: the longest name */
        char longest[128];
        snprintf(longest, sizeof longest, "/skills/%s@999999999999999", repeat('a', 40));
        ASSERT_EQ_INT(fnpath_parse(longest, &p), 0);
        ASSERT_EQ_INT(strlen(p.first.name), 40);
        ASSERT_TRUE(fnpath_is_skill("/skills/x") && !fnpath_is_skill("/fn/x") && !fnpath_is_skill("/skillsx"));
        ASSERT_EQ_INT(fnpath_parse("/fn/csv-sum", &p), 0);
        ASSERT_TRUE(!p.skill);
}

TEST(activator_skills_path_refused) {
        FnPath p;
        ASSERT_EQ_INT(fnpath_parse("/skill/x", &p), -ENOENT);
        ASSERT_EQ_INT(fnpath_parse("/skillsx/x", &p), -ENOENT);
        const char *bad[] = {
                "/skills/", "/skills//x", "/skills/X", "/skills/-a", "/skills/a-", "/skills/a@", "/skills/@1",
                "/skills/a@v1", "/skills/a@1a", "/skills/a@-1", "/skills/a@0", "/skills/a@000", "/skills/a@1@2",
                "/skills/a_b", "/skills/a%41", "/skills/?x",
                "/skills/a@1000000000000000",   /* 16 digits */
        };
        for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
                if (fnpath_parse(bad[i], &p) != -EINVAL)
                        FAIL_AT("%s was accepted", bad[i]);
        /* a name of 41; a first segment of 64 (no namespace either); one of
         * 46 (no skill) with no skill after it, or alone */
        const struct { size_t n; const char *after; } long_ones[] = {
                { 41, "" }, { 41, "@1" }, { 64, "/s" }, { 46, "/Bad" }, { 46, "" },
        };
        for (size_t i = 0; i < sizeof long_ones / sizeof *long_ones; i++) {
                char uri[160];
                snprintf(uri, sizeof uri, "/skills/%s%s", repeat('n', long_ones[i].n), long_ones[i].after);
                if (fnpath_parse(uri, &p) != -EINVAL)
                        FAIL_AT("%s was accepted", uri);
        }
}

TEST(activator_skills_function_names) {
        char buf[FNPATH_NAME_MAX + 1];
        ASSERT_EQ_INT(fnpath_skill_function("csv-sum", "3", buf, sizeof buf), 0);
        ASSERT_EQ_STR(buf, "skill-csv-sum-v3");
        /* the longest name and version still make a name */
        ASSERT_EQ_INT(fnpath_skill_function(repeat('a', 40), "999999999999999", buf, sizeof buf), 0);
        ASSERT_EQ_INT(strlen(buf), 63);
        ASSERT_TRUE(fnpath_name_ok(buf, strlen(buf)));
        ASSERT_EQ_INT(fnpath_skill_function("x", "03", buf, sizeof buf), -EINVAL);
        ASSERT_EQ_INT(fnpath_skill_function("x", "", buf, sizeof buf), -EINVAL);
        ASSERT_EQ_INT(fnpath_skill_function("X", "1", buf, sizeof buf), -EINVAL);
        ASSERT_EQ_INT(fnpath_skill_function("x", "1", buf, 10), -ENOBUFS);   /* skill-x-v1 and its NUL: 11 */
        ASSERT_EQ_INT(fnpath_skill_function("x", "1", buf, 11), 0);

        char msg[128];
        FnPath p;
        ASSERT_EQ_INT(fnpath_parse("/skills/csv-sum", &p), 0);
        fnpath_missing(&p, false, msg, sizeof msg);
        ASSERT_EQ_STR(msg, "skill csv-sum has no promoted version");
        ASSERT_EQ_INT(fnpath_parse("/skills/team/csv-sum@04", &p), 0);
        fnpath_missing(&p, true, msg, sizeof msg);
        ASSERT_EQ_STR(msg, "skill team/csv-sum has no version 4");
        ASSERT_EQ_INT(fnpath_parse("/fn/team/hello", &p), 0);
        fnpath_missing(&p, true, msg, sizeof msg);
        ASSERT_EQ_STR(msg, "no function team/hello");
        fnpath_missing(&p, false, msg, sizeof msg);
        ASSERT_EQ_STR(msg, "no function team");
}

/* ---- the route table ---- */

#define REV(ns, name) "\"" ns "/" name "-00001\": {\"mode\": \"fresh\", \"instances\": []}"
#define FN(ns, name) "{\"namespace\": \"" ns "\", \"name\": \"" name "\", \"traffic\": " \
        "[{\"revision\": \"" name "-00001\", \"percent\": 100}]}"

static const char skills_table[] =
        "{\"version\": 3, \"functions\": ["
        FN("default", "skill-csv-sum-v1") "," FN("default", "skill-csv-sum-v2") ","
        FN("team", "skill-csv-sum-v1") "," FN("default", "team") "," FN("default", "skill-team-v1") ","
        FN("default", "skill-old-v1") "],"
        " \"revisions\": {" REV("default", "skill-csv-sum-v1") "," REV("default", "skill-csv-sum-v2") ","
        REV("team", "skill-csv-sum-v1") "," REV("default", "team") "," REV("default", "skill-team-v1") ","
        REV("default", "skill-old-v1") "},"
        " \"skills\": [{\"namespace\": \"default\", \"name\": \"csv-sum\", \"version\": 2},"
        "  {\"namespace\": \"team\", \"name\": \"csv-sum\", \"version\": 1},"
        "  {\"namespace\": \"default\", \"name\": \"team\", \"version\": 1}]}";

static RouteTable *load(const char *text, int want) {
        json_error_t e;
        char why[256] = "";
        json_t *j = json_loads(text, 0, &e);
        RouteTable *t = NULL;
        if (!j)
                FAIL_AT("test JSON: %s", e.text);
        int r = route_table_parse(j, &t, why, sizeof why);
        json_decref(j);
        if (r != want)
                FAIL_AT("route_table_parse: %d (%s), wanted %d", r, why, want);
        if (r < 0 && !why[0])
                FAIL_AT("no reason for a refused table");
        return t;
}

static const char *lookup(const RouteTable *t, const char *uri, const char **sub) {
        FnPath p;
        const char *tag;
        size_t sub_len;
        if (fnpath_parse(uri, &p) < 0)
                FAIL_AT("%s: not parsed", uri);
        RouteFunction *f = route_lookup(t, &p, &tag, sub, &sub_len);
        if (f && *tag)
                FAIL_AT("%s: a skill's function came with tag %s", uri, tag);
        return f ? f->key : NULL;
}

TEST(activator_skills_table_lookup) {
        RouteTable *t = load(skills_table, 0);
        const char *sub;
        ASSERT_EQ_UINT(t->n_skills, 3);
        ASSERT_EQ_STR(route_table_skill(t, "default", "csv-sum"), "2");
        ASSERT_TRUE(route_table_skill(t, "default", "old") == NULL);
        ASSERT_EQ_STR(lookup(t, "/skills/csv-sum", &sub), "default/skill-csv-sum-v2");
        ASSERT_EQ_STR(lookup(t, "/skills/csv-sum@1", &sub), "default/skill-csv-sum-v1");
        ASSERT_EQ_STR(lookup(t, "/skills/csv-sum@2/x", &sub), "default/skill-csv-sum-v2");
        ASSERT_EQ_STR(sub, "/x");
        ASSERT_TRUE(lookup(t, "/skills/csv-sum@3", &sub) == NULL);
        /* a version deprecated or never promoted: not NAME alone, still NAME@V */
        ASSERT_TRUE(lookup(t, "/skills/old", &sub) == NULL);
        ASSERT_EQ_STR(lookup(t, "/skills/old@1", &sub), "default/skill-old-v1");
        /* the namespace's own skill first, else the default's with a path */
        ASSERT_EQ_STR(lookup(t, "/skills/team/csv-sum", &sub), "team/skill-csv-sum-v1");
        ASSERT_EQ_STR(lookup(t, "/skills/team/csv-sum@1/y", &sub), "team/skill-csv-sum-v1");
        ASSERT_EQ_STR(sub, "/y");
        ASSERT_EQ_STR(lookup(t, "/skills/team/other", &sub), "default/skill-team-v1");
        ASSERT_EQ_STR(sub, "/other");
        ASSERT_TRUE(lookup(t, "/skills/nobody/csv-sum@9", &sub) == NULL);
        /* /fn/ is untouched: the skill's function by its own name */
        ASSERT_EQ_STR(lookup(t, "/fn/skill-csv-sum-v1", &sub), "default/skill-csv-sum-v1");
        ASSERT_EQ_STR(lookup(t, "/fn/team/x", &sub), "default/team");
        route_table_free(t);

        /* no "skills" (an older controller): no skill without a version */
        t = load("{\"version\": 1, \"functions\": [" FN("default", "skill-a-v1") "], \"revisions\": {"
                 REV("default", "skill-a-v1") "}}", 0);
        ASSERT_EQ_UINT(t->n_skills, 0);
        ASSERT_TRUE(lookup(t, "/skills/a", &sub) == NULL);
        ASSERT_EQ_STR(lookup(t, "/skills/a@1", &sub), "default/skill-a-v1");
        route_table_free(t);

        const char *bad[] = {
                "{\"version\": 1, \"functions\": [], \"revisions\": {}, \"skills\": {}}",
                "{\"version\": 1, \"functions\": [], \"revisions\": {}, \"skills\": [1]}",
                "{\"version\": 1, \"functions\": [], \"revisions\": {}, \"skills\": [{\"namespace\": \"d\", \"name\": \"Bad\", \"version\": 1}]}",
                "{\"version\": 1, \"functions\": [], \"revisions\": {}, \"skills\": [{\"namespace\": \"d\", \"name\": \"a\"}]}",
                "{\"version\": 1, \"functions\": [], \"revisions\": {}, \"skills\": [{\"namespace\": \"d\", \"name\": \"a\", \"version\": 0}]}",
                "{\"version\": 1, \"functions\": [], \"revisions\": {}, \"skills\": [{\"namespace\": \"d\", \"name\": \"a\", \"version\": \"1\"}]}",
                "{\"version\": 1, \"functions\": [], \"revisions\": {}, \"skills\": [{\"namespace\": \"d\", \"name\": \"a\", \"version\": 1000000000000000}]}",
                "{\"version\": 1, \"functions\": [], \"revisions\": {}, \"skills\": [{\"name\": \"a\", \"version\": 1}]}",
                "{\"version\": 1, \"functions\": [], \"revisions\": {}, \"skills\": [{\"namespace\": \"d\", \"name\": \"a\", \"version\": 1},"
                " {\"namespace\": \"d\", \"name\": \"a\", \"version\": 2}]}",
        };
        for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
                load(bad[i], -EINVAL);
}

/* A table with skill-s-v1 in namespace "team" and three tokens on it. */
typedef struct Tok {
        char token[TOKEN_STRING_MAX], id[TOKEN_ID_LEN + 1], hash[65], header[TOKEN_STRING_MAX + 16];
        AuthKey key;
} Tok;

static void tok_make(Tok *t) {
        bool hit;
        ASSERT_EQ_INT(token_generate(t->token, t->id, t->hash), 0);
        snprintf(t->header, sizeof t->header, "Bearer %s", t->token);
        ASSERT_EQ_INT(auth_key_from_header(t->header, NULL, &t->key, &hit), 0);
}

static RouteTable *role_table(Tok *inv, Tok *dev, Tok *adm) {
        tok_make(inv), tok_make(dev), tok_make(adm);
        json_t *doc = json_pack(
                "{s:i, s:[{s:s, s:s, s:[{s:s, s:i}]}], s:{s:{s:s, s:[]}}, s:[{s:s, s:s, s:i}],"
                " s:[{s:s, s:s, s:s, s:[s]}, {s:s, s:s, s:s, s:[s]}, {s:s, s:s, s:s, s:[s]}]}",
                "version", 1,
                "functions", "namespace", "team", "name", "skill-s-v1", "traffic", "revision", "skill-s-v1-00001",
                "percent", 100,
                "revisions", "team/skill-s-v1-00001", "mode", "fresh", "instances",
                "skills", "namespace", "team", "name", "s", "version", 1,
                "tokens", "id", inv->id, "secretHash", inv->hash, "role", "invoker", "namespaces", "team",
                "id", dev->id, "secretHash", dev->hash, "role", "developer", "namespaces", "team",
                "id", adm->id, "secretHash", adm->hash, "role", "admin", "namespaces", "*");
        ASSERT_TRUE(doc != NULL);
        char why[256];
        RouteTable *t = NULL;
        ASSERT_EQ_INT(route_table_parse(doc, &t, why, sizeof why), 0);
        json_decref(doc);
        return t;
}

static void inbox_wake(RouterInbox *in __attribute__((unused))) {
}

TEST(activator_skills_route_roles) {
        Tok inv, dev, adm;
        Router *r;
        ASSERT_EQ_INT(router_new(&r), 0);
        router_swap(r, role_table(&inv, &dev, &adm));
        router_set_live(r, false);      /* a miss is final at once */
        RouterInbox inbox = { .wake = inbox_wake };
        FnPath p;
        char msg[256];
        ASSERT_EQ_INT(fnpath_parse("/skills/team/s", &p), 0);
        ASSERT_TRUE(router_has_function(r, &p, "team", &p.second));
        struct { Tok *t; bool developer; } cases[] = { { &inv, false }, { &dev, true }, { &adm, true } };
        for (size_t i = 0; i < 3; i++) {
                Waiter w = { .inbox = &inbox };
                RouteResult res;
                ASSERT_EQ_INT(router_authorize(r, &p, &cases[i].t->key, msg, sizeof msg), ACT_OK);
                router_route(r, &p, &cases[i].t->key, 1, &w, 10, router_now_ns(), &res);
                ASSERT_EQ_INT(res.error, ACT_OK);
                ASSERT_TRUE(res.queued);
                ASSERT_EQ_INT(res.developer, cases[i].developer);
                ASSERT_TRUE(router_unqueue(r, &w));
                router_put(r, res.rev);
        }
        /* no token (a broker call, --auth none): no role */
        Waiter w = { .inbox = &inbox };
        RouteResult res;
        router_route(r, &p, NULL, 1, &w, 10, router_now_ns(), &res);
        ASSERT_TRUE(res.error == ACT_OK && !res.developer);
        ASSERT_TRUE(router_unqueue(r, &w));
        router_put(r, res.rev);

        /* a version the table lacks: 404 with the skill's words */
        ASSERT_EQ_INT(fnpath_parse("/skills/team/s@2", &p), 0);
        ASSERT_TRUE(!router_has_function(r, &p, "team", &p.second));
        router_route(r, &p, &dev.key, 1, &w, 10, router_now_ns(), &res);
        ASSERT_EQ_INT(res.error, ACT_NOT_FOUND);
        ASSERT_EQ_STR(res.message, "skill team/s has no version 2");
        ASSERT_EQ_INT(fnpath_parse("/skills/team/t", &p), 0);
        router_route(r, &p, &dev.key, 1, &w, 10, router_now_ns(), &res);
        ASSERT_EQ_INT(res.error, ACT_NOT_FOUND);
        ASSERT_EQ_STR(res.message, "skill team/t has no promoted version");
        /* the invoker of "team" may not read "default": NAME alone is denied there */
        ASSERT_EQ_INT(fnpath_parse("/skills/s", &p), 0);
        ASSERT_EQ_INT(router_authorize(r, &p, &inv.key, msg, sizeof msg), ACT_FORBIDDEN);
        router_free(r);
}

/* ---- the error body with stderr ---- */

TEST(activator_skills_utf8_clean) {
        size_t n;
        char *s = outcome_utf8_clean("ok \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14, &n);
        ASSERT_EQ_STR(s, "ok \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
        ASSERT_EQ_UINT(n, 14);
        free(s);
        /* a lone continuation, a cut sequence, overlong, a surrogate, past U+10FFFF, 0xff */
        const char bad[] = "\x80|\xe2\x82|\xc0\xaf|\xed\xa0\x80|\xf4\x90\x80\x80|\xff";
        s = outcome_utf8_clean(bad, sizeof bad - 1, &n);
        ASSERT_EQ_STR(s, "\xef\xbf\xbd|\xef\xbf\xbd\xef\xbf\xbd|\xef\xbf\xbd\xef\xbf\xbd|"
                         "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd|\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd|\xef\xbf\xbd");
        free(s);
        s = outcome_utf8_clean("", 0, &n);
        ASSERT_TRUE(s && n == 0 && !s[0]);
        free(s);
}

static json_t *body_json(const char *body, size_t len) {
        json_error_t e;
        ASSERT_TRUE(len > 0 && body[len - 1] == '\n');
        json_t *j = json_loadb(body, len, 0, &e);
        if (!j)
                FAIL_AT("not JSON: %s: %.200s", e.text, body);
        return j;
}

TEST(activator_skills_error_detail) {
        size_t len;
        OutcomeDetail d = { .err = "Traceback...\nValueError: \xff bad\n", .err_len = 31, .has_exit_code = true,
                            .exit_code = 1 };
        char *body = outcome_json_detail(ACT_FUNCTION_ERROR, "the function exited with status 1", &d, &len);
        json_t *j = body_json(body, len), *e = json_object_get(j, "error");
        ASSERT_EQ_STR(json_string_value(json_object_get(e, "type")), "function_error");
        ASSERT_EQ_STR(json_string_value(json_object_get(e, "message")), "the function exited with status 1");
        ASSERT_EQ_STR(json_string_value(json_object_get(e, "stderr")), "Traceback...\nValueError: \xef\xbf\xbd bad\n");
        ASSERT_EQ_INT(json_integer_value(json_object_get(e, "exitCode")), 1);
        ASSERT_TRUE(json_object_get(e, "signal") == NULL);
        json_decref(j);
        free(body);

        /* killed: the signal, not an exit code; only the last 4 KiB of stderr */
        size_t big = OUTCOME_STDERR_MAX + 100;
        char *err = malloc(big);
        memset(err, 'a', big);
        memcpy(err + big - 4, "end\n", 4);
        err[99] = 'Z';          /* dropped */
        err[100] = 'B';         /* the first byte kept */
        d = (OutcomeDetail) { .err = err, .err_len = big, .has_signal = true, .signal = 9, .has_exit_code = false };
        body = outcome_json_detail(ACT_TIMEOUT, "the function ran past its timeout", &d, &len);
        j = body_json(body, len);
        e = json_object_get(j, "error");
        const char *s = json_string_value(json_object_get(e, "stderr"));
        ASSERT_EQ_UINT(strlen(s), OUTCOME_STDERR_MAX);
        ASSERT_TRUE(s[0] == 'B' && strchr(s, 'Z') == NULL && strcmp(s + OUTCOME_STDERR_MAX - 4, "end\n") == 0);
        ASSERT_EQ_INT(json_integer_value(json_object_get(e, "signal")), 9);
        ASSERT_TRUE(json_object_get(e, "exitCode") == NULL);
        ASSERT_EQ_STR(json_string_value(json_object_get(e, "type")), "timeout");
        json_decref(j);
        free(body);
        free(err);

        /* no stderr at all: an empty string, and NUL bytes survive */
        d = (OutcomeDetail) { .err = NULL, .has_exit_code = true, .exit_code = 0 };
        body = outcome_json_detail(ACT_OUTPUT_TOO_LARGE, "over", &d, &len);
        j = body_json(body, len);
        ASSERT_EQ_STR(json_string_value(json_object_get(json_object_get(j, "error"), "stderr")), "");
        ASSERT_EQ_INT(json_integer_value(json_object_get(json_object_get(j, "error"), "exitCode")), 0);
        json_decref(j);
        free(body);
        d = (OutcomeDetail) { .err = "a\0b", .err_len = 3 };
        body = outcome_json_detail(ACT_OUT_OF_MEMORY, "oom", &d, &len);
        ASSERT_TRUE(strstr(body, "\"stderr\":\"a\\u0000b\"") != NULL);
        free(body);
}

/* ---- the INVOKE flag ---- */

TEST(activator_skills_invoke_stderr_flag) {
        ProtoBuf b = { 0 };
        ProtoInvoke inv = { .stderr_tail = true }, back;
        strcpy(inv.instance, "i-1");
        ASSERT_EQ_INT(proto_put_invoke(&b, &inv), 0);
        ASSERT_TRUE(memmem(b.data, b.len, "\"stderr\": true", 14) || memmem(b.data, b.len, "\"stderr\":true", 13));
        ASSERT_EQ_INT(proto_invoke_decode(b.data + PROTO_HEADER_SIZE, b.len - PROTO_HEADER_SIZE, &back), 0);
        ASSERT_TRUE(back.stderr_tail);
        proto_buf_clear(&b);
        /* not asked: the key is not sent (an older runtime refuses unknown keys) */
        inv.stderr_tail = false;
        ASSERT_EQ_INT(proto_put_invoke(&b, &inv), 0);
        ASSERT_TRUE(!memmem(b.data, b.len, "stderr", 6));
        ASSERT_EQ_INT(proto_invoke_decode(b.data + PROTO_HEADER_SIZE, b.len - PROTO_HEADER_SIZE, &back), 0);
        ASSERT_TRUE(!back.stderr_tail);
        proto_buf_clear(&b);
        const char *ok[] = { "{\"instance\": \"i\", \"stderr\": false}", "{\"instance\": \"i\", \"stderr\": null}" };
        for (size_t i = 0; i < 2; i++) {
                ASSERT_EQ_INT(proto_invoke_decode((const uint8_t *) ok[i], strlen(ok[i]), &back), 0);
                ASSERT_TRUE(!back.stderr_tail);
        }
        const char *bad[] = { "{\"instance\": \"i\", \"stderr\": 1}", "{\"instance\": \"i\", \"stderr\": \"yes\"}" };
        for (size_t i = 0; i < 2; i++)
                ASSERT_TRUE(proto_invoke_decode((const uint8_t *) bad[i], strlen(bad[i]), &back) < 0);
}
