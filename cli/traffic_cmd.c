/* cli/traffic_cmd.c: `fnbox traffic NAME [REV=PCT|@latest=PCT]... [--tag
 * REV=TAG]...`: show the split, or replace it. The new split is built from
 * the current one (tags stay with their revision), sent with the
 * resourceVersion it was built from, and rebuilt on a 409. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "lib/manifest.h"
#include "lib/quantity.h"
#include "lib/util.h"

#define PATH_BUF 1024
#define REV_BUF 96

/* REV as typed: "@latest", a number ("2", "00002") or a revision name. */
static int resolve_rev(const char *fn, const char *rev, size_t len, char *out, size_t size) {
        char tmp[REV_BUF];
        uint64_t n;
        if (len == 0 || len >= sizeof tmp)
                return -EINVAL;
        memcpy(tmp, rev, len);
        tmp[len] = 0;
        if (strcmp(tmp, "@latest") == 0)
                return snprintf(out, size, "@latest") < (int) size ? 0 : -EINVAL;
        if (strspn(tmp, "0123456789") == len) {
                if (len > 5 || quantity_parse_uint(tmp, &n) < 0 || n == 0)
                        return -EINVAL;
                return snprintf(out, size, "%s-%05u", fn, (unsigned) n) < (int) size ? 0 : -EINVAL;
        }
        if (!manifest_name_valid(tmp))
                return -EINVAL;
        return snprintf(out, size, "%s", tmp) < (int) size ? 0 : -EINVAL;
}

static const char *entry_key(json_t *e) {
        return json_is_true(json_object_get(e, "latestRevision")) ? "@latest"
                                                                  : json_string_value(json_object_get(e, "revision"));
}

static json_t *find_entry(json_t *traffic, const char *key) {
        size_t i;
        json_t *e;
        json_array_foreach(traffic, i, e) {
                const char *k = entry_key(e);
                if (k && strcmp(k, key) == 0)
                        return e;
        }
        return NULL;
}

static json_t *new_entry(const char *key, json_int_t percent) {
        if (strcmp(key, "@latest") == 0)
                return json_pack("{s:b,s:I}", "latestRevision", 1, "percent", percent);
        return json_pack("{s:s,s:I}", "revision", key, "percent", percent);
}

/* One REV=PCT into *ret (appended to split). */
static int parse_assignment(Cli *c, const char *fn, const char *arg, json_t *split, json_int_t *sum) {
        const char *eq = strrchr(arg, '=');
        char key[REV_BUF], pct[16];
        uint64_t p;
        if (!eq || resolve_rev(fn, arg, (size_t) (eq - arg), key, sizeof key) < 0) {
                fprintf(stderr, "%s: '%s': expected REV=PERCENT, REV a revision name, its number or @latest\n",
                        c->prog, arg);
                return -EINVAL;
        }
        snprintf(pct, sizeof pct, "%s", eq + 1);
        if (*pct && pct[strlen(pct) - 1] == '%')
                pct[strlen(pct) - 1] = 0;
        if (quantity_parse_uint(pct, &p) < 0 || p > 100) {
                fprintf(stderr, "%s: '%s': the percentage must be a whole number from 0 to 100\n", c->prog, arg);
                return -EINVAL;
        }
        if (find_entry(split, key)) {
                fprintf(stderr, "%s: %s is given twice\n", c->prog, key);
                return -EINVAL;
        }
        *sum += (json_int_t) p;
        return json_array_append_new(split, new_entry(key, (json_int_t) p));
}

/* The REV=PCT arguments as a traffic list, or NULL (none given); -EINVAL. */
static int parse_split(Cli *c, const VerbArgs *a, json_t **ret) {
        json_int_t sum = 0;
        *ret = NULL;
        if (a->n_pos < 2)
                return 0;
        json_t *split = json_array();
        for (size_t i = 1; split && i < a->n_pos; i++)
                if (parse_assignment(c, a->pos[0], a->pos[i], split, &sum) < 0)
                        return json_decref(split), -EINVAL;
        if (split && sum != 100) {
                fprintf(stderr, "%s: the percentages sum to %lld, not 100\n", c->prog, (long long) sum);
                return json_decref(split), -EINVAL;
        }
        *ret = split;
        return split ? 0 : -ENOMEM;
}

