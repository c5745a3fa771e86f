/* activator/gateway/rules.c: the data rules: detectors of personal data in
 * a request's text (e-mail addresses, phone numbers, payment cards, Taiwan
 * national identification numbers, IBANs). Hand-written scanners in one
 * pass: each starts only at a token boundary and looks ahead a bounded
 * number of bytes, so a scan is linear in the text whatever it holds. The
 * numeric ones check what can be checked (Luhn, issuer ranges, checksums,
 * mod-97) to keep ordinary numbers, dates and prices out. */
#include "activator/gateway/policy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define EMAIL_LOCAL_MAX   64
#define EMAIL_DOMAIN_MAX  253
#define EMAIL_LABEL_MAX   63
#define CARD_DIGITS_MIN   13
#define CARD_DIGITS_MAX   19
#define CARD_GROUP_MIN    3
#define PHONE_DIGITS_MAX  15            /* E.164 */
#define PHONE_GROUPS_MAX  8
#define IBAN_MIN          15
#define IBAN_MAX          34
#define JSON_WALK_MAX     4096          /* nesting the JSON walk follows */

static const char *const rule_names[_DATA_RULE_MAX] = {
        [DATA_RULE_EMAIL] = "email",
        [DATA_RULE_PHONE] = "phone",
        [DATA_RULE_CARD]  = "card",
        [DATA_RULE_TW_ID] = "tw_id",
        [DATA_RULE_IBAN]  = "iban",
};

const char *data_rule_name(DataRule r) {
        return r >= 0 && r < _DATA_RULE_MAX ? rule_names[r] : NULL;
}

int data_rule_from_name(const char *name) {
        for (int i = 0; name && i < _DATA_RULE_MAX; i++)
                if (strcmp(rule_names[i], name) == 0)
                        return i;
        return -EINVAL;
}

void data_rules_format(DataRuleSet set, char *buf, size_t size) {
        size_t n = 0;
        if (size == 0)
                return;
        buf[0] = 0;
        for (int i = 0; i < _DATA_RULE_MAX; i++) {
                if (!(set & (1u << i)))
                        continue;
                int k = snprintf(buf + n, size - n, "%s%s", n ? "," : "", rule_names[i]);
                if (k < 0 || (size_t) k >= size - n) {
                        buf[n] = 0;     /* whole names only */
                        return;
                }
                n += (size_t) k;
        }
}

/* ---- character classes -------------------------------------------------- */

static inline bool is_digit(unsigned char c) {
        return c >= '0' && c <= '9';
}

static inline bool is_upper(unsigned char c) {
        return c >= 'A' && c <= 'Z';
}

static inline bool is_alpha(unsigned char c) {
        return is_upper(c) || (c >= 'a' && c <= 'z');
}

/* Part of a word: a number or a name continues through these. Bytes of
 * UTF-8 sequences are not: CJK text runs into numbers without spaces. */
static inline bool is_word(unsigned char c) {
        return is_digit(c) || is_alpha(c) || c == '_';
}

/* A number may start at i: no word before it, and no "3." "3," "3-" or
 * "3 " (the digits after a decimal point or a thousands separator, or the
 * next group of a number that started before: "DE89 3704 0044 0532" holds
 * no phone number "0532 ..."). */
static bool num_start_ok(const unsigned char *p, size_t i) {
        if (i == 0)
                return true;
        unsigned char b = p[i - 1];
        if (is_word(b))
                return false;
        return !((b == '.' || b == ',' || b == '-' || b == ' ') && i >= 2 && is_digit(p[i - 2]));
}

/* A number may end before j: no word after it, and no ".5" or ",000". */
static bool num_end_ok(const unsigned char *p, size_t j, size_t len) {
        if (j >= len)
                return true;
        if (is_word(p[j]))
                return false;
        return !((p[j] == '.' || p[j] == ',') && j + 1 < len && is_digit(p[j + 1]));
}

/* ---- payment cards ------------------------------------------------------ */

