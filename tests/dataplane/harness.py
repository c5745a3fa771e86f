"""tests/dataplane/harness.py: what the data-plane tests share besides the
platform itself: registering tests, checks that say what they saw, load
generators, and the error table of docs/invoke.md."""
import concurrent.futures
import os
import re
import threading
import time

from fixture import ROOT, Platform, PlatformError, http_request, json_of, wait_for  # noqa: F401

TESTS = {}


class Fail(Exception):
    pass


def test(limit=90):
    """Register a test: fn(build) -> None, run in a child process that is
    stopped after limit seconds."""
    def register(fn):
        mod = fn.__module__
        TESTS["%s.%s" % (mod.replace("test_", "", 1), fn.__name__)] = (fn, limit)
        return fn
    return register


def check(cond, msg, *detail):
    if not cond:
        raise Fail(msg + "".join("\n    " + str(d)[:3000] for d in detail))


def error_type(body):
    """The JSON error's type: {"error": {"type": T}} (or {"error": T})."""
    j = json_of(body)
    if not isinstance(j, dict):
        return None
    e = j.get("error")
    if isinstance(e, dict):
        return e.get("type")
    return e if isinstance(e, str) else j.get("type")


def error_message(body):
    j = json_of(body)
    if isinstance(j, dict) and isinstance(j.get("error"), dict):
        return j["error"].get("message") or ""
    return ""


def documented_status(err_type):
    """The HTTP status docs/invoke.md gives an error type: the first
    markdown table row naming `err_type` that holds a 4xx/5xx number."""
    path = os.path.join(ROOT, "docs", "invoke.md")
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        raise Fail("docs/invoke.md is missing: the statuses of box outcomes are not documented")
    for line in text.splitlines():
        if line.lstrip().startswith("|") and re.search(r"`%s`" % re.escape(err_type), line):
            m = re.search(r"\b([45]\d\d)\b", line)
            if m:
                return int(m.group(1))
    raise Fail("docs/invoke.md has no table row giving the status of error type %s" % err_type)


class Result:
    __slots__ = ("start", "end", "status", "body", "headers", "error", "tag")

    def __repr__(self):
        return "<%s %.2f-%.2f %r>" % (self.status or self.error, self.start, self.end, self.body[:80])


def one(p, name, body, headers=None, timeout=30, tag=None, t0=0.0):
    r = Result()
    r.tag = tag
    r.start = time.monotonic() - t0
    r.status, r.body, r.headers, r.error = None, b"", {}, None
    try:
        r.status, r.body, r.headers = p.invoke(name, body, headers=headers, timeout=timeout)
    except Exception as e:  # a reset, a timeout: counted, not raised
        r.error = "%s: %s" % (type(e).__name__, e)
    r.end = time.monotonic() - t0
    return r


def burst(p, name, bodies, workers=None, timeout=30):
    """Send every body at once (a thread each, or `workers` threads);
    returns the Results in order."""
    workers = workers or len(bodies)
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as ex:
        futs = [ex.submit(one, p, name, b, None, timeout, i, t0) for i, b in enumerate(bodies)]
        return [f.result() for f in futs]


class Load:
    """`workers` threads each sending body to name again and again until
    stopped (or until `set_workers` lowers their number); every Result is
    kept, with times relative to the start."""

    def __init__(self, p, name, body, workers, timeout=30):
        self.p, self.name, self.body, self.timeout = p, name, body, timeout
        self.results = []
        self._lock = threading.Lock()
        self._active = workers
        self._stop = threading.Event()
        self.t0 = time.monotonic()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(workers)]
        for t in self._threads:
            t.start()

    def _run(self, i):
        while not self._stop.is_set() and i < self._active:
            r = one(self.p, self.name, self.body, timeout=self.timeout, tag=i, t0=self.t0)
            with self._lock:
                self.results.append(r)

    def now(self):
        return time.monotonic() - self.t0

    def set_workers(self, n):
        self._active = n

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(self.timeout + 5)
        return self.results

    def snapshot(self):
        with self._lock:
            return list(self.results)


def statuses(results):
    out = {}
    for r in results:
        k = r.status if r.status is not None else r.error.split(":")[0]
        out[k] = out.get(k, 0) + 1
    return out


def find_values(obj, key):
    """Every value of `key` anywhere in a parsed JSON document."""
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == key:
                out.append(v)
            out += find_values(v, key)
    elif isinstance(obj, list):
        for v in obj:
            out += find_values(v, key)
    return out


def metrics(base_url):
    """{metric line name with labels: value} from a daemon's /metrics."""
    st, body, _ = http_request(base_url, "GET", "/metrics", timeout=5)
    check(st == 200, "GET %s/metrics: %s" % (base_url, st), body[:300])
    out = {}
    for line in body.decode("utf-8", "replace").splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            try:
                out[name] = float(value)
            except ValueError:
                pass
    return out


def raw_http(base_url, head, body_iter=(), timeout=15):
    """Send raw request bytes (head, then each piece of body_iter, stopping
    early once the server answers); returns (status, the answer's bytes).
    For requests that http.client would refuse to make."""
    import select
    import socket
    host, port = base_url.split("://", 1)[1].rstrip("/").rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=timeout)
    got = b""
    try:
        try:
            s.sendall(head)
            for piece in body_iter:
                r, _, _ = select.select([s], [], [], 0)
                if r:
                    break
                s.sendall(piece)
        except (BrokenPipeError, ConnectionResetError):
            pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r, _, _ = select.select([s], [], [], deadline - time.monotonic())
            if not r:
                break
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            got += chunk
            if b"\r\n\r\n" in got:
                headers = got.split(b"\r\n\r\n", 1)[0].decode("latin-1").lower()
                m = re.search(r"content-length:\s*(\d+)", headers)
                if m and len(got.split(b"\r\n\r\n", 1)[1]) >= int(m.group(1)):
                    break
    finally:
        s.close()
    m = re.match(rb"HTTP/1\.[01] (\d{3})", got)
    return (int(m.group(1)) if m else None), got


# Scaling settings that make the tests quick: scale to zero after 2 s idle,
# the shortest windows the manifest allows.
SCALE_FAST = {"scaleToZeroAfter": "2s", "stableWindow": "6s", "panicWindow": "1s"}


def wait_queued(p, revision, n, timeout=10):
    """Wait until the activator says n requests of revision are queued:
    a /metrics sample whose name mentions "queue" and the revision (or its
    function). Without such a metric, waits one second instead (and says so)."""
    fn_name = revision.rsplit("-", 1)[0]

    def queued():
        m = metrics(p.url)
        vals = [v for k, v in m.items() if "queue" in k and (revision in k or '"%s"' % fn_name in k)]
        return vals and max(vals) >= n, bool(vals)
    try:
        ok, have = queued()
    except Fail:
        ok, have = False, False
    if not have:
        print("note: no queue metric for %s at the activator's /metrics; waiting 1 s" % revision)
        time.sleep(1.0)
        return
    wait_for("%d requests queued for %s" % (n, revision), lambda: queued()[0], timeout)
