/* runtime/zygote_blob.S: fnbox-zygote.so (built from zygote_child.c) and
 * the python3 zygote's driver (zygote_driver.py, NUL-terminated), linked
 * into fnbox-runtime as read-only data: a python3 zygote gets them through
 * a memfd and -c, so that nothing has to be installed where the jail can
 * see it. Assembled with the build's gen/ folder and runtime/ on the
 * include path (see the Makefile's zygote rules). */
        .section .rodata
        .balign 64
        .globl zygote_so_start
        .globl zygote_so_end
        .globl zygote_driver_py
zygote_so_start:
        .incbin "fnbox-zygote.so"
zygote_so_end:
        .byte 0
zygote_driver_py:
        .incbin "zygote_driver.py"
        .byte 0
        .section .note.GNU-stack,"",@progbits
