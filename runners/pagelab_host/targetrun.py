"""What a target gets while it runs: the run directory, the options, progress,
and the few calls that record a part (see targets/__init__.py for the contract)."""
import json
import os
import subprocess
import sys
import threading
import time

from .errors import UserError
from .fsutil import atomic_path, atomic_write_bytes
from .model import read_json
from .plan import judge, merge_perf, suite_binaries, summary
from .progress import Progress, run_streaming
from .rundir import utc


class TargetFailed(Exception):
    """The target itself failed (build, boot, hang, crash): one line saying why."""


class BadRequest(TargetFailed):
    """What the user asked selects nothing on this target (a --probes or --filter typo), found once its
    binaries were built: the run stops before any part, and pagelab exits 2."""


# Targets running side by side share build directories: one make at a time.
_MAKE_LOCK = threading.Lock()


class TargetRun:
    def __init__(self, rundir, repo, options, build_root, no_build, timeout, stream=sys.stderr, cancel=None):
        self.rundir = rundir
        self.repo = repo
        self.options = options
        self.build_root = build_root    # builds go here (targets/<label>/ for other than this machine's)
        self.no_build = no_build        # use what is built, never run make
        self.timeout = timeout          # seconds for the whole target
        self.t0 = time.monotonic()
        self.progress = Progress(stream)
        self.stream = stream
        # Set when the run is interrupted: a target running in a thread (no KeyboardInterrupt there) stops.
        self.cancel = cancel or threading.Event()

    # ---- time ----
    def remaining(self):
        return max(0.0, self.timeout - (time.monotonic() - self.t0))

    # ---- the run directory ----
    def path(self, name):
        """Where a run-directory file is on the host."""
        return self.rundir.file(name)

    def store(self, name, data):
        """Write a result file brought back from the target (atomically)."""
        atomic_write_bytes(self.path(name), data)

    def say(self, msg):
        self.stream.write("pagelab: %s\n" % msg)
        self.stream.flush()

    # ---- preparing binaries ----
    def make(self, build, variables=(), binaries=None):
        """Build the suite binaries into build (make BUILD=build VARIABLES...); {name: path}. binaries:
        by default those the plan's parts need. The log is logs/build.log; a failed build raises TargetFailed."""
        binaries = tuple(binaries or suite_binaries(self.options))
        targets = [os.path.join(build, b) for b in binaries]
        if self.no_build:
            return dict(zip(binaries, targets))
        with _MAKE_LOCK:
            return self._make(build, variables, binaries, targets)

    def _make(self, build, variables, binaries, targets):
        cmd = ["make", "-C", self.repo, "-j2", "BUILD=%s" % build] + list(variables) + targets
        self.rundir.part("build", status="running", command=cmd, started=utc().isoformat(timespec="seconds"))
        self.progress.start("build", None)
        t0 = time.monotonic()
        res = run_streaming(cmd, self.path("logs/build.log"), self.path("logs/build.stderr"), self.progress,
                            lambda line: self.progress.step(line.strip()[:60]) if line.startswith("  ") else None,
                            deadline=time.monotonic() + min(self.remaining(), 1800))
        self.progress.finish()
        ok = res.returncode == 0 and not res.signal and not res.timed_out
        self.rundir.part("build", status="ok" if ok else ("interrupted" if res.interrupted else "failed"),
                         exit_status=res.returncode, seconds=round(time.monotonic() - t0, 1))
        if res.interrupted:
            raise KeyboardInterrupt
        if not ok:
            raise TargetFailed("build failed (%s): see logs/build.stderr" % " ".join(variables or ["native"]))
        return dict(zip(binaries, targets))

    # ---- recording parts ----
    def begin(self, part, command=None, total=None):
        """A part starts on the target: progress line (total: steps expected, if known) and manifest entry."""
        info = {"status": "running", "started": utc().isoformat(timespec="seconds")}
        if command:
            info["command"] = command
        self.rundir.manifest["parts"].pop(part.name, None)  # a resumed part starts a fresh record
        self.rundir.part(part.name, **info)
        self.progress.start(part.label, total)
        self._parse = part.progress(self.progress)
        self._begun = time.monotonic()

    def output(self, part, line):
        """One line of the part's stdout, as the target sends it (for progress only)."""
        self._parse(line)

    def end(self, part, exit_status, signal=None, interrupted=False, timed_out=False, note=None):
        """A part ended: its files are in the run directory (or missing); judge and record it."""
        self.progress.finish()
        if part.resume_from is not None:
            self._merge_resumed(part)
        status, problem = judge(part, self.rundir.path, exit_status, signal, interrupted, timed_out)
        said = last_line(self.path(part.stderr)) if problem else None
        if said:
            problem = "%s; it said: %s" % (problem, said)  # "no probe matches the filters", a loader error
        info = {"status": status, "exit_status": exit_status, "finished": utc().isoformat(timespec="seconds"),
                "seconds": round(time.monotonic() - self._begun, 1)}
        for k, v in (("signal", signal), ("problem", problem), ("note", note)):
            if v:
                info[k] = v
        info.update(summary(part, self.rundir.path))
        self.rundir.part(part.name, **info)
        return status

    def _merge_resumed(self, part):
        """A resumed part wrote only what was missing: merge it into the results the run had."""
        path = self.path(part.results[0])
        new, problem = read_json(path) if os.path.exists(path) else (None, "not written")
        if problem or new == part.resume_from or part.validate(new, path):
            merged = part.resume_from  # nothing new came back: the results stay as they were
        else:
            merged = merge_perf(part.resume_from, new)
        atomic_write_bytes(path, (json.dumps(merged, indent=2) + "\n").encode("utf-8"))

    def not_run(self, part, why, status="not run"):
        self.rundir.part(part.name, status=status, note=why)

    # ---- running a part as a local command ----
    def exec_part(self, part, argv, outputs, total=None):
        """Run argv here (the target's own launcher in front, if any); outputs: {run-dir name: path the
        command writes}, renamed into the run directory when it ends. Returns the part's status."""
        self.begin(part, argv, total)
        res = run_streaming(argv, atomic_path(self.path(part.stdout)), self.path(part.stderr), self.progress,
                            lambda line: self.output(part, line), deadline=time.monotonic() + self.remaining())
        for name, written in list(outputs.items()) + [(part.stdout, atomic_path(self.path(part.stdout)))]:
            if os.path.exists(written):
                os.replace(written, self.path(name))
        status = self.end(part, res.returncode, res.signal, res.interrupted, res.timed_out)
        if res.interrupted:
            raise KeyboardInterrupt
        if res.timed_out:
            raise TargetFailed("%s did not finish within the target's %d s" % (part.name, self.timeout))
        return status


def last_line(path, limit=300):
    """The last non-empty line of a log (at most limit characters), or None."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 4096))
            lines = [ln.strip() for ln in f.read().decode("utf-8", "replace").splitlines() if ln.strip()]
    except OSError:
        return None
    return lines[-1][:limit] if lines else None


def which_or_error(command, package):
    from shutil import which
    path = which(command)
    if not path:
        raise UserError("%s not found (Debian: apt-get install %s)" % (command, package))
    return path


def tool_version(cmd):
    """First line of `cmd --version`, or None."""
    try:
        res = subprocess.run(cmd + ["--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = (res.stdout or res.stderr).strip().splitlines()
    return lines[0].strip() if lines else None
