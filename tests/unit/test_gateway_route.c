/* tests/unit/test_gateway_route.c: the upstream pick and cooldowns
 * (activator/gateway/route.c), and the OpenAI wire format
 * (activator/gateway/openai.c). */
#include <errno.h>

#include "activator/gateway/openai.h"
#include "activator/gateway/route.h"
#include "tests/unit/test.h"

static GwConfig *cfg_of(const char *yaml) {
        GwConfig *c = NULL;
        char err[512];
        if (gw_config_parse(yaml, strlen(yaml), "t.yaml", &c, err, sizeof err) < 0)
                FAIL_AT("%s", err);
        return c;
}

static const char *three =
        "upstreams:\n"
        "  - {name: a, base_url: 'http://a', weight: 1}\n"
        "  - {name: b, base_url: 'http://b', weight: 3}\n"
        "  - {name: l, base_url: 'http://l', local: true}\n"
        "aliases:\n"
        "  - {name: x, upstreams: [a, b, l], cooldown: {failures: 2, seconds: 5}}\n";

TEST(gateway_route_weighted_and_local) {
        GwConfig *c = cfg_of(three);
        GwUpState st[3] = { { 0 } };
        for (int i = 0; i < 3; i++)
                c->upstreams[i].state = &st[i];
        GwAlias *a = gw_config_alias(c, "x");
        bool tried[GW_MEMBERS_MAX] = { false };
        uint64_t wait;
        unsigned hits[3] = { 0 };
        for (uint64_t r = 0; r < 500; r++)
                hits[gw_route_pick(a, tried, false, 1, r, &wait)]++;
        ASSERT_EQ_UINT(hits[0], 100);                  /* weights 1:3:1 over rnd % 5 */
        ASSERT_EQ_UINT(hits[1], 300);
        ASSERT_EQ_UINT(hits[2], 100);
        for (uint64_t r = 0; r < 10; r++)
                ASSERT_EQ_INT(gw_route_pick(a, tried, true, 1, r, &wait), 2);
        tried[2] = true;                               /* the only local one was tried: again, nothing else may */
        ASSERT_EQ_INT(gw_route_pick(a, tried, true, 1, 7, &wait), 2);
        tried[0] = true;
        for (uint64_t r = 0; r < 10; r++)              /* untried first */
                ASSERT_EQ_INT(gw_route_pick(a, tried, false, 1, r, &wait), 1);
        ASSERT_TRUE(gw_route_has_local(a));
        gw_config_unref(c);
}

TEST(gateway_route_cooldown) {
        GwConfig *c = cfg_of(three);
        GwUpState st[3] = { { 0 } };
        for (int i = 0; i < 3; i++)
                c->upstreams[i].state = &st[i];
        GwAlias *a = gw_config_alias(c, "x");
        bool tried[GW_MEMBERS_MAX] = { false };
        uint64_t wait = 99, now = 1000000000ull;
        ASSERT_TRUE(!gw_route_result(&st[2], a, false, -1, now));
        ASSERT_TRUE(gw_route_result(&st[2], a, false, -1, now));      /* the second in a row cools it */
        ASSERT_EQ_INT(gw_route_pick(a, tried, true, now + 1000000000ull, 0, &wait), -1);
        ASSERT_EQ_UINT(wait, 4000);
        ASSERT_EQ_INT(gw_route_pick(a, tried, true, now + 5000000000ull, 0, &wait), 2);
        ASSERT_EQ_UINT(wait, 0);
        /* a success between failures resets the count */
        gw_route_result(&st[0], a, false, -1, now);
        gw_route_result(&st[0], a, true, 12.0, now);
        ASSERT_TRUE(!gw_route_result(&st[0], a, false, -1, now));
        ASSERT_TRUE(st[0].measured);
        gw_config_unref(c);
}

TEST(gateway_route_least_busy_and_latency) {
        GwConfig *c = cfg_of("upstreams:\n  - {name: a, base_url: 'http://a'}\n  - {name: b, base_url: 'http://b'}\n"
                             "aliases:\n  - {name: lb, upstreams: [a, b], strategy: least-busy}\n"
                             "  - {name: ll, upstreams: [a, b], strategy: lowest-latency}\n");
        GwUpState st[2] = { { 0 } };
        c->upstreams[0].state = &st[0];
        c->upstreams[1].state = &st[1];
        bool tried[GW_MEMBERS_MAX] = { false };
        uint64_t wait;
        st[0].inflight = 5;
        st[1].inflight = 2;
        for (uint64_t r = 0; r < 10; r++)
                ASSERT_EQ_INT(gw_route_pick(gw_config_alias(c, "lb"), tried, false, 1, r, &wait), 1);
        GwAlias *ll = gw_config_alias(c, "ll");
        st[0].measured = true;
        st[0].latency_ms = 50;
        for (uint64_t r = 0; r < 10; r++)              /* b was never measured: it goes first */
                ASSERT_EQ_INT(gw_route_pick(ll, tried, false, 1, r, &wait), 1);
        gw_route_result(&st[1], ll, true, 80, 1);
        for (uint64_t r = 0; r < 10; r++)
                ASSERT_EQ_INT(gw_route_pick(ll, tried, false, 1, r, &wait), 0);
        gw_config_unref(c);
}

static int check(OaiEndpoint e, const char *body, OaiRequest *rq, char *param) {
        char msg[256];
        json_t *j = json_loads(body, 0, NULL);
        int r = oai_request_check(e, j, 1000, rq, msg, sizeof msg, param, 64);
        json_decref(j);
        return r;
}