/* Check every --tag REV=TAG before talking to the server. */
static int check_tags(Cli *c, const VerbArgs *a) {
        for (size_t i = 0; i < a->n_tags; i++) {
                const char *eq = strrchr(a->tags[i], '=');
                char key[REV_BUF];
                if (resolve_rev(a->pos[0], a->tags[i], (size_t) (eq - a->tags[i]), key, sizeof key) < 0 ||
                    (eq[1] && !manifest_name_valid(eq + 1))) {
                        fprintf(stderr, "%s: --tag '%s': expected REV=TAG, TAG a DNS-1123 label (or empty to remove it)\n",
                                c->prog, a->tags[i]);
                        return -EINVAL;
                }
        }
        return 0;
}

/* The split to send: the assignments (or the current split), with the
 * current tags carried over and --tag applied. */
static int build_split(Cli *c, const VerbArgs *a, json_t *assign, json_t *current, json_t **ret) {
        json_t *split = json_array(), *e;
        size_t i;
        json_array_foreach(assign ? assign : current, i, e) {
                const char *key = entry_key(e);
                json_t *old = find_entry(current, key ? key : ""), *n = new_entry(key ? key : "?",
                                          json_integer_value(json_object_get(e, "percent")));
                if (old && json_is_string(json_object_get(old, "tag")))
                        json_object_set(n, "tag", json_object_get(old, "tag"));
                json_array_append_new(split, n);
        }
        for (i = 0; i < a->n_tags; i++) {
                const char *eq = strrchr(a->tags[i], '=');
                char key[REV_BUF];
                resolve_rev(a->pos[0], a->tags[i], (size_t) (eq - a->tags[i]), key, sizeof key);
                json_t *t = find_entry(split, key);
                if (!t) {
                        fprintf(stderr, "%s: --tag %s: %s is not in the traffic split\n", c->prog, a->tags[i], key);
                        return json_decref(split), CLI_EXIT_USAGE;
                }
                if (eq[1])
                        json_object_set_new(t, "tag", json_string(eq + 1));
                else
                        json_object_del(t, "tag");
        }
        *ret = split;
        return 0;
}

static int show(Cli *c, json_t *resp) {
        if (c->output != OUTPUT_TABLE)
                return output_value(stdout, c->output, resp) < 0 ? CLI_EXIT_ERROR : 0;
        return cli_print_traffic(json_object_get(resp, "traffic")) < 0 ? CLI_EXIT_ERROR : 0;
}

/* One read-modify-write round; CLI_EXIT_CONFLICT when someone was faster. */
static int update_once(Cli *c, const VerbArgs *a, const char *path, json_t *assign, json_t **ret) {
        json_t *cur = NULL, *split = NULL;
        int r = cli_call(c, a->pos[0], "GET", path, NULL, &cur);
        if (r == 0)
                r = build_split(c, a, assign, json_object_get(cur, "traffic"), &split);
        if (r == 0) {
                json_t *body = json_pack("{s:o,s:O}", "traffic", split, "resourceVersion",
                                         json_object_get(cur, "resourceVersion"));
                HttpResponse resp = { 0 };
                int h = body ? http_request_json(c->http, "PUT", path, body, &resp) : -ENOMEM;
                if (h == 0 && resp.status == 409)
                        r = CLI_EXIT_CONFLICT;
                else if (h < 0 || resp.status < 200 || resp.status > 299 || !resp.json)
                        r = cli_report(c, a->pos[0], h, &resp);
                else
                        *ret = TAKE_PTR(resp.json);
                http_response_done(&resp);
                json_decref(body);
        }
        json_decref(cur);
        return r;
}

int traffic_main(Cli *c, const VerbArgs *a) {
        char path[PATH_BUF];
        json_t *assign = NULL, *resp = NULL;
        if (!cli_check_name(c, "function", a->pos[0]) || check_tags(c, a) < 0 || parse_split(c, a, &assign) < 0)
                return CLI_EXIT_USAGE;
        if (cli_path(c, path, sizeof path, c->namespace_, "/v1/functions/%s/traffic", a->pos[0]) < 0)
                return json_decref(assign), CLI_EXIT_USAGE;
        int r;
        if (!assign && a->n_tags == 0)
                r = cli_call(c, a->pos[0], "GET", path, NULL, &resp);
        else
                for (unsigned attempt = 0;; attempt++) {
                        r = update_once(c, a, path, assign, &resp);
                        if (r != CLI_EXIT_CONFLICT || attempt == CLI_CONFLICT_RETRIES)
                                break;
                        cli_backoff(attempt);
                }
        if (r == CLI_EXIT_CONFLICT)
                fprintf(stderr, "%s: %s: the traffic kept changing under us (409 conflict %d times); try again\n",
                        c->prog, a->pos[0], CLI_CONFLICT_RETRIES + 1);
        if (r == 0)
                r = show(c, resp);
        json_decref(assign);
        json_decref(resp);
        return r;
}
