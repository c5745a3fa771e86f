"""tests/gateway/test_audit_limits.py: gateway tests of the audit record of
streams, the body limit of chunked uploads, and bad input without leaks;
part of the gateway suite (run.py registers them with register(), and
they run on its platform after its own tests).

  audit_stream_record     a streamed answer's record, read back from the
                          controller (GET /v1/llm/log): tokens from the usage
                          chunk or counted, time to first token, status,
                          upstream, and with bodies kept the request and the
                          assembled answer (bounded, marked when cut)
  chunked_body_limit      a chunked upload over the gateway's limit: 413 in
                          OpenAI's shape as soon as it passes the limit; over
                          the activator's --max-body too
  bad_input_no_leaks      malformed and absurd requests, slow-loris bodies,
                          upstreams that answer garbage, cut answers or
                          nothing: each a clear OpenAI error; afterwards no
                          quota reservation, no request in flight, no fd and
                          no upstream connection left behind
"""
import json
import os
import select
import socket
import threading
import time
import uuid

import fixture
from upstream import Handler, Server, Upstream

R = None            # the runner (run.py): check, Fail, config, test


def register(runner):
    global R
    R = runner
    for fn in (audit_stream_record, chunked_body_limit, bad_input_no_leaks):
        runner.test(fn)


# ---- helpers -----------------------------------------------------------------------------------

def write_config(x, text):
    """Replace the gateway's configuration and wait for the reload."""
    n = x.p.log("activator").count("gateway: reloaded")
    tmp = x.cfg_path + ".h3"
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o644)
    os.rename(tmp, x.cfg_path)
    fixture.wait_for("the gateway's reload", lambda: x.p.log("activator").count("gateway: reloaded") > n, 10)


def audit_of(x, ns, rid, timeout=8):
    """The audit record of request rid, as the controller serves it."""
    def find():
        st, j = x.p.api("GET", "/v1/llm/log?namespace=%s&limit=200" % ns)
        R.check(st == 200, "GET /v1/llm/log", st, j)
        return next((r for r in j["items"] if r["requestId"] == rid), None)
    return fixture.wait_for("the audit record of %s" % rid, find, timeout)


def rid(tag):
    return "h3-%s-%s" % (tag, uuid.uuid4().hex[:12])


def metric(x, name):
    st, data, h = x.request("GET", "/metrics", token=False)
    for line in data.decode().splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            yield line


def raw_request(x, head, body_parts=(), delay=0.0):
    """Send a request by hand (head: the request line and headers, without
    the blank line); the socket, for the caller to read and close."""
    s = socket.create_connection((x.host, x.port), timeout=30)
    s.sendall(head.encode() + b"\r\n")
    for p in body_parts:
        s.sendall(p)
        if delay:
            time.sleep(delay)
    return s


def read_answer(s, timeout=10):
    """(status, headers, body) of one HTTP/1.1 answer read from s."""
    s.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        got = s.recv(65536)
        if not got:
            break
        data += got
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
    hdrs = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    n = int(hdrs.get("content-length", "-1"))
    while n >= 0 and len(rest) < n:
        got = s.recv(65536)
        if not got:
            break
        rest += got
    return status, hdrs, rest


def chat_head(x, n=None, chunked=False, extra=""):
    h = ("POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer %s\r\n"
         "Content-Type: application/json\r\n" % x.p.token)
    if chunked:
        h += "Transfer-Encoding: chunked\r\n"
    elif n is not None:
        h += "Content-Length: %d\r\n" % n
    return h + extra


def chunk(data):
    return b"%x\r\n%s\r\n" % (len(data), data)


# ---- 1. the audit record of a stream ------------------------------------------------------------

def audit_stream_record(x):
    """A streamed answer is audited in full, bodies included when the
    namespace keeps them."""
    write_config(x, R.config(x.ups) + "audit:\n  bodies: [team-audit]\n")
    try:
        _audit_stream_record(x)
    finally:
        write_config(x, R.config(x.ups))


