# tests/dataplane/functions/broker_box.py: a fresh-mode box that uses its
# broker (FNBOX_BROKER) as the body, a JSON object, says:
#   {"call": NAME, "body": TEXT}   fnbox.call(NAME, TEXT): the answer
#   {"raw": [METHOD, PATH, {headers}, BODY]}  one request, exactly that:
#                                  {"status", "body", "headers"} back
#                                  ("big": N: a body of N bytes instead)
#   {"bytes": TEXT}                TEXT as it is on a new connection:
#                                  {"status", "body"} of what comes back
#   {"many": N, "path": PATH}      N requests one after the other:
#                                  {"statuses": [...]}
#   {"recurse": NAME}              calls NAME with the same body; answers
#                                  "+" and the callee's answer, or, when the
#                                  call was refused, "stopped STATUS CODE"
#   {"env": true}                  FNBOX_BROKER and whether it is a socket
#   {"cli": [ARGS]}                runs /run/fnbox/fnbox-call ARGS:
#                                  {"rc", "out"}
import http.client
import json
import os
import socket
import stat
import subprocess
import sys

sys.path.insert(0, "/run/fnbox")
import fnbox  # noqa: E402

req = json.loads(sys.stdin.buffer.read() or b"{}")
out = sys.stdout
if "call" in req:
    out.write(fnbox.call(req["call"], req.get("body", "")).decode())
elif "raw" in req:
    method, path, headers, body = req["raw"]
    if req.get("big"):
        body = "x" * req["big"]
    st, _, hdrs, data = fnbox.request(method, path, body.encode() if body is not None else None, headers)
    out.write(json.dumps({"status": st, "body": data.decode("utf-8", "replace"),
                          "headers": {k.lower(): v for k, v in hdrs}}))
elif "bytes" in req:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(20)
        s.connect(os.environ["FNBOX_BROKER"])
        s.sendall(req["bytes"].encode())
        r = http.client.HTTPResponse(s)
        r.begin()
        out.write(json.dumps({"status": r.status, "body": r.read().decode("utf-8", "replace")}))
elif "many" in req:
    sts = []
    for _ in range(req["many"]):
        st, _, _, _ = fnbox.request("POST", req["path"], b"x", {})
        sts.append(st)
    out.write(json.dumps({"statuses": sts}))
elif "recurse" in req:
    try:
        out.write("+" + fnbox.call(req["recurse"], json.dumps(req), timeout=60).decode())
    except fnbox.BrokerError as e:
        out.write("stopped %d %s" % (e.status, e.code))
elif "env" in req:
    b = os.environ.get("FNBOX_BROKER", "")
    try:
        sock = stat.S_ISSOCK(os.stat(b).st_mode)
    except OSError:
        sock = False
    out.write(json.dumps({"broker": b, "socket": sock, "run": sorted(os.listdir("/run/fnbox"))}))
elif "cli" in req:
    p = subprocess.run(["/run/fnbox/fnbox-call"] + req["cli"], capture_output=True, timeout=30)
    out.write(json.dumps({"rc": p.returncode, "out": p.stdout.decode("utf-8", "replace"),
                          "err": p.stderr.decode("utf-8", "replace")}))
