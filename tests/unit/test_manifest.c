/* tests/unit/test_manifest.c: manifest parsing (defaults, every error class
 * with its file, line, column and field), hostile YAML, multi-document files
 * and folders, and the canonical spec JSON. */
#define _GNU_SOURCE
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/manifest.h"

#define HEAD "apiVersion: fnbox.dev/v1\nkind: Function\n"
#define MIN_DOC HEAD "metadata: {name: hello}\nspec: {runtime: python3, code: main.py}\n"

static ManifestError err;

static ManifestList *parse_ok(const char *yaml) {
        ManifestList *l = NULL;
        int r = manifest_parse(yaml, strlen(yaml), "t.yaml", &l, &err);
        if (r < 0) {
                char msg[512];
                manifest_error_format(&err, msg, sizeof msg);
                FAIL_AT("unexpected error %d: %s", r, msg);
        }
        return l;
}

/* Parse yaml, expect error r at line:col on field, with want in the message. */
static void parse_bad(const char *yaml, int r, unsigned line, unsigned col, const char *field, const char *want) {
        ManifestList *l = NULL;
        int got = manifest_parse(yaml, strlen(yaml), "t.yaml", &l, &err);
        char msg[512];
        manifest_error_format(&err, msg, sizeof msg);
        if (got != r || l || (line && (err.line != line || err.column != col)) || strcmp(err.field, field) != 0 ||
            !strstr(err.message, want))
                FAIL_AT("want %d at %u:%u field \"%s\" with \"%s\"; got %d: %s", r, line, col, field, want, got, msg);
}

TEST(manifest_minimal_defaults) {
        _cleanup_manifest_list_ ManifestList *l = parse_ok(MIN_DOC);
        ASSERT_EQ_UINT(l->n, 1);
        const Manifest *m = &l->items[0];
        ASSERT_EQ_STR(m->name, "hello");
        ASSERT_EQ_STR(m->namespace_, "default");
        ASSERT_TRUE(!m->namespace_set);
        ASSERT_EQ_STR(m->source, "t.yaml");
        ASSERT_EQ_UINT(m->line, 1);
        ASSERT_EQ_INT(m->runtime, MANIFEST_RUNTIME_PYTHON3);
        ASSERT_EQ_INT(m->mode, MANIFEST_MODE_FRESH);
        ASSERT_EQ_UINT(m->limits.memory_bytes, 128ULL << 20);
        ASSERT_EQ_UINT(m->limits.timeout_ns, 10000000000ULL);
        ASSERT_EQ_UINT(m->limits.cpu_millis, 1000);
        ASSERT_EQ_UINT(m->limits.pids, 64);
        ASSERT_EQ_UINT(m->limits.tmp_bytes, 16ULL << 20);
        ASSERT_EQ_UINT(m->limits.output_bytes, 1ULL << 20);
        ASSERT_EQ_UINT(m->scale.min, 0);
        ASSERT_EQ_UINT(m->scale.max, 20);
        ASSERT_EQ_UINT(m->scale.initial, 1);
        ASSERT_EQ_UINT(m->scale.target, 10);
        ASSERT_EQ_UINT(m->scale.scale_to_zero_after_ns, 30000000000ULL);
        ASSERT_EQ_UINT(m->scale.stable_window_ns, 60000000000ULL);
        ASSERT_EQ_UINT(m->scale.panic_window_ns, 6000000000ULL);
        ASSERT_TRUE(m->scale.max_scale_up_rate == 1000.0 && m->scale.max_scale_down_rate == 2.0);
        ASSERT_EQ_UINT(m->concurrency, 10);     /* follows target */
        ASSERT_EQ_UINT(m->startup_timeout_ns, 600000000000ULL);
        ASSERT_EQ_STR(m->readiness.path, "/healthz");
        ASSERT_EQ_UINT(m->readiness.period_ns, 100000000ULL);
        ASSERT_EQ_UINT(m->limits.gpus, 0);
        ASSERT_EQ_UINT(m->n_traffic, 0);
        ASSERT_TRUE(m->entrypoint == NULL);
}

static const char full_doc[] =
        "# the issue's example\n"
        HEAD
        "metadata:\n"
        "  name: wordcount            # DNS-1123 label\n"
        "  namespace: team-a\n"
        "spec:\n"
        "  runtime: python3\n"
        "  code: ./wordcount.py\n"
        "  mode: service\n"
        "  env: {LANG: C.UTF-8, DEBUG: \"1\", _X9: \"\"}\n"
        "  limits: {memory: 256Mi, timeout: 1.5s, cpu: 500m, pids: 32, tmp: \"8Mi\", output: 2Mi}\n"
        "  scale: {min: 2, max: 30, target: 5, scaleToZeroAfter: 2m}\n"
        "  nodeSelector: {}\n"
        "  traffic:\n"
        "    - {revision: wordcount-00001, percent: 90, tag: stable}\n"
        "    - {latestRevision: true, percent: 10, tag: canary}\n";

