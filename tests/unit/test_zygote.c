/* tests/unit/test_zygote.c: zygotes (runtime/zygote.h) with real jails:
 * requests through sh and python3 zygotes, a fresh /tmp and pid namespace
 * per request, the jail's outcomes (timeout, output limit, out of memory),
 * kills, a zygote that dies, and the latency of zygote_fork() (printed,
 * not asserted). They need root, as test_jail.c does. */
#define _GNU_SOURCE
#include "test.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <linux/seccomp.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/util.h"
#include "runtime/zygote.h"
#include "runtime/zygote_child.h"

static char zdir[64];

static void zdir_remove(void) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", zdir);
        if (zdir[0] && system(cmd) != 0)
                fprintf(stderr, "could not remove %s\n", zdir);
}

/* A world-readable file NAME with body in a fresh temp folder. */
static void zdir_make(void) {
        if (!zdir[0]) {
                atexit(zdir_remove);
                snprintf(zdir, sizeof zdir, "/tmp/fnbox-unit-XXXXXX");
                ASSERT_TRUE(mkdtemp(zdir) != NULL);
                ASSERT_EQ_INT(chmod(zdir, 0755), 0);
        }
}

static const char *code_file(const char *name, const char *body) {
        zdir_make();
        static char p[128];
        snprintf(p, sizeof p, "%s/%s", zdir, name);
        FILE *f = fopen(p, "w");
        ASSERT_TRUE(f != NULL);
        fputs(body, f);
        fclose(f);
        ASSERT_EQ_INT(chmod(p, 0644), 0);
        return p;
}

static double now_ms(void) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (double) t.tv_sec * 1e3 + (double) t.tv_nsec / 1e6;
}

typedef struct Ctx {
        uv_loop_t loop;
        Zygote *z;
        bool ready, died;
        int n_done;
        JailResult results[64];
        double t_done[64];
} Ctx;

static void on_event(Zygote *z, ZygoteEvent ev, int error, void *userdata) {
        Ctx *x = userdata;
        (void) z;
        (void) error;
        if (ev == ZYGOTE_EVENT_READY)
                x->ready = true;
        else
                x->died = true;
}

static void on_done(Jail *j, JailResult *r, void *userdata) {
        Ctx *x = userdata;
        (void) j;
        x->t_done[x->n_done] = now_ms();
        x->results[x->n_done++] = *r;
        memset(r, 0, sizeof *r); /* the buffers are ours now */
}

/* Run the loop until cond holds (or 20 s pass). */
#define RUN_UNTIL(x, cond)                                                        \
        do {                                                                      \
                double _end = now_ms() + 20000;                                   \
                while (!(cond) && now_ms() < _end)                                \
                        uv_run(&(x)->loop, UV_RUN_ONCE);                          \
                ASSERT_TRUE(cond);                                                \
        } while (0)

/* An empty folder under zdir, root's, mode 0755. */
static const char *empty_dir(const char *name) {
        zdir_make();
        static char p[4][128];
        static int k;
        char *d = p[k++ % 4];
        snprintf(d, sizeof p[0], "%s/%s", zdir, name);
        ASSERT_TRUE(mkdir(d, 0755) == 0 || errno == EEXIST);
        ASSERT_EQ_INT(chmod(d, 0755), 0);
        return d;
}

/* zygote_new, or, with via_template, a template (runtime/template.c
 * makes its config so: empty code and run folders) that c adopts. */
static bool via_template;

static void template_start(Ctx *x) {
        JailConfig t;
        jail_config_init(&t);
        t.runtime = JAIL_RUNTIME_PYTHON3;
        t.code = empty_dir("tfn");
        char entry[160];
        snprintf(entry, sizeof entry, "%s/main.py", t.code);
        FILE *f = fopen(entry, "w"); /* the entry a python3 folder needs; never run */
        ASSERT_TRUE(f != NULL);
        fclose(f);
        ASSERT_EQ_INT(chmod(entry, 0644), 0);
        t.run_dir = empty_dir("trun");
        t.run_dir_readonly = true;
        ASSERT_EQ_INT(zygote_template_new(&x->loop, &t, on_event, x, &x->z), 0);
        RUN_UNTIL(x, x->ready || x->died);
        if (!x->ready)
                FAIL_AT("template died: %s", zygote_error(x->z));
}

static void make_zygote(Ctx *x, const JailConfig *c) {
        char why[256] = "";
        if (!via_template || c->runtime != JAIL_RUNTIME_PYTHON3) {
                ASSERT_EQ_INT(zygote_new(&x->loop, c, on_event, x, &x->z), 0);
                RUN_UNTIL(x, x->ready || x->died);
                if (!x->ready)
                        FAIL_AT("zygote died: %s", zygote_error(x->z));
                return;
        }
        template_start(x);
        int r = zygote_adopt(x->z, c, on_event, x, why, sizeof why);
        if (r < 0)
                FAIL_AT("adopt: %s: %s", strerror(-r), why);
}

/* A fresh context with its loop, and a default config for rt and code. */
static void ctx_init(Ctx *x, JailConfig *c, JailRuntime rt, const char *code) {
        signal(SIGPIPE, SIG_IGN);
        memset(x, 0, sizeof *x);
        ASSERT_EQ_INT(uv_loop_init(&x->loop), 0);
        jail_config_init(c);
        c->runtime = rt;
        c->code = code;
}

static void ctx_start(Ctx *x, JailRuntime rt, const char *code) {
        JailConfig c;
        ctx_init(x, &c, rt, code);
        make_zygote(x, &c);
}

static void ctx_end(Ctx *x) {
        zygote_free(x->z);
        uv_run(&x->loop, UV_RUN_DEFAULT); /* until nothing is left */
        ASSERT_EQ_INT(uv_loop_close(&x->loop), 0);
        for (int i = 0; i < x->n_done; i++)
                jail_result_clear(&x->results[i]);
}

