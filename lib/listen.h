/* lib/listen.h: the listening sockets of the daemons' --listen ADDR:PORT
 * (the controller's API, the activator's /fn). */
#pragma once

#include <stddef.h>

#define LISTEN_URL_MAX 80

/* Bind and listen on n sockets for spec ("127.0.0.1:8081", "[::1]:0",
 * "localhost:8081"; port 0 lets the kernel pick, and every socket takes
 * the port the first one got). With n > 1 they share the address through
 * SO_REUSEPORT, so that the kernel spreads connections over n workers; a
 * single socket does not set it, so a second daemon on the same port fails
 * loudly instead of taking half of the traffic. The fds are CLOEXEC and
 * non-blocking; ret_url names the address and port actually bound.
 * Returns 0 or -errno (-EINVAL for a malformed spec, -EADDRNOTAVAIL for a
 * host that does not resolve); on failure no fd is left open. */
int listen_open_n(const char *spec, unsigned n, int *ret_fds, char ret_url[LISTEN_URL_MAX]);
