/* lib/manifest.h: fnbox manifests (apiVersion fnbox.dev/v1, kind Function),
 * parsed with libyaml into a typed structure with every default applied.
 * The CLI parses before it uploads; the controller parses again on receipt.
 * Hostile input (alias bombs, deep nesting, huge scalars, invalid UTF-8,
 * oversized documents) is refused before it costs anything. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MANIFEST_DOC_MAX        (1u << 20)      /* bytes per file */
#define MANIFEST_DEPTH_MAX      16              /* nesting of mappings/sequences */
#define MANIFEST_SCALAR_MAX     (16u << 10)     /* bytes per scalar */
#define MANIFEST_DOCS_MAX       256             /* documents per file or folder */
#define MANIFEST_NAME_MAX       63              /* DNS-1123 label */
#define MANIFEST_ENV_MAX        256
#define MANIFEST_TRAFFIC_MAX    16
#define MANIFEST_VARIANTS_MAX   16
#define MANIFEST_LABELS_MAX     32              /* nodeSelector entries */
#define MANIFEST_NODES_MAX      (1u << 15)      /* YAML nodes per document */
#define MANIFEST_CODE_MAX       1024            /* bytes in spec.code */
#define MANIFEST_ENTRY_MAX      200             /* bytes in spec.entrypoint (the jail's) */

/* Ranges a manifest may ask for: the jail's (runtime/jail_config.c), with
 * fixed ceilings where the jail uses the size of the host, since a manifest
 * is checked away from the node that will run it (that node refuses what it
 * cannot hold). Durations have millisecond precision. */
#define MANIFEST_MEMORY_MIN     (4ULL << 20)
#define MANIFEST_MEMORY_MAX     (1ULL << 40)
#define MANIFEST_TIMEOUT_MIN_MS 1ULL
#define MANIFEST_TIMEOUT_MAX_MS (24ULL * 3600 * 1000)
#define MANIFEST_CPU_MIN        10ULL           /* millicores */
#define MANIFEST_CPU_MAX        64000ULL
#define MANIFEST_PIDS_MIN       1ULL
#define MANIFEST_PIDS_MAX       32768ULL
#define MANIFEST_TMP_MIN        (64ULL << 10)
#define MANIFEST_TMP_MAX        (512ULL << 30)
#define MANIFEST_OUTPUT_MIN     (1ULL << 10)
#define MANIFEST_OUTPUT_MAX     (64ULL << 20)
#define MANIFEST_SCALE_MAX      1000            /* instances, and target concurrency */
#define MANIFEST_IDLE_MIN_MS    1000ULL         /* scaleToZeroAfter */
#define MANIFEST_IDLE_MAX_MS    (3600ULL * 1000)
#define MANIFEST_RETENTION_MAX_MS (24ULL * 3600 * 1000) /* scale.retention */
#define MANIFEST_GPUS_MAX       64ULL           /* limits.gpus */
#define MANIFEST_CONCURRENCY_MAX 1000           /* spec.concurrency */
#define MANIFEST_STARTUP_MIN_MS 1000ULL         /* spec.startupTimeout */
#define MANIFEST_STARTUP_MAX_MS (3600ULL * 1000)
#define MANIFEST_PROBE_PATH_MAX 200             /* spec.readiness.path */
#define MANIFEST_PROBE_MIN_MS   10ULL           /* spec.readiness.period */
#define MANIFEST_PROBE_MAX_MS   60000ULL
#define MANIFEST_STABLE_MIN_MS  6000ULL         /* spec.scale.stableWindow */
#define MANIFEST_STABLE_MAX_MS  (3600ULL * 1000)
#define MANIFEST_PANIC_MIN_MS   1000ULL         /* spec.scale.panicWindow (at most stableWindow) */
#define MANIFEST_RATE_MAX       1000000.0       /* maxScaleUpRate, maxScaleDownRate: > 1 */

/* The defaults a reader of stored revision JSON applies to keys that older
 * revisions lack (manifest_spec_params does). */
#define MANIFEST_STARTUP_DEFAULT_MS     600000ULL
#define MANIFEST_PROBE_PATH_DEFAULT     "/healthz"
#define MANIFEST_PROBE_DEFAULT_MS       100ULL
#define MANIFEST_STABLE_DEFAULT_MS      60000ULL
#define MANIFEST_PANIC_DEFAULT_MS       6000ULL
#define MANIFEST_UP_RATE_DEFAULT        1000.0
#define MANIFEST_DOWN_RATE_DEFAULT      2.0

