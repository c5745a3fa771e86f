"""tests/dataplane/fixture.py: the whole fnbox platform for one test.

    with Platform(build, nodes=[Node("node-a", accelerator="none")]) as p:
        p.deploy("echo", fn("echo.py"), spec={"scale": {...}})
        status, body, headers = p.invoke("echo", b"hi")     # with the admin token
        status, body, headers = p.invoke("echo", b"hi", token=None)    # 401

Starts one fnbox-controller (SQLite in a temporary data folder, a port the
kernel picks), one fnbox-runtime per node (`serve --controller`, each with
its own sockets, state folder and cgroup parent, and, when the machine
allows it, its own network namespace joined to the host by a veth pair on a
bridge the fixture makes) and one fnbox-activator. It waits for each
daemon's ready line and for the controller to list every node (deadlines,
never fixed sleeps), keeps every daemon's output in a log, and on exit
stops everything and checks that nothing was left behind: processes,
cgroups under the parents it gave the runtimes, mounts, sockets, files in
/tmp, network namespaces and links. Python standard library only; root.
"""
import errno
import http.client
import json
import os
import random
import re
import select
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FUNCTIONS = os.path.join(HERE, "functions")
ECHO_SERVICE = os.path.join(ROOT, "functions", "echo-service", "main.py")

START_TIMEOUT_S = 20
STOP_TIMEOUT_S = 10
SETTLE_S = 5.0            # how long a leftover may take to go away after a stop
CLI_TIMEOUT_S = 60

READY_RE = {
    "controller": re.compile(r"^fnbox-controller: listening on (http://\S+)\s*$"),
    "activator": re.compile(r"^fnbox-activator: listening on (http://\S+)\s*$"),
    "runtime": re.compile(r"^fnbox-runtime: node (\S+) ready \(invoke (\S+)\)\s*$"),
}

# /tmp entries other programs on a shared machine make while we run (the
# compilers, shells, the other fnbox suites, another run of this one).
TMP_NOISE = re.compile(r"^(bash_tool_|cc[A-Za-z0-9]{6}\.|tmp\.|tmp[a-z0-9_]{8}$|vgdb-pipe-|"
                       r"fnbox-(cli|it|store|unit|bench|fuzz|sec|dp)[-_]|pymp-|\.X|systemd-)")


# the daemons' logs of platforms that a test left with an exception; the
# runner prints them after the failure
FAILED_LOGS = []


def _daemon_uids():
    import pwd
    uids = {65534}
    try:
        uids.add(pwd.getpwnam("fnbox").pw_uid)
    except KeyError:
        pass
    return uids


DAEMON_UIDS = _daemon_uids()



def free_port(host):
    """A port nobody listens on now (the kernel's pick, released): for a
    daemon whose address others must know before it starts."""
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        s.bind((host, 0))
        return s.getsockname()[1]
    finally:
        s.close()

class PlatformError(Exception):
    pass


# Platform.invoke(token=ADMIN): send the platform's admin token
ADMIN = object()


def fn(name):
    """The path of a test function's code under tests/dataplane/functions."""
    return os.path.join(FUNCTIONS, name)


def wait_for(what, cond, timeout, interval=0.05):
    """Poll cond() until it returns a true value (returned) or the deadline
    passes (PlatformError naming what was awaited and the last value)."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = cond()
        except (OSError, http.client.HTTPException, ValueError) as e:
            last = e
            if time.monotonic() >= deadline:
                break
        else:
            if last:
                return last
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
        interval = min(interval * 1.5, 0.5)
    raise PlatformError("timed out after %.1fs waiting for %s (last: %r)" % (timeout, what, last))


# ---- processes ---------------------------------------------------------------

def _stat(pid):
    """(ppid, starttime) of a live process, or None."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read().decode("ascii", "replace")
    except OSError:
        return None
    rest = data[data.rfind(")") + 2:].split()
    return int(rest[1]), int(rest[19])


def processes():
    """{pid: (ppid, starttime)} of every process now."""
    out = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = _stat(int(d))
            if st:
                out[int(d)] = st
    return out


