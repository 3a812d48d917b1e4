#!/usr/bin/python3
"""How stable are the benchmark figures? Runs pagelab-bench (the quick profile
by default) or reads perf.json files, and prints the distribution of the
coefficient of variation over repetitions: the share of benchmarks under 3%,
5% and 10%, and every benchmark at 10% or more with the shape of its sample
(modes, outliers and what set them apart, as the harness recorded it).

    tools/perf_stability.py                       # run the quick profile here, then report
    tools/perf_stability.py --json a.json b.json  # report on existing results (e.g. before/after)
    tools/perf_stability.py -- --benchmark_filter=^madvise/   # extra pagelab-bench flags
    tools/perf_stability.py --recheck 3           # then run each benchmark at 10% or more again,
                                                  # 3 times in fresh processes: does it recur?

A sample that is spread once but tight in every re-run met something
transient (on a virtual machine, usually the host); one that recurs is the
benchmark's own, or the machine's steady state.

A measurement, not a test: the numbers mean something only on a quiet machine.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
THRESHOLDS = (0.03, 0.05, 0.10)


def load(path):
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        sys.exit("perf_stability: %s: %s" % (path, e))
    if not isinstance(doc, dict) or not isinstance(doc.get("benchmarks"), list):
        sys.exit("perf_stability: %s: not a benchmark results file" % path)
    return doc


def instances(doc):
    """{name: {"cv", "iterations", "distribution"}} for instances with a cv; and the skipped names."""
    out, skipped = {}, set()
    for b in doc["benchmarks"]:
        name = b.get("run_name") or b.get("name")
        if b.get("error_occurred"):
            skipped.add(name)
        elif b.get("run_type") == "iteration":
            out.setdefault(name, {"iterations": []})["iterations"].append(b.get("iterations"))
        elif b.get("aggregate_name") == "cv":
            out.setdefault(name, {"iterations": []})["cv"] = b.get("real_time")
        elif b.get("aggregate_name") == "median":
            out.setdefault(name, {"iterations": []})["distribution"] = b.get("distribution")
    return {k: v for k, v in out.items() if isinstance(v.get("cv"), (int, float))}, skipped


def describe(dist):
    """One line: the shape, the modes and the outliers with their reasons."""
    if not isinstance(dist, dict):
        return "no shape recorded"
    parts = [dist.get("shape", "?")]
    for m in dist.get("modes", []):
        why = " (%s)" % m["differs_by"] if m.get("differs_by") else ""
        parts.append("%d at %.4g ns%s" % (m["count"], m["real_time"], why))
    for o in dist.get("outliers", []):
        parts.append("rep %d %.2fx (%s)" % (o["repetition"], o["ratio_to_main_mode"], o.get("differs_by", "")))
    return "; ".join(parts)


def report(path, doc, out):
    inst, skipped = instances(doc)
    n = len(inst)
    ctx = doc.get("context", {})
    print("== %s" % path, file=out)
    print("   %s, profile %s, %s back-end, load %s; %d benchmarks with a cv, %d skipped%s" % (
        ctx.get("date", "?"), ctx.get("profile", "?"), ctx.get("backend", "?"),
        "/".join("%.2f" % x for x in ctx.get("load_avg", [])), n, len(skipped),
        "" if ctx.get("benchmarks_complete", True) else ", INCOMPLETE"), file=out)
    if not n:
        return
    for t in THRESHOLDS:
        k = sum(1 for v in inst.values() if v["cv"] < t)
        print("   cv < %2d%%: %3d of %d (%.0f%%)" % (t * 100, k, n, 100.0 * k / n), file=out)
    shapes = {}
    for v in inst.values():
        s = (v.get("distribution") or {}).get("shape", "none")
        shapes[s] = shapes.get(s, 0) + 1
    print("   shapes: %s" % ", ".join("%s %d" % kv for kv in sorted(shapes.items())), file=out)
    worst = sorted(((v["cv"], k) for k, v in inst.items() if v["cv"] >= THRESHOLDS[-1]), reverse=True)
    print("   cv >= 10%%: %d" % len(worst), file=out)
    for cv, k in worst:
        its = inst[k]["iterations"]
        print("   %6.1f%%  %-44s it/rep %-6s %s" % (cv * 100, k, min(its) if its else "?",
                                                    describe(inst[k].get("distribution"))), file=out)
    return [k for _, k in worst]


def recheck(build, names, times, profile, extra, out):
    """Run each benchmark `times` more times, each in a fresh process; print its cvs and whether 10% recurs."""
    exe = os.path.join(build, "pagelab-bench")
    if not os.access(exe, os.X_OK):
        sys.exit("perf_stability: %s is not built (make first); --recheck runs it" % exe)
    print("== re-run %d times each, fresh processes" % times, file=out)
    for name in names:
        cvs = []
        for _ in range(times):
            fd, path = tempfile.mkstemp(prefix="perf-stability-", suffix=".json")
            os.close(fd)
            cmd = [exe, "--profile=" + profile, "--benchmark_filter=^%s$" % re.escape(name),
                   "--benchmark_out=" + path] + extra
            with open(os.devnull, "w") as null:
                rc = subprocess.call(cmd, stdout=null, stderr=null)
            try:
                with open(path, encoding="utf-8") as f:
                    cv = instances(json.load(f))[0].get(name, {}).get("cv") if rc != 2 else None
            except (OSError, ValueError):
                cv = None
            os.unlink(path)
            cvs.append(cv)
        got = [c for c in cvs if c is not None]
        high = sum(1 for c in got if c >= THRESHOLDS[-1])
        verdict = ("no result" if not got else
                   "transient: under 10%% in all %d re-runs" % len(got) if high == 0 else
                   "recurs: 10%% or more in %d of %d re-runs" % (high, len(got)))
        print("   %-44s %-24s %s" % (name, " ".join("%.1f%%" % (c * 100) if c is not None else "-" for c in cvs),
                                      verdict), file=out)
        out.flush()


def run_bench(build, extra):
    exe = os.path.join(build, "pagelab-bench")
    if not os.access(exe, os.X_OK):
        sys.exit("perf_stability: %s is not built (make first)" % exe)
    fd, path = tempfile.mkstemp(prefix="perf-stability-", suffix=".json")
    os.close(fd)
    cmd = [exe, "--profile=quick", "--benchmark_out=" + path] + extra
    print("perf_stability: %s" % " ".join(cmd), file=sys.stderr)
    t0 = time.monotonic()
    with open(os.devnull, "w") as null:
        rc = subprocess.call(cmd, stdout=null)
    print("perf_stability: %.0f s, exit status %d; results in %s" % (time.monotonic() - t0, rc, path), file=sys.stderr)
    if rc == 2 or os.path.getsize(path) == 0:  # bad usage, or nothing was measured
        os.unlink(path)
        sys.exit("perf_stability: pagelab-bench wrote no results (exit status %d); its message is above" % rc)
    return path


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", nargs="+", metavar="FILE", help="report on these results instead of running")
    p.add_argument("--build", default=os.path.join(REPO, "build"), help="build directory (default: %(default)s)")
    p.add_argument("--recheck", type=int, default=0, metavar="N",
                   help="run each benchmark at 10%% or more again N times, in fresh processes (with the "
                        "build's pagelab-bench), and say whether its spread recurs")
    p.add_argument("bench_args", nargs="*", help="extra pagelab-bench flags (after --)")
    a = p.parse_args(argv)
    if a.recheck < 0 or a.recheck > 100:
        p.error("--recheck: a count from 0 to 100")
    if any(x.startswith("--benchmark_out") for x in a.bench_args):
        p.error("--benchmark_out is this tool's to set; run pagelab-bench yourself and pass the file with --json")
    paths = a.json or [run_bench(a.build, a.bench_args)]
    worst, profile = [], "quick"
    for path in paths:
        doc = load(path)
        profile = doc.get("context", {}).get("profile") or profile
        worst += [k for k in report(path, doc, sys.stdout) or [] if k not in worst]
    if a.recheck and worst:
        sys.stdout.flush()
        recheck(a.build, worst, a.recheck, profile, a.bench_args, sys.stdout)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except BrokenPipeError:  # the reader (head, less) stopped early
        sys.exit(0)
