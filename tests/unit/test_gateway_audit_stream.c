/* tests/unit/test_gateway_audit_stream.c: a streamed answer assembled for
 * the audit (activator/gateway/audit_stream.c): chat content, refusals and
 * tool calls split over chunks, completions' text, several choices, the
 * usage chunk; nothing without bodies; the byte bound (never inside a
 * UTF-8 character, and marked in the record's JSON); and the quota's
 * count of reservations held (quota_stats), which the gateway's leak
 * check reads on /metrics. */
#define _GNU_SOURCE
#include "test.h"

#include <errno.h>
#include <jansson.h>

#include "activator/gateway/policy.h"

static void feed(AuditRecord *r, const char *chunk) {
        json_error_t e;
        json_t *j = json_loads(chunk, 0, &e);
        if (!j)
                FAIL_AT("bad test chunk %s: %s", chunk, e.text);
        audit_stream_add(r, j);
        json_decref(j);
}

static json_t *answer(AuditRecord *r) {
        ASSERT_EQ_INT(audit_stream_finish(r), 0);
        ASSERT_TRUE(r->stream_body == NULL && r->response_body != NULL);
        json_t *j = json_loads(r->response_body, 0, NULL);
        ASSERT_TRUE(j != NULL);
        return j;
}

static const char *path_str(json_t *o, const char *a, int i, const char *b, const char *c) {
        json_t *x = json_array_get(json_object_get(o, a), (size_t) i);
        x = b ? json_object_get(x, b) : x;
        x = c ? json_object_get(x, c) : x;
        return json_string_value(x);
}

TEST(audit_stream_chat) {
        AuditRecord r = { .bodies = true };
        feed(&r, "{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"m-1\",\"choices\":[{\"index\":0,"
                 "\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}");
        feed(&r, "{\"id\":\"c1\",\"model\":\"m-1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}");
        feed(&r, "{\"id\":\"c1\",\"model\":\"m-1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo \\u00e9\"}}]}");
        feed(&r, "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\","
                 "\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"ci\"}}]}}]}");
        feed(&r, "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"ty\\\": 1}\"}}]}}]}");
        feed(&r, "{\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}");
        feed(&r, "{\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":7,\"total_tokens\":12}}");
        json_t *a = answer(&r);
        ASSERT_EQ_STR(json_string_value(json_object_get(a, "object")), "chat.completion");
        ASSERT_EQ_STR(json_string_value(json_object_get(a, "id")), "c1");
        ASSERT_EQ_STR(json_string_value(json_object_get(a, "model")), "m-1");
        ASSERT_EQ_INT(json_array_size(json_object_get(a, "choices")), 1);
        ASSERT_EQ_STR(path_str(a, "choices", 0, "message", "content"), "Hello \xc3\xa9");
        ASSERT_EQ_STR(path_str(a, "choices", 0, "message", "role"), "assistant");
        ASSERT_EQ_STR(path_str(a, "choices", 0, "finish_reason", NULL), "tool_calls");
        json_t *tc = json_array_get(json_object_get(json_object_get(json_array_get(json_object_get(a, "choices"), 0),
                                                                    "message"), "tool_calls"), 0);
        ASSERT_EQ_STR(json_string_value(json_object_get(tc, "id")), "call_1");
        ASSERT_EQ_STR(json_string_value(json_object_get(tc, "type")), "function");
        ASSERT_EQ_STR(json_string_value(json_object_get(json_object_get(tc, "function"), "name")), "get_weather");
        ASSERT_EQ_STR(json_string_value(json_object_get(json_object_get(tc, "function"), "arguments")), "{\"city\": 1}");
        ASSERT_EQ_INT(json_integer_value(json_object_get(json_object_get(a, "usage"), "total_tokens")), 12);
        ASSERT_TRUE(!r.response_body_cut);
        json_t *rec = audit_record_json(&r);
        ASSERT_TRUE(json_object_get(rec, "responseBody") && !json_object_get(rec, "responseBodyTruncated"));
        json_decref(rec);
        json_decref(a);
        audit_record_clear(&r);
}

TEST(audit_stream_completions_and_choices) {
        AuditRecord r = { .bodies = true };
        feed(&r, "{\"object\":\"text_completion\",\"choices\":[{\"index\":1,\"text\":\"B1\"},{\"index\":0,\"text\":\"A1\"}]}");
        feed(&r, "{\"choices\":[{\"index\":0,\"text\":\" A2\",\"finish_reason\":\"stop\"},{\"index\":1,\"text\":\" B2\"}]}");
        feed(&r, "{\"choices\":[{\"index\":1,\"text\":\"\",\"finish_reason\":\"length\"}]}");
        json_t *a = answer(&r);
        ASSERT_EQ_STR(json_string_value(json_object_get(a, "object")), "text_completion");
        ASSERT_EQ_INT(json_array_size(json_object_get(a, "choices")), 2);
        ASSERT_EQ_STR(path_str(a, "choices", 0, "text", NULL), "A1 A2");
        ASSERT_EQ_STR(path_str(a, "choices", 0, "finish_reason", NULL), "stop");
        ASSERT_EQ_STR(path_str(a, "choices", 1, "text", NULL), "B1 B2");
        ASSERT_EQ_STR(path_str(a, "choices", 1, "finish_reason", NULL), "length");
        ASSERT_EQ_INT(json_integer_value(json_object_get(json_array_get(json_object_get(a, "choices"), 1), "index")), 1);
        ASSERT_TRUE(json_object_get(a, "usage") == NULL);
        json_decref(a);
        audit_record_clear(&r);
}

