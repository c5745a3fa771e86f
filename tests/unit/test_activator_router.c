/* tests/unit/test_activator_router.c: the activator's shared routing state
 * (activator/router.c): a request for a revision without instances waits
 * and pokes; the queue is bounded; a new table hands slots to the oldest
 * waiters; a released slot goes to the next; an unschedulable revision
 * fails its waiters with the controller's reason; stats and metrics; a
 * request for what the table lacks waits for a fetch that started after
 * it (misses). */
#define _GNU_SOURCE
#include "test.h"

#include <errno.h>
#include <jansson.h>

#include "activator/router.h"

static RouteTable *load(const char *text) {
        json_error_t e;
        char why[256];
        json_t *j = json_loads(text, 0, &e);
        RouteTable *t = NULL;
        if (!j || route_table_parse(j, &t, why, sizeof why) < 0)
                FAIL_AT("table: %s", j ? why : e.text);
        json_decref(j);
        return t;
}

static const char *table_v(int version, int n_instances, const char *unsched) {
        static char buf[2048];
        char insts[512] = "";
        for (int i = 0; i < n_instances; i++)
                snprintf(insts + strlen(insts), sizeof insts - strlen(insts),
                         "%s{\"id\": \"hi-00001-00000%d\", \"node\": \"n\", \"invoke\": \"unix:/s\"}", i ? "," : "", i);
        snprintf(buf, sizeof buf,
                 "{\"version\": %d, \"functions\": [{\"namespace\": \"default\", \"name\": \"hi\", \"traffic\": "
                 "[{\"revision\": \"hi-00001\", \"percent\": 100}]}], \"revisions\": {\"default/hi-00001\": "
                 "{\"mode\": \"fresh\", \"concurrency\": 1, \"timeoutMs\": 1000, \"unschedulable\": %s%s%s, \"instances\": [%s]}}}",
                 version, unsched ? "\"" : "", unsched ? unsched : "null", unsched ? "\"" : "", insts);
        return buf;
}

static unsigned wakes;
static void wake(RouterInbox *in __attribute__((unused))) {
        wakes++;
}

static FnPath path_of(const char *uri) {
        FnPath p;
        ASSERT_EQ_INT(fnpath_parse(uri, &p), 0);
        return p;
}

TEST(activator_router_queue_and_drain) {
        Router *r;
        ASSERT_EQ_INT(router_new(&r), 0);
        RouterInbox inbox = { .wake = wake };
        Waiter w[3] = { { .inbox = &inbox }, { .inbox = &inbox }, { .inbox = &inbox } };
        RouteResult res[3];
        FnPath p = path_of("/fn/hi");

        router_route(r, &p, NULL, 1, &w[0], 2, 1000, &res[0]);
        ASSERT_EQ_INT(res[0].error, ACT_UNAVAILABLE);           /* no table yet */
        router_swap(r, load(table_v(1, 0, NULL)));
        ASSERT_EQ_UINT(router_version(r), 1);

        for (int i = 0; i < 2; i++) {
                router_route(r, &p, NULL, 1, &w[i], 2, 1000 + (uint64_t) i, &res[i]);
                ASSERT_EQ_INT(res[i].error, ACT_OK);
                ASSERT_TRUE(res[i].queued && !res[i].slot && w[i].cold);
        }
        router_route(r, &p, NULL, 1, &w[2], 2, 1000, &res[2]);
        ASSERT_EQ_INT(res[2].error, ACT_QUEUE_FULL);

        /* one poke for the revision, not one per request */
        json_t *pokes = router_wait_pokes(r, router_now_ns() + 1000000000ull);
        ASSERT_EQ_UINT(json_array_size(pokes), 1);
        ASSERT_EQ_STR(json_string_value(json_object_get(json_array_get(pokes, 0), "revision")), "hi-00001");
        json_decref(pokes);
        json_t *stats = router_stats(r, "act-t");
        json_t *rev = json_array_get(json_object_get(stats, "revisions"), 0);
        ASSERT_EQ_INT(json_integer_value(json_object_get(rev, "queued")), 2);
        json_decref(stats);

        /* an instance with one slot: the oldest waiter gets it */
        router_swap(r, load(table_v(2, 1, NULL)));
        Waiter *got = router_inbox_take(r, &inbox);
        ASSERT_TRUE(got == &w[0] && !got->inbox_next && got->slot && got->error == ACT_OK);
        ASSERT_EQ_STR(got->slot->id, "hi-00001-000000");
        ASSERT_TRUE(wakes >= 1);
        ASSERT_TRUE(!router_unqueue(r, &w[0]));                 /* not queued any more */

        /* its release hands the slot to the next */
        router_release(r, res[0].rev, w[0].slot);
        got = router_inbox_take(r, &inbox);
        ASSERT_TRUE(got == &w[1] && got->slot == w[0].slot);
        router_release(r, res[1].rev, w[1].slot);
        ASSERT_TRUE(router_inbox_take(r, &inbox) == NULL);

        /* a free slot: at once */
        router_route(r, &p, NULL, 7, &w[2], 2, 2000, &res[2]);
        ASSERT_TRUE(res[2].error == ACT_OK && res[2].slot && !res[2].queued);
        router_release(r, res[2].rev, res[2].slot);
        for (int i = 0; i < 3; i++)
                router_put(r, res[i].rev);
        router_free(r);
}