TEST(manifest_full) {
        _cleanup_manifest_list_ ManifestList *l = parse_ok(full_doc);
        const Manifest *m = &l->items[0];
        ASSERT_EQ_STR(m->namespace_, "team-a");
        ASSERT_TRUE(m->namespace_set);
        ASSERT_EQ_UINT(m->line, 2);
        ASSERT_EQ_STR(m->code, "./wordcount.py");
        ASSERT_EQ_INT(m->mode, MANIFEST_MODE_SERVICE);
        ASSERT_EQ_UINT(m->n_env, 3);
        ASSERT_EQ_STR(m->env[1].key, "DEBUG");
        ASSERT_EQ_STR(m->env[1].value, "1");
        ASSERT_EQ_STR(m->env[2].value, "");
        ASSERT_EQ_UINT(m->limits.memory_bytes, 256ULL << 20);
        ASSERT_EQ_UINT(m->limits.timeout_ns, 1500000000ULL);
        ASSERT_EQ_UINT(m->limits.cpu_millis, 500);
        ASSERT_EQ_UINT(m->limits.pids, 32);
        ASSERT_EQ_UINT(m->limits.tmp_bytes, 8ULL << 20);
        ASSERT_EQ_UINT(m->scale.min, 2);
        ASSERT_EQ_UINT(m->scale.initial, 2); /* default follows min */
        ASSERT_EQ_UINT(m->scale.max, 30);
        ASSERT_EQ_UINT(m->scale.scale_to_zero_after_ns, 120000000000ULL);
        ASSERT_EQ_UINT(m->n_node_selector, 0);
        ASSERT_EQ_UINT(m->n_traffic, 2);
        ASSERT_EQ_STR(m->traffic[0].revision, "wordcount-00001");
        ASSERT_EQ_STR(m->traffic[0].tag, "stable");
        ASSERT_EQ_UINT(m->traffic[0].percent, 90);
        ASSERT_TRUE(m->traffic[1].latest && !m->traffic[1].revision);
}

TEST(manifest_variants) {
        _cleanup_manifest_list_ ManifestList *l = parse_ok(HEAD
                "metadata: {name: llm}\n"
                "spec:\n"
                "  runtime: exec\n"
                "  code: bin\n"
                "  entrypoint: serve\n"
                "  env: {MODEL: tiny, THREADS: \"4\"}\n"
                "  limits: {memory: 2Gi}\n"
                "  variants:\n"
                "    - name: cuda\n"
                "      nodeSelector: {accelerator: cuda, fnbox.dev/gpu-memory: 80Gi}\n"
                "      code: cuda/bin\n"
                "      env: {THREADS: \"1\", CUDA: \"1\"}\n"
                "      limits: {memory: 8Gi}\n"
                "    - name: cpu\n");
        const Manifest *m = &l->items[0];
        ASSERT_EQ_UINT(m->n_variants, 2);
        const ManifestVariant *v = &m->variants[0];
        ASSERT_EQ_STR(v->name, "cuda");
        ASSERT_EQ_UINT(v->n_node_selector, 2);
        ASSERT_EQ_STR(v->node_selector[1].key, "fnbox.dev/gpu-memory");
        ASSERT_EQ_STR(v->code, "cuda/bin");
        ASSERT_TRUE(v->entrypoint == NULL);
        ASSERT_EQ_UINT(v->limits.memory_bytes, 8ULL << 30);
        ASSERT_EQ_UINT(v->limits.cpu_millis, 0); /* inherits */
        ASSERT_TRUE(m->variants[1].n_node_selector == 0 && m->variants[1].code == NULL);

        json_t *j = manifest_spec_to_json(m, false);
        char *s = json_dumps(json_object_get(j, "variants"), JSON_COMPACT);
        ASSERT_EQ_STR(s, "[{\"name\":\"cuda\",\"nodeSelector\":{\"accelerator\":\"cuda\",\"fnbox.dev/gpu-memory\":\"80Gi\"},"
                      "\"code\":\"cuda/bin\",\"entrypoint\":\"serve\",\"env\":{\"CUDA\":\"1\",\"MODEL\":\"tiny\",\"THREADS\":\"1\"},"
                      "\"limits\":{\"memoryBytes\":8589934592,\"timeoutMs\":10000,\"cpuMillis\":1000,\"pids\":64,"
                      "\"tmpBytes\":16777216,\"outputBytes\":1048576,\"gpus\":0}},"
                      "{\"name\":\"cpu\",\"nodeSelector\":{},\"code\":\"bin\",\"entrypoint\":\"serve\","
                      "\"env\":{\"MODEL\":\"tiny\",\"THREADS\":\"4\"},\"limits\":{\"memoryBytes\":2147483648,"
                      "\"timeoutMs\":10000,\"cpuMillis\":1000,\"pids\":64,\"tmpBytes\":16777216,\"outputBytes\":1048576,\"gpus\":0}}]");
        free(s);
        json_decref(j);
}

TEST(manifest_spec_json) {
        _cleanup_manifest_list_ ManifestList *l = parse_ok(full_doc);
        json_t *j = manifest_spec_to_json(&l->items[0], true);
        char *s = json_dumps(j, JSON_COMPACT);
        ASSERT_EQ_STR(s, "{\"runtime\":\"python3\",\"code\":\"wordcount.py\",\"entrypoint\":null,\"mode\":\"service\","
                      "\"env\":{\"DEBUG\":\"1\",\"LANG\":\"C.UTF-8\",\"_X9\":\"\"},"
                      "\"limits\":{\"memoryBytes\":268435456,\"timeoutMs\":1500,\"cpuMillis\":500,\"pids\":32,"
                      "\"tmpBytes\":8388608,\"outputBytes\":2097152,\"gpus\":0},"
                      "\"concurrency\":5,\"startupTimeoutMs\":600000,\"readiness\":{\"path\":\"/healthz\",\"periodMs\":100},"
                      "\"scale\":{\"min\":2,\"max\":30,\"initial\":2,\"target\":5,\"scaleToZeroAfterMs\":120000,\"retentionMs\":0,"
                      "\"stableWindowMs\":60000,\"panicWindowMs\":6000,\"maxScaleUpRate\":1000.0,\"maxScaleDownRate\":2.0},"
                      "\"nodeSelector\":{},\"variants\":[],"
                      "\"traffic\":[{\"revision\":\"wordcount-00001\",\"percent\":90,\"tag\":\"stable\"},"
                      "{\"latestRevision\":true,\"percent\":10,\"tag\":\"canary\"}]}");
        free(s);
        json_decref(j);

        _cleanup_manifest_list_ ManifestList *d = parse_ok(MIN_DOC);
        j = manifest_traffic_to_json(&d->items[0]);
        s = json_dumps(j, JSON_COMPACT);
        ASSERT_EQ_STR(s, "[{\"latestRevision\":true,\"percent\":100}]");
        free(s);
        json_decref(j);
}