typedef enum {
        MANIFEST_RUNTIME_EXEC,
        MANIFEST_RUNTIME_SH,
        MANIFEST_RUNTIME_PYTHON3,
        MANIFEST_RUNTIME_NODE,
} ManifestRuntime;

typedef enum {
        MANIFEST_MODE_FRESH,
        MANIFEST_MODE_SERVICE,
} ManifestMode;

typedef struct ManifestPair {
        char *key;
        char *value;
} ManifestPair;

/* Each limit is 0 when unset; manifest_parse fills the defaults (the jail's:
 * 128Mi, 10s, 1 CPU, 64 pids, 16Mi tmp, 1Mi output; no GPU). */
typedef struct ManifestLimits {
        uint64_t memory_bytes;
        uint64_t timeout_ns;
        uint64_t cpu_millis;
        uint64_t pids;
        uint64_t tmp_bytes;
        uint64_t output_bytes;
        uint64_t gpus;          /* 0: none (a variant's 0 inherits the spec's) */
} ManifestLimits;

typedef struct ManifestScale {
        uint32_t min, max, initial, target;     /* defaults 0, 20, 1, 10 */
        uint64_t scale_to_zero_after_ns;        /* default 30s */
        uint64_t retention_ns;                  /* default 0: the last instance's least ready time */
        uint64_t stable_window_ns;              /* default 60s, 6s..1h */
        uint64_t panic_window_ns;               /* default 6s, 1s..stable_window */
        double max_scale_up_rate;               /* > 1, default 1000 */
        double max_scale_down_rate;             /* > 1, default 2 */
} ManifestScale;

/* How the runtime decides a service instance is ready. */
typedef struct ManifestReadiness {
        char *path;                             /* absolute, default "/healthz" */
        uint64_t period_ns;                     /* default 100ms, 10ms..60s */
} ManifestReadiness;

typedef struct ManifestTraffic {
        char *revision;         /* NAME-00001, or NULL when latest */
        bool latest;            /* latestRevision: true */
        uint32_t percent;       /* 0..100 */
        char *tag;              /* DNS-1123 label or NULL */
} ManifestTraffic;

/* A build of the function for nodes whose labels match node_selector
 * (a CUDA build and a ROCm build, say). Unset fields inherit from spec. */
typedef struct ManifestVariant {
        char *name;
        ManifestPair *node_selector;
        size_t n_node_selector;
        char *code;             /* NULL: the spec's */
        char *entrypoint;       /* NULL: the spec's */
        ManifestPair *env;      /* added to (and overriding) the spec's */
        size_t n_env;
        ManifestLimits limits;  /* 0 fields inherit */
} ManifestVariant;

typedef struct Manifest {
        char *source;           /* file name as given, for messages */
        unsigned line;          /* line where the document starts */

        char *name;
        char *namespace_;       /* default "default" */
        bool namespace_set;     /* written in the manifest: it then wins over -n / ?namespace= */

        ManifestRuntime runtime;
        char *code;             /* relative to the manifest's folder, as written */
        char *entrypoint;       /* NULL: the runtime's default inside a folder */
        ManifestMode mode;
        ManifestPair *env;
        size_t n_env;
        ManifestLimits limits;
        uint32_t concurrency;   /* hard limit per instance, default scale.target */
        uint64_t startup_timeout_ns;    /* default 10m, 1s..1h */
        ManifestReadiness readiness;
        ManifestScale scale;
        ManifestPair *node_selector;
        size_t n_node_selector;
        ManifestVariant *variants;
        size_t n_variants;
        ManifestTraffic *traffic;       /* n_traffic == 0: 100% to latest */
        size_t n_traffic;
} Manifest;

typedef struct ManifestList {
        Manifest *items;
        size_t n;
} ManifestList;

/* Where and why parsing failed. field is the dotted path ("spec.limits.memory",
 * "spec.traffic[1].percent"), empty when the error is about the whole document. */
typedef struct ManifestError {
        char file[256];
        unsigned line, column;  /* 1-based; 0 when unknown */
        char field[128];
        char message[256];      /* says what was expected */
} ManifestError;

