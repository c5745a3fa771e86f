/* cli/deploy.c: `fnbox deploy -f FILE|DIR`. Three phases, and nothing is
 * uploaded unless the first two pass for every manifest: read and validate
 * every document (the lib/manifest.h parser, as the controller will), then
 * resolve and pack each function's code (refusing paths that leave the
 * manifest's folder through symlinks), then per function upload the
 * artifact if the server lacks it and POST the document's own text with the
 * resourceVersion it was read at, re-reading on a 409. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "docsplit.h"
#include "lib/artifact.h"
#include "lib/manifest.h"
#include "lib/util.h"

#define ARTIFACT_UPLOAD_MAX     (64u << 20)     /* the API's limit */
#define ARTIFACTS_TOTAL_MAX     (512u << 20)    /* held in memory at once */
#define PATH_BUF                1024

typedef struct Source {
        char *path;             /* as given or DIR/NAME */
        char *text;
        size_t len;
        ManifestList *list;
} Source;

typedef struct Unit {
        const Manifest *m;
        const Source *src;
        const char *doc;        /* into src->text */
        size_t doc_len;
        size_t artifact;        /* index into Deploy.artifacts */
} Unit;

typedef struct Artifact {
        char *path;             /* realpath of the code */
        void *data;
        size_t len;
        char digest[ARTIFACT_DIGEST_LEN];
        bool present;           /* known to be on the server */
} Artifact;

typedef struct Deploy {
        Source sources[MANIFEST_DOCS_MAX];
        size_t n_sources;
        Unit units[MANIFEST_DOCS_MAX];
        size_t n_units;
        Artifact artifacts[MANIFEST_DOCS_MAX];
        size_t n_artifacts, artifact_bytes;
        unsigned invalid;       /* manifests refused so far */
        json_t *results;        /* the POST answers, for -o json|yaml */
} Deploy;

static Deploy *deploy_free(Deploy *d) {
        if (!d)
                return NULL;
        for (size_t i = 0; i < d->n_sources; i++) {
                free(d->sources[i].path);
                free(d->sources[i].text);
                manifest_list_free(d->sources[i].list);
        }
        for (size_t i = 0; i < d->n_artifacts; i++) {
                free(d->artifacts[i].path);
                free(d->artifacts[i].data);
        }
        json_decref(d->results);
        free(d);
        return NULL;
}

static void deploy_freep(Deploy **d) {
        deploy_free(*d);
}

/* One line "FILE:LINE:COL: FIELD: MESSAGE" per refused manifest. */
static void invalid(Deploy *d, const char *file, unsigned line, const char *field, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));
static void invalid(Deploy *d, const char *file, unsigned line, const char *field, const char *fmt, ...) {
        va_list ap;
        if (line)
                fprintf(stderr, "%s:%u: %s%s", file, line, field ? field : "", field ? ": " : "");
        else
                fprintf(stderr, "%s: %s%s", file, field ? field : "", field ? ": " : "");
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        d->invalid++;
}

/* ---- phase 1: read and validate ----------------------------------------- */

static int read_source(const char *path, char **ret, size_t *ret_len) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        struct stat st;
        if (fd < 0)
                return negative_errno();
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode))
                return -EINVAL;
        _cleanup_free_ char *buf = malloc(MANIFEST_DOC_MAX + 1);
        size_t len = 0;
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t n = read(fd, buf + len, MANIFEST_DOC_MAX + 1 - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return negative_errno();
                if (n == 0)
                        break;
                len += (size_t) n;
                if (len > MANIFEST_DOC_MAX)
                        return -E2BIG;
        }
        buf[len] = 0;
        *ret = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

/* Each document's own text, checked: alone it must parse into the manifest
 * the whole file gave at that position. */
