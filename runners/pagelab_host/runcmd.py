"""`pagelab run`: build, run conformance and perf on this machine, write the run directory and its report."""
import datetime
import os
import re
import signal
import subprocess
import sys

from . import MANIFEST_SCHEMA, hostenv
from .errors import UserError, warn
from .fsutil import atomic_path, atomic_write_json
from .model import check_conformance, check_perf, load_run, read_json
from .progress import Progress, run_streaming

TAP_LINE = re.compile(r"^(not ok|ok)\b\s*\d*\s*-?\s*(\S*)")
TAP_PLAN = re.compile(r"^1\.\.(\d+)")
BENCH_NAME = re.compile(r"^([a-z][a-z0-9_]*/[A-Za-z0-9_./:-]+)")


def _utc():
    return datetime.datetime.now(datetime.timezone.utc)


class RunDir:
    """The run directory and its manifest, rewritten atomically after every step."""

    def __init__(self, path, argv, profile, host_env, started):
        self.path = path
        os.makedirs(os.path.join(path, "logs"), exist_ok=True)
        self.manifest = {
            "schema": MANIFEST_SCHEMA, "run_id": os.path.basename(path), "profile": profile,
            "command": argv, "started": started.isoformat(timespec="seconds"), "finished": None,
            "state": "running", "complete": False, "parts": {}, "files": {}, "host_env": host_env,
        }
        self.save()

    def file(self, name):
        return os.path.join(self.path, name)

    def part(self, name, **info):
        self.manifest["parts"].setdefault(name, {}).update(info)
        self.save()

    def save(self):
        files = {}
        for root, _, names in os.walk(self.path):
            for n in names:
                if not n.startswith(".") and n != "manifest.json":
                    rel = os.path.relpath(os.path.join(root, n), self.path)
                    files[rel] = os.path.getsize(os.path.join(root, n))
        self.manifest["files"] = dict(sorted(files.items()))
        atomic_write_json(self.file("manifest.json"), self.manifest)


def _exec_part(rd, name, cmd, outputs, stdout_to, progress, parse):
    """Run one target binary; its result files are written to temporary names and renamed when it ends."""
    started = _utc()
    rd.part(name, status="running", command=cmd, started=started.isoformat(timespec="seconds"))
    res = run_streaming(cmd, atomic_path(rd.file(stdout_to)), rd.file("logs/%s.stderr" % name), progress, parse)
    for final in outputs + [rd.file(stdout_to)]:
        tmp = atomic_path(final)
        if os.path.exists(tmp):
            os.replace(tmp, final)
    info = {"exit_status": res.returncode, "finished": _utc().isoformat(timespec="seconds"),
            "seconds": round((_utc() - started).total_seconds(), 1)}
    if res.signal:
        info["signal"] = res.signal
    rd.part(name, **info)
    return res


def _judge(rd, name, res, result_file, validate):
    """ok / failures / died / interrupted, from the exit status and whether the result file reads."""
    err = None
    if os.path.exists(result_file):
        doc, err = read_json(result_file)
        err = err or validate(doc, result_file)
    else:
        err = "%s: not written" % result_file
    if res.interrupted:
        status = "interrupted"
    elif res.signal or err:
        status = "died"
    else:
        status = "ok" if res.returncode == 0 else "completed with failures"
    rd.part(name, status=status, **({"problem": err} if err else {}))
    return status


def _conform(rd, build, args, progress):
    binary = os.path.join(build, "pagelab-conform")
    if not os.access(binary, os.X_OK):
        rd.part("conformance", status="not built", note="%s does not exist" % binary)
        return "not built"
    out = rd.file("conformance.json")
    cmd = [binary, "-j", str(max(1, os.cpu_count() or 1)), "--json", atomic_path(out)] + args.conform_arg
    progress.start("conformance", None)

    def parse(line):
        m = TAP_PLAN.match(line)
        if m:
            progress.total = int(m.group(1))
        m = TAP_LINE.match(line)
        if m:
            progress.step(m.group(2) or "probe", failed=m.group(1) == "not ok")

    res = _exec_part(rd, "conformance", cmd, [out], "conformance.tap", progress, parse)
    progress.finish()
    return _judge(rd, "conformance", res, out, check_conformance)


def _bench_help(binary):
    try:
        res = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return res.stdout + res.stderr


def _bench_list(binary, args):
    """Names of the benchmark instances this run will execute, for the time estimate."""
    cmd = [binary, "--benchmark_list_tests=true", "--profile=%s" % args.profile] + _filter(args)
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return []
    if res.returncode != 0:
        return []
    return [ln.split()[0] for ln in res.stdout.splitlines() if BENCH_NAME.match(ln.strip())]


def _filter(args):
    return ["--benchmark_filter=%s" % args.filter] if args.filter else []


