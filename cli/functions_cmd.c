/* cli/functions_cmd.c: `fnbox list`, `describe`, `delete` and `revisions`:
 * read functions and revisions from the API and show them as tables for
 * people or as the API's own JSON/YAML for scripts. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "lib/util.h"

#define PATH_BUF 1024

static const char *str(json_t *o, const char *key) {
        return json_string_value(json_object_get(o, key));
}

/* "wordcount-00001=90% @latest=10%" */
static void traffic_summary(json_t *traffic, char *buf, size_t size) {
        size_t i, o = 0;
        json_t *t;
        buf[0] = 0;
        json_array_foreach(traffic, i, t) {
                bool latest = json_is_true(json_object_get(t, "latestRevision"));
                const char *rev = latest ? "@latest" : str(t, "revision");
                int n = snprintf(buf + o, size - o, "%s%s=%" JSON_INTEGER_FORMAT "%%", o ? " " : "",
                                 rev ? rev : "?", json_integer_value(json_object_get(t, "percent")));
                if (n < 0 || (size_t) n >= size - o)
                        break;
                o += (size_t) n;
        }
}

static int list_print(Cli *c, json_t *items, bool all_ns) {
        _cleanup_table_ Table *t = all_ns
                ? table_new(7, (const char *[]) { "NAMESPACE", "NAME", "LATEST", "RUNTIME", "MODE", "TRAFFIC", "AGE" })
                : table_new(6, (const char *[]) { "NAME", "LATEST", "RUNTIME", "MODE", "TRAFFIC", "AGE" });
        size_t i;
        json_t *f;
        time_t now = time(NULL);
        if (!t)
                return CLI_EXIT_ERROR;
        json_array_foreach(items, i, f) {
                char traffic[512], age[64];
                json_t *spec = json_object_get(f, "spec");
                traffic_summary(json_object_get(f, "traffic"), traffic, sizeof traffic);
                format_age(str(f, "createdAt"), now, age, sizeof age);
                const char *cells[] = { str(f, "namespace"), str(f, "name"), str(f, "latestRevision"),
                                        str(spec, "runtime"), str(spec, "mode"), traffic, age };
                if (table_add(t, all_ns ? cells : cells + 1) < 0)
                        return CLI_EXIT_ERROR;
        }
        if (json_array_size(items) == 0) {
                fprintf(stderr, "No functions in %s%s.\n", all_ns ? "any namespace" : "namespace ",
                        all_ns ? "" : c->namespace_);
                return CLI_EXIT_OK;
        }
        return table_print(t, stdout, output_use_bold(stdout)) < 0 ? CLI_EXIT_ERROR : CLI_EXIT_OK;
}

int list_main(Cli *c, const VerbArgs *a) {
        char path[PATH_BUF];
        json_t *all = NULL;
        if (cli_path(c, path, sizeof path, a->all_namespaces ? "*" : c->namespace_, "/v1/functions") < 0)
                return CLI_EXIT_USAGE;
        int r = cli_get_all(c, NULL, path, &all);
        if (r != 0)
                return r;
        r = c->output == OUTPUT_TABLE ? list_print(c, json_object_get(all, "items"), a->all_namespaces)
                                      : (output_value(stdout, c->output, all) < 0 ? CLI_EXIT_ERROR : 0);
        json_decref(all);
        return r;
}

/* ---- describe ----------------------------------------------------------- */

static void kv(const char *label, const char *value) {
        char shown[TABLE_CELL_MAX];
        printf("%-18s %s\n", label, output_sanitize(value && *value ? value : "-", shown, sizeof shown));
}

static uint64_t uint_of(json_t *o, const char *key) {
        json_int_t v = json_integer_value(json_object_get(o, key));
        return v > 0 ? (uint64_t) v : 0;
}

static void describe_limits(json_t *l) {
        char mem[32], tmo[32], cpu[32], tmp[32], out[32], line[256];
        format_bytes(uint_of(l, "memoryBytes"), mem, sizeof mem);
        format_ms(uint_of(l, "timeoutMs"), tmo, sizeof tmo);
        format_cpu(uint_of(l, "cpuMillis"), cpu, sizeof cpu);
        format_bytes(uint_of(l, "tmpBytes"), tmp, sizeof tmp);
        format_bytes(uint_of(l, "outputBytes"), out, sizeof out);
        snprintf(line, sizeof line, "memory %s, timeout %s, cpu %s, pids %" PRIu64 ", tmp %s, output %s",
                 mem, tmo, cpu, uint_of(l, "pids"), tmp, out);
        kv("Limits:", l ? line : NULL);
}

