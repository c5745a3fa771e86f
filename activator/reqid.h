/* activator/reqid.h: X-Request-Id and W3C traceparent. A request's own
 * values are kept when well-formed; otherwise fresh ones are made. Pure,
 * except that the makers take their randomness from the caller. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REQID_MAX        128      /* bytes of an accepted X-Request-Id */
#define TRACEPARENT_LEN  55       /* "00-" 32 hex "-" 16 hex "-" 2 hex */

/* 1 to 128 of [A-Za-z0-9._:/+=-]: nothing that could split a header or a log line. */
bool reqid_ok(const char *s);
/* Version 00 exactly as the W3C spec writes it (lowercase hex, non-zero
 * trace and parent ids); another version (not ff) when it starts alike. */
bool traceparent_ok(const char *s);

/* 32 hex digits from two random words. */
void reqid_make(uint64_t r1, uint64_t r2, char ret[33]);
/* "00-<trace>-<span>-01" from three random words (zero ids avoided). */
void traceparent_make(uint64_t r1, uint64_t r2, uint64_t r3, char ret[TRACEPARENT_LEN + 1]);
