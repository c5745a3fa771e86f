/* tests/unit/test_activator.c: the activator's pure parts: /fn/ URLs,
 * request ids and traceparent, the route table (parse, lookup, the
 * traffic split, the instance pick), box outcomes as statuses and types,
 * and the error body. */
#define _GNU_SOURCE
#include "test.h"

#include <errno.h>
#include <jansson.h>

#include "activator/fnpath.h"
#include "activator/outcome.h"
#include "activator/reqid.h"
#include "activator/table.h"
#include "runtime/jail.h"

/* ---- URLs ---- */

TEST(activator_path_forms) {
        FnPath p;
        ASSERT_EQ_INT(fnpath_parse("/fn/hello", &p), 0);
        ASSERT_EQ_STR(p.first.name, "hello");
        ASSERT_EQ_STR(p.first.tag, "");
        ASSERT_TRUE(!p.has_second && !p.query && p.first.rest_len == 0);

        ASSERT_EQ_INT(fnpath_parse("/fn/hello@canary/a/b?x=1&y=%20", &p), 0);
        ASSERT_EQ_STR(p.first.name, "hello");
        ASSERT_EQ_STR(p.first.tag, "canary");
        ASSERT_TRUE(!p.has_second);     /* NAME@TAG is never a namespace */
        ASSERT_EQ_INT(p.first.rest_len, 4);
        ASSERT_TRUE(strncmp(p.first.rest, "/a/b", 4) == 0);
        ASSERT_EQ_STR(p.query, "x=1&y=%20");

        ASSERT_EQ_INT(fnpath_parse("/fn/team-a/resize@v2/img.png", &p), 0);
        ASSERT_TRUE(p.has_second);
        ASSERT_EQ_STR(p.first.name, "team-a");
        ASSERT_EQ_STR(p.second.name, "resize");
        ASSERT_EQ_STR(p.second.tag, "v2");
        ASSERT_EQ_INT(p.second.rest_len, 8);
        ASSERT_EQ_INT(p.first.rest_len, 18);    /* the other reading: /resize@v2/img.png */

        /* a second segment that is no name: only the NAME/PATH reading */
        ASSERT_EQ_INT(fnpath_parse("/fn/hello/Upper%20Case", &p), 0);
        ASSERT_TRUE(!p.has_second);
        ASSERT_EQ_INT(fnpath_parse("/fn/hello/", &p), 0);
        ASSERT_TRUE(!p.has_second && p.first.rest_len == 1);
}

TEST(activator_path_refused) {
        FnPath p;
        ASSERT_EQ_INT(fnpath_parse("/fnx/hello", &p), -ENOENT);
        ASSERT_EQ_INT(fnpath_parse("/metrics", &p), -ENOENT);
        const char *bad[] = { "/fn/", "/fn//x", "/fn/Hello", "/fn/-a", "/fn/a-", "/fn/a@", "/fn/@t", "/fn/a@B",
                              "/fn/a_b", "/fn/a%41", "/fn/a@t@u", "/fn/?x",
                              "/fn/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" };
        for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
                if (fnpath_parse(bad[i], &p) != -EINVAL)
                        FAIL_AT("%s was accepted", bad[i]);
        ASSERT_EQ_INT(fnpath_parse("/fn/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", &p), 0);
}

/* ---- ids ---- */

TEST(activator_request_ids) {
        ASSERT_TRUE(reqid_ok("dp-req-42"));
        ASSERT_TRUE(reqid_ok("a.b:c/d+e=f_G-9"));
        ASSERT_TRUE(!reqid_ok(NULL) && !reqid_ok(""));
        ASSERT_TRUE(!reqid_ok("two words") && !reqid_ok("a\r\nX-Evil: 1") && !reqid_ok("caf\xc3\xa9"));
        char big[REQID_MAX + 2];
        memset(big, 'a', sizeof big - 1);
        big[sizeof big - 1] = 0;
        ASSERT_TRUE(!reqid_ok(big));
        big[REQID_MAX] = 0;
        ASSERT_TRUE(reqid_ok(big));
        char made[33];
        reqid_make(0x0123456789abcdefull, 42, made);
        ASSERT_EQ_STR(made, "0123456789abcdef000000000000002a");
        ASSERT_TRUE(reqid_ok(made));
}

