"""tests/dataplane/test_gpu.py: GPU instances without a GPU. Three nodes
labelled cuda, rocm and none; the cuda and rocm nodes declare stand-in GPUs
in a node config file (--node-config): character devices made here with
numbers of the unassigned "local use" range, so that opening one the
device cgroup allows fails with ENXIO (no driver) and one it refuses with
EPERM. A GPU instance's jail has exactly its GPUs' devices and the shared
control devices, two instances never share a GPU, a CUDA-only function
never lands on the rocm node, and a GPU that an instance held is handed
to the next one once that one stopped. Then the long cold starts: a
slow-loading service gets no request before it is ready and is not scaled
away while it loads (even with nobody waiting), its retention holds it
after; a service that misses its startup deadline is stopped with that
reason."""
import json
import os
import shutil
import tempfile
import threading
import time

from fixture import Node, Platform, wait_for, ROOT
from harness import SCALE_FAST, check, error_message, error_type, test

GPU_BOX = os.path.join(ROOT, "tests", "dataplane", "functions", "gpu_service.py")
BASE = {"null", "zero", "full", "random", "urandom"}
UUID = "GPU-5f2c0000-0000-4000-8000-00000000000%d"


def stand_ins():
    """A folder of stand-in device nodes and the two node configs."""
    d = tempfile.mkdtemp(prefix="fnbox-gpu-")
    os.chmod(d, 0o755)
    os.makedirs(os.path.join(d, "rocm", "dri"))
    os.makedirs(os.path.join(d, "cuda"))
    nodes = {"cuda/nvidia0": (240, 0), "cuda/nvidia1": (240, 1), "cuda/nvidiactl": (240, 255),
             "cuda/nvidia-uvm": (241, 0), "rocm/kfd": (242, 0), "rocm/dri/renderD128": (243, 128),
             "rocm/dri/renderD129": (243, 129)}
    for rel, (ma, mi) in nodes.items():
        os.mknod(os.path.join(d, rel), 0o666 | 0o020000, os.makedev(ma, mi))
    cuda = os.path.join(d, "cuda.yaml")
    with open(cuda, "w") as f:
        f.write("accelerator: cuda\ngpus:\n")
        for i in range(2):
            f.write("  - {device: %s/cuda/nvidia%d, product: Stand-in GPU, memory: 16Gi, uuid: %s}\n"
                    % (d, i, UUID % i))
        f.write("sharedDevices: [%s/cuda/nvidiactl, %s/cuda/nvidia-uvm]\n" % (d, d))
    rocm = os.path.join(d, "rocm.yaml")
    with open(rocm, "w") as f:
        f.write("accelerator: rocm\ngpus: [%s/rocm/dri/renderD128, %s/rocm/dri/renderD129]\n"
                "sharedDevices: [%s/rocm/kfd]\n" % (d, d, d))
    return d, cuda, rocm


def status(p, name):
    st, body = p.api("GET", "/v1/functions/" + name)
    check(st == 200, "GET /v1/functions/%s" % name, st, body)
    return (body.get("status") or {}).get("revisions") or []


def instances(p, name):
    return [i for r in status(p, name) for i in r.get("instances", [])]


def view(p, name, path="/fn/%s", timeout=60):
    st, body, _ = p.invoke(name, b"", method="GET", path=path % name, timeout=timeout)
    check(st == 200, "GET %s" % (path % name), st, body)
    return json.loads(body)


def gpu_spec(selector, gpus, **extra):
    s = {"mode": "service", "nodeSelector": {"accelerator": selector}, "limits": {"gpus": gpus},
         "concurrency": 1, "readiness": {"path": "/healthz", "period": "100ms"}}
    s.update(extra)
    return s


