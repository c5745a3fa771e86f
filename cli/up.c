/* cli/up.c: `fnbox up`, the whole platform on this machine in the
 * foreground. Starts fnbox-controller, waits for its "listening on" line,
 * then fnbox-runtime and fnbox-activator pointed at it, waits for theirs,
 * prints where everything is, and forwards the daemons' output until
 * Ctrl-C or SIGTERM (then stops them: SIGTERM, a bounded wait, SIGKILL) or
 * until one of them dies (then stops the others and fails, naming it).
 * One thread, one poll loop over the daemons' output and a signalfd. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "cli.h"
#include "config.h"
#include "lib/quantity.h"
#include "lib/util.h"

#define UP_LINE_MAX             4096
#define UP_HELD_LINES           40      /* a daemon's lines kept until it is ready */
#define UP_STOP_TIMEOUT_MS      10000   /* SIGTERM, then this long, then SIGKILL */
#define UP_READY_TIMEOUT_MS     60000
#define UP_ARGS_MAX             (24 + 2 * CLI_LABELS_MAX)
#define UP_CONFIG_MARK          "# written by fnbox up"

enum { D_CONTROLLER, D_RUNTIME, D_ACTIVATOR, D_COUNT };

typedef struct Daemon {
        const char *name;               /* "fnbox-controller" */
        const char *ready_prefix;       /* the start of its ready line */
        const char *ready_word;         /* and what else it holds (NULL: nothing) */
        char path[PATH_MAX];
        pid_t pid;                      /* 0: not started, or reaped */
        int fd;                         /* its stdout and stderr, merged */
        char partial[UP_LINE_MAX];
        size_t partial_len;
        char *held[UP_HELD_LINES];      /* lines before it was ready (a ring) */
        size_t n_held, held_first, dropped;
        bool ready;
        char ready_text[UP_LINE_MAX];   /* the ready line after its prefix */
        int status;                     /* wait status once reaped */
        bool killed;                    /* we had to SIGKILL it */
} Daemon;

typedef struct Up {
        Daemon d[D_COUNT];
        int sigfd;
        sigset_t old_mask;
        const char *prog;
        char bin[PATH_MAX];             /* the folder of this fnbox */
        char data_dir[PATH_MAX];
        char token_file[PATH_MAX + 16];
        char secret_file[PATH_MAX + 16]; /* the invoke secret: signs the brokers' calls */
        char act_listen[128];            /* the activator's --listen, its port known */
        char act_url[160];               /* http://act_listen */
        bool act_known;                  /* act_listen is an IPv4 address:port (the boxes get a broker) */
        const char *run_dir;
        uint64_t ready_timeout_ms;
        int stop_signals;               /* SIGINT/SIGTERM/SIGHUP seen */
} Up;

static uint64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

/* ---- the daemons' output ------------------------------------------------ */

static void held_free(Daemon *d) {
        for (size_t i = 0; i < d->n_held; i++)
                free(d->held[(d->held_first + i) % UP_HELD_LINES]);
        d->n_held = d->held_first = 0;
}

static void held_add(Daemon *d, const char *line) {
        char *copy = strdup(line);
        if (!copy)
                return;
        if (d->n_held == UP_HELD_LINES) {
                free(d->held[d->held_first]);
                d->held[d->held_first] = copy;
                d->held_first = (d->held_first + 1) % UP_HELD_LINES;
                d->dropped++;
                return;
        }
        d->held[(d->held_first + d->n_held++) % UP_HELD_LINES] = copy;
}

/* The held lines, each indented by indent (for an error) or as they came. */
static void held_print(Daemon *d, const char *indent) {
        if (d->dropped)
                fprintf(stderr, "%s(%zu earlier lines not shown)\n", indent, d->dropped);
        for (size_t i = 0; i < d->n_held; i++)
                fprintf(stderr, "%s%s\n", indent, d->held[(d->held_first + i) % UP_HELD_LINES]);
        held_free(d);
        d->dropped = 0;
}

