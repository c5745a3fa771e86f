/* runtime/run_cmd.c: `fnbox-runtime run`: parse options (table-driven),
 * read stdin, run one jail, and print its output or the JSON result. The jail
 * comes from the runtime daemon when its socket exists (a prepared one, much
 * faster), else it is built here through the library (one-shot). Without
 * --json the exit status mirrors the box's (see docs/jail.md for the codes
 * of timeouts and other outcomes). */
#define _GNU_SOURCE
#include "run_cmd.h"

#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "jail.h"
#include "lib/quantity.h"
#include "lib/util.h"
#include "result_json.h"
#include "run_client.h"
#include "serve.h"
#include "session_fs.h"

#define STDIN_MAX (64ULL << 20)
#define SESSION_BASE_DEFAULT "/run/fnbox/sessions"
#define EXIT_USAGE 2

typedef enum DaemonUse { DAEMON_IF_THERE, DAEMON_NEVER, DAEMON_ALWAYS } DaemonUse;

typedef struct RunOptions {
        JailConfig cfg;
        bool json;
        char **env;
        size_t n_env;
        bool uid_set, cgroup_set;   /* given: sent to the daemon, else its defaults */
        const char *socket;
        DaemonUse daemon;
        /* a session's files: archives unpacked into / packed from a
         * session folder under session_base (session_fs.h) */
        const char *input_tar, *output_tar, *session_base;
} RunOptions;

typedef int (*opt_fn)(RunOptions *o, const char *arg);

static int opt_runtime(RunOptions *o, const char *a) {
        int r = jail_runtime_from_string(a);
        if (r < 0)
                return -EINVAL;
        o->cfg.runtime = (JailRuntime) r;
        return 0;
}
static int opt_code(RunOptions *o, const char *a) { o->cfg.code = a; return 0; }
static int opt_entry(RunOptions *o, const char *a) { o->cfg.entry = a; return 0; }
static int opt_memory(RunOptions *o, const char *a) { return quantity_parse_bytes(a, &o->cfg.limits.memory_bytes); }
static int opt_timeout(RunOptions *o, const char *a) { return quantity_parse_duration(a, &o->cfg.limits.timeout_ns); }
static int opt_cpu(RunOptions *o, const char *a) { return quantity_parse_cpu(a, &o->cfg.limits.cpu_millis); }
static int opt_pids(RunOptions *o, const char *a) { return quantity_parse_uint(a, &o->cfg.limits.pids); }
static int opt_tmp(RunOptions *o, const char *a) { return quantity_parse_bytes(a, &o->cfg.limits.tmp_bytes); }
static int opt_output(RunOptions *o, const char *a) { return quantity_parse_bytes(a, &o->cfg.limits.output_bytes); }
static int opt_json(RunOptions *o, const char *a) { (void) a; o->json = true; return 0; }
static int opt_cgroup(RunOptions *o, const char *a) { o->cfg.cgroup_parent = a; o->cgroup_set = true; return 0; }
static int opt_socket(RunOptions *o, const char *a) { o->socket = a; return *a == '/' ? 0 : -EINVAL; }
static int opt_no_daemon(RunOptions *o, const char *a) { (void) a; o->daemon = DAEMON_NEVER; return 0; }
static int opt_daemon(RunOptions *o, const char *a) { (void) a; o->daemon = DAEMON_ALWAYS; return 0; }
static int opt_input_dir(RunOptions *o, const char *a) { o->cfg.input_dir = a; return *a == '/' ? 0 : -EINVAL; }
static int opt_output_dir(RunOptions *o, const char *a) { o->cfg.output_dir = a; return *a == '/' ? 0 : -EINVAL; }
static int opt_input_tar(RunOptions *o, const char *a) { o->input_tar = a; return *a ? 0 : -EINVAL; }
static int opt_output_tar(RunOptions *o, const char *a) { o->output_tar = a; return *a ? 0 : -EINVAL; }
static int opt_session_base(RunOptions *o, const char *a) { o->session_base = a; return *a == '/' ? 0 : -EINVAL; }

static int opt_uid(RunOptions *o, const char *a) {
        uint64_t v;
        int r = quantity_parse_uint(a, &v);
        if (r < 0 || v == 0 || v >= 0xfffffffeULL)
                return -EINVAL;
        o->cfg.host_uid = (uid_t) v;
        o->cfg.host_gid = (gid_t) v;
        o->uid_set = true;
        return 0;
}

