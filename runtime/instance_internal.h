/* runtime/instance_internal.h: shared between instance.c (the instance,
 * fresh mode) and instance_service.c (service mode). */
#pragma once

#include <stdarg.h>

#include "instance.h"
#include "zygote.h"

#define INSTANCE_SOCKET_IN_JAIL "/run/fnbox/http.sock"
#define INSTANCE_SOCKET_NAME "http.sock"
#define INSTANCE_LOG_LINE_MAX 1024       /* a log line's bytes, at most; the rest of it is dropped */

/* A service's stdout or stderr on its way to the logs: the line so far. */
typedef struct InstanceLine {
        char buf[INSTANCE_LOG_LINE_MAX];
        size_t len;
        bool skipping;                   /* past the cap: the rest of this line goes */
} InstanceLine;

struct Instance {
        InstanceHost h;
        char *id, *ns, *function;
        char *revision;                  /* NAMESPACE/REVISION */
        char digest[80];
        bool service;
        InstanceState state;
        char reason[INSTANCE_REASON_MAX];
        uint64_t since_ms;               /* wall clock of the last transition */
        uint64_t created_ns;             /* monotonic */

        /* from the spec */
        JailRuntime runtime;
        char *entrypoint;                /* NULL: the runtime's default */
        char *code_name;                 /* the last component of spec.code */
        char **env;
        size_t n_env;
        JailLimits limits;
        unsigned slots;
        char *probe_path;
        uint64_t probe_ms, startup_ms;

        char *code_path;                 /* the unpacked code (folder or file) */

        /* its GPUs, as the controller assigned them (indices into the
         * node's inventory), and the device nodes they need in the jail */
        unsigned gpus[GPU_MAX];
        size_t n_gpus;
        JailDevice devices[JAIL_DEVICES_MAX];
        size_t n_devices;

        /* fresh */
        Zygote *zygote;
        uint64_t zygote_suspect_ns;      /* monotonic: until then, requests go to pool jails */
        unsigned zygote_failures;
        uint64_t zygote_started_ns;
        uv_timer_t zygote_timer;
        struct InstanceCall *calls;
        unsigned inflight;

        /* service */
        Jail *jail;
        bool jail_live;                  /* until the jail's END */
        char *run_dir;                   /* host folder bound at /run/fnbox (a fresh
                                          * instance's only with a broker) */
        char *endpoint;                  /* unix:RUN_DIR/http.sock once ready */
        uv_timer_t probe_timer, startup_timer;
        bool probing, stopping_on_purpose;
        int last_probe;                  /* the last probe's HTTP status, or a negative errno */
        char stop_reason[INSTANCE_REASON_MAX];
        InstanceState stop_state;
        InstanceLine lines[2];           /* its stdout and its stderr */

        /* the broker: its socket in run_dir (a fresh instance's folder is
         * made for it alone) */
        BrokerBox *broker_box;

        uv_timer_t drain_timer;
        unsigned open_handles;
        bool freeing;
};

uint64_t instance_now_ms(void);
uint64_t instance_mono_ns(void);
void instance_set_state(Instance *i, InstanceState s, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void instance_result_reason(const JailResult *r, char *buf, size_t len);
void instance_config(const Instance *i, JailConfig *c);
void instance_fresh_drained(Instance *i);
int instance_broker_open(Instance *i);
/* Remove a run folder and what a box left in it (never following a link). */
void instance_run_dir_remove(const char *path);

/* instance_service.c */
void instance_service_start(Instance *i);
void instance_service_drain(Instance *i, bool now);
void instance_service_kill(Instance *i);
void instance_service_cleanup(Instance *i);
