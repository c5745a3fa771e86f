/* cli/logs_cmd.c: `fnbox logs NAME`, the recent stderr lines of a
 * function's instances (GET /v1/functions/NAME/logs, which the controller
 * keeps from the nodes' reports), oldest first, one line each with its time
 * and instance. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "lib/util.h"

#define PATH_BUF        1024
#define LOGS_TAIL_MAX   1000
#define LOGS_TAIL_DEF   100

static const char *str(json_t *o, const char *key) {
        return json_string_value(json_object_get(o, key));
}

/* 1763700000123 -> "2025-11-21T04:40:00.123Z" */
static void format_time_ms(json_int_t ms, char *buf, size_t size) {
        time_t t = (time_t) (ms / 1000);
        struct tm tm;
        if (ms < 0 || !gmtime_r(&t, &tm) || strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
                snprintf(buf, size, "-");
                return;
        }
        size_t n = strlen(buf);
        snprintf(buf + n, size - n, ".%03dZ", (int) (ms % 1000));
}

static int logs_print(json_t *answer) {
        json_t *items = json_object_get(answer, "items"), *e;
        size_t i;
        if (!json_is_array(items)) {
                fprintf(stderr, "fnbox logs: the server's answer has no \"items\" list\n");
                return CLI_EXIT_ERROR;
        }
        json_array_foreach(items, i, e) {
                char when[48], inst[128], line[TABLE_CELL_MAX];
                if (str(e, "time"))
                        output_sanitize(str(e, "time"), when, sizeof when);
                else
                        format_time_ms(json_integer_value(json_object_get(e, "timeMs")), when, sizeof when);
                printf("%s %s %s\n", when, output_sanitize(str(e, "instance") ? str(e, "instance") : "-", inst, sizeof inst),
                       output_sanitize(str(e, "line") ? str(e, "line") : "", line, sizeof line));
        }
        json_int_t dropped = json_integer_value(json_object_get(answer, "dropped"));
        if (dropped > 0)
                fprintf(stderr, "(%" JSON_INTEGER_FORMAT " older lines are no longer kept)\n", dropped);
        return CLI_EXIT_OK;
}

int logs_main(Cli *c, const VerbArgs *a) {
        const char *name = a->pos[0];
        char path[PATH_BUF], *end = NULL;
        long tail = LOGS_TAIL_DEF;
        json_t *answer = NULL;
        if (!cli_check_name(c, "function", name))
                return CLI_EXIT_USAGE;
        if (a->tail) {
                tail = strtol(a->tail, &end, 10);
                if (!*a->tail || *end || tail < 1 || tail > LOGS_TAIL_MAX) {
                        fprintf(stderr, "%s: --tail: expected a number from 1 to %d\n", c->prog, LOGS_TAIL_MAX);
                        return CLI_EXIT_USAGE;
                }
        }
        if (cli_path(c, path, sizeof path, c->namespace_, "/v1/functions/%s/logs", name) < 0)
                return CLI_EXIT_USAGE;
        size_t n = strlen(path);
        snprintf(path + n, sizeof path - n, "&limit=%ld", tail);
        int r = cli_call(c, name, "GET", path, NULL, &answer);
        if (r != 0)
                return r;
        if (c->output != OUTPUT_TABLE)
                r = output_value(stdout, c->output, answer) < 0 ? CLI_EXIT_ERROR : 0;
        else if (json_array_size(json_object_get(answer, "items")) == 0 && json_is_array(json_object_get(answer, "items")))
                fprintf(stderr, "No log lines of %s yet.\n", name);
        else
                r = logs_print(answer);
        json_decref(answer);
        return r;
}