static int opt_env(RunOptions *o, const char *a) {
        if (o->n_env >= 256)
                return -E2BIG;
        char **n = realloc(o->env, (o->n_env + 1) * sizeof *n);
        if (!n)
                return -ENOMEM;
        o->env = n;
        o->env[o->n_env++] = (char *) a;
        return 0;
}

typedef struct OptionSpec {
        const char *name;
        bool has_arg;
        opt_fn fn;
        const char *expect;  /* shown when the value is refused */
} OptionSpec;

static const OptionSpec specs[] = {
        { "runtime", true, opt_runtime, "one of exec, sh, python3, node" },
        { "code", true, opt_code, "a path" },
        { "entry", true, opt_entry, "a file inside the code folder" },
        { "memory", true, opt_memory, "a size such as 128M" },
        { "timeout", true, opt_timeout, "a duration such as 10s or 250ms" },
        { "cpu", true, opt_cpu, "cores such as 1, 0.5 or 500m" },
        { "pids", true, opt_pids, "a whole number" },
        { "tmp", true, opt_tmp, "a size such as 16M" },
        { "output", true, opt_output, "a size such as 1M" },
        { "env", true, opt_env, "KEY=VALUE" },
        { "json", false, opt_json, NULL },
        { "uid", true, opt_uid, "an unprivileged host uid" },
        { "cgroup-parent", true, opt_cgroup, "a cgroup path relative to the hierarchy root" },
        { "socket", true, opt_socket, "the absolute path of the runtime daemon's socket" },
        { "no-daemon", false, opt_no_daemon, NULL },
        { "daemon", false, opt_daemon, NULL },
        { "input-dir", true, opt_input_dir, "the absolute path of a folder (bound read-only at /input)" },
        { "output-dir", true, opt_output_dir, "the absolute path of a folder (bound read-write at /output)" },
        { "input-tar", true, opt_input_tar, "a ustar archive (unpacked at /input)" },
        { "output-tar", true, opt_output_tar, "a file to write /output into (a ustar archive)" },
        { "session-base", true, opt_session_base, "an absolute path" },
};

static void usage(FILE *f) {
        fputs("usage: fnbox-runtime run [--runtime exec|sh|python3|node] [--code PATH] [--entry FILE]\n"
              "                         [--memory 128M] [--timeout 10s] [--cpu 1] [--pids 64]\n"
              "                         [--tmp 16M] [--output 1M] [--env K=V]... [--json]\n"
              "                         [--uid 65534] [--cgroup-parent fnbox]\n"
              "                         [--socket " SERVE_SOCKET_DEFAULT "] [--no-daemon | --daemon]\n"
              "                         [--input-dir DIR | --input-tar FILE] [--output-dir DIR | --output-tar FILE]\n"
              "                         [--session-base " SESSION_BASE_DEFAULT "]\n"
              "                         [-- ARGS...]\n", f);
}

static int parse(RunOptions *o, int argc, char **argv) {
        struct option longopts[ELEMENTSOF(specs) + 2];
        for (size_t i = 0; i < ELEMENTSOF(specs); i++)
                longopts[i] = (struct option) { specs[i].name, specs[i].has_arg, NULL, (int) i + 1000 };
        longopts[ELEMENTSOF(specs)] = (struct option) { "help", 0, NULL, 'h' };
        longopts[ELEMENTSOF(specs) + 1] = (struct option) { 0 };
        opterr = 0;
        int c;
        while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
                if (c == 'h') {
                        usage(stdout);
                        exit(0);
                }
                if (c < 1000) {
                        fprintf(stderr, "fnbox-runtime run: unknown or incomplete option '%s'\n", argv[optind - 1]);
                        return -EINVAL;
                }
                const OptionSpec *s = &specs[c - 1000];
                if (s->fn(o, optarg) < 0) {
                        fprintf(stderr, "fnbox-runtime run: --%s %s: expected %s\n", s->name, optarg, s->expect);
                        return -EINVAL;
                }
        }
        o->cfg.args = argv + optind;
        o->cfg.n_args = (size_t) (argc - optind);
        o->cfg.env = o->env;
        o->cfg.n_env = o->n_env;
        return 0;
}

/* The whole of fd (stdin: a closed one reads as empty), at most max bytes. */
static int read_all(int fd, size_t max, char **ret, size_t *ret_len) {
        size_t len = 0, cap = 0;
        char *buf = NULL;
        for (;;) {
                if (len == cap) {
                        cap = cap ? cap * 2 : 65536;
                        char *n = realloc(buf, cap);
                        if (!n)
                                return free(buf), -ENOMEM;
                        buf = n;
                }
                ssize_t n = read(fd, buf + len, cap - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && (errno == EBADF))
                        break;
                if (n < 0)
                        return free(buf), negative_errno();
                if (n == 0)
                        break;
                len += (size_t) n;
                if (len > max)
                        return free(buf), -EFBIG;
        }
        *ret = buf;
        *ret_len = len;
        return 0;
}