static int split_source(Deploy *d, Source *s) {
        YamlDoc docs[MANIFEST_DOCS_MAX];
        int n = docsplit(s->text, s->len, docs, ELEMENTSOF(docs));
        if (n < 0 || (size_t) n != s->list->n) {
                invalid(d, s->path, 1, NULL, "cannot cut the file into its %zu documents; put each function in a file of its own",
                        s->list->n);
                return -EINVAL;
        }
        for (size_t i = 0; i < (size_t) n; i++) {
                _cleanup_manifest_list_ ManifestList *one = NULL;
                ManifestError err = { 0 };
                const Manifest *m = &s->list->items[i];
                json_t *a = NULL, *b = NULL;
                bool same = manifest_parse(s->text + docs[i].offset, docs[i].len, s->path, &one, &err) == 0 &&
                            one->n == 1 && strcmp(one->items[0].name, m->name) == 0 &&
                            (a = manifest_spec_to_json(m, true)) && (b = manifest_spec_to_json(&one->items[0], true)) &&
                            json_equal(a, b);
                json_decref(a);
                json_decref(b);
                if (!same) {
                        invalid(d, s->path, docs[i].line, NULL, "cannot cut this document out of the file on its own; "
                                "put each function in a file of its own");
                        return -EINVAL;
                }
                if (d->n_units >= MANIFEST_DOCS_MAX) {
                        invalid(d, s->path, docs[i].line, NULL, "more than %d functions in one deploy", MANIFEST_DOCS_MAX);
                        return -E2BIG;
                }
                d->units[d->n_units++] = (Unit) { m, s, s->text + docs[i].offset, docs[i].len, 0 };
        }
        return 0;
}

static int load_source(Deploy *d, const char *path) {
        Source *s = &d->sources[d->n_sources];
        ManifestError err = { 0 };
        char line[1024];
        int r = read_source(path, &s->text, &s->len);
        if (r < 0) {
                invalid(d, path, 1, NULL, "%s", r == -E2BIG ? "larger than the 1 MiB a manifest file may be" : strerror(-r));
                return r;
        }
        if (!(s->path = strdup(path)))
                return free(s->text), -ENOMEM;
        d->n_sources++;
        r = manifest_parse(s->text, s->len, path, &s->list, &err);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                manifest_error_format(&err, line, sizeof line);
                fprintf(stderr, "%s\n", line);
                d->invalid++;
                return r;
        }
        return split_source(d, s);
}

static bool is_manifest_name(const char *n) {
        size_t l = strlen(n);
        return n[0] != '.' && ((l > 5 && strcmp(n + l - 5, ".yaml") == 0) || (l > 4 && strcmp(n + l - 4, ".yml") == 0));
}

static int name_cmp(const struct dirent **a, const struct dirent **b) {
        return strcmp((*a)->d_name, (*b)->d_name);
}

/* *.yaml and *.yml directly in dir, sorted by name, as manifest_load_path
 * reads a folder. */
static int load_folder(Deploy *d, const char *dir) {
        struct dirent **ents = NULL;
        int n = scandir(dir, &ents, NULL, name_cmp), found = 0, r = 0;
        if (n < 0)
                return negative_errno();
        for (int i = 0; i < n; i++) {
                char path[PATH_MAX];
                struct stat st;
                int w = snprintf(path, sizeof path, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/",
                                 ents[i]->d_name);
                bool take = is_manifest_name(ents[i]->d_name) && w > 0 && (size_t) w < sizeof path &&
                            stat(path, &st) == 0 && S_ISREG(st.st_mode);
                if (take && d->n_sources >= MANIFEST_DOCS_MAX) {
                        invalid(d, path, 1, NULL, "more than %d manifest files", MANIFEST_DOCS_MAX);
                        take = false;
                }
                if (take) {
                        found++;
                        int q = load_source(d, path);
                        if (q == -ENOMEM)
                                r = q;
                }
                free(ents[i]);
        }
        free(ents);
        if (found == 0 && r == 0)
                invalid(d, dir, 0, NULL, "no *.yaml or *.yml files in this folder");
        return r;
}

