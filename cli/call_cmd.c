/* cli/call_cmd.c: `fnbox call NAME`, one request to the activator
 * (/fn/NAME, /fn/NS/NAME, /fn/NAME@TAG; call_invoke() also serves `fnbox
 * skill call` at /skills/...) with the CLI's token as its bearer
 * token (unless -H gives an Authorization). The body of a 2xx answer streams
 * to stdout as it arrives; an error answer is held (bounded) so that the
 * platform's JSON error becomes one line on stderr and an exit code. With
 * --file or --output-dir the call runs in a session (cli/session_cmd.c). */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "config.h"
#include "lib/manifest.h"
#include "lib/util.h"

#define CALL_BODY_MAX           (64u << 20)     /* -d @FILE, -d @- */
#define CALL_ERROR_HELD         (64u << 10)     /* an error answer kept to parse */
#define CALL_HEADER_NAME_MAX    256
#define CALL_HEADER_LINE_MAX    8192
#define CALL_PATH_MAX           2048
#define CALL_METHOD_MAX         32
#define CALL_URL_MAX            4096
#define CALL_REQUEST_ID_MAX     128

typedef struct CallSink {
        CURL *curl;
        long status;            /* 0 until the first byte of the body */
        bool streaming;         /* writing to stdout */
        bool write_failed;      /* stdout refused a write */
        char *held;             /* an error answer, up to CALL_ERROR_HELD */
        size_t held_len;
        char request_id[CALL_REQUEST_ID_MAX];
        const char *auth_from;  /* where the token sent came from, or NULL */
} CallSink;

/* ---- the request's parts ------------------------------------------------ */

/* Everything from fd, up to CALL_BODY_MAX bytes. */
static int read_all(int fd, char **ret, size_t *ret_len) {
        size_t cap = 64 << 10, len = 0;
        _cleanup_free_ char *buf = malloc(cap);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                if (len == cap) {
                        if (cap >= CALL_BODY_MAX + 1u)
                                return -EFBIG;
                        cap = cap * 2 > CALL_BODY_MAX + 1u ? CALL_BODY_MAX + 1u : cap * 2;
                        char *b = realloc(buf, cap);
                        if (!b)
                                return -ENOMEM;
                        buf = b;
                }
                ssize_t n = read(fd, buf + len, cap - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return negative_errno();
                if (n == 0)
                        break;
                len += (size_t) n;
        }
        if (len > CALL_BODY_MAX)
                return -EFBIG;
        *ret = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

/* -d DATA, -d @FILE, -d @-. Prints why and returns an exit code on failure. */
static int call_body(Cli *c, const char *data, char **ret, size_t *ret_len) {
        if (data[0] != '@') {
                *ret_len = strlen(data);
                return (*ret = strdup(data)) ? 0 : CLI_EXIT_ERROR;
        }
        const char *file = data + 1;
        bool in = strcmp(file, "-") == 0;
        _cleanup_close_ int fd = in ? -1 : open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        struct stat st;
        int r = !in && fd < 0 ? negative_errno() : 0;
        if (r == 0 && !in && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode))
                r = -EISDIR;
        if (r == 0)
                r = read_all(in ? STDIN_FILENO : fd, ret, ret_len);
        if (r < 0) {
                char shown[256];
                fprintf(stderr, "%s: -d %s: %s\n", c->prog, output_sanitize(data, shown, sizeof shown),
                        r == -EFBIG ? "larger than 64 MiB" : strerror(-r));
                return r == -ENOENT || r == -EISDIR || r == -EFBIG || r == -EACCES ? CLI_EXIT_USAGE : CLI_EXIT_ERROR;
        }
        return 0;
}

