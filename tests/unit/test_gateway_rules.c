/* tests/unit/test_gateway_rules.c: the gateway's data rules
 * (activator/gateway/rules.c): each detector on the forms people write,
 * with UTF-8 text around them, and on the ordinary numbers that must not
 * fire (order numbers failing Luhn, dates, prices, times, versions, ISBNs,
 * hashes); checksums of Taiwan IDs and IBANs; rules switched off; the JSON
 * walk (string values only, keys excluded, deep nesting); and the time of
 * a scan of 1 MiB. */
#define _GNU_SOURCE
#include "test.h"

#include <errno.h>
#include <jansson.h>
#include <time.h>

#include "activator/gateway/policy.h"

#define BIT(r) (1u << (r))

static DataRuleSet scan(const char *s) {
        return data_rules_scan(s, strlen(s), DATA_RULES_ALL);
}

static void expect(const char *text, DataRuleSet want) {
        DataRuleSet got = scan(text);
        if (got != want) {
                char g[64], w[64];
                data_rules_format(got, g, sizeof g);
                data_rules_format(want, w, sizeof w);
                FAIL_AT("\"%s\": fired [%s], expected [%s]", text, g, w);
        }
}

TEST(rules_names) {
        char buf[64];
        for (int i = 0; i < _DATA_RULE_MAX; i++)
                ASSERT_EQ_INT(data_rule_from_name(data_rule_name(i)), i);
        ASSERT_EQ_INT(data_rule_from_name("ssn"), -EINVAL);
        ASSERT_EQ_INT(data_rule_from_name(NULL), -EINVAL);
        ASSERT_TRUE(data_rule_name(_DATA_RULE_MAX) == NULL);
        data_rules_format(BIT(DATA_RULE_EMAIL) | BIT(DATA_RULE_CARD), buf, sizeof buf);
        ASSERT_EQ_STR(buf, "email,card");
        data_rules_format(0, buf, sizeof buf);
        ASSERT_EQ_STR(buf, "");
        data_rules_format(DATA_RULES_ALL, buf, sizeof buf);
        ASSERT_EQ_STR(buf, "email,phone,card,tw_id,iban");
        data_rules_format(DATA_RULES_ALL, buf, 8);              /* truncated, still terminated */
        ASSERT_EQ_STR(buf, "email");
}

TEST(rules_email) {
        DataRuleSet e = BIT(DATA_RULE_EMAIL);
        expect("write to alice@example.com please", e);
        expect("alice.smith+tag@mail.example.co.uk", e);
        expect("<bob_99@sub-domain.example.org>", e);
        expect("請寄到 alice@example.com。謝謝", e);
        expect("mailto:x@y.io", e);
        expect("end of sentence: carol@example.net.", e);
        expect("@mention in a chat", 0);
        expect("user@localhost", 0);
        expect("a@b.c", 0);                     /* one-letter TLD */
        expect("@app.route(\"/\")", 0);
        expect("icon@2x.png and logo@3x.JPG", 0);
        expect("x@-bad.com", 0);
        expect("x@bad-.com", 0);
        expect("x@123.456", 0);                 /* numeric TLD */
        expect(".@example.com", 0);
        expect("foo.@example.com", 0);
        expect("email me @ example.com", 0);
        expect("2 @ 3.50 each", 0);
}

TEST(rules_email_long_local_part) {
        char buf[300];
        memset(buf, 'a', 64);
        strcpy(buf + 64, "@example.com");
        expect(buf, BIT(DATA_RULE_EMAIL));
        memset(buf, 'a', 65);
        strcpy(buf + 65, "@example.com");
        expect(buf, 0);
}

TEST(rules_card) {
        DataRuleSet c = BIT(DATA_RULE_CARD);
        expect("card 4111111111111111 exp 12/25", c);
        expect("4111 1111 1111 1111", c);
        expect("4111-1111-1111-1111", c);
        expect("5555555555554444", c);                  /* Mastercard */
        expect("2223 0000 4841 0010", c);               /* Mastercard 2-series */
        expect("3782 822463 10005", c);                 /* Amex 4-6-5 */
        expect("6011111111111117", c);                  /* Discover */
        expect("3530111333300000", c);                  /* JCB */
        expect("30569309025904", c);                    /* Diners, 14 digits */
        expect("6200000000000005", c);                  /* UnionPay */
        expect("4222222222222", c);                     /* Visa, 13 digits */
        expect("卡號4111111111111111到期", c);
        expect("4111 1111 1111 1111 12/25", c);         /* a date right after it */
}

TEST(rules_card_negatives) {
        expect("order 1234567890123", 0);
        expect("4111111111111112", 0);                  /* Luhn fails */
        expect("41111111111111111111", 0);              /* 20 digits */
        expect("x4111111111111111", 0);                 /* inside a word */
        expect("4111111111111111x", 0);
        expect("0.4111111111111111", 0);                /* decimals */
        expect("4111111111111111.5", 0);
        expect("79927398713", 0);                       /* passes Luhn, 11 digits */
        expect("1000000000000000009", 0);               /* passes Luhn, no issuer */
        expect("8000000000000000002", 0);
        expect("4111 1111-1111 1111", 0);               /* separators mixed */
        expect("41 11 11 11 11 11 11 11", 0);           /* groups of two */
        expect("4111  1111  1111  1111", 0);            /* two spaces */
        expect("timestamp 1700000000000 ms", 0);
        expect("ISBN 978-3-16-148410-0", 0);
        expect("sha256:4111111111111111deadbeef", 0);
}