static bool luhn_ok(const unsigned char *d, size_t n) {
        unsigned sum = 0;
        for (size_t i = 0; i < n; i++) {
                unsigned v = d[n - 1 - i];
                if (i & 1) {
                        v *= 2;
                        if (v > 9)
                                v -= 9;
                }
                sum += v;
        }
        return sum % 10 == 0;
}

/* The issuer ranges of the card networks, with their lengths. A number
 * outside them (first digit 0, 1, 7, 8, 9: airlines, telecoms, national
 * schemes, and most ordinary numbers) is not a payment card. */
static bool card_issuer_ok(const unsigned char *d, size_t n) {
        unsigned p2 = d[0] * 10u + d[1], p3 = p2 * 10u + d[2], p4 = p3 * 10u + d[3];
        if (d[0] == 4)                                          /* Visa */
                return n == 13 || n == 16 || n == 19;
        if ((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720))      /* Mastercard */
                return n == 16;
        if (p2 == 34 || p2 == 37)                               /* American Express */
                return n == 15;
        if (p4 >= 2200 && p4 <= 2204)                           /* Mir */
                return n >= 16;
        if (p4 >= 3528 && p4 <= 3589)                           /* JCB */
                return n >= 16;
        if (p2 == 36 || p2 == 38 || p2 == 39 || (p3 >= 300 && p3 <= 305))     /* Diners Club */
                return n >= 14;
        if (p4 == 6011 || (p3 >= 644 && p3 <= 649) || p2 == 65 || p2 == 62)  /* Discover, UnionPay */
                return n >= 16;
        return p2 == 50 || (p2 >= 56 && p2 <= 69);             /* Maestro */
}

/* 13-19 digits from i, in groups of at least three separated by one space
 * or one dash (the same one throughout), passing the issuer check and
 * Luhn. Each group end is a candidate ("4111 1111 1111 1111 12/25" holds a
 * card followed by a date). A run of more than 19 digits is no card. */
static bool card_at(const unsigned char *p, size_t i, size_t len) {
        unsigned char d[CARD_DIGITS_MAX];
        size_t n = 0, j = i;
        unsigned char sep = 0;

        /* quick: the issuers' first digits, and a first group of three */
        if (p[i] < '2' || p[i] > '6' || i + CARD_DIGITS_MIN > len || !is_digit(p[i + 1]) || !is_digit(p[i + 2]))
                return false;

        for (;;) {
                size_t g = 0;
                while (j < len && is_digit(p[j])) {
                        if (n == CARD_DIGITS_MAX)
                                return false;
                        d[n++] = p[j++] - '0';
                        g++;
                }
                if (g < CARD_GROUP_MIN && n != g)
                        return false;
                if (n >= CARD_DIGITS_MIN && num_end_ok(p, j, len) && card_issuer_ok(d, n) && luhn_ok(d, n))
                        return true;
                if (j + 1 >= len || (p[j] != ' ' && p[j] != '-') || !is_digit(p[j + 1]) ||
                    (sep && p[j] != sep) || g < CARD_GROUP_MIN)
                        return false;
                sep = p[j++];
        }
}

/* ---- phone numbers ------------------------------------------------------ */

typedef struct Phone {
        unsigned char d[PHONE_DIGITS_MAX];
        size_t n;
        size_t group[PHONE_GROUPS_MAX];
        size_t groups;
        bool paren;                     /* the first group was in parentheses */
        bool mixed;                     /* separators differ (after a parenthesis: free) */
        size_t end;
} Phone;

/* One group: "(123)" or "123", with the digits appended to ph. */
static bool phone_group(const unsigned char *p, size_t *j, size_t len, Phone *ph) {
        bool paren = *j < len && p[*j] == '(';
        size_t g = 0;
        if (paren) {
                if (ph->groups > 1 || ph->paren)
                        return false;
                (*j)++;
        }
        while (*j < len && is_digit(p[*j])) {
                if (ph->n == PHONE_DIGITS_MAX)
                        return false;
                ph->d[ph->n++] = p[(*j)++] - '0';
                g++;
        }
        if (g == 0 || ph->groups == PHONE_GROUPS_MAX)
                return false;
        if (paren) {
                if (*j >= len || p[*j] != ')')
                        return false;
                (*j)++;
                ph->paren = true;
        }
        ph->group[ph->groups++] = g;
        return true;
}

