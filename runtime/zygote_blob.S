/* runtime/zygote_blob.S: fnbox-zygote.so (built from zygote_child.c), the
 * python3 zygote's driver (zygote_driver.py, NUL-terminated) and the init
 * of its children (fnbox-zygote-init, from zygote_init.c), linked
 * into fnbox-runtime as read-only data: a python3 zygote gets them through
 * memfds and -c, so that nothing has to be installed where the jail can
 * see it. Assembled with the build's gen/ folder and runtime/ on the
 * include path (see the Makefile's zygote rules). The broker's helpers
 * for boxes (runtime/box/: fnbox-call, fnbox.py, fnbox.js, each
 * NUL-terminated) ride along: the runtime writes them next to each
 * instance's broker socket (runtime/broker.c). */
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
        .balign 64
        .globl zygote_init_start
        .globl zygote_init_end
zygote_init_start:
        .incbin "fnbox-zygote-init"
zygote_init_end:
        .globl broker_helper_call
        .globl broker_helper_py
        .globl broker_helper_js
broker_helper_call:
        .incbin "box/fnbox-call"
        .byte 0
broker_helper_py:
        .incbin "box/fnbox.py"
        .byte 0
broker_helper_js:
        .incbin "box/fnbox.js"
        .byte 0
        .section .note.GNU-stack,"",@progbits