static int fork_in(Ctx *x, const char *in, ZygoteChild **c) {
        ZygoteRequest q = { .stdin_data = in, .stdin_len = strlen(in) };
        return zygote_fork(x->z, &q, on_done, x, c);
}

/* One request with env and timeout, run to its end. */
static JailResult *one_with(Ctx *x, const char *in, const char *const *env, size_t n_env, uint64_t timeout_ns) {
        ZygoteChild *c;
        int n = x->n_done;
        ZygoteRequest q = { .stdin_data = in, .stdin_len = strlen(in), .env = env, .n_env = n_env,
                            .timeout_ns = timeout_ns };
        ASSERT_EQ_INT(zygote_fork(x->z, &q, on_done, x, &c), 0);
        RUN_UNTIL(x, x->n_done > n);
        return &x->results[n];
}

static JailResult *one(Ctx *x, const char *in) {
        return one_with(x, in, NULL, 0, 0);
}

TEST(zygote_sh_requests_and_fresh_tmp) {
        Ctx x;
        ctx_start(&x, JAIL_RUNTIME_SH,
                  code_file("main.sh", "ls -A /tmp; touch /tmp/left; echo \"in: $(cat)\"; echo err >&2; exit 3\n"));
        for (int i = 0; i < 5; i++) {
                JailResult *r = one(&x, "hello");
                if (r->status != JAIL_EXITED)
                        FAIL_AT("status %s: %s", jail_status_to_string(r->status), r->error);
                if (r->exit_code != 3)
                        FAIL_AT("exit %d: %s / %s", r->exit_code, r->out.data ? r->out.data : "", r->err.data ? r->err.data : "");
                /* nothing of the previous request's /tmp */
                ASSERT_EQ_STR(r->out.data, "in: hello\n");
                ASSERT_EQ_STR(r->err.data, "err\n");
        }
        ASSERT_TRUE(zygote_is_ready(x.z));
        ASSERT_EQ_UINT(zygote_children(x.z), 0);
        ctx_end(&x);
}

TEST(zygote_child_is_a_jail) {
        Ctx x;
        /* its own pid namespace (its init is invisible), no capability, the
         * seccomp filter, no network interface, a /tmp of the default size */
        ctx_start(&x, JAIL_RUNTIME_SH,
                  code_file("main.sh", "cd /proc; echo [0-9]*; grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' "
                                       "/proc/self/status | tr -s '\\t' ' '; id -u; cat /proc/self/cgroup | "
                                       "grep -c ':/$'; df -k /tmp | tail -1 | tr -s ' ' | cut -d' ' -f2\n"));
        JailResult *r = one(&x, "");
        ASSERT_EQ_INT(r->status, JAIL_EXITED);
        ASSERT_EQ_INT(r->exit_code, 0);
        char want[160];
        snprintf(want, sizeof want, "2\nCapEff: 0000000000000000\nCapBnd: 0000000000000000\nNoNewPrivs: 1\n"
                                    "Seccomp: 2\n1000\n");
        if (strncmp(r->out.data, want, strlen(want)) != 0 || !strstr(r->out.data + strlen(want), "16384"))
                FAIL_AT("the child's view:\n%s\nexpected to start with:\n%s(cgroup lines, then 16384)", r->out.data,
                        want);
        ctx_end(&x);
}

TEST(zygote_outcomes_as_a_jail) {
        Ctx x;
        ctx_start(&x, JAIL_RUNTIME_SH,
                  code_file("main.sh", "read what; case $what in\n"
                                       "spin) while :; do :; done;;\n"
                                       "flood) yes;;\n"
                                       "kill) kill -9 $$;;\n"
                                       "bomb) for i in $(seq 200); do sleep 5 & done; wait;;\n"
                                       "esac\n"));
        /* the revision's limits: 10 s timeout; ask for a shorter one by killing */
        ZygoteChild *c;
        ASSERT_EQ_INT(fork_in(&x, "spin\n", &c), 0);
        for (int i = 0; i < 20; i++)
                uv_run(&x.loop, UV_RUN_NOWAIT);
        ASSERT_EQ_INT(zygote_child_kill(c), 0);
        RUN_UNTIL(&x, x.n_done == 1);
        if (x.results[0].status != JAIL_KILLED)
                FAIL_AT("status %s: %s", jail_status_to_string(x.results[0].status), x.results[0].error);
        JailResult *r = one(&x, "flood\n");
        ASSERT_EQ_INT(r->status, JAIL_OUTPUT_LIMIT);
        ASSERT_EQ_UINT(r->out.len, 1 << 20);
        r = one(&x, "kill\n");
        ASSERT_EQ_INT(r->status, JAIL_SIGNALED);
        ASSERT_EQ_INT(r->signal, SIGKILL);
        /* --pids 64: the fork bomb is refused, the box goes on */
        r = one(&x, "bomb\n");
        ASSERT_EQ_INT(r->status, JAIL_EXITED);
        ASSERT_TRUE(r->err.data && strstr(r->err.data, "fork") != NULL);
        ctx_end(&x);
}

TEST(zygote_timeout_and_memory) {
        Ctx x;
        JailConfig c;
        ctx_init(&x, &c, JAIL_RUNTIME_PYTHON3, NULL);
        c.code = code_file("limits.py", "import sys\nw = sys.stdin.read()\n"
                                        "if w == 'spin':\n    while True: pass\n"
                                        "b = bytearray(200 << 20)\nfor i in range(0, len(b), 4096): b[i] = 1\n");
        c.limits.timeout_ns = 300 * 1000000ULL;
        c.limits.memory_bytes = 64ULL << 20;
        make_zygote(&x, &c);
        JailResult *r = one(&x, "spin");
        ASSERT_EQ_INT(r->status, JAIL_TIMEOUT);
        ASSERT_TRUE(r->wall_ms >= 290 && r->wall_ms < 2000);
        r = one(&x, "fill");
        ASSERT_EQ_INT(r->status, JAIL_OUT_OF_MEMORY);
        ctx_end(&x);
}