/* One complete line: the ready line makes the daemon ready and lets its
 * held lines out; a ready daemon's lines go straight to stderr. */
static void line_done(Daemon *d, const char *line) {
        size_t n = strlen(d->ready_prefix);
        if (!d->ready && strncmp(line, d->ready_prefix, n) == 0 && (!d->ready_word || strstr(line + n, d->ready_word))) {
                snprintf(d->ready_text, sizeof d->ready_text, "%s", line + n);
                d->ready = true;
                held_print(d, "");
        }
        if (d->ready)
                fprintf(stderr, "%s\n", line);
        else
                held_add(d, line);
}

/* Read what the daemon wrote; lines longer than UP_LINE_MAX are cut. */
static void output_read(Daemon *d) {
        char buf[16384];
        for (;;) {
                ssize_t n = read(d->fd, buf, sizeof buf);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        if (n == 0 || errno != EAGAIN)
                                d->fd = safe_close(d->fd);
                        return;
                }
                for (ssize_t i = 0; i < n; i++) {
                        bool nl = buf[i] == '\n';
                        if (!nl)
                                d->partial[d->partial_len++] = buf[i];
                        if (nl || d->partial_len == sizeof d->partial - 1) {
                                d->partial[d->partial_len] = 0;
                                line_done(d, d->partial);
                                d->partial_len = 0;
                        }
                }
        }
}

/* ---- processes ---------------------------------------------------------- */

/* In the child, between fork and exec: SIGTERM when fnbox up dies (kept
 * only by the runtime: the others drop privileges, which clears it), stdin
 * from /dev/null, stdout and stderr into the pipe, and the signal mask and
 * dispositions of a fresh process. The daemons stay in fnbox up's process
 * group, so that whatever signals the group (the terminal's Ctrl-C, a
 * hangup, a supervisor's killpg) reaches them too; they stop cleanly on
 * SIGINT as on SIGTERM. */
static _Noreturn void child_exec(Up *u, Daemon *d, int out, char **argv, pid_t parent) {
        if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != parent)
                _exit(127);
        int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (null < 0 || dup2(null, STDIN_FILENO) < 0 || dup2(out, STDOUT_FILENO) < 0 || dup2(out, STDERR_FILENO) < 0)
                _exit(127);
        signal(SIGPIPE, SIG_DFL);
        sigprocmask(SIG_SETMASK, &u->old_mask, NULL);
        execv(d->path, argv);
        dprintf(STDERR_FILENO, "fnbox up: cannot run %s: %s\n", d->path, strerror(errno));
        _exit(127);
}

static int daemon_start(Up *u, Daemon *d, char **argv) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return negative_errno();
        pid_t parent = getpid(), pid = fork();
        if (pid < 0) {
                int r = negative_errno();
                safe_close(p[0]);
                safe_close(p[1]);
                return r;
        }
        if (pid == 0)
                child_exec(u, d, p[1], argv, parent);
        safe_close(p[1]);
        fcntl(p[0], F_SETFL, O_NONBLOCK);
        d->fd = p[0];
        d->pid = pid;
        return 0;
}

static void daemon_describe_exit(const Daemon *d, char *buf, size_t size) {
        if (WIFEXITED(d->status))
                snprintf(buf, size, "exited with status %d", WEXITSTATUS(d->status));
        else if (WIFSIGNALED(d->status))
                snprintf(buf, size, "was killed by signal %d (%s)", WTERMSIG(d->status), strsignal(WTERMSIG(d->status)));
        else
                snprintf(buf, size, "stopped");
}

/* Reap every daemon that exited; returns how many did. */
static int daemons_reap(Up *u) {
        int n = 0;
        for (size_t i = 0; i < D_COUNT; i++) {
                Daemon *d = &u->d[i];
                if (d->pid <= 0 || waitpid(d->pid, &d->status, WNOHANG) != d->pid)
                        continue;
                if (d->fd >= 0)
                        output_read(d);         /* its last words, if they are there */
                d->pid = -1;
                n++;
        }
        return n;
}