static void describe_scale(json_t *s) {
        char after[32], line[256];
        format_ms(uint_of(s, "scaleToZeroAfterMs"), after, sizeof after);
        snprintf(line, sizeof line, "min %" PRIu64 ", max %" PRIu64 ", initial %" PRIu64 ", target %" PRIu64
                 ", scale to zero after %s", uint_of(s, "min"), uint_of(s, "max"), uint_of(s, "initial"),
                 uint_of(s, "target"), after);
        kv("Scale:", s ? line : NULL);
}

/* "K=V, K=V" of a JSON object of strings. */
static void pairs(json_t *o, char *buf, size_t size) {
        const char *k;
        json_t *v;
        size_t off = 0;
        buf[0] = 0;
        json_object_foreach(o, k, v) {
                const char *s = json_string_value(v);
                int n = snprintf(buf + off, size - off, "%s%s=%s", off ? ", " : "", k, s ? s : "?");
                if (n < 0 || (size_t) n >= size - off)
                        break;
                off += (size_t) n;
        }
}

/* "cuda (accelerator=cuda), rocm (accelerator=rocm)" */
static void variants(json_t *list, char *buf, size_t size) {
        size_t i, off = 0;
        json_t *v;
        buf[0] = 0;
        json_array_foreach(list, i, v) {
                char sel[256];
                pairs(json_object_get(v, "nodeSelector"), sel, sizeof sel);
                int n = snprintf(buf + off, size - off, "%s%s (%s)", off ? ", " : "",
                                 str(v, "name") ? str(v, "name") : "?", sel[0] ? sel : "any node");
                if (n < 0 || (size_t) n >= size - off)
                        break;
                off += (size_t) n;
        }
}

int cli_print_traffic(json_t *traffic) {
        _cleanup_table_ Table *t = table_new(4, (const char *[]) { "REVISION", "PERCENT", "TAG", "LATEST" });
        size_t i;
        json_t *e;
        if (!t)
                return -ENOMEM;
        json_array_foreach(traffic, i, e) {
                char pct[32];
                snprintf(pct, sizeof pct, "%" JSON_INTEGER_FORMAT "%%", json_integer_value(json_object_get(e, "percent")));
                bool latest = json_is_true(json_object_get(e, "latestRevision"));
                if (table_row(t, str(e, "revision"), pct, str(e, "tag"), latest ? "yes" : "") < 0)
                        return -ENOMEM;
        }
        return table_print(t, stdout, output_use_bold(stdout));
}

/* ---- describe: what the platform does with the function ---------------- */