/* Parse every document in buf (a single file; filename is used for messages
 * and nothing else; buf need not be NUL-terminated). Returns 0 and a list of
 * at least one manifest (empty documents are skipped), or -EINVAL (bad
 * manifest), -E2BIG (over a structural limit: file size, documents, nodes,
 * depth, scalar size), -ENOMEM, with *err filled (err may be NULL). Semantic
 * checks included: unknown and duplicate fields, types, names, ranges,
 * traffic summing to 100 with unique tags, a code path that is absolute or
 * climbs out with "..", one function defined twice. YAML aliases and tags
 * are refused. A null value (`key:`, `~`) counts as the field left out.
 * docs/manifest.md lists every field. */
int manifest_parse(const char *buf, size_t len, const char *filename, ManifestList **ret, ManifestError *err);

/* Read and parse a file, or every *.yaml / *.yml in a folder (sorted by
 * name bytewise, not recursive, dot-files skipped; each manifest's source is
 * "FOLDER/FILE"). A file over MANIFEST_DOC_MAX is -E2BIG; a folder without
 * manifests is -ENOENT; open/read failures are their -errno. */
int manifest_load_path(const char *path, ManifestList **ret, ManifestError *err);

/* "FILE:LINE:COL: FIELD: MESSAGE", leaving out ":LINE:COL" and "FIELD: "
 * when unknown. Returns what snprintf returns: the full length, so a value
 * >= size means buf holds a truncated (still NUL-terminated) message. */
int manifest_error_format(const ManifestError *err, char *buf, size_t size);

void manifest_list_free(ManifestList *l);
void manifest_list_freep(ManifestList **l);
#define _cleanup_manifest_list_ __attribute__((cleanup(manifest_list_freep)))

/* The canonical JSON form of the spec, defaults applied, quantities as plain
 * integers: {runtime, code, entrypoint, mode, env, limits: {memoryBytes,
 * timeoutMs, cpuMillis, pids, tmpBytes, outputBytes, gpus}, concurrency,
 * startupTimeoutMs, readiness: {path, periodMs}, scale: {min, max, initial,
 * target, scaleToZeroAfterMs, retentionMs, stableWindowMs, panicWindowMs, maxScaleUpRate,
 * maxScaleDownRate}, nodeSelector, variants: [{name, nodeSelector, code,
 * entrypoint, env, limits}], traffic}. Keys are inserted
 * in that fixed order (jansson keeps insertion order, so a plain dump is
 * stable and readable); env and nodeSelector keys are sorted; code and
 * entrypoint are normalised ("./a//b/" is "a/b"; entrypoint null when unset);
 * variants are resolved (the spec's code, entrypoint, env and limits filled
 * in). For hashing, dump with JSON_COMPACT | JSON_SORT_KEYS. With
 * include_traffic false it is what defines a revision: two manifests that
 * differ only in traffic (or in key order, or in spelling a default) give
 * the same revision JSON. NULL on allocation failure. */
json_t *manifest_spec_to_json(const Manifest *m, bool include_traffic);
/* The traffic part alone, as in the spec: [{"revision" | "latestRevision":
 * true, "percent", "tag"?}...]; no traffic is [{"latestRevision": true,
 * "percent": 100}]. */
json_t *manifest_traffic_to_json(const Manifest *m);

/* What the control plane reads back from a stored canonical spec (or a
 * variant's limits): every key a revision stored by an older fnbox lacks
 * gets the default it would have had. Values out of range are clamped into
 * range, so a reader never trusts stored JSON blindly. */
typedef struct ManifestParams {
        ManifestMode mode;
        uint32_t min, max, initial, target, concurrency;
        uint64_t scale_to_zero_after_ms, retention_ms, stable_window_ms, panic_window_ms;
        double max_scale_up_rate, max_scale_down_rate;
        uint64_t startup_timeout_ms, timeout_ms, output_bytes;
        uint64_t cpu_millis, memory_bytes, gpus;
} ManifestParams;

void manifest_spec_params(const json_t *spec, ManifestParams *ret);
/* Only the resource part (cpuMillis, memoryBytes, gpus) of a limits object
 * into ret, keeping what ret holds for missing keys. */
void manifest_limits_params(const json_t *limits, ManifestParams *ret);

const char *manifest_runtime_name(ManifestRuntime r);
const char *manifest_mode_name(ManifestMode m);

/* DNS-1123 label: [a-z0-9]([-a-z0-9]*[a-z0-9])?, at most 63 characters. */
bool manifest_name_valid(const char *s);
/* Traffic tags that fnbox sets itself (a replay pins the revision it runs
 * as fnbox-rN): a manifest or traffic update may not use them. */
#define MANIFEST_RESERVED_TAG_PREFIX "fnbox-"
