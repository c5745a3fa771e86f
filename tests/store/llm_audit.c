/* tests/store/llm_audit.c: the store's LLM gateway audit records
 * (store_llm_audit_add / _list / _prune in lib/store.h), the same against
 * SQLite and PostgreSQL: every field round-trips (bodies NULL or kept), a
 * batch sent again adds nothing, an invalid record fails the whole batch,
 * the filters (namespace, alias, since) and the id cursor, limits; the
 * bodies' truncation marks; a prune larger than one batch, oldest first,
 * the newer records kept (the controller's retention). */
#define _GNU_SOURCE
#include "store_test.h"

#include <errno.h>

#define ASSERT_OK(expr)                                                      \
        do {                                                                 \
                int _r = (expr);                                             \
                if (_r < 0)                                                  \
                        FAIL_AT("%s: %s (%s)", #expr, strerror(-_r),         \
                                store_last_error(NULL));                     \
        } while (0)

static StoreLlmAudit rec(const char *id, const char *ns, const char *alias, int64_t at_ms) {
        return (StoreLlmAudit) {
                .request_id = (char *) id, .at_ms = at_ms, .namespace_ = (char *) ns,
                .caller = "token:0123456789abcdef", .endpoint = "chat.completions", .alias = (char *) alias,
                .upstream = "local-llama", .chain_json = "[\"cloud-a\",\"local-llama\"]",
                .tokens_in = 11, .tokens_out = 22, .tokens_counted = true, .latency_us = 123456,
                .ttft_us = -1, .status = 200, .error_type = "", .rules = "email,iban", .stream = false,
        };
}

TEST(llm_audit_round_trip) {
        Store *s = test_open();
        StoreLlmAudit in[2] = { rec("r1", "team-a", "small", 1000), rec("r2", "team-a", "big", 2000) };
        in[1].request_body = "{\"prompt\":\"héllo\"}";
        in[1].response_body = "";
        in[1].stream = true;
        in[1].ttft_us = 4567;
        in[1].upstream = "";
        in[1].status = 429;
        in[1].error_type = "rate_limit_exceeded";
        in[1].tokens_counted = false;
        ASSERT_EQ_INT(store_llm_audit_add(s, in, 2), 2);

        StoreLlmAudit *out = NULL;
        size_t n = 0;
        ASSERT_OK(store_llm_audit_list(s, &(StoreLlmAuditQuery) { .namespace_ = "team-a", .limit = 10 }, &out, &n));
        ASSERT_EQ_UINT(n, 2);
        /* newest first */
        ASSERT_EQ_STR(out[0].request_id, "r2");
        ASSERT_TRUE(out[0].id > out[1].id);
        ASSERT_EQ_STR(out[0].request_body, "{\"prompt\":\"héllo\"}");
        ASSERT_EQ_STR(out[0].response_body, "");               /* kept, though empty */
        ASSERT_TRUE(out[0].stream);
        ASSERT_EQ_INT(out[0].ttft_us, 4567);
        ASSERT_EQ_STR(out[0].upstream, "");
        ASSERT_EQ_INT(out[0].status, 429);
        ASSERT_EQ_STR(out[0].error_type, "rate_limit_exceeded");
        ASSERT_TRUE(!out[0].tokens_counted);
        ASSERT_EQ_STR(out[1].request_id, "r1");
        ASSERT_EQ_INT(out[1].at_ms, 1000);
        ASSERT_EQ_STR(out[1].namespace_, "team-a");
        ASSERT_EQ_STR(out[1].caller, "token:0123456789abcdef");
        ASSERT_EQ_STR(out[1].endpoint, "chat.completions");
        ASSERT_EQ_STR(out[1].alias, "small");
        ASSERT_EQ_STR(out[1].upstream, "local-llama");
        ASSERT_EQ_STR(out[1].chain_json, "[\"cloud-a\",\"local-llama\"]");
        ASSERT_EQ_INT(out[1].tokens_in, 11);
        ASSERT_EQ_INT(out[1].tokens_out, 22);
        ASSERT_TRUE(out[1].tokens_counted);
        ASSERT_EQ_INT(out[1].latency_us, 123456);
        ASSERT_EQ_INT(out[1].ttft_us, -1);
        ASSERT_EQ_STR(out[1].rules, "email,iban");
        ASSERT_TRUE(out[1].request_body == NULL);              /* not kept: NULL, not "" */
        ASSERT_TRUE(out[1].response_body == NULL);
        ASSERT_TRUE(out[1].received_ms > 0);
        store_llm_audit_array_free(out, n);
        store_close(s);
}

