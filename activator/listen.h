/* activator/listen.h: the listening sockets for --listen ADDR:PORT: one
 * per worker thread, all bound to the same address with SO_REUSEPORT, so
 * that the kernel spreads new connections over the workers. (The parsing
 * is the controller's listen.c; a lib/listen.c for both is proposed.) */
#pragma once

#include <stddef.h>

#define LISTEN_URL_MAX 80

/* Bind n sockets on spec ("127.0.0.1:8080", "[::1]:0"; port 0: the kernel
 * picks one, and the others take the same). CLOEXEC and non-blocking.
 * Returns 0 or -errno (-EINVAL for a malformed spec). */
int listen_open_n(const char *spec, unsigned n, int *ret_fds, char ret_url[LISTEN_URL_MAX]);