/* Turn the loop for ms milliseconds. */
static void run_for(Ctx *x, double ms) {
        double until = now_ms() + ms;
        while (now_ms() < until)
                uv_run(&x->loop, UV_RUN_NOWAIT);
}

/* An ended child's cgroup serves a later child of the same zygote: the
 * OOM kill and the peak of the one before are not the next one's. */
TEST(zygote_cgroup_reused) {
        Ctx x;
        JailConfig c;
        ctx_init(&x, &c, JAIL_RUNTIME_PYTHON3, NULL);
        c.code = code_file("reuse.py", "import sys\nw = sys.stdin.read()\n"
                                       "if w == 'fill':\n"
                                       "    b = bytearray(200 << 20)\n"
                                       "    for i in range(0, len(b), 4096): b[i] = 1\n"
                                       "print('small')\n");
        c.limits.memory_bytes = 64ULL << 20;
        make_zygote(&x, &c);
        ZygoteChild *first;
        ASSERT_EQ_INT(fork_in(&x, "fill", &first), 0);
        char name[64];
        snprintf(name, sizeof name, "%s", jail_cgroup_name(zygote_child_jail(first)));
        RUN_UNTIL(&x, x.n_done == 1);
        ASSERT_EQ_INT(x.results[0].status, JAIL_OUT_OF_MEMORY);
        /* The first child's cgroup comes back once its 64 MiB are torn
         * down, and kept cgroups are taken last in, first out: let it
         * come back before the next child ends, so that it is the one
         * the next spare takes. The spares made before (3) have cgroups
         * of their own, so it serves a request a few requests later. */
        run_for(&x, 500);
        bool reused = false;
        for (int i = 1; i < 40 && !reused; i++) {
                ZygoteChild *ch;
                ASSERT_EQ_INT(fork_in(&x, "small", &ch), 0);
                const char *n = jail_cgroup_name(zygote_child_jail(ch));
                reused |= n && strcmp(n, name) == 0;
                RUN_UNTIL(&x, x.n_done == i + 1);
                JailResult *r = &x.results[i];
                ASSERT_EQ_INT(r->status, JAIL_EXITED);
                ASSERT_EQ_INT(r->exit_code, 0);
                ASSERT_TRUE(r->out.len == 6 && memcmp(r->out.data, "small\n", 6) == 0);
                ASSERT_TRUE(r->max_rss_kb < 64 * 1024);
        }
        ASSERT_TRUE(reused);
        ctx_end(&x);
}

/* A child's network namespace serves a later child once the first is
 * gone and nothing of it is left there: a name the first bound is free
 * again. Two children at once never share one. */
TEST(zygote_netns_reused_never_shared) {
        Ctx x;
        JailConfig c;
        ctx_init(&x, &c, JAIL_RUNTIME_PYTHON3, NULL);
        c.code = code_file("netns.py", "import os, socket, sys, time\nw = sys.stdin.read()\n"
                                       "s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
                                       "s.bind(b'\\0fnbox-unit-netns')\n"
                                       "print(os.stat('/proc/self/ns/net').st_ino, flush=True)\n"
                                       "if w == 'hold': time.sleep(1.5)\n");
        make_zygote(&x, &c);
        unsigned long long ino[8];
        bool repeated = false;
        for (int i = 0; i < 8; i++) {
                JailResult *r = one(&x, "x");
                if (r->status != JAIL_EXITED || r->exit_code != 0)
                        FAIL_AT("request %d: status %d code %d: %.*s", i, r->status, r->exit_code, (int) r->err.len,
                                r->err.data ? r->err.data : "");
                ino[i] = strtoull(r->out.data, NULL, 10);
                ASSERT_TRUE(ino[i] > 0);
                for (int k = 0; k < i; k++)
                        repeated |= ino[k] == ino[i];
                run_for(&x, 100); /* the child ends: its namespace goes back to the zygote */
        }
        ASSERT_TRUE(repeated);
        ZygoteChild *a, *b;
        int n = x.n_done;
        ASSERT_EQ_INT(fork_in(&x, "hold", &a), 0);
        run_for(&x, 300);
        ASSERT_EQ_INT(fork_in(&x, "x", &b), 0);
        RUN_UNTIL(&x, x.n_done == n + 2);
        for (int i = n; i < n + 2; i++)
                ASSERT_TRUE(x.results[i].status == JAIL_EXITED && x.results[i].exit_code == 0);
        ASSERT_TRUE(strtoull(x.results[n].out.data, NULL, 10) != strtoull(x.results[n + 1].out.data, NULL, 10));
        ctx_end(&x);
}

static void python_requests(void) {
        Ctx x;
        ctx_start(&x, JAIL_RUNTIME_PYTHON3,
                  code_file("hello.py", "import sys, json, random, os\n"
                                        "d = json.loads(sys.stdin.read())\n"
                                        "print(json.dumps({'hello': d['name'], 'r': random.random(),\n"
                                        "  'tmp': os.listdir('/tmp'), 'pids': sorted(os.listdir('/proc'))[:3],\n"
                                        "  'argv': sys.argv, 'main': __name__}))\n"
                                        "open('/tmp/left', 'w').write('x')\n"
                                        "if d['name'] == 'bad': raise ValueError('boom')\n"
                                        "if d['name'] == 'exit': sys.exit(7)\n"));
        char first[512] = "";
        for (int i = 0; i < 3; i++) {
                JailResult *r = one(&x, "{\"name\": \"fnbox\"}");
                if (r->status != JAIL_EXITED || r->exit_code != 0)
                        FAIL_AT("status %s %d: %s / %s", jail_status_to_string(r->status), r->exit_code, r->error,
                                r->err.data ? r->err.data : "");
                ASSERT_TRUE(strstr(r->out.data, "\"hello\": \"fnbox\"") != NULL);
                ASSERT_TRUE(strstr(r->out.data, "\"tmp\": []") != NULL);
                ASSERT_TRUE(strstr(r->out.data, "\"argv\": [\"/fn/hello.py\"]") != NULL);
                ASSERT_TRUE(strstr(r->out.data, "\"main\": \"__main__\"") != NULL);
                /* random is seeded again in every child */
                ASSERT_TRUE(strcmp(first, r->out.data) != 0);
                snprintf(first, sizeof first, "%s", r->out.data);
        }
        JailResult *r = one(&x, "{\"name\": \"bad\"}");
        ASSERT_EQ_INT(r->status, JAIL_EXITED);
        ASSERT_EQ_INT(r->exit_code, 1);
        ASSERT_TRUE(strstr(r->err.data, "ValueError: boom") && strstr(r->err.data, "hello.py"));
        if (strstr(r->err.data, "<string>"))
                FAIL_AT("the driver in the traceback: %s", r->err.data);
        r = one(&x, "{\"name\": \"exit\"}");
        ASSERT_EQ_INT(r->status, JAIL_EXITED);
        ASSERT_EQ_INT(r->exit_code, 7);
        ctx_end(&x);
}