static char *revision_json(const char *yaml) {
        _cleanup_manifest_list_ ManifestList *l = parse_ok(yaml);
        json_t *j = manifest_spec_to_json(&l->items[0], false);
        char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(j);
        return s;
}

/* Traffic, key order, spelling of defaults and of the code path do not
 * change what defines a revision; a limit does. */
TEST(manifest_revision_identity) {
        char *a = revision_json(HEAD "metadata: {name: f}\nspec: {runtime: sh, code: ./a//b/, env: {A: \"1\", B: \"2\"}}\n");
        char *b = revision_json(HEAD "spec:\n  env: {B: \"2\", A: \"1\"}\n  code: a/b\n  runtime: sh\n"
                                "  limits: {memory: 128Mi, timeout: 10000ms}\n  scale: {max: 20}\n"
                                "  traffic: [{latestRevision: true, percent: 100, tag: x}]\nmetadata: {name: f}\n");
        char *c = revision_json(HEAD "metadata: {name: f}\nspec: {runtime: sh, code: a/b, env: {A: \"1\", B: \"2\"}, "
                                "limits: {memory: 129Mi}}\n");
        ASSERT_EQ_STR(a, b);
        ASSERT_TRUE(strcmp(a, c) != 0);
        free(a);
        free(b);
        free(c);
}

TEST(manifest_error_position) {
        parse_bad(HEAD "metadata:\n  name: wordcount\nspec:\n  runtime: python3\n  code: x.py\n"
                  "  limits:\n    memory: lots\n",
                  -EINVAL, 9, 13, "spec.limits.memory", "expected a byte size such as 128Mi");
        char msg[256];
        manifest_error_format(&err, msg, sizeof msg);
        ASSERT_EQ_STR(msg, "t.yaml:9:13: spec.limits.memory: expected a byte size such as 128Mi, got \"lots\"");
}

TEST(manifest_error_unknown_and_types) {
        parse_bad(HEAD "metadata: {name: a}\nspec: {runtime: sh, code: x, limts: {}}\n",
                  -EINVAL, 4, 30, "spec.limts", "unknown field; expected one of: runtime, code, entrypoint");
        parse_bad(HEAD "metadata: {name: a, labels: {}}\nspec: {runtime: sh, code: x}\n",
                  -EINVAL, 3, 21, "metadata.labels", "unknown field");
        parse_bad(HEAD "bogus: 1\nmetadata: {name: a}\nspec: {runtime: sh, code: x}\n",
                  -EINVAL, 3, 1, "bogus", "unknown field");
        parse_bad(HEAD "metadata: {name: a}\nspec: {runtime: sh, code: x, env: [A]}\n",
                  -EINVAL, 4, 35, "spec.env", "expected a mapping of NAME: value, got a list");
        parse_bad(HEAD "metadata: {name: a}\nspec: {runtime: sh, code: x, limits: {pids: \"64\"}}\n",
                  -EINVAL, 4, 45, "spec.limits.pids", "expected an integer, got a quoted string");
        parse_bad(HEAD "metadata: {name: a}\nspec: {runtime: sh, code: x, limits: {pids: 4.5}}\n",
                  -EINVAL, 4, 45, "spec.limits.pids", "expected an integer from 1 to 32768, got 4.5");
        parse_bad(HEAD "metadata: {name: a}\nspec: {runtime: ruby, code: x}\n",
                  -EINVAL, 4, 17, "spec.runtime", "expected one of exec, sh, python3, node, got \"ruby\"");
        parse_bad(HEAD "metadata: {name: a}\nspec: {runtime: sh, code: x, mode: {}}\n",
                  -EINVAL, 4, 36, "spec.mode", "expected one of fresh, service, got a mapping");
        parse_bad(HEAD "metadata: {name: a}\nspec: [runtime]\n",
                  -EINVAL, 4, 7, "spec", "expected a mapping, got a list");
        parse_bad("- a\n- b\n", -EINVAL, 1, 1, "", "expected a mapping (a Function manifest), got a list");
}

TEST(manifest_error_required_and_header) {
        parse_bad(HEAD "metadata: {namespace: x}\nspec: {runtime: sh, code: x}\n",
                  -EINVAL, 3, 11, "metadata.name", "required field is missing");
        parse_bad(HEAD "metadata: {name: a}\nspec: {runtime: sh}\n",
                  -EINVAL, 4, 7, "spec.code", "required field is missing");
        parse_bad(HEAD "metadata: {name: a}\nspec: {runtime: sh, code: }\n",
                  -EINVAL, 4, 21, "spec.code", "required field is missing (it is null)");
        parse_bad("kind: Function\nmetadata: {name: a}\nspec: {runtime: sh, code: x}\n",
                  -EINVAL, 1, 1, "apiVersion", "required field is missing");
        parse_bad("apiVersion: fnbox.dev/v2\nkind: Function\nmetadata: {name: a}\nspec: {runtime: sh, code: x}\n",
                  -EINVAL, 1, 13, "apiVersion", "expected fnbox.dev/v1, got fnbox.dev/v2");
        parse_bad("apiVersion: fnbox.dev/v1\nkind: Deployment\nmetadata: {name: a}\nspec: {runtime: sh, code: x}\n",
                  -EINVAL, 2, 7, "kind", "expected Function, got Deployment");
        parse_bad("", -EINVAL, 0, 0, "", "no manifest in the file");
        parse_bad("# only a comment\n---\n", -EINVAL, 0, 0, "", "no manifest in the file");
}

