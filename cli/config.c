/* cli/config.c: the CLI's settings, resolved flag > environment > config
 * file > default, and the small strict parser for the config file (a YAML
 * subset: top-level "key: value" lines only). Tokens are checked for shape
 * so that nothing odd ever reaches an HTTP header. */
#define _GNU_SOURCE
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/manifest.h"
#include "lib/quantity.h"
#include "lib/util.h"

#define URL_MAX 2048

bool config_url_valid(const char *s) {
        size_t n = strlen(s);
        if (n > URL_MAX || !(strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0))
                return false;
        const char *host = s + (s[4] == 's' ? 8 : 7);
        if (!*host || *host == '/')
                return false;
        for (const char *p = s; *p; p++)
                if ((unsigned char) *p <= 0x20 || *p == 0x7f || *p == '?' || *p == '#')
                        return false;
        return true;
}

bool config_token_valid(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > CONFIG_VALUE_MAX)
                return false;
        for (const char *p = s; *p; p++)
                if ((unsigned char) *p < 0x21 || (unsigned char) *p > 0x7e)
                        return false;
        return true;
}

/* ---- the config file ---------------------------------------------------- */

static int fail(char *why, size_t size, unsigned line, const char *fmt, ...) {
        va_list ap;
        int n = snprintf(why, size, "%u: ", line);
        va_start(ap, fmt);
        if (n >= 0 && (size_t) n < size)
                vsnprintf(why + n, size - (size_t) n, fmt, ap);
        va_end(ap);
        return -EINVAL;
}

/* A quoted value starting at *p (the quote); the rest of the line must be
 * blank or a comment. */
static int parse_quoted(const char *p, const char *end, char *out, size_t size, const char **why) {
        char q = *p++;
        size_t o = 0;
        for (;; p++) {
                if (p >= end) {
                        *why = "unterminated quoted value";
                        return -EINVAL;
                }
                char ch = *p;
                if (ch == q && q == '\'' && p + 1 < end && p[1] == '\'')
                        p++;
                else if (ch == q)
                        break;
                else if (ch == '\\' && q == '"') {
                        if (++p >= end || (*p != '"' && *p != '\\')) {
                                *why = "only \\\" and \\\\ escapes are supported";
                                return -EINVAL;
                        }
                        ch = *p;
                }
                if (o + 1 >= size) {
                        *why = "value too long";
                        return -E2BIG;
                }
                out[o++] = *p;
        }
        out[o] = 0;
        for (p++; p < end && (*p == ' ' || *p == '\t'); p++)
                ;
        if (p < end && *p != '#') {
                *why = "unexpected text after the quoted value";
                return -EINVAL;
        }
        return 0;
}

static int parse_plain(const char *p, const char *end, char *out, size_t size, const char **why) {
        if (strchr("[]{}&*!|>%@`,\"'", *p)) {
                *why = "only plain or quoted scalar values are supported";
                return -EINVAL;
        }
        const char *e = p;
        while (e < end && !(e[0] == '#' && (e == p || e[-1] == ' ' || e[-1] == '\t')))
                e++;
        while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
                e--;
        if ((size_t) (e - p) >= size) {
                *why = "value too long";
                return -E2BIG;
        }
        memcpy(out, p, (size_t) (e - p));
        out[e - p] = 0;
        return 0;
}

static char **config_slot(ConfigFile *f, const char *key, size_t len) {
        if (len == 3 && strncmp(key, "url", 3) == 0)
                return &f->url;
        if (len == 5 && strncmp(key, "token", 5) == 0)
                return &f->token;
        if (len == 9 && strncmp(key, "namespace", 9) == 0)
                return &f->namespace_;
        if (len == 9 && strncmp(key, "activator", 9) == 0)
                return &f->activator;
        return NULL;
}

/* One non-blank, non-comment line. */
static int parse_line(const char *p, const char *end, unsigned line, ConfigFile *f, char *why, size_t size) {
        const char *k = p, *err = NULL;
        char value[CONFIG_VALUE_MAX + 1];
        if (*p == ' ' || *p == '\t')
                return fail(why, size, line, "nested values are not supported; write 'key: value' at the start of the line");
        while (p < end && (islower((unsigned char) *p) || *p == '_'))
                p++;
        int klen = (int) (p - k);
        if (p == k || p >= end || *p != ':' || (p + 1 < end && p[1] != ' ' && p[1] != '\t'))
                return fail(why, size, line, "expected 'key: value'");
        char **slot = config_slot(f, k, (size_t) klen);
        if (!slot)
                return fail(why, size, line, "unknown key '%.*s' (expected url, token, namespace or activator)", klen, k);
        if (*slot)
                return fail(why, size, line, "'%.*s' is set twice", klen, k);
        for (p++; p < end && (*p == ' ' || *p == '\t'); p++)
                ;
        if (p >= end || *p == '#')
                return fail(why, size, line, "'%.*s' has no value", klen, k);
        int r = (*p == '"' || *p == '\'') ? parse_quoted(p, end, value, sizeof value, &err)
                                          : parse_plain(p, end, value, sizeof value, &err);
        if (r < 0)
                return fail(why, size, line, "%s", err);
        if (!(*slot = strdup(value)))
                return -ENOMEM;
        return 0;
}

