/* tests/security/zygote_run.c: the hostile suite's door into zygotes. It
 * takes `fnbox-runtime run`'s options, builds one zygote for them, runs
 * --requests requests through it (one after the other, or all at once with
 * --parallel), each fed the same stdin, prints one JSON result line per
 * request (as `run --json` prints it) in the order they finish, and tears
 * everything down. Exit status: 0, 2 for bad options, 125 when the zygote
 * could not be built or died. Test tool only; needs root.
 *
 * zygote-run [--runtime R] --code PATH [--entry F] [--memory M] [--timeout T]
 *            [--cpu C] [--pids N] [--tmp M] [--output M] [--env K=V]...
 *            [--requests N] [--parallel] [-- ARGS...] */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/quantity.h"
#include "runtime/result_json.h"
#include "runtime/zygote.h"

#define REQUESTS_MAX 64
#define STDIN_MAX (64U << 20)

typedef struct Run {
        uv_loop_t loop;
        Zygote *z;
        bool ready, died;
        unsigned done, asked;
        bool parallel;
        char *in;
        size_t in_len;
} Run;

static void on_done(Jail *j, JailResult *r, void *userdata) {
        Run *x = userdata;
        (void) j;
        json_t *o = jail_result_to_json(r);
        char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
        printf("%s\n", s ? s : "{\"status\":\"setup_error\",\"error\":\"out of memory\"}");
        fflush(stdout);
        free(s);
        json_decref(o);
        x->done++;
}

static void next(Run *x, unsigned total) {
        while (x->asked < total && (x->parallel || x->asked == x->done)) {
                ZygoteChild *c;
                ZygoteRequest q = { .stdin_data = x->in, .stdin_len = x->in_len };
                int r = zygote_fork(x->z, &q, on_done, x, &c);
                if (r < 0) {
                        printf("{\"status\":\"setup_error\",\"error\":\"zygote_fork: %s\"}\n", strerror(-r));
                        x->done++;
                }
                x->asked++;
        }
}

static void on_event(Zygote *z, ZygoteEvent ev, int error, void *userdata) {
        Run *x = userdata;
        (void) z;
        (void) error;
        if (ev == ZYGOTE_EVENT_READY)
                x->ready = true;
        else
                x->died = true;
}

static int bad(const char *what, const char *arg) {
        fprintf(stderr, "zygote-run: %s%s\n", what, arg);
        return 2;
}

