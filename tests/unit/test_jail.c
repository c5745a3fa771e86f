/* tests/unit/test_jail.c: the jail library API: config validation, the
 * result of simple boxes, several jails on one loop, and jail_kill(). These
 * need root (namespaces and cgroups); they build real jails. */
#define _GNU_SOURCE
#include "test.h"

#include <errno.h>
#include <signal.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/jail.h"
#include "runtime/pool.h"

static JailConfig sh_config(const char *script_path) {
        JailConfig c;
        jail_config_init(&c);
        c.runtime = JAIL_RUNTIME_SH;
        c.code = script_path;
        return c;
}

static char dir[64];

static void remove_dir(void) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (dir[0] && system(cmd) != 0)
                fprintf(stderr, "could not remove %s\n", dir);
}

/* Write a world-readable script into a fresh temp folder, removed when the
 * test's process exits. */
static char *script(const char *body) {
        if (dir[0])
                remove_dir();
        else
                atexit(remove_dir);
        snprintf(dir, sizeof dir, "/tmp/fnbox-unit-XXXXXX");
        ASSERT_TRUE(mkdtemp(dir) != NULL);
        ASSERT_EQ_INT(chmod(dir, 0755), 0);
        static char p[96];
        snprintf(p, sizeof p, "%s/main.sh", dir);
        FILE *f = fopen(p, "w");
        ASSERT_TRUE(f != NULL);
        fputs(body, f);
        fclose(f);
        ASSERT_EQ_INT(chmod(p, 0644), 0);
        return p;
}

TEST(jail_config_refuses) {
        char why[256];
        JailConfig c;
        jail_config_init(&c);
        ASSERT_EQ_INT(jail_config_check(&c, why, sizeof why), -EINVAL);
        ASSERT_TRUE(strstr(why, "--code") != NULL);
        c.code = "/bin/true";
        ASSERT_EQ_INT(jail_config_check(&c, why, sizeof why), 0);
        c.limits.memory_bytes = 1;
        ASSERT_EQ_INT(jail_config_check(&c, why, sizeof why), -EINVAL);
        ASSERT_TRUE(strstr(why, "--memory") != NULL);
        jail_limits_default(&c.limits);
        c.host_uid = 0;
        ASSERT_EQ_INT(jail_config_check(&c, why, sizeof why), -EINVAL);
        c.host_uid = 65534;
        char *bad_env[] = { "1X=2" };
        c.env = bad_env;
        c.n_env = 1;
        ASSERT_EQ_INT(jail_config_check(&c, why, sizeof why), -EINVAL);
        c.n_env = 0;
        c.stdin_len = JAIL_STDIN_MAX + 1;
        ASSERT_EQ_INT(jail_config_check(&c, why, sizeof why), -EINVAL);
        ASSERT_TRUE(strstr(why, "stdin") != NULL);
        c.stdin_len = 0;
        c.code = "/proc/self";
        ASSERT_EQ_INT(jail_config_check(&c, why, sizeof why), -EINVAL);
        ASSERT_EQ_INT(jail_runtime_from_string("cobol"), -EINVAL);
        ASSERT_EQ_INT(jail_runtime_from_string("python3"), JAIL_RUNTIME_PYTHON3);
}

TEST(jail_run_exit_and_output) {
        JailConfig c = sh_config(script("read x; echo out:$x; echo err >&2; exit 3\n"));
        c.stdin_data = "hi\n";
        c.stdin_len = 3;
        JailResult r;
        ASSERT_EQ_INT(jail_run(&c, &r), 0);
        ASSERT_EQ_STR(jail_status_to_string(r.status), "exited");
        ASSERT_EQ_INT(r.exit_code, 3);
        ASSERT_EQ_STR(r.out.data, "out:hi\n");
        ASSERT_EQ_STR(r.err.data, "err\n");
        ASSERT_TRUE(r.wall_ms > 0);
        jail_result_clear(&r);
}

TEST(jail_run_timeout_and_output_cap) {
        JailConfig c = sh_config(script("while :; do :; done\n"));
        c.limits.timeout_ns = 300 * 1000000ULL;
        JailResult r;
        ASSERT_EQ_INT(jail_run(&c, &r), 0);
        ASSERT_EQ_STR(jail_status_to_string(r.status), "timeout");
        ASSERT_TRUE(r.wall_ms >= 300 && r.wall_ms < 2000);
        jail_result_clear(&r);

        c = sh_config(script("while :; do echo aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa; done\n"));
        c.limits.output_bytes = 1000;
        ASSERT_EQ_INT(jail_run(&c, &r), 0);
        ASSERT_EQ_STR(jail_status_to_string(r.status), "output_limit");
        ASSERT_EQ_UINT(r.out.len, 1000);
        ASSERT_TRUE(r.out.truncated);
        jail_result_clear(&r);
}