/* Groups of digits from i, separated by one space, dash or dot, an area
 * code maybe in parentheses. false when it is no phone-shaped number at
 * all (too many digits, a group not closed). */
static bool phone_parse(const unsigned char *p, size_t i, size_t len, Phone *ph) {
        size_t j = i;
        unsigned char sep = 0;
        for (;;) {
                if (!phone_group(p, &j, len, ph))
                        return false;
                bool after_paren = p[j - 1] == ')';
                if (after_paren && j < len && (p[j] == ' ' || p[j] == '-') && j + 1 < len && is_digit(p[j + 1])) {
                        j++;
                        continue;
                }
                if (after_paren && j < len && is_digit(p[j]))
                        continue;
                if (j + 1 < len && (p[j] == ' ' || p[j] == '-' || p[j] == '.') &&
                    (is_digit(p[j + 1]) || p[j + 1] == '(')) {
                        if (sep && p[j] != sep)
                                ph->mixed = true;
                        sep = p[j++];
                        continue;
                }
                ph->end = j;
                return true;
        }
}

/* North American numbering: [1] NXX NXX XXXX, grouped (never one bare run
 * of ten digits: that is any number). */
static bool phone_nanp(const Phone *ph) {
        size_t k = 0;
        if (ph->groups == 4 && ph->group[0] == 1 && ph->d[0] == 1)
                k = 1;
        if (ph->groups - k != 3 || ph->group[k] != 3 || ph->group[k + 1] != 3 || ph->group[k + 2] != 4)
                return false;
        return ph->d[k] >= 2 && ph->d[k + 3] >= 2;
}

/* International: "+" and 8-15 digits. National: a trunk 0 and an area
 * digit 1-9 (0912 345 678, 02-2345-6789, 020 7946 0958) with 9-12 digits,
 * separated alike; or a North American 555-123-4567 / (555) 123-4567. */
static inline bool is_phone_sep(unsigned char c) {
        return c == ' ' || c == '-' || c == '.';
}

static bool phone_at(const unsigned char *p, size_t i, size_t len) {
        Phone ph;
        bool intl = p[i] == '+';
        size_t start = intl ? i + 1 : i;

        if (start >= len || !(is_digit(p[start]) || p[start] == '('))
                return false;
        /* quick: a national number starts with its trunk 0, or is grouped
         * as NXX-, 1-NXX- or (NXX) */
        if (!intl && p[i] != '0' && p[i] != '(' &&
            !(i + 3 < len && is_phone_sep(p[i + 3])) && !(p[i] == '1' && i + 1 < len && is_phone_sep(p[i + 1])))
                return false;
        ph.n = ph.groups = 0;
        ph.paren = ph.mixed = false;
        if (!phone_parse(p, start, len, &ph) || !num_end_ok(p, ph.end, len))
                return false;
        if (intl)
                return ph.n >= 8 && ph.n <= PHONE_DIGITS_MAX;
        if (ph.mixed)
                return false;
        if (ph.d[0] == 0 && ph.d[1] != 0 && ph.n >= 9 && ph.n <= 12)
                return true;
        return (ph.n == 10 || ph.n == 11) && phone_nanp(&ph);
}

/* ---- e-mail addresses --------------------------------------------------- */

static inline bool is_local_char(unsigned char c) {
        return is_word(c) || c == '.' || c == '%' || c == '+' || c == '-';
}

static inline bool is_label_char(unsigned char c) {
        return is_digit(c) || is_alpha(c) || c == '-';
}

/* Top-level domains that are file types: "icon@2x.png" is a file. */
static bool tld_is_file_type(const unsigned char *t, size_t n) {
        static const char *const ext[] = { "png", "jpg", "jpeg", "gif", "svg", "webp", "pdf" };
        for (size_t k = 0; k < sizeof ext / sizeof ext[0]; k++)
                if (strlen(ext[k]) == n && strncasecmp((const char *) t, ext[k], n) == 0)
                        return true;
        return false;
}

/* Domain labels from j: at least two, letters, digits and inner dashes,
 * the last one (the TLD) two or more letters. */