TEST(manifest_error_names) {
        parse_bad(HEAD "metadata: {name: Hello}\nspec: {runtime: sh, code: x}\n",
                  -EINVAL, 3, 18, "metadata.name", "expected a DNS-1123 label");
        parse_bad(HEAD "metadata: {name: a, namespace: -x}\nspec: {runtime: sh, code: x}\n",
                  -EINVAL, 3, 32, "metadata.namespace", "expected a DNS-1123 label");
        char long_name[200];
        snprintf(long_name, sizeof long_name, HEAD "metadata: {name: %064d}\nspec: {runtime: sh, code: x}\n", 0);
        parse_bad(long_name, -EINVAL, 3, 18, "metadata.name", "at most 63");
        ASSERT_TRUE(manifest_name_valid("a"));
        ASSERT_TRUE(manifest_name_valid("a-1"));
        ASSERT_TRUE(manifest_name_valid("0abc"));
        ASSERT_TRUE(!manifest_name_valid(""));
        ASSERT_TRUE(!manifest_name_valid(NULL));
        ASSERT_TRUE(!manifest_name_valid("a-"));
        ASSERT_TRUE(!manifest_name_valid("a_b"));
        ASSERT_TRUE(!manifest_name_valid("a.b"));
        parse_bad(HEAD "metadata: {name: a}\nspec: {runtime: sh, code: x, env: {9A: b}}\n",
                  -EINVAL, 4, 36, "spec.env.9A", "expected an environment variable name");
        parse_bad(HEAD "metadata: {name: a}\nspec: {runtime: sh, code: x, env: {A-B: b}}\n",
                  -EINVAL, 4, 36, "spec.env.A-B", "[A-Za-z_][A-Za-z0-9_]*");
        parse_bad(HEAD "metadata: {name: a}\nspec: {runtime: sh, code: x, env: {A: }}\n",
                  -EINVAL, 4, 39, "spec.env.A", "expected a string value (write \"\" for empty), got null");
        parse_bad(HEAD "metadata: {name: a}\nspec: {runtime: sh, code: x, nodeSelector: {\"a b\": c}}\n",
                  -EINVAL, 4, 45, "spec.nodeSelector.a b", "expected a label key");
        parse_bad(HEAD "metadata: {name: a}\nspec: {runtime: sh, code: x, nodeSelector: {gpu: \"-x\"}}\n",
                  -EINVAL, 4, 50, "spec.nodeSelector.gpu", "expected a label value");
}

TEST(manifest_error_ranges) {
        static const struct { const char *limits, *field, *msg; } cases[] = {
                { "memory: 2Mi", "spec.limits.memory", "2Mi is out of range: expected 4Mi to 1Ti" },
                { "memory: 2Ti", "spec.limits.memory", "expected 4Mi to 1Ti" },
                { "timeout: 500us", "spec.limits.timeout", "500us is out of range: expected 1ms to 24h" },
                { "timeout: 25h", "spec.limits.timeout", "expected 1ms to 24h" },
                { "cpu: 5m", "spec.limits.cpu", "5m is out of range: expected 10m to 64" },
                { "cpu: 65", "spec.limits.cpu", "expected 10m to 64" },
                { "pids: 0", "spec.limits.pids", "from 1 to 32768" },
                { "pids: 40000", "spec.limits.pids", "from 1 to 32768" },
                { "tmp: 1Ki", "spec.limits.tmp", "expected 64Ki to 512Gi" },
                { "output: 100", "spec.limits.output", "100 is out of range: expected 1Ki to 64Mi" },
                { "output: 65Mi", "spec.limits.output", "expected 1Ki to 64Mi" },
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                char doc[256];
                snprintf(doc, sizeof doc, HEAD "metadata: {name: a}\nspec:\n  runtime: sh\n  code: x\n  limits:\n    %s\n",
                         cases[i].limits);
                parse_bad(doc, -EINVAL, 8, 5 + (unsigned) (strchr(cases[i].limits, ':') - cases[i].limits) + 2,
                          cases[i].field, cases[i].msg);
        }
        _cleanup_manifest_list_ ManifestList *l = parse_ok(HEAD "metadata: {name: a}\nspec: {runtime: sh, code: x, "
                "limits: {memory: 4Mi, timeout: 1ms, cpu: 10m, pids: 1, tmp: 64Ki, output: 1Ki}}\n");
        ASSERT_EQ_UINT(l->items[0].limits.timeout_ns, 1000000);
}

TEST(manifest_error_scale) {
        parse_bad(HEAD "metadata: {name: a}\nspec: {runtime: sh, code: x, scale: {min: 30}}\n",
                  -EINVAL, 4, 43, "spec.scale.min", "min 30 is above max 20");
        parse_bad(HEAD "metadata: {name: a}\nspec: {runtime: sh, code: x, scale: {min: 2, initial: 1}}\n",
                  -EINVAL, 4, 55, "spec.scale.initial", "initial 1 is outside min..max (2..20)");
        parse_bad(HEAD "metadata: {name: a}\nspec: {runtime: sh, code: x, scale: {max: 0}}\n",
                  -EINVAL, 4, 43, "spec.scale.max", "from 1 to 1000");
        parse_bad(HEAD "metadata: {name: a}\nspec: {runtime: sh, code: x, scale: {scaleToZeroAfter: 2h}}\n",
                  -EINVAL, 4, 56, "spec.scale.scaleToZeroAfter", "expected 1s to 1h");
}

