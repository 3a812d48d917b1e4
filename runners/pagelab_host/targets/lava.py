"""lava:SERVER#DEVICE_TYPE: a job in a LAVA lab, submitted and read back through the server's API.

SERVER is the server's URL or the name of a lavacli identity; the token comes
from PAGELAB_LAVA_TOKEN or that identity. The job (see _lava_job.py) boots a
kernel with the same initramfs a kernel target boots: static suite, guest init
and plan. The job's log carries the console, whose markers give the parts and
their files exactly as for a local guest (_guest.Console); LAVA's own results
(a test case per probe, a measurement per benchmark line) are kept beside them.

The files the job needs must be reachable by the lab's worker: they are
written to --lava-artifacts DIR[=URL] (default: a directory of this machine,
as file:// URLs, which only a worker on this machine can read).
"""
import datetime
import hashlib
import json
import os
import re
import time
import urllib.parse

from ..errors import UserError
from ..fsutil import atomic_write_bytes, atomic_write_json
from ..targetrun import TargetFailed
from . import Need
from . import _debian, _lava_api, _lava_job
from ._arch import arch, build_dir
from ._guest import Console, GuestTarget, guest_plan
from .kernel import KERNEL_ARCHES

POLL_S = 5
LAVA_COMMON = "/usr/lib/python3/dist-packages/lava_common"
# The kernel architecture (kernel.py) whose Debian kernels boot on a qemu device of each build architecture.
QEMU_KERNEL_ARCH = {"amd64": "amd64", "aarch64": "arm64"}


def parse_target(arg, spec):
    """(server, device type) from 'SERVER#DEVICE_TYPE'."""
    server, sep, device_type = (arg or "").rpartition("#")
    if not sep or not server or not re.match(r"^[A-Za-z0-9_.+-]+$", device_type):
        raise UserError("target %s: lava:SERVER#DEVICE_TYPE (SERVER: the server's URL or a lavacli identity)" % spec)
    return server, device_type


class Artifacts:
    """Where the job's files go (DIR) and how the lab's worker reaches them (URL; default file://DIR)."""

    def __init__(self, text, default_dir):
        path, sep, url = (text or "").partition("=")
        self.dir = os.path.abspath(path or default_dir)
        self.url = (url.rstrip("/") + "/") if sep else "file://" + urllib.parse.quote(self.dir) + "/"
        if sep and not re.match(r"^(https?|file|ftp)://", url):
            raise UserError("--lava-artifacts %s: URL must be http(s)://, ftp:// or file://" % text)

    def publish(self, path, suffix):
        """Copy a file in under a name that changes with its content; its URL."""
        with open(path, "rb") as f:
            data = f.read()
        name = "pagelab-%s%s" % (hashlib.sha256(data).hexdigest()[:16], suffix)
        if not os.path.exists(os.path.join(self.dir, name)):
            atomic_write_bytes(os.path.join(self.dir, name), data)
        return self.url + name


def _is_url(text):
    return bool(re.match(r"^(https?|file|ftp)://", text or ""))