def _audit_stream_record(x):
    check = R.check
    ns = {"X-Fnbox-Namespace": "team-audit"}
    for n in ("cloud-a", "cloud-b"):
        x.ups[n].reset()

    # usage from the upstream's usage chunk, passed on to the caller
    r1 = rid("usage")
    st, j, data, h = x.chat("solo", "tell me a story", stream=True, stream_options={"include_usage": True},
                            headers=dict(ns, **{"X-Request-Id": r1}))
    check(st == 200, "the stream answers", st, data)
    usage = json.loads(x.events(data)[-2])["usage"]
    a = audit_of(x, "team-audit", r1)
    check(a["stream"] is True and a["status"] == 200 and a["errorType"] is None, "a 200 stream", a)
    check(a["upstream"] == "cloud-a" and a["chain"] == ["cloud-a"] and a["alias"] == "solo", "the upstream", a)
    check(a["endpoint"] == "chat.completions" and a["namespace"] == "team-audit", "endpoint and namespace", a)
    check(a["tokensIn"] == usage["prompt_tokens"] and a["tokensOut"] == usage["completion_tokens"] and
          a["tokensCounted"] is False, "tokens from the upstream's usage chunk", a, usage)
    check(isinstance(a["ttftMs"], (int, float)) and 0 < a["ttftMs"] <= a["latencyMs"], "time to first token", a)
    check("tell me a story" in a.get("requestBody", ""), "the request body kept", a)
    check("responseBody" in a, "the streamed answer kept as the response body", a)
    body = json.loads(a["responseBody"])
    check(body["object"] == "chat.completion" and body["choices"][0]["message"] ==
          {"role": "assistant", "content": "echo: tell me a story"} and body["choices"][0]["finish_reason"] is None
          and body["usage"] == usage, "the answer assembled from its chunks", body)
    check(not a.get("responseBodyTruncated"), "not cut", a)

    # no usage from the upstream, none asked by the caller: counted
    x.ups["cloud-a"].script([{"usage": False, "reply": "one two three four five six"}])
    r2 = rid("counted")
    st, j, data, h = x.chat("solo", "count me", stream=True, headers=dict(ns, **{"X-Request-Id": r2}))
    check(st == 200, "the stream answers", st, data)
    a = audit_of(x, "team-audit", r2)
    check(a["tokensCounted"] is True and a["tokensIn"] > 0 and a["tokensOut"] > 0, "tokens counted", a)
    check(a["ttftMs"] is not None and a["upstream"] == "cloud-a" and a["status"] == 200, "ttft, upstream, status", a)
    body = json.loads(a["responseBody"])
    check(body["choices"][0]["message"]["content"] == "one two three four five six" and "usage" not in body,
          "the words, and no usage the caller did not get", body)

    # a streamed completion: the text
    r3 = rid("completion")
    st, j, data, h = x.post("/v1/completions", {"model": "gpt-b", "prompt": "say it", "stream": True},
                            headers=dict(ns, **{"X-Request-Id": r3}))
    check(st == 200, "the completion streams", st, data)
    a = audit_of(x, "team-audit", r3)
    body = json.loads(a["responseBody"])
    check(a["endpoint"] == "completions" and a["upstream"] == "cloud-b" and body["object"] == "text_completion" and
          body["choices"][0]["text"] == "echo: say it", "a completion's text", a)

    # cut mid-stream: a 502 record with what the caller got
    x.ups["cloud-a"].script([{"reply": "a b c d e f", "fail_after": 2}])
    r4 = rid("cut")
    st, j, data, h = x.chat("solo", "break", stream=True, headers=dict(ns, **{"X-Request-Id": r4}))
    a = audit_of(x, "team-audit", r4)
    check(a["status"] == 502 and a["errorType"] == "upstream_error" and a["upstream"] == "cloud-a",
          "a stream broken mid-way", a)
    check(json.loads(a["responseBody"])["choices"][0]["message"]["content"] == "a b", "the words before the cut", a)

    # a long answer: the body is bounded and says so
    long = " ".join("w%05d" % i for i in range(12000))          # 84 KB of text
    x.ups["cloud-a"].script([{"reply": long}])
    r5 = rid("long")
    st, j, data, h = x.chat("solo", "go on", stream=True, headers=dict(ns, **{"X-Request-Id": r5}), timeout=60)
    check(st == 200 and x.events(data)[-1] == "[DONE]", "the long stream answers", st)
    a = audit_of(x, "team-audit", r5)
    check(a.get("responseBodyTruncated") is True and len(a["responseBody"].encode()) <= 64 << 10,
          "a long answer kept to 64 KiB and marked", len(a.get("responseBody", "")), a.get("responseBodyTruncated"))
    check(a["tokensOut"] >= 12000, "tokens of the whole answer, not of the kept part", a["tokensOut"])

    # a namespace that does not keep bodies
    r6 = rid("nobody")
    st, j, data, h = x.chat("solo", "private", stream=True, headers={"X-Request-Id": r6})
    a = audit_of(x, "default", r6)
    check("requestBody" not in a and "responseBody" not in a and a["ttftMs"] is not None and a["tokensOut"] > 0,
          "no bodies unless the namespace opts in", a)


