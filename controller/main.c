/* controller/main.c: fnbox-controller. Parses its options, binds its port,
 * opens the data folder and the store, makes the first admin token, drops
 * root (to --user) when it has it, starts the cluster (controller/cluster.h:
 * autoscaler, scheduler, the data plane's endpoints) and serves the REST
 * API (controller/http.c, controller/api*.c) until SIGTERM or SIGINT; it
 * says where it listens on stdout and to systemd (READY=1). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "controller/api.h"
#include "controller/sessions.h"
#include "controller/bootstrap.h"
#include "controller/cluster.h"
#include "controller/http.h"
#include "lib/daemon.h"
#include "lib/listen.h"
#include "controller/privilege.h"
#include "controller/retention.h"
#include "controller/skills.h"
#include "lib/quantity.h"
#include "lib/store.h"
#include "lib/util.h"

#define PROG "fnbox-controller"

typedef struct Options {
        const char *data_dir;
        const char *store;
        const char *listen;
        const char *node_lease;
        const char *cpu_overcommit;
        const char *user;
        const char *llm_audit_retention;
        const char *llm_audit_prune_every;
        const char *activator;
        const char *skill_model;
        const char *skill_embedding_model;
        const char *session_retention;
} Options;

static const DaemonOption option_table[] = {
        { "--data-dir", offsetof(Options, data_dir), "DIR",
          "the data folder (default /var/lib/fnbox as root, else $XDG_DATA_HOME/fnbox)" },
        { "--store", offsetof(Options, store), "URL",
          "sqlite:PATH or postgres://... (default sqlite:DATA_DIR/fnbox.db)" },
        { "--listen", offsetof(Options, listen), "ADDR:PORT",
          "where to serve the API (default 127.0.0.1:8081; port 0: the kernel picks)" },
        { "--node-lease", offsetof(Options, node_lease), "DURATION",
          "a node silent this long is lost and its instances go elsewhere (default 5s)" },
        { "--cpu-overcommit", offsetof(Options, cpu_overcommit), "N",
          "place up to N times a node's CPUs in CPU limits (default 8; memory is never overcommitted)" },
        { "--user", offsetof(Options, user), "NAME",
          "started as root, run as this user once the port and store are open (default fnbox)" },
        { "--llm-audit-retention", offsetof(Options, llm_audit_retention), "DURATION",
          "delete LLM gateway audit records older than this, such as 30d or 12h (default 30d; 0: keep them)" },
        { "--llm-audit-prune-every", offsetof(Options, llm_audit_prune_every), "DURATION",
          "how often to delete them, and once at start (default 1h)" },
        { "--activator", offsetof(Options, activator), "URL",
          "the activator the skill library runs tests and calls the LLM gateway through (default http://127.0.0.1:8080)" },
        { "--skill-model", offsetof(Options, skill_model), "ALIAS",
          "the gateway model `fnbox skill generate` uses when none is given (default: default)" },
        { "--skill-embedding-model", offsetof(Options, skill_embedding_model), "ALIAS",
          "the gateway model that embeds skills for search (default: none, lexical search only)" },
        { "--session-retention", offsetof(Options, session_retention), "DURATION",
          "keep sessions (runs with input files: inputs, outputs, stdout) this long at most (default 7d, at most 365d)" },
};

static void usage(FILE *f) {
        fprintf(f, "usage: " PROG " [--data-dir DIR] [--store URL] [--listen ADDR:PORT] [--node-lease DURATION]\n"
                   "       [--cpu-overcommit N] [--user NAME] [--llm-audit-retention DURATION]\n"
                   "       [--llm-audit-prune-every DURATION] [--activator URL] [--skill-model ALIAS]\n"
                   "       [--skill-embedding-model ALIAS] [--session-retention DURATION]\n\n");
        daemon_options_print(f, option_table, ELEMENTSOF(option_table));
}

/* SIGTERM and SIGINT are blocked in every thread and taken by sigwait in
 * main; SIGPIPE is ignored (a client that hangs up is not our death). */
static void signals_setup(sigset_t *set) {
        sigemptyset(set);
        sigaddset(set, SIGTERM);
        sigaddset(set, SIGINT);
        pthread_sigmask(SIG_BLOCK, set, NULL);
        signal(SIGPIPE, SIG_IGN);
}

static int open_store(const Options *o, const char *data_dir, Store **ret) {
        char url[4200];
        if (o->store)
                snprintf(url, sizeof url, "%s", o->store);
        else
                snprintf(url, sizeof url, "sqlite:%s/fnbox.db", data_dir);
        int r = store_open(url, ret);
        const char *why = r < 0 ? store_last_error(NULL) : NULL;
        /* a postgres URL may hold a password: name only the backend */
        if (r < 0)
                fprintf(stderr, PROG ": cannot open the store %s: %s%s%s\n",
                        o->store && strncmp(o->store, "sqlite:", 7) != 0 ? "(postgres)" : url, strerror(-r),
                        why && *why ? ": " : "", why ? why : "");
        return r;
}

