"""tests/security/cases_sessions.py: a session's files in the jail (issue 6).

`fnbox-runtime run --input-tar T --output-tar O` unpacks T into a session
folder (runtime/session_fs.c) bound read-only at /input, gives the box a
32 MiB, 1024-inode tmpfs bound at /output, and packs it into O after the
run; `--input-dir` / `--output-dir` bind folders as they are. The box
(tests/security/boxes/files.c) tries to write /input, to run programs from
/input and /output, to fill /output past its caps, and to leave links and
fifos there for the host to follow. After each run: no session folder and
no mount are left (run.py's host check compares /proc/self/mountinfo too).

One-shot path only: the runtime daemon takes no files (refused, below).
register(r) adds the cases to run.py (r is that module).
"""
import io
import os
import tarfile

MiB = 1 << 20


def register(r):
    test, run_box, box_path, check, check_true, expect_steps, expect_status, E, OK, Fail, C = (
        r.test, r.run_box, r.box_path, r.check, r.check_true, r.expect_steps, r.expect_status, r.E, r.OK,
        r.Fail, r.C)
    ONESHOT = ("oneshot",)

    def base():
        return os.path.join(C.tmp, "sessions")

    def make_tar(name, members):
        """A ustar archive in our temp dir: {path: (bytes or None for a folder, mode)}."""
        path = os.path.join(C.tmp, name)
        with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as t:
            for member, (data, mode) in members.items():
                info = tarfile.TarInfo(member)
                info.mode = mode
                if data is None:
                    info.type = tarfile.DIRTYPE
                    t.addfile(info)
                else:
                    info.size = len(data)
                    t.addfile(info, io.BytesIO(data))
        return path

    def input_tar():
        with open(box_path("files"), "rb") as f:
            prog = f.read()
        return make_tar("input.tar", {"data.txt": (b"hello session\nline 2\n", 0o600), "sub": (None, 0o700),
                                      "sub/more.txt": (b"more\n", 0o644), "prog": (prog, 0o755)})

    def session_opts(inp=None, out=None):
        opts = ["--session-base", base()]
        if inp:
            opts += ["--input-tar", inp]
        if out:
            opts += ["--output-tar", out]
        return opts

    def members(path):
        with tarfile.open(path) as t:
            return {m.name: m for m in t.getmembers()}

    def no_session_left():
        """The session folder and its mounts are gone: BASE is empty and no
        mount under it is left in our mount namespace."""
        left = sorted(os.listdir(base())) if os.path.isdir(base()) else []
        check("session folders left", [], left)
        with open("/proc/self/mountinfo") as f:
            mounts = [line.split()[4] for line in f if base() in line]
        check("session mounts left", [], mounts)

    @test("session_input_readonly", quick=True, paths=ONESHOT)
    def t_input():
        out = os.path.join(C.tmp, "out-input.tar")
        tar = input_tar()
        with open(tar, "rb") as f:
            before = f.read()
        res = run_box(box_path("files"), ["input"], opts=session_opts(tar, out))
        expect_status(res, "exited", 0)
        # the files are root's (0644): opening one to write fails on its mode
        # before the read-only mount; every other change meets the mount
        expect_steps(res, [("read data.txt", "hello session"), ("read sub/more.txt", "more"),
                           ("create", E("EROFS")), ("write data.txt", E("EACCES")), ("unlink", E("EROFS")),
                           ("mkdir", E("EROFS")), ("chmod", E("EROFS")), ("rename", E("EROFS")),
                           ("symlink", E("EROFS")), ("exec prog", E("EACCES")), ("umount", E("EPERM")),
                           ("remount rw", E("EPERM"))])
        with open(tar, "rb") as f:
            check("the input archive after the run", before, f.read())
        check("output archive of a box that wrote nothing", {}, members(out))
        no_session_left()

    @test("session_output_noexec_and_kept", quick=True, paths=ONESHOT)
    def t_output():
        out = os.path.join(C.tmp, "out-output.tar")
        res = run_box(box_path("files"), ["output"], opts=session_opts(None, out))
        expect_status(res, "exited", 0)
        expect_steps(res, [("create result.txt", OK), ("write result.txt", OK), ("mkdir plots", OK),
                           ("copy prog", OK), ("exec prog", E("EACCES")), ("mknod", E("EPERM")),
                           ("umount", E("EPERM"))])
        got = members(out)
        check("output entries", ["plots", "plots/prog", "result.txt"], sorted(got))
        with tarfile.open(out) as t:
            check("result.txt", b"answer 42\n", t.extractfile("result.txt").read())
        # modes are normalised: no setuid bit comes back out
        check("plots/prog mode", 0o755, got["plots/prog"].mode)
        no_session_left()

    @test("session_output_capped", paths=ONESHOT)
    def t_capped():
        # 100 MiB into /output: ENOSPC at 32 MiB (--tmp 256M: the file size
        # rlimit is not what stops it; --memory 256M: tmpfs pages count)
        out = os.path.join(C.tmp, "out-capped.tar")
        res = run_box(box_path("files"), ["fill", str(100 * MiB)],
                      opts=session_opts(None, out) + ["--tmp", "256M", "--memory", "256M"])
        expect_status(res, "exited", 0)
        steps = r.steps_of(res["stdout"])
        check("fill", ("fill", E("ENOSPC")), steps[0] if steps else None)
        n = int(steps[1][1]) if len(steps) > 1 and steps[1][0] == "bytes" else -1
        check_true("bytes written", 31 * MiB <= n <= 32 * MiB, "31..32 MiB", n)
        got = members(out)
        check("big's size in the archive", n, got["big"].size if "big" in got else None)
        no_session_left()

    @test("session_output_inodes", paths=ONESHOT)
    def t_inodes():
        out = os.path.join(C.tmp, "out-inodes.tar")
        res = run_box(box_path("files"), ["files", "2000"], opts=session_opts(None, out))
        expect_status(res, "exited", 0)
        steps = r.steps_of(res["stdout"])
        check("files", ("files", E("ENOSPC")), steps[0] if steps else None)
        n = int(steps[1][1]) if len(steps) > 1 and steps[1][0] == "made" else -1
        check_true("files made", 1000 <= n < 1024, "1000..1023", n)
        check("entries in the archive", n, len(members(out)))
        no_session_left()

    def refused_output(attack, step, says):
        out = os.path.join(C.tmp, f"out-{attack}.tar")
        p = r.spawn(r.runtime_cmd(box_path("files"), [attack], opts=session_opts(None, out)))
        rc, stdout, stderr = r.communicate(p, b"")
        check("exit status", 125, rc)
        res = r.parse_line(stdout.splitlines()[0]) if stdout else {}
        check("box status", "exited", res.get("status"))
        expect_steps(res, [(step, OK)])
        check_true("stderr", says in stderr, repr(says), stderr[-300:])
        check("output archive written", False, os.path.exists(out))
        no_session_left()

    @test("session_output_symlink_not_followed", quick=True, paths=ONESHOT)
    def t_linkout():
        refused_output("linkout", "symlink shadow",
                       "fnbox-runtime run: output: shadow is a symlink that leads outside /output")

    @test("session_output_fifo_refused", paths=ONESHOT)
    def t_fifo():
        refused_output("fifo", "mkfifo", "fnbox-runtime run: output: pipe is a fifo")

    @test("session_dirs_bound_as_given", paths=ONESHOT)
    def t_dirs():
        # --input-dir / --output-dir: the folders themselves, with the same
        # mounts. The input folder and its files are the box's own (0666,
        # 0777): only the read-only, noexec mount stops it.
        d_in = r.folder("in-dir", {"data.txt": (None, 0o666), "prog": (box_path("files"), 0o777)},
                        owner=r.JAIL_UID)
        os.makedirs(os.path.join(d_in, "sub"))
        with open(os.path.join(d_in, "sub", "more.txt"), "w") as f:
            f.write("more\n")
        for p in (d_in, os.path.join(d_in, "sub"), os.path.join(d_in, "sub", "more.txt")):
            os.chown(p, r.JAIL_UID, r.JAIL_UID)
        os.chmod(os.path.join(d_in, "sub"), 0o777)
        d_out = os.path.join(C.tmp, "out-dir")
        os.makedirs(d_out, exist_ok=True)
        os.chown(d_out, r.JAIL_UID, r.JAIL_UID)
        res = run_box(box_path("files"), ["input"], opts=["--input-dir", d_in, "--output-dir", d_out])
        expect_status(res, "exited", 0)
        expect_steps(res, [("read data.txt", "data"), ("read sub/more.txt", "more")] +
                     [(s, E("EROFS")) for s in ("create", "write data.txt", "unlink", "mkdir", "chmod",
                                                "rename", "symlink")] +
                     [("exec prog", E("EACCES")), ("umount", E("EPERM")), ("remount rw", E("EPERM"))])
        res = run_box(box_path("files"), ["output"], opts=["--input-dir", d_in, "--output-dir", d_out])
        expect_status(res, "exited", 0)
        expect_steps(res, [("create result.txt", OK), ("write result.txt", OK), ("mkdir plots", OK),
                           ("copy prog", OK), ("exec prog", E("EACCES")), ("mknod", E("EPERM")),
                           ("umount", E("EPERM"))])
        with open(os.path.join(d_out, "result.txt")) as f:
            check("result.txt on the host", "answer 42\n", f.read())

    # bad options: exit status 2, one line on stderr (both paths: the
    # daemon path is refused for taking files at all)
    def bad_tar():
        path = os.path.join(C.tmp, "bad.tar")
        with open(path, "wb") as f:
            f.write(b"x" * 1024)
        return path

    def escaping_tar():
        path = make_tar("escape.tar", {"x": (b"abc", 0o644)})
        with open(path, "r+b") as f:
            h = bytearray(f.read(512))
            h[0:100] = b"../escape".ljust(100, b"\0")
            h[148:156] = b" " * 8
            h[148:156] = b"%06o\0 " % sum(h)
            f.seek(0)
            f.write(h)
        return path

    def valid():
        return ["--code", box_path("files")]

    for name, fn in [
        ("input_tar_junk", lambda: valid() + ["--input-tar", bad_tar(), "--session-base", base()]),
        ("input_tar_escape", lambda: valid() + ["--input-tar", escaping_tar(), "--session-base", base()]),
        ("input_tar_missing", lambda: valid() + ["--input-tar", "/nonexistent/fnbox-sec.tar"]),
        ("input_dir_relative", lambda: valid() + ["--input-dir", "relative/dir"]),
        ("input_dir_proc", lambda: valid() + ["--input-dir", "/proc/self"]),
        ("output_dir_not_writable", lambda: valid() + ["--output-dir", C.tmp]),
        ("input_dir_and_tar", lambda: valid() + ["--input-dir", C.tmp, "--input-tar", bad_tar()]),
        ("session_base_alone", lambda: valid() + ["--session-base", base()]),
    ]:
        r.bad_options_test(name, fn)

    @test("session_files_refused_by_daemon", paths=("daemon",))
    def t_daemon_refuses():
        rc, out, err = r.run_bad(valid() + ["--output-dir", C.tmp])
        check("exit status", 2, rc)
        check("stderr", "fnbox-runtime run: --daemon: the runtime daemon takes no input or output files\n", err)