TEST(manifest_error_traffic) {
        const char *spec = HEAD "metadata: {name: wc}\nspec:\n  runtime: sh\n  code: x\n  traffic:\n";
        char doc[512];
        snprintf(doc, sizeof doc, "%s    - {revision: wc-00001, percent: 50}\n    - {latestRevision: true, percent: 40}\n", spec);
        parse_bad(doc, -EINVAL, 8, 5, "spec.traffic", "percentages add up to 90, expected 100");
        snprintf(doc, sizeof doc, "%s    - {revision: wc-00001, percent: 50, tag: a}\n    - {latestRevision: true, percent: 50, tag: a}\n", spec);
        parse_bad(doc, -EINVAL, 9, 48, "spec.traffic[1].tag", "duplicate tag (also traffic[0])");
        snprintf(doc, sizeof doc, "%s    - {percent: 100}\n", spec);
        parse_bad(doc, -EINVAL, 8, 7, "spec.traffic[0]", "expected revision: NAME-00001 or latestRevision: true");
        snprintf(doc, sizeof doc, "%s    - {revision: wc-00001, latestRevision: true, percent: 100}\n", spec);
        parse_bad(doc, -EINVAL, 8, 7, "spec.traffic[0]", "not both");
        snprintf(doc, sizeof doc, "%s    - {revision: other-00001, percent: 100}\n", spec);
        parse_bad(doc, -EINVAL, 8, 18, "spec.traffic[0].revision", "a revision of this function, such as wc-00001");
        snprintf(doc, sizeof doc, "%s    - {revision: wc-1, percent: 100}\n", spec);
        parse_bad(doc, -EINVAL, 8, 18, "spec.traffic[0].revision", "such as wc-00001");
        snprintf(doc, sizeof doc, "%s    - {revision: wc-00001, percent: 101}\n", spec);
        parse_bad(doc, -EINVAL, 8, 37, "spec.traffic[0].percent", "from 0 to 100");
        snprintf(doc, sizeof doc, "%s    - {revision: wc-00001}\n", spec);
        parse_bad(doc, -EINVAL, 8, 7, "spec.traffic[0].percent", "required field is missing");
        snprintf(doc, sizeof doc, "%s    []\n", spec);
        parse_bad(doc, -EINVAL, 8, 5, "spec.traffic", "expected 1 to 16 entries, got 0");
        snprintf(doc, sizeof doc, "%s    - {latestRevision: yes, percent: 100}\n", spec);
        parse_bad(doc, -EINVAL, 8, 24, "spec.traffic[0].latestRevision", "expected true or false");
        snprintf(doc, sizeof doc, "%s    - {revision: wc-00001, percent: 0, tag: old}\n    - {latestRevision: true, percent: 100}\n", spec);
        _cleanup_manifest_list_ ManifestList *l = parse_ok(doc);
        ASSERT_EQ_UINT(l->items[0].n_traffic, 2);
}

TEST(manifest_error_paths) {
        parse_bad(HEAD "metadata: {name: a}\nspec: {runtime: sh, code: /etc/passwd}\n",
                  -EINVAL, 4, 27, "spec.code", "not an absolute path");
        parse_bad(HEAD "metadata: {name: a}\nspec: {runtime: sh, code: ../x}\n",
                  -EINVAL, 4, 27, "spec.code", "\"..\" is not allowed");
        parse_bad(HEAD "metadata: {name: a}\nspec: {runtime: sh, code: a/../../x}\n",
                  -EINVAL, 4, 27, "spec.code", "must stay inside the manifest's folder");
        parse_bad(HEAD "metadata: {name: a}\nspec: {runtime: sh, code: a/.., entrypoint: x}\n",
                  -EINVAL, 4, 27, "spec.code", "\"..\"");
        parse_bad(HEAD "metadata: {name: a}\nspec: {runtime: sh, code: a, entrypoint: ../x}\n",
                  -EINVAL, 4, 42, "spec.entrypoint", "\"..\"");
        parse_bad(HEAD "metadata: {name: a}\nspec: {runtime: sh, code: \"\"}\n",
                  -EINVAL, 4, 27, "spec.code", "got an empty string");
        parse_bad(HEAD "metadata: {name: a}\nspec:\n  runtime: sh\n  code: x\n  variants: [{name: v, code: /x}]\n",
                  -EINVAL, 7, 30, "spec.variants[0].code", "not an absolute path");
        _cleanup_manifest_list_ ManifestList *l = parse_ok(HEAD "metadata: {name: a}\nspec: {runtime: sh, code: a..b/..c}\n");
}

TEST(manifest_error_duplicates) {
        parse_bad(HEAD "metadata: {name: a}\nspec: {runtime: sh, code: x, runtime: exec}\n",
                  -EINVAL, 4, 30, "spec.runtime", "duplicate field (first at line 4)");
        parse_bad(HEAD "metadata: {name: a}\nmetadata: {name: b}\nspec: {runtime: sh, code: x}\n",
                  -EINVAL, 4, 1, "metadata", "duplicate field (first at line 3)");
        parse_bad(HEAD "metadata: {name: a}\nspec: {runtime: sh, code: x, env: {A: b, A: c}}\n",
                  -EINVAL, 4, 42, "spec.env.A", "duplicate key (first at line 4)");
        parse_bad(HEAD "metadata: {name: a}\nspec:\n  runtime: sh\n  code: x\n  variants: [{name: v}, {name: v}]\n",
                  -EINVAL, 7, 32, "spec.variants[1].name", "duplicate variant name (also variants[0])");
        parse_bad(HEAD "metadata: {name: a}\nspec:\n  runtime: sh\n  code: x\n  nodeSelector: {a: b}\n  variants: [{name: v}]\n",
                  -EINVAL, 8, 13, "spec.variants", "not both");
}

TEST(manifest_hostile_alias) {
        parse_bad(HEAD "metadata: &m {name: a}\nspec: {runtime: sh, code: x, env: *m}\n",
                  -EINVAL, 4, 35, "", "YAML aliases (*m) are not allowed");
        /* the billion laughs, refused at the first alias */
        const char *bomb = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                           "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n";
        parse_bad(bomb, -EINVAL, 2, 8, "", "YAML aliases (*a) are not allowed");
        parse_bad(HEAD "metadata: !!map {name: a}\nspec: {runtime: sh, code: x}\n", -EINVAL, 3, 11, "", "YAML tags");
}

TEST(manifest_hostile_depth) {
        char doc[256] = "a: ";
        for (int i = 0; i < 40; i++)
                strcat(doc, "[");
        parse_bad(doc, -E2BIG, 1, 4 + MANIFEST_DEPTH_MAX - 1, "", "nested deeper than 16 levels");
        /* 16 levels is fine as YAML (then the schema says no) */
        char ok[256] = "";
        for (int i = 0; i < MANIFEST_DEPTH_MAX - 1; i++)
                strcat(ok, "[");
        strcat(ok, "x");
        for (int i = 0; i < MANIFEST_DEPTH_MAX - 1; i++)
                strcat(ok, "]");
        parse_bad(ok, -EINVAL, 1, 1, "", "expected a mapping (a Function manifest)");
}