TEST(audit_stream_only_with_bodies) {
        AuditRecord r = { .bodies = false };
        feed(&r, "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"secret\"}}]}");
        ASSERT_TRUE(r.stream_body == NULL);
        ASSERT_EQ_INT(audit_stream_finish(&r), 0);
        ASSERT_TRUE(r.response_body == NULL);
        /* odd chunks are ignored, not trusted */
        AuditRecord b = { .bodies = true };
        feed(&b, "{\"choices\":[{\"index\":-1,\"delta\":{\"content\":\"x\"}},{\"index\":99,\"text\":\"y\"},7,"
                 "{\"index\":0,\"delta\":{\"content\":42,\"refusal\":\"no\"}}],\"usage\":\"lots\"}");
        feed(&b, "[1,2]");
        json_t *a = answer(&b);
        ASSERT_EQ_STR(path_str(a, "choices", 0, "message", "refusal"), "no");
        ASSERT_TRUE(json_object_get(json_object_get(json_array_get(json_object_get(a, "choices"), 0), "message"),
                                    "content") == NULL);
        ASSERT_TRUE(b.response_body_cut);               /* the choices out of range were dropped */
        json_decref(a);
        audit_record_clear(&b);
}

TEST(audit_stream_bounded) {
        AuditRecord r = { .bodies = true };
        /* 3-byte characters, 30000 of them per 10 chunks: past the bound */
        char *piece = malloc(3 * 3000 + 1);
        for (int i = 0; i < 3000; i++)
                memcpy(piece + 3 * i, "\xe2\x82\xac", 3);       /* the euro sign */
        piece[9000] = 0;
        for (int k = 0; k < 10; k++) {
                json_t *c = json_pack("{s:[{s:i, s:{s:s}}]}", "choices", "index", 0, "delta", "content", piece);
                audit_stream_add(&r, c);
                json_decref(c);
        }
        free(piece);
        json_t *a = answer(&r);
        const char *text = path_str(a, "choices", 0, "message", "content");
        ASSERT_TRUE(text != NULL);                      /* valid UTF-8: jansson parsed it */
        ASSERT_TRUE(strlen(text) <= AUDIT_BODY_MAX && strlen(text) > AUDIT_BODY_MAX - 3);
        ASSERT_EQ_INT(strlen(text) % 3, 0);
        ASSERT_TRUE(r.response_body_cut);
        json_t *rec = audit_record_json(&r);
        ASSERT_TRUE(json_is_true(json_object_get(rec, "responseBodyTruncated")));
        ASSERT_TRUE(json_string_length(json_object_get(rec, "responseBody")) <= AUDIT_BODY_MAX);
        json_decref(rec);
        json_decref(a);
        audit_record_clear(&r);
        ASSERT_TRUE(r.response_body == NULL && r.stream_body == NULL);
}

TEST(audit_stream_submit_takes_it) {
        AuditRecord r = { .bodies = true, .status = 200 };
        feed(&r, "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}");
        audit_submit(NULL, &r);                         /* no shipper: dropped, and freed */
        ASSERT_TRUE(r.stream_body == NULL && r.response_body == NULL);
        /* a body already set (a whole answer) is not replaced */
        AuditRecord w = { .bodies = true };
        w.response_body = strdup("{\"whole\":true}");
        feed(&w, "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}");
        ASSERT_EQ_INT(audit_stream_finish(&w), 0);
        ASSERT_EQ_STR(w.response_body, "{\"whole\":true}");
        audit_record_clear(&w);
}

TEST(quota_stats_reservations) {
        Quota *q = quota_new();
        QuotaReservation a, b;
        QuotaStats st;
        char msg[256];
        unsigned retry;
        int64_t now = (int64_t) 1763700000 * 1000000000;
        ASSERT_EQ_INT(quota_admit(q, "team-a", "0123456789abcdef", 100, now, &a, msg, sizeof msg, &retry), 0);
        ASSERT_EQ_INT(quota_admit(q, "team-b", NULL, 30, now, &b, msg, sizeof msg, &retry), 0);
        quota_stats(q, &st);
        ASSERT_EQ_UINT(st.reservations, 2);
        ASSERT_EQ_UINT(st.tokens_reserved, 130);
        quota_settle(q, &a, 7);
        quota_settle(q, &a, 7);                         /* idempotent */
        quota_stats(q, &st);
        ASSERT_EQ_UINT(st.reservations, 1);
        ASSERT_EQ_UINT(st.tokens_reserved, 30);
        quota_settle(q, &b, 0);
        quota_stats(q, &st);
        ASSERT_EQ_UINT(st.reservations, 0);
        ASSERT_EQ_UINT(st.tokens_reserved, 0);
        /* a refused admission holds nothing */
        ASSERT_EQ_INT(quota_set_limit(q, "ns:team-c", &(QuotaLimit) { .tokens_per_day = 10 }), 0);
        ASSERT_EQ_INT(quota_admit(q, "team-c", NULL, 50, now, &a, msg, sizeof msg, &retry), -EDQUOT);
        quota_stats(q, &st);
        ASSERT_EQ_UINT(st.reservations, 0);
        quota_stats(NULL, &st);
        ASSERT_EQ_UINT(st.reservations, 0);
        quota_free(q);
}