/* Wait up to timeout_ms for output, a signal or a child's exit, and handle
 * them. Returns the number of daemons that exited meanwhile. */
static int up_pump(Up *u, int timeout_ms) {
        struct pollfd pf[D_COUNT + 1] = { { .fd = u->sigfd, .events = POLLIN } };
        for (size_t i = 0; i < D_COUNT; i++)
                pf[i + 1] = (struct pollfd) { .fd = u->d[i].fd, .events = POLLIN };
        if (poll(pf, D_COUNT + 1, timeout_ms) < 0 && errno != EINTR)
                return 0;
        for (size_t i = 0; i < D_COUNT; i++)
                if (pf[i + 1].revents && u->d[i].fd >= 0)
                        output_read(&u->d[i]);
        struct signalfd_siginfo si;
        while (read(u->sigfd, &si, sizeof si) == (ssize_t) sizeof si)
                if (si.ssi_signo != SIGCHLD)
                        u->stop_signals++;
        return daemons_reap(u);
}

/* ---- stopping ----------------------------------------------------------- */

static bool any_running(Up *u, const int *which, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (u->d[which[i]].pid > 0)
                        return true;
        return false;
}

/* SIGTERM to the daemons in which[], a bounded wait, then SIGKILL; a
 * further Ctrl-C while waiting kills at once. */
static void daemons_stop(Up *u, const int *which, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (u->d[which[i]].pid > 0)
                        kill(u->d[which[i]].pid, SIGTERM);
        int signals = u->stop_signals;
        uint64_t deadline = now_ms() + UP_STOP_TIMEOUT_MS;
        while (any_running(u, which, n) && now_ms() < deadline && u->stop_signals <= signals)
                up_pump(u, 100);
        for (size_t i = 0; i < n; i++) {
                Daemon *d = &u->d[which[i]];
                if (d->pid <= 0)
                        continue;
                fprintf(stderr, "%s: %s did not stop%s; killing it\n", u->prog, d->name,
                        u->stop_signals > signals ? "" : " within 10s");
                kill(d->pid, SIGKILL);
                d->killed = true;
                while (d->pid > 0)
                        up_pump(u, 100);
        }
}

/* The data plane first (the activator stops taking requests, the runtime
 * drains its instances and removes its jails), then the controller.
 * Returns 0 when every daemon that ran stopped cleanly. */
static int up_stop(Up *u) {
        static const int first[] = { D_ACTIVATOR, D_RUNTIME }, last[] = { D_CONTROLLER };
        daemons_stop(u, first, ELEMENTSOF(first));
        daemons_stop(u, last, ELEMENTSOF(last));
        int r = 0;
        for (size_t i = 0; i < D_COUNT; i++) {
                Daemon *d = &u->d[i];
                bool clean = d->pid == 0 || (!d->killed && ((WIFEXITED(d->status) && WEXITSTATUS(d->status) == 0) ||
                                                            (WIFSIGNALED(d->status) && WTERMSIG(d->status) == SIGTERM)));
                if (!clean && !d->killed) {
                        char why[96];
                        daemon_describe_exit(d, why, sizeof why);
                        fprintf(stderr, "%s: %s %s while stopping\n", u->prog, d->name, why);
                }
                r = clean ? r : -1;
                held_free(d);
                d->fd = safe_close(d->fd);
        }
        return r;
}

/* ---- starting ----------------------------------------------------------- */

/* Wait until every daemon in which[] printed its ready line. On a death,
 * the timeout or a stop signal, say which and return -1. */
