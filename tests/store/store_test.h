/* tests/store/store_test.h: what the store conformance tests share. The
 * runner (main.c) gives every test a fresh database at test_url(), of the
 * backend named on the command line; the same tests run against both.
 * TEST() and the ASSERT macros come from the unit-test framework. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "lib/store.h"
#include "tests/unit/test.h"

#define TEST_SKIP_STATUS        77      /* a test's exit status meaning "not for this backend" */

#define SKIP_UNLESS(c)                                                       \
        do {                                                                 \
                if (!(c)) {                                                  \
                        fprintf(stderr, "  skipped: needs %s\n", #c);        \
                        exit(TEST_SKIP_STATUS);                              \
                }                                                            \
        } while (0)

const char *test_url(void);
bool test_is_pg(void);
/* Open test_url(), failing the test with the store's message. */
Store *test_open(void);
/* Run SQL on the test database outside the store (its own connection). */
void test_raw_exec(const char *sql);
/* The single integer that sql selects. */
int64_t test_raw_int(const char *sql);
/* The libpq conninfo of a postgres URL (the part PQconnectdb takes). */
const char *test_pg_conninfo(const char *url);

/* "sha256:" + n as 64 hex digits. */
void test_digest(char ret[72], unsigned n);
/* Store an artifact whose digest is test_digest(n). */
void test_artifact(Store *s, unsigned n);
/* Deploy ns/name with spec number `spec` (its spec digest, revision spec and
 * code artifact all follow from it) and a traffic document (NULL: 100% to
 * the latest revision). Returns what store_deploy returns. */
int test_deploy(Store *s, const char *ns, const char *name, int64_t expected, unsigned spec,
                const char *traffic, StoreDeployResult *ret);
int64_t test_now_us(void);

/* `store-conformance --bench URL [N]`: the figures (bench.c). */
int store_bench(const char *url, unsigned nfunctions);
/* Give the runner's next database (a fresh file, or a wiped schema). */
int test_fresh_db(unsigned idx);