/* Stopping: the queue empties at once with shutting_down, nothing queues
 * again, and a free slot is still handed out. */
TEST(activator_router_close) {
        Router *r;
        ASSERT_EQ_INT(router_new(&r), 0);
        RouterInbox inbox = { .wake = wake };
        Waiter w[3] = { { .inbox = &inbox }, { .inbox = &inbox }, { .inbox = &inbox } };
        RouteResult res[3];
        FnPath p = path_of("/fn/hi");
        router_swap(r, load(table_v(1, 0, NULL)));
        router_route(r, &p, NULL, 1, &w[0], 10, 1, &res[0]);
        router_route(r, &p, NULL, 1, &w[1], 10, 1, &res[1]);
        ASSERT_TRUE(res[0].queued && res[1].queued);

        router_close(r);
        Waiter *got = router_inbox_take(r, &inbox);
        ASSERT_TRUE(got == &w[0] && got->inbox_next == &w[1] && !w[1].inbox_next);
        for (int i = 0; i < 2; i++) {
                ASSERT_TRUE(!w[i].slot && w[i].error == ACT_SHUTTING_DOWN && w[i].reason);
                ASSERT_TRUE(!router_unqueue(r, &w[i]));
                free(w[i].reason);
        }
        router_route(r, &p, NULL, 1, &w[2], 10, 2, &res[2]);
        ASSERT_EQ_INT(res[2].error, ACT_SHUTTING_DOWN);
        ASSERT_TRUE(!res[2].queued && !res[2].rev && strstr(res[2].message, "stopping"));
        Slot *s = NULL;
        ASSERT_EQ_INT(router_retry(r, res[0].rev, NULL, 0, 1, &w[2], 10, 3, &s), ACT_SHUTTING_DOWN);

        /* an instance appears: a request still gets its free slot */
        router_swap(r, load(table_v(2, 1, NULL)));
        ASSERT_TRUE(router_inbox_take(r, &inbox) == NULL);
        router_route(r, &p, NULL, 1, &w[2], 10, 4, &res[2]);
        ASSERT_TRUE(res[2].error == ACT_OK && res[2].slot && !res[2].queued);
        router_release(r, res[2].rev, res[2].slot);
        for (int i = 0; i < 3; i++)
                router_put(r, res[i].rev);
        router_free(r);
}

/* Misses: parked only while the controller answers; a round releases the
 * misses parked before it started (one parked during it waits for the
 * next); routed again, a request finds what the new table has and is a
 * final 404 otherwise; an older table never replaces a newer one. */