class LavaTarget(GuestTarget):
    kind = "lava"
    usage = "lava:SERVER#DEVICE_TYPE"
    summary = "a job in a LAVA lab (SERVER: URL or lavacli identity), submitted and read back through its API"
    examples = ("http://localhost/#qemu",)
    default_timeout = 7200
    runs_elsewhere = True

    def __init__(self, arg, opts):
        super().__init__(arg, opts)
        self.server_name, self.device_type = parse_target(arg, self.spec)
        self.boot = getattr(opts, "lava_boot", None) or ("qemu" if self.device_type.startswith("qemu") else None)
        if self.boot is None:
            raise UserError("target %s: say how device type %s boots: --lava-boot u-boot or grub"
                            % (self.spec, self.device_type))
        self.arch = arch(getattr(opts, "lava_arch", None) or "amd64", self.spec)
        self.kernel = getattr(opts, "lava_kernel", None) or ("6.1" if self.boot == "qemu" else None)
        self.dtb = getattr(opts, "lava_dtb", None)
        if self.kernel is None:
            raise UserError("target %s: name the kernel the board boots: --lava-kernel URL" % self.spec)
        _lava_job.check_boot(self.boot, self.arch.name, self.dtb)
        self.server = self.job_id = self.job = None
        self.kernel_source = None
        self.part_times = {}

    def needs(self):
        return [Need(LAVA_COMMON, "lava-common", "validates the job")] + self.arch.build_needs()

    def label(self):
        host = urllib.parse.urlsplit(self.server_name).hostname if "://" in self.server_name else self.server_name
        return "lava-%s-%s" % (re.sub(r"[^A-Za-z0-9_.-]", "_", host or "server"), self.device_type)

    def build_dir(self, ctx):
        return build_dir(ctx, "static-%s" % self.arch.name)

    def make_variables(self):
        return self.arch.make_variables()

    def jobs(self):
        return 2

    def prepare(self, ctx):
        try:
            self.server = _lava_api.connect(self.server_name)
        except UserError as e:
            raise TargetFailed(str(e))
        self.artifacts = Artifacts(getattr(self.opts, "lava_artifacts", None),
                                   build_dir(ctx, "lava-artifacts"))
        super().prepare(ctx)

    def _kernel_url(self, ctx):
        if _is_url(self.kernel):
            self.kernel_source = self.kernel
            return self.kernel
        if os.path.isfile(self.kernel):
            self.kernel_source = os.path.abspath(self.kernel)
            return self.artifacts.publish(self.kernel, "-" + os.path.basename(self.kernel))
        karch = KERNEL_ARCHES.get(QEMU_KERNEL_ARCH.get(self.arch.name, ""))
        if self.boot != "qemu" or karch is None or not re.match(r"^\d+\.\d+$", self.kernel):
            raise TargetFailed("--lava-kernel %s: a URL, a file, or (qemu devices) a Debian series such as 6.1"
                               % self.kernel)
        ctx.say("%s: resolving Debian's %s %s kernel" % (self.spec, karch.name, self.kernel))
        try:
            image, package = _debian.fetch_kernel(self.kernel, karch.debian, karch.flavours)
        except UserError as e:
            raise TargetFailed(str(e))
        self.kernel_source = package
        return self.artifacts.publish(image, "-" + os.path.basename(image))

    def job_spec(self, ctx, plan, minutes, run_id=None):
        """The job for this plan; with run_id, the job is named after the run and says so in its metadata."""
        ramdisk = self.make_root(ctx, guest_plan(plan))
        meta = {"pagelab.commit": (ctx.rundir.manifest.get("host") or {}).get("pagelab_commit", "")}
        if run_id:
            meta["pagelab.run_id"] = run_id
        return _lava_job.JobSpec(
            self.device_type, self.boot, self._kernel_url(ctx), self.artifacts.publish(ramdisk, ".cpio"),
            [p.name for p in plan], dtb_url=self.dtb, arch=self.arch.name, minutes=minutes,
            memory_mib=_mib(self.opts.memory), cpus=self.opts.cpus, name=run_id and "pagelab %s" % run_id,
            metadata=meta)

    def run(self, plan, ctx):
        run_id = ctx.rundir.manifest["run_id"]
        job = _lava_job.definition(self.job_spec(ctx, plan, max(1, int(ctx.remaining() / 60)), run_id))
        text = _lava_job.to_yaml(job)
        ctx.store("lava-job.yaml", text.encode())
        problems, notes = _lava_job.validate(job)
        self._record(ctx, validation=problems or ["valid"] + notes)
        if problems:
            raise TargetFailed("the job definition is not valid: %s" % "; ".join(problems))
        try:
            self.job_id = self.server.submit(text)
        except _lava_api.LavaError as e:
            raise TargetFailed(str(e))
        self._record(ctx, server=self.server.url, job_id=self.job_id, job_url=self.server.job_url(self.job_id),
                     device_type=self.device_type)
        ctx.say("%s: job %d submitted: %s" % (self.spec, self.job_id, self.server.job_url(self.job_id)))
        with open(ctx.path("logs/console.log"), "w", encoding="utf-8", errors="replace") as log:
            console = Console(ctx, plan, log)
            try:
                stopped = self._follow(ctx, console)
            except KeyboardInterrupt:
                self._cancel(ctx)
                self._close_parts(ctx, plan, console, "interrupted", interrupted=True)
                raise
        self._finish(ctx, plan, console, stopped)

    def _follow(self, ctx, console):
        """Read the log as it grows until the job finishes; why it was stopped early, or None."""
        line, state = 0, None
        with open(ctx.path("logs/lava-job.yaml"), "w", encoding="utf-8") as raw:
            while True:
                try:
                    entries, n = self.server.log_lines(self.job_id, line)
                    self.job = self.server.job(self.job_id)
                except _lava_api.LavaError as e:
                    raise TargetFailed("job %d: %s" % (self.job_id, e))
                line += n
                for e in entries:
                    raw.write("- %s\n" % json.dumps(e))
                    text = _lava_api.console_line(e)
                    if text is not None:
                        self._clock(text, e.get("dt"))
                        console.feed(text)
                raw.flush()
                if self.job.get("state") != state:
                    state = self.job.get("state")
                    ctx.say("%s: job %d %s" % (self.spec, self.job_id, state.lower()))
                if state == _lava_api.FINISHED and not n:
                    return None
                stop = self._wait(ctx)
                if stop:
                    self._cancel(ctx)
                    return stop

    def _clock(self, text, dt):
        """When the device began and ended each part, by the log's timestamps (the host reads them later)."""
        m = re.match(r"^=== pagelab-(begin|status) (\S+)", text)
        if m and dt:
            self.part_times.setdefault(m.group(2), {})[m.group(1)] = dt

    def _device_seconds(self, ctx):
        for name, t in self.part_times.items():
            if "begin" in t and "status" in t and name in ctx.rundir.manifest["parts"]:
                secs = (datetime.datetime.fromisoformat(t["status"]) -
                        datetime.datetime.fromisoformat(t["begin"])).total_seconds()
                ctx.rundir.part(name, seconds=round(secs, 1), seconds_from="the LAVA log's timestamps")

    def _wait(self, ctx):
        """Sleep until the next poll; why to stop instead (deadline, interrupted), or None."""
        end = time.monotonic() + POLL_S
        while time.monotonic() < end:
            if ctx.cancel.is_set():
                return "interrupted"
            if ctx.remaining() <= 0:
                return "the job did not finish within the target's %d s" % ctx.timeout
            time.sleep(0.5)
        return None

    def _cancel(self, ctx):
        why = self.server.cancel(self.job_id)
        self._record(ctx, cancelled="yes" if why is None else "cancel refused: %s" % why)

    def _finish(self, ctx, plan, console, stopped):
        self._device_seconds(ctx)
        health = (self.job or {}).get("health")
        self._record(ctx, health=health, device=(self.job or {}).get("actual_device"),
                     **self._results(ctx))
        why = stopped
        if why is None and health != "Complete":
            why = "LAVA job %d ended %s: %s" % (self.job_id, (health or "?").lower(),
                                                 (self.job or {}).get("failure_comment") or console.last or "no reason")
        elif why is None and not console.done:
            why = "the job's console never said the guest was done; last line: %s" % (console.last or "none")
        if stopped == "interrupted":
            self._close_parts(ctx, plan, console, why, interrupted=True)
            raise KeyboardInterrupt
        self._close_parts(ctx, plan, console, why, timed_out=bool(stopped))
        if why:
            raise TargetFailed(why)

    def _results(self, ctx):
        """LAVA's own test cases, kept as lava-results.json; counts per suite for the manifest."""
        try:
            cases = self.server.results(self.job_id)
        except _lava_api.LavaError as e:
            return {"results": "not read: %s" % e}
        atomic_write_json(ctx.path("lava-results.json"), cases)
        counts = {}
        for c in cases:
            suite = counts.setdefault(c.get("suite_name", "?"), {})
            suite[c.get("result")] = suite.get(c.get("result"), 0) + 1
        return {"test_cases": counts, "measurements": sum(1 for c in cases if c.get("measurement") is not None)}

    @staticmethod
    def _record(ctx, **info):
        ctx.rundir.manifest.setdefault("lava", {}).update(info)
        ctx.rundir.save()

    def describe(self):
        env = {"target": self.spec, "lava_device_type": self.device_type, "lava_boot": self.boot,
               "kernel_source": self.kernel_source, "build_arch": self.arch.name}
        if self.server:
            env["lava_server"] = self.server.url
        if self.job_id is not None:
            env.update(lava_job=self.job_id, lava_job_url=self.server.job_url(self.job_id))
        if self.job:
            env["lava_device"] = self.job.get("actual_device")
        return {k: v for k, v in env.items() if v is not None}