static int wait_ready(Up *u, const int *which, size_t n) {
        uint64_t deadline = now_ms() + u->ready_timeout_ms;
        for (;;) {
                bool all = true;
                for (size_t i = 0; i < n; i++) {
                        Daemon *d = &u->d[which[i]];
                        char why[96];
                        if (d->pid < 0 && !d->ready) {
                                daemon_describe_exit(d, why, sizeof why);
                                fprintf(stderr, "%s: %s %s before it was ready; its last lines:\n", u->prog, d->name, why);
                                held_print(d, "    ");
                                return -1;
                        }
                        all = all && d->ready;
                }
                if (all)
                        return 0;
                if (u->stop_signals)
                        return -1;
                uint64_t now = now_ms();
                for (size_t i = 0; now >= deadline && i < n; i++) {
                        Daemon *d = &u->d[which[i]];
                        if (d->ready)
                                continue;
                        fprintf(stderr, "%s: %s was not ready within %" PRIu64 "s (no \"%s...\" line); its last lines:\n",
                                u->prog, d->name, u->ready_timeout_ms / 1000, d->ready_prefix);
                        held_print(d, "    ");
                        return -1;
                }
                up_pump(u, (int) (deadline - now < 200 ? deadline - now : 200));
        }
}

typedef struct Argv {
        char *v[UP_ARGS_MAX + 1];
        size_t n;
} Argv;

static void arg(Argv *a, const char *s) {
        if (a->n < UP_ARGS_MAX)
                a->v[a->n++] = (char *) s;
        a->v[a->n] = NULL;
}

static int up_activator_listen(Up *u, const char *listen);

static int start_controller(Up *u, const VerbArgs *a) {
        Argv v = { 0 };
        /* the activator's address first: the skill library calls it */
        u->act_known = up_activator_listen(u, a->listen ? a->listen : "127.0.0.1:8080") >= 0;
        snprintf(u->act_url, sizeof u->act_url, "http://%s", u->act_listen);
        arg(&v, u->d[D_CONTROLLER].name);
        if (u->act_known)
                arg(&v, "--activator"), arg(&v, u->act_url);
        arg(&v, "--data-dir"), arg(&v, u->data_dir);
        arg(&v, "--listen"), arg(&v, a->api_listen ? a->api_listen : "127.0.0.1:8081");
        if (a->store)
                arg(&v, "--store"), arg(&v, a->store);
        arg(&v, "--user"), arg(&v, a->user ? a->user : "fnbox");
        return daemon_start(u, &u->d[D_CONTROLLER], v.v);
}

/* DATA_DIR/invoke.secret, made once (root's, 0600): the key of the broker
 * calls' identity headers, which the runtime signs and the activator
 * checks (docs/internals.md, "Broker calls"). Both read it as root. */
static int up_secret(Up *u) {
        uint8_t rnd[24];
        char hex[2 * sizeof rnd + 2];
        snprintf(u->secret_file, sizeof u->secret_file, "%s/invoke.secret", u->data_dir);
        if (access(u->secret_file, R_OK) == 0)
                return 0;
        if (getrandom(rnd, sizeof rnd, 0) != (ssize_t) sizeof rnd)
                return negative_errno();
        for (size_t i = 0; i < sizeof rnd; i++)
                snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
        strcat(hex, "\n");
        _cleanup_close_ int fd = open(u->secret_file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0 || write_all(fd, hex, strlen(hex)) < 0)
                return negative_errno();
        return 0;
}

/* The activator's --listen with its port known before it starts (the
 * runtime's brokers are told it): port 0 becomes a port free now. 0, or
 * -EINVAL when the host is not an IPv4 address or localhost (then the
 * boxes get no broker). */
static int up_activator_listen(Up *u, const char *listen) {
        const char *colon = strrchr(listen, ':');
        char host[64];
        struct sockaddr_in sa = { .sin_family = AF_INET };
        snprintf(u->act_listen, sizeof u->act_listen, "%s", listen);
        if (!colon || (size_t) (colon - listen) >= sizeof host)
                return -EINVAL;
        snprintf(host, sizeof host, "%.*s", (int) (colon - listen), listen);
        if (inet_pton(AF_INET, strcmp(host, "localhost") == 0 ? "127.0.0.1" : host, &sa.sin_addr) != 1)
                return -EINVAL;
        if (strcmp(colon + 1, "0") != 0)
                return 0;
        socklen_t len = sizeof sa;
        _cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *) &sa, sizeof sa) < 0 || getsockname(fd, (struct sockaddr *) &sa, &len) < 0)
                return negative_errno();
        snprintf(u->act_listen, sizeof u->act_listen, "%s:%u", host, ntohs(sa.sin_port));
        return 0;
}