TEST(activator_traceparent) {
        ASSERT_TRUE(traceparent_ok("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
        ASSERT_TRUE(!traceparent_ok("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"));  /* uppercase */
        ASSERT_TRUE(!traceparent_ok("00-00000000000000000000000000000000-00f067aa0ba902b7-01"));  /* zero trace */
        ASSERT_TRUE(!traceparent_ok("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"));  /* zero span */
        ASSERT_TRUE(!traceparent_ok("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));  /* version ff */
        ASSERT_TRUE(!traceparent_ok("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x")); /* 00 is exact */
        ASSERT_TRUE(traceparent_ok("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-later"));
        ASSERT_TRUE(!traceparent_ok("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x"));
        ASSERT_TRUE(!traceparent_ok("00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01"));
        ASSERT_TRUE(!traceparent_ok(NULL) && !traceparent_ok("00-1-2-3"));
        char tp[TRACEPARENT_LEN + 1];
        traceparent_make(0, 0, 0, tp);          /* zero ids are never made */
        ASSERT_TRUE(traceparent_ok(tp));
        traceparent_make(1, 2, 3, tp);
        ASSERT_EQ_STR(tp, "00-00000000000000010000000000000002-0000000000000003-01");
}

/* ---- outcomes ---- */

TEST(activator_outcomes) {
        char m[128];
        ASSERT_EQ_INT(outcome_from_result(JAIL_EXITED, 0, 0, false, m, sizeof m), ACT_OK);
        ASSERT_EQ_INT(outcome_from_result(JAIL_EXITED, 3, 0, false, m, sizeof m), ACT_FUNCTION_ERROR);
        ASSERT_TRUE(strstr(m, "status 3") != NULL);
        ASSERT_EQ_INT(outcome_from_result(JAIL_SIGNALED, 0, 11, false, m, sizeof m), ACT_FUNCTION_ERROR);
        ASSERT_TRUE(strstr(m, "signal 11") != NULL);
        ASSERT_EQ_INT(outcome_from_result(JAIL_TIMEOUT, 0, 9, false, m, sizeof m), ACT_TIMEOUT);
        ASSERT_EQ_INT(outcome_from_result(JAIL_OUT_OF_MEMORY, 0, 9, false, m, sizeof m), ACT_OUT_OF_MEMORY);
        ASSERT_EQ_INT(outcome_from_result(JAIL_OUTPUT_LIMIT, 0, 9, true, m, sizeof m), ACT_OUTPUT_TOO_LARGE);
        /* exit 0 with stdout cut at its cap is still too large */
        ASSERT_EQ_INT(outcome_from_result(JAIL_EXITED, 0, 0, true, m, sizeof m), ACT_OUTPUT_TOO_LARGE);
        ASSERT_EQ_INT(outcome_from_result(JAIL_KILLED, 0, 9, false, m, sizeof m), ACT_UNAVAILABLE);
        ASSERT_EQ_INT(outcome_from_result(JAIL_SETUP_ERROR, 0, 0, false, m, sizeof m), ACT_NODE_FAILED);

        ASSERT_EQ_INT(outcome_from_refusal(1), REFUSAL_DROP_INSTANCE);
        ASSERT_EQ_INT(outcome_from_refusal(2), REFUSAL_TRY_ANOTHER);
        ASSERT_EQ_INT(outcome_from_refusal(3), REFUSAL_TRY_ANOTHER);
        ASSERT_EQ_INT(outcome_from_refusal(4), REFUSAL_FAIL);
        ASSERT_EQ_INT(outcome_from_refusal(77), REFUSAL_FAIL);

        /* every error has its own type; the documented statuses */
        for (int a = 1; a < _ACT_ERROR_MAX; a++)
                for (int b = a + 1; b < _ACT_ERROR_MAX; b++)
                        if (strcmp(act_error_type(a), act_error_type(b)) == 0)
                                FAIL_AT("types %d and %d are both %s", a, b, act_error_type(a));
        ASSERT_EQ_UINT(act_error_status(ACT_FUNCTION_ERROR), 500);
        ASSERT_EQ_UINT(act_error_status(ACT_NODE_FAILED), 502);
        ASSERT_EQ_UINT(act_error_status(ACT_QUEUE_FULL), 503);
        ASSERT_EQ_UINT(act_error_status(ACT_QUEUE_TIMEOUT), 504);
        ASSERT_EQ_UINT(act_error_status(ACT_TIMEOUT), 504);
        ASSERT_EQ_UINT(act_error_status(ACT_OUT_OF_MEMORY), 507);
        ASSERT_EQ_UINT(act_error_status(ACT_TOO_LARGE), 413);
        ASSERT_EQ_UINT(act_error_status(ACT_URI_TOO_LONG), 414);
        ASSERT_EQ_UINT(act_error_status(ACT_HEADERS_TOO_LARGE), 431);
}

TEST(activator_error_json) {
        char buf[4096];
        int n = outcome_json(ACT_UNSCHEDULABLE, "no node has \"2\" GPUs\n\x01free", buf, sizeof buf);
        ASSERT_TRUE(n > 0 && buf[n - 1] == '\n');
        json_error_t e;
        json_t *j = json_loads(buf, 0, &e);
        ASSERT_TRUE(j != NULL);
        ASSERT_EQ_STR(json_string_value(json_object_get(json_object_get(j, "error"), "type")), "unschedulable");
        ASSERT_EQ_STR(json_string_value(json_object_get(json_object_get(j, "error"), "message")),
                      "no node has \"2\" GPUs\n\x01free");
        json_decref(j);
        ASSERT_EQ_INT(outcome_json(ACT_TIMEOUT, "x", buf, 20), -ENOBUFS);
}

/* ---- the route table ---- */

static const char table_json[] =
        "{\"version\": 17, \"functions\": ["
        " {\"namespace\": \"default\", \"name\": \"hello\", \"traffic\": ["
        "   {\"revision\": \"hello-00002\", \"percent\": 90, \"tag\": \"stable\"},"
        "   {\"revision\": \"hello-00003\", \"percent\": 10, \"tag\": \"canary\"},"
        "   {\"revision\": \"hello-00009\", \"percent\": 0, \"tag\": \"gone\"}]},"
        " {\"namespace\": \"team\", \"name\": \"resize\", \"traffic\": ["
        "   {\"revision\": \"resize-00001\", \"percent\": 100}]},"
        " {\"namespace\": \"default\", \"name\": \"team\", \"traffic\": ["
        "   {\"revision\": \"team-00001\", \"percent\": 100}]}],"
        " \"revisions\": {"
        "  \"default/hello-00002\": {\"mode\": \"fresh\", \"concurrency\": 10, \"timeoutMs\": 10000,"
        "    \"startupTimeoutMs\": 600000, \"outputBytes\": 1048576, \"unschedulable\": null, \"instances\": ["
        "     {\"id\": \"hello-00002-3fa2c1\", \"node\": \"a\", \"invoke\": \"unix:/run/fnbox/invoke.sock\", \"endpoint\": null},"
        "     {\"id\": \"hello-00002-3fa2c2\", \"node\": \"b\", \"invoke\": \"tcp:10.0.0.5:8090\", \"endpoint\": null},"
        "     {\"id\": \"hello-00002-3fa2c3\", \"node\": \"c\", \"invoke\": \"tcp:10.0.0.6:8090\", \"endpoint\": null}]},"
        "  \"default/hello-00003\": {\"mode\": \"service\", \"concurrency\": 2, \"instances\": ["
        "     {\"id\": \"hello-00003-aaaaaa\", \"node\": \"a\", \"invoke\": \"unix:/i\", \"endpoint\": \"unix:/run/x.sock\"},"
        "     {\"id\": \"hello-00003-bbbbbb\", \"node\": \"b\", \"invoke\": \"unix:/i\", \"endpoint\": \"unix:/run/y.sock\"}]},"
        "  \"team/resize-00001\": {\"mode\": \"fresh\", \"concurrency\": 0, \"unschedulable\": \"no node matches nodeSelector accelerator=cuda\", \"instances\": []},"
        "  \"default/team-00001\": {\"mode\": \"fresh\", \"instances\": []}}}";

static RouteTable *table_load(const char *text, int want, char *why, size_t why_len) {
        json_error_t e;
        json_t *j = json_loads(text, 0, &e);
        if (!j)
                FAIL_AT("test JSON: %s", e.text);
        RouteTable *t = NULL;
        why[0] = 0;
        int r = route_table_parse(j, &t, why, why_len);
        json_decref(j);
        if (r != want)
                FAIL_AT("route_table_parse: %d (%s), wanted %d", r, why, want);
        return t;
}

static Slot slots[8];

static void slots_bind(RouteRevision *rev) {
        for (size_t i = 0; i < rev->n_instances; i++) {
                slots[i] = (Slot) { .id = rev->instances[i].id };
                rev->instances[i].slot = &slots[i];
        }
}

TEST(activator_table_parse) {
        char why[512];
        RouteTable *t = table_load(table_json, 0, why, sizeof why);
        ASSERT_EQ_UINT(t->version, 17);
        ASSERT_EQ_UINT(t->n_functions, 3);
        ASSERT_EQ_UINT(t->n_revisions, 4);
        RouteFunction *f = route_table_function(t, "default", "hello");
        ASSERT_TRUE(f != NULL);
        ASSERT_EQ_UINT(f->n_traffic, 2);        /* the missing revision is left out */
        ASSERT_EQ_UINT(f->percent_total, 100);
        RouteRevision *r = route_table_revision(t, "default", "hello-00002");
        ASSERT_TRUE(r && r->mode == ROUTE_FRESH && r->concurrency == 10 && r->n_instances == 3);
        ASSERT_EQ_STR(r->instances[1].invoke, "tcp:10.0.0.5:8090");
        ASSERT_EQ_UINT(r->timeout_ms, 10000);
        RouteRevision *rz = route_table_revision(t, "team", "resize-00001");
        ASSERT_EQ_STR(rz->unschedulable, "no node matches nodeSelector accelerator=cuda");
        ASSERT_EQ_UINT(rz->concurrency, ROUTE_CONCURRENCY_DEFAULT);
        ASSERT_TRUE(route_table_revision(t, "default", "nope-00001") == NULL);
        route_table_free(t);

        const char *bad[] = {
                "[]",
                "{\"version\": 1, \"functions\": {}, \"revisions\": {}}",
                "{\"version\": -1, \"functions\": [], \"revisions\": {}}",
                "{\"version\": 1, \"functions\": [], \"revisions\": {\"x/y\": {\"mode\": \"batch\"}}}",
                "{\"version\": 1, \"functions\": [], \"revisions\": {\"nokey\": {\"mode\": \"fresh\"}}}",
                "{\"version\": 1, \"functions\": [], \"revisions\": {\"d/r\": {\"mode\": \"fresh\", \"instances\": [{\"id\": \"i\"}]}}}",
                "{\"version\": 1, \"functions\": [], \"revisions\": {\"d/r\": {\"mode\": \"service\", \"instances\": [{\"id\": \"i\", \"endpoint\": \"tcp:1.2.3.4:5\"}]}}}",
                "{\"version\": 1, \"functions\": [], \"revisions\": {\"d/r\": {\"mode\": \"fresh\", \"timeoutMs\": \"10\"}}}",
                "{\"version\": 1, \"functions\": [{\"namespace\": \"d\", \"name\": \"Bad\", \"traffic\": []}], \"revisions\": {}}",
                "{\"version\": 1, \"functions\": [{\"namespace\": \"d\", \"name\": \"a\", \"traffic\": []},"
                " {\"namespace\": \"d\", \"name\": \"a\", \"traffic\": []}], \"revisions\": {}}",
                "{\"version\": 1, \"functions\": [{\"namespace\": \"d\", \"name\": \"a\", \"traffic\": [{\"revision\": \"r\", \"percent\": 101}]}], \"revisions\": {}}",
                "{\"version\": 1, \"functions\": [], \"revisions\": {}, \"tokens\": {}}",
                "{\"version\": 1, \"functions\": [], \"revisions\": {}, \"tokens\": [{\"id\": \"x\"}]}",
        };
        for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
                t = table_load(bad[i], -EINVAL, why, sizeof why);
                ASSERT_TRUE(t == NULL && why[0]);
        }
}

TEST(activator_lookup_and_split) {
        char why[512];
        RouteTable *t = table_load(table_json, 0, why, sizeof why);
        FnPath p;
        const char *tag, *sub;
        size_t sub_len;

        ASSERT_EQ_INT(fnpath_parse("/fn/team/resize/x", &p), 0);
        RouteFunction *f = route_lookup(t, &p, &tag, &sub, &sub_len);
        ASSERT_EQ_STR(f->key, "team/resize");
        ASSERT_EQ_INT(sub_len, 2);
        /* "team" is also a function in default: /fn/team/other is that one with path /other */
        ASSERT_EQ_INT(fnpath_parse("/fn/team/other", &p), 0);
        f = route_lookup(t, &p, &tag, &sub, &sub_len);
        ASSERT_EQ_STR(f->key, "default/team");
        ASSERT_TRUE(sub_len == 6 && strncmp(sub, "/other", 6) == 0);
        ASSERT_EQ_INT(fnpath_parse("/fn/other-ns/hello", &p), 0);
        ASSERT_TRUE(route_lookup(t, &p, &tag, &sub, &sub_len) == NULL);

        ASSERT_EQ_INT(fnpath_parse("/fn/hello@canary", &p), 0);
        f = route_lookup(t, &p, &tag, &sub, &sub_len);
        ASSERT_EQ_STR(tag, "canary");
        ASSERT_EQ_STR(route_resolve(f, tag, 0)->name, "hello-00003");
        ASSERT_EQ_STR(route_resolve(f, "stable", 99)->name, "hello-00002");
        ASSERT_EQ_STR(route_resolve(f, "hello-00003", 0)->name, "hello-00003");  /* a revision's name */
        ASSERT_TRUE(route_resolve(f, "gone", 0) == NULL);
        ASSERT_TRUE(route_resolve(f, "nope", 0) == NULL);

        /* the split: points 0-89 are the first revision, 90-99 the second */
        unsigned counts[2] = { 0, 0 };
        for (uint64_t rnd = 0; rnd < 1000; rnd++)
                counts[strcmp(route_resolve(f, NULL, rnd)->name, "hello-00002") == 0 ? 0 : 1]++;
        ASSERT_EQ_UINT(counts[0], 900);
        ASSERT_EQ_UINT(counts[1], 100);
        ASSERT_EQ_STR(route_resolve(f, "", 89)->name, "hello-00002");
        ASSERT_EQ_STR(route_resolve(f, "", 90)->name, "hello-00003");
        route_table_free(t);
}

TEST(activator_pick_first_available) {
        char why[512];
        RouteTable *t = table_load(table_json, 0, why, sizeof why);
        RouteRevision *r = route_table_revision(t, "default", "hello-00003");   /* concurrency 2 */
        slots_bind(r);
        ASSERT_EQ_INT(route_pick(r, 12345, NULL, 0), 0);
        slots[0].inflight = 1;
        ASSERT_EQ_INT(route_pick(r, 999, NULL, 0), 0);          /* packs: still the first */
        slots[0].inflight = 2;
        ASSERT_EQ_INT(route_pick(r, 999, NULL, 0), 1);
        slots[1].inflight = 2;
        ASSERT_EQ_INT(route_pick(r, 999, NULL, 0), -1);         /* all full */
        slots[0].inflight = 0;
        Slot *ex[] = { &slots[0] };
        ASSERT_EQ_INT(route_pick(r, 999, ex, 1), -1);           /* the free one was tried */
        slots[0].dropped = true;
        ASSERT_EQ_INT(route_pick(r, 999, NULL, 0), -1);
        route_table_free(t);
}

TEST(activator_pick_two_choices) {
        char why[512];
        RouteTable *t = table_load(table_json, 0, why, sizeof why);
        RouteRevision *r = route_table_revision(t, "default", "hello-00002");   /* concurrency 10, 3 instances */
        slots_bind(r);
        /* rnd picks a = rnd % 3 and b from the other two by (rnd >> 32) % 2 */
        slots[0].inflight = 5, slots[1].inflight = 1, slots[2].inflight = 9;
        ASSERT_EQ_INT(route_pick(r, 0, NULL, 0), 1);                     /* 0 vs 1: the less loaded */
        ASSERT_EQ_INT(route_pick(r, (1ull << 32) | 0, NULL, 0), 0);      /* 0 vs 2 */
        ASSERT_EQ_INT(route_pick(r, (1ull << 32) | 1, NULL, 0), 1);      /* 1 vs 2 */
        slots[1].inflight = 10;                                          /* full */
        ASSERT_EQ_INT(route_pick(r, 1, NULL, 0), 0);                     /* drawn 1 (full) and 0 */
        ASSERT_TRUE(route_pick(r, 1, NULL, 0) != 1);
        slots[0].inflight = 10, slots[2].inflight = 10;
        ASSERT_EQ_INT(route_pick(r, 7, NULL, 0), -1);
        slots[2].inflight = 3;                                           /* both drawn full: the scan finds 2 */
        ASSERT_EQ_INT(route_pick(r, 0, NULL, 0), 2);
        /* over many draws, the load spreads to the less loaded */
        slots[0].inflight = 0, slots[1].inflight = 0, slots[2].inflight = 0;
        uint64_t x = 88172645463325252ull;
        for (int i = 0; i < 30; i++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                ssize_t k = route_pick(r, x, NULL, 0);
                ASSERT_TRUE(k >= 0);
                slots[k].inflight++;
        }
        for (int i = 0; i < 3; i++)
                ASSERT_TRUE(slots[i].inflight == 10);
        route_table_free(t);
}