static bool email_domain(const unsigned char *p, size_t j, size_t len) {
        size_t labels = 0, total = 0, last = j, last_n = 0;
        for (;;) {
                size_t s = j;
                while (j < len && is_label_char(p[j]) && j - s <= EMAIL_LABEL_MAX)
                        j++;
                size_t n = j - s;
                if (n == 0 || n > EMAIL_LABEL_MAX || p[s] == '-' || p[j - 1] == '-')
                        return false;
                labels++;
                total += n + 1;
                last = s;
                last_n = n;
                if (total > EMAIL_DOMAIN_MAX)
                        return false;
                if (j + 1 < len && p[j] == '.' && is_label_char(p[j + 1])) {
                        j++;
                        continue;
                }
                break;
        }
        if (labels < 2 || last_n < 2 || (j < len && is_label_char(p[j])))
                return false;
        for (size_t k = last; k < last + last_n; k++)
                if (!is_alpha(p[k]))
                        return false;
        return !tld_is_file_type(p + last, last_n);
}

/* An address around the '@' at i: a local part of 1-64 characters that
 * does not start or end with a dot, and a domain. */
static bool email_at(const unsigned char *p, size_t i, size_t len) {
        size_t s = i;
        while (s > 0 && is_local_char(p[s - 1]) && i - s < EMAIL_LOCAL_MAX + 1)
                s--;
        while (s < i && p[s] == '.')
                s++;
        if (s == i || i - s > EMAIL_LOCAL_MAX || p[i - 1] == '.')
                return false;
        if (s > 0 && is_local_char(p[s - 1]) && p[s - 1] != '.')
                return false;           /* longer than any local part */
        return email_domain(p, i + 1, len);
}

/* ---- Taiwan national identification numbers ----------------------------- */

/* The two-digit codes of the letters (A=10 ... Z=33, I, O, W, X, Y, Z out
 * of order), as the Ministry of the Interior assigns them. */
static const unsigned char tw_letter[26] = {
        10, 11, 12, 13, 14, 15, 16, 17, 34, 18, 19, 20, 21,
        22, 35, 23, 24, 25, 26, 27, 28, 29, 32, 30, 31, 33,
};

/* A123456789: a letter, a sex digit (1, 2; 8, 9 on resident certificates
 * since 2021, same checksum), seven digits and a check digit. */
static bool tw_id_at(const unsigned char *p, size_t i, size_t len) {
        static const unsigned w[9] = { 8, 7, 6, 5, 4, 3, 2, 1, 1 };
        if (i + 10 > len || !num_end_ok(p, i + 10, len))
                return false;
        unsigned char s = p[i + 1];
        if (s != '1' && s != '2' && s != '8' && s != '9')
                return false;
        unsigned code = tw_letter[p[i] - 'A'];
        unsigned sum = code / 10 + (code % 10) * 9;
        for (size_t k = 0; k < 9; k++) {
                if (!is_digit(p[i + 1 + k]))
                        return false;
                sum += (unsigned) (p[i + 1 + k] - '0') * w[k];
        }
        return sum % 10 == 0;
}

/* ---- IBANs -------------------------------------------------------------- */