static void expect_ok(const JailResult *r) {
        if (r->status != JAIL_EXITED || r->exit_code != 0)
                FAIL_AT("status %s %d: %s / %s", jail_status_to_string(r->status), r->exit_code, r->error,
                        r->err.data ? r->err.data : "");
}

/* Processes descended from this one that run fnbox-zygote-init (comm is
 * the memfd's name, cut to 15 bytes). */
static unsigned inits_below_me(void) {
        struct { int pid, ppid; bool init; } ps[4096];
        size_t n = 0;
        DIR *d = opendir("/proc");
        ASSERT_TRUE(d != NULL);
        for (struct dirent *e; n < 4096 && (e = readdir(d));) {
                int pid = atoi(e->d_name);
                char path[64], buf[512];
                if (pid <= 0)
                        continue;
                snprintf(path, sizeof path, "/proc/%d/stat", pid);
                FILE *f = fopen(path, "r");
                if (!f)
                        continue;
                size_t len = fread(buf, 1, sizeof buf - 1, f);
                fclose(f);
                buf[len] = 0;
                char *open_ = strchr(buf, '('), *close_ = strrchr(buf, ')');
                if (!open_ || !close_ || strlen(close_) < 5)
                        continue;
                ps[n].pid = pid;
                ps[n].init = strncmp(open_ + 1, "memfd:fnbox-zyg)", 16) == 0;
                ps[n++].ppid = atoi(close_ + 4);        /* ") S PPID" */
        }
        closedir(d);
        /* this process as /proc names it (it may be pid 1 of a namespace of its own) */
        char self[32] = "";
        ASSERT_TRUE(readlink("/proc/self", self, sizeof self - 1) > 0);
        int me = atoi(self);
        unsigned count = 0;
        for (size_t i = 0; i < n; i++) {
                int up = ps[i].pid;
                for (int hops = 0; ps[i].init && up > 1 && up != me && hops < 64; hops++) {
                        int next = 0;
                        for (size_t j = 0; j < n && !next; j++)
                                next = ps[j].pid == up ? ps[j].ppid : 0;
                        up = next;
                }
                count += ps[i].init && up == me;
        }
        return count;
}

TEST(zygote_python_requests) {
        python_requests();
        /* the children's init is fnbox-zygote-init, not a copy of python3 */
        Ctx x;
        ctx_start(&x, JAIL_RUNTIME_PYTHON3, code_file("one.py", "print('one')\n"));
        expect_ok(one(&x, ""));
        ASSERT_TRUE(inits_below_me() > 0);
        ctx_end(&x);
}

/* A host that forbids executable memfds (vm.memfd_noexec = 2, a pid
 * namespace's setting: set here in one of the test's own, whose pid 1
 * runs the requests, with a mount namespace and /proc of its own) gets no fnbox-zygote-init; a python3 zygote's
 * children are then copies of the interpreter, as before it, and serve
 * the same requests. */
static void without_init(void) {
        /* a /proc of this pid namespace: the runtime names its jails' processes there */
        if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
            mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
                FAIL_AT("a mount namespace with its own /proc: %s", strerror(errno));
        int fd = open("/proc/sys/vm/memfd_noexec", O_WRONLY);
        if (fd < 0 || write(fd, "2", 1) != 1)
                FAIL_AT("vm.memfd_noexec = 2 in a pid namespace of the test's own: %s", strerror(errno));
        close(fd);
        python_requests();
        Ctx x;
        ctx_start(&x, JAIL_RUNTIME_PYTHON3, code_file("one.py", "print('one')\n"));
        expect_ok(one(&x, ""));
        ASSERT_EQ_INT(inits_below_me(), 0);
        ctx_end(&x);
}

TEST(zygote_python_without_init) {
        if (access("/proc/sys/vm/memfd_noexec", W_OK) < 0) {
                printf("    no vm.memfd_noexec (a kernel before 6.3): every memfd may be executed there\n");
                return;
        }
        /* LeakSanitizer cannot stop the world in a process whose children
         * go to another pid namespace, nor from a pid 1: the namespace is
         * made in a process of its own, and its pid 1 leaves without the
         * check (this process's is made) */
        pid_t child = fork();
        ASSERT_TRUE(child >= 0);
        if (child == 0) {
                if (unshare(CLONE_NEWPID) < 0)
                        FAIL_AT("unshare a pid namespace: %s", strerror(errno));
                pid_t init = fork();
                if (init == 0) {
                        without_init();
                        _exit(0);
                }
                int st = 0;
                _exit(init > 0 && waitpid(init, &st, 0) == init && WIFEXITED(st) ? WEXITSTATUS(st) : 2);
        }
        int st = 0;
        ASSERT_EQ_INT(waitpid(child, &st, 0), child);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
                FAIL_AT("the requests without fnbox-zygote-init: wait status 0x%x", st);
}

/* The box process warms its stdio on pipes of its own before GO
 * (zygote_driver.py, _warm_stdio): the box reads exactly its body and
 * writes exactly its output, as text or as bytes, empty or larger than a
 * pipe's buffer, and no fd of the warm-up is left (beyond 0-2: listdir's
 * own and the DONE pipe). */