def _perf(rd, build, args, progress):
    binary = os.path.join(build, "pagelab-bench")
    if not os.access(binary, os.X_OK):
        rd.part("perf", status="not built", note="%s does not exist (the benchmark harness is not built)" % binary)
        return "not built"
    out, topo = rd.file("perf.json"), rd.file("topology.xml")
    cmd = [binary, "--benchmark_out=%s" % atomic_path(out), "--benchmark_out_format=json",
           "--profile=%s" % args.profile] + _filter(args) + args.bench_arg
    topo_flag = "--topology_out" in _bench_help(binary)
    if topo_flag:
        cmd.append("--topology_out=%s" % atomic_path(topo))
    rd.part("perf", topology_flag="supported" if topo_flag else "not supported by this pagelab-bench")
    names = _bench_list(binary, args)
    known = set(names)
    progress.start("perf", len(names) or None)

    def parse(line):
        for tok in line.split()[:2]:
            base = re.sub(r"_(mean|median|stddev|cv)$", "", tok)
            if base in known or (not known and BENCH_NAME.match(tok)):
                progress.step(base, unique=True)
                return

    res = _exec_part(rd, "perf", cmd, [out, topo], "logs/perf.stdout", progress, parse)
    progress.finish()
    status = _judge(rd, "perf", res, out, check_perf)
    if not os.path.exists(topo):
        _lstopo(rd, topo)
    return status


def _lstopo(rd, topo):
    """Topology from hwloc's own tool when the benchmark binary did not write it."""
    from shutil import which
    tool = which("lstopo-no-graphics") or which("lstopo")
    if not tool:
        rd.part("topology", status="not recorded", note="no --topology_out in pagelab-bench and no lstopo")
        return
    try:
        res = subprocess.run([tool, "--of", "xml", atomic_path(topo)], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        rd.part("topology", status="failed", note=str(e))
        return
    if res.returncode == 0 and os.path.exists(atomic_path(topo)):
        os.replace(atomic_path(topo), topo)
        rd.part("topology", status="ok", via=tool)
    else:
        rd.part("topology", status="failed", via=tool, exit_status=res.returncode)


def _build(rd, repo, build, progress):
    cmd = ["make", "-C", repo, "BUILD=%s" % build, "all"]
    progress.start("build", None)
    res = _exec_part(rd, "build", cmd, [], "logs/build.log", progress, lambda line: None)
    progress.finish()
    status = "ok" if res.returncode == 0 and not res.signal else ("interrupted" if res.interrupted else "failed")
    rd.part("build", status=status)
    return status


def _new_dir(results, out):
    started = _utc()
    path = out or os.path.join(results, hostenv.run_id(started))
    base, n = path, 2
    while os.path.exists(path) and os.listdir(path):
        path, n = "%s-%d" % (base, n), n + 1
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise UserError("%s: cannot create the run directory: %s" % (path, e.strerror))
    return path, started


def _term_as_interrupt(signum, frame):
    raise KeyboardInterrupt


def main(args, repo, argv):
    # A run stopped with SIGTERM is finished like Ctrl-C: marked interrupted, report written.
    signal.signal(signal.SIGTERM, _term_as_interrupt)
    args.build = os.path.abspath(args.build)
    path, started = _new_dir(args.results, args.out)
    host_env = hostenv.capture(repo)
    rd = RunDir(path, argv, args.profile, host_env, started)
    atomic_write_json(rd.file("env.json"), host_env)
    progress = Progress(sys.stderr)
    print("pagelab: run %s -> %s" % (rd.manifest["run_id"], path), file=sys.stderr)
    parts = [("build", not args.no_build, lambda: _build(rd, repo, args.build, progress)),
             ("conformance", not args.no_conform, lambda: _conform(rd, args.build, args, progress)),
             ("perf", not args.no_perf, lambda: _perf(rd, args.build, args, progress))]
    statuses = {}
    try:
        for name, wanted, fn in parts:
            if wanted:
                statuses[name] = fn()
                if statuses[name] == "interrupted":
                    break
    except KeyboardInterrupt:
        statuses["interrupt"] = "interrupted"
    return _finish(rd, statuses, args)


def _finish(rd, statuses, args):
    bad = {k: v for k, v in statuses.items() if v not in ("ok", "completed with failures")}
    rd.manifest.update(finished=_utc().isoformat(timespec="seconds"), complete=not bad,
                       state="complete" if not bad else "incomplete: " + ", ".join(
                           "%s %s" % (k, v) for k, v in bad.items()))
    rd.save()
    from .report import write_report
    try:
        html = write_report([load_run(rd.path)], rd.path, "pagelab run %s" % rd.manifest["run_id"])
    except (OSError, ValueError) as e:
        warn("%s: report failed: %s" % (rd.path, e))
        html = None
    rd.part("report", status="ok" if html else "failed")
    for k, v in statuses.items():
        print("pagelab: %-12s %s" % (k, v), file=sys.stderr)
    print("pagelab: %s" % rd.manifest["state"], file=sys.stderr)
    if html:
        print(html)
    return 130 if "interrupted" in statuses.values() else (0 if rd.manifest["complete"] else 1)