@test(limit=200)
def devices_assigned(build):
    d, cuda, rocm = stand_ins()
    try:
        nodes = [Node("node-cuda", accelerator=None, args=["--node-config", cuda]),
                 Node("node-rocm", accelerator=None, args=["--node-config", rocm]),
                 Node("node-cpu", accelerator="none")]
        with Platform(build, nodes=nodes) as p:
            ns = p.nodes()
            lc = ns["node-cuda"].get("labels", {})
            check(lc.get("accelerator") == "cuda" and lc.get("gpu.count") == "2" and
                  lc.get("gpu.product") == "Stand-in-GPU" and lc.get("gpu.memory") == "16Gi",
                  "node-cuda's labels from its node config", lc)
            check(ns["node-rocm"].get("labels", {}).get("accelerator") == "rocm", "node-rocm's labels", ns["node-rocm"])
            gl = ns["node-cuda"].get("gpus") or []
            check([g.get("device") for g in gl] == ["/dev/nvidia0", "/dev/nvidia1"] and gl[1].get("uuid") == UUID % 1,
                  "node-cuda's GPUs at the controller", gl)

            # three instances of one GPU each wanted, two GPUs on the one cuda node
            p.deploy("cu", GPU_BOX, spec=gpu_spec("cuda", 1, scale={"min": 3, "max": 3, "initial": 3}))
            where = set()

            def two_ready():
                ins = instances(p, "cu")
                where.update(i["node"] for i in ins)
                return len([i for i in ins if i["state"] == "ready"]) == 2 and ins
            ins = wait_for("two cu instances ready", two_ready, 90)
            gpus = sorted(tuple(i.get("gpus") or ()) for i in ins if i["state"] == "ready")
            check(gpus == [(0,), (1,)], "the two instances' GPUs (one each, never the same)", ins)

            # each instance sees exactly its GPU and the control devices
            seen = {}

            def call():
                v = view(p, "cu", "/fn/%s?sleep=0.5")
                seen[v["env"].get("FNBOX_GPUS")] = v
            for _ in range(3):
                ts = [threading.Thread(target=call) for _ in range(2)]
                for t in ts:
                    t.start()
                for t in ts:
                    t.join(90)
                if len(seen) == 2:
                    break
            check(set(seen) == {"0", "1"}, "both instances answered (FNBOX_GPUS)", list(seen))
            for g, v in sorted(seen.items()):
                want = BASE | {"nvidia%s" % g, "nvidiactl", "nvidia-uvm"}
                check(set(v["devices"]) == want, "GPU %s's jail: /dev" % g, sorted(v["devices"]))
                check(v["devices"]["nvidia%s" % g] == "240:%s" % g, "the device's numbers", v["devices"])
                check(v["open"]["nvidia%s" % g] == "ENXIO" and v["open"]["nvidiactl"] == "ENXIO" and
                      v["open"]["null"] == "ok", "the device cgroup lets its devices through", v["open"])
                check(v["env"].get("CUDA_VISIBLE_DEVICES") == UUID % int(g), "CUDA_VISIBLE_DEVICES", v["env"])

            # the ROCm function: both of node-rocm's GPUs in one instance
            p.deploy("ro", GPU_BOX, spec=gpu_spec("rocm", 2, scale={"min": 1, "max": 1, "initial": 1}))
            v = view(p, "ro")
            check(set(v["devices"]) == BASE | {"dri/renderD128", "dri/renderD129", "kfd"}, "the rocm jail's /dev",
                  sorted(v["devices"]))
            check(v["open"]["dri/renderD129"] == "ENXIO" and v["open"]["kfd"] == "ENXIO", "rocm devices open",
                  v["open"])
            check(v["env"].get("ROCR_VISIBLE_DEVICES") == "0,1" and v["env"].get("HIP_VISIBLE_DEVICES") == "0,1",
                  "ROCR/HIP_VISIBLE_DEVICES", v["env"])
            where.update(i["node"] for i in instances(p, "cu"))
            check(where == {"node-cuda"}, "cu (cuda only) placed on", where)

            # the GPUs go back when their instances stop, to the next one
            p.cli_ok("delete", "cu")
            wait_for("node-cuda's GPUs free", lambda: not any(g.get("instance") for g in
                                                              p.nodes()["node-cuda"].get("gpus") or []), 60)
            p.deploy("cu2", GPU_BOX, spec=gpu_spec("cuda", 2, scale={"min": 1, "max": 1, "initial": 1}))
            v = view(p, "cu2")
            check(v["env"].get("FNBOX_GPUS") == "0,1" and
                  v["env"].get("CUDA_VISIBLE_DEVICES") == "%s,%s" % (UUID % 0, UUID % 1),
                  "the freed GPUs, assigned again", v["env"])
            check(v["open"]["nvidia0"] == "ENXIO" and v["open"]["nvidia1"] == "ENXIO", "and usable", v["open"])
            holders = {g["index"]: g.get("instance") for g in p.nodes()["node-cuda"].get("gpus")}
            check(holders[0] and holders[0] == holders[1], "node-cuda's GPUs held by cu2's instance", holders)
    finally:
        shutil.rmtree(d, ignore_errors=True)


