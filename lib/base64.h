/* lib/base64.h: standard base64 (RFC 4648, with padding). */
#pragma once

#include <stddef.h>

/* Returns a malloc()ed NUL-terminated string, or NULL on allocation failure. */
char *base64_encode(const void *data, size_t len);