/* Exit status without --json: the box's own, or a fixed code per outcome. */
static int exit_status(const JailResult *r) {
        switch (r->status) {
        case JAIL_EXITED: return r->exit_code;
        case JAIL_SIGNALED: return 128 + r->signal;
        case JAIL_TIMEOUT: return 124;
        case JAIL_OUT_OF_MEMORY: return 137;
        case JAIL_OUTPUT_LIMIT: return 122;
        case JAIL_KILLED: return 137;
        default: return 125;
        }
}

static void print_plain(const JailResult *r) {
        if (r->out.len)
                (void) write_all(1, r->out.data, r->out.len);
        if (r->err.len)
                (void) write_all(2, r->err.data, r->err.len);
        if (r->status == JAIL_EXITED || r->status == JAIL_SIGNALED)
                return;
        fprintf(stderr, "fnbox-runtime: box %s%s%s\n", jail_status_to_string(r->status),
                r->error[0] ? ": " : "", r->error);
}

static int print_result(const RunOptions *o, const JailResult *res) {
        int code = exit_status(res);
        if (o->json) {
                json_t *j = jail_result_to_json(res);
                if (!j || json_dumpf(j, stdout, JSON_COMPACT) < 0) {
                        fprintf(stderr, "fnbox-runtime run: out of memory\n");
                        code = 125;
                } else {
                        fputc('\n', stdout);
                        code = res->status == JAIL_SETUP_ERROR ? 125 : 0;
                }
                json_decref(j);
        } else
                print_plain(res);
        return code;
}

/* Through the daemon: 1 when there is none (run it here instead), else the
 * exit status. A daemon that answers with an error is final. */
static int run_via_daemon(RunOptions *o) {
        const char *path = o->socket ? o->socket : getenv("FNBOX_RUNTIME_SOCKET");
        if (!path || !*path)
                path = SERVE_SOCKET_DEFAULT;
        _cleanup_close_ int fd = -1;
        int r = run_client_connect(path, &fd);
        if ((r == -ENOENT || r == -ECONNREFUSED) && o->daemon == DAEMON_IF_THERE)
                return 1;
        if (r < 0) {
                fprintf(stderr, "fnbox-runtime run: the runtime daemon at %s: %s\n", path,
                        r == -EPERM ? "not run by root, refusing to use it" : strerror(-r));
                return 125;
        }
        ProtoReply rep;
        r = run_client_call(fd, &o->cfg, o->uid_set ? o->cfg.host_uid : 0,
                            o->cgroup_set ? o->cfg.cgroup_parent : NULL, &rep);
        if (r < 0) {
                fprintf(stderr, "fnbox-runtime run: the runtime daemon at %s: %s\n", path,
                        r == -EBADMSG ? "malformed reply" : r == -ECONNRESET ? "closed the connection" : strerror(-r));
                return 125;
        }
        if (rep.refused) {
                fprintf(stderr, "fnbox-runtime run: %s\n", rep.text);
                int code = rep.exit_status;
                proto_reply_clear(&rep);
                return code;
        }
        int code = print_result(o, &rep.result);
        proto_reply_clear(&rep);
        return code;
}

static int run_here(RunOptions *o) {
        JailResult res;
        int r = jail_run(&o->cfg, &res);
        if (r < 0) {
                fprintf(stderr, "fnbox-runtime run: could not start the jail: %s\n", strerror(-r));
                return 125;
        }
        int code = print_result(o, &res);
        jail_result_clear(&res);
        return code;
}

/* --input-*, --output-* and --session-base together, and what they mean
 * for the path: the daemon takes no files, so they run here. */
static int files_check(RunOptions *o) {
        const char *bad = NULL;
        bool files = o->cfg.input_dir || o->cfg.output_dir || o->input_tar || o->output_tar;
        if (o->cfg.input_dir && o->input_tar)
                bad = "--input-dir and --input-tar: one or the other";
        else if (o->cfg.output_dir && o->output_tar)
                bad = "--output-dir and --output-tar: one or the other";
        else if (o->session_base && !o->input_tar && !o->output_tar)
                bad = "--session-base: only with --input-tar or --output-tar";
        else if (files && o->daemon == DAEMON_ALWAYS)
                bad = "--daemon: the runtime daemon takes no input or output files";
        if (bad) {
                fprintf(stderr, "fnbox-runtime run: %s\n", bad);
                return -EINVAL;
        }
        if (files)
                o->daemon = DAEMON_NEVER;
        return 0;
}