TEST(rules_phone) {
        DataRuleSet p = BIT(DATA_RULE_PHONE);
        expect("call +1 555 123 4567", p);
        expect("+886 912 345 678", p);
        expect("+886912345678", p);
        expect("+44 20 7946 0958", p);
        expect("+1 (555) 123-4567", p);
        expect("0912-345-678", p);
        expect("0912345678", p);
        expect("(02) 2345-6789", p);
        expect("02 2345 6789", p);
        expect("020 7946 0958", p);
        expect("555-234-5678", p);
        expect("(555) 234-5678", p);
        expect("555.234.5678", p);
        expect("1-800-555-1234", p);
        expect("電話：0912-345-678。", p);
        expect("tel:+81-3-1234-5678", p);
}

TEST(rules_phone_negatives) {
        expect("2024-01-15", 0);
        expect("on 01.02.2024 10 people came", 0);
        expect("15/01/2024 10:30", 0);
        expect("price $1,234,567.89", 0);
        expect("NT$ 12,345", 0);
        expect("order 1234567890", 0);                  /* a bare run: any number */
        expect("5551234567", 0);
        expect("123-456-7890", 0);                      /* area code cannot start with 1 */
        expect("555-023-4567", 0);                      /* nor the exchange with 0 */
        expect("555-123-4567", 0);                      /* or 1 */
        expect("version 1.2.3", 0);
        expect("192.168.100.200", 0);
        expect("0012345678", 0);                        /* zero-padded */
        expect("01234567", 0);                          /* too short */
        expect("0123456789012345", 0);                  /* too long */
        expect("+1234567", 0);                          /* too short */
        expect("1+2345678901", 0);                      /* arithmetic */
        expect("3.0912345678", 0);
        expect("(555 123-4567", 0);                     /* unclosed */
        expect("0912-345 678", 0);                      /* separators mixed */
}

TEST(rules_tw_id) {
        DataRuleSet t = BIT(DATA_RULE_TW_ID);
        expect("A123456789", t);
        expect("身分證字號A123456789。", t);
        expect("ID: F131104093", t);
        /* walk every check digit of A12345678x: exactly one passes */
        int valid = 0;
        for (char d = '0'; d <= '9'; d++) {
                char id[] = "A12345678x";
                id[9] = d;
                valid += scan(id) == t;
        }
        ASSERT_EQ_INT(valid, 1);
        expect("A123456788", 0);                        /* checksum */
        expect("A323456789", 0);                        /* sex digit */
        expect("a123456789", 0);                        /* lowercase */
        expect("XA123456789", 0);                       /* inside a word */
        expect("A1234567890", 0);                       /* one digit more */
        expect("A12345678", 0);
}

TEST(rules_iban) {
        DataRuleSet b = BIT(DATA_RULE_IBAN);
        expect("DE89370400440532013000", b);
        expect("DE89 3704 0044 0532 0130 00", b);
        expect("IBAN: GB82 WEST 1234 5698 7654 32, thanks", b);
        expect("GB82WEST12345698765432", b);
        expect("FR1420041010050500013M02606", b);
        expect("NO9386011117947", b);                   /* the shortest */
        expect("帳號 DE89 3704 0044 0532 0130 00 歐元", b);
        expect("DE89 3704 0044 0532 0130 00 EUR", b);
        expect("DE88370400440532013000", 0);            /* check digits */
        expect("DE8937040044053201300", 0);             /* one short for DE */
        expect("DE893704004405320130000", 0);           /* one long */
        expect("DE89 37040044 0532 0130 00", 0);        /* grouped wrong */
        expect("de89370400440532013000", 0);            /* lowercase */
        expect("XDE89370400440532013000", 0);
        expect("ORDER12345678901234567", 0);
}

TEST(rules_enabled_subset) {
        const char *t = "alice@example.com 4111111111111111 A123456789";
        ASSERT_EQ_UINT(data_rules_scan(t, strlen(t), BIT(DATA_RULE_CARD)), BIT(DATA_RULE_CARD));
        ASSERT_EQ_UINT(data_rules_scan(t, strlen(t), 0), 0);
        ASSERT_EQ_UINT(data_rules_scan(t, strlen(t), BIT(DATA_RULE_IBAN)), 0);
        ASSERT_EQ_UINT(scan(t), BIT(DATA_RULE_EMAIL) | BIT(DATA_RULE_CARD) | BIT(DATA_RULE_TW_ID));
        ASSERT_EQ_UINT(data_rules_scan(NULL, 0, DATA_RULES_ALL), 0);
}