# ---- 2. chunked bodies over the limit -------------------------------------------------------------

def _error_shape(status, body, want_status=413, want_code="request_too_large"):
    try:
        j = json.loads(body)
    except ValueError:
        j = None
    R.check(status == want_status, "status %d" % want_status, status, body[:300])
    R.check(isinstance(j, dict) and isinstance(j.get("error"), dict) and
            set(j["error"]) == {"message", "type", "param", "code"}, "OpenAI's error shape", body[:300])
    R.check(j["error"]["code"] == want_code and j["error"]["type"] == "invalid_request_error", "the code", j)
    return j


def chunked_body_limit(x):
    check = R.check
    # over the gateway's limit (64 KiB): refused once it passes it, not read on to --max-body
    r1 = rid("chunked")
    s = raw_request(x, chat_head(x, chunked=True, extra="X-Request-Id: %s\r\n" % r1))
    sent = 0
    try:
        piece = b'{"model": "solo", "messages": [{"role": "user", "content": "' + b"x" * 16000
        s.sendall(chunk(piece))
        sent += len(piece)
        while sent < 128 << 10:
            s.sendall(chunk(b"y" * 16000))
            sent += 16000
        r, _, _ = select.select([s], [], [], 5)
        check(r, "an answer before the body ends (after %d bytes)" % sent)
        st, hdrs, body = read_answer(s)
    finally:
        s.close()
    j = _error_shape(st, body)
    check("65536" in j["error"]["message"], "the gateway's limit named", j)
    check(hdrs.get("x-request-id") == r1, "the request id", hdrs)
    a = audit_of(x, "default", r1)
    check(a["status"] == 413 and a["errorType"] == "invalid_request_error", "audited as a 413", a)

    # a gateway limit above the activator's --max-body (6 MiB): the activator's limit, same shape
    write_config(x, R.config(x.ups).replace("max_body: 64Ki", "max_body: 16Mi"))
    try:
        s = raw_request(x, chat_head(x, n=7 << 20))
        try:
            st, hdrs, body = read_answer(s)
        finally:
            s.close()
        j = _error_shape(st, body)
        check(str(6 << 20) in j["error"]["message"], "the activator's limit named", j)
        s = raw_request(x, chat_head(x, chunked=True))
        try:
            block = chunk(b" " * (1 << 20))
            for _ in range(8):
                try:
                    s.sendall(block)
                except OSError:
                    break
            st, hdrs, body = read_answer(s)
        finally:
            s.close()
        _error_shape(st, body)
        st, j, data, h = x.chat("solo", "x" * (100 << 10))
        check(st == 200, "a body over 64 KiB within the raised limit", st, data[:300])
    finally:
        write_config(x, R.config(x.ups))


# ---- 3. bad input, garbage upstreams, and nothing left behind --------------------------------------

