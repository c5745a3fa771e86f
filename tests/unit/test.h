/* tests/unit/test.h: a tiny unit-test framework. TEST(name) registers a test;
 * the runner (tests/unit/runner.c) forks each one with a timeout, so a crash or
 * hang fails that test only. Assertions print both values on failure. */
#pragma once

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct TestCase {
        const char *name;
        void (*fn)(void);
        struct TestCase *next;
} TestCase;

void test_register(TestCase *t);

#define TEST(n)                                                              \
        static void test_##n(void);                                          \
        static TestCase test_case_##n = { #n, test_##n, NULL };             \
        __attribute__((constructor)) static void test_reg_##n(void) {       \
                test_register(&test_case_##n);                               \
        }                                                                    \
        static void test_##n(void)

#define FAIL_AT(...)                                                         \
        do {                                                                 \
                fprintf(stderr, "  %s:%d: ", __FILE__, __LINE__);            \
                fprintf(stderr, __VA_ARGS__);                                \
                fputc('\n', stderr);                                         \
                exit(1);                                                     \
        } while (0)

#define ASSERT_TRUE(c)                                                       \
        do { if (!(c)) FAIL_AT("expected true: %s", #c); } while (0)

#define ASSERT_EQ_INT(a, b)                                                  \
        do {                                                                 \
                intmax_t _a = (intmax_t) (a), _b = (intmax_t) (b);           \
                if (_a != _b)                                                \
                        FAIL_AT("%s == %s: %jd != %jd", #a, #b, _a, _b);      \
        } while (0)

#define ASSERT_EQ_UINT(a, b)                                                 \
        do {                                                                 \
                uintmax_t _a = (uintmax_t) (a), _b = (uintmax_t) (b);        \
                if (_a != _b)                                                \
                        FAIL_AT("%s == %s: %ju != %ju", #a, #b, _a, _b);      \
        } while (0)

#define ASSERT_EQ_STR(a, b)                                                  \
        do {                                                                 \
                const char *_a = (a), *_b = (b);                             \
                if (!_a || !_b || strcmp(_a, _b) != 0)                       \
                        FAIL_AT("%s == %s: \"%s\" != \"%s\"", #a, #b,         \
                                _a ? _a : "(null)", _b ? _b : "(null)");      \
        } while (0)