TEST(rules_length_not_nul) {
        /* the length, not a NUL, ends the text; NULs inside are bytes */
        const char t[] = "no\0alice@example.com";
        ASSERT_EQ_UINT(data_rules_scan(t, sizeof t - 1, DATA_RULES_ALL), BIT(DATA_RULE_EMAIL));
        ASSERT_EQ_UINT(data_rules_scan(t, 13, DATA_RULES_ALL), 0);  /* "...alice@exam" */
        ASSERT_EQ_UINT(data_rules_scan("4111111111111111", 15, DATA_RULES_ALL), 0);
}

TEST(rules_json) {
        json_error_t err;
        json_t *req = json_loads("{\"model\": \"gpt\", \"messages\": ["
                                 "{\"role\": \"user\", \"content\": \"hello\"},"
                                 "{\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"card 4111 1111 1111 1111\"}]}],"
                                 "\"alice@example.com\": 1, \"n\": 4111111111111111}", 0, &err);
        ASSERT_TRUE(req != NULL);
        /* the key and the integer do not count; the nested string does */
        ASSERT_EQ_UINT(data_rules_scan_json(req, DATA_RULES_ALL), BIT(DATA_RULE_CARD));
        ASSERT_EQ_UINT(data_rules_scan_json(req, BIT(DATA_RULE_EMAIL)), 0);
        json_decref(req);
        req = json_pack("{s:s, s:[s, s]}", "prompt", "x", "input", "y", "A123456789");
        ASSERT_EQ_UINT(data_rules_scan_json(req, DATA_RULES_ALL), BIT(DATA_RULE_TW_ID));
        json_decref(req);
        ASSERT_EQ_UINT(data_rules_scan_json(NULL, DATA_RULES_ALL), 0);
}

TEST(rules_json_deep) {
        /* 3000 levels of arrays with an address at the bottom: the walk
         * goes past its first 64 frames on the heap and finds it */
        json_t *v = json_string("mail bob@example.org");
        for (int i = 0; i < 3000; i++) {
                json_t *a = json_array();
                json_array_append_new(a, v);
                v = a;
        }
        ASSERT_EQ_UINT(data_rules_scan_json(v, DATA_RULES_ALL), BIT(DATA_RULE_EMAIL));
        /* deeper than the walk follows: every enabled rule, nothing hidden */
        for (int i = 0; i < 2000; i++) {
                json_t *a = json_array();
                json_array_append_new(a, v);
                v = a;
        }
        ASSERT_EQ_UINT(data_rules_scan_json(v, BIT(DATA_RULE_IBAN)), BIT(DATA_RULE_IBAN));
        json_decref(v);
}

/* Sanitizers slow the scan ten times or more: the bounds are for the
 * plain build. */
#if defined(__SANITIZE_ADDRESS__)
#define TIME_SLACK 10.0
#else
#define TIME_SLACK 1.0
#endif

static double now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* 1 MiB of prose with numbers, dates, prices, UTF-8 and digit runs, and
 * nothing personal: none fires, in a few milliseconds. Then adversarial
 * text (long runs of digits, of "1 1 1", of '@' and of uppercase), which
 * must stay linear. */
TEST(rules_scan_1mib) {
        static const char *const pieces[] = {
                "The order 1234567890123 shipped on 2024-01-15 at 10:30 for $1,234.56. ",
                "版本 1.2.3 於 15/01/2024 發布，價格 NT$ 12,345 元。", "Call me maybe @ noon. ",
                "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 ",
                "Items: 12 34 56 78 90; ids 0012345678, 20240115; IPv4 192.168.100.200. ",
                "THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG AB12 XY 3.14159265358979 ",
        };
        size_t size = 1u << 20, n = 0, k = 0;
        char *buf = malloc(size);
        ASSERT_TRUE(buf != NULL);
        while (n < size) {
                size_t l = strlen(pieces[k % 6]);
                if (l > size - n)
                        l = size - n;
                memcpy(buf + n, pieces[k++ % 6], l);
                n += l;
        }
        double best = 1e9;
        for (int round = 0; round < 5; round++) {
                double t0 = now_ms();
                ASSERT_EQ_UINT(data_rules_scan(buf, size, DATA_RULES_ALL), 0);
                double t = now_ms() - t0;
                best = t < best ? t : best;
        }
        fprintf(stderr, "  1 MiB of prose: %.2f ms\n", best);
        ASSERT_TRUE(best < 20.0 * TIME_SLACK);  /* a few ms on a quiet machine; slack for a shared one */

        static const char *const hostile[] = { "1", "1 ", "@", "A", "a@", "+1 ", "(1) " };
        for (size_t h = 0; h < sizeof hostile / sizeof hostile[0]; h++) {
                size_t l = strlen(hostile[h]);
                for (n = 0; n + l <= size; n += l)
                        memcpy(buf + n, hostile[h], l);
                double t0 = now_ms();
                (void) data_rules_scan(buf, n, DATA_RULES_ALL);
                double t = now_ms() - t0;
                fprintf(stderr, "  1 MiB of \"%s\": %.2f ms\n", hostile[h], t);
                ASSERT_TRUE(t < 100.0 * TIME_SLACK);
        }
        free(buf);
}