static int prepare(const Options *o, const char *data_dir, Store **ret_store, int *ret_dir_fd) {
        _cleanup_close_ int dir_fd = -1;
        int r = bootstrap_data_dir(data_dir, &dir_fd);
        if (r < 0) {
                fprintf(stderr, PROG ": cannot make the data folder %s: %s\n", data_dir, strerror(-r));
                return r;
        }
        r = open_store(o, data_dir, ret_store);
        if (r < 0)
                return r;
        r = bootstrap_admin_token(*ret_store, dir_fd);
        if (r < 0)
                fprintf(stderr, PROG ": cannot create the first admin token: %s\n", strerror(-r));
        else if (r > 0)
                fprintf(stderr, PROG ": created the first admin token; it is in %s/%s (mode 0600)\n",
                        data_dir, BOOTSTRAP_TOKEN_FILE);
        if (r >= 0)
                *ret_dir_fd = TAKE_FD(dir_fd);
        return r < 0 ? r : 0;
}

/* Root is needed only to bind a low port and to own /var/lib/fnbox: from
 * here on the controller runs as --user, which gets the data folder. A
 * controller started as someone else stays who it is. */
static int drop_root(const Options *o, int dir_fd, const char *data_dir) {
        char err[512];
        if (geteuid() != 0)
                return 0;
        const char *sqlite = o->store && strncmp(o->store, "sqlite:", 7) == 0 ? o->store + 7 : NULL;
        int r = privilege_drop(o->user, dir_fd, sqlite, err, sizeof err);
        if (r < 0) {
                fprintf(stderr, PROG ": %s\n", err);
                return r;
        }
        if (access(data_dir, R_OK | W_OK | X_OK) < 0)
                fprintf(stderr, PROG ": warning: as %s, %s is not reachable by path (%m); a parent folder is "
                        "closed to it\n", o->user, data_dir);
        fprintf(stderr, PROG ": running as %s\n", o->user);
        return 0;
}

static void observe(Api *api, const HttpRoute *route, unsigned status) {
        char endpoint[96];
        snprintf(endpoint, sizeof endpoint, "%s %s", route ? route->method : "-", route ? route->pattern : "unmatched");
        cluster_count_request(api->cluster, endpoint, status);
}

static int lease_parse(const char *s, int64_t *ret) {
        uint64_t ns;
        if (!s) {
                *ret = CLUSTER_LEASE_DEFAULT_MS;
                return 0;
        }
        if (quantity_parse_duration(s, &ns) < 0 || ns / 1000000 < CLUSTER_LEASE_MIN_MS ||
            ns / 1000000 > CLUSTER_LEASE_MAX_MS) {
                fprintf(stderr, PROG ": --node-lease %s: expected a duration from %dms to %ds, such as 5s\n", s,
                        CLUSTER_LEASE_MIN_MS, CLUSTER_LEASE_MAX_MS / 1000);
                return -EINVAL;
        }
        *ret = (int64_t) (ns / 1000000);
        return 0;
}

/* --llm-audit-retention and --llm-audit-prune-every. */
static int retention_options(const Options *o, int64_t *ret_keep_ms, int64_t *ret_period_ms) {
        *ret_keep_ms = RETENTION_DEFAULT_MS;
        *ret_period_ms = RETENTION_PERIOD_DEFAULT_MS;
        if (o->llm_audit_retention && retention_parse(o->llm_audit_retention, RETENTION_MAX_MS, ret_keep_ms) < 0) {
                fprintf(stderr, PROG ": --llm-audit-retention %s: expected a duration such as 30d, 12h or 90m "
                        "(at most 36500d), or 0 to keep every record\n", o->llm_audit_retention);
                return -EINVAL;
        }
        if (o->llm_audit_prune_every &&
            (retention_parse(o->llm_audit_prune_every, RETENTION_PERIOD_MAX_MS, ret_period_ms) < 0 ||
             *ret_period_ms < RETENTION_PERIOD_MIN_MS)) {
                fprintf(stderr, PROG ": --llm-audit-prune-every %s: expected a duration from 100ms to 7d, such as 1h\n",
                        o->llm_audit_prune_every);
                return -EINVAL;
        }
        return 0;
}