typedef struct Many {
        int done;
        int ok;
} Many;

static void many_done(Jail *j, JailResult *r, void *userdata) {
        Many *m = userdata;
        (void) j;
        m->done++;
        if (r->status == JAIL_EXITED && r->exit_code == 0 && r->out.data && strcmp(r->out.data, "2\n") == 0)
                m->ok++;
}

TEST(jail_many_on_one_loop) {
        JailConfig c = sh_config(script("echo $$\n"));
        uv_loop_t loop;
        ASSERT_EQ_INT(uv_loop_init(&loop), 0);
        Many m = { 0 };
        Jail *js[8];
        for (int i = 0; i < 8; i++)
                ASSERT_EQ_INT(jail_spawn(&loop, &c, many_done, &m, &js[i]), 0);
        uv_run(&loop, UV_RUN_DEFAULT);
        ASSERT_EQ_INT(m.done, 8);
        ASSERT_EQ_INT(m.ok, 8); /* each box is pid 2 of its own pid namespace */
        for (int i = 0; i < 8; i++)
                jail_free(js[i]);
        ASSERT_EQ_INT(uv_loop_close(&loop), 0);
}

static void kill_timer(uv_timer_t *t) { jail_kill(t->data); }

static void kill_done(Jail *j, JailResult *r, void *userdata) {
        (void) j;
        *(JailStatus *) userdata = r->status;
}

