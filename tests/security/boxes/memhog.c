/* tests/security/boxes/memhog.c: allocate and touch memory until the memory
 * limit stops the box; and one huge anonymous mapping touched page by page. */
#include "box.h"

#include <sys/mman.h>

static int touch_chunks(int argc, char **argv) {
        size_t chunk = 1 << 20;
        for (unsigned long mb = 0;; mb++) {
                char *p = mmap(NULL, chunk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                if (p == MAP_FAILED)
                        return say("mmap: errno=%d after %lu MiB\n", errno, mb), 1;
                memset(p, 0x5a, chunk);
        }
}

/* Reserve far more than the limit at once (overcommit lets it through),
 * then write to every page. */
static int huge_mapping(int argc, char **argv) {
        size_t len = 4ULL << 30;
        char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED)
                return say("mmap: errno=%d\n", errno), 1;
        for (size_t off = 0; off < len; off += 4096)
                p[off] = 1;
        say("touched 4 GiB\n");
        return 0;
}

static const Attack attacks[] = {
        { "chunks", touch_chunks },
        { "huge", huge_mapping },
};

BOX_MAIN(attacks)