static int start_data_plane(Up *u, const VerbArgs *a, const char *api) {
        char sock[PATH_MAX], invoke[PATH_MAX];
        Argv r = { 0 }, v = { 0 };
        int s = up_secret(u);
        if (s < 0) {
                fprintf(stderr, "%s: %s: %s\n", u->prog, u->secret_file, strerror(-s));
                return s;
        }
        bool broker = u->act_known;
        if (!broker)
                fprintf(stderr, "%s: --listen %s is not IPv4-address:port: the boxes get no broker\n", u->prog,
                        u->act_listen);
        snprintf(sock, sizeof sock, "%s/runtime.sock", u->run_dir);
        snprintf(invoke, sizeof invoke, "%s/invoke.sock", u->run_dir);
        arg(&r, u->d[D_RUNTIME].name);
        arg(&r, "serve"), arg(&r, "--socket"), arg(&r, sock), arg(&r, "--invoke-socket"), arg(&r, invoke);
        arg(&r, "--controller"), arg(&r, api), arg(&r, "--token-file"), arg(&r, u->token_file);
        /* the activator, running as this user, may use the invoke socket */
        arg(&r, "--invoke-uid"), arg(&r, a->user ? a->user : "fnbox");
        if (a->node)
                arg(&r, "--node"), arg(&r, a->node);
        for (size_t i = 0; i < a->n_labels; i++)
                arg(&r, "--label"), arg(&r, a->labels[i]);
        /* each box's broker calls the activator, signed with the secret */
        arg(&r, "--invoke-secret-file"), arg(&r, u->secret_file);
        if (broker)
                arg(&r, "--activator"), arg(&r, u->act_url);
        arg(&v, u->d[D_ACTIVATOR].name);
        arg(&v, "--listen"), arg(&v, u->act_listen);
        arg(&v, "--controller"), arg(&v, api), arg(&v, "--token-file"), arg(&v, u->token_file);
        arg(&v, "--invoke-secret-file"), arg(&v, u->secret_file);
        arg(&v, "--user"), arg(&v, a->user ? a->user : "fnbox");
        int ret = daemon_start(u, &u->d[D_RUNTIME], r.v);
        return ret < 0 ? ret : daemon_start(u, &u->d[D_ACTIVATOR], v.v);
}

/* ---- the CLI config ----------------------------------------------------- */

/* "VALUE" with \" and \\, as the config parser reads it. */
static void yaml_quoted(FILE *f, const char *key, const char *v) {
        fprintf(f, "%s: \"", key);
        for (; *v; v++)
                fprintf(f, "%s%c", *v == '"' || *v == '\\' ? "\\" : "", *v);
        fputs("\"\n", f);
}

/* Whether path is free for us: missing, or written by fnbox up before. */
static int config_ours(const char *path) {
        char first[sizeof UP_CONFIG_MARK];
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (fd < 0)
                return errno == ENOENT ? 1 : negative_errno();
        ssize_t n = read(fd, first, sizeof first - 1);
        return n == (ssize_t) sizeof first - 1 && memcmp(first, UP_CONFIG_MARK, n) == 0;
}

static int mkdir_parents(const char *path) {
        _cleanup_free_ char *p = strdup(path);
        if (!p)
                return -ENOMEM;
        for (char *s = strchr(p + 1, '/'); s; s = strchr(s + 1, '/')) {
                *s = 0;
                if (mkdir(p, 0700) < 0 && errno != EEXIST)
                        return negative_errno();
                *s = '/';
        }
        return 0;
}

/* Write the config file atomically (0600). token may be NULL. Returns 1
 * when written, 0 when a file of someone else's is there. */