@test(limit=120)
def slow_start_kept_until_ready(build):
    with Platform(build) as p:
        spec = {"mode": "service", "env": {"LOAD_SECONDS": "8"}, "startupTimeout": "60s",
                "readiness": {"path": "/healthz", "period": "100ms"},
                "scale": dict(SCALE_FAST, scaleToZeroAfter="1s", retention="6s")}
        p.deploy("slow", GPU_BOX, spec=spec)
        # a caller who gives up at once: after it, nobody waits and nothing
        # is in flight while the model loads
        t0 = time.monotonic()
        try:
            p.invoke("slow", b"", method="GET", timeout=1)
        except OSError:
            pass
        ids, states = set(), []

        def ready():
            ins = instances(p, "slow")
            ids.update(i["id"] for i in ins)
            states.append([(i["id"], i["state"]) for i in ins])
            return any(i["state"] == "ready" for i in ins)
        wait_for("the slow instance ready", ready, 40)
        t_ready = time.monotonic()
        check(len(ids) == 1, "the loading instance was stopped and replaced on the way", ids, states[-5:])
        check(t_ready - t0 > 6, "ready after %.1fs, before its 8 s load" % (t_ready - t0))
        v = view(p, "slow")
        check(v["early"] == 0, "requests reached the box before it was ready", v)
        # then, idle: its retention (6 s from ready) holds it, then it goes
        wait_for("slow scaled to zero", lambda: not instances(p, "slow"), 40)
        held = time.monotonic() - t_ready
        check(held > 5, "the idle instance went %.1fs after it was ready (retention 6s)" % held)
        print("ready after %.1fs (load 8 s, scaleToZeroAfter 1s); gone %.1fs after ready (retention 6s)"
              % (t_ready - t0, held))


@test(limit=90)
def startup_deadline_missed(build):
    with Platform(build) as p:
        spec = {"mode": "service", "env": {"LOAD_SECONDS": "3600"}, "startupTimeout": "2s",
                "readiness": {"path": "/healthz", "period": "100ms"}, "scale": {"min": 1, "max": 1}}
        rev = p.deploy("stuck", GPU_BOX, spec=spec)

        def reason():
            r = next((r for r in status(p, "stuck") if r["revision"] == rev), {})
            return r.get("unschedulable") or ""
        try:
            why = wait_for("stuck's instances stopped at their startup deadline",
                           lambda: "startup_timeout" in reason() and reason(), 60)
        except Exception:
            check(False, "no startup_timeout", status(p, "stuck"))
        st, body, _ = p.invoke("stuck", b"", timeout=30)
        check(st == 503 and error_type(body) == "unschedulable" and "startup_timeout" in error_message(body),
              "a call after the instances missed their startup deadline", st, body)
        print("unschedulable: %s" % why)


@test(limit=90)
def queued_through_long_load(build):
    """A service's caller waits for its load up to its startupTimeout, even
    when that is far longer than its per-request timeout (1 s here)."""
    with Platform(build) as p:
        spec = {"mode": "service", "env": {"LOAD_SECONDS": "13"}, "startupTimeout": "60s",
                "limits": {"timeout": "1s"}, "readiness": {"path": "/healthz", "period": "100ms"}}
        p.deploy("loader", GPU_BOX, spec=spec)
        t0 = time.monotonic()
        st, body, _ = p.invoke("loader", b"", method="GET", timeout=60)
        dt = time.monotonic() - t0
        check(st == 200 and json.loads(body)["early"] == 0, "the first call, queued through the load", st, body)
        check(dt > 12, "answered after %.1fs, before the 13 s load ended" % dt)
        print("first call answered after %.1fs (load 13 s, limits.timeout 1s, startupTimeout 60s)" % dt)