TEST(jail_kill_stops_everything) {
        JailConfig c = sh_config(script("sleep 100 & sleep 100\n"));
        uv_loop_t loop;
        ASSERT_EQ_INT(uv_loop_init(&loop), 0);
        JailStatus st = _JAIL_STATUS_MAX;
        Jail *j;
        ASSERT_EQ_INT(jail_spawn(&loop, &c, kill_done, &st, &j), 0);
        uv_timer_t t;
        uv_timer_init(&loop, &t);
        t.data = j;
        uv_timer_start(&t, kill_timer, 100, 0);
        uv_run(&loop, UV_RUN_DEFAULT);
        ASSERT_EQ_STR(jail_status_to_string(st), "killed");
        ASSERT_TRUE(kill(jail_pid(j), 0) < 0);
        jail_free(j);
        uv_close((uv_handle_t *) &t, NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
        ASSERT_EQ_INT(uv_loop_close(&loop), 0);
}

TEST(jail_run_with_stdio_closed) {
        /* as under CI, which gives no stdin: no jail fd may land on 0-2 */
        close(0);
        JailConfig c = sh_config(script("echo ok\n"));
        JailResult r;
        ASSERT_EQ_INT(jail_run(&c, &r), 0);
        ASSERT_EQ_STR(jail_status_to_string(r.status), "exited");
        ASSERT_EQ_STR(r.out.data, "ok\n");
        jail_result_clear(&r);
}

/* ----- prepared jails and the pool ----- */

typedef struct Prep {
        int ready, ended, done;
        bool done_before_end;
        JailStatus status;
        char out[64];
} Prep;

static void prep_event(Jail *j, JailEvent ev, int error, void *userdata) {
        Prep *p = userdata;
        (void) j;
        ASSERT_EQ_INT(error, 0);
        if (ev == JAIL_EVENT_READY)
                p->ready++;
        else
                p->ended++;
}

static void prep_done(Jail *j, JailResult *r, void *userdata) {
        Prep *p = userdata;
        (void) j;
        p->done++;
        p->done_before_end = p->ended == 0;
        p->status = r->status;
        snprintf(p->out, sizeof p->out, "%s", r->out.data ? r->out.data : "");
}

static void start_when_ready(Jail *j, JailEvent ev, int error, void *userdata) {
        prep_event(j, ev, error, userdata);
        if (ev != JAIL_EVENT_READY)
                return;
        JailConfig c = sh_config(script("echo pooled:$(cat)\n"));
        c.stdin_data = "in";
        c.stdin_len = 2;
        ASSERT_EQ_INT(jail_start(j, &c, prep_done, userdata, NULL, 0), 0);
        /* started: a second request is refused */
        ASSERT_EQ_INT(jail_start(j, &c, prep_done, userdata, NULL, 0), -ESRCH);
        ASSERT_TRUE(!jail_is_ready(j));
}

TEST(jail_prepare_then_start) {
        uv_loop_t loop;
        ASSERT_EQ_INT(uv_loop_init(&loop), 0);
        Prep p = { 0 };
        Jail *j;
        ASSERT_EQ_INT(jail_prepare(&loop, "fnbox", &j), 0);
        jail_set_events(j, start_when_ready, &p);
        uv_run(&loop, UV_RUN_DEFAULT);
        ASSERT_EQ_INT(p.ready, 1);
        ASSERT_EQ_INT(p.done, 1);
        ASSERT_EQ_INT(p.ended, 1);
        ASSERT_TRUE(p.done_before_end); /* the result comes before the teardown */
        ASSERT_EQ_STR(jail_status_to_string(p.status), "exited");
        ASSERT_EQ_STR(p.out, "pooled:in\n");
        ASSERT_TRUE(kill(jail_pid(j), 0) < 0);
        jail_free(j);
        ASSERT_EQ_INT(uv_loop_close(&loop), 0);
}

/* A prepared jail that never gets READY (here: its child stopped as it
 * starts) is killed at the prepare deadline and ends, unused, with
 * nothing of it left. */
TEST(jail_prepare_deadline) {
        unsigned saved = jail_prepare_ms;
        jail_prepare_ms = 300;
        uv_loop_t loop;
        ASSERT_EQ_INT(uv_loop_init(&loop), 0);
        Prep p = { 0 };
        Jail *j;
        ASSERT_EQ_INT(jail_prepare(&loop, "fnbox", &j), 0);
        jail_prepare_ms = saved;
        jail_set_events(j, prep_event, &p);
        pid_t pid = jail_pid(j);
        ASSERT_EQ_INT(kill(pid, SIGSTOP), 0);
        time_t t0 = time(NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
        ASSERT_EQ_INT(p.ready, 0);
        ASSERT_EQ_INT(p.ended, 1);
        ASSERT_TRUE(time(NULL) - t0 < 5);
        ASSERT_TRUE(kill(pid, 0) < 0);
        ASSERT_TRUE(!jail_is_started(j));
        jail_free(j);
        uv_run(&loop, UV_RUN_DEFAULT);
        ASSERT_EQ_INT(uv_loop_close(&loop), 0);
}

TEST(jail_start_refuses_bad_config_and_stays_unused) {
        uv_loop_t loop;
        ASSERT_EQ_INT(uv_loop_init(&loop), 0);
        Jail *j;
        ASSERT_EQ_INT(jail_prepare(&loop, "fnbox", &j), 0);
        JailConfig c = sh_config("/proc/self/status");
        char why[256] = "";
        ASSERT_EQ_INT(jail_start(j, &c, prep_done, NULL, why, sizeof why), -EINVAL);
        ASSERT_TRUE(strstr(why, "/proc") != NULL);
        ASSERT_TRUE(!jail_is_started(j));
        /* freeing an unused prepared jail kills it; the loop tears it down */
        Prep p = { 0 };
        jail_set_events(j, prep_event, &p);
        jail_free(j);
        uv_run(&loop, UV_RUN_DEFAULT);
        ASSERT_EQ_INT(p.ended, 1);
        ASSERT_EQ_INT(p.done, 0);
        ASSERT_EQ_INT(uv_loop_close(&loop), 0);
}

typedef struct PoolRun {
        Pool *pool;
        unsigned settled_ready;
        Prep prep[3];
        int started;
} PoolRun;

static void pool_done(Jail *j, JailResult *r, void *userdata) {
        prep_done(j, r, userdata);
        jail_free(j); /* its teardown goes on, then it releases itself */
}

static void pool_settled(Pool *pool, unsigned ready, void *userdata) {
        PoolRun *pr = userdata;
        pr->settled_ready = ready;
        JailConfig c = sh_config(script("echo $$\n"));
        /* three requests: two pooled jails, then none left */
        for (int i = 0; i < 3; i++) {
                Jail *j = pool_take(pool);
                if (!j)
                        continue;
                ASSERT_EQ_INT(jail_start(j, &c, pool_done, &pr->prep[i], NULL, 0), 0);
                pr->started++;
        }
        pool_free(pool); /* nothing waits in it now; running jails go on */
}

TEST(pool_hands_out_prepared_jails_once) {
        uv_loop_t loop;
        ASSERT_EQ_INT(uv_loop_init(&loop), 0);
        PoolRun pr = { 0 };
        ASSERT_EQ_INT(pool_new(&loop, 2, "fnbox", pool_settled, &pr, &pr.pool), 0);
        uv_run(&loop, UV_RUN_DEFAULT);
        ASSERT_EQ_INT(pr.settled_ready, 2);
        ASSERT_EQ_INT(pr.started, 2);
        for (int i = 0; i < 2; i++) {
                ASSERT_EQ_INT(pr.prep[i].done, 1);
                ASSERT_EQ_STR(jail_status_to_string(pr.prep[i].status), "exited");
                ASSERT_EQ_STR(pr.prep[i].out, "2\n"); /* the box is pid 2, as in a one-shot jail */
        }
        ASSERT_EQ_INT(uv_loop_close(&loop), 0);
}