static int config_write(const char *path, const char *api, const char *act, const char *token) {
        _cleanup_free_ char *tmp = NULL;
        int r = config_ours(path);
        if (r <= 0)
                return r;
        if ((r = mkdir_parents(path)) < 0)
                return r;
        if (asprintf(&tmp, "%s.XXXXXX", path) < 0)
                return tmp = NULL, -ENOMEM;
        int fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        FILE *f = fdopen(fd, "w");
        if (!f) {
                r = negative_errno();
                safe_close(fd);
                unlink(tmp);
                return r;
        }
        fputs(UP_CONFIG_MARK " for the platform it started; it rewrites this file.\n"
              "# Delete these two lines to keep your own settings here.\n", f);
        yaml_quoted(f, "url", api);
        yaml_quoted(f, "activator", act);
        if (token)
                yaml_quoted(f, "token", token);
        r = fflush(f) == 0 && fsync(fd) == 0 ? 0 : negative_errno();
        fclose(f);
        if (r == 0 && rename(tmp, path) < 0)
                r = negative_errno();
        if (r < 0)
                unlink(tmp);
        return r < 0 ? r : 1;
}

/* The admin token, when fnbox would not find it by itself (it reads
 * /var/lib/fnbox/admin.token as root). */
static char *token_for_config(Up *u) {
        char buf[CONFIG_VALUE_MAX + 2];
        if (strcmp(u->data_dir, "/var/lib/fnbox") == 0)
                return NULL;
        ssize_t n = read_file_small(u->token_file, buf, sizeof buf);
        if (n <= 0)
                return NULL;
        buf[strcspn(buf, "\r\n")] = 0;
        char *t = config_token_valid(buf) ? strdup(buf) : NULL;
        explicit_bzero(buf, sizeof buf);
        return t;
}

/* Point the CLI at what runs; returns the line that says how. */
static void up_config(Up *u, const VerbArgs *a, const char *api, const char *act, char *line, size_t size) {
        _cleanup_free_ char *path = config_path();
        _cleanup_free_ char *token = token_for_config(u);
        int r = a->no_config ? 0 : path ? config_write(path, api, act, token) : -ENOENT;
        if (token)
                explicit_bzero(token, strlen(token));
        if (r > 0) {
                snprintf(line, size, "%s (fnbox in another terminal of this user uses it)", path);
                return;
        }
        if (r < 0)
                fprintf(stderr, "%s: cannot write the CLI config %s: %s\n", u->prog, path ? path : "(no home)",
                        strerror(-r));
        else if (!a->no_config)
                fprintf(stderr, "%s: %s is not one fnbox up wrote; left alone\n", u->prog, path);
        bool own_dir = strcmp(u->data_dir, "/var/lib/fnbox") != 0;
        int n = snprintf(line, size, "export FNBOX_URL=%s FNBOX_ACTIVATOR=%s%s%s%s", api, act,
                         own_dir ? " FNBOX_TOKEN=$(cat " : "", own_dir ? u->token_file : "", own_dir ? ")" : "");
        if (n < 0 || (size_t) n >= size)
                snprintf(line, size, "(too long to show)");
}

/* ---- what runs ---------------------------------------------------------- */

/* "fnbox" when this binary's folder is on PATH, else its full path. */
static void fnbox_command(Up *u, char *buf, size_t size) {
        const char *path = getenv("PATH");
        _cleanup_free_ char *copy = path ? strdup(path) : NULL;
        char *save = NULL;
        for (char *dir = copy ? strtok_r(copy, ":", &save) : NULL; dir; dir = strtok_r(NULL, ":", &save))
                if (strcmp(dir, u->bin) == 0) {
                        snprintf(buf, size, "fnbox");
                        return;
                }
        snprintf(buf, size, "%s/fnbox", u->bin);
}

/* The first word of a ready line's rest: the URL. */
static void first_word(const char *s, char *buf, size_t size) {
        snprintf(buf, size, "%.*s", (int) strcspn(s, " \t"), s);
}