static int serve(const Options *o, Store *store, Cluster *cluster, int fd, const char *url, const sigset_t *sigs) {
        int sig = 0;
        Api api = { .store = store, .cluster = cluster, .session_retention_ms = SESSION_RETENTION_DEFAULT_MS };
        if (o->session_retention && (retention_parse(o->session_retention, SESSION_RETENTION_MAX_MS,
                                                     &api.session_retention_ms) < 0 ||
                                     api.session_retention_ms <= 0)) {
                safe_close(fd);
                fprintf(stderr, PROG ": --session-retention %s: expected a duration such as 7d or 12h, above 0 and "
                        "at most 365d\n", o->session_retention);
                return -EINVAL;
        }
        SkillsConfig scfg = { .activator_url = o->activator, .chat_model = o->skill_model,
                              .embedding_model = o->skill_embedding_model };
        HttpConfig cfg = { .listen_fd = fd, .routes = api_routes, .n_routes = api_n_routes, .api = &api,
                           .observe = observe };
        HttpServer *server = NULL;
        int r = cluster_start(cluster);
        if (r < 0) {
                safe_close(fd);
                fprintf(stderr, PROG ": cannot start the cluster: %s\n", strerror(-r));
                return r;
        }
        r = skills_new(&api, &scfg, &api.skills);
        if (r >= 0)
                r = skills_start(api.skills);
        if (r < 0) {
                safe_close(fd);
                cluster_stop(cluster);
                skills_free(api.skills);
                fprintf(stderr, PROG ": cannot start the skill library: %s\n", strerror(-r));
                return r;
        }
        r = http_server_start(&cfg, &server);
        if (r < 0) {
                safe_close(fd);
                cluster_stop(cluster);
                skills_free(api.skills);
                fprintf(stderr, PROG ": cannot start the HTTP server: %s\n", strerror(-r));
                return r;
        }
        printf(PROG ": listening on %s\n", url);
        fflush(stdout);
        sd_notify(0, "READY=1");
        while (sigwait(sigs, &sig) != 0)
                ;
        sd_notify(0, "STOPPING=1");
        fprintf(stderr, PROG ": %s: stopping\n", strsignal(sig));
        cluster_stop(cluster);          /* answers the long polls first */
        skills_stop(api.skills);        /* ends the jobs, answers their long polls */
        http_server_stop(server);
        skills_free(api.skills);
        return 0;
}

static void cluster_freep(Cluster **c) {
        cluster_free(*c);
}

int main(int argc, char **argv) {
        Options o = { .listen = "127.0.0.1:8081", .user = "fnbox" };
        sigset_t sigs;
        if (stdio_fill() < 0)
                return 1;
        int r = daemon_options_parse(PROG, option_table, ELEMENTSOF(option_table), argc, argv, &o);
        if (r != 0) {
                usage(r > 0 ? stdout : stderr);
                return r > 0 ? 0 : 2;
        }
        signals_setup(&sigs);
        _cleanup_free_ char *default_dir = o.data_dir ? NULL : bootstrap_default_data_dir();
        const char *data_dir = o.data_dir ? o.data_dir : default_dir;
        if (!data_dir)
                return 1;
        ClusterConfig ccfg = {};
        int64_t keep_ms, prune_ms;
        if (lease_parse(o.node_lease, &ccfg.lease_ms) < 0 || retention_options(&o, &keep_ms, &prune_ms) < 0)
                return 2;
        if (o.cpu_overcommit) {
                char *end;
                errno = 0;
                unsigned long v = strtoul(o.cpu_overcommit, &end, 10);
                if (errno || *end || end == o.cpu_overcommit || v < 1 || v > CLUSTER_CPU_OVERCOMMIT_MAX) {
                        fprintf(stderr, PROG ": --cpu-overcommit %s: expected an integer from 1 to %d\n",
                                o.cpu_overcommit, CLUSTER_CPU_OVERCOMMIT_MAX);
                        return 2;
                }
                ccfg.cpu_overcommit = (unsigned) v;
        }
        char url[LISTEN_URL_MAX];
        _cleanup_close_ int listen_fd = -1, dir_fd = -1;
        r = listen_open_n(o.listen, 1, &listen_fd, url);
        if (r < 0) {
                fprintf(stderr, PROG ": cannot listen on %s: %s\n", o.listen, strerror(-r));
                return 1;
        }
        _cleanup_store_ Store *store = NULL;
        _cleanup_(cluster_freep) Cluster *cluster = NULL;
        if (prepare(&o, data_dir, &store, &dir_fd) < 0 || drop_root(&o, dir_fd, data_dir) < 0)
                return 1;
        if (cluster_new(store, &ccfg, &cluster) < 0)
                return 1;
        Retention *retention = NULL;
        r = retention_start(store, keep_ms, prune_ms, &retention);
        if (r < 0) {
                fprintf(stderr, PROG ": cannot start the llm audit retention: %s\n", strerror(-r));
                return 1;
        }
        if (o.activator && strncmp(o.activator, "http://", 7) != 0 && strncmp(o.activator, "https://", 8) != 0) {
                fprintf(stderr, PROG ": --activator %s: expected an http:// or https:// URL\n", o.activator);
                return 2;
        }
        r = serve(&o, store, cluster, TAKE_FD(listen_fd), url, &sigs);
        retention_stop(retention);
        return r < 0 ? 1 : 0;
}
