"""tests/dataplane/test_http.py: the activator's own HTTP/1.1 (activator/http.c,
docs/invoke.md "HTTP"), on raw sockets: keep-alive and pipelined requests
answered in order; chunked bodies and Expect: 100-continue; HEAD; HTTP/1.0;
requests that could be read two ways (Content-Length with
Transfer-Encoding, two lengths, folded or control-character headers, no
Host) refused with 400 and a JSON error, and the connection closed; a
client that leaves mid-body or mid-head costs nothing; the activator
still answers after all of it."""
import json
import select
import socket
import time

from fixture import ECHO_SERVICE, Platform, fn
from harness import check, test


def connect(p):
    host, port = p.url.split("://", 1)[1].rstrip("/").rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=15)


def read_answer(s, buf=b"", head_request=False):
    """One HTTP/1.1 answer from s: (status, {lower-case header: value}, body, rest)."""
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            raise AssertionError("connection closed before an answer: %r" % buf[:200])
        buf += d
    head, buf = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    hdrs = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    if head_request or status in (100, 204, 304):
        return status, hdrs, b"", buf
    if "content-length" in hdrs:
        n = int(hdrs["content-length"])
        while len(buf) < n:
            d = s.recv(65536)
            if not d:
                raise AssertionError("short body")
            buf += d
        return status, hdrs, buf[:n], buf[n:]
    if hdrs.get("transfer-encoding") == "chunked":
        body = b""
        while True:
            while b"\r\n" not in buf:
                buf += s.recv(65536)
            line, buf = buf.split(b"\r\n", 1)
            n = int(line.split(b";")[0], 16)
            while len(buf) < n + 2:
                buf += s.recv(65536)
            body += buf[:n]
            buf = buf[n + 2:]
            if n == 0:
                return status, hdrs, body, buf
    while True:                  # to the close
        d = s.recv(65536)
        if not d:
            return status, hdrs, buf, b""
        buf += d