static void up_summary(Up *u, const VerbArgs *a, const char *api) {
        char act[UP_LINE_MAX], cfg[3 * PATH_MAX], fnbox[PATH_MAX + 8];
        first_word(u->d[D_ACTIVATOR].ready_text, act, sizeof act);
        up_config(u, a, api, act, cfg, sizeof cfg);
        fnbox_command(u, fnbox, sizeof fnbox);
        bool example = access("functions/hello/manifest.yaml", R_OK) == 0;
        printf("\nfnbox is up (Ctrl-C stops it):\n"
               "  invoke     %s/fn/NAME\n"
               "  API        %s   (admin token in %s)\n"
               "  node       %s\n"
               "  CLI        %s\n\n"
               "Try it, in another terminal:\n"
               "  %s deploy -f %s\n"
               "  %s call hello -d fnbox\n"
               "  curl -H \"Authorization: Bearer $(cat %s)\" -d fnbox %s/fn/hello\n\n",
               act, api, u->token_file, u->d[D_RUNTIME].ready_text, cfg,
               fnbox, example ? "functions/hello/manifest.yaml" : "MANIFEST   # see docs/quickstart.md", fnbox,
               u->token_file, act);
        fflush(stdout);
}

/* Start, wait, serve, stop. Returns the exit code. */
static int up_run(Up *u, const VerbArgs *a) {
        static const int ctl[] = { D_CONTROLLER }, plane[] = { D_RUNTIME, D_ACTIVATOR };
        char api[UP_LINE_MAX];
        int r = start_controller(u, a);
        if (r >= 0 && wait_ready(u, ctl, 1) < 0)
                r = -EIO;
        if (r >= 0 && access(u->token_file, R_OK) < 0) {
                fprintf(stderr, "%s: the controller left no admin token in %s (it writes one only on the store's "
                        "first start); put an admin token there and start again\n", u->prog, u->token_file);
                r = -ENOENT;
        }
        first_word(u->d[D_CONTROLLER].ready_text, api, sizeof api);
        if (r >= 0 && (r = start_data_plane(u, a, api)) >= 0 && wait_ready(u, plane, 2) < 0)
                r = -EIO;
        if (r == -EIO && u->stop_signals)
                r = 0;                  /* Ctrl-C while starting: a stop, not a failure */
        else if (r >= 0) {
                up_summary(u, a, api);
                while (!u->stop_signals && up_pump(u, -1) == 0)
                        ;
        }
        for (size_t i = 0; r >= 0 && i < D_COUNT; i++)
                if (u->d[i].pid < 0) {
                        char why[96];
                        daemon_describe_exit(&u->d[i], why, sizeof why);
                        fprintf(stderr, "%s: %s %s; stopping the others\n", u->prog, u->d[i].name, why);
                        r = -ECHILD;
                }
        if (r < 0 && r != -EIO && r != -ENOENT && r != -ECHILD)
                fprintf(stderr, "%s: cannot start the daemons: %s\n", u->prog, strerror(-r));
        if (up_stop(u) < 0 && r >= 0)
                r = -EIO;
        return r < 0 ? CLI_EXIT_ERROR : CLI_EXIT_OK;
}

/* ---- checks before anything starts -------------------------------------- */

static int up_paths(Up *u, const VerbArgs *a) {
        char exe[PATH_MAX], cwd[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n <= 0)
                return fprintf(stderr, "%s: cannot find this program: %s\n", u->prog, strerror(errno)), -EINVAL;
        exe[n] = 0;
        snprintf(u->bin, sizeof u->bin, "%s", dirname(exe));
        for (size_t i = 0; i < D_COUNT; i++) {
                Daemon *d = &u->d[i];
                n = snprintf(d->path, sizeof d->path, "%s/%s", u->bin, d->name);
                if (n < 0 || (size_t) n >= sizeof d->path || access(d->path, X_OK) < 0)
                        return fprintf(stderr, "%s: no %s next to this fnbox (%s: %s); build it with 'make'\n",
                                       u->prog, d->name, d->path, strerror(errno)), -ENOENT;
        }
        const char *dir = a->data_dir ? a->data_dir : "/var/lib/fnbox";
        if (dir[0] != '/' && !getcwd(cwd, sizeof cwd))
                return fprintf(stderr, "%s: cannot read the current folder: %s\n", u->prog, strerror(errno)), -EINVAL;
        n = snprintf(u->data_dir, sizeof u->data_dir, "%s%s%s", dir[0] == '/' ? "" : cwd, dir[0] == '/' ? "" : "/", dir);
        if (n < 0 || (size_t) n >= sizeof u->data_dir || !*dir)
                return fprintf(stderr, "%s: --data-dir: expected a folder\n", u->prog), -EINVAL;
        snprintf(u->token_file, sizeof u->token_file, "%s/admin.token", u->data_dir);
        u->run_dir = a->run_dir ? a->run_dir : "/run/fnbox";
        if (u->run_dir[0] != '/' || strlen(u->run_dir) > 80)
                return fprintf(stderr, "%s: --run-dir: expected an absolute path of at most 80 bytes "
                               "(socket paths are short)\n", u->prog), -EINVAL;
        return 0;
}

