/* tests/store/bench.c: quick figures for one backend, `store-conformance
 * --bench URL [N]`: the deploy path (a 100 KB artifact put and a deploy that
 * creates a revision), and one page of 100 from a list of N functions. Not
 * the proper benchmark (`make bench`), a check that the numbers are sane. */
#define _GNU_SOURCE
#include "store_test.h"

#include <errno.h>

#include "lib/util.h"

#define BENCH_DEPLOYS   200
#define BENCH_LISTS     200
#define ARTIFACT_BYTES  (100u << 10)

static int cmp_i64(const void *a, const void *b) {
        int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
        return x < y ? -1 : x > y;
}

static void report(const char *backend, const char *what, int64_t *us, size_t n) {
        qsort(us, n, sizeof *us, cmp_i64);
        printf("store bench (%s): %s: median %.2f ms, p99 %.2f ms (n=%zu)\n", backend, what,
               (double) us[n / 2] / 1000, (double) us[(n * 99) / 100] / 1000, n);
}

static void bench_deploy(Store *s) {
        static int64_t us[BENCH_DEPLOYS];
        _cleanup_free_ unsigned char *data = malloc(ARTIFACT_BYTES);
        char code[72], digest[65], spec[64];
        for (size_t i = 0; i < ARTIFACT_BYTES; i++)
                data[i] = (unsigned char) (i * 2654435761u >> 13);
        for (unsigned k = 0; k < BENCH_DEPLOYS; k++) {
                memcpy(data, &k, sizeof k);             /* a new artifact each time */
                test_digest(code, 0x10000000 + k);
                snprintf(digest, sizeof digest, "%064x", 0x10000000 + k);
                snprintf(spec, sizeof spec, "{\"spec\":%u}", k);
                StoreDeploy d = { "default", "bench", -1, spec, "[]", spec, digest, code };
                int64_t t0 = test_now_us();
                int r = store_artifact_put(s, code, data, ARTIFACT_BYTES);
                if (r >= 0)
                        r = store_deploy(s, &d, NULL);
                us[k] = test_now_us() - t0;
                if (r < 0)
                        FAIL_AT("deploy: %s: %s", strerror(-r), store_last_error(s));
        }
        report(store_backend(s), "artifact put (100 KB) + deploy", us, BENCH_DEPLOYS);
}

static void bench_list(Store *s, unsigned nfunctions) {
        static int64_t us[BENCH_LISTS];
        char name[32], what[128];
        int64_t t0 = test_now_us();
        for (unsigned k = 0; k < nfunctions; k++) {
                snprintf(name, sizeof name, "fn-%06u", k);
                if (test_deploy(s, k % 2 ? "team-a" : "default", name, -1, 1, NULL, NULL) < 0)
                        FAIL_AT("deploy: %s", store_last_error(s));
        }
        printf("store bench (%s): %u functions deployed in %.1f s\n", store_backend(s), nfunctions,
               (double) (test_now_us() - t0) / 1e6);
        const char *cursors[] = { NULL, "default/fn-004000", "team-a/fn-009001" };
        for (size_t c = 0; c < ELEMENTSOF(cursors); c++) {
                for (unsigned k = 0; k < BENCH_LISTS; k++) {
                        StoreFunction *items = NULL;
                        size_t n = 0;
                        char *next = NULL;
                        t0 = test_now_us();
                        int r = store_function_list(s, NULL, cursors[c], 100, &items, &n, &next);
                        us[k] = test_now_us() - t0;
                        if (r < 0 || n != 100)
                                FAIL_AT("list: %d %s", r, store_last_error(s));
                        store_function_array_free(items, n);
                        free(next);
                }
                snprintf(what, sizeof what, "list page of 100 of %u, after %s", nfunctions,
                         cursors[c] ? cursors[c] : "(start)");
                report(store_backend(s), what, us, BENCH_LISTS);
        }
}

int store_bench(const char *url, unsigned nfunctions) {
        (void) url;
        test_fresh_db(0);
        Store *s = test_open();
        bench_deploy(s);
        bench_list(s, nfunctions);
        store_close(s);
        test_fresh_db(0);
        return 0;
}
