/* cli/session_cmd.c: sessions (docs/cli.md#sessions). `fnbox call --file`
 * and `fnbox skill call --file` pack the input files into one archive,
 * create a session with it (POST /v1/sessions), make the call with
 * X-Fnbox-Session and write the box's /output into a folder; `fnbox
 * replay` runs a session again (POST /v1/sessions/ID/replay) and says what
 * changed; `fnbox sessions` lists, shows and deletes them. Session blobs
 * (stdout, the output archive) can be larger than the API client's answer
 * cap, so they are fetched here with a cap of their own. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"
#include "config.h"
#include "lib/artifact.h"
#include "lib/base64.h"
#include "lib/util.h"

#define SESSION_BLOB_MAX        (32u << 20)     /* an input or output archive, stdin, stdout */
#define SESSION_FILE_MAX        SESSION_BLOB_MAX /* each input file, and all of them together */
#define SESSION_ANSWER_MAX      (34u << 20)     /* a blob as the server sends it (33 MiB at most) */
#define SESSION_FILE_NAME_MAX   100             /* what an ustar name holds without a prefix */
#define SESSION_PATH_MAX        4096
#define SESSION_URL_MAX         8192
#define SESSION_DIR_DEFAULT     "fnbox-output"
#define CELL_SHOWN              40

/* ---- small helpers ------------------------------------------------------- */

static const char *str(json_t *o, const char *key) {
        return json_string_value(json_object_get(o, key));
}

static int out_of_memory(Cli *c) {
        fprintf(stderr, "%s: out of memory\n", c->prog);
        return CLI_EXIT_ERROR;
}

bool session_id_valid(const char *id) {
        if (!id || strlen(id) != SESSION_ID_LEN || strncmp(id, "s-", 2) != 0)
                return false;
        for (const char *p = id + 2; *p; p++)
                if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
                        return false;
        return true;
}

static bool check_id(Cli *c, const char *id) {
        char shown[96];
        if (session_id_valid(id))
                return true;
        fprintf(stderr, "%s: '%s' is not a session id (expected s- and 32 of 0-9 and a-f, as 'fnbox sessions' "
                "lists them)\n", c->prog, output_sanitize(id, shown, sizeof shown));
        return false;
}

/* A time as the API gives it: ISO 8601 text, or milliseconds since 1970. 0: none. */
static time_t time_of(json_t *v) {
        if (json_is_integer(v) && json_integer_value(v) > 0)
                return (time_t) (json_integer_value(v) / 1000);
        struct tm tm = { 0 };
        const char *s = json_string_value(v);
        if (!s || !strptime(s, "%Y-%m-%dT%H:%M:%S", &tm))
                return 0;
        return timegm(&tm);
}

/* "5m ago" for a past time, "in 6d" for a future one, NULL for none. */
static const char *relative_cell(json_t *v, char *buf, size_t size) {
        time_t t = time_of(v), now = time(NULL);
        char s[32];
        if (!t)
                return NULL;
        format_span(t > now ? (long long) (t - now) : (long long) (now - t), s, sizeof s);
        snprintf(buf, size, t > now ? "in %s" : "%s ago", s);
        return buf;
}

/* The time as ISO 8601 (UTC) with how long ago or ahead it is. */
static const char *when_cell(json_t *v, char *buf, size_t size) {
        time_t t = time_of(v);
        struct tm tm;
        char rel[48];
        if (!t || !gmtime_r(&t, &tm))
                return NULL;
        snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02dZ (%s)", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                 tm.tm_hour, tm.tm_min, tm.tm_sec, relative_cell(v, rel, sizeof rel));
        return buf;
}

/* How the run ended, from its result: "exited 0", "signaled 9", "timeout". */
static const char *status_cell(json_t *result, char *buf, size_t size) {
        const char *s = str(result, "status");
        json_t *code = json_object_get(result, "exitCode"), *sig = json_object_get(result, "signal");
        char shown[32];
        if (!s)
                return NULL;
        output_sanitize(s, shown, sizeof shown);
        if (strcmp(s, "exited") == 0 && json_is_integer(code))
                snprintf(buf, size, "%s %" JSON_INTEGER_FORMAT, shown, json_integer_value(code));
        else if (strcmp(s, "signaled") == 0 && json_is_integer(sig))
                snprintf(buf, size, "%s %" JSON_INTEGER_FORMAT, shown, json_integer_value(sig));
        else
                snprintf(buf, size, "%s", shown);
        return buf;
}