TEST(zygote_python_stdio_exact) {
        Ctx x;
        ctx_start(&x, JAIL_RUNTIME_PYTHON3,
                  code_file("io.py", "import os, sys\n"
                                     "b = sys.stdin.buffer.read() if os.environ.get('FNBOX_PATH') == '/b' else "
                                     "sys.stdin.read().encode()\n"
                                     "fds = sorted(os.listdir('/proc/self/fd'), key=int)\n"
                                     "fds = '%s +%d' % (' '.join(fds[:3]), len(fds) - 3)\n"
                                     "sys.stdout.write('%d %s [%s] [%s]' % (len(b), sum(b) % 65521, b[:4].decode(), fds))\n"));
        static const char *const as_bytes[] = { "FNBOX_PATH=/b" };
        size_t big = 300 * 1024;
        char *in = malloc(big + 1);
        ASSERT_TRUE(in != NULL);
        unsigned sum = 0;
        for (size_t i = 0; i < big; i++) {
                in[i] = (char) ('a' + i % 26);
                sum += (unsigned char) in[i];
        }
        in[big] = 0;
        char want[128];
        for (int round = 0; round < 2; round++) {
                const char *const *env = round ? as_bytes : NULL;
                JailResult *r = one_with(&x, "", env, round, 0);
                expect_ok(r);
                ASSERT_EQ_STR(r->out.data, "0 0 [] [0 1 2 +2]");
                r = one_with(&x, "abc", env, round, 0);
                expect_ok(r);
                ASSERT_EQ_STR(r->out.data, "3 294 [abc] [0 1 2 +2]");
                r = one_with(&x, in, env, round, 0);
                expect_ok(r);
                snprintf(want, sizeof want, "%zu %u [abcd] [0 1 2 +2]", big, sum % 65521);
                ASSERT_EQ_STR(r->out.data, want);
        }
        free(in);
        ctx_end(&x);
}

/* A box's environment: the revision's, with the request's on top, and
 * nothing of an earlier request's. */