TEST(manifest_hostile_sizes) {
        size_t n = MANIFEST_SCALAR_MAX + 100;
        char *doc = malloc(n + 64);
        int o = sprintf(doc, "x: \"");
        memset(doc + o, 'a', n);
        strcpy(doc + o + n, "\"\n");
        parse_bad(doc, -E2BIG, 1, 4, "", "over the limit of 16384 bytes");
        free(doc);

        n = MANIFEST_DOC_MAX + 1;
        doc = malloc(n);
        memset(doc, '#', n);
        ManifestList *l = NULL;
        ASSERT_EQ_INT(manifest_parse(doc, n, "big.yaml", &l, &err), -E2BIG);
        ASSERT_TRUE(strstr(err.message, "over the limit of 1048576 bytes"));
        free(doc);

        /* too many documents, each tiny */
        doc = malloc(8 * (MANIFEST_DOCS_MAX + 2));
        doc[0] = 0;
        for (int i = 0; i < MANIFEST_DOCS_MAX + 1; i++)
                strcat(doc, "--- ~\n");
        parse_bad(doc, -E2BIG, MANIFEST_DOCS_MAX + 1, 1, "", "more than 256 documents");
        free(doc);

        /* too many nodes: a flat list */
        doc = malloc(3 * (MANIFEST_NODES_MAX + 2) + 8);
        o = sprintf(doc, "[");
        for (unsigned i = 0; i < MANIFEST_NODES_MAX + 1; i++)
                o += sprintf(doc + o, "1,");
        strcpy(doc + o, "]");
        parse_bad(doc, -E2BIG, 0, 0, "", "more than 32768 YAML nodes");
        free(doc);

        char env[64 * 300] = HEAD "metadata: {name: a}\nspec:\n  runtime: sh\n  code: x\n  env:\n";
        for (int i = 0; i < MANIFEST_ENV_MAX + 1; i++)
                sprintf(env + strlen(env), "    A%d: b\n", i);
        parse_bad(env, -EINVAL, 8, 5, "spec.env", "257 entries, more than the 256 allowed");
}

TEST(manifest_hostile_encoding) {
        parse_bad(HEAD "metadata: {name: a}\nspec: {runtime: sh, code: \"x\xff\"}\n",
                  -EINVAL, 4, 29, "", "invalid UTF-8");
        parse_bad(HEAD "metadata: {name: a}\nspec: {runtime: sh, code: \"x\xc3\"}\n", -EINVAL, 0, 0, "", "invalid UTF-8");
        parse_bad(HEAD "metadata: {name: a}\nspec: {runtime: sh, code: \"x\\0y\"}\n",
                  -EINVAL, 4, 27, "", "NUL character");
        parse_bad("a: \x01\n", -EINVAL, 1, 4, "", "control characters are not allowed");
        const char nul[] = "apiVersion: fnbox.dev/v1\0\n";
        ManifestList *l = NULL;
        ASSERT_EQ_INT(manifest_parse(nul, sizeof nul - 1, "t.yaml", &l, &err), -EINVAL);
        /* UTF-16 is refused, not decoded */
        const char utf16[] = "\xff\xfe" "a\0:\0 \0b\0";
        ASSERT_EQ_INT(manifest_parse(utf16, sizeof utf16 - 1, "t.yaml", &l, &err), -EINVAL);
        ASSERT_TRUE(strstr(err.message, "invalid UTF-8"));
        parse_bad("a: [b\n", -EINVAL, 2, 1, "", "invalid YAML");
        /* non-ASCII text is fine in values */
        _cleanup_manifest_list_ ManifestList *ok = parse_ok(HEAD "metadata: {name: a}\nspec: {runtime: sh, code: \"caf\xc3\xa9\", "
                                                          "env: {GREETING: \"\xe3\x81\x93\xe3\x82\x93\"}}\n");
}

TEST(manifest_multi_document) {
        _cleanup_manifest_list_ ManifestList *l = parse_ok("---\n" MIN_DOC "---\n"
                HEAD "metadata: {name: two, namespace: b}\nspec: {runtime: sh, code: x}\n---\n");
        ASSERT_EQ_UINT(l->n, 2);
        ASSERT_EQ_STR(l->items[1].name, "two");
        ASSERT_EQ_UINT(l->items[0].line, 1);
        ASSERT_EQ_UINT(l->items[1].line, 6);
        parse_bad(MIN_DOC "---\n" MIN_DOC, -EINVAL, 5, 1, "metadata.name",
                  "function default/hello is defined twice (also at t.yaml:1)");
        _cleanup_manifest_list_ ManifestList *l2 = parse_ok(MIN_DOC "---\n"
                HEAD "metadata: {name: hello, namespace: default}\nspec: {runtime: sh, code: x}\n");
        ASSERT_EQ_UINT(l2->n, 2);
        parse_bad(MIN_DOC "---\n" HEAD "metadata: {name: b}\nspec: {runtime: sh, code: x, cpu: 1}\n",
                  -EINVAL, 9, 30, "spec.cpu", "unknown field");
}

static void write_file(const char *dir, const char *name, const char *text) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        FILE *f = fopen(path, "w");
        ASSERT_TRUE(f);
        fputs(text, f);
        fclose(f);
}