int config_parse(const char *text, size_t len, ConfigFile *ret, char *why, size_t why_size) {
        const char *p = text, *end = text + len;
        bool seen_content = false;
        if (memchr(text, 0, len))
                return fail(why, why_size, 1, "the file holds a NUL byte");
        for (unsigned line = 1; p < end; line++) {
                const char *nl = memchr(p, '\n', (size_t) (end - p));
                const char *e = nl ? nl : end, *s = p;
                if (e > p && e[-1] == '\r')
                        e--;
                while (s < e && (*s == ' ' || *s == '\t'))
                        s++;
                bool blank = s == e || *s == '#';
                bool marker = !seen_content && e - p == 3 && strncmp(p, "---", 3) == 0;
                if (!blank && !marker) {
                        int r = parse_line(p, e, line, ret, why, why_size);
                        if (r < 0)
                                return r;
                }
                seen_content = seen_content || !blank;
                p = nl ? nl + 1 : end;
        }
        return 0;
}

void config_file_done(ConfigFile *f) {
        free(f->path);
        free(f->url);
        if (f->token)
                explicit_bzero(f->token, strlen(f->token));
        free(f->token);
        free(f->namespace_);
        free(f->activator);
        *f = (ConfigFile) { 0 };
}

static char *config_default_path(void) {
        const char *x = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
        char *p = NULL;
        if (x && *x == '/')
                return asprintf(&p, "%s/fnbox/config.yaml", x) < 0 ? NULL : p;
        if (home && *home)
                return asprintf(&p, "%s/.config/fnbox/config.yaml", home) < 0 ? NULL : p;
        return NULL;
}

/* Read a whole small file through an fd, so that the mode checked is the
 * mode of the file read. */
static ssize_t read_bounded(const char *path, char *buf, size_t size, struct stat *st) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return negative_errno();
        if (fstat(fd, st) < 0)
                return negative_errno();
        if (!S_ISREG(st->st_mode))
                return -EINVAL;
        size_t off = 0;
        for (;;) {
                ssize_t n = read(fd, buf + off, size - off);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return negative_errno();
                if (n == 0)
                        return (ssize_t) off;
                off += (size_t) n;
                if (off == size)
                        return -EFBIG;
        }
}

char *config_path(void) {
        const char *env = getenv("FNBOX_CONFIG");
        return env && *env ? strdup(env) : config_default_path();
}

int config_load(ConfigFile *ret, char *why, size_t why_size) {
        const char *env = getenv("FNBOX_CONFIG");
        bool required = env && *env;
        _cleanup_free_ char *path = required ? strdup(env) : config_default_path();
        _cleanup_free_ char *buf = malloc(CONFIG_FILE_MAX + 1);
        struct stat st;
        *ret = (ConfigFile) { 0 };
        if (!buf)
                return -ENOMEM;
        if (!path)
                return required ? -ENOMEM : 0;
        ssize_t n = read_bounded(path, buf, CONFIG_FILE_MAX + 1, &st);
        if (n == -ENOENT && !required)
                return 0;
        if (n < 0) {
                snprintf(why, why_size, "%s: %s", path, n == -EFBIG ? "larger than 64 KiB" : strerror((int) -n));
                return (int) n;
        }
        char inner[512];
        int r = config_parse(buf, (size_t) n, ret, inner, sizeof inner);
        if (r < 0) {
                snprintf(why, why_size, "%s:%s", path, inner);
                config_file_done(ret);
                return r;
        }
        ret->loose_mode = (st.st_mode & 077) != 0;
        ret->path = TAKE_PTR(path);
        return 0;
}

/* ---- resolving ---------------------------------------------------------- */

typedef struct Source {
        const char *value;
        const char *from;       /* "--url", "FNBOX_URL", the config file, "default" */
} Source;

static Source pick(const char *flag, const char *flag_name, const char *env_name,
                   const char *file_value, const char *file_path, const char *dflt) {
        const char *env = getenv(env_name);
        if (flag)
                return (Source) { flag, flag_name };
        if (env && *env)
                return (Source) { env, env_name };
        if (file_value)
                return (Source) { file_value, file_path };
        return (Source) { dflt, "default" };
}

static int bad(const char *what, Source s, const char *expected) {
        char shown[128];
        fprintf(stderr, "fnbox: invalid %s '%s' (from %s): expected %s\n", what,
                output_sanitize(s.value, shown, sizeof shown), s.from, expected);
        return -EINVAL;
}

/* The controller's admin token, when no other is configured and it can be
 * read (the controller writes it mode 0600 into its data folder). */
