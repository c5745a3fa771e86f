/* activator/main.c: fnbox-activator. Parses its options, reads its token
 * (and the invoke secret) and binds its sockets while it may still be root,
 * drops to its service user, then runs the workers (worker.c) and the
 * controller client (control.c) until SIGTERM or SIGINT, and says where it
 * listens on stdout and to systemd (READY=1). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <curl/curl.h>

#include "activator/control.h"
#include "activator/gateway/gateway.h"
#include "lib/daemon.h"
#include "lib/listen.h"
#include "activator/router.h"
#include "activator/worker.h"
#include "lib/quantity.h"
#include "lib/util.h"

#define PROG "fnbox-activator"
#define SECRET_FILE_MAX 4096
#define STOP_GRACE_MS 30000
#define FIRST_TABLE_WAIT_MS 10000

typedef struct Options {
        const char *listen, *controller, *token_file, *user, *id, *queue_depth, *max_body,
                *max_connections, *threads, *invoke_secret_file, *auth, *gateway_config;
} Options;

static const DaemonOption option_table[] = {
        { "--listen", offsetof(Options, listen), "ADDR:PORT", "where clients call (default 127.0.0.1:8080; port 0: the kernel picks)" },
        { "--controller", offsetof(Options, controller), "URL", "the controller's API, e.g. http://127.0.0.1:8081 (required)" },
        { "--token-file", offsetof(Options, token_file), "FILE", "the bearer token for the controller (required)" },
        { "--user", offsetof(Options, user), "NAME", "the user to run as once the sockets are bound (default fnbox when root)" },
        { "--id", offsetof(Options, id), "NAME", "this activator's name in its stats (default act-HOSTNAME)" },
        { "--queue-depth", offsetof(Options, queue_depth), "N", "requests that may wait per revision (default 10000)" },
        { "--max-body", offsetof(Options, max_body), "SIZE", "the largest request body (default 6Mi)" },
        { "--max-connections", offsetof(Options, max_connections), "N", "client connections at once (default 32768)" },
        { "--threads", offsetof(Options, threads), "N", "worker threads (default: one per CPU, at most 16)" },
        { "--invoke-secret-file", offsetof(Options, invoke_secret_file), "FILE", "the HELLO secret for nodes' tcp: invoke sockets" },
        { "--auth", offsetof(Options, auth), "MODE", "token: /fn/ needs a bearer token (default); none: anyone who reaches --listen may call" },
        { "--gateway-config", offsetof(Options, gateway_config), "FILE", "serve the LLM gateway at /v1/ as FILE says (YAML; reloaded on SIGHUP and when it changes)" },
};

static void usage(FILE *f) {
        fprintf(f, "usage: " PROG " --controller URL --token-file FILE [options]\n\n");
        daemon_options_print(f, option_table, ELEMENTSOF(option_table));
}

static int options_parse(int argc, char **argv, Options *o) {
        int r = daemon_options_parse(PROG, option_table, ELEMENTSOF(option_table), argc, argv, o);
        if (r != 0)
                return r;
        if (!o->controller || !o->token_file) {
                fprintf(stderr, PROG ": --controller and --token-file are required\n");
                return -EINVAL;
        }
        if (o->auth && strcmp(o->auth, "token") != 0 && strcmp(o->auth, "none") != 0) {
                fprintf(stderr, PROG ": --auth %s: expected token or none\n", o->auth);
                return -EINVAL;
        }
        return 0;
}

/* A number option within [min, max]. */
static int number_opt(const char *name, const char *v, uint64_t min, uint64_t max, bool bytes, uint64_t *ret) {
        if (!v)
                return 0;
        int r = bytes ? quantity_parse_bytes(v, ret) : quantity_parse_uint(v, ret);
        if (r < 0 || *ret < min || *ret > max) {
                fprintf(stderr, PROG ": %s %s: expected %s from %llu to %llu\n", name, v, bytes ? "a size" : "a number",
                        (unsigned long long) min, (unsigned long long) max);
                return -EINVAL;
        }
        return 0;
}