static bool is_tchar(unsigned char ch) {
        return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
               (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* "Name: value" -> the line libcurl sends ("Name;" for an empty value,
 * since "Name:" would remove the header). NULL with why set when it is not
 * a header fnbox may send. */
static char *header_line(const char *h, const char **why) {
        const char *colon = strchr(h, ':'), *v;
        size_t nl = colon ? (size_t) (colon - h) : 0;
        *why = "expected NAME:VALUE";
        if (!colon || nl == 0 || nl > CALL_HEADER_NAME_MAX)
                return NULL;
        for (size_t i = 0; i < nl; i++)
                if (!is_tchar((unsigned char) h[i])) {
                        *why = "the name may hold only letters, digits and !#$%&'*+-.^_`|~";
                        return NULL;
                }
        if ((nl == 14 && strncasecmp(h, "content-length", nl) == 0) ||
            (nl == 17 && strncasecmp(h, "transfer-encoding", nl) == 0)) {
                *why = "fnbox sets this header from -d";
                return NULL;
        }
        for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
                ;
        for (const char *p = v; *p; p++)
                if (((unsigned char) *p < 0x20 && *p != '\t') || *p == 0x7f) {
                        *why = "the value holds a control character";
                        return NULL;
                }
        if (strlen(h) > CALL_HEADER_LINE_MAX) {
                *why = "longer than 8 KiB";
                return NULL;
        }
        char *line = NULL;
        if (asprintf(&line, "%.*s%s%s", (int) nl, h, *v ? ": " : ";", v) < 0)
                return NULL;
        *why = NULL;
        return line;
}

/* The CLI's token as the activator wants it (docs/invoke.md), unless -H
 * gave an Authorization of its own. */
static struct curl_slist *auth_header(Cli *c, struct curl_slist *l, bool given) {
        if (!l || given || !c->token)
                return l;
        _cleanup_free_ char *line = NULL;
        if (asprintf(&line, "Authorization: Bearer %s", c->token) < 0) {
                curl_slist_free_all(l);
                return NULL;
        }
        struct curl_slist *n = curl_slist_append(l, line);
        explicit_bzero(line, strlen(line));
        if (!n)
                curl_slist_free_all(l);
        return n;
}

static int call_headers(Cli *c, const VerbArgs *a, bool has_body, struct curl_slist **ret, const char **ret_auth_from) {
        struct curl_slist *l = curl_slist_append(NULL, "Expect:");
        bool content_type = false, authorization = false;
        for (size_t i = 0; l && i < a->n_headers; i++) {
                const char *why = NULL;
                _cleanup_free_ char *line = header_line(a->headers[i], &why);
                if (!line) {
                        char shown[128];
                        curl_slist_free_all(l);
                        if (!why)
                                return CLI_EXIT_ERROR;
                        fprintf(stderr, "%s: -H '%s': %s\n", c->prog,
                                output_sanitize(a->headers[i], shown, sizeof shown), why);
                        return CLI_EXIT_USAGE;
                }
                content_type = content_type || strncasecmp(line, "content-type", 12) == 0;
                authorization = authorization || strncasecmp(line, "authorization:", 14) == 0 ||
                                strncasecmp(line, "authorization;", 14) == 0;
                struct curl_slist *n = curl_slist_append(l, line);
                if (!n)
                        curl_slist_free_all(l);
                l = n;
        }
        l = auth_header(c, l, authorization);
        *ret_auth_from = authorization ? "-H" : c->token ? (c->token_from ? c->token_from : "the configuration") : NULL;
        if (l && has_body && !content_type) {
                struct curl_slist *n = curl_slist_append(l, "Content-Type: application/octet-stream");
                if (!n)
                        curl_slist_free_all(l);
                l = n;
        }
        if (!l)
                return CLI_EXIT_ERROR;
        *ret = l;
        return 0;
}

static bool path_valid(const char *p) {
        if (p[0] != '/' || strlen(p) > CALL_PATH_MAX)
                return false;
        for (; *p; p++)
                if ((unsigned char) *p <= 0x20 || (unsigned char) *p >= 0x7f || *p == '#')
                        return false;
        return true;
}

static bool method_valid(const char *m) {
        if (!*m || strlen(m) > CALL_METHOD_MAX)
                return false;
        for (; *m; m++)
                if (!is_tchar((unsigned char) *m))
                        return false;
        return true;
}

/* --path and -X. Prints why and returns an exit code. */
static int call_check(Cli *c, const VerbArgs *a) {
        char shown[96];
        if (a->path && !path_valid(a->path)) {
                fprintf(stderr, "%s: --path '%s': expected /PATH[?QUERY], printable ASCII without spaces or '#', "
                        "at most %d bytes\n", c->prog, output_sanitize(a->path, shown, sizeof shown), CALL_PATH_MAX);
                return CLI_EXIT_USAGE;
        }
        if (a->method && !method_valid(a->method)) {
                fprintf(stderr, "%s: -X '%s': expected an HTTP method such as POST\n", c->prog,
                        output_sanitize(a->method, shown, sizeof shown));
                return CLI_EXIT_USAGE;
        }
        return 0;
}

/* ACTIVATOR/PREFIX/[NS/]TARGET[PATH]. Prints why and returns an exit code. */
static int call_url(Cli *c, const VerbArgs *a, const char *prefix, const char *target, char *buf, size_t size) {
        int code = call_check(c, a);
        if (code != 0)
                return code;
        bool ns = strcmp(c->namespace_, CLI_DEFAULT_NAMESPACE) != 0;
        int n = snprintf(buf, size, "%s/%s/%s%s%s%s", c->activator, prefix, ns ? c->namespace_ : "", ns ? "/" : "",
                         target, a->path ? a->path : "");
        if (n < 0 || (size_t) n >= size) {
                fprintf(stderr, "%s: the URL is too long\n", c->prog);
                return CLI_EXIT_USAGE;
        }
        return 0;
}

/* ---- the answer --------------------------------------------------------- */

static size_t on_header(char *p, size_t size, size_t n, void *userdata) {
        CallSink *s = userdata;
        size_t len = size * n;
        static const char want[] = "x-request-id:";
        if (len > sizeof want - 1 && strncasecmp(p, want, sizeof want - 1) == 0) {
                const char *v = p + sizeof want - 1, *end = p + len;
                while (v < end && (*v == ' ' || *v == '\t'))
                        v++;
                while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
                        end--;
                snprintf(s->request_id, sizeof s->request_id, "%.*s", (int) (end - v), v);
        }
        return len;
}

static bool stream_out(CallSink *s, const char *p, size_t len) {
        if (len && fwrite(p, 1, len, stdout) != len) {
                s->write_failed = true;
                return false;
        }
        return true;
}

/* A 2xx body goes to stdout at once; any other is held, and streamed only
 * when it outgrows what an error of the platform can be. */
static size_t on_body(char *p, size_t size, size_t n, void *userdata) {
        CallSink *s = userdata;
        size_t len = size * n;
        if (!s->status) {
                curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &s->status);
                s->streaming = s->status >= 200 && s->status <= 299;
        }
        if (s->streaming)
                return stream_out(s, p, len) ? len : 0;
        if (s->held_len + len > CALL_ERROR_HELD) {
                s->streaming = true;
                if (!stream_out(s, s->held, s->held_len) || !stream_out(s, p, len))
                        return 0;
                s->held_len = 0;
                return len;
        }
        char *h = realloc(s->held, s->held_len + len + 1);
        if (!h)
                return 0;
        s->held = h;
        memcpy(h + s->held_len, p, len);
        s->held_len += len;
        h[s->held_len] = 0;
        return len;
}

/* The error types that mean the box ran and failed (docs/cli.md). */
static bool function_failed(const char *type) {
        static const char *const types[] = { "function_error", "timeout", "out_of_memory", "output_too_large" };
        for (size_t i = 0; type && i < ELEMENTSOF(types); i++)
                if (strcmp(type, types[i]) == 0)
                        return true;
        return false;
}

static int status_code(long status) {
        switch (status) {
        case 401: return CLI_EXIT_UNAUTHENTICATED;
        case 403: return CLI_EXIT_FORBIDDEN;
        case 404: return CLI_EXIT_NOT_FOUND;
        case 409: return CLI_EXIT_CONFLICT;
        default: return CLI_EXIT_ERROR;
        }
}

/* Which token the call carried, for a 401 or 403 from the activator. */
static const char *auth_hint(const CallSink *s, char *buf, size_t size) {
        if (s->status != 401 && s->status != 403)
                return "";
        if (!s->auth_from)
                return "; no token was sent (--token or FNBOX_TOKEN)";
        snprintf(buf, size, "; the token sent came from %s", s->auth_from);
        return buf;
}

/* A non-2xx answer: the platform's JSON error as one line, or (the
 * function's own answer, service mode) the body on stdout and the status. */
static int call_failed(Cli *c, const char *name, const char *logs_name, CallSink *s) {
        json_t *j = s->held_len ? json_loadb(s->held, s->held_len, 0, NULL) : NULL;
        json_t *err = json_object_get(j, "error");
        const char *type = json_string_value(json_object_get(err, "type"));
        const char *msg = json_string_value(json_object_get(err, "message"));
        char t[64], m[512], rid[CALL_REQUEST_ID_MAX + 16] = "", hint[PATH_MAX + 64];
        int code = status_code(s->status);
        if (s->request_id[0])
                snprintf(rid, sizeof rid, " (request %s)", output_sanitize(s->request_id, t, sizeof t));
        if (type) {
                bool failed = function_failed(type), hint_logs = failed && logs_name;
                fprintf(stderr, "%s: %s: %ld %s: %s%s%s%s%s\n", c->prog, name, s->status,
                        output_sanitize(type, t, sizeof t), output_sanitize(msg ? msg : "", m, sizeof m), rid,
                        hint_logs ? "; its stderr: fnbox logs " : "", hint_logs ? logs_name : "",
                        auth_hint(s, hint, sizeof hint));
                code = failed ? CLI_EXIT_FUNCTION : code;
        } else {
                if (!s->streaming)
                        stream_out(s, s->held, s->held_len);
                fprintf(stderr, "%s: %s: the function answered %ld%s\n", c->prog, name, s->status, rid);
        }
        json_decref(j);
        return code;
}

static int call_transport(Cli *c, CURLcode cc, const char *errbuf, CallSink *s) {
        const char *why = errbuf[0] ? errbuf : curl_easy_strerror(cc);
        if (s->write_failed) {
                fprintf(stderr, "%s: cannot write the answer to stdout: %s\n", c->prog, strerror(errno));
                return CLI_EXIT_ERROR;
        }
        if (cc == CURLE_OPERATION_TIMEDOUT) {
                fprintf(stderr, "%s: no answer from the activator at %s within the time limit (%s); raise --timeout\n",
                        c->prog, c->activator, why);
                return CLI_EXIT_UNREACHABLE;
        }
        if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST) {
                fprintf(stderr, "%s: cannot reach the activator at %s (%s); is it running? Start it with "
                        "'fnbox up', or check --activator / FNBOX_ACTIVATOR\n", c->prog, c->activator, why);
                return CLI_EXIT_UNREACHABLE;
        }
        fprintf(stderr, "%s: the request to %s failed: %s\n", c->prog, c->activator, why);
        return s->status ? CLI_EXIT_ERROR : CLI_EXIT_UNREACHABLE;
}

