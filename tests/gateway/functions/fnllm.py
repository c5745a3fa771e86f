# tests/gateway/functions/fnllm.py: a tiny OpenAI-compatible box in service
# mode for the gateway suite's fn: upstream: POST /v1/chat/completions
# answers "fn: " + the last message (usage included); GET /healthz is the
# readiness probe. Served on the unix socket named by FNBOX_SOCKET.
import http.server
import json
import os
import socketserver

SOCKET = os.environ.get("FNBOX_SOCKET", "/run/fnbox/http.sock")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self, status, obj):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.answer(200, {"ok": True})

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(n) or b"{}")
        if not self.path.endswith("/chat/completions"):
            self.answer(404, {"error": {"message": "only chat here", "type": "invalid_request_error"}})
            return
        text = "fn: " + str(body["messages"][-1].get("content"))
        self.answer(200, {"id": "fn", "object": "chat.completion", "model": body.get("model"),
                          "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                       "finish_reason": "stop"}],
                          "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}})

    def log_message(self, *a):
        pass


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


if os.path.exists(SOCKET):
    os.unlink(SOCKET)
Server(SOCKET, Handler).serve_forever()
