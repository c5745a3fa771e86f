# tests/security/boxes_py/overwrite.py: a python3 box that tries to replace
# its own interpreter, the standard library and the dynamic loader's
# configuration. One line per step, "STEP: ok" or "STEP: errno=N".
import os
import sys


def attempt(step, fn):
    try:
        fn()
        print(f"{step}: ok", flush=True)
    except OSError as e:
        print(f"{step}: errno={e.errno}", flush=True)


def write(path, mode="r+b"):
    return lambda: open(path, mode).close()


attempt("write /usr/bin/python3", write("/usr/bin/python3"))
attempt("write sys.executable", write(sys.executable))
attempt("write /proc/self/exe", write("/proc/self/exe"))
attempt("truncate /usr/bin/python3", write("/usr/bin/python3", "wb"))
attempt("unlink /usr/bin/python3", lambda: os.unlink("/usr/bin/python3"))
attempt("write os.py", write(os.__file__))
attempt("create a stdlib module",
        write(os.path.join(os.path.dirname(os.__file__), "fnbox_evil.py"), "w"))
attempt("create /etc/ld.so.preload", write("/etc/ld.so.preload", "w"))
attempt("write /fn/overwrite.py", write(__file__, "a"))