static void env_requests(JailRuntime rt, const char *code) {
        static const char *const rev_env[] = { "FNBOX_PATH=/from-the-spec", "KEEP=spec" };
        static const char *const a[] = { "FNBOX_REQUEST_ID=req-a", "FNBOX_TRACEPARENT=00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                                         "FNBOX_METHOD=PUT", "FNBOX_PATH=/a/b", "FNBOX_QUERY=x=1&y=%20" };
        static const char *const b[] = { "FNBOX_REQUEST_ID=req-b", "FNBOX_METHOD=GET", "FNBOX_PATH=/",
                                         "FNBOX_QUERY=" };
        Ctx x;
        JailConfig c;
        ctx_init(&x, &c, rt, code);
        c.env = (char **) rev_env;
        c.n_env = ELEMENTSOF(rev_env);
        make_zygote(&x, &c);
        for (int round = 0; round < 2; round++) {
                JailResult *r = one_with(&x, "", a, ELEMENTSOF(a), 0);
                expect_ok(r);
                ASSERT_EQ_STR(r->out.data, "FNBOX_METHOD=PUT\nFNBOX_PATH=/a/b\nFNBOX_QUERY=x=1&y=%20\n"
                                           "FNBOX_REQUEST_ID=req-a\n"
                                           "FNBOX_TRACEPARENT=00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\n"
                                           "KEEP=spec\n");
                /* the next request: its own values only, no traceparent */
                r = one_with(&x, "", b, ELEMENTSOF(b), 0);
                expect_ok(r);
                ASSERT_EQ_STR(r->out.data, "FNBOX_METHOD=GET\nFNBOX_PATH=/\nFNBOX_QUERY=\nFNBOX_REQUEST_ID=req-b\n"
                                           "KEEP=spec\n");
                /* none at all: the revision's */
                r = one_with(&x, "", NULL, 0, 0);
                expect_ok(r);
                ASSERT_EQ_STR(r->out.data, "FNBOX_PATH=/from-the-spec\nKEEP=spec\n");
        }
        ctx_end(&x);
}

TEST(zygote_env_sh) {
        /* the shell's environment and what a program it starts gets */
        env_requests(JAIL_RUNTIME_SH, code_file("env.sh", "env | grep -E '^(FNBOX_|KEEP=)' | sort\n"));
}

static void env_python(void) {
        /* os.environ, and the C environment that a child process inherits */
        env_requests(JAIL_RUNTIME_PYTHON3,
                     code_file("env.py", "import os, subprocess\n"
                                         "mine = sorted(f'{k}={v}' for k, v in os.environ.items()\n"
                                         "              if k.startswith('FNBOX_') or k == 'KEEP')\n"
                                         "theirs = subprocess.run(['sh', '-c', \"env | grep -E '^(FNBOX_|KEEP=)' | sort\"],\n"
                                         "                        capture_output=True, text=True).stdout.split()\n"
                                         "assert mine == theirs, (mine, theirs)\n"
                                         "print('\\n'.join(mine))\n"));
}

TEST(zygote_env_python) {
        env_python();
}

TEST(zygote_env_exec_and_node) {
        static const char *const env[] = { "FNBOX_REQUEST_ID=req-x", "FNBOX_QUERY=q" };
        Ctx x;
        ctx_start(&x, JAIL_RUNTIME_EXEC, "/usr/bin/env");
        JailResult *r = one_with(&x, "", env, ELEMENTSOF(env), 0);
        expect_ok(r);
        ASSERT_TRUE(strstr(r->out.data, "\nFNBOX_REQUEST_ID=req-x\nFNBOX_QUERY=q\n") != NULL);
        r = one(&x, "");
        expect_ok(r);
        ASSERT_TRUE(strstr(r->out.data, "FNBOX_") == NULL);
        ctx_end(&x);
        if (access("/usr/bin/node", X_OK) != 0)
                return;
        ctx_start(&x, JAIL_RUNTIME_NODE, code_file("env.js", "console.log(process.env.FNBOX_REQUEST_ID + ' ' + "
                                                             "process.env.FNBOX_QUERY);\n"));
        r = one_with(&x, "", env, ELEMENTSOF(env), 0);
        expect_ok(r);
        ASSERT_EQ_STR(r->out.data, "req-x q\n");
        r = one(&x, "");
        expect_ok(r);
        ASSERT_EQ_STR(r->out.data, "undefined undefined\n");
        ctx_end(&x);
}

TEST(zygote_env_refused) {
        Ctx x;
        ctx_start(&x, JAIL_RUNTIME_SH, code_file("main.sh", "exit 0\n"));
        ZygoteChild *c;
        static const char *const bad[] = { "1X=a", "X", "=a", "X-Y=a", "X=a\nb", "X=a\tb", "X=\x7f" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                ZygoteRequest q = { .env = &bad[i], .n_env = 1 };
                if (zygote_fork(x.z, &q, on_done, &x, &c) != -EINVAL)
                        FAIL_AT("accepted %s", bad[i]);
        }
        const char *many[ZYGOTE_ENV_MAX + 1];
        for (size_t i = 0; i < ELEMENTSOF(many); i++)
                many[i] = "A=b";
        ZygoteRequest q = { .env = many, .n_env = ELEMENTSOF(many) };
        ASSERT_EQ_INT(zygote_fork(x.z, &q, on_done, &x, &c), -E2BIG);
        /* 16 entries fit; 20 KiB in all fits, a byte more does not */
        q.n_env = ZYGOTE_ENV_MAX;
        ASSERT_EQ_INT(zygote_fork(x.z, &q, on_done, &x, &c), 0);
        RUN_UNTIL(&x, x.n_done == 1);
        expect_ok(&x.results[0]);
        static char big[2][ZYGOTE_ENV_BYTES];
        size_t half = ZYGOTE_ENV_BYTES / 2;
        for (int k = 0; k < 2; k++) {
                memset(big[k], 'v', half - 1);
                memcpy(big[k], k ? "B=" : "A=", 2);
                big[k][half - 1] = 0; /* with its NUL: half */
        }
        const char *two[2] = { big[0], big[1] };
        q = (ZygoteRequest) { .env = two, .n_env = 2 };
        ASSERT_EQ_INT(zygote_fork(x.z, &q, on_done, &x, &c), 0);
        RUN_UNTIL(&x, x.n_done == 2);
        expect_ok(&x.results[1]);
        memset(big[1] + half - 1, 'v', 1);
        big[1][half] = 0;
        ASSERT_EQ_INT(zygote_fork(x.z, &q, on_done, &x, &c), -E2BIG);
        ASSERT_EQ_UINT(zygote_children(x.z), 0);
        ctx_end(&x);
}

/* A request's own timeout: shorter than the revision's applies and ends
 * as a timeout; a longer one is cut to the revision's. */
TEST(zygote_request_timeout) {
        Ctx x;
        JailConfig c;
        ctx_init(&x, &c, JAIL_RUNTIME_SH, NULL);
        c.code = code_file("spin.sh", "read what; [ \"$what\" = spin ] && while :; do :; done; echo done\n");
        c.limits.timeout_ns = 800 * 1000000ULL;
        make_zygote(&x, &c);
        JailResult *r = one_with(&x, "spin\n", NULL, 0, 150 * 1000000ULL);
        if (r->status != JAIL_TIMEOUT)
                FAIL_AT("status %s: %s", jail_status_to_string(r->status), r->error);
        if (r->wall_ms < 145 || r->wall_ms >= 700)
                FAIL_AT("a 150 ms timeout took %.0f ms", r->wall_ms);
        r = one_with(&x, "spin\n", NULL, 0, 60ULL * 1000000000ULL);
        ASSERT_EQ_INT(r->status, JAIL_TIMEOUT);
        if (r->wall_ms < 790 || r->wall_ms >= 3000)
                FAIL_AT("a 60 s timeout under an 800 ms revision took %.0f ms", r->wall_ms);
        /* the next request has the revision's again */
        r = one_with(&x, "quick\n", NULL, 0, 0);
        expect_ok(r);
        ASSERT_EQ_STR(r->out.data, "done\n");
        ctx_end(&x);
}

/* The zygote's own process: the test's child that is not a jail of ours
 * otherwise (the only one, in these tests). */
static pid_t zygote_pid(void) {
        DIR *d = opendir("/proc");
        struct dirent *e;
        pid_t found = -1;
        while (d && (e = readdir(d))) {
                char p[300], buf[512];
                snprintf(p, sizeof p, "/proc/%s/stat", e->d_name);
                FILE *f = fopen(p, "re");
                if (!f)
                        continue;
                if (fgets(buf, sizeof buf, f)) {
                        char *rp = strrchr(buf, ')');
                        int ppid;
                        if (rp && sscanf(rp + 2, "%*c %d", &ppid) == 1 && ppid == getpid())
                                found = atoi(e->d_name);
                }
                fclose(f);
        }
        if (d)
                closedir(d);
        return found;
}

TEST(zygote_died_is_reported) {
        Ctx x;
        ctx_start(&x, JAIL_RUNTIME_SH, code_file("main.sh", "sleep 5\n"));
        ZygoteChild *c;
        ASSERT_EQ_INT(fork_in(&x, "", &c), 0);
        for (int i = 0; i < 50; i++)
                uv_run(&x.loop, UV_RUN_NOWAIT);
        pid_t pid = zygote_pid();
        ASSERT_TRUE(pid > 0);
        ASSERT_EQ_INT(kill(pid, SIGKILL), 0);
        RUN_UNTIL(&x, x.died);
        RUN_UNTIL(&x, x.n_done >= 1);
        ASSERT_EQ_INT(x.n_done, 1);
        if (x.results[0].status != JAIL_KILLED)
                FAIL_AT("status %s: %s", jail_status_to_string(x.results[0].status), x.results[0].error);
        ASSERT_TRUE(!zygote_is_ready(x.z));
        ASSERT_EQ_INT(fork_in(&x, "", &c), -ENOTCONN);
        ASSERT_TRUE(strstr(zygote_error(x.z), "zygote") != NULL);
        ctx_end(&x);
}

#ifdef ZYGOTE_INIT_FILTER
/* fnbox-zygote-init's filter lets a process make the calls the init makes
 * (its wait, its usage, its report, its exit) and kills it at any other.
 * Raw system calls only in the child: a sanitizer's wrappers may make
 * calls of their own. */
TEST(zygote_init_filter_allow_list) {
        for (int other = 0; other < 2; other++) {
                pid_t pid = fork();
                ASSERT_TRUE(pid >= 0);
                if (pid == 0) {
                        int sv[2], st;
                        struct rusage ru;
                        if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) < 0 ||
                            prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
                            syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &zygote_init_filter) < 0)
                                syscall(SYS_exit_group, 3);
                        if (syscall(SYS_prctl, PR_SET_DUMPABLE, 0, 0, 0, 0) < 0 ||
                            syscall(SYS_wait4, -1, &st, WNOHANG, NULL) != -1 ||
                            syscall(SYS_getrusage, RUSAGE_CHILDREN, &ru) < 0 ||
                            syscall(SYS_sendto, sv[0], "x", 1, MSG_NOSIGNAL, NULL, 0) != 1)
                                syscall(SYS_exit_group, 4);
                        if (other)
                                (void) syscall(SYS_getpid);
                        syscall(SYS_exit_group, 0);
                }
                int st;
                ASSERT_EQ_INT(waitpid(pid, &st, 0), pid);
                if (other && !(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS))
                        FAIL_AT("getpid under the init's filter: wait status 0x%x, not SIGSYS", st);
                if (!other && !(WIFEXITED(st) && WEXITSTATUS(st) == 0))
                        FAIL_AT("the init's own calls under its filter: wait status 0x%x", st);
        }
}
#endif