static int admin_token(Cli *c) {
        static char paths[2][PATH_MAX];
        const char *x = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
        char user[PATH_MAX] = "";
        if (x && *x == '/')
                snprintf(user, sizeof user, "%s/fnbox/admin.token", x);
        else if (home && *home)
                snprintf(user, sizeof user, "%s/.local/share/fnbox/admin.token", home);
        bool root = geteuid() == 0;
        snprintf(paths[0], sizeof paths[0], "%s", root ? "/var/lib/fnbox/admin.token" : user);
        snprintf(paths[1], sizeof paths[1], "%s", root ? user : "/var/lib/fnbox/admin.token");
        for (size_t i = 0; i < 2; i++) {
                char buf[CONFIG_VALUE_MAX + 2];
                struct stat st;
                if (!paths[i][0])
                        continue;
                ssize_t n = read_bounded(paths[i], buf, sizeof buf - 1, &st);
                if (n <= 0)
                        continue;
                buf[n] = 0;
                buf[strcspn(buf, "\r\n")] = 0;
                if (config_token_valid(buf) && (c->token = strdup(buf))) {
                        c->token_from = paths[i];
                        explicit_bzero(buf, sizeof buf);
                        return 0;
                }
                explicit_bzero(buf, sizeof buf);
        }
        return 0;
}

static int resolve_token(const CliFlags *fl, const ConfigFile *cf, Cli *c) {
        Source s = pick(fl->token, "--token", "FNBOX_TOKEN", cf->token, cf->path, NULL);
        if (!s.value)
                return admin_token(c);
        if (!config_token_valid(s.value)) {
                fprintf(stderr, "fnbox: invalid token (from %s): expected 1 to %u printable characters without spaces\n",
                        s.from, CONFIG_VALUE_MAX);
                return -EINVAL;
        }
        if (s.from == cf->path && cf->loose_mode)
                fprintf(stderr, "fnbox: warning: %s holds a token and others can read it (chmod 600 %s)\n",
                        cf->path, cf->path);
        c->token_from = s.from == cf->path ? "the config file" : s.from;
        return (c->token = strdup(s.value)) ? 0 : -ENOMEM;
}

static int resolve_url_ns(const CliFlags *fl, const ConfigFile *cf, Cli *c) {
        Source s = pick(fl->url, "--url", "FNBOX_URL", cf->url, cf->path, CLI_DEFAULT_URL);
        if (!config_url_valid(s.value))
                return bad("URL", s, "http://HOST[:PORT] or https://HOST[:PORT]");
        if (!(c->url = strdup(s.value)))
                return -ENOMEM;
        for (size_t n = strlen(c->url); n > 0 && c->url[n - 1] == '/'; n--)
                c->url[n - 1] = 0;
        s = pick(fl->namespace_, "--namespace", "FNBOX_NAMESPACE", cf->namespace_, cf->path, CLI_DEFAULT_NAMESPACE);
        if (!manifest_name_valid(s.value))
                return bad("namespace", s, "a DNS-1123 label (a-z, 0-9, '-', at most 63)");
        c->namespace_given = strcmp(s.from, "default") != 0;
        if (!(c->namespace_ = strdup(s.value)))
                return -ENOMEM;
        s = pick(NULL, NULL, "FNBOX_ACTIVATOR", cf->activator, cf->path, CLI_DEFAULT_ACTIVATOR);
        c->activator_from = s.from == cf->path ? "the config file" : s.from;
        return (c->activator = strdup(s.value)) ? 0 : -ENOMEM;
}

int config_activator(Cli *c, const char *flag) {
        Source s = flag ? (Source) { flag, "--activator" } : (Source) { c->activator, c->activator_from };
        if (!s.value || !config_url_valid(s.value))
                return bad("activator URL", s, "http://HOST[:PORT] or https://HOST[:PORT]");
        char *copy = strdup(s.value);
        if (!copy)
                return -ENOMEM;
        for (size_t n = strlen(copy); n > 0 && copy[n - 1] == '/'; n--)
                copy[n - 1] = 0;
        free(c->activator);
        c->activator = copy;
        c->activator_from = s.from;
        return 0;
}

static int resolve_output(const CliFlags *fl, Cli *c) {
        uint64_t ns = (uint64_t) CLI_DEFAULT_TIMEOUT_MS * 1000000;
        int f = fl->output ? output_format_from_string(fl->output) : OUTPUT_TABLE;
        if (f < 0)
                return bad("output format", (Source) { fl->output, "-o" }, "table, wide, json or yaml");
        c->wide = f == OUTPUT_WIDE;
        c->output = c->wide ? OUTPUT_TABLE : (OutputFormat) f;
        if (fl->timeout && (quantity_parse_duration(fl->timeout, &ns) < 0 || ns < 1000000ULL ||
                            ns > 3600ULL * 1000000000ULL))
                return bad("timeout", (Source) { fl->timeout, "--timeout" }, "a duration from 1ms to 1h, such as 30s");
        c->timeout_ms = ns / 1000000;
        return 0;
}

int config_resolve(const CliFlags *flags, Cli *c) {
        ConfigFile cf = { 0 };
        char why[768];
        int r = config_load(&cf, why, sizeof why);
        if (r < 0) {
                fprintf(stderr, "fnbox: config file %s\n", why);
                return -EINVAL;
        }
        r = resolve_output(flags, c);
        if (r >= 0)
                r = resolve_url_ns(flags, &cf, c);
        if (r >= 0)
                r = resolve_token(flags, &cf, c);
        config_file_done(&cf);
        return r < 0 ? -EINVAL : 0;
}