/* The same function twice in one deploy is a mistake, not a race. */
static void check_duplicates(Deploy *d, const Cli *c) {
        for (size_t i = 0; i < d->n_units; i++)
                for (size_t j = 0; j < i; j++) {
                        const Manifest *a = d->units[i].m, *b = d->units[j].m;
                        const char *na = a->namespace_set ? a->namespace_ : c->namespace_;
                        const char *nb = b->namespace_set ? b->namespace_ : c->namespace_;
                        if (strcmp(a->name, b->name) == 0 && strcmp(na, nb) == 0) {
                                invalid(d, d->units[i].src->path, a->line, "metadata.name",
                                        "%s is also defined in %s:%u", a->name, d->units[j].src->path, b->line);
                                break;
                        }
                }
}

/* ---- phase 2: code ------------------------------------------------------ */

/* The manifest's folder and code (relative to it) through every symlink.
 * Returns 0, or -1 with errno set and *ret_failed naming which. */
static int code_realpath(const char *file, const char *code, char dir[PATH_MAX], char real[PATH_MAX],
                         const char **ret_failed) {
        _cleanup_free_ char *copy = strdup(file);
        char full[PATH_MAX + 8];
        *ret_failed = "the manifest's folder";
        if (!copy || !realpath(dirname(copy), dir))
                return -1;
        *ret_failed = code;
        if (snprintf(full, sizeof full, "%s/%s", dir, code) >= (int) sizeof full) {
                errno = ENAMETOOLONG;
                return -1;
        }
        return realpath(full, real) ? 0 : -1;
}

static bool path_inside(const char *path, const char *dir) {
        size_t n = strlen(dir);
        return strcmp(dir, "/") == 0 || (strncmp(path, dir, n) == 0 && (path[n] == 0 || path[n] == '/'));
}

/* code resolved: it must still be inside the manifest's folder. */
static int resolve_code(Deploy *d, const Unit *u, const char *code, const char *field, char **ret) {
        char dir[PATH_MAX], real[PATH_MAX];
        const char *failed;
        if (code_realpath(u->src->path, code, dir, real, &failed) < 0) {
                invalid(d, u->src->path, u->m->line, field, "%s: %m", failed);
                return -EINVAL;
        }
        if (!path_inside(real, dir)) {
                invalid(d, u->src->path, u->m->line, field, "%s resolves to %s, outside the manifest's folder %s",
                        code, real, dir);
                return -EINVAL;
        }
        *ret = strdup(real);
        return *ret ? 0 : -ENOMEM;
}

static const char *pack_error(int r) {
        switch (r) {
        case -E2BIG: return "larger than 64 MiB, or more than 10000 files";
        case -ELOOP: return "a symlink in it points out of the folder";
        case -ENAMETOOLONG: return "a path in it is too long for the archive (255 bytes)";
        case -EINVAL: return "it holds a device, socket or fifo";
        case -EIO: return "a file changed while it was read";
        default: return strerror(-r);
        }
}

/* Pack the code at real once, however many functions share it. */
static int pack_code(Deploy *d, Unit *u, char *real) {
        for (size_t i = 0; i < d->n_artifacts; i++)
                if (strcmp(d->artifacts[i].path, real) == 0) {
                        u->artifact = i;
                        return free(real), 0;
                }
        Artifact *a = &d->artifacts[d->n_artifacts];
        int r = artifact_pack(real, ARTIFACT_UPLOAD_MAX, &a->data, &a->len, a->digest);
        if (r < 0) {
                invalid(d, u->src->path, u->m->line, "spec.code", "cannot pack %s: %s", real, pack_error(r));
                return free(real), r;
        }
        a->path = real;
        u->artifact = d->n_artifacts++;
        d->artifact_bytes += a->len;
        if (d->artifact_bytes > ARTIFACTS_TOTAL_MAX) {
                invalid(d, u->src->path, u->m->line, "spec.code", "the code of these functions is over 512 MiB "
                        "together; deploy them in parts");
                return -E2BIG;
        }
        return 0;
}