TEST(manifest_load_folder) {
        char dir[] = "/tmp/fnbox-manifest-XXXXXX";
        ASSERT_TRUE(mkdtemp(dir));
        write_file(dir, "b.yml", HEAD "metadata: {name: bee}\nspec: {runtime: sh, code: x}\n");
        write_file(dir, "a.yaml", HEAD "metadata: {name: ay}\nspec: {runtime: sh, code: x}\n---\n"
                   HEAD "metadata: {name: ay2}\nspec: {runtime: sh, code: x}\n");
        write_file(dir, "notes.txt", "not a manifest");
        write_file(dir, ".hidden.yaml", "garbage: [");
        char sub[600];
        snprintf(sub, sizeof sub, "%s/sub.yaml", dir);
        ASSERT_EQ_INT(mkdir(sub, 0755), 0);

        ManifestList *l = NULL;
        ASSERT_EQ_INT(manifest_load_path(dir, &l, &err), 0);
        ASSERT_EQ_UINT(l->n, 3);
        ASSERT_EQ_STR(l->items[0].name, "ay");
        ASSERT_EQ_STR(l->items[1].name, "ay2");
        ASSERT_EQ_STR(l->items[2].name, "bee");
        char want[600];
        snprintf(want, sizeof want, "%s/b.yml", dir);
        ASSERT_EQ_STR(l->items[2].source, want);
        manifest_list_free(l);

        snprintf(want, sizeof want, "%s/a.yaml", dir);
        ASSERT_EQ_INT(manifest_load_path(want, &l, &err), 0);
        ASSERT_EQ_UINT(l->n, 2);
        manifest_list_free(l);

        write_file(dir, "c.yaml", HEAD "metadata: {name: bee}\nspec: {runtime: sh, code: x}\n");
        ASSERT_EQ_INT(manifest_load_path(dir, &l, &err), -EINVAL);
        ASSERT_TRUE(strstr(err.message, "defined twice"));
        ASSERT_TRUE(strstr(err.file, "c.yaml"));
        write_file(dir, "c.yaml", HEAD "metadata: {name: c}\nspec: {runtime: sh, code: x, memory: 1}\n");
        ASSERT_EQ_INT(manifest_load_path(dir, &l, &err), -EINVAL);
        ASSERT_TRUE(strstr(err.file, "c.yaml") && err.line == 4);
        ASSERT_EQ_STR(err.field, "spec.memory");

        ASSERT_EQ_INT(manifest_load_path("/nonexistent/x.yaml", &l, &err), -ENOENT);
        ASSERT_EQ_STR(err.file, "/nonexistent/x.yaml");
        ASSERT_TRUE(strstr(err.message, "cannot open"));
        ASSERT_EQ_INT(manifest_load_path(sub, &l, &err), -ENOENT);
        ASSERT_TRUE(strstr(err.message, "no *.yaml or *.yml files"));

        char cmd[700];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        ASSERT_EQ_INT(system(cmd), 0);
}

TEST(manifest_error_format_shapes) {
        ManifestError e = { .file = "f.yaml", .line = 3, .column = 7, .field = "spec.code", .message = "bad" };
        char buf[64];
        ASSERT_EQ_INT(manifest_error_format(&e, buf, sizeof buf), (int) strlen("f.yaml:3:7: spec.code: bad"));
        ASSERT_EQ_STR(buf, "f.yaml:3:7: spec.code: bad");
        e.field[0] = 0;
        e.line = 0;
        manifest_error_format(&e, buf, sizeof buf);
        ASSERT_EQ_STR(buf, "f.yaml: bad");
        char small[8];
        ASSERT_TRUE(manifest_error_format(&e, small, sizeof small) >= (int) sizeof small);
        ASSERT_EQ_STR(small, "f.yaml:");
        ASSERT_EQ_STR(manifest_runtime_name(MANIFEST_RUNTIME_NODE), "node");
        ASSERT_EQ_STR(manifest_mode_name(MANIFEST_MODE_SERVICE), "service");
        ASSERT_TRUE(manifest_runtime_name((ManifestRuntime) 9) == NULL);
}

TEST(manifest_examples_parse) {
        static const char *const dirs[] = { "functions/hello", "functions/wordcount", "functions/shout", "functions/fib" };
        for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
                char path[128];
                snprintf(path, sizeof path, "%s/manifest.yaml", dirs[i]);
                if (access(path, F_OK) < 0)
                        FAIL_AT("%s is missing (run the tests from the repository root)", path);
                ManifestList *l = NULL;
                char msg[512] = "";
                int r = manifest_load_path(path, &l, &err);
                if (r < 0) {
                        manifest_error_format(&err, msg, sizeof msg);
                        FAIL_AT("%s: %s", path, msg);
                }
                manifest_list_free(l);
        }
}

/* The data plane's fields: concurrency, startupTimeout, readiness, the
 * autoscaler's windows and rates, GPUs. */
TEST(manifest_dataplane_fields) {
        _cleanup_manifest_list_ ManifestList *l = parse_ok(HEAD "metadata: {name: llm}\n"
                "spec:\n  runtime: exec\n  code: bin\n  mode: service\n  concurrency: 4\n"
                "  startupTimeout: 5m\n  readiness: {path: /ready?x=1, period: 250ms}\n"
                "  limits: {gpus: 2}\n"
                "  scale: {target: 2, stableWindow: 2m, panicWindow: 10s, maxScaleUpRate: 10, maxScaleDownRate: 1.5}\n");
        const Manifest *m = &l->items[0];
        ASSERT_EQ_UINT(m->concurrency, 4);
        ASSERT_EQ_UINT(m->startup_timeout_ns, 300000000000ULL);
        ASSERT_EQ_STR(m->readiness.path, "/ready?x=1");
        ASSERT_EQ_UINT(m->readiness.period_ns, 250000000ULL);
        ASSERT_EQ_UINT(m->limits.gpus, 2);
        ASSERT_EQ_UINT(m->scale.stable_window_ns, 120000000000ULL);
        ASSERT_EQ_UINT(m->scale.panic_window_ns, 10000000000ULL);
        ASSERT_TRUE(m->scale.max_scale_up_rate == 10.0 && m->scale.max_scale_down_rate == 1.5);

        json_t *j = manifest_spec_to_json(m, false);
        ManifestParams p;
        manifest_spec_params(j, &p);
        ASSERT_EQ_INT(p.mode, MANIFEST_MODE_SERVICE);
        ASSERT_EQ_UINT(p.concurrency, 4);
        ASSERT_EQ_UINT(p.target, 2);
        ASSERT_EQ_UINT(p.startup_timeout_ms, 300000);
        ASSERT_EQ_UINT(p.stable_window_ms, 120000);
        ASSERT_EQ_UINT(p.panic_window_ms, 10000);
        ASSERT_TRUE(p.max_scale_up_rate == 10.0 && p.max_scale_down_rate == 1.5);
        ASSERT_EQ_UINT(p.gpus, 2);
        ASSERT_EQ_UINT(p.cpu_millis, 1000);
        json_decref(j);
}