/* A secret file's first line, without surrounding white space. */
static int secret_read(const char *path, char **ret) {
        char buf[SECRET_FILE_MAX + 1];
        ssize_t n = read_file_small(path, buf, sizeof buf);
        if (n < 0)
                return (int) n;
        if ((size_t) n >= SECRET_FILE_MAX)
                return -EFBIG;
        char *s = buf + strspn(buf, " \t\r\n");
        s[strcspn(s, "\r\n")] = 0;
        size_t l = strlen(s);
        while (l && (s[l - 1] == ' ' || s[l - 1] == '\t'))
                s[--l] = 0;
        if (!l)
                return -ENODATA;
        *ret = strdup(s);
        explicit_bzero(buf, sizeof buf);
        return *ret ? 0 : -ENOMEM;
}

/* Started as root, we give up root once the token is read and the sockets
 * are bound: nothing else we do needs it. The invoke sockets of the nodes
 * let the service user in (the runtime's --invoke-uid), and the service
 * instances' sockets are made for it. Supplementary groups first, then the
 * group, then the user; then make sure there is no way back. */
static int privileges_drop(const char *user) {
        if (geteuid() != 0) {
                if (user) {
                        fprintf(stderr, PROG ": --user %s needs root\n", user);
                        return -EPERM;
                }
                return 0;
        }
        char err[256];
        int r = daemon_become_user(user ? user : "fnbox", NULL, NULL, err, sizeof err);
        if (r < 0)
                fprintf(stderr, PROG ": %s\n", err);
        return r;
}

static void nofile_raise(void) {
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                setrlimit(RLIMIT_NOFILE, &rl);
        }
}

typedef struct Setup {
        ActConfig cfg;
        char *token, *secret;
        char id[128];
        int fds[WORKERS_MAX];
        char url[LISTEN_URL_MAX];
} Setup;

static int setup(const Options *o, Setup *s) {
        uint64_t depth = 10000, body = 6u << 20, conns = 32768, threads = 0;
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        threads = cpus < 1 ? 1 : cpus > 16 ? 16 : (uint64_t) cpus;
        if (number_opt("--queue-depth", o->queue_depth, 0, 1000000, false, &depth) < 0 ||
            number_opt("--max-body", o->max_body, 0, 1ull << 30, true, &body) < 0 ||
            number_opt("--max-connections", o->max_connections, 1, 1000000, false, &conns) < 0 ||
            number_opt("--threads", o->threads, 1, WORKERS_MAX, false, &threads) < 0)
                return -EINVAL;
        s->cfg = (ActConfig) { .threads = (unsigned) threads, .queue_depth = (uint32_t) depth, .max_body = body,
                               .max_connections = (unsigned) (conns < threads ? threads : conns),
                               .auth = !o->auth || strcmp(o->auth, "token") == 0 };
        int r = secret_read(o->token_file, &s->token);
        if (r < 0) {
                fprintf(stderr, PROG ": cannot read the token from %s: %s\n", o->token_file, strerror(-r));
                return r;
        }
        if (o->invoke_secret_file && (r = secret_read(o->invoke_secret_file, &s->secret)) < 0) {
                fprintf(stderr, PROG ": cannot read %s: %s\n", o->invoke_secret_file, strerror(-r));
                return r;
        }
        s->cfg.invoke_secret = s->secret;
        if (o->id)
                snprintf(s->id, sizeof s->id, "%s", o->id);
        else {
                char host[64] = "localhost";
                gethostname(host, sizeof host - 1);
                snprintf(s->id, sizeof s->id, "act-%s", host);
        }
        nofile_raise();
        r = listen_open_n(o->listen, s->cfg.threads, s->fds, s->url);
        if (r < 0) {
                fprintf(stderr, PROG ": cannot listen on %s: %s\n", o->listen, strerror(-r));
                return r;
        }
        return privileges_drop(o->user);
}

/* Ready means able to route: wait a while for the controller's first
 * table, so that a restarted activator does not answer its first callers
 * 503 while the table is on its way. */
