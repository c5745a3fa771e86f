# runtime/zygote_driver.py: the python3 zygote, run as
# `python3 -I -c DRIVER /fn/ENTRY ARGS...` inside a prepared jail
# (fnbox-runtime links this file in and passes it with -c); a template
# (runtime/zygote.h) gets its /fn, argv and environment later, with ADOPT. It imports the
# standard modules boxes use most, compiles the box's code (never runs it),
# then serves FORKs through fnbox-zygote.so (fd 4, loaded with ctypes; fd 3
# is the control socket, fd 5 the parameters). zygote_child_fork returns
# only in a box process whose jail is complete; there the driver gets
# ready, waits for the request (zygote_child_go), adds the request's
# environment (FNBOX_REQUEST_ID, ...) to os.environ, and the box runs as
# `python3 -I /fn/ENTRY ARGS...` would run it.
import sys, os, io, re, json, math, collections, base64, binascii, hashlib, hmac
import datetime, time, random, string, itertools, functools, operator, struct
import textwrap, enum, dataclasses, decimal, fractions, statistics, copy, heapq
import bisect, uuid, typing, urllib.parse, html, csv, traceback, atexit, types
import ctypes, gc


def _adopt(lib):
    """A template (zygote.h): no revision yet. It comes with ADOPT once
    its code is on /fn: the box's argv from its path on, and its whole
    environment, which replaces the template's."""
    if lib.zygote_child_adopt() < 0:
        os._exit(125)
    n = ctypes.c_size_t.in_dll(lib, "zygote_adopt_len").value
    ptr = ctypes.c_void_p.in_dll(lib, "zygote_adopt_strings").value
    argc = ctypes.c_uint.in_dll(lib, "zygote_adopt_argc").value
    strings = ctypes.string_at(ptr, n).split(b"\0")[:-1]
    sys.argv[1:] = [os.fsdecode(a) for a in strings[:argc]]
    os.environ.clear()
    for kv in strings[argc:]:
        k, _, v = kv.partition(b"=")
        os.environb[k] = v


def _zygote():
    lib = ctypes.PyDLL("/proc/self/fd/4")
    os.close(4)
    if lib.zygote_child_init(3, 5) < 0:
        os._exit(125)
    if lib.zygote_child_template():
        _adopt(lib)
    path = sys.argv[1]
    try:
        with open(path, "rb") as f:
            code = compile(f.read(), path, "exec", dont_inherit=True)
    except (OSError, SyntaxError, ValueError):
        code = None  # the box process reports it, as python3 would
    api = ctypes.pythonapi
    while True:
        lib.zygote_child_wait()
        # every object so far is the zygote's: a collection in a box process
        # never walks (and so never copies) their pages
        gc.freeze()
        api.PyOS_BeforeFork()
        pid = lib.zygote_child_fork()
        if pid == 0:
            api.PyOS_AfterFork_Child()
            return lib, path, code
        api.PyOS_AfterFork_Parent()


# A request's environment as the node agent sets it, under names no
# variable has (they are not [A-Za-z_][A-Za-z0-9_]*): see _warm.
_WARM = b"".join(b"\1" * len(k) + b"=" + b"x" * n + b"\0" for k, n in (
    (b"FNBOX_REQUEST_ID", 32), (b"FNBOX_TRACEPARENT", 55), (b"FNBOX_METHOD", 4),
    (b"FNBOX_PATH", 8), (b"FNBOX_QUERY", 8)))


def _environ(data, blob):
    """NAME=VALUE strings, each NUL-terminated, into os.environ's dict
    (os.environ and os.environb share it)."""
    names = []
    for kv in blob.split(b"\0")[:-1]:
        k, _, v = kv.partition(b"=")
        data[k] = v
        names.append(k)
    return names


def _warm(data, env):
    """Before the request, the box process makes its own copies of the
    pages that taking the request's environment writes (each first write
    to one of the zygote's pages costs a page fault and a copy): the call
    that reads it, room in the dict (grown until it resizes once) and the
    same work on _WARM, whose names are then removed."""
    ctypes.string_at(env, 1)
    size, names = sys.getsizeof(data), []
    while sys.getsizeof(data) == size and len(names) < 256:
        names.append(b"\1%d" % len(names))
        data[names[-1]] = b""
    names += _environ(data, _WARM)
    for k in names:
        del data[k]


# An import of a module already loaded, as most boxes start (_warm_stdio).
_IMPORT = compile("import sys", "<warm>", "exec", dont_inherit=True)


def _warm_stdio():
    """What nearly every box does first: import, read its stdin to the
    end, write its stdout and flush it. Each writes dozens of the
    zygote's pages (the file objects, their buffers and decoders, the
    method and import caches): done once here, on pipes of its own put
    at fds 0 and 1 for the time being, the box's own request costs
    ~0.25 ms less. The real stdin and stdout are back before GO, and
    the file objects are at EOF with empty buffers, as they were. A
    failure to move the fds ends this spare (the runtime makes another):
    no box may start with them half moved."""
    try:
        saved = os.dup(0), os.dup(1)
        r_in, w_in = os.pipe()
        os.write(w_in, b"w")
        os.close(w_in)
        r_out, w_out = os.pipe()
        os.dup2(r_in, 0)
        os.dup2(w_out, 1)
        os.close(r_in)
        os.close(w_out)
    except OSError:
        os._exit(125)
    try:
        exec(_IMPORT, {"__builtins__": __builtins__})
        if sys.stdin is not None and sys.stdout is not None:
            sys.stdout.write(sys.stdin.read())
            sys.stdout.flush()
    except Exception:
        pass    # only the warm-up is lost
    try:
        os.close(r_out)
        os.dup2(saved[0], 0)
        os.dup2(saved[1], 1)
        os.close(saved[0])
        os.close(saved[1])
    except OSError:
        os._exit(125)


def _request(lib):
    """Wait for the request's GO; then its environment, which came with
    it, goes into os.environ. The C environment has it already
    (fnbox-zygote.so): no putenv, whose allocations would cost more than
    the rest of this."""
    env = ctypes.addressof(ctypes.c_char.in_dll(lib, "zygote_go_env"))
    env_len = ctypes.c_size_t.in_dll(lib, "zygote_go_env_len")
    data = os.environ._data
    _warm(data, env)
    _warm_stdio()
    lib.zygote_child_go()
    n = env_len.value
    if n:
        _environ(data, ctypes.string_at(env, n))


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
    # the result goes out now (stdout and stderr at EOF, the code on the
    # DONE pipe), not once the kernel has taken this process apart
    for fd in (1, 2):
        try:
            os.close(fd)
        except OSError:
            pass
    if _LIB is not None:
        _LIB.zygote_child_done(code)
    os._exit(code)


_LIB = None


def _box(lib, path, code):
    global _LIB
    _LIB = lib
    # what does not depend on the request is done before it arrives: off
    # its path (every page a box process writes is a copy of the zygote's)
    sys.argv = sys.argv[1:]
    main = types.ModuleType("__main__")
    main.__file__ = path
    main.__builtins__ = __builtins__
    sys.modules["__main__"] = main
    _request(lib)
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
