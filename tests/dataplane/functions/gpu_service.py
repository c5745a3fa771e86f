# tests/dataplane/functions/gpu_service.py: a service-mode box that says
# what a GPU instance sees: every node under /dev with its numbers, what
# opening each device gives (the stand-in devices of the GPU tests have no
# driver: ENXIO means the device cgroup let it through, EPERM that it did
# not), and the GPU variables. LOAD_SECONDS: pretend to load a model that
# long first (/healthz answers 503 until then); a request that arrives
# before is counted, and every answer carries the count ("early").
import errno
import http.server
import json
import os
import socketserver
import stat
import threading
import time

SOCKET = os.environ["FNBOX_SOCKET"]
LOAD_SECONDS = float(os.environ.get("LOAD_SECONDS", "0"))
loaded = threading.Event()
early = [0]


def devices():
    seen, opens = {}, {}
    for root, dirs, files in os.walk("/dev"):
        for name in dirs + files:
            p = os.path.join(root, name)
            st = os.lstat(p)
            if not (stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)):
                continue
            rel = p[len("/dev/"):]
            seen[rel] = "%d:%d" % (os.major(st.st_rdev), os.minor(st.st_rdev))
            try:
                os.close(os.open(p, os.O_RDWR | os.O_NOCTTY))
                opens[rel] = "ok"
            except OSError as e:
                opens[rel] = errno.errorcode.get(e.errno, str(e.errno))
    return seen, opens


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
            self.answer(200 if loaded.is_set() else 503, {"loaded": loaded.is_set()})
            return
        if not loaded.is_set():
            early[0] += 1
            self.answer(503, {"error": "not ready"})
            return
        if "sleep=" in self.path:     # hold the instance's one slot a while
            time.sleep(float(self.path.split("sleep=", 1)[1].split("&")[0]))
        seen, opens = devices()
        env = {k: v for k, v in os.environ.items() if "VISIBLE_DEVICES" in k or k == "FNBOX_GPUS"}
        self.answer(200, {"devices": seen, "open": opens, "env": env, "early": early[0]})

    do_POST = do_GET

    def log_message(self, fmt, *args):
        pass


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def load():
    time.sleep(LOAD_SECONDS)
    loaded.set()


threading.Thread(target=load, daemon=True).start()
Server(SOCKET, Handler).serve_forever()