static int print_table(Cli *c, Table *t) {
        if (table_print(t, stdout, output_use_bold(stdout)) < 0) {
                fprintf(stderr, "%s: cannot write the table\n", c->prog);
                return CLI_EXIT_ERROR;
        }
        return 0;
}

/* ---- the output folder ----------------------------------------------------- */

/* 1: dir is an empty folder, 0: it does not exist, negative: anything else
 * (-ENOTEMPTY, -ENOTDIR, or why it cannot be read). */
static int dir_state(const char *dir) {
        struct stat st;
        if (lstat(dir, &st) < 0)
                return errno == ENOENT ? 0 : negative_errno();
        if (!S_ISDIR(st.st_mode))
                return -ENOTDIR;
        DIR *d = opendir(dir);
        if (!d)
                return negative_errno();
        struct dirent *de;
        int r = 1;
        while (r == 1 && (de = readdir(d)))
                if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                        r = -ENOTEMPTY;
        closedir(d);
        return r;
}

static const char *dir_why(int r) {
        return r == -ENOTEMPTY ? "exists and is not empty" : r == -ENOTDIR ? "exists and is not a folder" : strerror(-r);
}

/* --output-dir: refused before anything is sent when it cannot be used. */
static int output_dir_check(Cli *c, const char *dir) {
        char shown[256];
        int r = dir && *dir ? dir_state(dir) : -EINVAL;
        if (!dir || r >= 0)
                return 0;
        fprintf(stderr, "%s: --output-dir '%s': %s\n", c->prog, output_sanitize(dir, shown, sizeof shown),
                r == -EINVAL ? "expected a folder" : dir_why(r));
        return CLI_EXIT_USAGE;
}

/* mkdir -p of dir's parents, then dir itself (an empty one may exist). */
static int dir_make(const char *dir) {
        _cleanup_free_ char *p = strdup(dir);
        if (!p)
                return -ENOMEM;
        for (char *s = strchr(p + 1, '/'); s; s = strchr(s + 1, '/')) {
                *s = 0;
                if (mkdir(p, 0755) < 0 && errno != EEXIST)
                        return negative_errno();
                *s = '/';
        }
        if (mkdir(dir, 0755) == 0)
                return 0;
        if (errno != EEXIST)
                return negative_errno();
        int r = dir_state(dir);
        return r == 1 ? 0 : r == 0 ? -ENOENT : r;
}

static size_t counted;

static int count_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) path, (void) st, (void) ftw;
        counted += flag == FTW_F;
        return 0;
}

/* Regular files under dir (not following symlinks). */
static size_t count_files(const char *dir) {
        counted = 0;
        return nftw(dir, count_one, 16, FTW_PHYS) == 0 ? counted : 0;
}

/* Unpack the output archive into dir (made here) and say so on stderr. */
static int output_unpack(Cli *c, const char *id, const char *dir, const void *tar, size_t len) {
        char shown[256];
        output_sanitize(dir, shown, sizeof shown);
        int r = dir_make(dir);
        if (r < 0) {
                fprintf(stderr, "%s: session %s: cannot write the output into %s: %s\n", c->prog, id, shown,
                        r == -ENOTEMPTY || r == -ENOTDIR ? dir_why(r) : strerror(-r));
                return r == -ENOTEMPTY || r == -ENOTDIR ? CLI_EXIT_USAGE : CLI_EXIT_ERROR;
        }
        _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        r = fd < 0 ? negative_errno() : len ? artifact_unpack(tar, len, fd) : 0;
        if (r < 0) {
                fprintf(stderr, "%s: session %s: cannot unpack the output into %s: %s (what was written stays)\n",
                        c->prog, id, shown, r == -EINVAL ? "the archive the server sent is not valid" : strerror(-r));
                return CLI_EXIT_ERROR;
        }
        size_t files = count_files(dir);
        fprintf(stderr, "session %s: %zu output file%s in %s\n", id, files, files == 1 ? "" : "s", shown);
        return 0;
}