TEST(llm_audit_batch_sent_again) {
        Store *s = test_open();
        StoreLlmAudit in[3] = { rec("r1", "a", "m", 1000), rec("r2", "a", "m", 1000), rec("r1", "b", "m", 1000) };
        ASSERT_EQ_INT(store_llm_audit_add(s, in, 3), 3);
        ASSERT_EQ_INT(store_llm_audit_add(s, in, 3), 0);       /* the same batch again: nothing */
        in[0].at_ms = 1001;                                     /* a reused request id, later: a new record */
        ASSERT_EQ_INT(store_llm_audit_add(s, in, 3), 1);
        StoreLlmAudit *out = NULL;
        size_t n = 0;
        ASSERT_OK(store_llm_audit_list(s, &(StoreLlmAuditQuery) { .limit = 100 }, &out, &n));
        ASSERT_EQ_UINT(n, 4);
        store_llm_audit_array_free(out, n);
        store_close(s);
}

TEST(llm_audit_invalid_fails_the_batch) {
        Store *s = test_open();
        StoreLlmAudit in[2] = { rec("ok", "a", "m", 1), rec("bad", "a", "m", 1) };
        static const struct { const char *field; } cases[] = { { "request_id" }, { "namespace" }, { "caller" },
                { "status" }, { "ttft" }, { "chain" }, { "alias" } };
        char big[STORE_LLM_FIELD_MAX + 2];
        memset(big, 'x', sizeof big - 1);
        big[sizeof big - 1] = 0;
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                in[1] = rec("bad", "a", "m", 1);
                switch (i) {
                case 0: in[1].request_id = "with\nnewline"; break;
                case 1: in[1].namespace_ = "a/b"; break;
                case 2: in[1].caller = ""; break;
                case 3: in[1].status = 99; break;
                case 4: in[1].ttft_us = -2; break;
                case 5: in[1].chain_json = NULL; break;
                case 6: in[1].alias = big; break;
                }
                int r = store_llm_audit_add(s, in, 2);
                if (r != -EINVAL)
                        FAIL_AT("%s: expected -EINVAL, got %d", cases[i].field, r);
                ASSERT_TRUE(strstr(store_last_error(s), "audit record 1") != NULL);
        }
        StoreLlmAudit *out = NULL;
        size_t n = 0;
        ASSERT_OK(store_llm_audit_list(s, &(StoreLlmAuditQuery) { .limit = 10 }, &out, &n));
        ASSERT_EQ_UINT(n, 0);                                   /* nothing written, not even "ok" */
        store_llm_audit_array_free(out, n);

        StoreLlmAudit *many = calloc(STORE_LLM_AUDIT_BATCH_MAX + 1, sizeof *many);
        for (size_t i = 0; i <= STORE_LLM_AUDIT_BATCH_MAX; i++)
                many[i] = rec("r", "a", "m", (int64_t) i);
        ASSERT_EQ_INT(store_llm_audit_add(s, many, STORE_LLM_AUDIT_BATCH_MAX + 1), -E2BIG);
        ASSERT_EQ_INT(store_llm_audit_add(s, many, STORE_LLM_AUDIT_BATCH_MAX), STORE_LLM_AUDIT_BATCH_MAX);
        free(many);
        ASSERT_EQ_INT(store_llm_audit_add(s, NULL, 0), 0);
        ASSERT_EQ_INT(store_llm_audit_list(s, &(StoreLlmAuditQuery) { .limit = 0 }, &out, &n), -EINVAL);
        ASSERT_EQ_INT(store_llm_audit_list(s, &(StoreLlmAuditQuery) { .limit = STORE_LIST_MAX + 1 }, &out, &n),
                      -EINVAL);
        store_close(s);
}