/* ---- the verb ----------------------------------------------------------- */

static void call_setup(Cli *c, CURL *curl, const char *url, const char *method, const char *body, size_t len,
                       struct curl_slist *hdrs, CallSink *s, char *errbuf) {
        curl_easy_setopt(curl, CURLOPT_URL, url);
        curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, (long) HTTP_CONNECT_TIMEOUT_MS);
        curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long) c->timeout_ms);
        curl_easy_setopt(curl, CURLOPT_USERAGENT, "fnbox-cli/1");
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, s);
        curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(curl, CURLOPT_HEADERDATA, s);
        curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
        if (strcmp(method, "HEAD") == 0)
                curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
        else if (strcmp(method, "GET") != 0 || body)
                curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
        if (body) {
                curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
                curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) len);
        }
}

static int call_perform(Cli *c, const char *name, const char *logs_name, const char *url, const char *method,
                        const char *body, size_t len, struct curl_slist *hdrs, const char *auth_from) {
        char errbuf[CURL_ERROR_SIZE] = "";
        CallSink s = { .curl = curl_easy_init(), .auth_from = auth_from };
        if (!s.curl)
                return CLI_EXIT_ERROR;
        call_setup(c, s.curl, url, method, body, len, hdrs, &s, errbuf);
        CURLcode cc = curl_easy_perform(s.curl);
        if (cc == CURLE_OK && !s.status)
                curl_easy_getinfo(s.curl, CURLINFO_RESPONSE_CODE, &s.status);
        s.write_failed = s.write_failed || fflush(stdout) != 0;
        int code;
        if (cc != CURLE_OK || s.write_failed)
                code = call_transport(c, cc, errbuf, &s);
        else if (s.status < 200 || s.status > 299)
                code = call_failed(c, name, logs_name, &s);
        else
                code = CLI_EXIT_OK;
        free(s.held);
        curl_easy_cleanup(s.curl);
        return code;
}

