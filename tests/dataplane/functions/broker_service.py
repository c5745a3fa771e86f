# tests/dataplane/functions/broker_service.py: a service-mode box that
# answers every request with what it received (method, path, headers,
# body) as JSON; GET /env says what it sees of its broker; POST /call/NAME
# calls NAME through its broker (node's fnbox.js is not used here: the
# python helper) passing on the X-Fnbox-Depth it was called with.
import http.server
import json
import os
import socketserver
import stat
import sys

sys.path.insert(0, "/run/fnbox")
import fnbox  # noqa: E402

SOCKET = os.environ["FNBOX_SOCKET"]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/healthz":
            self.answer(200, {"ok": True})
        elif self.path == "/env":
            b = os.environ.get("FNBOX_BROKER", "")
            try:
                sock = stat.S_ISSOCK(os.stat(b).st_mode)
            except OSError:
                sock = False
            self.answer(200, {"broker": b, "socket": sock})
        else:
            self.do_POST()

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        if self.path.startswith("/call/"):
            h = {}
            if self.headers.get("X-Fnbox-Depth"):
                h["X-Fnbox-Depth"] = self.headers["X-Fnbox-Depth"]
            st, _, _, data = fnbox.request("POST", "/fn/" + self.path[6:], body, h)
            self.answer(200, {"status": st, "body": data.decode("utf-8", "replace")})
            return
        self.answer(200, {"method": self.command, "path": self.path, "body": body.decode("utf-8", "replace"),
                          "headers": {k.lower(): v for k, v in self.headers.items()}})

    def log_message(self, fmt, *args):
        pass


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


Server(SOCKET, Handler).serve_forever()