/* Whether real lies inside code (relative to the manifest at file). */
static bool path_within(const char *real, const char *code, const char *file) {
        char dir[PATH_MAX], base[PATH_MAX];
        const char *failed;
        return code_realpath(file, code, dir, base, &failed) == 0 && strcmp(base, "/") != 0 && path_inside(real, base);
}

static int prepare_unit(Deploy *d, Unit *u) {
        char *real = NULL, field[64];
        if (!u->m->code) {
                invalid(d, u->src->path, u->m->line, "spec.code", "missing: the function's code, a file or a folder");
                return -EINVAL;
        }
        for (size_t i = 0; i < u->m->n_variants; i++) {
                char *vreal = NULL;
                if (!u->m->variants[i].code)
                        continue;
                snprintf(field, sizeof field, "spec.variants[%zu].code", i);
                if (resolve_code(d, u, u->m->variants[i].code, field, &vreal) < 0)
                        return -EINVAL;
                if (!path_within(vreal, u->m->code, u->src->path))
                        fprintf(stderr, "%s:%u: %s: warning: only spec.code is uploaded (one artifact per deploy); "
                                "put %s inside it\n", u->src->path, u->m->line, field, u->m->variants[i].code);
                free(vreal);
        }
        if (resolve_code(d, u, u->m->code, "spec.code", &real) < 0)
                return -EINVAL;
        return pack_code(d, u, real);
}

/* ---- phase 3: upload and deploy ----------------------------------------- */

static int ensure_artifact(Cli *c, Artifact *a, const char *what) {
        char path[PATH_BUF];
        HttpResponse resp = { 0 };
        if (a->present)
                return 0;
        snprintf(path, sizeof path, "/v1/artifacts/%s", a->digest);
        int r = http_request(c->http, "HEAD", path, NULL, NULL, 0, &resp);
        if (r == 0 && resp.status == 404) {
                http_response_done(&resp);
                r = http_request(c->http, "PUT", path, "application/x-tar", a->data, a->len, &resp);
        }
        int code = r == 0 && resp.status >= 200 && resp.status <= 299 ? 0 : cli_report(c, what, r, &resp);
        http_response_done(&resp);
        a->present = code == 0;
        return code;
}

/* The function's resourceVersion now, 0 when it does not exist. */
static int read_version(Cli *c, const char *ns, const char *name, json_int_t *ret) {
        char path[PATH_BUF];
        HttpResponse resp = { 0 };
        if (cli_path(c, path, sizeof path, ns, "/v1/functions/%s", name) < 0)
                return CLI_EXIT_USAGE;
        int r = http_request(c->http, "GET", path, NULL, NULL, 0, &resp), code = 0;
        if (r == 0 && resp.status == 404)
                *ret = 0;
        else if (r == 0 && resp.status == 200 && json_is_integer(json_object_get(resp.json, "resourceVersion")))
                *ret = json_integer_value(json_object_get(resp.json, "resourceVersion"));
        else
                code = cli_report(c, name, r, &resp);
        http_response_done(&resp);
        return code;
}

static void print_result(Cli *c, Deploy *d, const Unit *u, const char *ns, json_t *resp) {
        const char *rev = json_string_value(json_object_get(resp, "revision"));
        char label[160];
        snprintf(label, sizeof label, "%s%s%s", strcmp(ns, c->namespace_) == 0 ? "" : ns,
                 strcmp(ns, c->namespace_) == 0 ? "" : "/", u->m->name);
        if (c->output != OUTPUT_TABLE)
                json_array_append(d->results, resp);
        else if (json_is_true(json_object_get(resp, "revisionCreated")))
                printf("%s: created revision %s\n", label, rev ? rev : "?");
        else
                printf("%s: unchanged (revision %s)\n", label, rev ? rev : "?");
        fflush(stdout);
}

