/* lib/util.c: I/O helpers for the small procfs/sysfs/cgroupfs files the
 * runtime reads and writes, with EINTR and short-write handling. */
#include "util.h"

#include <fcntl.h>

int write_all(int fd, const void *buf, size_t len) {
        const char *p = buf;
        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                p += n;
                len -= (size_t) n;
        }
        return 0;
}

ssize_t read_file_small(const char *path, char *buf, size_t size) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        size_t off = 0;
        while (off + 1 < size) {
                ssize_t n = read(fd, buf + off, size - 1 - off);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (n == 0)
                        break;
                off += (size_t) n;
        }
        buf[off] = 0;
        return (ssize_t) off;
}

int write_fd_str(int fd, const char *s) {
        ssize_t n = write(fd, s, strlen(s));
        if (n < 0)
                return negative_errno();
        return (size_t) n == strlen(s) ? 0 : -EIO;
}

int write_file_str(const char *path, const char *s) {
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return negative_errno();
        return write_fd_str(fd, s);
}

int stdio_fill(void) {
        for (int fd = 0; fd <= 2; fd++) {
                if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
                        continue;
                int n = open("/dev/null", O_RDWR); /* lowest free number: fd itself */
                if (n < 0)
                        return negative_errno();
                if (n != fd) {
                        close(n);
                        return -EBADF;
                }
        }
        return 0;
}
