/* controller/listen.h: the listening socket for --listen ADDR:PORT. */
#pragma once

#include <stddef.h>

#define LISTEN_URL_MAX 80

/* Bind and listen on spec ("127.0.0.1:8081", "[::1]:0", "localhost:8081";
 * port 0 lets the kernel pick). The fd is CLOEXEC and non-blocking; the URL
 * names the address and port actually bound. Returns 0 or -errno
 * (-EINVAL for a malformed spec). */
int listen_open(const char *spec, int *ret_fd, char ret_url[LISTEN_URL_MAX]);