static int read_stdin(Run *x) {
        size_t cap = 65536;
        x->in = malloc(cap);
        for (;;) {
                if (!x->in)
                        return -ENOMEM;
                ssize_t n = read(0, x->in + x->in_len, cap - x->in_len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return n < 0 ? -errno : 0;
                x->in_len += (size_t) n;
                if (x->in_len == cap) {
                        if (cap >= STDIN_MAX)
                                return -E2BIG;
                        cap *= 2;
                        x->in = realloc(x->in, cap);
                }
        }
}

/* --template: the zygote is a template (zygote.h) that c adopts, as a
 * node's python3 instances get theirs: started from empty folders (made
 * in dir, removed after), ready, then adopted. */
static int template_adopt(Run *x, const JailConfig *c, char dir[64]) {
        char fn[96], run[96], entry[112], why[256];
        snprintf(dir, 64, "/tmp/fnbox-zrun-XXXXXX");
        if (!mkdtemp(dir))
                return -errno;
        snprintf(fn, sizeof fn, "%s/fn", dir);
        snprintf(run, sizeof run, "%s/run", dir);
        snprintf(entry, sizeof entry, "%s/main.py", fn);
        int fd;
        if (chmod(dir, 0755) < 0 || mkdir(fn, 0755) < 0 || mkdir(run, 0755) < 0 ||
            (fd = open(entry, O_WRONLY | O_CREAT | O_CLOEXEC, 0644)) < 0)
                return -errno;
        close(fd);
        JailConfig t;
        jail_config_init(&t);
        t.runtime = JAIL_RUNTIME_PYTHON3;
        t.code = fn;
        t.run_dir = run;
        t.run_dir_readonly = true;
        int r = zygote_template_new(&x->loop, &t, on_event, x, &x->z);
        if (r < 0)
                return r;
        while (!x->ready && !x->died)
                uv_run(&x->loop, UV_RUN_ONCE);
        if (x->died)
                return -EIO;
        if ((r = zygote_adopt(x->z, c, on_event, x, why, sizeof why)) < 0)
                fprintf(stderr, "zygote-run: adopt: %s\n", why);
        return r;
}

static void template_remove(const char *dir) {
        char p[112];
        if (!dir[0])
                return;
        snprintf(p, sizeof p, "%s/fn/main.py", dir);
        unlink(p);
        snprintf(p, sizeof p, "%s/fn", dir);
        rmdir(p);
        snprintf(p, sizeof p, "%s/run", dir);
        rmdir(p);
        rmdir(dir);
}

int main(int argc, char **argv) {
        static const struct option opts[] = {
                { "runtime", 1, NULL, 'r' }, { "code", 1, NULL, 'c' }, { "entry", 1, NULL, 'e' },
                { "memory", 1, NULL, 'm' }, { "timeout", 1, NULL, 't' }, { "cpu", 1, NULL, 'C' },
                { "pids", 1, NULL, 'p' }, { "tmp", 1, NULL, 'T' }, { "output", 1, NULL, 'o' },
                { "env", 1, NULL, 'E' }, { "requests", 1, NULL, 'n' }, { "parallel", 0, NULL, 'P' },
                { "template", 0, NULL, 'X' }, { 0 },
        };
        Run x = { 0 };
        JailConfig c;
        jail_config_init(&c);
        char *env[256];
        size_t n_env = 0;
        uint64_t requests = 1;
        bool template_ = false;
        int o, r = 0;
        while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (o) {
                case 'r': r = jail_runtime_from_string(optarg); if (r < 0) return bad("unknown runtime ", optarg); c.runtime = r; r = 0; break;
                case 'c': c.code = optarg; break;
                case 'e': c.entry = optarg; break;
                case 'm': r = quantity_parse_bytes(optarg, &c.limits.memory_bytes); break;
                case 't': r = quantity_parse_duration(optarg, &c.limits.timeout_ns); break;
                case 'C': r = quantity_parse_cpu(optarg, &c.limits.cpu_millis); break;
                case 'p': r = quantity_parse_uint(optarg, &c.limits.pids); break;
                case 'T': r = quantity_parse_bytes(optarg, &c.limits.tmp_bytes); break;
                case 'o': r = quantity_parse_bytes(optarg, &c.limits.output_bytes); break;
                case 'E': if (n_env == 256) return bad("too many --env", ""); env[n_env++] = optarg; break;
                case 'n': r = quantity_parse_uint(optarg, &requests); break;
                case 'P': x.parallel = true; break;
                case 'X': template_ = true; break;
                default: return bad("unknown option", "");
                }
                if (r < 0)
                        return bad("bad value ", optarg);
        }
        if (requests < 1 || requests > REQUESTS_MAX)
                return bad("--requests must be 1..64", "");
        c.env = env;
        c.n_env = n_env;
        c.args = argv + optind;
        c.n_args = (size_t) (argc - optind);
        char why[256];
        if (jail_config_check(&c, why, sizeof why) < 0)
                return bad(why, "");
        signal(SIGPIPE, SIG_IGN);
        if (jail_stdio_fill() < 0 || read_stdin(&x) < 0 || uv_loop_init(&x.loop) < 0)
                return bad("cannot start", "");
        char tdir[64] = "";
        if (template_ && zygote_template_fits(&c))
                r = template_adopt(&x, &c, tdir);
        else
                r = zygote_new(&x.loop, &c, on_event, &x, &x.z);
        if (r < 0) {
                fprintf(stderr, "zygote-run: %s: %s\n", template_ ? "a template" : "zygote_new", strerror(-r));
                template_remove(tdir);
                return 125;
        }
        while (!x.ready && !x.died)
                uv_run(&x.loop, UV_RUN_ONCE);
        if (x.ready) {
                next(&x, (unsigned) requests);
                while (x.done < requests && !x.died) {
                        uv_run(&x.loop, UV_RUN_ONCE);
                        next(&x, (unsigned) requests);
                }
                /* requests cut short by the zygote's end report too */
                while (x.done < x.asked)
                        uv_run(&x.loop, UV_RUN_ONCE);
        }
        int rc = x.died ? 125 : 0;
        if (x.died)
                fprintf(stderr, "zygote-run: %s\n", zygote_error(x.z));
        zygote_free(x.z);
        uv_run(&x.loop, UV_RUN_DEFAULT);
        uv_loop_close(&x.loop);
        free(x.in);
        template_remove(tdir);
        return rc;
}