static bool table_wait(Router *router, int timeout_ms) {
        for (int waited = 0; waited < timeout_ms; waited += 10) {
                if (router_version(router) != 0)
                        return true;
                usleep(10 * 1000);
        }
        return router_version(router) != 0;
}

/* The gateway's config is read as the service user, like its reloads. */
static int gateway_open(Setup *s, const Options *o, Router *router, Gateway **ret) {
        char err[1024] = "";
        GatewayOptions go = { .config_path = o->gateway_config, .self_url = s->url, .token = s->token,
                              .controller_url = o->controller, .invoke_secret = s->secret, .router = router,
                              .auth = s->cfg.auth };
        if (!o->gateway_config)
                return 0;
        int r = gateway_new(&go, ret, err, sizeof err);
        if (r < 0)
                fprintf(stderr, PROG ": gateway: %s\n", err[0] ? err : strerror(-r));
        return r;
}

static int serve(Setup *s, const Options *o, const sigset_t *sigs) {
        Router *router = NULL;
        Control *ctl = NULL;
        Workers *ws = NULL;
        Gateway *gw = NULL;
        int sig = 0, r = router_new(&router);
        s->cfg.router = router;
        if (r == 0 && (r = gateway_open(s, o, router, &gw)) == 0)
                s->cfg.gateway = gw;
        if (r == 0 && (r = workers_start(&s->cfg, s->fds, &ws)) < 0)
                fprintf(stderr, PROG ": cannot start the workers: %s\n", strerror(-r));
        if (r == 0 && (r = control_start(router, o->controller, s->token, s->id, &ctl)) < 0)
                fprintf(stderr, PROG ": cannot start the controller client: %s\n", strerror(-r));
        if (r == 0 && !table_wait(router, FIRST_TABLE_WAIT_MS))
                fprintf(stderr, PROG ": no route table from the controller after %d s: calls get 503 until it answers\n",
                        FIRST_TABLE_WAIT_MS / 1000);
        if (r == 0) {
                if (!s->cfg.auth)
                        fprintf(stderr, PROG ": --auth none: anyone who can reach %s may call every function\n", s->url);
                printf(PROG ": listening on %s\n", s->url);
                fflush(stdout);
                sd_notify(0, "READY=1");
                for (;;) {
                        while (sigwait(sigs, &sig) != 0)
                                ;
                        if (sig != SIGHUP)
                                break;
                        if (gw)
                                gateway_reload(gw);
                }
                sd_notify(0, "STOPPING=1");
                fprintf(stderr, PROG ": %s: stopping\n", strsignal(sig));
        }
        /* the routes keep coming while the requests in flight finish */
        workers_stop(ws, STOP_GRACE_MS);
        control_stop(ctl);
        gateway_free(gw);
        router_free(router);
        return r;
}

int main(int argc, char **argv) {
        Options o = { .listen = "127.0.0.1:8080" };
        Setup s = { 0 };
        sigset_t sigs;
        if (stdio_fill() < 0)
                return 1;
        int r = options_parse(argc, argv, &o);
        if (r != 0) {
                usage(r > 0 ? stdout : stderr);
                return r > 0 ? 0 : 2;
        }
        sigemptyset(&sigs);
        sigaddset(&sigs, SIGTERM);
        sigaddset(&sigs, SIGINT);
        sigaddset(&sigs, SIGHUP);
        pthread_sigmask(SIG_BLOCK, &sigs, NULL);
        signal(SIGPIPE, SIG_IGN);
        for (size_t i = 0; i < WORKERS_MAX; i++)
                s.fds[i] = -1;
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
                return 1;
        r = setup(&o, &s);
        if (r == 0)
                r = serve(&s, &o, &sigs);
        for (size_t i = 0; i < WORKERS_MAX; i++)
                safe_close(s.fds[i]);
        free(s.token);
        free(s.secret);
        curl_global_cleanup();
        return r < 0 ? 1 : 0;
}