def _mib(text):
    m = re.match(r"^(\d+)([MG]?)$", str(text).upper())
    if not m:
        raise UserError("memory %r: a number of MiB, or with M or G" % text)
    return int(m.group(1)) * (1024 if m.group(2) == "G" else 1)


TARGET = LavaTarget


# ---- command line ----

def add_run_options(p, prefix="--lava-"):
    """The options a lava target reads (`pagelab run --lava-...`, and `pagelab lava job --...`)."""
    p.add_argument(prefix + "boot", dest="lava_boot", choices=_lava_job.BOOT_METHODS,
                   help="how the device boots (default: qemu for qemu device types)")
    p.add_argument(prefix + "arch", dest="lava_arch", default=None,
                   help="the device's architecture, for the static build (default: amd64)")
    p.add_argument(prefix + "kernel", dest="lava_kernel", metavar="KERNEL",
                   help="URL or file of the kernel to boot; for qemu devices also a Debian series (default: 6.1)")
    p.add_argument(prefix + "dtb", dest="lava_dtb", metavar="URL", help="the board's device tree (u-boot boards)")
    p.add_argument(prefix + "artifacts", dest="lava_artifacts", metavar="DIR[=URL]",
                   help="where the job's files are written, and the URL the lab's workers reach DIR by "
                        "(default: a build directory here, as file:// URLs: a worker on this machine)")