static const char *int_cell(json_t *v, char *buf, size_t size) {
        if (!json_is_integer(v))
                return NULL;
        snprintf(buf, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return buf;
}

/* One row per revision (newest first): what the autoscaler wants, what
 * runs, the load the activators report, and why no node can take it. */
static int status_revisions(json_t *revs) {
        _cleanup_table_ Table *t = table_new(9, (const char *[]) { "REVISION", "DESIRED", "READY", "STARTING",
                                                                   "DRAINING", "INFLIGHT", "QUEUED", "PANIC",
                                                                   "UNSCHEDULABLE" });
        size_t i;
        json_t *r;
        if (!t)
                return -ENOMEM;
        json_array_foreach(revs, i, r) {
                char d[24], rd[24], st[24], dr[24], in[24], q[24];
                json_t *panic = json_object_get(r, "panic");
                if (table_row(t, str(r, "revision"), int_cell(json_object_get(r, "desired"), d, sizeof d),
                              int_cell(json_object_get(r, "ready"), rd, sizeof rd),
                              int_cell(json_object_get(r, "starting"), st, sizeof st),
                              int_cell(json_object_get(r, "draining"), dr, sizeof dr),
                              int_cell(json_object_get(r, "inflight"), in, sizeof in),
                              int_cell(json_object_get(r, "queued"), q, sizeof q),
                              json_is_boolean(panic) ? (json_is_true(panic) ? "yes" : "no") : NULL,
                              str(r, "unschedulable")) < 0)
                        return -ENOMEM;
        }
        return table_print(t, stdout, output_use_bold(stdout));
}

/* Every revision's instances: ID NODE STATE REASON INFLIGHT. */
static int status_instances(json_t *revs) {
        _cleanup_table_ Table *t = table_new(5, (const char *[]) { "INSTANCE", "NODE", "STATE", "REASON", "INFLIGHT" });
        size_t i, j, n = 0;
        json_t *r, *in;
        if (!t)
                return -ENOMEM;
        json_array_foreach(revs, i, r)
                json_array_foreach(json_object_get(r, "instances"), j, in) {
                        char f[24];
                        if (table_row(t, str(in, "id"), str(in, "node"), str(in, "state"), str(in, "reason"),
                                      int_cell(json_object_get(in, "inflight"), f, sizeof f)) < 0)
                                return -ENOMEM;
                        n++;
                }
        if (n)
                printf("\nInstances:\n");
        return n ? table_print(t, stdout, output_use_bold(stdout)) : 0;
}

static int cmp_decision(const void *a, const void *b) {
        const char *x = str(*(json_t *const *) a, "at"), *y = str(*(json_t *const *) b, "at");
        return strcmp(x ? x : "", y ? y : "");
}

#define DECISIONS_SHOWN 20

/* The revisions' recent scaling decisions merged by time, the last
 * DECISIONS_SHOWN: AGE REVISION DESIRED READY REASON. */
static int status_decisions(json_t *revs) {
        _cleanup_table_ Table *t = table_new(5, (const char *[]) { "AGE", "REVISION", "DESIRED", "READY", "REASON" });
        _cleanup_free_ json_t **all = NULL;
        size_t i, j, n = 0, cap = 0;
        json_t *r, *d;
        time_t now = time(NULL);
        if (!t)
                return -ENOMEM;
        json_array_foreach(revs, i, r)
                cap += json_array_size(json_object_get(r, "decisions"));
        if (cap == 0 || !(all = calloc(cap, sizeof *all)))
                return cap == 0 ? 0 : -ENOMEM;
        json_array_foreach(revs, i, r)
                json_array_foreach(json_object_get(r, "decisions"), j, d)
                        if (n < cap && json_object_set(d, "revision", json_object_get(r, "revision")) == 0)
                                all[n++] = d;
        qsort(all, n, sizeof *all, cmp_decision);
        printf("\nScaling decisions:\n");
        for (i = n > DECISIONS_SHOWN ? n - DECISIONS_SHOWN : 0; i < n; i++) {
                char age[64], ds[24], rd[24];
                format_age(str(all[i], "at"), now, age, sizeof age);
                if (table_row(t, age, str(all[i], "revision"), int_cell(json_object_get(all[i], "desired"), ds, sizeof ds),
                              int_cell(json_object_get(all[i], "ready"), rd, sizeof rd), str(all[i], "reason")) < 0)
                        return -ENOMEM;
        }
        return table_print(t, stdout, output_use_bold(stdout));
}

/* The controller's "status" object, when it sent one. */
static int describe_status(json_t *st) {
        json_t *revs = json_object_get(st, "revisions");
        if (!json_array_size(revs))
                return 0;
        printf("\nRevisions:\n");
        if (status_revisions(revs) < 0)
                return -ENOMEM;
        return status_instances(revs) < 0 || status_decisions(revs) < 0 ? -ENOMEM : 0;
}

static int describe_print(json_t *f) {
        json_t *spec = json_object_get(f, "spec");
        char buf[2048], age[64];
        kv("Name:", str(f, "name"));
        kv("Namespace:", str(f, "namespace"));
        kv("Latest revision:", str(f, "latestRevision"));
        snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT, json_integer_value(json_object_get(f, "resourceVersion")));
        kv("Resource version:", buf);
        format_age(str(f, "createdAt"), time(NULL), age, sizeof age);
        snprintf(buf, sizeof buf, "%s (%s ago)", str(f, "createdAt") ? str(f, "createdAt") : "-", age);
        kv("Created:", buf);
        kv("Updated:", str(f, "updatedAt"));
        kv("Runtime:", str(spec, "runtime"));
        kv("Mode:", str(spec, "mode"));
        if (str(spec, "entrypoint"))
                kv("Entrypoint:", str(spec, "entrypoint"));
        describe_limits(json_object_get(spec, "limits"));
        describe_scale(json_object_get(spec, "scale"));
        pairs(json_object_get(spec, "env"), buf, sizeof buf);
        kv("Env:", buf);
        pairs(json_object_get(spec, "nodeSelector"), buf, sizeof buf);
        kv("Node selector:", buf);
        variants(json_object_get(spec, "variants"), buf, sizeof buf);
        if (buf[0])
                kv("Variants:", buf);
        printf("\nTraffic:\n");
        if (cli_print_traffic(json_object_get(f, "traffic")) < 0)
                return CLI_EXIT_ERROR;
        return describe_status(json_object_get(f, "status")) < 0 ? CLI_EXIT_ERROR : CLI_EXIT_OK;
}