/* The IBAN length of each country in the SWIFT registry. */
static const struct { char cc[3]; unsigned char len; } iban_lengths[] = {
        { "AD", 24 }, { "AE", 23 }, { "AL", 28 }, { "AT", 20 }, { "AZ", 28 }, { "BA", 20 }, { "BE", 16 },
        { "BG", 22 }, { "BH", 22 }, { "BI", 27 }, { "BR", 29 }, { "BY", 28 }, { "CH", 21 }, { "CR", 22 },
        { "CY", 28 }, { "CZ", 24 }, { "DE", 22 }, { "DJ", 27 }, { "DK", 18 }, { "DO", 28 }, { "EE", 20 },
        { "EG", 29 }, { "ES", 24 }, { "FI", 18 }, { "FK", 18 }, { "FO", 18 }, { "FR", 27 }, { "GB", 22 },
        { "GE", 22 }, { "GI", 23 }, { "GL", 18 }, { "GR", 27 }, { "GT", 28 }, { "HR", 21 }, { "HU", 28 },
        { "IE", 22 }, { "IL", 23 }, { "IQ", 23 }, { "IS", 26 }, { "IT", 27 }, { "JO", 30 }, { "KW", 30 },
        { "KZ", 20 }, { "LB", 28 }, { "LC", 32 }, { "LI", 21 }, { "LT", 20 }, { "LU", 20 }, { "LV", 21 },
        { "LY", 25 }, { "MC", 27 }, { "MD", 24 }, { "ME", 22 }, { "MK", 19 }, { "MN", 20 }, { "MR", 27 },
        { "MT", 31 }, { "MU", 30 }, { "NI", 28 }, { "NL", 18 }, { "NO", 15 }, { "OM", 23 }, { "PK", 24 },
        { "PL", 28 }, { "PS", 29 }, { "PT", 25 }, { "QA", 29 }, { "RO", 24 }, { "RS", 22 }, { "RU", 33 },
        { "SA", 24 }, { "SC", 31 }, { "SD", 18 }, { "SE", 24 }, { "SI", 19 }, { "SK", 24 }, { "SM", 27 },
        { "SO", 23 }, { "ST", 25 }, { "SV", 28 }, { "TL", 23 }, { "TN", 24 }, { "TR", 26 }, { "UA", 29 },
        { "VA", 22 }, { "VG", 24 }, { "XK", 20 }, { "YE", 30 },
};

/* The registered length, or 0 for a country not (yet) in the table. */
static unsigned iban_length(const unsigned char *cc) {
        size_t lo = 0, hi = sizeof iban_lengths / sizeof iban_lengths[0];
        while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                int c = memcmp(cc, iban_lengths[mid].cc, 2);
                if (c == 0)
                        return iban_lengths[mid].len;
                if (c < 0)
                        hi = mid;
                else
                        lo = mid + 1;
        }
        return 0;
}

static unsigned mod97_add(unsigned r, unsigned char c) {
        if (is_digit(c))
                return (r * 10 + (c - '0')) % 97;
        return (r * 100 + (c - 'A' + 10)) % 97;
}

/* ISO 13616: the first four characters moved to the end, letters as
 * 10-35, the number mod 97 is 1. */
static bool iban_mod97(const unsigned char *s, size_t n) {
        unsigned r = 0;
        for (size_t k = 4; k < n; k++)
                r = mod97_add(r, s[k]);
        for (size_t k = 0; k < 4; k++)
                r = mod97_add(r, s[k]);
        return r == 1;
}

/* CC, two check digits and the account, uppercase, written as one run or
 * in groups of four separated by single spaces. A registered country must
 * have its length; another one any length from 15 to 34 that ends where
 * the text's word ends. */
static bool iban_at(const unsigned char *p, size_t i, size_t len) {
        unsigned char s[IBAN_MAX];
        size_t n = 0, j = i;

        if (i + 4 > len || !is_upper(p[i + 1]) || !is_digit(p[i + 2]) || !is_digit(p[i + 3]))
                return false;
        unsigned want = iban_length(p + i);
        for (;;) {
                size_t g = 0;
                while (j < len && (is_digit(p[j]) || is_upper(p[j])) && n < IBAN_MAX) {
                        s[n++] = p[j++];
                        g++;
                        if (want && n == want)
                                break;
                }
                bool at_end = num_end_ok(p, j, len);
                if (want ? n == want : (n >= IBAN_MIN && at_end)) {
                        if (at_end && iban_mod97(s, n))
                                return true;
                        if (want)
                                return false;
                }
                /* a space may follow only a full group of four */
                if (g != 4 || n >= IBAN_MAX || j + 1 >= len || p[j] != ' ' ||
                    !(is_digit(p[j + 1]) || is_upper(p[j + 1])))
                        return false;
                j++;
        }
}

/* ---- the scan ----------------------------------------------------------- */

/* Byte classes of the scan loop: where a detector may start, and what
 * continues a word (so that nothing starts inside one). */
enum { CL_WORD = 1, CL_START = 2, CL_AT = 4 };