TEST(gateway_openai_request_check) {
        OaiRequest rq;
        char p[64];
        ASSERT_EQ_INT(check(OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hello world\"}],"
                                      "\"stream\":true,\"stream_options\":{\"include_usage\":true},\"max_tokens\":10}", &rq, p), 0);
        ASSERT_EQ_STR(rq.model, "m");
        ASSERT_TRUE(rq.stream && rq.include_usage && rq.has_max_tokens);
        ASSERT_EQ_UINT(rq.max_tokens, 10);
        ASSERT_EQ_UINT(rq.prompt_tokens, 4 + 4 + 3);    /* "user" + "hello world": 15 bytes (4), 4 per message, 3 */
        ASSERT_EQ_INT(check(OAI_CHAT, "[]", &rq, p), -EINVAL);
        ASSERT_EQ_INT(check(OAI_CHAT, "{\"messages\":[]}", &rq, p), -EINVAL);
        ASSERT_EQ_STR(p, "model");
        ASSERT_EQ_INT(check(OAI_CHAT, "{\"model\":\"m\",\"messages\":\"hi\"}", &rq, p), -EINVAL);
        ASSERT_EQ_STR(p, "messages");
        ASSERT_EQ_INT(check(OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"content\":\"x\"}]}", &rq, p), -EINVAL);
        ASSERT_EQ_STR(p, "messages[0].role");
        ASSERT_EQ_INT(check(OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"u\"}],\"max_tokens\":-1}", &rq, p), -EINVAL);
        ASSERT_EQ_STR(p, "max_tokens");
        ASSERT_EQ_INT(check(OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"u\"}],\"max_completion_tokens\":1001}", &rq, p),
                      -EINVAL);
        ASSERT_EQ_INT(check(OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"u\"}],\"temperature\":9}", &rq, p), -EINVAL);
        ASSERT_EQ_STR(p, "temperature");
        ASSERT_EQ_INT(check(OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"u\"}],\"stream_options\":{}}", &rq, p), -EINVAL);
        ASSERT_EQ_INT(check(OAI_COMPLETIONS, "{\"model\":\"m\",\"prompt\":[[1,2],[3]]}", &rq, p), 0);
        ASSERT_EQ_INT(check(OAI_COMPLETIONS, "{\"model\":\"m\",\"prompt\":{}}", &rq, p), -EINVAL);
        ASSERT_EQ_INT(check(OAI_EMBEDDINGS, "{\"model\":\"m\",\"input\":\"abc\",\"stream\":true}", &rq, p), -EINVAL);
        ASSERT_EQ_INT(check(OAI_EMBEDDINGS, "{\"model\":\"m\",\"input\":[\"abcd\",\"efgh\"]}", &rq, p), 0);
        ASSERT_EQ_UINT(rq.prompt_tokens, 2);
}

TEST(gateway_openai_sse) {
        OaiSse s = { 0 };
        const char *in = "data: {\"a\":1}\r\n\r\n: comment\nevent: x\ndata:[DO", *ev;
        size_t len = strlen(in), el;
        ASSERT_EQ_INT(oai_sse_next(&s, &in, &len, &ev, &el), OAI_SSE_DATA);
        ASSERT_EQ_UINT(el, 7);
        ASSERT_TRUE(memcmp(ev, "{\"a\":1}", 7) == 0);
        ASSERT_EQ_INT(oai_sse_next(&s, &in, &len, &ev, &el), OAI_SSE_NONE);
        const char *more = "NE]\n";
        len = 4;
        ASSERT_EQ_INT(oai_sse_next(&s, &more, &len, &ev, &el), OAI_SSE_DATA);
        ASSERT_EQ_UINT(el, 6);
        ASSERT_TRUE(memcmp(ev, "[DONE]", 6) == 0);
        ASSERT_EQ_INT(oai_sse_next(&s, &more, &len, &ev, &el), OAI_SSE_NONE);
        /* a line over the limit is refused */
        char *big = malloc(OAI_SSE_LINE_MAX + 10);
        memset(big, 'x', OAI_SSE_LINE_MAX + 10);
        const char *bp = big;
        len = OAI_SSE_LINE_MAX + 10;
        ASSERT_EQ_INT(oai_sse_next(&s, &bp, &len, &ev, &el), -E2BIG);
        free(big);
        oai_sse_clear(&s);
}

TEST(gateway_openai_usage_and_errors) {
        json_t *j = json_loads("{\"choices\":[{\"message\":{\"content\":\"abcdefgh\"}},{\"delta\":{\"content\":\"xy\"}}],"
                               "\"usage\":{\"prompt_tokens\":7,\"total_tokens\":10}}", 0, NULL);
        uint64_t in, out;
        ASSERT_TRUE(oai_usage(j, &in, &out));
        ASSERT_EQ_UINT(in, 7);
        ASSERT_EQ_UINT(out, 3);
        ASSERT_EQ_UINT(oai_completion_bytes(j), 10);
        json_decref(j);
        ASSERT_EQ_UINT(oai_estimate_tokens(0), 0);
        ASSERT_EQ_UINT(oai_estimate_tokens(5), 2);
        size_t len;
        char *e = oai_error_json("bad \"x\"", "invalid_request_error", "model", NULL, &len);
        ASSERT_EQ_STR(e, "{\"error\":{\"message\":\"bad \\\"x\\\"\",\"type\":\"invalid_request_error\",\"param\":\"model\",\"code\":null}}\n");
        ASSERT_EQ_UINT(len, strlen(e));
        free(e);
}
