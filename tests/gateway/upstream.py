"""tests/gateway/upstream.py: a scripted OpenAI-compatible upstream for the
gateway suite. Deterministic answers, and per test whatever goes wrong:

    up = Upstream("cloud-a").start()       # listens on 127.0.0.1, a port the kernel picks
    up.base_url                             # http://127.0.0.1:PORT/v1
    up.script([{"status": 500}, {}])        # the next two requests: a 500, then a normal answer
    up.default = {"usage": False}           # what requests past the script get
    up.requests                             # every request seen: {"path", "headers", "body"}

A step (a dict; {} is a normal answer) may say:
    status: N, body: {...}, headers: {...}  answer N with that JSON body
    delay: S                                wait S seconds before the headers
    garbage: True                           answer 200 with what is not JSON
    fail_after: N                           (streams) send N chunks, then cut the connection
    hang: True                              send the headers (and for a stream one chunk), then nothing
    usage: False                            no usage in the answer (or the stream)
    reply: "text"                           the completion's text (default: "echo: " + the last message)

A chat answer's text is "echo: " + the last message's content; streams send
it a word per chunk (chunked transfer encoding, so a cut is seen as one).
Embeddings are 4 numbers derived from the input's length (base64 of
little-endian float32s when encoding_format asks for it). Python standard
library only.
"""
import base64
import http.server
import json
import socketserver
import struct
import threading
import time


def _last_text(body):
    msgs = body.get("messages")
    if isinstance(msgs, list) and msgs:
        c = msgs[-1].get("content") if isinstance(msgs[-1], dict) else None
        return c if isinstance(c, str) else json.dumps(c)
    p = body.get("prompt")
    return p if isinstance(p, str) else json.dumps(p)


class Upstream:
    def __init__(self, name):
        self.name = name
        self.steps = []
        self.only = None
        self.default = {}
        self.requests = []
        self.lock = threading.Lock()
        self.server = None

    def script(self, steps, only=None):
        """The next steps; only: a path suffix ("/chat/completions") whose
        requests alone take them (the others get the default)."""
        with self.lock:
            self.steps = list(steps)
            self.only = only

    def reset(self):
        with self.lock:
            self.steps = []
            self.only = None
            self.default = {}
            self.requests = []

    def next_step(self, req):
        with self.lock:
            self.requests.append(req)
            if self.only and not req.get("path", "").endswith(self.only):
                return dict(self.default)
            return dict(self.steps.pop(0)) if self.steps else dict(self.default)

    @property
    def base_url(self):
        return "http://127.0.0.1:%d/v1" % self.server.server_address[1]

    def start(self):
        up = self

        class H(Handler):
            upstream = up
        self.server = Server(("127.0.0.1", 0), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        import sys
        if not isinstance(sys.exc_info()[1], (ConnectionError, OSError)):
            super().handle_error(request, client_address)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    upstream = None

    def log_message(self, *a):
        pass

    def send_json(self, status, obj, headers=None):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path.startswith("/v1/models"):
            self.send_json(200, {"object": "list", "data": [{"id": "m", "object": "model"}]})
        else:
            self.send_json(404, {"error": {"message": "no", "type": "invalid_request_error"}})

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {}
        req = {"path": self.path, "headers": dict(self.headers.items()), "body": body}
        step = self.upstream.next_step(req)
        if step.get("delay"):
            time.sleep(step["delay"])
        if "status" in step:
            self.send_json(step["status"], step.get("body", {"error": {"message": "scripted %d" % step["status"],
                                                                         "type": "server_error"}}),
                           step.get("headers"))
            return
        if step.get("garbage"):
            data = b"<html>this is not json</html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        if self.path.endswith("/embeddings"):
            self.embeddings(body, step)
        elif body.get("stream"):
            self.stream(body, step)
        else:
            self.whole(body, step)

    def text(self, body, step):
        return step.get("reply", "echo: " + _last_text(body))

    def usage(self, body, text):
        p = len(json.dumps(body.get("messages", body.get("prompt", ""))).split())
        c = len(text.split())
        return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}

    def whole(self, body, step):
        text = self.text(body, step)
        chat = self.path.endswith("/chat/completions")
        choice = ({"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"} if chat
                  else {"index": 0, "text": text, "finish_reason": "stop"})
        out = {"id": "cmpl-%s" % self.upstream.name, "object": "chat.completion" if chat else "text_completion",
               "created": 1700000000, "model": body.get("model"), "choices": [choice],
               "system_fingerprint": self.upstream.name}
        if step.get("usage", True):
            out["usage"] = self.usage(body, text)
        if step.get("hang"):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"{")
            self.wfile.flush()
            time.sleep(600)
            return
        self.send_json(200, out)

    def embeddings(self, body, step):
        inp = body.get("input")
        items = inp if isinstance(inp, list) else [inp]
        data = [{"object": "embedding", "index": i, "embedding": [len(str(x)) / 10.0, 0.5, -0.25, float(i)]}
                for i, x in enumerate(items)]
        if body.get("encoding_format") == "base64":     # as OpenAI does: little-endian float32s
            for d in data:
                d["embedding"] = base64.b64encode(struct.pack("<%df" % len(d["embedding"]), *d["embedding"])).decode()
        out = {"object": "list", "data": data, "model": body.get("model")}
        if step.get("usage", True):
            n = sum(len(str(x).split()) for x in items)
            out["usage"] = {"prompt_tokens": n, "total_tokens": n}
        self.send_json(200, out)

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def event(self, obj):
        self.chunk(b"data: " + (obj if isinstance(obj, bytes) else json.dumps(obj).encode()) + b"\n\n")

    def stream(self, body, step):
        text = self.text(body, step)
        chat = self.path.endswith("/chat/completions")
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        words = text.split(" ")
        for i, w in enumerate(words):
            piece = w if i == 0 else " " + w
            if step.get("fail_after") is not None and i >= step["fail_after"]:
                self.wfile.flush()
                self.connection.shutdown(2)
                self.close_connection = True
                return
            if chat:
                ch = {"id": "c", "object": "chat.completion.chunk", "model": body.get("model"),
                      "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
            else:
                ch = {"id": "c", "object": "text_completion", "model": body.get("model"),
                      "choices": [{"index": 0, "text": piece, "finish_reason": None}]}
            self.event(ch)
            if step.get("hang"):
                time.sleep(600)
                return
        want = (body.get("stream_options") or {}).get("include_usage")
        if want and step.get("usage", True):
            self.event({"id": "c", "object": "chat.completion.chunk", "model": body.get("model"), "choices": [],
                        "usage": self.usage(body, text)})
        self.event(b"[DONE]")
        self.chunk(b"")