/* One POST at version; CLI_EXIT_CONFLICT on a 409. */
static int post_once(Cli *c, Deploy *d, const Unit *u, const char *ns, json_int_t version) {
        char path[PATH_BUF];
        HttpResponse resp = { 0 };
        if (cli_path(c, path, sizeof path, ns, "/v1/functions") < 0)
                return CLI_EXIT_USAGE;
        json_t *body = json_pack("{s:s%,s:s,s:s,s:I}", "manifest", u->doc, u->doc_len, "source", u->src->path,
                                 "codeDigest", d->artifacts[u->artifact].digest, "resourceVersion", version);
        int r = body ? http_request_json(c->http, "POST", path, body, &resp) : -ENOMEM, code = 0;
        json_decref(body);
        if (r == 0 && resp.status == 409)
                code = CLI_EXIT_CONFLICT;
        else if (r == 0 && resp.status >= 200 && resp.status <= 299 && resp.json)
                print_result(c, d, u, ns, resp.json);
        else
                code = cli_report(c, u->m->name, r, &resp);
        http_response_done(&resp);
        return code;
}

static int deploy_unit(Cli *c, Deploy *d, const Unit *u) {
        const char *ns = u->m->namespace_set ? u->m->namespace_ : c->namespace_;
        int code = ensure_artifact(c, &d->artifacts[u->artifact], u->m->name);
        for (unsigned attempt = 0; code == 0; attempt++) {
                json_int_t version = 0;
                code = read_version(c, ns, u->m->name, &version);
                if (code == 0)
                        code = post_once(c, d, u, ns, version);
                if (code != CLI_EXIT_CONFLICT)
                        break;
                if (attempt == CLI_CONFLICT_RETRIES) {
                        fprintf(stderr, "%s: %s: 409 conflict: the function kept changing under us (%d tries); "
                                "deploy again\n", c->prog, u->m->name, CLI_CONFLICT_RETRIES + 1);
                        break;
                }
                cli_backoff(attempt);
                code = 0;
        }
        return code;
}

static int validate(Cli *c, Deploy *d, const char *path) {
        struct stat st;
        if (stat(path, &st) < 0) {
                fprintf(stderr, "%s: %s: %m\n", c->prog, path);
                return CLI_EXIT_USAGE;
        }
        int r = S_ISDIR(st.st_mode) ? load_folder(d, path) : load_source(d, path);
        if (r == -ENOMEM)
                return CLI_EXIT_ERROR;
        if (d->invalid == 0)
                check_duplicates(d, c);
        for (size_t i = 0; d->invalid == 0 && i < d->n_units; i++)
                if (prepare_unit(d, &d->units[i]) == -ENOMEM)
                        return CLI_EXIT_ERROR;
        if (d->invalid == 0)
                return 0;
        fprintf(stderr, "%s: %u invalid manifest%s; nothing was uploaded\n", c->prog, d->invalid,
                d->invalid == 1 ? "" : "s");
        return CLI_EXIT_INVALID;
}

int deploy_main(Cli *c, const VerbArgs *a) {
        _cleanup_(deploy_freep) Deploy *d = calloc(1, sizeof *d);
        const char *path = a->file ? a->file : (a->n_pos ? a->pos[0] : NULL);
        if (!path || (a->file && a->n_pos)) {
                fprintf(stderr, "%s: expected one manifest file or folder: -f FILE|DIR; see '%s --help'\n",
                        c->prog, c->prog);
                return CLI_EXIT_USAGE;
        }
        if (!d || !(d->results = json_array()))
                return CLI_EXIT_ERROR;
        int code = validate(c, d, path);
        for (size_t i = 0; code == 0 && i < d->n_units; i++)
                code = deploy_unit(c, d, &d->units[i]);
        if (c->output != OUTPUT_TABLE && json_array_size(d->results)) {
                json_t *all = json_pack("{s:O}", "items", d->results);
                if (!all || output_value(stdout, c->output, all) < 0)
                        code = code ? code : CLI_EXIT_ERROR;
                json_decref(all);
        }
        return code;
}