/* ---- blobs: GET /v1/sessions/ID/WHICH -------------------------------------- */

/* The bytes of one of a session's blobs ("stdout", "output"...), through
 * the CLI's client, its answer limit raised for the call (the store keeps
 * up to 33 MiB a blob). */
static int session_blob(Cli *c, const char *id, const char *which, char **ret, size_t *ret_len) {
        char path[SESSION_URL_MAX], what[64];
        HttpResponse resp = { 0 };
        snprintf(what, sizeof what, "session %s: %s", id, which);
        if ((size_t) snprintf(path, sizeof path, "/v1/sessions/%s/%s", id, which) >= sizeof path)
                return out_of_memory(c);
        size_t old = http_set_response_max(c->http, SESSION_ANSWER_MAX);
        int r = http_request(c->http, "GET", path, NULL, NULL, 0, &resp);
        http_set_response_max(c->http, old);
        if (r < 0 || resp.status < 200 || resp.status > 299) {
                int code = cli_report(c, what, r, &resp);
                http_response_done(&resp);
                return code;
        }
        *ret = resp.body ? resp.body : calloc(1, 1);
        *ret_len = resp.len;
        resp.body = NULL;
        http_response_done(&resp);
        return *ret ? 0 : out_of_memory(c);
}

/* The session's output archive into dir (NULL: ./fnbox-output/ID). */
static int output_fetch(Cli *c, const char *id, const char *dir) {
        _cleanup_free_ char *tar = NULL, *def = NULL;
        size_t len = 0;
        int code = session_blob(c, id, "output", &tar, &len);
        if (code != 0)
                return code;
        if (!dir && asprintf(&def, "%s/%s", SESSION_DIR_DEFAULT, id) < 0)
                return out_of_memory(c);
        return output_unpack(c, id, dir ? dir : def, tar, len);
}

/* ---- input files ------------------------------------------------------------- */

/* The name a --file goes by in the archive: what follows its last '/'. */
static const char *file_name(const char *path) {
        const char *s = strrchr(path, '/');
        return s ? s + 1 : path;
}