/* A zygote that never says it is ready (here: stopped as it starts) is
 * killed at its start deadline and reported dead, with the reason, and
 * nothing of it is left. */
TEST(zygote_start_deadline) {
        unsigned saved = zygote_start_ms;
        zygote_start_ms = 300;
        Ctx x;
        JailConfig c;
        ctx_init(&x, &c, JAIL_RUNTIME_PYTHON3, code_file("main.py", "print('never')\n"));
        ASSERT_EQ_INT(zygote_new(&x.loop, &c, on_event, &x, &x.z), 0);
        pid_t pid = zygote_pid();
        ASSERT_TRUE(pid > 0);
        ASSERT_EQ_INT(kill(pid, SIGSTOP), 0);
        double t0 = now_ms();
        RUN_UNTIL(&x, x.died);
        zygote_start_ms = saved;
        ASSERT_TRUE(!x.ready);
        ASSERT_TRUE(now_ms() - t0 < 5000);
        if (!strstr(zygote_error(x.z), "not ready within 300 ms"))
                FAIL_AT("error: %s", zygote_error(x.z));
        ctx_end(&x);
        ASSERT_EQ_INT(zygote_pid(), -1);
}

TEST(zygote_refuses_bad_config) {
        uv_loop_t loop;
        ASSERT_EQ_INT(uv_loop_init(&loop), 0);
        JailConfig c;
        jail_config_init(&c);
        c.code = "/proc/self";
        Zygote *z;
        ASSERT_EQ_INT(zygote_new(&loop, &c, on_event, NULL, &z), -EINVAL);
        c.code = "/bin/true";
        c.limits.memory_bytes = 1;
        ASSERT_EQ_INT(zygote_new(&loop, &c, on_event, NULL, &z), -EINVAL);
        uv_run(&loop, UV_RUN_DEFAULT);
        ASSERT_EQ_INT(uv_loop_close(&loop), 0);
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return x < y ? -1 : x > y;
}

static void print_latency(const char *label, double *lat, int n) {
        qsort(lat, (size_t) n, sizeof lat[0], cmp_double);
        printf("    zygote_fork to result, %s: p50 %.2f ms, p90 %.2f ms, max %.2f ms (%d requests)\n", label,
               lat[n / 2], lat[n * 9 / 10], lat[n - 1], n);
}

/* Sequential requests, each started once the previous one's result is in:
 * the figure a warm `fresh` request pays in the runtime. Requests without
 * and with the environment the node agent sets take turns on one zygote,
 * so that the two figures share the machine's conditions. */
static void bench(JailRuntime rt, const char *code, const char *label) {
        static const char *const env[] = {
                "FNBOX_REQUEST_ID=5f0c6a1e9b2d4c7a8e3f1b6d2a9c4e70",
                "FNBOX_TRACEPARENT=00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                "FNBOX_METHOD=POST", "FNBOX_PATH=/", "FNBOX_QUERY=name=fnbox",
        };
        Ctx x;
        ctx_start(&x, rt, code);
        double lat[2][40];
        int n = 0;
        for (int i = 0; i < 80; i++) {
                int with_env = (i + i / 2) % 2; /* 0 1 1 0 0 1 1 0 ...: each goes first as often */
                /* let the replacement spare get ready, as between requests */
                double until = now_ms() + 30;
                while (now_ms() < until)
                        uv_run(&x.loop, UV_RUN_NOWAIT);
                double t0 = now_ms();
                JailResult *r = one_with(&x, "fnbox", with_env ? env : NULL, with_env ? ELEMENTSOF(env) : 0, 0);
                ASSERT_EQ_INT(r->status, JAIL_EXITED);
                lat[with_env][n / 2] = x.t_done[x.n_done - 1] - t0;
                n++;
                jail_result_clear(r);
                x.n_done = 0;
        }
        char l[128];
        print_latency(label, lat[0], n / 2);
        snprintf(l, sizeof l, "%s, request env", label);
        print_latency(l, lat[1], n / 2);
        ctx_end(&x);
}