def add_parser(sub, repo):
    lv = sub.add_parser("lava", help="LAVA job definitions that run the suite",
                        description="Write LAVA job definitions that boot a kernel with the static suite in an "
                                    "initramfs and report each probe as a LAVA test case. `pagelab run --target "
                                    "lava:SERVER#DEVICE_TYPE` submits one and reads it back.")
    jsub = lv.add_subparsers(dest="lava_cmd", metavar="COMMAND")
    jsub.required = True
    j = jsub.add_parser("job", help="write (and validate offline) a job definition",
                        description="Build the static suite and its initramfs, write a LAVA job definition, and "
                                    "validate it offline: lava_common's schema, then `lava-run --validate` on the "
                                    "device type's template (qemu: deploy to tmpfs; boards: tftp with u-boot or grub).")
    j.add_argument("--device-type", required=True, help="LAVA device type (qemu, bcm2711-rpi-4-b, ...)")
    add_run_options(j, prefix="--")
    j.add_argument("--device-dict", metavar="FILE", help="the device dictionary to validate against (default: a "
                                                         "stand-in that extends the device type's template)")
    j.add_argument("--minutes", type=int, default=60, help="the job's timeout (default: %(default)s)")
    j.add_argument("--out", "-o", help="the job file (default: standard output)")
    j.add_argument("--profile", choices=("quick", "full"), default="quick", help="benchmark profile")
    j.add_argument("--no-perf", action="store_true", help="conformance only")
    j.add_argument("--no-conform", action="store_true", help="benchmarks only")
    j.add_argument("--probes", action="append", default=[], metavar="GLOB", help="only probes matching GLOB")
    j.add_argument("--filter", help="only benchmarks matching this regular expression")
    j.add_argument("--memory", default="2G", help="guest memory on qemu devices (default: %(default)s)")
    j.add_argument("--cpus", type=int, default=2, help="guest CPUs on qemu devices (default: %(default)s)")
    j.add_argument("--build", default=os.path.join(repo, "build"), help="build directory (default: %(default)s)")
    j.add_argument("--no-build", action="store_true", help="use what is built, never run make")
    j.set_defaults(conform_arg=[], bench_arg=[])
    return lv


def job_main(args, repo, argv):
    """`pagelab lava job`: the job on stdout or in --out; exit 1 when it does not validate."""
    import sys
    import tempfile
    from .. import hostenv
    from ..plan import make_plan
    from ..rundir import RunDir
    from ..runcmd import options
    from ..targetrun import TargetRun
    target = LavaTarget("offline#" + args.device_type, args)
    device_dict = _read(args.device_dict) if args.device_dict else None
    with tempfile.TemporaryDirectory(prefix="pagelab-lava-job-") as tmp:
        rd = RunDir(os.path.join(tmp, "run"), argv, args.profile, {"spec": target.spec}, hostenv.driving_host(repo))
        ctx = TargetRun(rd, repo, options(args), os.path.abspath(args.build), args.no_build, args.minutes * 60)
        target.artifacts = Artifacts(args.lava_artifacts, build_dir(ctx, "lava-artifacts"))
        try:
            GuestTarget.prepare(target, ctx)
            job = _lava_job.definition(target.job_spec(ctx, make_plan(ctx.options, target.jobs()), args.minutes))
        except TargetFailed as e:
            raise UserError(str(e))
    problems, notes = _lava_job.validate(job, device_dict)
    for n in notes:
        sys.stderr.write("pagelab: %s\n" % n)
    text = _lava_job.to_yaml(job)
    if args.out:
        atomic_write_bytes(args.out, text.encode())
    else:
        sys.stdout.write(text)
    for p in problems:
        sys.stderr.write("pagelab: error: %s\n" % p)
    return 1 if problems else 0


def _read(path):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        raise UserError("%s: %s" % (path, e.strerror))
