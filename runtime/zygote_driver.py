# runtime/zygote_driver.py: the python3 zygote, run as
# `python3 -I -S -c DRIVER /fn/ENTRY ARGS...` inside a prepared jail
# (fnbox-runtime links this file in and passes it with -c). It imports the
# standard modules boxes use most, compiles the box's code (never runs it),
# then serves FORKs through fnbox-zygote.so (fd 4, loaded with ctypes; fd 3
# is the control socket, fd 5 the parameters). zygote_child_fork returns
# only in a box process whose jail is complete and whose request arrived;
# there the request's environment (FNBOX_REQUEST_ID, ...) is added to
# os.environ and the box runs as `python3 -I -S /fn/ENTRY ARGS...` would
# run it.
import sys, os, io, re, json, math, collections, base64, binascii, hashlib, hmac
import datetime, time, random, string, itertools, functools, operator, struct
import textwrap, enum, dataclasses, decimal, fractions, statistics, copy, heapq
import bisect, uuid, typing, urllib.parse, html, csv, traceback, atexit, types
import ctypes


def _zygote():
    lib = ctypes.PyDLL("/proc/self/fd/4")
    os.close(4)
    if lib.zygote_child_init(3, 5) < 0:
        os._exit(125)
    path = sys.argv[1]
    try:
        with open(path, "rb") as f:
            code = compile(f.read(), path, "exec", dont_inherit=True)
    except (OSError, SyntaxError, ValueError):
        code = None  # the box process reports it, as python3 would
    api = ctypes.pythonapi
    env_len = ctypes.c_size_t()
    lib.zygote_child_env.restype = ctypes.c_void_p
    while True:
        lib.zygote_child_wait()
        api.PyOS_BeforeFork()
        pid = lib.zygote_child_fork()
        if pid == 0:
            api.PyOS_AfterFork_Child()
            # the request's own environment, which came with its GO
            p = lib.zygote_child_env(ctypes.byref(env_len))
            env = ctypes.string_at(p, env_len.value) if env_len.value else b""
            return path, code, env
        api.PyOS_AfterFork_Parent()


def _exit_code(e):
    c = e.code
    if c is None:
        return 0
    if isinstance(c, int):
        return c & 0xff
    print(c, file=sys.stderr)
    return 1


def _finish(code):
    """What the interpreter does at exit, less the slow teardown of every
    module: wait for threads, atexit, flush; then leave."""
    try:
        threading = sys.modules.get("threading")
        if threading is not None:
            threading._shutdown()
        atexit._run_exitfuncs()
    except SystemExit as e:
        code = _exit_code(e)
    for f in (sys.stdout, sys.stderr):
        try:
            f.flush()
        except Exception:
            code = 120
    os._exit(code)


def _box(path, code, env):
    # os.environ and the C environment (child processes) alike
    for kv in env.split(b"\0")[:-1]:
        k, _, v = kv.partition(b"=")
        os.environb[k] = v
    sys.argv = sys.argv[1:]
    main = types.ModuleType("__main__")
    main.__file__ = path
    main.__builtins__ = __builtins__
    sys.modules["__main__"] = main
    try:
        if code is None:
            with open(path, "rb") as f:
                code = compile(f.read(), path, "exec", dont_inherit=True)
        exec(code, main.__dict__)
    except SystemExit as e:
        _finish(_exit_code(e))
    except BaseException as e:
        tb = e.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename == "<string>":
            tb = tb.tb_next
        sys.excepthook(type(e), e.with_traceback(tb), tb)
        _finish(1)
    _finish(0)


_box(*_zygote())