TEST(activator_router_misses) {
        Router *r;
        ASSERT_EQ_INT(router_new(&r), 0);
        RouterInbox inbox = { .wake = wake };
        Waiter w[4] = { { .inbox = &inbox }, { .inbox = &inbox }, { .inbox = &inbox }, { .inbox = &inbox } };
        RouteResult res[4];
        FnPath p = path_of("/fn/hi"), q = path_of("/fn/nowhere");
        router_swap(r, load("{\"version\": 1, \"functions\": [], \"revisions\": {}}"));

        router_route(r, &p, NULL, 1, &w[0], 10, 1, &res[0]);   /* the controller not known to answer */
        ASSERT_TRUE(res[0].error == ACT_NOT_FOUND && !res[0].parked);
        router_set_live(r, true);
        router_route(r, &p, NULL, 1, &w[0], 10, 2, &res[0]);
        ASSERT_TRUE(res[0].error == ACT_OK && res[0].parked && !res[0].queued && !res[0].rev);
        router_route(r, &q, NULL, 1, &w[1], 10, 3, &res[1]);
        ASSERT_TRUE(res[1].error == ACT_OK && res[1].parked);
        uint64_t round = router_wait_misses(r);
        ASSERT_TRUE(round == 1);
        router_route(r, &p, NULL, 1, &w[2], 10, 4, &res[2]);   /* parked during round 1 */
        ASSERT_TRUE(res[2].parked);
        ASSERT_TRUE(router_swap(r, load(table_v(3, 1, NULL))) == 1);
        ASSERT_TRUE(router_swap_newer(r, load("{\"version\": 2, \"functions\": [], \"revisions\": {}}")) == 3);
        router_misses_done(r, round);
        Waiter *got = router_inbox_take(r, &inbox);
        ASSERT_TRUE(got == &w[0] && got->inbox_next == &w[1] && !w[1].inbox_next);
        ASSERT_TRUE(w[0].reroute && w[1].reroute && !w[2].reroute);

        for (int i = 0; i < 2; i++) {
                w[i].reroute = false;
                w[i].synced = true;
        }
        router_route(r, &p, NULL, 1, &w[0], 10, 5, &res[0]);
        ASSERT_TRUE(res[0].error == ACT_OK && res[0].slot && !res[0].parked);
        router_route(r, &q, NULL, 1, &w[1], 10, 5, &res[1]);
        ASSERT_TRUE(res[1].error == ACT_NOT_FOUND && !res[1].parked && strstr(res[1].message, "no function nowhere"));
        char *text = router_metrics_text(r, &(size_t) { 0 });
        ASSERT_TRUE(text && strstr(text, "fnbox_activator_route_misses_total{outcome=\"found\"} 1\n") &&
                    strstr(text, "fnbox_activator_route_misses_total{outcome=\"not_found\"} 1\n"));
        free(text);

        /* the controller stops answering: the misses left go back at once */
        router_route(r, &q, NULL, 1, &w[3], 10, 6, &res[3]);
        ASSERT_TRUE(res[3].parked);
        router_set_live(r, false);
        got = router_inbox_take(r, &inbox);
        ASSERT_TRUE(got == &w[2] && got->inbox_next == &w[3] && w[2].reroute && w[3].reroute);
        /* one that leaves before its round (its client hung up) is in no list */
        router_set_live(r, true);
        w[3] = (Waiter) { .inbox = &inbox };
        router_route(r, &q, NULL, 1, &w[3], 10, 7, &res[3]);
        ASSERT_TRUE(res[3].parked && router_unqueue(r, &w[3]));
        router_misses_done(r, 100);
        ASSERT_TRUE(router_inbox_take(r, &inbox) == NULL);
        router_release(r, res[0].rev, res[0].slot);
        router_put(r, res[0].rev);
        router_free(r);
}

