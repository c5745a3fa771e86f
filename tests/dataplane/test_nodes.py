"""tests/dataplane/test_nodes.py: several nodes. Three runtimes labelled
accelerator=cuda, rocm and none, each in its own network namespace; a
function with a cuda variant and a rocm variant is served only by matching
nodes with the variant built for them; with the cuda node gone the rocm
node serves; with both gone, 503 with the unschedulable reason."""
import time

from fixture import Node, Platform, fn
from harness import SCALE_FAST, check, error_message, error_type, test, wait_for

NODES = [Node("node-cuda", accelerator="cuda"), Node("node-rocm", accelerator="rocm"),
         Node("node-cpu", accelerator="none")]
LEASE = "2s"


def variants_spec():
    return {"env": {"VARIANT": "base"}, "scale": dict(SCALE_FAST),
            "variants": [{"name": "cuda", "nodeSelector": {"accelerator": "cuda"}, "env": {"VARIANT": "cuda"}},
                         {"name": "rocm", "nodeSelector": {"accelerator": "rocm"}, "env": {"VARIANT": "rocm"}}]}


@test(limit=150)
def label_routing(build):
    with Platform(build, nodes=NODES, controller_args=["--node-lease", LEASE]) as p:
        print(p.netns_note)
        labels = {n: v.get("labels", {}) for n, v in p.nodes().items()}
        for spec in NODES:
            check(labels.get(spec.name, {}).get("accelerator") == spec.labels["accelerator"],
                  "node %s labels at the controller" % spec.name, labels)
        rev = p.deploy("gpu", fn("box.py"), spec=variants_spec())
        seen_nodes = set()

        def served(want, n=6):
            for _ in range(n):
                st, body, _ = p.invoke("gpu", b"variant", timeout=60)
                check(st == 200 and body == want.encode(), "expected the %s variant" % want, st, body)
                for i in p.ready_instances(rev):
                    seen_nodes.add(i["node"])
        served("cuda")
        inst = p.ready_instances(rev)
        check(inst and all(i["node"] == "node-cuda" for i in inst), "cuda variant instances", inst)

        # a selector no node matches: 503 with the reason, at once
        p.deploy("tpu", fn("box.py"), spec={"nodeSelector": {"accelerator": "tpu"}})
        t0 = time.monotonic()
        st, body, _ = p.invoke("tpu", b"x", timeout=60)
        dt = time.monotonic() - t0
        check(st == 503 and error_type(body) == "unschedulable", "nodeSelector accelerator=tpu", st, body)
        check("accelerator" in error_message(body), "the reason does not name the label", body)
        check(dt < 5, "the unschedulable answer took %.1fs" % dt)

        # the cuda node dies: the rocm node serves the rocm variant
        p.kill9_node("node-cuda")
        t0 = time.monotonic()
        st, body, _ = p.invoke("gpu", b"variant", timeout=60)
        dt = time.monotonic() - t0
        check(st == 200 and body == b"rocm", "first call after the cuda node died", st, body)
        served("rocm")
        inst = p.ready_instances(rev)
        check(inst and all(i["node"] == "node-rocm" for i in inst), "rocm variant instances", inst)
        print("after the cuda node died: rocm answered in %.1fs (lease %s)" % (dt, LEASE))

        # both gone: 503 unschedulable with the reason, at once. Wait until
        # the controller has found the node lost; the revision itself may
        # be at zero by then (scaleToZeroAfter 2s), and then the call is
        # what makes the controller place it, and find no node.
        p.kill9_node("node-rocm")
        wait_for("node-rocm lost at the controller",
                 lambda: str(p.nodes().get("node-rocm", {}).get("state", "")).lower() not in ("", "ready"), 30)
        t0 = time.monotonic()
        st, body, _ = p.invoke("gpu", b"variant", timeout=60)
        dt = time.monotonic() - t0
        check(st == 503 and error_type(body) == "unschedulable", "with no cuda or rocm node", st, body)
        check(error_message(body), "503 unschedulable without a reason", body)
        check(dt < 2, "the unschedulable answer took %.1fs" % dt)
        wait_for("the revision unschedulable in the route table", lambda: p.route(rev).get("unschedulable"), 5)
        check("node-cpu" not in seen_nodes, "node-cpu (accelerator=none) ran the function", seen_nodes)
        print("unschedulable: %s" % error_message(body))
