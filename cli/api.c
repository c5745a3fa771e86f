/* cli/api.c: the CLI's side of the REST API conventions in docs/api.md:
 * building paths with the namespace query, turning error answers and
 * transport failures into one line and an exit code, and following list
 * pagination. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "lib/manifest.h"
#include "lib/util.h"

#define PATH_BUF        4096
#define PAGES_MAX       1000
#define PAGE_LIMIT      1000    /* items asked for per page: the API's most */
#define MESSAGE_SHOWN   512

int cli_path(Cli *c, char *buf, size_t size, const char *ns, const char *fmt, ...) {
        (void) c;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(buf, size, fmt, ap);
        va_end(ap);
        if (n < 0 || (size_t) n >= size)
                return -ENAMETOOLONG;
        if (!ns)
                return 0;
        _cleanup_free_ char *e = http_escape(ns);
        if (!e)
                return -ENOMEM;
        int m = snprintf(buf + n, size - (size_t) n, "?namespace=%s", e);
        return m < 0 || (size_t) m >= size - (size_t) n ? -ENAMETOOLONG : 0;
}

bool cli_check_name(Cli *c, const char *what, const char *name) {
        char shown[96];
        if (manifest_name_valid(name))
                return true;
        fprintf(stderr, "%s: '%s' is not a valid %s name (expected a DNS-1123 label: a-z, 0-9 and '-', at most 63)\n",
                c->prog, output_sanitize(name, shown, sizeof shown), what);
        return false;
}

static int report_transport(Cli *c, const char *what, int r) {
        const char *why = c->http ? http_error(c->http) : "";
        const char *sep = what ? ": " : "";
        what = what ? what : "";
        if (r == -EFBIG || r == -ENOMEM) {
                fprintf(stderr, "%s: %s%s%s\n", c->prog, what, sep, r == -EFBIG ? why : "out of memory");
                return CLI_EXIT_ERROR;
        }
        if (r == -ETIMEDOUT)
                fprintf(stderr, "%s: %s%sno answer from %s within the time limit (%s); check --url or raise --timeout\n",
                        c->prog, what, sep, c->url, why);
        else
                fprintf(stderr, "%s: %s%scannot reach the server at %s (%s); is it running? "
                        "Start it with 'fnbox up', or check --url / FNBOX_URL\n", c->prog, what, sep, c->url, why);
        return CLI_EXIT_UNREACHABLE;
}

static int exit_code_for(long status, const char *type) {
        switch (status) {
        case 401: return CLI_EXIT_UNAUTHENTICATED;
        case 403: return CLI_EXIT_FORBIDDEN;
        case 404: return CLI_EXIT_NOT_FOUND;
        case 409: return CLI_EXIT_CONFLICT;
        case 422: return type && strcmp(type, "invalid_manifest") == 0 ? CLI_EXIT_INVALID : CLI_EXIT_ERROR;
        default: return CLI_EXIT_ERROR;
        }
}

static const char *explain(Cli *c, long status) {
        if (status == 401)
                return c->token ? "the token is missing, malformed, unknown or revoked (use --token or FNBOX_TOKEN)"
                                : "no token was given (use --token or FNBOX_TOKEN, or a config file)";
        if (status == 403)
                return "the token is valid but its role or namespaces do not allow this";
        return NULL;
}

int cli_report(Cli *c, const char *what, int r, const HttpResponse *resp) {
        if (r < 0)
                return report_transport(c, what, r);
        json_t *err = json_object_get(resp->json, "error");
        const char *type = json_string_value(json_object_get(err, "type"));
        const char *msg = json_string_value(json_object_get(err, "message"));
        const char *field = json_string_value(json_object_get(err, "field"));
        const char *why = explain(c, resp->status);
        char m[MESSAGE_SHOWN], t[64], f[128];
        if (!msg && !type)
                msg = resp->body && resp->body[0] ? resp->body : "(no message)";
        fprintf(stderr, "%s: %s%s%ld%s%s: %s%s%s%s%s%s%s%s\n", c->prog, what ? what : "", what ? ": " : "",
                resp->status, type ? " " : "", type ? output_sanitize(type, t, sizeof t) : "",
                output_sanitize(msg ? msg : "", m, sizeof m),
                field && *field ? " (field " : "", field && *field ? output_sanitize(field, f, sizeof f) : "",
                field && *field ? ")" : "", why ? "; " : "", why ? why : "",
                resp->status == 401 && c->token_from ? "; this token came from " : "",
                resp->status == 401 && c->token_from ? c->token_from : "");
        return exit_code_for(resp->status, type);
}

