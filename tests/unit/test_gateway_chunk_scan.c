/* tests/unit/test_gateway_chunk_scan.c: oai_chunk_scan (activator/gateway/openai.c),
 * the stream path's read of an event without building it: wherever it
 * answers, it must agree with json_loadb and oai_completion_bytes, and it
 * must leave to them every event that names usage or error or that
 * jansson would refuse. */
#include <errno.h>

#include "activator/gateway/openai.h"
#include "tests/unit/test.h"

/* scan s; when it answers, the full parse must take s and count the same */
static int scan_agrees(const char *s, size_t len, size_t *ret_bytes) {
        size_t bytes = 12345;
        int r = oai_chunk_scan(s, len, &bytes);
        json_t *j = json_loadb(s, len, 0, NULL);
        if (r == 0) {
                if (!json_is_object(j))
                        FAIL_AT("scanned but jansson refuses: %.*s", (int) len, s);
                if (oai_completion_bytes(j) != bytes)
                        FAIL_AT("%.*s: scan %zu, jansson %zu", (int) len, s, bytes, oai_completion_bytes(j));
        }
        json_decref(j);
        if (ret_bytes)
                *ret_bytes = bytes;
        return r;
}

#define SCAN(s, b) scan_agrees((s), strlen(s), (b))

TEST(gateway_chunk_scan_counts) {
        size_t b;
        ASSERT_EQ_INT(SCAN("{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":17,\"model\":\"m\","
                           "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"hello \"},"
                           "\"finish_reason\":null,\"logprobs\":{\"content\":[{\"token\":\"x\"}]}}]}", &b), 0);
        ASSERT_EQ_UINT(b, 6);
        ASSERT_EQ_INT(SCAN(" {\"choices\":[{\"text\":\"ab\"},{\"message\":{\"content\":\"cde\"}},{\"delta\":{}}]} \r\n", &b), 0);
        ASSERT_EQ_UINT(b, 5);
        /* escapes decoded as jansson does: \n 1, \u00e9 2, \u20ac 3, a surrogate pair 4, raw UTF-8 as is */
        ASSERT_EQ_INT(SCAN("{\"choices\":[{\"delta\":{\"content\":\"a\\n\\u00e9\\u20ac\\ud83d\\ude00\\\"\\/\"}}]}", &b), 0);
        ASSERT_EQ_UINT(b, 1 + 1 + 2 + 3 + 4 + 1 + 1);
        ASSERT_EQ_INT(SCAN("{\"choices\":[{\"delta\":{\"content\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}}]}", &b), 0);
        ASSERT_EQ_UINT(b, 9);
        /* text that is not where it counts, or not a string */
        ASSERT_EQ_INT(SCAN("{\"content\":\"zz\",\"text\":\"zz\",\"choices\":[{\"delta\":{\"content\":null,\"text\":\"q\"},"
                           "\"content\":\"zz\",\"tool_calls\":[{\"function\":{\"arguments\":\"{}\"}}]}],"
                           "\"x\":{\"choices\":[{\"text\":\"zz\"}]},\"n\":[-0.5e+3,0,1E2,true,false,null,[],{}]}", &b), 0);
        ASSERT_EQ_UINT(b, 0);
        ASSERT_EQ_INT(SCAN("{\"choices\":{\"text\":\"no\"}}", &b), 0);
        ASSERT_EQ_UINT(b, 0);
        ASSERT_EQ_INT(SCAN("{}", &b), 0);
        ASSERT_EQ_UINT(b, 0);
}

TEST(gateway_chunk_scan_leaves_to_the_parse) {
        /* what the stream path must see parsed */
        ASSERT_EQ_INT(SCAN("{\"choices\":[],\"usage\":{\"prompt_tokens\":1}}", NULL), -EAGAIN);
        ASSERT_EQ_INT(SCAN("{\"error\":{\"message\":\"x\"}}", NULL), -EAGAIN);
        /* a key spelled with escapes where members matter, a member twice (jansson keeps the last) */
        ASSERT_TRUE(SCAN("{\"\\u0075sage\":{\"prompt_tokens\":1},\"choices\":[]}", NULL) < 0);
        ASSERT_TRUE(SCAN("{\"choices\":[{\"text\":\"a\",\"text\":\"bc\"}]}", NULL) < 0);
        ASSERT_TRUE(SCAN("{\"choices\":[],\"choices\":[{\"text\":\"a\"}]}", NULL) < 0);
        /* numbers jansson may refuse (past int64, a double's overflow) are left to it;
         * those it takes that are read here must agree */
        ASSERT_TRUE(SCAN("{\"a\":99999999999999999999}", NULL) < 0);
        ASSERT_TRUE(SCAN("{\"a\":1e400}", NULL) < 0);
        ASSERT_TRUE(SCAN("{\"a\":1.00000000000000000000000000001}", NULL) < 0);
        ASSERT_EQ_INT(SCAN("{\"a\":-922337203685477580,\"b\":1.5e99,\"c\":-0}", NULL), 0);
        /* not JSON objects, or what jansson refuses */
        static const char *bad[] = {
                "", " ", "[DONE]", "[]", "\"s\"", "1", "{", "{\"a\":}", "{\"a\":1,}", "{\"a\" 1}", "{\"a\":1} x",
                "{\"a\":1}{}", "{\"a\":01}", "{\"a\":1.}", "{\"a\":-}", "{\"a\":1e}", "{\"a\":tru}", "{\"a\":[1,]}",
                "{\"a\":\"\\x\"}", "{\"a\":\"\\u12\"}", "{\"a\":\"\\u0000\"}", "{\"a\":\"\\udc00\"}",
                "{\"a\":\"\\ud800x\"}", "{\"a\":\"\x01\"}", "{\"a\":\"\xc0\xaf\"}", "{\"a\":\"\xed\xa0\x80\"}",
                "{\"a\":\"\xf4\x90\x80\x80\"}", "{\"a\":\"\xc3\"}", "{\"a\":\"\xff\"}", "{\"a\":\"open}",
                "{'a':1}", "{a:1}",
        };
        for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
                if (SCAN(bad[i], NULL) != -EINVAL)
                        FAIL_AT("scanned: %s", bad[i]);
        /* nested past the depth it reads: the parse decides */
        char deep[400];
        size_t n = 0;
        n += (size_t) snprintf(deep, sizeof deep, "{\"a\":");
        for (int i = 0; i < 100; i++)
                deep[n++] = '[';
        for (int i = 0; i < 100; i++)
                deep[n++] = ']';
        deep[n++] = '}';
        ASSERT_TRUE(scan_agrees(deep, n, NULL) < 0);
        /* a NUL inside the payload */
        ASSERT_EQ_INT(scan_agrees("{\"a\":\"x\0\"}", 9, NULL), -EINVAL);
}
