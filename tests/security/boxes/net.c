/* tests/security/boxes/net.c: attacks on the network: TCP and UDP to the
 * host and the outside, every exotic socket family, an abstract unix socket
 * shared between two jails, and unix sockets the host listens on. */
#include "box.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif
#ifndef AF_ALG
#define AF_ALG 38
#endif
#ifndef AF_XDP
#define AF_XDP 44
#endif

/* connect() to IPv4 ADDR:PORT pairs; a socket that cannot be made is
 * reported as such, with its errno. */
static int inet(int argc, char **argv) {
        TRY("socket AF_INET stream", socket(AF_INET, SOCK_STREAM, 0));
        TRY("socket AF_INET dgram", socket(AF_INET, SOCK_DGRAM, 0));
        TRY("socket AF_INET6 stream", socket(AF_INET6, SOCK_STREAM, 0));
        /* the domain with bit 32 set: the kernel reads an int */
        TRY("socket AF_INET high bits", syscall(SYS_socket, (1UL << 32) | AF_INET, SOCK_STREAM, 0));
        int sv[2];
        TRY("socketpair AF_INET", socketpair(AF_INET, SOCK_STREAM, 0, sv));
        for (int i = 1; i < argc; i++) {
                char *colon = strrchr(argv[i], ':');
                if (!colon)
                        continue;
                *colon = 0;
                struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(atoi(colon + 1)) };
                inet_pton(AF_INET, argv[i], &sin.sin_addr);
                char step[128];
                snprintf(step, sizeof step, "connect %s:%s", argv[i], colon + 1);
                int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (fd < 0) {
                        say("%s: no socket, errno=%d\n", step, errno);
                        continue;
                }
                TRY(step, connect(fd, (struct sockaddr *) &sin, sizeof sin));
                close(fd);
        }
        TRY("socket AF_UNIX", socket(AF_UNIX, SOCK_STREAM, 0));
        return 0;
}

static int families(int argc, char **argv) {
        static const struct { const char *name; int domain, type, proto; } f[] = {
                { "AF_NETLINK route", AF_NETLINK, SOCK_RAW, 0 },
                { "AF_NETLINK uevent", AF_NETLINK, SOCK_DGRAM, 15 },
                { "AF_PACKET", AF_PACKET, SOCK_RAW, 0x0300 },
                { "AF_INET SOCK_RAW", AF_INET, SOCK_RAW, 255 },
                { "AF_INET6 SOCK_RAW", AF_INET6, SOCK_RAW, 255 },
                { "AF_VSOCK", AF_VSOCK, SOCK_STREAM, 0 },
                { "AF_ALG", AF_ALG, SOCK_SEQPACKET, 0 },
                { "AF_KEY", AF_KEY, SOCK_RAW, 2 },
                { "AF_XDP", AF_XDP, SOCK_RAW, 0 },
                { "AF_BLUETOOTH", AF_BLUETOOTH, SOCK_RAW, 0 },
                { "AF_CAN", AF_CAN, SOCK_RAW, 1 },
                { "AF_TIPC", AF_TIPC, SOCK_RDM, 0 },
        };
        for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
                char step[64];
                snprintf(step, sizeof step, "socket %s", f[i].name);
                TRY(step, socket(f[i].domain, f[i].type, f[i].proto));
        }
        TRY("socket AF_UNIX", socket(AF_UNIX, SOCK_DGRAM, 0));
        return 0;
}

static socklen_t abstract_addr(struct sockaddr_un *sun, const char *name) {
        *sun = (struct sockaddr_un) { .sun_family = AF_UNIX };
        size_t n = strlen(name);
        if (n > sizeof sun->sun_path - 2)
                n = sizeof sun->sun_path - 2;
        memcpy(sun->sun_path + 1, name, n);
        return (socklen_t) (offsetof(struct sockaddr_un, sun_path) + 1 + n);
}

/* Listen on an abstract name, prove it works from inside, then wait for a
 * visitor from another jail for the given number of milliseconds. */
static int abstract_listen(int argc, char **argv) {
        struct sockaddr_un sun;
        socklen_t len = abstract_addr(&sun, argc > 1 ? argv[1] : "fnbox-sec");
        int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        TRY("bind", bind(l, (struct sockaddr *) &sun, len));
        TRY("listen", listen(l, 8));
        int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        TRY("self connect", connect(c, (struct sockaddr *) &sun, len));
        TRY("self accept", accept(l, NULL, NULL));
        struct pollfd p = { .fd = l, .events = POLLIN };
        int n = poll(&p, 1, argc > 2 ? atoi(argv[2]) : 2000);
        say("visitor: %s\n", n > 0 ? "accepted" : "none");
        return 0;
}

static int abstract_connect(int argc, char **argv) {
        struct sockaddr_un sun;
        socklen_t len = abstract_addr(&sun, argc > 1 ? argv[1] : "fnbox-sec");
        int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        TRY("connect", connect(c, (struct sockaddr *) &sun, len));
        return 0;
}

/* connect() to unix sockets by path, stream and datagram. */
static int unix_paths(int argc, char **argv) {
        for (int i = 1; i < argc; i++) {
                struct sockaddr_un sun = { .sun_family = AF_UNIX };
                snprintf(sun.sun_path, sizeof sun.sun_path, "%s", argv[i]);
                char step[160];
                snprintf(step, sizeof step, "connect %s", argv[i]);
                int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                TRY(step, connect(c, (struct sockaddr *) &sun, sizeof sun));
                close(c);
        }
        return 0;
}

static const Attack attacks[] = {
        { "inet", inet },
        { "families", families },
        { "abstract-listen", abstract_listen },
        { "abstract-connect", abstract_connect },
        { "unix", unix_paths },
};

BOX_MAIN(attacks)
