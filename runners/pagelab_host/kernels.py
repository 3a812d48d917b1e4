"""`pagelab kernels`: boot other kernels under QEMU and run the suite there.

Each kernel is a Debian kernel package (fetched with apt-get download and
unpacked with dpkg-deb), a .deb file, or a bzImage/vmlinuz path. The guest is
an initramfs holding static builds of pagelab-conform and pagelab-bench and a
small init (tools/guest-init.c) that runs them and sends the result files back
over the serial console. KVM is used when a guest really boots with it;
otherwise TCG, and the run records which and why.
"""
import base64
import glob
import os
import re
import select
import shutil
import subprocess
import sys
import time

from . import hostenv
from .errors import UserError, warn
from .fsutil import atomic_write_bytes, atomic_write_json
from .progress import Progress

MARK = re.compile(r"^=== pagelab-(\w+) (\S+) (-?\d+)\s*$")
ALIVE_TIMEOUT_S = 120


def add_parser(sub):
    k = sub.add_parser("kernels", help="boot other kernels under QEMU and run the suite in each",
                       description="Boot each kernel under QEMU (KVM when it works, else TCG) with an initramfs "
                                   "holding static pagelab binaries; write one run directory per kernel, then a "
                                   "comparison when there are several.")
    k.add_argument("kernels", nargs="+", metavar="KERNEL",
                   help="a Debian kernel series (6.1, 6.12), a package name, a .deb file, or a vmlinuz path")
    k.add_argument("--profile", choices=("quick", "full"), default="quick", help="benchmark profile (default: quick)")
    k.add_argument("--accel", choices=("auto", "kvm", "tcg"), default="auto",
                   help="auto: KVM if a guest boots with it, else TCG (default)")
    k.add_argument("--no-perf", action="store_true", help="conformance only (TCG makes benchmarks slow)")
    k.add_argument("--no-conform", action="store_true", help="benchmarks only")
    k.add_argument("--filter", help="only probes matching this glob (pagelab-conform -f)")
    k.add_argument("--bench-filter", help="only benchmarks matching this regular expression")
    k.add_argument("--memory", default="4G", help="guest memory (default: 4G)")
    k.add_argument("--cpus", type=int, default=2, help="guest CPUs (default: 2)")
    k.add_argument("--timeout", type=int, help="seconds per kernel (default: 1800 with KVM, 5400 with TCG)")
    k.add_argument("--cache", default=os.path.join(os.path.expanduser("~"), ".cache", "pagelab", "kernels"),
                   help="where kernel packages are kept (default: %(default)s)")
    k.add_argument("--out", help="parent directory of the run directories (default: the results directory)")
    return k


# ---- kernels ----