static int get_function(Cli *c, const char *name, json_t **ret) {
        char path[PATH_BUF];
        if (cli_path(c, path, sizeof path, c->namespace_, "/v1/functions/%s", name) < 0)
                return CLI_EXIT_USAGE;
        return cli_call(c, name, "GET", path, NULL, ret);
}

int describe_main(Cli *c, const VerbArgs *a) {
        const char *name = a->pos[0];
        json_t *f = NULL;
        if (!cli_check_name(c, "function", name))
                return CLI_EXIT_USAGE;
        int r = get_function(c, name, &f);
        if (r != 0)
                return r;
        r = c->output == OUTPUT_TABLE ? describe_print(f)
                                      : (output_value(stdout, c->output, f) < 0 ? CLI_EXIT_ERROR : 0);
        json_decref(f);
        return r;
}

int delete_main(Cli *c, const VerbArgs *a) {
        const char *name = a->pos[0];
        char path[PATH_BUF];
        json_t *resp = NULL;
        if (!cli_check_name(c, "function", name))
                return CLI_EXIT_USAGE;
        if (cli_path(c, path, sizeof path, c->namespace_, "/v1/functions/%s", name) < 0)
                return CLI_EXIT_USAGE;
        int r = cli_call(c, name, "DELETE", path, NULL, &resp);
        if (r == 0 && c->output != OUTPUT_TABLE)
                r = output_value(stdout, c->output, resp) < 0 ? CLI_EXIT_ERROR : 0;
        else if (r == 0)
                printf("%s: deleted\n", name);
        json_decref(resp);
        return r;
}

/* ---- revisions ---------------------------------------------------------- */

/* The traffic entries that point at rev: "90%" and "stable, canary". */
static void revision_traffic(json_t *traffic, const char *rev, char *pct, size_t psize, char *tags, size_t tsize) {
        json_int_t sum = 0;
        size_t i, off = 0;
        json_t *e;
        bool any = false;
        tags[0] = 0;
        json_array_foreach(traffic, i, e) {
                const char *r = str(e, "revision"), *tag = str(e, "tag");
                if (!r || strcmp(r, rev) != 0)
                        continue;
                any = true;
                sum += json_integer_value(json_object_get(e, "percent"));
                int n = tag ? snprintf(tags + off, tsize - off, "%s%s", off ? ", " : "", tag) : 0;
                if (n > 0 && (size_t) n < tsize - off)
                        off += (size_t) n;
        }
        snprintf(pct, psize, any ? "%" JSON_INTEGER_FORMAT "%%" : "-", sum);
}

static int revisions_print(json_t *items, json_t *traffic) {
        _cleanup_table_ Table *t = table_new(5, (const char *[]) { "REVISION", "CODE", "TRAFFIC", "TAGS", "AGE" });
        time_t now = time(NULL);
        size_t i;
        json_t *rv;
        if (!t)
                return CLI_EXIT_ERROR;
        json_array_foreach(items, i, rv) {
                char code[24] = "-", pct[16], tags[256], age[64];
                const char *name = str(rv, "name"), *digest = str(rv, "codeDigest");
                if (digest && strncmp(digest, "sha256:", 7) == 0)
                        snprintf(code, sizeof code, "%.12s", digest + 7);
                revision_traffic(traffic, name ? name : "", pct, sizeof pct, tags, sizeof tags);
                format_age(str(rv, "createdAt"), now, age, sizeof age);
                if (table_row(t, name, code, pct, tags[0] ? tags : NULL, age) < 0)
                        return CLI_EXIT_ERROR;
        }
        return table_print(t, stdout, output_use_bold(stdout)) < 0 ? CLI_EXIT_ERROR : CLI_EXIT_OK;
}

int revisions_main(Cli *c, const VerbArgs *a) {
        const char *name = a->pos[0];
        char path[PATH_BUF];
        json_t *all = NULL, *f = NULL;
        if (!cli_check_name(c, "function", name))
                return CLI_EXIT_USAGE;
        if (cli_path(c, path, sizeof path, c->namespace_, "/v1/functions/%s/revisions", name) < 0)
                return CLI_EXIT_USAGE;
        int r = cli_get_all(c, name, path, &all);
        if (r == 0 && c->output != OUTPUT_TABLE)
                r = output_value(stdout, c->output, all) < 0 ? CLI_EXIT_ERROR : 0;
        else if (r == 0 && (r = get_function(c, name, &f)) == 0)
                r = revisions_print(json_object_get(all, "items"), json_object_get(f, "traffic"));
        json_decref(all);
        json_decref(f);
        return r;
}
