# functions/echo-service: a service-mode box. It serves HTTP/1.1 (keep-alive)
# on the unix socket the runtime names in FNBOX_SOCKET and answers every
# request with its own body; GET /healthz is the readiness probe.
#
# Optional environment:
#   LOAD_SECONDS  pretend to load a model for this long first: /healthz
#                 answers 503 until then, and so does any other request
#                 (with "not ready" in the body, which tests look for)
#   REPLY_TAG     added to each answer's X-Echo-Tag header
import http.server
import os
import socket
import socketserver
import sys
import threading
import time

SOCKET = os.environ.get("FNBOX_SOCKET", "/run/fnbox/http.sock")
LOAD_SECONDS = float(os.environ.get("LOAD_SECONDS", "0"))
TAG = os.environ.get("REPLY_TAG", "")
loaded = threading.Event()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self, status, body, ctype="application/octet-stream"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        if TAG:
            self.send_header("X-Echo-Tag", TAG)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path.split("?")[0] == "/healthz":
            self.answer(200 if loaded.is_set() else 503, b"ok" if loaded.is_set() else b"loading",
                        "text/plain")
        else:
            self.do_POST()

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        if not loaded.is_set():
            sys.stderr.write("echo-service: %s %s before it was ready\n" % (self.command, self.path))
            self.answer(503, b"not ready", "text/plain")
            return
        self.answer(200, body, self.headers.get("Content-Type") or "application/octet-stream")

    do_PUT = do_POST

    def log_message(self, fmt, *args):
        pass


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    request_queue_size = 512

    def get_request(self):
        conn, _ = self.socket.accept()
        return conn, ("unix", 0)


def main():
    try:
        os.unlink(SOCKET)
    except FileNotFoundError:
        pass
    srv = Server(SOCKET, Handler)
    os.chmod(SOCKET, 0o666)
    if LOAD_SECONDS > 0:
        threading.Timer(LOAD_SECONDS, loaded.set).start()
    else:
        loaded.set()
    sys.stderr.write("echo-service: serving on %s\n" % SOCKET)
    srv.serve_forever()


main()