def _apt_newest(pattern):
    try:
        res = subprocess.run(["apt-cache", "search", "--names-only", pattern], capture_output=True, text=True,
                             timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise UserError("apt-cache search failed: %s" % e)
    names = [ln.split()[0] for ln in res.stdout.splitlines() if ln.strip()]
    names = [n for n in names if not n.endswith(("-dbg", "-template"))]
    if not names:
        return None

    def key(n):
        return [int(x) for x in re.findall(r"\d+", n)]
    return sorted(names, key=key)[-1]


def _package_for(spec):
    """The newest Debian kernel image package for a series such as 6.1 or 6.12."""
    if spec.startswith("linux-image-"):
        return spec
    esc = re.escape(spec)
    for pattern in (r"^linux-image-%s\.0-[0-9]+-amd64$" % esc, r"^linux-image-%s\.[0-9]+\+deb[0-9]+-amd64-unsigned$" % esc,
                    r"^linux-image-%s\.[0-9.]+-[0-9]+-amd64-unsigned$" % esc):
        name = _apt_newest(pattern)
        if name:
            return name
    raise UserError("kernel %s: no Debian package linux-image-%s* found (run apt-get update?)" % (spec, spec))


def _vmlinuz_from_deb(deb, cache):
    dest = os.path.join(cache, os.path.basename(deb)[:-4])
    found = glob.glob(os.path.join(dest, "boot", "vmlinuz-*"))
    if found:
        return found[0]
    os.makedirs(dest, exist_ok=True)
    tar = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", deb], stdout=subprocess.PIPE)
    res = subprocess.run(["tar", "-x", "-C", dest, "--wildcards", "./boot/vmlinuz-*"], stdin=tar.stdout,
                         capture_output=True, text=True)
    tar.stdout.close()
    if tar.wait() != 0 or res.returncode != 0:
        raise UserError("%s: cannot unpack the kernel image: %s" % (deb, res.stderr.strip()))
    found = glob.glob(os.path.join(dest, "boot", "vmlinuz-*"))
    if not found:
        raise UserError("%s: holds no boot/vmlinuz-*" % deb)
    return found[0]


def resolve_kernel(spec, cache):
    """(label, vmlinuz path, package) for a kernel given on the command line."""
    if os.path.isfile(spec):
        if spec.endswith(".deb"):
            path = _vmlinuz_from_deb(os.path.abspath(spec), cache)
            return os.path.basename(path)[len("vmlinuz-"):], path, os.path.basename(spec)
        return os.path.basename(spec), os.path.abspath(spec), None
    pkg = _package_for(spec)
    os.makedirs(cache, exist_ok=True)
    debs = glob.glob(os.path.join(cache, pkg + "_*.deb"))
    if not debs:
        print("pagelab: fetching %s" % pkg, file=sys.stderr)
        res = subprocess.run(["apt-get", "download", pkg], cwd=cache, capture_output=True, text=True)
        debs = glob.glob(os.path.join(cache, pkg + "_*.deb"))
        if res.returncode != 0 or not debs:
            raise UserError("apt-get download %s failed: %s" % (pkg, (res.stderr.strip().splitlines() or ["?"])[-1]))
    path = _vmlinuz_from_deb(debs[0], cache)
    return os.path.basename(path)[len("vmlinuz-"):], path, os.path.basename(debs[0])


# ---- the guest ----

def build_guest(repo, build):
    """Static pagelab-conform, pagelab-bench and the init; returns their paths."""
    targets = ["%s/%s" % (build, t) for t in ("pagelab-conform", "pagelab-bench", "pagelab-init")]
    res = subprocess.run(["make", "-C", repo, "STATIC=1", "BUILD=%s" % build] + targets,
                         capture_output=True, text=True)
    if res.returncode != 0:
        tail = "\n".join(res.stdout.splitlines()[-5:] + res.stderr.splitlines()[-5:])
        raise UserError("static build for the guest failed:\n%s" % tail)
    return dict(zip(("conform", "bench", "init"), [os.path.join(repo, t) if not os.path.isabs(t) else t
                                                   for t in targets]))


def _cpio_entry(name, mode, data=b"", rdev=(0, 0), ino=[0]):
    ino[0] += 1
    name_b = name.encode() + b"\0"
    fields = (ino[0], mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(name_b), 0)
    head = b"070701" + b"".join(b"%08X" % f for f in fields)
    out = head + name_b
    out += b"\0" * (-len(out) % 4)
    out += data + b"\0" * (-len(data) % 4)
    return out


def make_initramfs(binaries, path):
    """A newc cpio archive: /init, the binaries, the mount points and /dev/console."""
    parts = [_cpio_entry(d, 0o040755) for d in ("dev", "proc", "sys", "tmp", "bin")]
    parts.append(_cpio_entry("dev/console", 0o020600, rdev=(5, 1)))
    for name, src in (("init", binaries["init"]), ("pagelab-conform", binaries["conform"]),
                      ("pagelab-bench", binaries["bench"])):
        with open(src, "rb") as f:
            parts.append(_cpio_entry(name, 0o100755, f.read()))
    parts.append(_cpio_entry("TRAILER!!!", 0))
    atomic_write_bytes(path, b"".join(parts))


def _qemu_cmd(accel, kernel, initrd, append, memory, cpus):
    return ["qemu-system-x86_64", "-accel", accel, "-cpu", "host" if accel == "kvm" else "max",
            "-m", memory, "-smp", str(cpus), "-display", "none", "-monitor", "none", "-serial", "stdio",
            "-no-reboot", "-kernel", kernel, "-initrd", initrd, "-append", append]


class Console:
    """What the guest sent: marker statuses, decoded files, and the raw log."""

    def __init__(self, log):
        self.log, self.status, self.files, self.alive, self.done = log, {}, {}, False, False
        self._name, self._b64 = None, []

    def feed(self, line, on_other):
        self.log.write(line + "\n")
        m = MARK.match(line)
        if not m:
            if self._name is not None:
                self._b64.append(line.strip())
            else:
                on_other(line)
            return
        kind, name, num = m.group(1), m.group(2), int(m.group(3))
        if kind == "alive":
            self.alive = True
        elif kind == "status":
            self.status[name] = num
        elif kind == "file":
            self._name, self._b64 = name, []
        elif kind == "end" and self._name == name:
            try:
                self.files[name] = base64.b64decode("".join(self._b64), validate=True)
            except ValueError:
                self.status[name + ".decode"] = 1
            self._name = None
        elif kind == "done":
            self.done = True


def boot(cmd, timeout, log_path, on_other=lambda line: None, stop_when_alive=False):
    """Run QEMU until the guest powers off or timeout; returns (Console, exit code, stderr tail, timed out)."""
    with open(log_path, "w", errors="replace") as log:
        con = Console(log)
        try:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        except OSError as e:
            raise UserError("cannot start %s: %s" % (cmd[0], e.strerror))
        deadline, buf, err, timed_out = time.monotonic() + timeout, b"", b"", False
        streams = [proc.stdout, proc.stderr]
        while streams:
            left = deadline - time.monotonic()
            if left <= 0 or (stop_when_alive and con.alive):
                timed_out = not con.alive
                proc.kill()
                break
            ready, _, _ = select.select(streams, [], [], min(left, 1.0))
            for s in ready:
                chunk = os.read(s.fileno(), 65536)
                if not chunk:
                    streams.remove(s)
                elif s is proc.stderr:
                    err = (err + chunk)[-4000:]
                else:
                    buf += chunk
                    *lines, buf = buf.split(b"\n")
                    for ln in lines:
                        con.feed(ln.decode("utf-8", "replace").rstrip("\r"), on_other)
        code = proc.wait()
    return con, code, err.decode("utf-8", "replace").strip(), timed_out


def choose_accel(want, kernel, initrd, workdir):
    """('kvm'|'tcg', reason): KVM only when a guest really comes alive with it."""
    if want == "tcg":
        return "tcg", "asked for with --accel tcg"
    if not os.path.exists("/dev/kvm"):
        reason = "no /dev/kvm"
    elif not os.access("/dev/kvm", os.R_OK | os.W_OK):
        reason = "/dev/kvm is not accessible to this user"
    else:
        cmd = _qemu_cmd("kvm", kernel, initrd, "console=ttyS0 panic=-1 pagelab.mode=alive", "512M", 1)
        con, code, err, _ = boot(cmd, ALIVE_TIMEOUT_S, os.path.join(workdir, "kvm-probe.log"), stop_when_alive=True)
        if con.alive:
            return "kvm", "a guest booted with KVM"
        reason = "a KVM guest did not come alive (%s)" % ((err.splitlines() or ["no output within %d s" % ALIVE_TIMEOUT_S])[-1])
    if want == "kvm":
        raise UserError("--accel kvm: %s" % reason)
    return "tcg", reason + ": using TCG"


# ---- one kernel ----

def _append(args):
    words = ["console=ttyS0", "panic=-1", "loglevel=4", "pagelab.profile=%s" % args.profile]
    parts = [p for p, off in (("conform", args.no_conform), ("perf", args.no_perf)) if not off]
    words.append("pagelab.parts=%s" % ",".join(parts))
    if args.filter:
        words.append("pagelab.filter=%s" % args.filter)
    if args.bench_filter:
        words.append("pagelab.bench_filter=%s" % args.bench_filter)
    if any(" " in w for w in words):
        raise UserError("filters for the guest cannot contain spaces")
    return " ".join(words)


def _part_status(con, name, result_file, timed_out):
    if result_file not in con.files:
        return "interrupted" if timed_out else "died"
    return "ok" if con.status.get(name) == 0 else "completed with failures"


def run_kernel(args, repo, argv, label, vmlinuz, package, initrd, accel, reason):
    from .runcmd import RunDir, _finish, _new_dir
    run_id = "%s-qemu-%s-%s" % (time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()), label, accel)
    path, started = _new_dir(args.out or args.results, os.path.join(args.out or args.results, run_id))
    host = hostenv.capture(repo)
    rd = RunDir(path, argv, args.profile, host, started)
    qemu = {"kernel": label, "kernel_image": vmlinuz, "kernel_package": package, "accel": accel,
            "accel_reason": reason, "memory": args.memory, "cpus": args.cpus}
    rd.manifest["qemu"] = qemu
    atomic_write_json(rd.file("env.json"), dict(host, qemu=qemu))
    cmd = _qemu_cmd(accel, vmlinuz, initrd, _append(args), args.memory, args.cpus)
    timeout = args.timeout or (1800 if accel == "kvm" else 5400)
    rd.part("boot", status="running", command=cmd, timeout_s=timeout)
    print("pagelab: kernel %s under QEMU/%s -> %s" % (label, accel.upper(), path), file=sys.stderr)
    progress = Progress(sys.stderr)
    progress.start("guest %s" % label, None)

    def other(line):
        m = re.match(r"^([a-z][a-z0-9_]*/[A-Za-z0-9_./:-]+)", line.strip())
        if m:
            progress.step(m.group(1), unique=True)
    t0 = time.monotonic()
    con, code, err, timed_out = boot(cmd, timeout, rd.file("logs/console.log"), other)
    progress.finish()
    for name, data in con.files.items():
        atomic_write_bytes(rd.file(name), data)
    rd.part("boot", status="ok" if con.done else ("timed out" if timed_out else "died"), exit_status=code,
            seconds=round(time.monotonic() - t0, 1), **({"stderr": err[-500:]} if err else {}))
    statuses = {"boot": "ok" if con.alive else "died"}
    if not args.no_conform:
        statuses["conformance"] = _part_status(con, "conform", "conformance.json", timed_out)
        rd.part("conformance", status=statuses["conformance"], exit_status=con.status.get("conform"))
    if not args.no_perf:
        statuses["perf"] = _part_status(con, "perf", "perf.json", timed_out)
        rd.part("perf", status=statuses["perf"], exit_status=con.status.get("perf"))
    _finish(rd, statuses, args)
    return path