TEST(activator_router_unschedulable_and_deadline) {
        Router *r;
        ASSERT_EQ_INT(router_new(&r), 0);
        RouterInbox inbox = { .wake = wake };
        Waiter w[2] = { { .inbox = &inbox }, { .inbox = &inbox } };
        RouteResult res[2];
        FnPath p = path_of("/fn/hi");
        router_swap(r, load(table_v(1, 0, NULL)));
        router_route(r, &p, NULL, 1, &w[0], 10, 1, &res[0]);
        router_route(r, &p, NULL, 1, &w[1], 10, 1, &res[1]);
        ASSERT_TRUE(res[0].queued && res[1].queued);

        /* the deadline takes one out */
        ASSERT_TRUE(router_unqueue(r, &w[1]));
        ASSERT_TRUE(!router_unqueue(r, &w[1]));

        /* the controller says it cannot be placed: the other fails with the reason */
        router_swap(r, load(table_v(2, 0, "no node has 2 GPUs free")));
        Waiter *got = router_inbox_take(r, &inbox);
        ASSERT_TRUE(got == &w[0] && !got->slot);
        ASSERT_EQ_INT(got->error, ACT_UNSCHEDULABLE);
        ASSERT_EQ_STR(got->reason, "no node has 2 GPUs free");
        free(got->reason);
        /* and new requests get 503 at once */
        Waiter w3 = { .inbox = &inbox };
        RouteResult r3;
        router_route(r, &p, NULL, 1, &w3, 10, 1, &r3);
        ASSERT_EQ_INT(r3.error, ACT_UNSCHEDULABLE);
        ASSERT_TRUE(strstr(r3.message, "2 GPUs") != NULL);

        /* not found, unknown tag */
        FnPath nf = path_of("/fn/nope");
        router_route(r, &nf, NULL, 1, &w3, 10, 1, &r3);
        ASSERT_EQ_INT(r3.error, ACT_NOT_FOUND);
        FnPath tag = path_of("/fn/hi@nope");
        router_route(r, &tag, NULL, 1, &w3, 10, 1, &r3);
        ASSERT_EQ_INT(r3.error, ACT_NOT_FOUND);

        /* metrics: grouped by family, with the function's counts */
        router_record(r, res[0].metrics, 503, 2000000, true, 1500000);
        router_record(r, NULL, 404, 1000, false, 0);
        size_t len;
        char *text = router_metrics_text(r, &len);
        ASSERT_TRUE(text && len == strlen(text));
        ASSERT_TRUE(strstr(text, "fnbox_activator_requests_total{namespace=\"default\",function=\"hi\",code=\"503\"} 1\n"));
        ASSERT_TRUE(strstr(text, "fnbox_activator_requests_total{namespace=\"\",function=\"\",code=\"404\"} 1\n"));
        ASSERT_TRUE(strstr(text, "fnbox_activator_cold_starts_total{namespace=\"default\",function=\"hi\"} 1\n"));
        ASSERT_TRUE(strstr(text, "fnbox_activator_queue_depth{namespace=\"default\",revision=\"hi-00001\"} 0\n"));
        /* every family's samples follow its TYPE line, never another family's */
        const char *fams[] = { "fnbox_activator_requests_total", "fnbox_activator_request_duration_seconds",
                               "fnbox_activator_cold_starts_total", "fnbox_activator_cold_start_wait_seconds" };
        for (size_t i = 0; i + 1 < sizeof fams / sizeof *fams; i++) {
                char *type_next = strstr(text, fams[i + 1]);
                char key[128];
                snprintf(key, sizeof key, "\n%s", fams[i]);
                char *last = NULL;
                for (char *s = strstr(text, key); s; s = strstr(s + 1, key))
                        last = s;
                ASSERT_TRUE(last && last < type_next);
        }
        free(text);
        for (int i = 0; i < 2; i++)
                router_put(r, res[i].rev);
        router_free(r);
}