def descendants(roots):
    """{pid: starttime} of the processes below the given pids (not them)."""
    procs = processes()
    children = {}
    for pid, (ppid, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    out, todo = {}, list(roots)
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in out:
                out[c] = procs[c][1]
                todo.append(c)
    return out


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        return ""


# ---- cgroups -------------------------------------------------------------------

def cgroup_roots():
    """The cgroup hierarchies' mount points (v1: one per controller set; v2: one)."""
    roots = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            parts = line.split()
            sep = parts.index("-")
            fstype = parts[sep + 1]
            if fstype in ("cgroup", "cgroup2"):
                opts = parts[sep + 3]
                if fstype == "cgroup" and "name=systemd" in opts:
                    continue
                roots.append(parts[4])
    return sorted(set(roots))


def cgroup_tree(parent):
    """Every cgroup folder below parent in every hierarchy (not parent itself)."""
    out = []
    for root in cgroup_roots():
        base = os.path.join(root, parent)
        for dirpath, dirnames, _ in os.walk(base):
            for d in dirnames:
                out.append(os.path.join(dirpath, d))
    return out


def cgroup_procs(parent):
    pids = []
    for root in cgroup_roots():
        base = os.path.join(root, parent)
        for dirpath, _, files in os.walk(base):
            if "cgroup.procs" in files:
                try:
                    with open(os.path.join(dirpath, "cgroup.procs")) as f:
                        pids += [int(x) for x in f.read().split()]
                except OSError:
                    pass
    return pids


def cgroup_remove(parent):
    """rmdir parent (and anything empty below it) in every hierarchy."""
    for root in cgroup_roots():
        base = os.path.join(root, parent)
        if not os.path.isdir(base):
            continue
        for dirpath, _, _ in sorted(os.walk(base), key=lambda t: -len(t[0])):
            try:
                os.rmdir(dirpath)
            except OSError:
                pass
        # the parents' own parents that we made (a/b: remove a if empty)
        p = os.path.dirname(base)
        while p != root and p.startswith(root):
            try:
                os.rmdir(p)
            except OSError:
                break
            p = os.path.dirname(p)


def mount_points():
    with open("/proc/self/mountinfo") as f:
        return {line.split()[4] for line in f}


# ---- one daemon ------------------------------------------------------------------

class Daemon:
    """One daemon process: started with its output (stdout and stderr
    together) in a log file that a thread copies from a pipe, ready once a
    line matches its ready pattern."""

    def __init__(self, kind, name, argv, log_path, env, prefix=()):
        self.kind, self.name = kind, name
        self.argv, self.prefix = list(argv), list(prefix)
        self.log_path, self.env = log_path, env
        self.proc = None
        self.ready = None           # the ready line's match
        self.killed = False         # stopped by SIGKILL (a crash, as tests make)
        self._lines = []
        self._cond = threading.Condition()
        self._reader = None

    def start(self, timeout=START_TIMEOUT_S):
        if self.proc and self.proc.poll() is None:
            raise PlatformError("%s already running" % self.name)
        self.ready, self.killed = None, False
        with self._cond:
            self._lines = []
        self.proc = subprocess.Popen(self.prefix + self.argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     env=self.env, close_fds=True, start_new_session=True)
        self._reader = threading.Thread(target=self._read, args=(self.proc,), daemon=True)
        self._reader.start()
        pattern = READY_RE[self.kind]
        deadline = time.monotonic() + timeout
        with self._cond:
            seen = 0
            while True:
                for line in self._lines[seen:]:
                    m = pattern.match(line)
                    if m:
                        self.ready = m
                        return m
                seen = len(self._lines)
                if self.proc.poll() is not None and not self._reader.is_alive():
                    raise PlatformError("%s exited (status %s) before it was ready:\n%s"
                                        % (self.name, self.proc.returncode, self.log_tail()))
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(min(left, 0.2))
        self.stop()
        raise PlatformError("%s was not ready within %ss:\n%s" % (self.name, timeout, self.log_tail()))

    def _read(self, proc):
        with open(self.log_path, "ab") as log:
            log.write(b"---- %s\n" % " ".join(self.prefix + self.argv).encode())
            buf = b""
            while True:
                try:
                    chunk = os.read(proc.stdout.fileno(), 65536)
                except OSError:
                    chunk = b""
                if not chunk:
                    break
                log.write(chunk)
                log.flush()
                buf += chunk
                if b"\n" in buf:
                    lines = buf.split(b"\n")
                    buf = lines.pop()
                    with self._cond:
                        self._lines += [l.decode("utf-8", "replace") for l in lines]
                        self._cond.notify_all()
                if len(buf) > 65536:
                    buf = b""
            with self._cond:
                self._cond.notify_all()

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def running(self):
        return bool(self.proc) and self.proc.poll() is None

    def send(self, sig):
        if self.running():
            self.proc.send_signal(sig)

    def wait(self, timeout):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT_S):
        """Send sig and wait; SIGKILL if it does not stop in time. Returns
        (exit status, whether it stopped on its own)."""
        if not self.proc:
            return None, True
        clean = True
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            if self.wait(timeout) is None:
                clean = False
                self.proc.kill()
                self.proc.wait()
        if self._reader:
            self._reader.join(timeout=STOP_TIMEOUT_S)
        if self.proc.stdout:
            self.proc.stdout.close()
        return self.proc.returncode, clean

    def kill9(self):
        self.killed = True
        return self.stop(signal.SIGKILL)

    def lines(self):
        with self._cond:
            return list(self._lines)

    def log_tail(self, n=6000):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")[-n:]
        except OSError:
            return ""


