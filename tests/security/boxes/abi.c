/* tests/security/boxes/abi.c: system calls through the other x86 ABIs,
 * which the filter does not inspect and must therefore kill: i386 through
 * int 0x80, and x32 (bit 30 set in the syscall number). */
#include "box.h"

#include <sys/syscall.h>

/* getpid() as i386 syscall 20. */
static int int80(int argc, char **argv) {
        say("int80: trying\n");
        long ret;
        __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory");
        say("int80: returned %ld\n", ret);
        return 0;
}

/* getpid() as an x32 syscall. */
static int x32(int argc, char **argv) {
        say("x32: trying\n");
        long ret = syscall(0x40000000L | SYS_getpid);
        say("x32: returned %ld errno=%d\n", ret, errno);
        return 0;
}

static const Attack attacks[] = {
        { "int80", int80 },
        { "x32", x32 },
};

BOX_MAIN(attacks)