int cli_call(Cli *c, const char *what, const char *method, const char *path, json_t *body, json_t **ret) {
        HttpResponse resp = { 0 };
        int r = http_request_json(c->http, method, path, body, &resp);
        if (r < 0 || resp.status < 200 || resp.status > 299) {
                int code = cli_report(c, what, r, &resp);
                http_response_done(&resp);
                return code;
        }
        if (ret && !resp.json) {
                fprintf(stderr, "%s: %s%sthe server's answer is not JSON (status %ld)\n", c->prog,
                        what ? what : "", what ? ": " : "", resp.status);
                http_response_done(&resp);
                return CLI_EXIT_ERROR;
        }
        if (ret)
                *ret = TAKE_PTR(resp.json);
        http_response_done(&resp);
        return 0;
}

/* Append one page's items to all; returns the next cursor or NULL. */
static int page_merge(Cli *c, const char *what, json_t *page, json_t *all, const char **next) {
        json_t *items = json_object_get(page, "items");
        if (!json_is_array(items)) {
                fprintf(stderr, "%s: %s%sthe server's answer has no \"items\" list\n", c->prog,
                        what ? what : "", what ? ": " : "");
                return CLI_EXIT_ERROR;
        }
        if (json_array_size(all) + json_array_size(items) > TABLE_ROWS_MAX) {
                fprintf(stderr, "%s: %s%smore than %d items; narrow the request\n", c->prog,
                        what ? what : "", what ? ": " : "", TABLE_ROWS_MAX);
                return CLI_EXIT_ERROR;
        }
        if (json_array_extend(all, items) < 0)
                return CLI_EXIT_ERROR;
        *next = json_string_value(json_object_get(page, "next"));
        return 0;
}

/* One page: GET path with limit and after=cursor, merged into all. */
static int page_get(Cli *c, const char *what, const char *path, const char *cursor, json_t *all, char **ret_next) {
        _cleanup_free_ char *e = cursor ? http_escape(cursor) : NULL;
        char p[PATH_BUF];
        json_t *page = NULL;
        const char *next = NULL;
        int n = snprintf(p, sizeof p, "%s%slimit=%d%s%s", path, strchr(path, '?') ? "&" : "?", PAGE_LIMIT,
                         e ? "&after=" : "", e ? e : "");
        if ((cursor && !e) || n < 0 || (size_t) n >= sizeof p)
                return CLI_EXIT_ERROR;
        int code = cli_call(c, what, "GET", p, NULL, &page);
        if (code == 0)
                code = page_merge(c, what, page, all, &next);
        if (code == 0 && next && !(*ret_next = strdup(next)))
                code = CLI_EXIT_ERROR;
        json_decref(page);
        return code;
}

int cli_get_all(Cli *c, const char *what, const char *path, json_t **ret) {
        json_t *all = json_array();
        char *cursor = NULL;
        int code = all ? 0 : CLI_EXIT_ERROR;
        for (unsigned page_no = 0; code == 0; page_no++) {
                char *next = NULL;
                code = page_get(c, what, path, cursor, all, &next);
                bool stuck = next && cursor && strcmp(next, cursor) == 0;
                free(cursor);
                cursor = next;
                if (code == 0 && (stuck || page_no + 1 >= PAGES_MAX)) {
                        fprintf(stderr, "%s: %s%sthe server's pages do not end\n", c->prog,
                                what ? what : "", what ? ": " : "");
                        code = CLI_EXIT_ERROR;
                }
                if (!cursor)
                        break;
        }
        free(cursor);
        if (code == 0 && !(*ret = json_pack("{s:O}", "items", all)))
                code = CLI_EXIT_ERROR;
        json_decref(all);
        return code;
}

void cli_backoff(unsigned attempt) {
        static bool seeded;
        if (!seeded) {
                struct timespec ts;
                clock_gettime(CLOCK_MONOTONIC, &ts);
                srandom((unsigned) (ts.tv_nsec ^ getpid()));
                seeded = true;
        }
        long base_ms = 50L << (attempt < 6 ? attempt : 6);
        long ms = base_ms / 2 + random() % base_ms;
        struct timespec d = { ms / 1000, (ms % 1000) * 1000000L };
        while (nanosleep(&d, &d) < 0 && errno == EINTR)
                ;
}
