/* cli/llm_cmd.c: `fnbox llm log`, the LLM gateway's audit log (GET
 * /v1/llm/log): one line per request, newest first: when, who called,
 * which model alias and which upstream answered, the status, tokens in
 * and out, latency and the data rules that fired; -o wide adds the
 * request id, the fallback chain and the time to first token; -o json or
 * yaml prints the records whole (bodies included when kept). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "lib/quantity.h"
#include "lib/util.h"

#define LLM_PATH_MAX            2048
#define LLM_LIMIT_MAX           1000
#define LLM_LIMIT_DEFAULT       50
#define LLM_ALIAS_MAX           128
#define LLM_SINCE_DAYS_MAX      36500

static const char *str(json_t *o, const char *key) {
        return json_string_value(json_object_get(o, key));
}

/* "90s", "15m", "2h", "1.5h", "7d": what ?since= takes besides milliseconds. */
static bool since_ok(const char *s) {
        uint64_t v;
        size_t n = strlen(s);
        if (n == 0 || n >= 20)
                return false;
        if (s[n - 1] == 'd') {
                char num[20];
                memcpy(num, s, n - 1);
                num[n - 1] = 0;
                return n > 1 && quantity_parse_uint(num, &v) == 0 && v <= LLM_SINCE_DAYS_MAX;
        }
        return strspn(s, "0123456789.") < n && quantity_parse_duration(s, &v) == 0;
}

/* "/v1/llm/log?namespace=NS&alias=A&since=S&limit=N", each escaped. */
static int llm_log_path(Cli *c, const VerbArgs *a, long limit, char *buf, size_t size) {
        const char *ns = a->all_namespaces ? "*" : c->namespace_;
        int r = cli_path(c, buf, size, ns, "/v1/llm/log");
        if (r < 0)
                return r;
        const char *keys[] = { "alias", "since" }, *vals[] = { a->alias, a->since };
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                if (!vals[i])
                        continue;
                _cleanup_free_ char *e = http_escape(vals[i]);
                size_t n = strlen(buf);
                if (!e)
                        return -ENOMEM;
                if ((size_t) snprintf(buf + n, size - n, "&%s=%s", keys[i], e) >= size - n)
                        return -ENAMETOOLONG;
        }
        size_t n = strlen(buf);
        return (size_t) snprintf(buf + n, size - n, "&limit=%ld", limit) >= size - n ? -ENAMETOOLONG : 0;
}

/* 12.3 ms -> "12ms", 1234.5 -> "1.23s"; null -> NULL. */
static const char *millis_cell(json_t *v, char *buf, size_t size) {
        if (!json_is_number(v))
                return NULL;
        double ms = json_number_value(v);
        if (ms < 1000)
                snprintf(buf, size, "%.0fms", ms);
        else
                snprintf(buf, size, "%.2fs", ms / 1000);
        return buf;
}

static void join_strings(json_t *arr, const char *sep, char *buf, size_t size) {
        size_t i, off = 0;
        json_t *e;
        buf[0] = 0;
        json_array_foreach(arr, i, e) {
                int n = snprintf(buf + off, size - off, "%s%s", off ? sep : "", json_string_value(e) ? json_string_value(e) : "?");
                if (n < 0 || (size_t) n >= size - off)
                        break;
                off += (size_t) n;
        }
}

static int llm_log_table(Cli *c, json_t *items) {
        static const char *const headers[] = { "TIME", "NAMESPACE", "CALLER", "ALIAS", "UPSTREAM", "STATUS",
                                               "TOKENS", "LATENCY", "RULES", "REQUEST ID", "CHAIN", "TTFT" };
        size_t ncols = c->wide ? 12 : 9, i;
        _cleanup_table_ Table *t = table_new(ncols, headers);
        json_t *e;
        if (!t) {
                fprintf(stderr, "%s: out of memory\n", c->prog);
                return CLI_EXIT_ERROR;
        }
        json_array_foreach(items, i, e) {
                char tokens[48], lat[32], ttft[32], rules[256], chain[1024], status[80];
                json_t *err = json_object_get(e, "errorType");
                snprintf(tokens, sizeof tokens, "%" JSON_INTEGER_FORMAT "/%" JSON_INTEGER_FORMAT "%s",
                         json_integer_value(json_object_get(e, "tokensIn")),
                         json_integer_value(json_object_get(e, "tokensOut")),
                         json_is_true(json_object_get(e, "tokensCounted")) ? "*" : "");
                snprintf(status, sizeof status, "%" JSON_INTEGER_FORMAT, json_integer_value(json_object_get(e, "status")));
                if (json_is_string(err)) {
                        size_t n = strlen(status);
                        snprintf(status + n, sizeof status - n, " %s", json_string_value(err));
                }
                join_strings(json_object_get(e, "rules"), ",", rules, sizeof rules);
                join_strings(json_object_get(e, "chain"), ">", chain, sizeof chain);
                const char *cells[] = { str(e, "time"), str(e, "namespace"), str(e, "caller"), str(e, "alias"),
                                        str(e, "upstream"), status, tokens,
                                        millis_cell(json_object_get(e, "latencyMs"), lat, sizeof lat),
                                        rules[0] ? rules : NULL, str(e, "requestId"), chain[0] ? chain : NULL,
                                        millis_cell(json_object_get(e, "ttftMs"), ttft, sizeof ttft) };
                if (table_add(t, cells) < 0)
                        return CLI_EXIT_ERROR;
        }
        return table_print(t, stdout, output_use_bold(stdout)) < 0 ? CLI_EXIT_ERROR : 0;
}

int llm_log_main(Cli *c, const VerbArgs *a) {
        char path[LLM_PATH_MAX], *end = NULL;
        long limit = LLM_LIMIT_DEFAULT;
        json_t *answer = NULL;
        if (a->limit) {
                limit = strtol(a->limit, &end, 10);
                if (!*a->limit || *end || limit < 1 || limit > LLM_LIMIT_MAX) {
                        fprintf(stderr, "%s: --limit: expected a number from 1 to %d\n", c->prog, LLM_LIMIT_MAX);
                        return CLI_EXIT_USAGE;
                }
        }
        if (a->since && !since_ok(a->since)) {
                fprintf(stderr, "%s: --since: expected a duration such as 90s, 15m, 2h or 7d\n", c->prog);
                return CLI_EXIT_USAGE;
        }
        if (a->alias && (!*a->alias || strlen(a->alias) > LLM_ALIAS_MAX)) {
                fprintf(stderr, "%s: --alias: expected a model alias of 1 to %d bytes\n", c->prog, LLM_ALIAS_MAX);
                return CLI_EXIT_USAGE;
        }
        if (llm_log_path(c, a, limit, path, sizeof path) < 0) {
                fprintf(stderr, "%s: the request is too long\n", c->prog);
                return CLI_EXIT_USAGE;
        }
        int r = cli_call(c, "llm log", "GET", path, NULL, &answer);
        if (r != 0)
                return r;
        json_t *items = json_object_get(answer, "items");
        if (c->output != OUTPUT_TABLE)
                r = output_value(stdout, c->output, answer) < 0 ? CLI_EXIT_ERROR : 0;
        else if (!json_is_array(items)) {
                fprintf(stderr, "%s: the server's answer has no \"items\" list\n", c->prog);
                r = CLI_EXIT_ERROR;
        } else if (json_array_size(items) == 0)
                fprintf(stderr, "No LLM requests recorded%s.\n", a->since || a->alias ? " that match" : " yet");
        else
                r = llm_log_table(c, items);
        json_decref(answer);
        return r;
}