class JunkHandler(Handler):
    """The scripted upstream's handler with more ways to fail, and a count of
    open connections (the gateway must close what it gives up on)."""

    def setup(self):
        super().setup()
        with self.upstream.lock:
            self.upstream.open += 1

    def finish(self):
        try:
            super().finish()
        finally:
            with self.upstream.lock:
                self.upstream.open -= 1

    def wait_close(self, drip=None, limit=60):
        """Hold the connection until the gateway closes it (sending a byte
        of drip now and then)."""
        end = time.time() + limit
        while time.time() < end:
            r, _, _ = select.select([self.connection], [], [], 0.3)
            if r:
                try:
                    if not self.connection.recv(4096):
                        break
                except OSError:
                    break
            if drip:
                try:
                    self.wfile.write(drip)
                    self.wfile.flush()
                except OSError:
                    break
        self.close_connection = True

    def raw(self, status, ctype, data, length=None, close=False):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data) if length is None else length))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()
        if close:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)

    def do_POST(self):
        up = self.upstream
        with up.lock:
            mode = (up.steps[0] if up.steps else up.default).get("mode")
        if not mode:
            super().do_POST()
            return
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        up.next_step({"path": self.path, "headers": dict(self.headers.items()), "body": raw})
        whole = json.dumps({"id": "j", "object": "chat.completion", "model": "m", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "fine"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}).encode()
        if mode == "truncated":                 # a JSON answer cut short, the connection closed
            self.raw(200, "application/json", whole[:25], length=len(whole), close=True)
        elif mode == "truncated_event":         # an event cut mid-JSON, then the end of the stream
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(chunk(b'data: {"id": "c", "choices": [{"delta": {"cont\n\n') + b"0\r\n\r\n")
        elif mode == "html":                    # a web page instead of an answer
            self.raw(200, "text/html", b"<html><body>502 proxy error</body></html>")
        elif mode == "json_for_stream":         # a whole answer to a stream request
            self.raw(200, "application/json", whole)
        elif mode == "plain_ctype":             # a good answer under the wrong content type
            self.raw(200, "text/plain", whole)
        elif mode == "empty":
            self.raw(200, "application/json", b"")
        elif mode == "error_in_200":
            self.raw(200, "application/json", b'{"error": {"message": "model overloaded", "type": "server_error"}}')
        elif mode == "silent":                  # reads the request, never answers
            self.wait_close()
        elif mode == "drip":                    # headers, then a byte now and then, never done
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"{")
            self.wfile.flush()
            self.wait_close(drip=b" ")
        elif mode == "stream_hang":             # one chunk, then nothing
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(chunk(b'data: {"id": "c", "choices": [{"index": 0, "delta": {"content": "x"}}]}\n\n'))
            self.wfile.flush()
            self.wait_close()


