/* tests/unit/test_gateway_config.c: the gateway's YAML configuration
 * (activator/gateway/config.c): what it takes, defaults, and errors that
 * name the file, line and field. */
#include <stdlib.h>
#include <unistd.h>

#include "activator/gateway/config.h"
#include "tests/unit/test.h"

static GwConfig *parse_ok(const char *yaml) {
        GwConfig *c = NULL;
        char err[512];
        int r = gw_config_parse(yaml, strlen(yaml), "gw.yaml", &c, err, sizeof err);
        if (r < 0)
                FAIL_AT("parse failed: %s", err);
        return c;
}

static void parse_err(const char *yaml, const char *want) {
        GwConfig *c = NULL;
        char err[512];
        int r = gw_config_parse(yaml, strlen(yaml), "gw.yaml", &c, err, sizeof err);
        if (r >= 0)
                FAIL_AT("expected an error with \"%s\"", want);
        if (!strstr(err, want))
                FAIL_AT("error \"%s\" lacks \"%s\"", err, want);
}

TEST(gateway_config_full) {
        setenv("GWT_KEY", "sk-123", 1);
        GwConfig *c = parse_ok("upstreams:\n"
                               "  - name: a\n"
                               "    base_url: http://127.0.0.1:9/v1/\n"
                               "    api_key_env: GWT_KEY\n"
                               "    models: [m1, m2]\n"
                               "    timeouts: {connect: 250ms, first_byte: 2s, total: 1m}\n"
                               "    weight: 3\n"
                               "  - name: l\n"
                               "    base_url: fn:team/llm\n"
                               "    local: true\n"
                               "aliases:\n"
                               "  - name: chat\n"
                               "    upstreams: [a, {upstream: l, model: tiny, weight: 0}]\n"
                               "    strategy: lowest-latency\n"
                               "    fallbacks: [m2]\n"
                               "    retries: 2\n"
                               "    cooldown: {failures: 5, seconds: 10s}\n"
                               "data_rules: [email, iban]\n"
                               "limits: {max_body: 1Mi, max_tokens: 5000, default_max_tokens: 100}\n"
                               "quotas: {namespaces: {default: {requests_per_minute: 60}}, tokens: {abc: {tokens_per_day: 1000}}}\n"
                               "audit: {bodies: [team]}\n");
        ASSERT_EQ_UINT(c->n_upstreams, 2);
        ASSERT_EQ_STR(c->upstreams[0].base_url, "http://127.0.0.1:9/v1");
        ASSERT_EQ_STR(c->upstreams[0].api_key, "sk-123");
        ASSERT_EQ_UINT(c->upstreams[0].connect_ms, 250);
        ASSERT_EQ_UINT(c->upstreams[0].first_byte_ms, 2000);
        ASSERT_EQ_UINT(c->upstreams[0].total_ms, 60000);
        ASSERT_EQ_UINT(c->upstreams[0].weight, 3);
        ASSERT_EQ_STR(c->upstreams[1].fn_ns, "team");
        ASSERT_EQ_STR(c->upstreams[1].fn_name, "llm");
        ASSERT_TRUE(c->upstreams[1].local);
        ASSERT_EQ_UINT(c->n_aliases, 3);               /* chat, m1, m2 */
        GwAlias *a = gw_config_alias(c, "chat");
        ASSERT_TRUE(a != NULL);
        ASSERT_EQ_INT(a->strategy, GW_STRATEGY_LOWEST_LATENCY);
        ASSERT_EQ_STR(a->members[0].model, "m1");      /* the upstream's first model */
        ASSERT_EQ_STR(a->members[1].model, "tiny");
        ASSERT_EQ_UINT(a->members[0].weight, 3);
        ASSERT_EQ_UINT(a->members[1].weight, 0);
        ASSERT_EQ_UINT(a->n_fallbacks, 1);
        ASSERT_TRUE(a->fallbacks[0] == gw_config_alias(c, "m2"));
        ASSERT_EQ_UINT(a->retries, 2);
        ASSERT_EQ_UINT(a->cooldown_failures, 5);
        ASSERT_EQ_UINT(a->cooldown_ms, 10000);
        ASSERT_TRUE(gw_config_alias(c, "m1")->implicit);
        ASSERT_TRUE(gw_config_alias(c, "nope") == NULL);
        ASSERT_EQ_UINT(c->rules, (1u << DATA_RULE_EMAIL) | (1u << DATA_RULE_IBAN));
        ASSERT_EQ_UINT(c->max_body, 1u << 20);
        ASSERT_EQ_UINT(c->max_tokens, 5000);
        ASSERT_EQ_UINT(c->default_max_tokens, 100);
        ASSERT_EQ_UINT(c->n_quotas, 2);
        ASSERT_EQ_STR(c->quotas[0].key, "ns:default");
        ASSERT_EQ_UINT(c->quotas[0].limit.requests_per_minute, 60);
        ASSERT_EQ_STR(c->quotas[1].key, "token:abc");
        ASSERT_TRUE(gw_config_bodies(c, "team"));
        ASSERT_TRUE(!gw_config_bodies(c, "default"));
        gw_config_unref(c);
}

