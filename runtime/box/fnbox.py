"""fnbox.py: a box's way out, in python3 (docs/boxes.md). The broker is an
HTTP/1.1 server on the unix socket named by FNBOX_BROKER; it serves
/fn/NAME and /skills/NAME[@VERSION] (functions and skills of the box's own
namespace) and /v1/... (the LLM gateway). Standard library only.

    import sys; sys.path.insert(0, "/run/fnbox"); import fnbox
    text = fnbox.call("shout", b"hello").decode()
    total = fnbox.call("skill:csv-sum@2", csv_bytes)   # or fnbox.skill("csv-sum", ...)
    reply = fnbox.chat("local", [{"role": "user", "content": "hi"}])
"""
import http.client
import json
import os
import socket

BROKER = os.environ.get("FNBOX_BROKER", "/run/fnbox/broker.sock")


class BrokerError(Exception):
    """A call that did not answer 2xx: .status, .body (bytes), .code (the
    error's code when the body is a JSON error)."""

    def __init__(self, status, body):
        self.status, self.body, self.code = status, body, None
        msg = body[:300].decode("utf-8", "replace")
        try:
            err = json.loads(body)["error"]
            if isinstance(err, dict):
                msg, self.code = err.get("message", msg), err.get("code")
            elif isinstance(err, str):
                msg = "%s: %s" % (err, json.loads(body).get("message", ""))
        except (ValueError, KeyError, TypeError):
            pass
        Exception.__init__(self, "HTTP %d: %s" % (status, msg))


class _Conn(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        http.client.HTTPConnection.__init__(self, "broker", timeout=timeout)
        self._path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if self.timeout is not None:
            self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


def request(method, path, body=None, headers=None, timeout=None):
    """One call: (status, reason, [(header, value)], body bytes)."""
    h = dict(headers or {})
    c = _Conn(BROKER, timeout)
    try:
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        return r.status, r.reason, r.getheaders(), r.read()
    finally:
        c.close()


def target(name):
    """The broker's path for NAME (/fn/NAME), skill:NAME[@V] (/skills/NAME[@V])
    or a /path (as it is)."""
    if name.startswith("/"):
        return name
    if name.startswith("skill:"):
        return "/skills/" + name[len("skill:"):].lstrip("/")
    return "/fn/" + name


def call(name, body=b"", method="POST", headers=None, timeout=None):
    """Call the function NAME (or NAME/sub/path), or the skill
    skill:NAME[@VERSION], of this box's namespace: the answer's body, or
    BrokerError."""
    if isinstance(body, str):
        body = body.encode()
    status, _, _, data = request(method, target(name.lstrip("/")), body, headers, timeout)
    if not 200 <= status < 300:
        raise BrokerError(status, data)
    return data


def skill(name, body=b"", version=None, **kw):
    """Call the skill NAME: its newest promoted version, or version."""
    return call("skill:%s%s" % (name, "" if version is None else "@%d" % int(version)), body, **kw)


def openai(path, payload, timeout=None):
    """POST a JSON payload to the gateway's /v1/PATH: the decoded answer."""
    status, _, _, data = request("POST", "/v1/" + path.lstrip("/"), json.dumps(payload).encode(),
                                 {"Content-Type": "application/json"}, timeout)
    if not 200 <= status < 300:
        raise BrokerError(status, data)
    return json.loads(data)


def chat(model, messages, **kw):
    """The first choice's text of a chat completion."""
    answer = openai("chat/completions", dict(model=model, messages=messages, **kw))
    return answer["choices"][0]["message"]["content"]
