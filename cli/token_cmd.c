/* cli/token_cmd.c: `fnbox token create|list|revoke`, the admin verbs for
 * tokens. A created token is printed once, as the API returns it once;
 * lists never show secrets. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "lib/manifest.h"
#include "lib/util.h"

#define PATH_BUF 1024
#define NAMESPACES_MAX 64

static const char *str(json_t *o, const char *key) {
        return json_string_value(json_object_get(o, key));
}

/* "a,b" -> ["a", "b"]; each a DNS-1123 label, or "*" for every namespace. */
static int parse_namespaces(Cli *c, const char *list, json_t **ret) {
        json_t *a = json_array();
        const char *p = list;
        while (a && p && *p) {
                const char *comma = strchr(p, ',');
                size_t len = comma ? (size_t) (comma - p) : strlen(p);
                char ns[MANIFEST_NAME_MAX + 2];
                if (len == 0 || len > MANIFEST_NAME_MAX || json_array_size(a) >= NAMESPACES_MAX)
                        break;
                snprintf(ns, sizeof ns, "%.*s", (int) len, p);
                if (!manifest_name_valid(ns) && strcmp(ns, "*") != 0)
                        break;
                json_array_append_new(a, json_string(ns));
                p = comma ? comma + 1 : NULL;
        }
        if (!a || (p && *p) || (p && p > list && p[-1] == ',')) {
                fprintf(stderr, "%s: --namespace '%s': expected NS[,NS...], each a DNS-1123 label\n", c->prog, list);
                json_decref(a);
                return -EINVAL;
        }
        *ret = a;
        return 0;
}

static void join(json_t *arr, char *buf, size_t size) {
        size_t i, off = 0;
        json_t *v;
        buf[0] = 0;
        json_array_foreach(arr, i, v) {
                int n = snprintf(buf + off, size - off, "%s%s", off ? "," : "", json_string_value(v) ? json_string_value(v) : "?");
                if (n < 0 || (size_t) n >= size - off)
                        break;
                off += (size_t) n;
        }
}

static bool role_valid(const char *r) {
        return r && (strcmp(r, "admin") == 0 || strcmp(r, "developer") == 0 || strcmp(r, "invoker") == 0);
}

int token_create_main(Cli *c, const VerbArgs *a) {
        json_t *ns = NULL, *resp = NULL;
        char shown[1024];
        if (!role_valid(a->role)) {
                fprintf(stderr, "%s: --role must be admin, developer or invoker\n", c->prog);
                return CLI_EXIT_USAGE;
        }
        if (!a->namespaces && strcmp(a->role, "admin") != 0) {
                fprintf(stderr, "%s: a %s token needs --namespace NS[,NS]\n", c->prog, a->role);
                return CLI_EXIT_USAGE;
        }
        if (parse_namespaces(c, a->namespaces ? a->namespaces : "", &ns) < 0)
                return CLI_EXIT_USAGE;
        json_t *body = json_pack("{s:s,s:o}", "role", a->role, "namespaces", ns);
        if (body && a->description)
                json_object_set_new(body, "description", json_string(a->description));
        int r = body ? cli_call(c, NULL, "POST", "/v1/tokens", body, &resp) : CLI_EXIT_ERROR;
        json_decref(body);
        if (r == 0 && c->output != OUTPUT_TABLE)
                r = output_value(stdout, c->output, resp) < 0 ? CLI_EXIT_ERROR : 0;
        else if (r == 0) {
                join(json_object_get(resp, "namespaces"), shown, sizeof shown);
                printf("id:          %s\nrole:        %s\nnamespaces:  %s\n", str(resp, "id") ? str(resp, "id") : "-",
                       str(resp, "role") ? str(resp, "role") : a->role, shown[0] ? shown : "-");
                printf("token:       %s\n", str(resp, "token") ? str(resp, "token") : "-");
                fprintf(stderr, "The token is shown only now; store it safely.\n");
        }
        json_decref(resp);
        return r;
}

static int token_table(json_t *items) {
        _cleanup_table_ Table *t = table_new(6, (const char *[]) { "ID", "ROLE", "NAMESPACES", "DESCRIPTION", "AGE", "REVOKED" });
        time_t now = time(NULL);
        size_t i;
        json_t *tok;
        if (!t)
                return CLI_EXIT_ERROR;
        json_array_foreach(items, i, tok) {
                char ns[512], age[64];
                join(json_object_get(tok, "namespaces"), ns, sizeof ns);
                format_age(str(tok, "createdAt"), now, age, sizeof age);
                if (table_row(t, str(tok, "id"), str(tok, "role"), ns[0] ? ns : "*", str(tok, "description"), age,
                              json_is_true(json_object_get(tok, "revoked")) ? "yes" : "no") < 0)
                        return CLI_EXIT_ERROR;
        }
        return table_print(t, stdout, output_use_bold(stdout)) < 0 ? CLI_EXIT_ERROR : 0;
}

int token_list_main(Cli *c, const VerbArgs *a) {
        (void) a;
        json_t *all = NULL;
        int r = cli_get_all(c, NULL, "/v1/tokens", &all);
        if (r == 0)
                r = c->output == OUTPUT_TABLE ? token_table(json_object_get(all, "items"))
                                              : (output_value(stdout, c->output, all) < 0 ? CLI_EXIT_ERROR : 0);
        json_decref(all);
        return r;
}

int token_revoke_main(Cli *c, const VerbArgs *a) {
        char path[PATH_BUF];
        json_t *resp = NULL;
        _cleanup_free_ char *id = http_escape(a->pos[0]);
        if (!id || !*a->pos[0] || snprintf(path, sizeof path, "/v1/tokens/%s", id) >= (int) sizeof path) {
                fprintf(stderr, "%s: '%s' is not a token id\n", c->prog, a->pos[0]);
                return CLI_EXIT_USAGE;
        }
        int r = cli_call(c, a->pos[0], "DELETE", path, NULL, &resp);
        if (r == 0 && c->output != OUTPUT_TABLE)
                r = output_value(stdout, c->output, resp) < 0 ? CLI_EXIT_ERROR : 0;
        else if (r == 0)
                printf("token %s revoked\n", a->pos[0]);
        json_decref(resp);
        return r;
}
