"""tests/integration/fixture.py: start a real fnbox-controller for a test.

    with Controller("build") as c:
        status, body = api("GET", c.url + "/v1/functions", token=c.admin_token)

The controller listens on a port the kernel picks (--listen 127.0.0.1:0);
the fixture waits for its "listening on" line (not a sleep), keeps its
stderr in a log file (c.log()), and on exit stops it (SIGTERM, then SIGKILL)
and removes the temporary folders it made. Python standard library only.
"""
import json
import os
import re
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

START_TIMEOUT_S = 20
STOP_TIMEOUT_S = 10
LISTEN_RE = re.compile(r"^fnbox-controller: listening on (http://\S+)\s*$")


class ControllerError(Exception):
    pass


class Controller:
    """One fnbox-controller process over one data folder.

    build: the build folder (BUILD/bin/fnbox-controller); data_dir: an
    existing folder to use (kept on exit) or None for a temporary one
    (removed on exit); store: a --store URL or None for SQLite in the data
    folder; extra_args: more command-line arguments; env: extra environment
    variables; wrapper: a command to run it under (valgrind, say)."""

    def __init__(self, build, data_dir=None, store=None, extra_args=(), env=None,
                 start_timeout=START_TIMEOUT_S, wrapper=()):
        self.binary = os.path.join(os.path.abspath(build), "bin", "fnbox-controller")
        if not os.access(self.binary, os.X_OK):
            raise ControllerError("no controller at %s (build it first)" % self.binary)
        self._tmp = tempfile.mkdtemp(prefix="fnbox-it-")
        self.data_dir = os.path.join(self._tmp, "data") if data_dir is None else data_dir
        self.store = store
        self.extra_args = list(extra_args)
        self.env = dict(os.environ, **(env or {}))
        self.start_timeout = start_timeout
        self.wrapper = list(wrapper)
        self.log_path = os.path.join(self._tmp, "controller.log")
        self.proc = None
        self.url = None
        self._drain = None

    # ---- life cycle ------------------------------------------------------

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def argv(self):
        argv = self.wrapper + [self.binary, "--data-dir", self.data_dir, "--listen", "127.0.0.1:0"]
        if self.store:
            argv += ["--store", self.store]
        return argv + self.extra_args

    def start(self):
        """Start the controller and wait for its "listening on" line."""
        if self.proc and self.proc.poll() is None:
            raise ControllerError("already running")
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, stderr=log,
                                         env=self.env, close_fds=True)
        finally:
            log.close()
        self.url = self._wait_listening()
        self._drain = threading.Thread(target=self._drain_stdout, args=(self.proc,), daemon=True)
        self._drain.start()
        return self

    def _wait_listening(self):
        deadline = time.monotonic() + self.start_timeout
        buf = b""
        fd = self.proc.stdout.fileno()
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                break
            chunk = os.read(fd, 4096)
            if not chunk:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
                raise ControllerError("controller exited (status %s) before listening:\n%s"
                                      % (self.proc.returncode, self.log()[-4000:]))
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                m = LISTEN_RE.match(line.decode("utf-8", "replace"))
                if m:
                    return m.group(1)
        self._signal_and_wait()
        raise ControllerError("controller did not say it was listening within %ss:\n%s"
                              % (self.start_timeout, self.log()[-4000:]))

    @staticmethod
    def _drain_stdout(proc):
        try:
            while proc.stdout.read(4096):
                pass
        except (OSError, ValueError):
            pass

    def _signal_and_wait(self, sig=signal.SIGTERM):
        """Send sig, wait, then SIGKILL if it does not stop; returns the status."""
        if not self.proc:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._drain:
            self._drain.join(timeout=STOP_TIMEOUT_S)
            self._drain = None
        if self.proc.stdout:
            self.proc.stdout.close()
        return self.proc.returncode

    def stop(self):
        """SIGTERM (SIGKILL after a while); returns the exit status."""
        return self._signal_and_wait(signal.SIGTERM)

    def kill9(self):
        """SIGKILL at once, as a crash would; returns the exit status."""
        return self._signal_and_wait(signal.SIGKILL)

    def restart(self):
        """Stop (if running) and start again over the same data and store.
        The port changes: read .url again."""
        self.stop()
        return self.start()

    def close(self):
        """Stop and remove the temporary folder (with the data folder when
        the fixture made it; a data_dir given by the caller is kept)."""
        self.stop()
        shutil.rmtree(self._tmp, ignore_errors=True)

    # ---- what tests read ---------------------------------------------------

    @property
    def admin_token(self):
        with open(os.path.join(self.data_dir, "admin.token")) as f:
            return f.read().strip()

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""


def api(method, url, token=None, body=None, headers=None, timeout=30):
    """One HTTP request; returns (status, parsed JSON or text).

    body: a dict or list (sent as JSON), bytes (sent as is) or str (UTF-8)."""
    status, data, _ = api_full(method, url, token, body, headers, timeout)
    return status, data


def api_full(method, url, token=None, body=None, headers=None, timeout=30):
    """Like api(), and also returns the response headers (a dict)."""
    hdrs = dict(headers or {})
    data = None
    if isinstance(body, (dict, list)):
        data = json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    elif isinstance(body, str):
        data = body.encode()
    elif body is not None:
        data = bytes(body)
    if token is not None:
        hdrs["Authorization"] = "Bearer " + token
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, raw, rh = resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as e:
        status, raw, rh = e.code, e.read(), dict(e.headers or {})
        e.close()
    text = raw.decode("utf-8", "replace")
    try:
        return status, json.loads(text), rh
    except ValueError:
        return status, text, rh


# ---- the suites' test harness ------------------------------------------------------------------

class Fail(Exception):
    """A check that did not hold (a test's own failure, not a crash)."""


def _shown(s):
    return s[:2000] if isinstance(s, str) else repr(s)[:800]


def check(cond, what, *show):
    """Fail with what, and each of show on a line of its own, unless cond."""
    if not cond:
        raise Fail(what + "".join("\n    " + _shown(s) for s in show))


class Tests(list):
    """A suite's tests, in the order they are defined (@tests.add)."""

    def add(self, fn):
        self.append(fn)
        return fn

    def chosen(self, only):
        """Those whose name contains one of only (all when it is empty)."""
        return [f for f in self if not only or any(o in f.__name__ for o in only)]


def run_test(fn, arg):
    """Run one test with arg; print "ok NAME" or "FAIL NAME" (a traceback
    for a crash). True when it passed."""
    import sys
    import traceback
    t0 = time.monotonic()
    try:
        fn(arg)
        print("ok   %s (%.1fs)" % (fn.__name__, time.monotonic() - t0))
        return True
    except Exception as e:
        print("FAIL %s: %s" % (fn.__name__, e))
        if not isinstance(e, Fail):
            traceback.print_exc(file=sys.stdout)
        return False
    finally:
        sys.stdout.flush()
