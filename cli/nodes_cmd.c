/* cli/nodes_cmd.c: `fnbox nodes`, the runtimes that registered with the
 * controller (GET /v1/nodes, admin): state, labels, capacity, instances and
 * the age of the last heartbeat; -o wide adds where each node is invoked and
 * when it registered. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "lib/util.h"

static const char *str(json_t *o, const char *key) {
        return json_string_value(json_object_get(o, key));
}

/* Labels {"accelerator": "cuda"} as "accelerator=cuda,arch=x86_64". */
static void label_pairs(json_t *o, char *buf, size_t size) {
        const char *k;
        json_t *v;
        size_t off = 0;
        buf[0] = 0;
        json_object_foreach(o, k, v) {
                _cleanup_free_ char *val = json_is_string(v) ? strdup(json_string_value(v))
                                                             : json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
                int n = snprintf(buf + off, size - off, "%s%s=%s", off ? "," : "", k, val ? val : "?");
                if (n < 0 || (size_t) n >= size - off)
                        break;
                off += (size_t) n;
        }
}

/* Capacity {"cpuMillis": 2000, "memoryBytes": 25769803776, "gpus": 0} as
 * "cpu=2,memory=24Gi,gpus=0"; keys fnbox does not know stay as they are. */
static void capacity_pairs(json_t *o, char *buf, size_t size) {
        const char *k;
        json_t *v;
        size_t off = 0;
        buf[0] = 0;
        json_object_foreach(o, k, v) {
                char val[64];
                json_int_t i = json_integer_value(v);
                const char *key = k;
                if (strcmp(k, "cpuMillis") == 0 && json_is_integer(v) && i >= 0) {
                        format_cpu((uint64_t) i, val, sizeof val);
                        key = "cpu";
                } else if (strcmp(k, "memoryBytes") == 0 && json_is_integer(v) && i >= 0) {
                        format_bytes((uint64_t) i, val, sizeof val);
                        key = "memory";
                } else {
                        _cleanup_free_ char *d = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
                        snprintf(val, sizeof val, "%s", json_is_string(v) ? json_string_value(v) : d ? d : "?");
                }
                int n = snprintf(buf + off, size - off, "%s%s=%s", off ? "," : "", key, val);
                if (n < 0 || (size_t) n >= size - off)
                        break;
                off += (size_t) n;
        }
}

/* "instances" (a count; a list of instances with a state in older answers)
 * and "readyInstances": "3", or "3 (2 ready)". NULL when the node says
 * nothing (a controller that has not heard from it since it started). */
static const char *instances_cell(json_t *node, char *buf, size_t size) {
        json_t *v = json_object_get(node, "instances"), *rv = json_object_get(node, "readyInstances"), *e;
        size_t i, total, ready = 0;
        if (json_is_integer(v)) {
                total = (size_t) json_integer_value(v);
                ready = json_is_integer(rv) ? (size_t) json_integer_value(rv) : total;
        } else if (json_is_array(v)) {
                total = json_array_size(v);
                json_array_foreach(v, i, e)
                        ready += str(e, "state") && strcmp(str(e, "state"), "ready") == 0;
        } else
                return NULL;
        if (ready == total)
                snprintf(buf, size, "%zu", total);
        else
                snprintf(buf, size, "%zu (%zu ready)", total, ready);
        return buf;
}

static int nodes_table(Cli *c, json_t *items) {
        static const char *const headers[] = { "NAME", "STATE", "LABELS", "CAPACITY", "INSTANCES", "HEARTBEAT",
                                               "INVOKE", "BOOT", "REGISTERED" };
        _cleanup_table_ Table *t = table_new(c->wide ? 9 : 6, headers);
        time_t now = time(NULL);
        size_t i;
        json_t *n;
        if (!t)
                return CLI_EXIT_ERROR;
        json_array_foreach(items, i, n) {
                char labels[512], cap[512], inst[64], age[64], reg[64], boot[16];
                label_pairs(json_object_get(n, "labels"), labels, sizeof labels);
                capacity_pairs(json_object_get(n, "capacity"), cap, sizeof cap);
                format_age(str(n, "heartbeatAt"), now, age, sizeof age);
                format_age(str(n, "registeredAt"), now, reg, sizeof reg);
                snprintf(boot, sizeof boot, "%.8s", str(n, "bootId") ? str(n, "bootId") : "");
                const char *cells[] = { str(n, "name"), str(n, "state"), labels[0] ? labels : NULL,
                                        cap[0] ? cap : NULL, instances_cell(n, inst, sizeof inst),
                                        str(n, "heartbeatAt") ? age : NULL, str(n, "invoke"), boot[0] ? boot : NULL,
                                        str(n, "registeredAt") ? reg : NULL };
                if (table_add(t, cells) < 0)
                        return CLI_EXIT_ERROR;
        }
        if (json_array_size(items) == 0) {
                fprintf(stderr, "No nodes have registered.\n");
                return 0;
        }
        return table_print(t, stdout, output_use_bold(stdout)) < 0 ? CLI_EXIT_ERROR : 0;
}

int nodes_main(Cli *c, const VerbArgs *a) {
        (void) a;
        json_t *all = NULL;
        int r = cli_get_all(c, NULL, "/v1/nodes", &all);
        if (r == 0)
                r = c->output == OUTPUT_TABLE ? nodes_table(c, json_object_get(all, "items"))
                                              : (output_value(stdout, c->output, all) < 0 ? CLI_EXIT_ERROR : 0);
        json_decref(all);
        return r;
}