static void session_fs_removep(SessionFs *f) {
        session_fs_remove(f);
}

/* --input-tar and --output-tar: a session folder (session_fs.h) whose
 * input and output the jail binds. */
static int session_prepare(RunOptions *o, SessionFs *fs) {
        _cleanup_free_ char *in = NULL;
        size_t in_len = 0;
        char why[300], id[64];
        uint64_t rnd = 0;
        int r;
        if (!o->input_tar && !o->output_tar)
                return 0;
        if (o->input_tar) {
                _cleanup_close_ int fd = open(o->input_tar, O_RDONLY | O_CLOEXEC);
                if ((r = fd < 0 ? negative_errno() : read_all(fd, SESSION_FS_INPUT_MAX, &in, &in_len)) < 0) {
                        fprintf(stderr, "fnbox-runtime run: --input-tar %s: %s\n", o->input_tar,
                                r == -EFBIG ? "larger than 32 MiB" : strerror(-r));
                        return EXIT_USAGE;
                }
        }
        if (getrandom(&rnd, sizeof rnd, 0) != sizeof rnd)
                rnd = (uint64_t) getpid();
        snprintf(id, sizeof id, "run-%d-%016llx", (int) getpid(), (unsigned long long) rnd);
        r = session_fs_make(o->session_base ? o->session_base : SESSION_BASE_DEFAULT, id, in, in_len,
                            o->cfg.host_uid, o->cfg.host_gid, fs, why, sizeof why);
        if (r < 0) {
                fprintf(stderr, "fnbox-runtime run: %s\n", why);
                return r == -EINVAL || r == -E2BIG ? EXIT_USAGE : 125;
        }
        if (o->input_tar)
                o->cfg.input_dir = fs->input;
        if (o->output_tar)
                o->cfg.output_dir = fs->output;
        return 0;
}

/* --output-tar: what the box left in /output, packed into the file. */
static int session_collect(const RunOptions *o, SessionFs *fs, int code) {
        _cleanup_free_ void *data = NULL;
        size_t len = 0;
        char why[400];
        if (!o->output_tar)
                return code;
        int r = session_fs_pack_output(fs, &data, &len, why, sizeof why);
        if (r < 0) {
                fprintf(stderr, "fnbox-runtime run: %s\n", why);
                return 125;
        }
        _cleanup_close_ int fd = open(o->output_tar, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
        if ((r = fd < 0 ? negative_errno() : write_all(fd, data, len)) < 0) {
                fprintf(stderr, "fnbox-runtime run: --output-tar %s: %s\n", o->output_tar, strerror(-r));
                return 125;
        }
        return code;
}

static int run_checked(RunOptions *o) {
        char why[256];
        _cleanup_close_ int code_fd = -1;
        _cleanup_(session_fs_removep) SessionFs fs = { 0 };
        if (files_check(o) < 0)
                return EXIT_USAGE;
        if (jail_config_check_open(&o->cfg, why, sizeof why, &code_fd) < 0) {
                fprintf(stderr, "fnbox-runtime run: %s\n", why);
                return EXIT_USAGE;
        }
        if (geteuid() != 0) {
                fprintf(stderr, "fnbox-runtime run: must run as root (it creates namespaces and cgroups)\n");
                return EXIT_USAGE;
        }
        _cleanup_free_ char *in = NULL;
        size_t in_len = 0;
        int r = read_all(0, STDIN_MAX, &in, &in_len);
        if (r < 0) {
                fprintf(stderr, "fnbox-runtime run: reading stdin: %s\n",
                        r == -EFBIG ? "larger than 64 MiB" : strerror(-r));
                return EXIT_USAGE;
        }
        o->cfg.stdin_data = in;
        o->cfg.stdin_len = in_len;
        /* the checked fd is what the jail mounts, here or in the daemon */
        o->cfg.code_fd = code_fd;
        signal(SIGPIPE, SIG_IGN);
        if (o->daemon != DAEMON_NEVER && (r = run_via_daemon(o)) != 1)
                return r;
        if ((r = session_prepare(o, &fs)) != 0)
                return r;
        return session_collect(o, &fs, run_here(o));
}

int run_cmd_main(int argc, char **argv) {
        RunOptions o = { 0 };
        jail_config_init(&o.cfg);
        int r = parse(&o, argc, argv);
        if (r >= 0)
                r = run_checked(&o);
        else
                r = EXIT_USAGE;
        free(o.env);
        return r;
}