static int up_check(Up *u, const VerbArgs *a) {
        uint64_t ns = (uint64_t) UP_READY_TIMEOUT_MS * 1000000;
        if (a->ready_timeout && (quantity_parse_duration(a->ready_timeout, &ns) < 0 || ns < 1000000000ULL ||
                                 ns > 3600ULL * 1000000000ULL)) {
                fprintf(stderr, "%s: --ready-timeout: expected a duration from 1s to 1h, such as 90s\n", u->prog);
                return CLI_EXIT_USAGE;
        }
        u->ready_timeout_ms = ns / 1000000;
        for (size_t i = 0; i < a->n_labels; i++)
                if (a->labels[i][0] == '=') {
                        fprintf(stderr, "%s: --label '%s': expected KEY=VALUE\n", u->prog, a->labels[i]);
                        return CLI_EXIT_USAGE;
                }
        if (up_paths(u, a) < 0)
                return CLI_EXIT_USAGE;
        if (geteuid() != 0) {
                fprintf(stderr, "%s: needs root: fnbox-runtime makes namespaces and cgroups for the jails "
                        "(run 'sudo %s/fnbox up', or 'sudo make run'); the controller and the activator drop to "
                        "the user '%s'\n", u->prog, u->bin, a->user ? a->user : "fnbox");
                return CLI_EXIT_ERROR;
        }
        if (!getpwnam(a->user ? a->user : "fnbox")) {
                fprintf(stderr, "%s: no user '%s' for the controller and the activator to run as: create it "
                        "('make deps' does: useradd --system fnbox) or pass --user NAME\n", u->prog,
                        a->user ? a->user : "fnbox");
                return CLI_EXIT_ERROR;
        }
        return 0;
}

/* SIGINT, SIGTERM, SIGHUP and SIGCHLD arrive through a signalfd; the
 * children get the old mask back before exec. */
static int up_signals(Up *u) {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGHUP);
        sigaddset(&set, SIGCHLD);
        if (sigprocmask(SIG_BLOCK, &set, &u->old_mask) < 0)
                return negative_errno();
        signal(SIGPIPE, SIG_IGN);
        u->sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
        return u->sigfd < 0 ? negative_errno() : 0;
}

int up_main(const VerbArgs *a, const char *prog) {
        Up u = {
                .prog = prog,
                .sigfd = -1,
                .d = {
                        [D_CONTROLLER] = { .name = "fnbox-controller", .ready_prefix = "fnbox-controller: listening on ", .fd = -1 },
                        [D_RUNTIME] = { .name = "fnbox-runtime", .ready_prefix = "fnbox-runtime: node ",
                                        .ready_word = " ready", .fd = -1 },
                        [D_ACTIVATOR] = { .name = "fnbox-activator", .ready_prefix = "fnbox-activator: listening on ", .fd = -1 },
                },
        };
        int r = up_check(&u, a);
        if (r != 0)
                return r;
        if ((r = up_signals(&u)) < 0) {
                fprintf(stderr, "%s: cannot set up signal handling: %s\n", prog, strerror(-r));
                return CLI_EXIT_ERROR;
        }
        r = up_run(&u, a);
        safe_close(u.sigfd);
        return r;
}