def closed(s, timeout=5):
    """Whether the server closes s (EOF) within timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([s], [], [], deadline - time.monotonic())
        if not r:
            return False
        try:
            if not s.recv(65536):
                return True
        except ConnectionResetError:
            return True
    return False


def post(path, body, auth, extra=b""):
    return (b"POST %s HTTP/1.1\r\nHost: t\r\n%sContent-Length: %d\r\n%s\r\n" % (path, auth, len(body), extra)) + body


@test(limit=120)
def http_protocol(build):
    with Platform(build) as p:
        p.deploy("h", fn("box.py"))
        p.deploy("hs", ECHO_SERVICE, spec={"mode": "service", "scale": {"min": 1}})
        auth = ("Authorization: Bearer %s\r\n" % p.token).encode()
        st, body, _ = p.invoke("h", b"warm")
        check(st == 200 and body == b"echo:warm", "a first call", st, body)

        # keep-alive: three requests on one connection
        s = connect(p)
        for i in range(3):
            s.sendall(post(b"/fn/h", b"k%d" % i, auth))
            st, hdrs, body, rest = read_answer(s)
            check(st == 200 and body == b"echo:k%d" % i and not rest, "keep-alive request %d" % i, st, body)
            check(hdrs.get("x-request-id") and hdrs.get("date"), "X-Request-Id and Date", hdrs)
        # pipelined: three in one write, answered in order
        s.sendall(b"".join(post(b"/fn/h", b"p%d" % i, auth) for i in range(3)))
        rest = b""
        for i in range(3):
            st, _, body, rest = read_answer(s, rest)
            check(st == 200 and body == b"echo:p%d" % i, "pipelined request %d" % i, st, body)
        # chunked body, in pieces, with an extension and a trailer
        s.sendall(b"POST /fn/h HTTP/1.1\r\nHost: t\r\n" + auth + b"Transfer-Encoding: chunked\r\n\r\n")
        for piece in (b"3;ext=1\r\nabc\r\n", b"4\r\ndefg", b"\r\n0\r\nX-Trailer: 1\r\n\r\n"):
            s.sendall(piece)
            time.sleep(0.05)
        st, _, body, _ = read_answer(s)
        check(st == 200 and body == b"echo:abcdefg", "a chunked body", st, body)
        # Expect: 100-continue: 100 first, then the answer
        s.sendall(b"POST /fn/h HTTP/1.1\r\nHost: t\r\n" + auth + b"Content-Length: 2\r\nExpect: 100-continue\r\n\r\n")
        st, _, _, rest = read_answer(s)
        check(st == 100, "Expect: 100-continue answered with 100", st)
        s.sendall(b"ec")
        st, _, body, _ = read_answer(s, rest)
        check(st == 200 and body == b"echo:ec", "the answer after 100 Continue", st, body)
        # a refusal before the body (no token) ends the connection after it
        s.sendall(b"POST /fn/h HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n" + b"z" * 1000)
        st, hdrs, body, _ = read_answer(s)
        check(st == 401 and json.loads(body)["error"]["type"] == "unauthenticated", "401 before the body", st, body)
        check(hdrs.get("connection") == "close" and closed(s), "the connection closes after an early answer", hdrs)
        s.close()

        # every Connection header counts: close in the first, another in the second
        s = connect(p)
        s.sendall(post(b"/fn/h", b"cc", auth, b"Connection: close\r\nConnection: x-other\r\n"))
        st, hdrs, body, _ = read_answer(s)
        check(st == 200 and hdrs.get("connection") == "close" and closed(s), "Connection: close in the first of two",
              st, hdrs)
        s.close()
        # pipelined, then half-closed: both are answered
        s = connect(p)
        s.sendall(post(b"/fn/h", b"h1", auth) + post(b"/fn/h", b"h2", auth))
        s.shutdown(socket.SHUT_WR)
        st1, _, b1, rest = read_answer(s)
        st2, _, b2, _ = read_answer(s, rest)
        check((st1, b1, st2, b2) == (200, b"echo:h1", 200, b"echo:h2"), "pipelined then half-closed", st1, b1, st2, b2)
        s.close()

        # HEAD on a service (echo-service has no HEAD: its 501 passes through):
        # a head and no body, and the connection goes on
        s = connect(p)
        s.sendall(b"HEAD /fn/hs HTTP/1.1\r\nHost: t\r\n" + auth + b"\r\n")
        time.sleep(0.3)
        st, hdrs, body, rest = read_answer(s, head_request=True)
        check(st == 501 and body == b"" and rest == b"", "HEAD on a service", st, hdrs, rest)
        s.sendall(post(b"/fn/hs", b"after-head", auth))
        st, _, body, _ = read_answer(s)
        check(st == 200 and body == b"after-head", "a request after HEAD on the same connection", st, body)
        s.close()

        # HTTP/1.0: answered, then closed
        s = connect(p)
        s.sendall(b"POST /fn/h HTTP/1.0\r\n" + auth + b"Content-Length: 2\r\n\r\nv0")
        st, hdrs, body, _ = read_answer(s)
        check(st == 200 and body == b"echo:v0" and hdrs.get("connection") == "close" and closed(s),
              "HTTP/1.0 without keep-alive", st, hdrs, body)
        s.close()

        # requests that could be read two ways, or are malformed: 400, JSON, closed
        bad = {
            "Content-Length and Transfer-Encoding":
                b"POST /fn/h HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "two different lengths": b"POST /fn/h HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde",
            "a length that is not a number": b"POST /fn/h HTTP/1.1\r\nHost: t\r\nContent-Length: +4\r\n\r\nabcd",
            "a transfer coding other than chunked": b"POST /fn/h HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n",
            "a folded header": b"POST /fn/h HTTP/1.1\r\nHost: t\r\nX-A: 1\r\n  folded\r\nContent-Length: 0\r\n\r\n",
            "a space before the colon": b"POST /fn/h HTTP/1.1\r\nHost: t\r\nContent-Length : 0\r\n\r\n",
            "a control character in a value": b"POST /fn/h HTTP/1.1\r\nHost: t\r\nX-A: a\x01b\r\n\r\n",
            "no Host": b"POST /fn/h HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
            "no version": b"POST /fn/h\r\nHost: t\r\n\r\n",
            "a space in the target": b"POST /fn/h x HTTP/1.1\r\nHost: t\r\n\r\n",
            "two Host headers": b"POST /fn/h HTTP/1.1\r\nHost: t\r\nHost: u\r\nContent-Length: 0\r\n\r\n",
            "a NUL after the version": b"POST /fn/h HTTP/1.1\x00 x\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
            "junk after a chunk size": b"POST /fn/h HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3 junk\r\nabc\r\n0\r\n\r\n",
            "a chunk line without CR": b"POST /fn/h HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n",
        }
        for what, raw in bad.items():
            s = connect(p)
            s.sendall(raw.replace(b"Host: t\r\n", b"Host: t\r\n" + auth, 1))
            st, hdrs, body, _ = read_answer(s)
            err = json.loads(body).get("error", {}) if body.startswith(b"{") else {}
            check(st == 400 and err.get("type") == "bad_request", "%s: expected 400 bad_request" % what, st, body)
            check(closed(s), "%s: the connection closes" % what)
            if what in ("junk after a chunk size", "a chunk line without CR"):  # refused once begun: its id comes back
                check(hdrs.get("x-request-id"), "%s: X-Request-Id on the 400" % what, hdrs)
            s.close()
        # a version it does not speak: 505, JSON, closed
        for raw in (b"POST /fn/h HTTP/2.0\r\nHost: t\r\n\r\n", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"):
            s = connect(p)
            s.sendall(raw)
            st, hdrs, body, _ = read_answer(s)
            err = json.loads(body).get("error", {}) if body.startswith(b"{") else {}
            check(st == 505 and err.get("type") == "http_version_not_supported", "%r: 505" % raw[:16], st, body)
            check(closed(s), "%r: the connection closes" % raw[:16])
            s.close()
        # too many header fields: 431
        s = connect(p)
        s.sendall(b"POST /fn/h HTTP/1.1\r\nHost: t\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(200)) + b"\r\n")
        st, _, body, _ = read_answer(s)
        check(st == 431 and b"headers_too_large" in body, "200 header fields: 431", st, body)
        s.close()

        # clients that leave mid-head and mid-body cost nothing
        for raw in (b"POST /fn/h HTTP/1.1\r\nHost: t\r\nX-Half",
                    b"POST /fn/h HTTP/1.1\r\nHost: t\r\n" + auth + b"Content-Length: 100\r\n\r\n" + b"x" * 10):
            s = connect(p)
            s.sendall(raw)
            time.sleep(0.1)
            s.close()
        st, body, _ = p.invoke("h", b"still")
        check(st == 200 and body == b"echo:still", "a call after all of it", st, body)
        print("keep-alive, pipelining, chunked, 100-continue, HEAD, HTTP/1.0; %d malformed requests refused" % len(bad))