/* Why a file's name cannot go into the archive, or NULL. */
static const char *file_name_problem(const char *name) {
        if (!*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
                return "expected a path to a file, not to a folder";
        if (strlen(name) > SESSION_FILE_NAME_MAX)
                return "its name is longer than 100 bytes";
        return NULL;
}

static int read_exact(int fd, char *buf, size_t size) {
        size_t got = 0;
        while (got < size) {
                ssize_t n = read(fd, buf + got, size - got);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return negative_errno();
                if (n == 0)
                        return -EIO;
                got += (size_t) n;
        }
        char extra;
        ssize_t n = read(fd, &extra, 1);
        return n == 0 ? 0 : n > 0 ? -EIO : negative_errno();
}

/* One --file, read whole. left: how much of the total may still come. */
static int file_read(Cli *c, const char *path, size_t left, char **ret, size_t *ret_len) {
        char shown[256];
        const char *why = NULL;
        struct stat st;
        int r = 0, code = CLI_EXIT_USAGE;
        output_sanitize(path, shown, sizeof shown);
        why = file_name_problem(file_name(path));
        _cleanup_close_ int fd = why ? -1 : open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (!why && (fd < 0 || fstat(fd, &st) < 0))
                r = negative_errno();
        else if (!why && S_ISDIR(st.st_mode))
                why = "is a folder (only regular files can be sent; pack a folder into one file)";
        else if (!why && !S_ISREG(st.st_mode))
                why = "is not a regular file";
        else if (!why && (uint64_t) st.st_size > SESSION_FILE_MAX)
                why = "is larger than 32 MiB";
        else if (!why && (size_t) st.st_size > left)
                why = "makes the files larger than 32 MiB together";
        _cleanup_free_ char *data = NULL;
        if (!why && r == 0) {
                data = malloc(st.st_size ? (size_t) st.st_size : 1);
                r = data ? read_exact(fd, data, (size_t) st.st_size) : -ENOMEM;
                if (r == -EIO)
                        why = "changed while it was read";
                code = r == -EIO ? CLI_EXIT_ERROR : code;
        }
        if (why || r < 0) {
                fprintf(stderr, "%s: --file %s: %s\n", c->prog, shown, why ? why : strerror(-r));
                return why || r == -ENOENT || r == -EACCES ? code : CLI_EXIT_ERROR;
        }
        *ret = TAKE_PTR(data);
        *ret_len = (size_t) st.st_size;
        return 0;
}

/* Two --file with the same name would be one entry of the archive. */
static int names_distinct(Cli *c, const VerbArgs *a) {
        for (size_t i = 1; i < a->n_files; i++)
                for (size_t j = 0; j < i; j++)
                        if (strcmp(file_name(a->files[i]), file_name(a->files[j])) == 0) {
                                char x[256], y[256], n[128];
                                fprintf(stderr, "%s: --file %s and --file %s have the same name '%s' (files go to "
                                        "/input by name; rename one)\n", c->prog,
                                        output_sanitize(a->files[j], x, sizeof x),
                                        output_sanitize(a->files[i], y, sizeof y),
                                        output_sanitize(file_name(a->files[i]), n, sizeof n));
                                return CLI_EXIT_USAGE;
                        }
        return 0;
}

static void files_free(char **data, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(data[i]);
        free(data);
}

/* Every --file, read and packed into one archive (by name, sorted). */
static int files_pack(Cli *c, const VerbArgs *a, void **ret, size_t *ret_len) {
        int code = names_distinct(c, a);
        if (code != 0)
                return code;
        size_t n = a->n_files, left = SESSION_FILE_MAX;
        char **data = calloc(n ? n : 1, sizeof *data);
        size_t *sizes = calloc(n ? n : 1, sizeof *sizes);
        const char **names = calloc(n ? n : 1, sizeof *names);
        if (!data || !sizes || !names)
                code = out_of_memory(c);
        for (size_t i = 0; code == 0 && i < n; i++) {
                code = file_read(c, a->files[i], left, &data[i], &sizes[i]);
                names[i] = file_name(a->files[i]);
                left -= code == 0 ? sizes[i] : 0;
        }
        int r = code == 0 ? artifact_pack_files(names, (const void *const *) data, sizes, n, SESSION_BLOB_MAX, ret,
                                                ret_len, NULL) : 0;
        if (r == -E2BIG) {
                fprintf(stderr, "%s: --file: the archive of the files (names and headers included) is larger than "
                        "32 MiB\n", c->prog);
                code = CLI_EXIT_USAGE;
        } else if (r < 0) {
                fprintf(stderr, "%s: --file: cannot pack the files: %s\n", c->prog, strerror(-r));
                code = CLI_EXIT_ERROR;
        }
        if (data)
                files_free(data, n);
        free(sizes);
        free(names);
        return code;
}

int session_input_base64(Cli *c, const VerbArgs *a, char **ret) {
        _cleanup_free_ void *tar = NULL;
        size_t len = 0;
        int code = files_pack(c, a, &tar, &len);
        if (code != 0)
                return code;
        *ret = base64_encode(tar, len);
        return *ret ? 0 : out_of_memory(c);
}

/* ---- call --file --------------------------------------------------------- */

int session_prepare(Cli *c, const VerbArgs *a, SessionRun *ret) {
        *ret = (SessionRun) { .output_dir = a->output_dir };
        int code = output_dir_check(c, a->output_dir);
        for (size_t i = 0; code == 0 && i < a->n_headers; i++)
                if (strncasecmp(a->headers[i], "x-fnbox-session:", 16) == 0) {
                        fprintf(stderr, "%s: -H X-Fnbox-Session: the CLI sets it with --file and --output-dir\n", c->prog);
                        code = CLI_EXIT_USAGE;
                }
        return code == 0 ? files_pack(c, a, &ret->input, &ret->input_len) : code;
}

int session_start(Cli *c, SessionRun *s, const char *function) {
        char path[SESSION_PATH_MAX];
        HttpResponse resp = { 0 };
        if (cli_path(c, path, sizeof path, c->namespace_, "/v1/sessions") < 0)
                return out_of_memory(c);
        if (function && strlen(path) + strlen(function) + 10 < sizeof path)
                strcat(strcat(path, "&function="), function);   /* a DNS label: nothing to escape */
        int r = http_request(c->http, "POST", path, "application/x-tar", s->input, s->input_len, &resp);
        if (r < 0 || resp.status < 200 || resp.status > 299) {
                int code = cli_report(c, "session", r, &resp);
                http_response_done(&resp);
                return code;
        }
        const char *id = str(resp.json, "id");
        bool ok = session_id_valid(id);
        if (ok)
                memcpy(s->id, id, SESSION_ID_LEN + 1);
        else
                fprintf(stderr, "%s: session: the server's answer names no valid session (\"id\")\n", c->prog);
        http_response_done(&resp);
        return ok ? 0 : CLI_EXIT_ERROR;
}

int session_finish(Cli *c, SessionRun *s, int call_code) {
        if (call_code != CLI_EXIT_OK && call_code != CLI_EXIT_FUNCTION) {
                fprintf(stderr, "session %s: no output fetched (the call failed); see fnbox sessions show %s\n",
                        s->id, s->id);
                return call_code;
        }
        int code = output_fetch(c, s->id, s->output_dir);
        return call_code != CLI_EXIT_OK ? call_code : code;
}

void session_run_done(SessionRun *s) {
        free(s->input);
        *s = (SessionRun) { 0 };
}

/* ---- replay -------------------------------------------------------------- */

static const char *same_word(json_t *same, const char *key) {
        json_t *v = json_object_get(same, key);
        return json_is_true(v) ? "same" : json_is_false(v) ? "differs" : "unknown";
}

static void replay_line(json_t *answer, const char *orig, const char *id) {
        json_t *s = json_object_get(answer, "session"), *same = json_object_get(answer, "same");
        char rev[128], code[128];
        const char *r = str(s, "revision"), *d = str(s, "codeDigest");
        fprintf(stderr, "replay %s of %s (revision %s, code %s): stdout %s, output %s, status %s\n", id, orig,
                r && *r ? output_sanitize(r, rev, sizeof rev) : "?", d && *d ? output_sanitize(d, code, sizeof code) : "?",
                same_word(same, "stdout"), same_word(same, "output"), same_word(same, "status"));
}

static bool all_same(json_t *answer) {
        json_t *same = json_object_get(answer, "same");
        return json_is_true(json_object_get(same, "stdout")) && json_is_true(json_object_get(same, "output")) &&
               json_is_true(json_object_get(same, "status"));
}

static int replay_stdout(Cli *c, const char *id) {
        _cleanup_free_ char *out = NULL;
        size_t len = 0;
        int code = session_blob(c, id, "stdout", &out, &len);
        if (code != 0)
                return code;
        if ((len && fwrite(out, 1, len, stdout) != len) || fflush(stdout) != 0) {
                fprintf(stderr, "%s: cannot write to stdout: %s\n", c->prog, strerror(errno));
                return CLI_EXIT_ERROR;
        }
        return 0;
}

int replay_main(Cli *c, const VerbArgs *a) {
        const char *orig = a->pos[0];
        char path[SESSION_PATH_MAX], id[SESSION_ID_LEN + 1], what[64];
        json_t *answer = NULL;
        if (!check_id(c, orig))
                return CLI_EXIT_USAGE;
        int code = output_dir_check(c, a->output_dir);
        if (code != 0)
                return code;
        snprintf(path, sizeof path, "/v1/sessions/%s/replay", orig);
        snprintf(what, sizeof what, "session %s", orig);
        code = cli_call(c, what, "POST", path, NULL, &answer);
        if (code != 0)
                return code;
        const char *nid = str(json_object_get(answer, "session"), "id");
        if (!session_id_valid(nid)) {
                fprintf(stderr, "%s: %s: the server's answer names no valid new session (\"session\".\"id\")\n",
                        c->prog, what);
                json_decref(answer);
                return CLI_EXIT_ERROR;
        }
        memcpy(id, nid, sizeof id);
        if (c->output != OUTPUT_TABLE)
                code = output_value(stdout, c->output, answer) < 0 ? CLI_EXIT_ERROR : 0;
        else
                code = replay_stdout(c, id);
        if (code == 0)
                code = output_fetch(c, id, a->output_dir);
        replay_line(answer, orig, id);
        if (code == 0 && a->check && !all_same(answer))
                code = CLI_EXIT_ERROR;
        json_decref(answer);
        return code;
}

/* ---- sessions: list, show, delete ----------------------------------------------- */

static int sessions_list(Cli *c) {
        static const char *const headers[] = { "ID", "FUNCTION", "STATE", "REVISION", "STATUS", "CREATED", "EXPIRES" };
        char path[SESSION_PATH_MAX];
        json_t *all = NULL, *e;
        size_t i;
        if (cli_path(c, path, sizeof path, c->namespace_, "/v1/sessions") < 0)
                return out_of_memory(c);
        int code = cli_get_all(c, NULL, path, &all);
        if (code != 0)
                return code;
        json_t *items = json_object_get(all, "items");
        _cleanup_table_ Table *t = c->output == OUTPUT_TABLE ? table_new(ELEMENTSOF(headers), headers) : NULL;
        if (c->output != OUTPUT_TABLE)
                code = output_value(stdout, c->output, all) < 0 ? CLI_EXIT_ERROR : 0;
        else if (!json_array_size(items))
                fprintf(stderr, "No sessions in namespace %s.\n", c->namespace_);
        else if (!t)
                code = out_of_memory(c);
        else {
                json_array_foreach(items, i, e) {
                        char st[64], cr[48], ex[48];
                        const char *fn = str(e, "function"), *rev = str(e, "revision");
                        const char *cells[] = { str(e, "id"), fn && *fn ? fn : NULL, str(e, "state"),
                                                rev && *rev ? rev : NULL,
                                                status_cell(json_object_get(e, "result"), st, sizeof st),
                                                relative_cell(json_object_get(e, "createdAt"), cr, sizeof cr),
                                                relative_cell(json_object_get(e, "expiresAt"), ex, sizeof ex) };
                        if (table_add(t, cells) < 0) {
                                code = out_of_memory(c);
                                break;
                        }
                }
                code = code ? code : print_table(c, t);
        }
        json_decref(all);
        return code;
}

static void show_line(const char *key, const char *value) {
        char v[1024];
        printf("%-12s %s\n", key, value && *value ? output_sanitize(value, v, sizeof v) : "-");
}

/* "3 files, 4096 bytes (sha256:...)" for the input or the output archive;
 * "512 bytes (sha256:...)" for stdin and stdout. */
static const char *blob_cell(json_t *b, char *buf, size_t size) {
        json_t *files = json_object_get(b, "files"), *sz = json_object_get(b, "size");
        const char *digest = str(b, "digest");
        char bytes[32] = "?", files_s[48] = "", d[96] = "";
        if (!json_is_object(b))
                return NULL;
        if (json_is_integer(sz))
                snprintf(bytes, sizeof bytes, "%" JSON_INTEGER_FORMAT, json_integer_value(sz));
        if (json_is_array(files))
                snprintf(files_s, sizeof files_s, "%zu file%s, ", json_array_size(files),
                         json_array_size(files) == 1 ? "" : "s");
        if (digest && *digest)
                snprintf(d, sizeof d, " (%s)", digest);
        snprintf(buf, size, "%s%s bytes%s", files_s, bytes, d);
        return buf;
}

static int show_files(Cli *c, const char *title, json_t *files) {
        static const char *const headers[] = { "NAME", "SIZE" };
        _cleanup_table_ Table *t = table_new(2, headers);
        json_t *f;
        size_t i;
        if (!t)
                return out_of_memory(c);
        json_array_foreach(files, i, f) {
                char sz[32], n[256];
                json_t *s = json_object_get(f, "size");
                if (json_is_integer(s))
                        snprintf(sz, sizeof sz, "%" JSON_INTEGER_FORMAT, json_integer_value(s));
                const char *cells[] = { str(f, "name") ? output_sanitize(str(f, "name"), n, sizeof n) : NULL,
                                        json_is_integer(s) ? sz : NULL };
                if (table_add(t, cells) < 0)
                        return out_of_memory(c);
        }
        printf("\n%s:\n", title);
        return print_table(c, t);
}

static int show_table(Cli *c, json_t *s) {
        char buf[512], st[64];
        json_t *result = json_object_get(s, "result");
        const char *keys[] = { "ID:", "Namespace:", "Function:", "State:", "Revision:", "Code:", "Replay of:",
                               "Created by:" };
        const char *fields[] = { "id", "namespace", "function", "state", "revision", "codeDigest", "replayOf",
                                 "createdBy" };
        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                show_line(keys[i], str(s, fields[i]));
        const char *tkeys[] = { "Created:", "Started:", "Finished:", "Expires:" };
        const char *tfields[] = { "createdAt", "startedAt", "finishedAt", "expiresAt" };
        for (size_t i = 0; i < ELEMENTSOF(tkeys); i++)
                show_line(tkeys[i], when_cell(json_object_get(s, tfields[i]), buf, sizeof buf));
        const char *bkeys[] = { "Input:", "Stdin:", "Stdout:", "Output:" };
        const char *bfields[] = { "input", "stdin", "stdout", "output" };
        for (size_t i = 0; i < ELEMENTSOF(bkeys); i++)
                show_line(bkeys[i], blob_cell(json_object_get(s, bfields[i]), buf, sizeof buf));
        if (json_is_object(result)) {
                json_t *wall = json_object_get(result, "wallMs");
                const char *err = str(result, "error");
                int n = snprintf(buf, sizeof buf, "%s", status_cell(result, st, sizeof st) ? st : "?");
                if (json_is_number(wall) && n > 0 && (size_t) n < sizeof buf)
                        n += snprintf(buf + n, sizeof buf - (size_t) n, " in %.0f ms", json_number_value(wall));
                if (err && *err && n > 0 && (size_t) n < sizeof buf)
                        snprintf(buf + n, sizeof buf - (size_t) n, ": %s", err);
                show_line("Result:", buf);
        } else
                show_line("Result:", NULL);
        int code = 0;
        json_t *in = json_object_get(json_object_get(s, "input"), "files");
        json_t *out = json_object_get(json_object_get(s, "output"), "files");
        if (json_array_size(in))
                code = show_files(c, "Input files", in);
        if (code == 0 && json_array_size(out))
                code = show_files(c, "Output files", out);
        return code;
}

static int sessions_show(Cli *c, const char *id) {
        char path[SESSION_PATH_MAX], what[64];
        json_t *s = NULL;
        if (!check_id(c, id))
                return CLI_EXIT_USAGE;
        snprintf(path, sizeof path, "/v1/sessions/%s", id);
        snprintf(what, sizeof what, "session %s", id);
        int code = cli_call(c, what, "GET", path, NULL, &s);
        if (code != 0)
                return code;
        code = c->output != OUTPUT_TABLE ? (output_value(stdout, c->output, s) < 0 ? CLI_EXIT_ERROR : 0)
                                         : show_table(c, s);
        json_decref(s);
        return code;
}

static int sessions_delete(Cli *c, const char *id) {
        char path[SESSION_PATH_MAX], what[64];
        if (!check_id(c, id))
                return CLI_EXIT_USAGE;
        snprintf(path, sizeof path, "/v1/sessions/%s", id);
        snprintf(what, sizeof what, "session %s", id);
        int code = cli_call(c, what, "DELETE", path, NULL, NULL);
        if (code == 0)
                printf("session %s deleted\n", id);
        return code;
}

int sessions_main(Cli *c, const VerbArgs *a) {
        const char *sub = a->n_pos ? a->pos[0] : "list";
        char shown[64];
        size_t want = strcmp(sub, "list") == 0 ? 1 : strcmp(sub, "show") == 0 || strcmp(sub, "delete") == 0 ? 2 : 0;
        if (!want) {
                fprintf(stderr, "%s: unknown command '%s' (expected list, show ID or delete ID); see '%s --help'\n",
                        c->prog, output_sanitize(sub, shown, sizeof shown), c->prog);
                return CLI_EXIT_USAGE;
        }
        if (a->n_pos != want && !(want == 1 && a->n_pos == 0)) {
                fprintf(stderr, "%s: expected %s; see '%s --help'\n", c->prog,
                        want == 1 ? "no arguments after list" : "one session ID", c->prog);
                return CLI_EXIT_USAGE;
        }
        if (want == 1)
                return sessions_list(c);
        return strcmp(sub, "show") == 0 ? sessions_show(c, a->pos[1]) : sessions_delete(c, a->pos[1]);
}