/* A revision stored before these fields existed reads with their defaults. */
TEST(manifest_params_old_revision) {
        json_t *old = json_loads("{\"runtime\":\"sh\",\"code\":\"x\",\"mode\":\"fresh\","
                                 "\"limits\":{\"memoryBytes\":268435456,\"timeoutMs\":1500,\"cpuMillis\":500},"
                                 "\"scale\":{\"min\":0,\"max\":5,\"initial\":1,\"target\":3,\"scaleToZeroAfterMs\":2000}}",
                                 0, NULL);
        ASSERT_TRUE(old != NULL);
        ManifestParams p;
        manifest_spec_params(old, &p);
        ASSERT_EQ_UINT(p.concurrency, 3);
        ASSERT_EQ_UINT(p.max, 5);
        ASSERT_EQ_UINT(p.scale_to_zero_after_ms, 2000);
        ASSERT_EQ_UINT(p.stable_window_ms, 60000);
        ASSERT_EQ_UINT(p.panic_window_ms, 6000);
        ASSERT_EQ_UINT(p.startup_timeout_ms, 600000);
        ASSERT_TRUE(p.max_scale_up_rate == 1000.0 && p.max_scale_down_rate == 2.0);
        ASSERT_EQ_UINT(p.memory_bytes, 268435456);
        ASSERT_EQ_UINT(p.gpus, 0);
        ASSERT_EQ_UINT(p.timeout_ms, 1500);
        json_decref(old);
        /* garbage in stored JSON is clamped, not trusted */
        old = json_loads("{\"scale\":{\"max\":-3,\"panicWindowMs\":999999999,\"maxScaleUpRate\":0.5},\"concurrency\":\"x\"}", 0, NULL);
        manifest_spec_params(old, &p);
        ASSERT_EQ_UINT(p.max, 1);
        ASSERT_EQ_UINT(p.panic_window_ms, 60000);
        ASSERT_TRUE(p.max_scale_up_rate == 1000.0);
        ASSERT_EQ_UINT(p.concurrency, 10);
        json_decref(old);
}

TEST(manifest_error_dataplane) {
        parse_bad(HEAD "metadata: {name: a}\nspec: {runtime: sh, code: x, concurrency: 0}\n",
                  -EINVAL, 4, 43, "spec.concurrency", "from 1 to 1000");
        parse_bad(HEAD "metadata: {name: a}\nspec: {runtime: sh, code: x, concurrency: 1001}\n",
                  -EINVAL, 4, 43, "spec.concurrency", "from 1 to 1000");
        parse_bad(HEAD "metadata: {name: a}\nspec: {runtime: sh, code: x, startupTimeout: 2h}\n",
                  -EINVAL, 4, 46, "spec.startupTimeout", "expected 1s to 1h");
        parse_bad(HEAD "metadata: {name: a}\nspec: {runtime: sh, code: x, readiness: {path: healthz}}\n",
                  -EINVAL, 4, 48, "spec.readiness.path", "absolute path");
        parse_bad(HEAD "metadata: {name: a}\nspec: {runtime: sh, code: x, readiness: {period: 5ms}}\n",
                  -EINVAL, 4, 50, "spec.readiness.period", "expected 10ms to 1m");
        parse_bad(HEAD "metadata: {name: a}\nspec: {runtime: sh, code: x, readiness: {probe: x}}\n",
                  -EINVAL, 4, 42, "spec.readiness.probe", "expected one of: path, period");
        parse_bad(HEAD "metadata: {name: a}\nspec: {runtime: sh, code: x, scale: {stableWindow: 5s}}\n",
                  -EINVAL, 4, 52, "spec.scale.stableWindow", "expected 6s to 1h");
        parse_bad(HEAD "metadata: {name: a}\nspec: {runtime: sh, code: x, scale: {stableWindow: 10s, panicWindow: 11s}}\n",
                  -EINVAL, 4, 70, "spec.scale.panicWindow", "longer than stableWindow");
        parse_bad(HEAD "metadata: {name: a}\nspec: {runtime: sh, code: x, scale: {maxScaleUpRate: 1}}\n",
                  -EINVAL, 4, 54, "spec.scale.maxScaleUpRate", "above 1");
        parse_bad(HEAD "metadata: {name: a}\nspec: {runtime: sh, code: x, scale: {maxScaleDownRate: \"3\"}}\n",
                  -EINVAL, 4, 56, "spec.scale.maxScaleDownRate", "above 1");
        parse_bad(HEAD "metadata: {name: a}\nspec: {runtime: sh, code: x, scale: {maxScaleDownRate: 1e3}}\n",
                  -EINVAL, 4, 56, "spec.scale.maxScaleDownRate", "above 1");
        parse_bad(HEAD "metadata: {name: a}\nspec: {runtime: sh, code: x, limits: {gpus: 65}}\n",
                  -EINVAL, 4, 45, "spec.limits.gpus", "from 0 to 64");
        parse_bad(HEAD "metadata: {name: a}\nspec: {runtime: sh, code: x, stableWindow: 10s}\n",
                  -EINVAL, 4, 30, "spec.stableWindow", "did you mean spec.scale.stableWindow");
}