TEST(gateway_config_defaults) {
        GwConfig *c = parse_ok("upstreams:\n  - {name: a, base_url: 'https://x.example/v1', models: [m]}\n"
                               "  - {name: b, base_url: 'https://y.example/v1', models: [m]}\n");
        GwAlias *a = gw_config_alias(c, "m");
        ASSERT_EQ_UINT(a->n_members, 2);
        ASSERT_EQ_UINT(a->retries, 1);                 /* one attempt per upstream */
        ASSERT_EQ_UINT(a->cooldown_failures, 3);
        ASSERT_EQ_UINT(c->rules, DATA_RULES_ALL);
        ASSERT_TRUE(c->upstreams[0].api_key == NULL);
        ASSERT_TRUE(!c->upstreams[0].local);
        gw_config_unref(c);
}

TEST(gateway_config_errors) {
        parse_err("", "gw.yaml:1");
        parse_err("upstreams: [\n", "not valid YAML");
        parse_err("upstreams: []\n", "upstreams: lists no upstream");
        parse_err("upstreams:\n  - name: a\n    base_url: ftp://x\n", "gw.yaml:3: upstreams[a].base_url");
        parse_err("upstreams:\n  - name: a\n    base_url: http://x\n    timeouts: {connect: soon}\n",
                  "gw.yaml:4: upstreams[a].timeouts.connect");
        parse_err("upstreams:\n  - name: a\n    base_url: http://x\n    colour: red\n", "gw.yaml:4: upstreams[0].colour: unknown field");
        parse_err("upstreams:\n  - name: a\n    base_url: http://x\n    api_key_env: GWT_SURELY_UNSET\n",
                  "GWT_SURELY_UNSET is not set");
        parse_err("upstreams:\n  - name: a\n    base_url: http://x\n    api_key_file: /nonexistent/key\n",
                  "cannot read /nonexistent/key");
        parse_err("upstreams:\n  - {name: a, base_url: 'http://x'}\n  - {name: a, base_url: 'http://y'}\n", "used twice");
        parse_err("upstreams:\n  - {name: a, base_url: 'http://x'}\naliases:\n  - {name: c, upstreams: [b]}\n",
                  "gw.yaml:4: aliases[c].upstreams[0]: no upstream is named b");
        parse_err("upstreams:\n  - {name: a, base_url: 'http://x'}\naliases:\n  - {name: c, upstreams: [a], strategy: random}\n",
                  "aliases[c].strategy");
        parse_err("upstreams:\n  - {name: a, base_url: 'http://x'}\naliases:\n  - {name: c, upstreams: [a], fallbacks: [c]}\n",
                  "itself");
        parse_err("upstreams:\n  - {name: a, base_url: 'http://x'}\naliases:\n  - {name: c, upstreams: [a], fallbacks: [zz]}\n",
                  "no alias or model is named zz");
        parse_err("upstreams:\n  - {name: a, base_url: 'http://x'}\ndata_rules: [dna]\n", "unknown rule");
        parse_err("upstreams:\n  - {name: a, base_url: 'http://x'}\nlimits: {max_tokens: -5}\n", "limits.max_tokens");
        parse_err("upstreams:\n  - {name: a, base_url: 'fn:Bad_Name'}\n", "expected fn:NAME");
        parse_err("a: &x 1\nb: *x\n", "aliases (*name) are not supported");
        parse_err("upstreams:\n  - {name: a, base_url: 'http://x'}\nupstreams: []\n", "appears twice");
}

TEST(gateway_config_key_file) {
        char path[] = "/tmp/fnbox-unit-gwkey-XXXXXX";
        int fd = mkstemp(path);
        ASSERT_TRUE(fd >= 0);
        ASSERT_TRUE(write(fd, "  sk-file-key \n", 15) == 15);
        close(fd);
        char yaml[512];
        snprintf(yaml, sizeof yaml, "upstreams:\n  - {name: a, base_url: 'http://x', api_key_file: '%s'}\n", path);
        GwConfig *c = parse_ok(yaml);
        ASSERT_EQ_STR(c->upstreams[0].api_key, "sk-file-key");
        gw_config_unref(c);
        unlink(path);
}