class Node:
    """What a runtime node is to be: its name, labels and options."""

    def __init__(self, name, accelerator="none", labels=None, pool=0, args=()):
        self.name = name
        self.labels = dict(labels or {})
        if accelerator is not None:
            self.labels.setdefault("accelerator", accelerator)
        self.pool = pool
        self.args = list(args)


# ---- the platform ------------------------------------------------------------------

class Platform:
    """controller + runtimes (one per Node) + activator; see the module text.

    netns: run each runtime in a network namespace of its own (True), on
    the host's (False), or whichever works (None, the default)."""

    def __init__(self, build, nodes=None, netns=None, activator_args=(), controller_args=(),
                 start_activator=True, verbose=False):
        self.build = os.path.abspath(build)
        self.bin = os.path.join(self.build, "bin")
        for b in ("fnbox-controller", "fnbox-activator", "fnbox-runtime", "fnbox"):
            if not os.access(os.path.join(self.bin, b), os.X_OK):
                raise PlatformError("no %s in %s (build it first)" % (b, self.bin))
        self.nodes_spec = nodes if nodes is not None else [Node("node-a")]
        self.want_netns = netns
        self.activator_args = list(activator_args)
        self.controller_args = list(controller_args)
        self.start_activator = start_activator
        self.verbose = verbose
        self.tag = "%06x" % random.randrange(1 << 24)
        if os.environ.get("FNBOX_DP_TAGFILE"):     # the runner checks these names after the test
            with open(os.environ["FNBOX_DP_TAGFILE"], "a") as f:
                f.write(self.tag + "\n")
        self.tmp = tempfile.mkdtemp(prefix="fnbox-dp-")
        os.chmod(self.tmp, 0o755)
        self.daemon_tmp = os.path.join(self.tmp, "daemon-tmp")
        os.makedirs(self.daemon_tmp, mode=0o1777)
        os.chmod(self.daemon_tmp, 0o1777)
        self.logs = os.path.join(self.tmp, "logs")
        os.makedirs(self.logs)
        self.controller = None
        self.activator = None
        self.more_activators = []   # start_another_activator's
        self.runtimes = {}          # node name -> Daemon
        self.node_paths = {}        # node name -> {socket, invoke, state, cgroup}
        self.netns = {}             # node name -> netns name
        self.links = []             # host-side links we made
        self.bridge = None
        self.host_addr = "127.0.0.1"
        self.netns_note = None
        self._before = None
        self._ever_pids = {}        # pid -> starttime of everything the daemons ran
        self._deploy_n = 0
        self._token = None
        self.url = None             # the activator's
        self.api_url = None         # the controller's
        # the invoke secret, shared by the runtimes and the activator: it
        # signs the broker's calls (docs/internals.md, "Broker calls")
        self.secret_file = os.path.join(self.tmp, "invoke.secret")
        with open(os.open(self.secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            f.write(os.urandom(24).hex() + "\n")
        self.activator_listen = None    # HOST:PORT, chosen before the nodes start (their --activator)

    # ---- life cycle ------------------------------------------------------------

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.close(check=False)
            raise
        return self

    def __exit__(self, et, ev, tb):
        if et is not None:
            FAILED_LOGS.append("---- platform (%s); the daemons' logs:\n%s\n" % (self.netns_note, self.all_logs()))
        problems = self.close(check=et is None)
        if problems and et is None:
            raise PlatformError("left behind after the test:\n  " + "\n  ".join(problems))
        return False

    def env(self):
        e = {k: v for k, v in os.environ.items() if not k.startswith("FNBOX_")}
        e.update(TMPDIR=self.daemon_tmp, LC_ALL="C")
        return e

    def start(self):
        self._before = {"mounts": mount_points(), "tmp": set(os.listdir("/tmp")),
                        "links": self._link_names(), "netns": self._netns_names()}
        self._setup_network()
        self.activator_listen = "%s:%d" % (self.host_addr, free_port(self.host_addr))
        self.start_controller()
        for spec in self.nodes_spec:
            self.start_node(spec)
        self.wait_nodes_ready([s.name for s in self.nodes_spec])
        if self.start_activator:
            self.start_activator_daemon()
        return self

    # ---- the network: a bridge on the host, a veth per node ----------------------

    @staticmethod
    def _link_names():
        return set(os.listdir("/sys/class/net"))

    @staticmethod
    def _netns_names():
        try:
            return set(os.listdir("/run/netns"))
        except OSError:
            return set()

    def _ip(self, *args):
        p = subprocess.run(["ip"] + list(args), stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
        if p.returncode != 0:
            raise PlatformError("ip %s: %s" % (" ".join(args), p.stderr.decode().strip()))

    def _setup_network(self):
        if self.want_netns is False:
            self.netns_note = "runtimes on the host's network (asked for)"
            return
        used = subprocess.run(["ip", "-4", "-o", "addr"], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL).stdout.decode()
        for _ in range(50):
            a, b = random.randrange(16, 250), random.randrange(0, 250)
            if (" 10.%d.%d." % (a, b)) not in used:
                break
        self.subnet = "10.%d.%d" % (a, b)
        try:
            self.bridge = "fnbd%sb" % self.tag
            self._ip("link", "add", self.bridge, "type", "bridge")
            self.links.append(self.bridge)
            self._ip("addr", "add", "%s.1/24" % self.subnet, "dev", self.bridge)
            self._ip("link", "set", self.bridge, "up")
            for i, spec in enumerate(self.nodes_spec):
                self._node_netns(spec.name, i)
            self.host_addr = "%s.1" % self.subnet
            self.netns_note = "each runtime in its own network namespace (veth on bridge %s, %s.0/24)" % (
                self.bridge, self.subnet)
        except (PlatformError, OSError) as e:
            if self.want_netns:
                raise
            self._teardown_network()
            self.netns = {}
            self.host_addr = "127.0.0.1"
            self.netns_note = "runtimes on the host's loopback (network namespaces failed: %s)" % e

    def _node_netns(self, name, i):
        ns = "fnbd-%s-%d" % (self.tag, i)
        self._ip("netns", "add", ns)
        self.netns[name] = ns
        host_if = "fnbd%sv%d" % (self.tag, i)
        self._ip("link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", ns)
        self.links.append(host_if)
        self._ip("link", "set", host_if, "master", self.bridge, "up")
        self._ip("-n", ns, "addr", "add", "%s.%d/24" % (self.subnet, 10 + i), "dev", "eth0")
        self._ip("-n", ns, "link", "set", "eth0", "up")
        self._ip("-n", ns, "link", "set", "lo", "up")

    def _teardown_network(self):
        for ns in self.netns.values():
            subprocess.run(["ip", "netns", "del", ns], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for link in reversed(self.links):
            if link in self._link_names():
                subprocess.run(["ip", "link", "del", link], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        self.links = []

    # ---- the daemons -------------------------------------------------------------------

    def start_controller(self, extra=()):
        if self.controller is None:
            data = os.path.join(self.tmp, "controller-data")
            argv = [os.path.join(self.bin, "fnbox-controller"), "--data-dir", data,
                    "--listen", "%s:0" % self.host_addr] + self.controller_args + list(extra)
            if "--activator" not in argv:       # the skill library calls the activator
                argv += ["--activator", "http://%s" % self.activator_listen]
            self.controller = Daemon("controller", "controller", argv,
                                     os.path.join(self.logs, "controller.log"), self.env())
        m = self.controller.start()
        self.api_url = m.group(1)
        self._note_pids()
        return self.api_url

    def restart_controller(self, stop_first=True):
        """Stop the controller (if running) and start it again over the same
        data folder on the same address and port, so that the runtimes and
        the activator find it where they left it."""
        if stop_first:
            self.controller.stop()
        port = self.api_url.rsplit(":", 1)[1].rstrip("/")
        i = self.controller.argv.index("--listen")
        self.controller.argv[i + 1] = "%s:%s" % (self.host_addr, port)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:         # the port may linger for a moment after the stop
            try:
                return self.start_controller()
            except PlatformError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    @property
    def token_file(self):
        return os.path.join(self.tmp, "controller-data", "admin.token")

    @property
    def token(self):
        """The admin token the controller wrote on its first start (read
        once: it does not change while the data folder lives)."""
        if self._token is None:
            with open(self.token_file) as f:
                self._token = f.read().strip()
        return self._token

    def start_node(self, spec):
        name = spec.name
        if name not in self.runtimes:
            d = os.path.join(self.tmp, "node-" + name)
            os.makedirs(d, exist_ok=True)
            paths = {"socket": os.path.join(d, "runtime.sock"), "invoke": os.path.join(d, "invoke.sock"),
                     "state": os.path.join(d, "state"),
                     "cgroup": "fnbox-dp-%s/%s" % (self.tag, name)}
            self.node_paths[name] = paths
            argv = [os.path.join(self.bin, "fnbox-runtime"), "serve", "--socket", paths["socket"],
                    "--controller", self.api_url, "--token-file", self.token_file, "--node", name,
                    "--invoke-socket", paths["invoke"], "--state-dir", paths["state"],
                    "--cgroup-parent", paths["cgroup"], "--pool", str(spec.pool),
                    "--activator", "http://" + self.activator_listen, "--invoke-secret-file", self.secret_file]
            for k, v in sorted(spec.labels.items()):
                argv += ["--label", "%s=%s" % (k, v)]
            argv += spec.args
            prefix = (["nsenter", "--net=/run/netns/%s" % self.netns[name], "--"]
                      if name in self.netns else [])
            self.runtimes[name] = Daemon("runtime", name, argv,
                                         os.path.join(self.logs, "runtime-%s.log" % name),
                                         self.env(), prefix)
        else:
            # the controller may have moved: point the node at its address now
            dm = self.runtimes[name]
            i = dm.argv.index("--controller")
            dm.argv[i + 1] = self.api_url
        m = self.runtimes[name].start()
        if m.group(1) != name:
            raise PlatformError("runtime for %s said it is node %s" % (name, m.group(1)))
        self._note_pids()
        return m

    def node_spec(self, name):
        return next(s for s in self.nodes_spec if s.name == name)

    def restart_node(self, name):
        dm = self.runtimes[name]
        if dm.running():
            dm.stop()
        self.start_node(self.node_spec(name))
        self.wait_nodes_ready([name])

    def kill9_node(self, name):
        """SIGKILL a runtime, as a crash would (what it ran is remembered
        first, so that the final check sees any of it that survives)."""
        self._note_pids()
        return self.runtimes[name].kill9()

    def start_activator_daemon(self):
        if self.activator is None:
            # the port the nodes' brokers were told (chosen in start())
            argv = [os.path.join(self.bin, "fnbox-activator"), "--listen", self.activator_listen,
                    "--controller", self.api_url, "--token-file", self.token_file,
                    "--invoke-secret-file", self.secret_file] + self.activator_args
            self.activator = Daemon("activator", "activator", argv,
                                    os.path.join(self.logs, "activator.log"), self.env())
        else:
            i = self.activator.argv.index("--controller")
            self.activator.argv[i + 1] = self.api_url
        m = self.activator.start()
        self.url = m.group(1)
        self._note_pids()
        return self.url

    def restart_activator(self):
        self.activator.stop()
        return self.start_activator_daemon()

    def start_another_activator(self, name, args=()):
        """A further activator beside the first (the same controller, token
        and secret; its own port, --id NAME and args): as an operator runs
        several. Stopped and checked with the rest. Returns its URL."""
        argv = [os.path.join(self.bin, "fnbox-activator"),
                "--listen", "%s:%d" % (self.host_addr, free_port(self.host_addr)),
                "--controller", self.api_url, "--token-file", self.token_file,
                "--invoke-secret-file", self.secret_file, "--id", name] + list(args)
        dm = Daemon("activator", name, argv, os.path.join(self.logs, name + ".log"), self.env())
        self.more_activators.append(dm)
        m = dm.start()
        self._note_pids()
        return m.group(1)

    def _note_pids(self):
        """Remember every process the daemons have started, to check later
        that none outlives them."""
        roots = [d.pid for d in self.daemons() if d.running()]
        for pid, st in descendants(roots).items():
            self._ever_pids.setdefault(pid, st)
        for pid in roots:
            st = _stat(pid)
            if st:
                self._ever_pids.setdefault(pid, st[1])

    def daemons(self):
        out = [self.controller] if self.controller else []
        out += list(self.runtimes.values())
        if self.activator:
            out.append(self.activator)
        return out + self.more_activators

    # ---- stop and check ------------------------------------------------------------------

    def close(self, check=True):
        """Stop everything, then look for what was left behind; returns the
        problems (a list of sentences). Removes the temporary folder unless
        FNBOX_DP_KEEP is set or there were problems and check is True."""
        problems = []
        try:
            self._note_pids()
        except OSError:
            pass
        # a node killed with SIGKILL is started again over its state, as an
        # operator would: it must clean up what its previous life left
        for name, dm in self.runtimes.items():
            if dm.killed and not dm.running() and self.controller and self.controller.running():
                try:
                    self.start_node(self.node_spec(name))
                except PlatformError as e:
                    problems.append("restart of killed node %s failed: %s" % (name, e))
        sockets = []
        order = ([self.activator] if self.activator else []) + self.more_activators \
            + list(self.runtimes.values()) + ([self.controller] if self.controller else [])
        for dm in order:
            was_running = dm.running()
            rc, clean = dm.stop()
            if was_running and not clean:
                problems.append("%s did not stop within %ss of SIGTERM" % (dm.name, STOP_TIMEOUT_S))
            elif was_running and rc not in (0, -signal.SIGTERM):
                problems.append("%s exited with status %s on SIGTERM" % (dm.name, rc))
        for name, paths in self.node_paths.items():
            sockets += [paths["socket"], paths["invoke"]]
        if check:
            problems += self.leftovers(sockets)
        self._force_cleanup()
        self._teardown_network()
        if check and not problems:
            after = self._netns_names() - self._before["netns"] if self._before else set()
            mine = [n for n in after if self.tag in n]
            if mine:
                problems.append("network namespaces left: %s" % mine)
        keep = os.environ.get("FNBOX_DP_KEEP") or (check and problems)
        if keep:
            problems = problems + (["logs kept in %s" % self.logs] if problems else [])
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)
        return problems

    def leftovers(self, sockets):
        def find():
            out = []
            alive = processes()
            for pid, st in self._ever_pids.items():
                if pid in alive and alive[pid][1] == st:
                    out.append("process %d still running: %s" % (pid, cmdline(pid)[:200]))
            for name, paths in self.node_paths.items():
                for pid in cgroup_procs(paths["cgroup"]):
                    out.append("process %d in cgroup %s: %s" % (pid, paths["cgroup"], cmdline(pid)[:200]))
                for d in cgroup_tree(paths["cgroup"]):
                    out.append("cgroup left: %s" % d)
            new_mounts = mount_points() - self._before["mounts"]
            for m in sorted(new_mounts):
                if m.startswith(self.tmp) or "fnbox" in m:
                    out.append("mount left: %s" % m)
            for s in sockets:
                if os.path.exists(s):
                    out.append("socket left: %s" % s)
            for dirpath, _, files in os.walk(self.tmp):
                if dirpath.startswith(self.logs):
                    continue
                for f in files:
                    p = os.path.join(dirpath, f)
                    try:
                        if stat.S_ISSOCK(os.lstat(p).st_mode) and p not in sockets:
                            out.append("socket left: %s" % p)
                    except OSError:
                        pass
            try:
                for f in os.listdir(self.daemon_tmp):
                    out.append("file left in the daemons' TMPDIR: %s" % f)
            except OSError:
                pass
            # other programs share /tmp: count what the daemons' users own
            # (fnbox, the jail's uid) or what is named for fnbox
            for f in sorted(set(os.listdir("/tmp")) - self._before["tmp"]):
                path = os.path.join("/tmp", f)
                try:
                    uid = os.lstat(path).st_uid
                except OSError:
                    continue
                if path != self.tmp and not TMP_NOISE.match(f) and (uid in DAEMON_UIDS or "fnbox" in f):
                    out.append("new in /tmp: %s" % f)
            return out
        deadline = time.monotonic() + SETTLE_S
        while True:
            found = find()
            if not found or time.monotonic() >= deadline:
                return found
            time.sleep(0.1)

    def _force_cleanup(self):
        """Kill and remove whatever is left, so that one test's leftovers do
        not spoil the next (they were reported already)."""
        alive = processes()
        for pid, st in self._ever_pids.items():
            if pid in alive and alive[pid][1] == st:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        for name, paths in self.node_paths.items():
            for _ in range(20):
                pids = cgroup_procs(paths["cgroup"])
                for pid in pids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
                if not pids:
                    break
                time.sleep(0.05)
        new_mounts = mount_points() - (self._before["mounts"] if self._before else set())
        for m in sorted(new_mounts, key=len, reverse=True):
            if m.startswith(self.tmp):
                subprocess.run(["umount", "-l", m], stderr=subprocess.DEVNULL)
        for name, paths in self.node_paths.items():
            cgroup_remove(paths["cgroup"])

    # ---- the control API and the CLI ---------------------------------------------------

    def api(self, method, path, body=None, timeout=10):
        """(status, parsed JSON or text) from the controller's API."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.api_url + path, data=data, method=method,
                                     headers={"Authorization": "Bearer " + self.token,
                                              "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                status, raw = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode("utf-8", "replace")

    def cli_env(self):
        home = os.path.join(self.tmp, "home")
        os.makedirs(home, exist_ok=True)
        e = {k: v for k, v in os.environ.items() if not k.startswith(("FNBOX_", "XDG_"))}
        e.update(HOME=home, LC_ALL="C", FNBOX_URL=self.api_url, FNBOX_TOKEN=self.token)
        if self.url:
            e["FNBOX_ACTIVATOR"] = self.url
        return e

    def cli(self, *args, stdin=None, timeout=CLI_TIMEOUT_S, env=None):
        """Run BUILD/bin/fnbox ARGS; returns (rc, stdout, stderr)."""
        e = self.cli_env()
        e.update(env or {})
        p = subprocess.run([os.path.join(self.bin, "fnbox")] + [str(a) for a in args], env=e,
                           input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")

    def cli_ok(self, *args, **kw):
        rc, out, err = self.cli(*args, **kw)
        if rc != 0:
            raise PlatformError("fnbox %s: exit %d\n%s%s" % (" ".join(map(str, args)), rc, out, err))
        return out

    def deploy(self, name, code, runtime="python3", spec=None, files=None, wait=True):
        """Deploy a function with the CLI: code is a file (copied next to
        the manifest) or a folder; spec: more of the manifest's spec as a
        dict (written as JSON, which is YAML). Returns the revision once
        the controller's route table has it (wait=False: at once, as a user
        who calls right after fnbox deploy)."""
        self._deploy_n += 1
        d = os.path.join(self.tmp, "deploy-%d-%s" % (self._deploy_n, name))
        os.makedirs(d)
        if os.path.isdir(code):
            shutil.copytree(code, os.path.join(d, "code"))
            code_rel = "code"
        else:
            code_rel = os.path.basename(code)
            shutil.copy(code, os.path.join(d, code_rel))
        for rel, text in (files or {}).items():
            p = os.path.join(d, rel)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "w") as f:
                f.write(text)
        s = {"runtime": runtime, "code": code_rel}
        s.update(spec or {})
        doc = {"apiVersion": "fnbox.dev/v1", "kind": "Function", "metadata": {"name": name}, "spec": s}
        path = os.path.join(d, "manifest.yaml")
        with open(path, "w") as f:
            json.dump(doc, f, indent=1)
        out = self.cli_ok("deploy", "-f", path)
        m = re.search(r"revision (%s-\d+)" % re.escape(name), out)
        if not m:
            raise PlatformError("deploy of %s: no revision in %r" % (name, out))
        # the controller's route table has it (the activator's follows by long poll)
        if wait:
            wait_for("%s in the controller's route table" % m.group(1),
                     lambda: "default/%s" % m.group(1) in self.routes().get("revisions", {}), 10)
        return m.group(1)

    def routes(self):
        """The controller's route table (docs/internals.md), at once."""
        st, body = self.api("GET", "/v1/routes?after=0&waitMs=0")
        if st != 200 or not isinstance(body, dict):
            raise PlatformError("GET /v1/routes: %s %r" % (st, body))
        return body

    def route(self, revision, namespace="default"):
        return self.routes().get("revisions", {}).get("%s/%s" % (namespace, revision)) or {}

    def ready_instances(self, revision, namespace="default"):
        """The revision's ready instances as the controller routes them:
        [{"id", "node", "invoke", "endpoint"}]."""
        return self.route(revision, namespace).get("instances") or []

    def wait_instances(self, revision, cond, timeout, what=None, namespace="default"):
        """Poll the route table until cond(ready instances) holds; returns them."""
        seen = {}

        def ok():
            seen["v"] = self.ready_instances(revision, namespace)
            return cond(seen["v"])
        wait_for(what or "instances of %s" % revision, ok, timeout)
        return seen["v"]

    def nodes(self):
        st, body = self.api("GET", "/v1/nodes")
        if st != 200:
            raise PlatformError("GET /v1/nodes: %s %r" % (st, body))
        items = body.get("items", body.get("nodes", [])) if isinstance(body, dict) else body
        return {n.get("name"): n for n in items}

    def wait_nodes_ready(self, names, timeout=START_TIMEOUT_S):
        def ok():
            ns = self.nodes()
            return all(n in ns and str(ns[n].get("state", ns[n].get("status", ""))).lower() == "ready"
                       for n in names)
        wait_for("nodes %s ready at the controller" % names, ok, timeout)

    # ---- invocations -----------------------------------------------------------------

    def auth_headers(self, token=ADMIN):
        """{"Authorization": "Bearer TOKEN"} for the admin token (ADMIN,
        the default) or the token given; {} for None."""
        if token is ADMIN:
            token = self.token
        return {"Authorization": "Bearer " + token} if token else {}

    def invoke(self, name, body=b"", method="POST", headers=None, path=None, timeout=30, token=ADMIN):
        """One request to the activator: (status, body bytes, headers dict
        with lower-case names). It carries the admin token (the activator
        wants a bearer token on /fn/, docs/invoke.md) unless token says
        otherwise: another token, or None for no Authorization at all. An
        Authorization in headers wins over either."""
        headers = dict(headers or {})
        hdrs = {} if any(k.lower() == "authorization" for k in headers) else self.auth_headers(token)
        hdrs.update(headers)
        return http_request(self.url, method, path or "/fn/" + name, body, hdrs, timeout)

    def log(self, which):
        dm = {"controller": self.controller, "activator": self.activator}.get(which) or self.runtimes[which]
        return dm.log_tail(20000)

    def all_logs(self, n=3000):
        return "\n".join("== %s ==\n%s" % (d.name, d.log_tail(n)) for d in self.daemons())


def http_request(base, method, path, body=b"", headers=None, timeout=30, conn=None):
    """(status, body, {lower-case header: value}); base is http://HOST:PORT."""
    hostport = base.split("://", 1)[1].rstrip("/")
    own = conn is None
    if own:
        host, port = hostport.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        hdrs = dict(headers or {})
        if body is None:
            body = b""
        if isinstance(body, str):
            body = body.encode()
        conn.request(method, path, body=body if (body or method not in ("GET", "HEAD")) else None,
                     headers=hdrs)
        r = conn.getresponse()
        data = r.read()
        return r.status, data, {k.lower(): v for k, v in r.getheaders()}
    finally:
        if own:
            conn.close()


def json_of(body):
    try:
        return json.loads(body)
    except (ValueError, TypeError):
        return None


def unix_http(path, method="GET", target="/", body=b"", timeout=5):
    """One HTTP/1.1 request over a unix socket (a service instance's endpoint)."""
    class Conn(http.client.HTTPConnection):
        def connect(self):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(path)
    c = Conn("localhost", timeout=timeout)
    try:
        c.request(method, target, body=body or None)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()
