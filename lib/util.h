/* lib/util.h: small helpers shared by every program: cleanup attributes,
 * ownership hand-off, and safe fd/pointer freeing. Nothing here logs. */
#pragma once

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

static inline void freep(void *p) { free(*(void **)p); }
#define _cleanup_free_ _cleanup_(freep)

/* Close an fd, preserving errno; returns -1 so callers can write fd = safe_close(fd). */
static inline int safe_close(int fd) {
        if (fd >= 0) {
                int saved = errno;
                close(fd);
                errno = saved;
        }
        return -1;
}
static inline void closep(int *fd) { safe_close(*fd); }
#define _cleanup_close_ _cleanup_(closep)

#define TAKE_PTR(p) ({ __typeof__(p) _t = (p); (p) = NULL; _t; })
#define TAKE_FD(fd) ({ int _t = (fd); (fd) = -1; _t; })

static inline int negative_errno(void) { return errno > 0 ? -errno : -EIO; }

/* Write all of buf, retrying on EINTR and short writes. */
int write_all(int fd, const void *buf, size_t len);
/* Read a whole small file into buf (NUL-terminated); returns bytes read or -errno. */
ssize_t read_file_small(const char *path, char *buf, size_t size);
/* Write a string to a file that already exists (sysfs, procfs). */
int write_file_str(const char *path, const char *s);
int write_fd_str(int fd, const char *s);
/* Open /dev/null on whichever of fds 0-2 is closed: started with one of
 * them closed, the next file or socket a program opens would take its
 * number, and a log line would land in it. Call it first thing. */
int stdio_fill(void);

#include <stdio.h>
static inline void fclosep_(FILE **f) {
        if (*f)
                fclose(*f);
}