TEST(zygote_latency) {
        bench(JAIL_RUNTIME_EXEC, "/bin/true", "exec /bin/true");
        bench(JAIL_RUNTIME_PYTHON3, code_file("bench.py", "import sys\nprint('hello, ' + sys.stdin.read())\n"),
              "python3 hello");
}

/* JailConfig.run_dir: bound read-write at /run/fnbox, checked before use. */
TEST(jail_run_dir) {
        char rd[64] = "/tmp/fnbox-unit-run-XXXXXX", p[128], why[256];
        ASSERT_TRUE(mkdtemp(rd) != NULL);
        ASSERT_EQ_INT(chmod(rd, 0755), 0);
        JailConfig c;
        jail_config_init(&c);
        c.runtime = JAIL_RUNTIME_SH;
        c.code = code_file("svc.sh", "echo hi > /run/fnbox/out && ls /run/fnbox\n");
        c.run_dir = rd;
        /* the box user cannot write it yet */
        ASSERT_EQ_INT(jail_config_check(&c, why, sizeof why), -EINVAL);
        ASSERT_TRUE(strstr(why, "run dir") != NULL);
        ASSERT_EQ_INT(chown(rd, 65534, 65534), 0);
        ASSERT_EQ_INT(jail_config_check(&c, why, sizeof why), 0);
        JailResult r;
        ASSERT_EQ_INT(jail_run(&c, &r), 0);
        if (r.status != JAIL_EXITED || r.exit_code != 0)
                FAIL_AT("status %s: %s %s", jail_status_to_string(r.status), r.error, r.err.data ? r.err.data : "");
        ASSERT_EQ_STR(r.out.data, "out\n");
        jail_result_clear(&r);
        snprintf(p, sizeof p, "%s/out", rd);
        struct stat st;
        ASSERT_EQ_INT(stat(p, &st), 0);
        ASSERT_EQ_UINT(st.st_uid, 65534);
        unlink(p);
        rmdir(rd);
        c.run_dir = "/proc/self";
        ASSERT_EQ_INT(jail_config_check(&c, why, sizeof why), -EINVAL);
}

/* ----- templates (zygote.h): a python3 zygote started before its revision ----- */

TEST(zygote_template_python_requests) {
        via_template = true;
        python_requests();
        via_template = false;
}

TEST(zygote_template_env_python) {
        via_template = true;
        env_python();
        via_template = false;
}

/* A code folder and the instance's folder arrive on /fn and /run/fnbox,
 * read-only, covering the template's empty ones; a template forks
 * nothing before it is adopted, and is adopted once. */
TEST(zygote_template_folder) {
        char why[256];
        Ctx x;
        JailConfig c;
        ctx_init(&x, &c, JAIL_RUNTIME_PYTHON3, NULL);
        const char *dir = empty_dir("tcode");
        char main_py[160], helper[160];
        snprintf(main_py, sizeof main_py, "%s/main.py", dir);
        snprintf(helper, sizeof helper, "%s/helper.py", dir);
        FILE *f = fopen(main_py, "w");
        ASSERT_TRUE(f != NULL);
        fputs("import os, sys\n"
              "sys.path.insert(0, '/fn')\n"
              "import helper\n"
              "try:\n"
              "    open('/fn/new', 'w')\n"
              "    w = 'written'\n"
              "except OSError as e:\n"
              "    w = e.strerror\n"
              "try:\n"
              "    open('/run/fnbox/new', 'w')\n"
              "    rw = 'written'\n"
              "except OSError as e:\n"
              "    rw = e.strerror\n"
              "print(sorted(os.listdir('/fn')), helper.X, w, sorted(os.listdir('/run/fnbox')), rw, sys.argv[1:])\n",
              f);
        fclose(f);
        ASSERT_TRUE((f = fopen(helper, "w")) != NULL);
        fputs("X = 42\n", f);
        fclose(f);
        ASSERT_EQ_INT(chmod(main_py, 0644), 0);
        ASSERT_EQ_INT(chmod(helper, 0644), 0);
        const char *run = empty_dir("trun-rev");
        char marker[160];
        snprintf(marker, sizeof marker, "%s/broker.sock", run);
        ASSERT_TRUE((f = fopen(marker, "w")) != NULL);
        fclose(f);

        template_start(&x);
        ZygoteChild *ch;
        ZygoteRequest q = { .stdin_data = "", .stdin_len = 0 };
        ASSERT_EQ_INT(zygote_fork(x.z, &q, on_done, &x, &ch), -ENOTCONN);
        c.code = dir;
        c.run_dir = run;
        c.run_dir_readonly = true;
        static char *const args[] = { "one", "two" };
        c.args = args;
        c.n_args = 2;
        /* what python3 reads as it starts cannot come later */
        static char *const lang[] = { "LC_ALL=C" };
        c.env = lang;
        c.n_env = 1;
        ASSERT_TRUE(!zygote_template_fits(&c));
        c.env = NULL;
        c.n_env = 0;
        ASSERT_TRUE(zygote_template_fits(&c));
        ASSERT_EQ_INT(zygote_adopt(x.z, &c, on_event, &x, why, sizeof why), 0);
        ASSERT_EQ_INT(zygote_adopt(x.z, &c, on_event, &x, why, sizeof why), -ENOTCONN);
        for (int i = 0; i < 2; i++) {
                JailResult *r = one(&x, "");
                expect_ok(r);
                ASSERT_EQ_STR(r->out.data, "['helper.py', 'main.py'] 42 Read-only file system ['broker.sock'] "
                                           "Read-only file system ['one', 'two']\n");
        }
        ctx_end(&x);
        /* a template refuses a revision's own args or environment */
        JailConfig t;
        jail_config_init(&t);
        t.runtime = JAIL_RUNTIME_PYTHON3;
        t.code = empty_dir("tfn");
        t.env = lang;
        t.n_env = 1;
        Zygote *z = NULL;
        ASSERT_EQ_INT(zygote_template_new(&x.loop, &t, on_event, &x, &z), -EINVAL);
}