TEST(llm_audit_filters_and_cursor) {
        Store *s = test_open();
        StoreLlmAudit in[30];
        char ids[30][16];
        for (int i = 0; i < 30; i++) {
                snprintf(ids[i], sizeof ids[i], "r%02d", i);
                in[i] = rec(ids[i], i % 3 == 0 ? "b" : "a", i % 2 ? "big" : "small", 1000 + i * 10);
        }
        ASSERT_EQ_INT(store_llm_audit_add(s, in, 30), 30);
        StoreLlmAudit *out = NULL;
        size_t n = 0;

        /* namespace a: 20 records; alias big among them: i odd and i % 3 != 0 */
        ASSERT_OK(store_llm_audit_list(s, &(StoreLlmAuditQuery) { .namespace_ = "a", .alias = "big", .limit = 100 },
                                       &out, &n));
        ASSERT_EQ_UINT(n, 10);
        for (size_t i = 0; i < n; i++) {
                ASSERT_EQ_STR(out[i].namespace_, "a");
                ASSERT_EQ_STR(out[i].alias, "big");
        }
        store_llm_audit_array_free(out, n);

        /* since: at_ms >= 1200 is i >= 20 */
        ASSERT_OK(store_llm_audit_list(s, &(StoreLlmAuditQuery) { .since_ms = 1200, .limit = 100 }, &out, &n));
        ASSERT_EQ_UINT(n, 10);
        ASSERT_EQ_STR(out[0].request_id, "r29");
        ASSERT_EQ_STR(out[9].request_id, "r20");
        store_llm_audit_array_free(out, n);

        /* pages of 7 by the id cursor: every record once, newest first */
        int64_t before = 0;
        int seen = 0, last = 30;
        for (;;) {
                ASSERT_OK(store_llm_audit_list(s, &(StoreLlmAuditQuery) { .before_id = before, .limit = 7 }, &out, &n));
                for (size_t i = 0; i < n; i++) {
                        int k = atoi(out[i].request_id + 1);
                        ASSERT_EQ_INT(k, last - 1);
                        last = k;
                }
                seen += (int) n;
                before = n ? out[n - 1].id : 0;
                store_llm_audit_array_free(out, n);
                if (n < 7)
                        break;
        }
        ASSERT_EQ_INT(seen, 30);

        /* prune: the ten oldest */
        ASSERT_EQ_INT(store_llm_audit_prune(s, 1100), 10);
        ASSERT_OK(store_llm_audit_list(s, &(StoreLlmAuditQuery) { .limit = 100 }, &out, &n));
        ASSERT_EQ_UINT(n, 20);
        store_llm_audit_array_free(out, n);
        store_close(s);
}

TEST(llm_audit_truncated_marks) {
        Store *s = test_open();
        StoreLlmAudit in[2] = { rec("cut", "a", "m", 1000), rec("whole", "a", "m", 1001) };
        in[0].request_body = "{\"model\":";
        in[0].response_body = "{\"choices\":";
        in[0].response_body_truncated = true;
        in[1].response_body = "{}";
        ASSERT_EQ_INT(store_llm_audit_add(s, in, 2), 2);
        StoreLlmAudit *out = NULL;
        size_t n = 0;
        ASSERT_OK(store_llm_audit_list(s, &(StoreLlmAuditQuery) { .limit = 10 }, &out, &n));
        ASSERT_EQ_UINT(n, 2);
        ASSERT_EQ_STR(out[1].request_id, "cut");
        ASSERT_TRUE(!out[1].request_body_truncated && out[1].response_body_truncated);
        ASSERT_EQ_STR(out[1].response_body, "{\"choices\":");
        ASSERT_TRUE(!out[0].request_body_truncated && !out[0].response_body_truncated);
        store_llm_audit_array_free(out, n);
        store_close(s);
}

TEST(llm_audit_prune_in_batches) {
        Store *s = test_open();
        enum { OLD = 2 * STORE_LLM_PRUNE_BATCH + 500 };
        StoreLlmAudit *batch = calloc(STORE_LLM_AUDIT_BATCH_MAX, sizeof *batch);
        char (*ids)[16] = calloc(STORE_LLM_AUDIT_BATCH_MAX, sizeof *ids);
        ASSERT_TRUE(batch && ids);
        for (int done = 0; done < OLD;) {
                int k = OLD - done < STORE_LLM_AUDIT_BATCH_MAX ? OLD - done : STORE_LLM_AUDIT_BATCH_MAX;
                for (int i = 0; i < k; i++) {
                        snprintf(ids[i], sizeof ids[i], "old%06d", done + i);
                        batch[i] = rec(ids[i], i % 2 ? "a" : "b", "m", 1000000 + done + i);
                }
                ASSERT_EQ_INT(store_llm_audit_add(s, batch, (size_t) k), k);
                done += k;
        }
        StoreLlmAudit keep[3] = { rec("new1", "a", "m", 5000000), rec("new2", "b", "m", 5000001),
                                  rec("edge", "a", "m", 4000000) };
        ASSERT_EQ_INT(store_llm_audit_add(s, keep, 3), 3);
        /* before 4000000: every old one (in three batches), not the one at the edge */
        ASSERT_EQ_INT(store_llm_audit_prune(s, 4000000), OLD);
        ASSERT_EQ_INT(store_llm_audit_prune(s, 4000000), 0);
        ASSERT_EQ_INT(test_raw_int("SELECT COUNT(*) FROM llm_audit"), 3);
        StoreLlmAudit *out = NULL;
        size_t n = 0;
        ASSERT_OK(store_llm_audit_list(s, &(StoreLlmAuditQuery) { .limit = 10 }, &out, &n));
        ASSERT_EQ_UINT(n, 3);
        ASSERT_EQ_STR(out[0].request_id, "edge");
        store_llm_audit_array_free(out, n);
        free(batch);
        free(ids);
        store_close(s);
}