static const unsigned char byte_class[256] = {
        ['0' ... '9'] = CL_WORD | CL_START,
        ['A' ... 'Z'] = CL_WORD | CL_START,
        ['a' ... 'z'] = CL_WORD,
        ['_'] = CL_WORD,
        ['+'] = CL_START,
        ['('] = CL_START,
        ['@'] = CL_AT,
};

DataRuleSet data_rules_scan(const char *text, size_t len, DataRuleSet enabled) {
        const unsigned char *p = (const unsigned char *) text;
        DataRuleSet found = 0;
        bool prev_word = false;
        enabled &= DATA_RULES_ALL;
        if (!p || !enabled)
                return 0;

#define WANT(r) ((enabled & ~found) & (1u << (r)))
#define FOUND(r) (found |= 1u << (r))
        for (size_t i = 0; i < len; i++) {
                unsigned char c = p[i], cl = byte_class[c];
                bool was_word = prev_word;
                prev_word = cl & CL_WORD;
                if (!(cl & (CL_START | CL_AT)) || (was_word && !(cl & CL_AT)))
                        continue;
                if (cl & CL_AT) {
                        if (WANT(DATA_RULE_EMAIL) && email_at(p, i, len))
                                FOUND(DATA_RULE_EMAIL);
                } else if (is_upper(c)) {
                        if (WANT(DATA_RULE_TW_ID) && tw_id_at(p, i, len))
                                FOUND(DATA_RULE_TW_ID);
                        if (WANT(DATA_RULE_IBAN) && iban_at(p, i, len))
                                FOUND(DATA_RULE_IBAN);
                } else if (num_start_ok(p, i)) {
                        if (is_digit(c) && WANT(DATA_RULE_CARD) && card_at(p, i, len))
                                FOUND(DATA_RULE_CARD);
                        if (WANT(DATA_RULE_PHONE) && phone_at(p, i, len))
                                FOUND(DATA_RULE_PHONE);
                }
                if (found == enabled)
                        break;
        }
#undef FOUND
#undef WANT
        return found;
}

/* Every string value, depth first, without recursion (the stack grows on
 * the heap past 64 levels). Out of memory, or nesting deeper than the
 * walk follows, marks the request with every enabled rule: nothing hides
 * where the scan cannot reach. */
typedef struct JsonFrame {
        const json_t *v;
        void *iter;
        size_t idx;
} JsonFrame;

static const json_t *json_next_child(JsonFrame *f) {
        if (json_is_object(f->v)) {
                f->iter = f->iter ? json_object_iter_next((json_t *) f->v, f->iter)
                                  : json_object_iter((json_t *) f->v);
                return f->iter ? json_object_iter_value(f->iter) : NULL;
        }
        return json_array_get(f->v, f->idx++);
}

DataRuleSet data_rules_scan_json(const json_t *request, DataRuleSet enabled) {
        JsonFrame small[64], *stack = small;
        size_t top = 0, cap = sizeof small / sizeof small[0];
        DataRuleSet found = 0;
        enabled &= DATA_RULES_ALL;

        if (!request || !enabled)
                return 0;
        stack[top++] = (JsonFrame) { request, NULL, 0 };
        while (top > 0 && (found & enabled) != enabled) {
                JsonFrame *f = &stack[top - 1];
                if (!json_is_object(f->v) && !json_is_array(f->v)) {
                        if (json_is_string(f->v))
                                found |= data_rules_scan(json_string_value(f->v), json_string_length(f->v),
                                                         enabled & ~found);
                        top--;
                        continue;
                }
                const json_t *next = json_next_child(f);
                if (!next) {
                        top--;
                        continue;
                }
                if (top == cap) {
                        JsonFrame *bigger = cap < JSON_WALK_MAX ? malloc(2 * cap * sizeof *bigger) : NULL;
                        if (!bigger) {
                                found = enabled;
                                break;
                        }
                        memcpy(bigger, stack, top * sizeof *stack);
                        if (stack != small)
                                free(stack);
                        stack = bigger;
                        cap *= 2;
                }
                stack[top++] = (JsonFrame) { next, NULL, 0 };
        }
        if (stack != small)
                free(stack);
        return found & enabled;
}
