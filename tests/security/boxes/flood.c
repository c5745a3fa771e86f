/* tests/security/boxes/flood.c: write without end to stdout, stderr or
 * both at once (two threads), in 64 KiB blocks of one letter; or exactly N
 * bytes, to probe the edge of the output cap. */
#include "box.h"

#include <pthread.h>

static void *pour(void *arg) {
        int fd = (int) (long) arg;
        static char block[65536];
        memset(block, fd == 1 ? 'o' : 'e', sizeof block);
        for (;;)
                if (write(fd, block, sizeof block) < 0)
                        _exit(3);
        return NULL;
}

static int out(int argc, char **argv) { pour((void *) 1L); return 0; }
static int err(int argc, char **argv) { pour((void *) 2L); return 0; }

/* Exactly N bytes on stdout, then a normal exit. */
static int exact(int argc, char **argv) {
        static char block[65536];
        memset(block, 'o', sizeof block);
        long long left = argc > 1 ? atoll(argv[1]) : 0;
        while (left > 0) {
                ssize_t w = write(1, block, left < (long long) sizeof block ? (size_t) left : sizeof block);
                if (w < 0)
                        return 3;
                left -= w;
        }
        return 0;
}

static int both(int argc, char **argv) {
        pthread_t t;
        pthread_create(&t, NULL, pour, (void *) 2L);
        pour((void *) 1L);
        return 0;
}

static const Attack attacks[] = {
        { "stdout", out },
        { "stderr", err },
        { "both", both },
        { "exact", exact },
};

BOX_MAIN(attacks)
