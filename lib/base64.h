/* lib/base64.h: standard base64 (RFC 4648, with padding). */
#pragma once

#include <stddef.h>

/* Returns a malloc()ed NUL-terminated string, or NULL on allocation failure. */
char *base64_encode(const void *data, size_t len);
/* Decode standard base64 with padding (no whitespace): a malloc()ed
 * buffer and its length; -EINVAL for anything else, -ENOMEM. */
int base64_decode(const char *s, size_t len, void **ret, size_t *ret_len);