def main(args, repo, argv):
    if not shutil.which("qemu-system-x86_64"):
        raise UserError("qemu-system-x86_64 not found (Debian: apt-get install qemu-system-x86)")
    if os.uname().machine != "x86_64":
        raise UserError("pagelab kernels boots x86-64 kernels and needs an x86-64 host build")
    build = os.path.join(repo, "build", "static")
    kernels = [resolve_kernel(spec, args.cache) for spec in args.kernels]
    bins = build_guest(repo, build)
    initrd = os.path.join(build, "initramfs.cpio")
    make_initramfs(bins, initrd)
    accel, reason = choose_accel(args.accel, kernels[0][1], initrd, build)
    print("pagelab: accelerator %s (%s)" % (accel, reason), file=sys.stderr)
    paths = [run_kernel(args, repo, argv, label, vmlinuz, pkg, initrd, accel, reason)
             for label, vmlinuz, pkg in kernels]
    if len(paths) > 1:
        from .model import load_run
        from .report import write_report
        out = os.path.join(args.out or args.results, "compare-kernels-%s" % time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
        try:
            print(write_report([load_run(p) for p in paths], out, "pagelab: %d kernels under QEMU" % len(paths)))
        except (OSError, ValueError) as e:
            warn("comparison failed: %s" % e)
    return 0
