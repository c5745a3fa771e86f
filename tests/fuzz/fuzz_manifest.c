/* tests/fuzz/fuzz_manifest.c: libFuzzer target for manifest_parse. Besides
 * crashes and leaks (ASan, UBSan), it checks what the parser promises: an
 * error always says what went wrong, and an accepted manifest has a valid
 * name, limits in range, traffic adding up to 100, and a canonical JSON. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_manifest(const Manifest *m) {
        if (!manifest_name_valid(m->name) || !manifest_name_valid(m->namespace_) || !m->code)
                abort();
        const ManifestLimits *l = &m->limits;
        if (l->memory_bytes < MANIFEST_MEMORY_MIN || l->memory_bytes > MANIFEST_MEMORY_MAX ||
            l->timeout_ns < MANIFEST_TIMEOUT_MIN_MS * 1000000 || l->cpu_millis < MANIFEST_CPU_MIN ||
            l->pids < MANIFEST_PIDS_MIN || l->pids > MANIFEST_PIDS_MAX || l->output_bytes > MANIFEST_OUTPUT_MAX)
                abort();
        if (m->scale.min > m->scale.max || m->scale.initial < m->scale.min || m->scale.initial > m->scale.max)
                abort();
        unsigned sum = 0;
        for (size_t i = 0; i < m->n_traffic; i++)
                sum += m->traffic[i].percent;
        if (m->n_traffic && sum != 100)
                abort();
        json_t *j = manifest_spec_to_json(m, true);
        char *s = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        if (!s)
                abort();
        free(s);
        json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        ManifestList *l = NULL;
        ManifestError err;
        char msg[640];
        int r = manifest_parse((const char *) data, size, "fuzz.yaml", &l, &err);
        if (r < 0) {
                if (l || (r != -ENOMEM && !err.message[0]))
                        abort();
                if (manifest_error_format(&err, msg, sizeof msg) <= 0 || strlen(msg) >= sizeof msg)
                        abort();
                return 0;
        }
        if (!l || l->n == 0)
                abort();
        for (size_t i = 0; i < l->n; i++)
                check_manifest(&l->items[i]);
        manifest_list_free(l);
        return 0;
}