/* X-Fnbox-Session: ID on the call (docs/invoke.md). */
static int session_header(struct curl_slist **hdrs, const char *id) {
        char line[64];
        snprintf(line, sizeof line, "X-Fnbox-Session: %s", id);
        struct curl_slist *n = curl_slist_append(*hdrs, line);
        if (!n)
                return CLI_EXIT_ERROR;
        *hdrs = n;
        return 0;
}

int call_invoke(Cli *c, const VerbArgs *a, const char *prefix, const char *target, const char *what,
                const char *logs_name, const char *function) {
        char url[CALL_URL_MAX];
        _cleanup_free_ char *body = NULL;
        size_t len = 0;
        struct curl_slist *hdrs = NULL;
        const char *auth_from = NULL;
        bool in_session = a->n_files > 0 || a->output_dir;
        SessionRun s = { 0 };
        if (config_activator(c, a->activator) < 0)
                return CLI_EXIT_USAGE;
        int code = call_url(c, a, prefix, target, url, sizeof url);
        if (code == 0 && in_session)
                code = session_prepare(c, a, &s);
        if (code == 0 && a->data)
                code = call_body(c, a->data, &body, &len);
        if (code == 0)
                code = call_headers(c, a, a->data != NULL, &hdrs, &auth_from);
        if (code == 0 && in_session) {
                code = session_start(c, &s, function);
                if (code == 0)
                        code = session_header(&hdrs, s.id);
        }
        if (code == 0) {
                const char *method = a->method ? a->method : a->data ? "POST" : "GET";
                code = call_perform(c, what, logs_name, url, method, body, len, hdrs, auth_from);
                if (in_session)
                        code = session_finish(c, &s, code);
        }
        curl_slist_free_all(hdrs);
        session_run_done(&s);
        return code;
}

int call_main(Cli *c, const VerbArgs *a) {
        const char *name = a->pos[0];
        char shown[96], target[256];
        if (!cli_check_name(c, "function", name))
                return CLI_EXIT_USAGE;
        if (a->tag && !manifest_name_valid(a->tag)) {
                fprintf(stderr, "%s: --tag '%s': expected a DNS-1123 label such as canary\n", c->prog,
                        output_sanitize(a->tag, shown, sizeof shown));
                return CLI_EXIT_USAGE;
        }
        snprintf(target, sizeof target, "%s%s%s", name, a->tag ? "@" : "", a->tag ? a->tag : "");
        return call_invoke(c, a, "fn", target, name, name, name);
}