class Junk(Upstream):
    def __init__(self, name):
        super().__init__(name)
        self.open = 0

    def start(self):
        up = self

        class H(JunkHandler):
            upstream = up
        self.server = Server(("127.0.0.1", 0), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self


def junk_config(x, junk):
    up = ("  - name: junk\n    base_url: %s\n    models: [junk-model]\n"
          "    timeouts: {connect: 1s, first_byte: 1s, total: 2s}\n" % junk.base_url)
    text = R.config(x.ups, "  - name: junky\n    upstreams: [junk]\n    retries: 0\n    cooldown: {failures: 0}\n")
    return text.replace("aliases:\n", up + "aliases:\n", 1)


def activator_fds(x, upstream_ports):
    """The activator's open fds: (connections to each upstream port, the
    rest but its connections to the controller: the route table's long
    poll, the stats and the audit, which come and go on their own)."""
    pid = x.p.activator.pid
    inodes = {}
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            inodes[fd] = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            pass
    remote = {}
    for name in ("tcp", "tcp6"):
        try:
            with open("/proc/%d/net/%s" % (pid, name)) as f:
                next(f)
                for line in f:
                    p = line.split()
                    remote[p[9]] = int(p[2].split(":")[1], 16)
        except OSError:
            pass
    ctl = int(x.p.api_url.rstrip("/").rsplit(":", 1)[1])
    ups, rest = {port: 0 for port in upstream_ports}, 0
    for link in inodes.values():
        port = remote.get(link[8:-1]) if link.startswith("socket:[") else None
        if port in ups:
            ups[port] += 1
        elif port != ctl:
            rest += 1
    return ups, rest


def fd_list(x):
    """What the activator's fds are, counted by kind (for a failure's message)."""
    out, tcp = {}, {}
    pid = x.p.activator.pid
    for name in ("tcp", "tcp6"):
        try:
            with open("/proc/%d/net/%s" % (pid, name)) as f:
                next(f)
                for line in f:
                    p = line.split()
                    tcp[p[9]] = "%d>%d st%s" % (int(p[1].split(":")[1], 16), int(p[2].split(":")[1], 16), p[3])
        except OSError:
            pass
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        kind = link.split(":")[0] if ":" in link else link
        if kind == "socket":
            kind = "socket " + tcp.get(link[8:-1], "other")
        out[kind] = out.get(kind, 0) + 1
    return out


def bad_input_no_leaks(x):
    junk = Junk("junk").start()
    write_config(x, junk_config(x, junk))
    try:
        _bad_input_no_leaks(x, junk)
    finally:
        write_config(x, R.config(x.ups))
        junk.stop()


def _client_battery(x):
    check, post = R.check, x.post

    def bad(st, j, data, code=None, param=None, status=400):
        e = x.error_of(j)
        check(st == status and (code is None or e["code"] == code) and (param is None or e["param"] == param),
              "%d %s %s" % (status, code, param), st, data[:400])

    chat = "/v1/chat/completions"
    for raw in (b"", b"[]", b'"text"', b"null", b"[" * 30000, b'{"model": "solo", "model": "solo", "messages": []}',
                b'{"model": "solo", "messages": [{"role": "user", "content": "\xff\xfe"}]}'):
        st, j, data, h = post(chat, None, raw=raw)
        check(st == 400, "a malformed body %r is 400" % raw[:40], st, data[:300])
        x.error_of(j)
    msg = [{"role": "user", "content": "hi"}]
    for body, param in (({"model": "solo", "messages": [1, 2]}, "messages[0]"),
                        ({"model": "solo", "messages": [{"role": "user", "content": 42}]}, "messages[0].content"),
                        ({"model": "solo", "messages": [{"content": "no role"}]}, "messages[0].role"),
                        ({"model": "", "messages": msg}, "model"),
                        ({"model": "m" * 5000, "messages": msg}, "model"),
                        ({"messages": msg}, "model"),
                        ({"model": "solo", "messages": msg, "stream": "yes"}, "stream"),
                        ({"model": "solo", "messages": msg, "stream_options": {"include_usage": True}}, "stream_options"),
                        ({"model": "solo", "messages": msg, "temperature": "hot"}, "temperature"),
                        ({"model": "solo", "messages": msg, "n": -1}, "n"),
                        ({"model": "solo", "messages": msg, "max_tokens": 1.5}, "max_tokens"),
                        ({"model": "solo", "messages": msg, "max_tokens": -5}, "max_tokens"),
                        ({"model": "solo", "messages": msg, "max_completion_tokens": 10 ** 15}, "max_completion_tokens"),
                        ({"model": "gpt-b", "prompt": {"not": "text"}}, "prompt")):
        path = "/v1/completions" if "prompt" in body else chat
        st, j, data, h = post(path, body)
        bad(st, j, data, param=param)
    st, j, data, h = post(chat, None, raw=b'{"model": "solo", "messages": [], "max_tokens": 99999999999999999999999}')
    bad(st, j, data)
    st, j, data, h = x.chat("no-such-model", stream=True)
    bad(st, j, data, "model_not_found", status=404)
    st, j, data, h = x.chat("solo", "y" * (60 << 10))        # a huge prompt within the body limit
    check(st == 200 and j["choices"][0]["message"]["content"].startswith("echo: yyy"), "a huge prompt answers", st)
    st, j, data, h = x.chat("solo", "z" * (80 << 10))
    bad(st, j, data, "request_too_large", status=413)


def _slow_loris(x):
    check = R.check
    body = json.dumps({"model": "solo", "messages": [{"role": "user", "content": "slowly now"}]}).encode()
    # stalled bodies do not hold the gateway up
    stalled = [raw_request(x, chat_head(x, n=len(body)), [body[:10]]) for _ in range(12)]
    stalled += [raw_request(x, chat_head(x, chunked=True), [chunk(body[:10])]) for _ in range(4)]
    try:
        t0 = time.time()
        st, j, data, h = x.chat("solo", "meanwhile")
        check(st == 200 and time.time() - t0 < 2, "others are answered while bodies stall", st, time.time() - t0)
        # a body that trickles in, and trickled chunks, still answer
        parts = [body[i:i + 6] for i in range(0, len(body), 6)]
        s = raw_request(x, chat_head(x, n=len(body)), parts, delay=0.05)
        c = raw_request(x, chat_head(x, chunked=True), [chunk(p) for p in parts] + [b"0\r\n\r\n"], delay=0.05)
        for sock in (s, c):
            try:
                st, hdrs, data = read_answer(sock)
                check(st == 200 and json.loads(data)["choices"][0]["message"]["content"] == "echo: slowly now",
                      "a slow body answers", st, data[:300])
            finally:
                sock.close()
        # headers that trickle in
        s = socket.create_connection((x.host, x.port), timeout=30)
        try:
            for b in (chat_head(x, n=len(body)) + "\r\n").encode():
                s.send(bytes([b]))
                time.sleep(0.002)
            s.sendall(body)
            st, hdrs, data = read_answer(s)
            check(st == 200, "slow headers answer", st, data[:300])
        finally:
            s.close()
    finally:
        for s in stalled:
            s.close()


def _junk_battery(x, junk):
    check = R.check
    # (mode, streamed, status, type)
    cases = (("truncated", False, 502, "upstream_error"),
             ("truncated_event", True, 502, "upstream_error"),
             ("html", False, 502, "upstream_error"),
             ("html", True, 502, "upstream_error"),
             ("json_for_stream", True, 502, "upstream_error"),
             ("empty", False, 502, "upstream_error"),
             ("error_in_200", False, 502, "upstream_error"),
             ("silent", False, 504, "timeout"),
             ("drip", False, 504, "timeout"))
    for mode, stream, status, type_ in cases:
        junk.script([{"mode": mode}])
        extra = {"stream": True} if stream else {}
        t0 = time.time()
        st, j, data, h = x.chat("junky", "junk %s" % mode, **extra)
        e = x.error_of(j)
        check(st == status and e["type"] == type_ and "junk" in e["message"] and time.time() - t0 < 4,
              "%s%s: %d %s naming the upstream" % (mode, " (stream)" if stream else "", status, type_), st, data[:400])
    junk.script([{"mode": "plain_ctype"}])
    st, j, data, h = x.chat("junky", "plain")
    check(st == 200 and j["choices"][0]["message"]["content"] == "fine",
          "a good answer is taken whatever its Content-Type", st, data[:300])
    # a stream that never ends: the caller gets an error event at the total deadline
    junk.script([{"mode": "stream_hang"}])
    st, j, data, h = x.chat("junky", "hang", stream=True)
    ev = x.events(data)
    check(st == 200 and ev[-1] == "[DONE]" and json.loads(ev[-2])["error"]["type"] == "timeout",
          "a stream that never ends: an error event, then [DONE]", st, ev[-3:])
    # many at once that never answer: each connection closed at the deadline
    junk.script([{"mode": "silent"}] * 12)
    out = []
    ts = [threading.Thread(target=lambda: out.append(x.chat("junky", "silent together")[0])) for _ in range(12)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    check(out == [504] * 12, "twelve silent upstream calls: twelve 504", out)
    # and callers who leave: the upstream calls end with them
    for _ in range(4):
        junk.script([{"mode": "stream_hang"}])
        s = raw_request(x, chat_head(x, n=len(b'{"model": "junky", "stream": true, "messages": [{"role": "user", '
                                                b'"content": "leave"}]}')),
                        [b'{"model": "junky", "stream": true, "messages": [{"role": "user", "content": "leave"}]}'])
        got = b""
        while b"data: " not in got:
            got += s.recv(4096)
        s.close()


def _bad_input_no_leaks(x, junk):
    check = R.check
    ports = [u.server.server_address[1] for u in x.ups.values()] + [junk.server.server_address[1]]
    jport = junk.server.server_address[1]
    # warm up: the pools hold what they will hold, and the audit shipper
    # has posted (its HTTP client makes its socketpair on the first post)
    for _ in range(4):
        check(x.chat("junky", "warm")[0] == 200 and x.chat("solo", "warm")[0] == 200, "warm-up answers")
    r = rid("warm")
    check(x.chat("solo", "warm", headers={"X-Request-Id": r})[0] == 200, "warm-up answers")
    audit_of(x, "default", r)
    time.sleep(0.5)
    base_ups, base_rest = activator_fds(x, ports)
    base_list = fd_list(x)
    pooled = max(base_ups[jport], 1)

    _client_battery(x)
    _slow_loris(x)
    _junk_battery(x, junk)

    last = {}

    def settled():
        busy = [ln for ln in metric(x, "fnbox_llm_upstream_inflight") if not ln.endswith(" 0")]
        ups, rest = activator_fds(x, ports)
        last.update(busy=busy, fds=rest, ups=ups, junk_open=junk.open, fd_list=fd_list(x))
        return not busy and rest <= base_rest and ups[jport] <= pooled and junk.open <= pooled
    try:
        fixture.wait_for("the activator back to its fds and connections", settled, 15)
    except fixture.PlatformError as e:
        raise R.Fail("%s\n    before: %d other fds, upstream connections %s (%s)\n    now: %r" %
                     (e, base_rest, base_ups, base_list, last))
    res = list(metric(x, "fnbox_llm_quota_reservations")) + list(metric(x, "fnbox_llm_quota_reserved_tokens"))
    check(res == ["fnbox_llm_quota_reservations 0", "fnbox_llm_quota_reserved_tokens 0"],
          "no quota reservation left", res)
    check(x.chat("solo", "still here")[0] == 200 and x.chat("junky", "still here")[0] == 200, "the gateway still answers")
