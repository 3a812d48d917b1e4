"""`pagelab run`: the plan on each target, one run directory per target, and a comparison when several."""
import argparse
import os
import re
import signal
import sys

from . import checks, fleet, hostenv, summary, targets
from .errors import UserError, warn
from .model import read_json
from .plan import Options, make_plan, resume_plan
from .rundir import RunDir, new_dir, stamp, utc
from .targetrun import BadRequest, TargetFailed, TargetRun


def add_run_options(p, kernel_defaults=False):
    """Options every target reads (also used by `pagelab kernels`)."""
    p.add_argument("--profile", choices=("quick", "full"), default="quick", help="benchmark profile (default: quick)")
    p.add_argument("--no-perf", action="store_true", help="skip the benchmarks")
    p.add_argument("--no-conform", action="store_true", help="skip the conformance suite")
    p.add_argument("--no-build", action="store_true", help="use what is built, never run make")
    p.add_argument("--fuzz", type=duration, metavar="DURATION",
                   help="add a fuzz part: model-based random operation sequences for DURATION (90s, 5m) with "
                        "pagelab-fuzz; its minimal failing sequences are findings (fuzz.json)")
    p.add_argument("--fuzz-seed", type=int, default=1, metavar="N", help="seed of the fuzz part (default: 1)")
    p.add_argument("--probes", action="append", default=[], metavar="GLOB",
                   help="only probes matching GLOB (pagelab-conform -f; repeatable)")
    p.add_argument("--filter", help="only benchmarks matching this regular expression (--benchmark_filter)")
    p.add_argument("--conform-arg", action="append", default=[], metavar="ARG",
                   help="extra argument for pagelab-conform (repeatable)")
    p.add_argument("--bench-arg", action="append", default=[], metavar="ARG",
                   help="extra argument for pagelab-bench, e.g. --bench-arg=--benchmark_repetitions=5")
    p.add_argument("--timeout", type=checks.positive_int, metavar="S",
                   help="seconds per target (default: by kind, 1 to 2 hours)")
    p.add_argument("--accel", choices=("auto", "kvm", "tcg"), default="auto",
                   help="kernel targets of this machine's architecture: KVM if a guest boots with it (auto), or not")
    p.add_argument("--memory", default="2G", type=checks.qemu_size,
                   help="guest memory for kernel and uml targets: 2G, 1536M ... (default: %(default)s)")
    p.add_argument("--cpus", type=checks.positive_int, default=2,
                   help="guest CPUs for kernel targets (default: %(default)s)")
    p.add_argument("--append", type=checks.kernel_args, metavar="ARGS",
                   help="kernel targets: more kernel boot parameters (e.g. --append 'mitigations=off "
                        "transparent_hugepage=always'); recorded in env.json (kernel_cmdline, kernel_append)")
    p.add_argument("--label", action="append", type=checks.run_label, metavar="NAME",
                   help="kernel targets: a label for the run, in its run id and report (two bzImage runs "
                        "apart); once for all kernel targets, or once per kernel target in order")
    p.add_argument("--out", help="one target: its run directory; several: the directory for their run directories "
                                 "and the comparison (default: the results directory)")
    p.add_argument("--parallel", type=int, default=8, metavar="N",
                   help="targets that run elsewhere (ssh, lava) at once, at most (default: %(default)s); targets "
                        "using this machine's CPUs run one at a time")


def options(args):
    return Options(conform=not args.no_conform, perf=not args.no_perf, profile=args.profile,
                   probe_filters=args.probes, bench_filter=args.filter, conform_args=args.conform_arg,
                   bench_args=args.bench_arg, fuzz=getattr(args, "fuzz", None), fuzz_seed=getattr(args, "fuzz_seed", 1))


def duration(text):
    """Seconds from '90', '90s', '5m' or '1h' (argparse type)."""
    m = re.match(r"^(\d+(?:\.\d+)?)([smh]?)$", text.strip())
    if not m or float(m.group(1)) <= 0:
        raise argparse.ArgumentTypeError("%r is not a duration (90, 90s, 5m, 1h)" % text)
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def resolve_all(specs, args):
    """Targets for specs, every missing tool of every target reported at once, before anything runs,
    with one apt-get line for all the packages."""
    found = [targets.resolve(s, args) for s in specs]
    problems, packages = [], []
    for t in found:
        for n in t.missing():
            problems.append("target %s: %s not found (Debian: apt-get install %s)" % (t.spec, n.what, n.package))
            if n.installable:
                packages += [p for p in n.package.split() if p not in packages]
    if problems:
        if len(problems) > 1 and packages:
            problems.append("all at once: apt-get install %s" % " ".join(packages))
        raise UserError("; ".join(problems))
    return found


def _term_as_interrupt(signum, frame):
    raise KeyboardInterrupt


def main(args, repo, argv, parse=None):
    # A run stopped with SIGTERM is finished like Ctrl-C: marked interrupted, report written.
    signal.signal(signal.SIGTERM, _term_as_interrupt)
    if getattr(args, "resume", None):
        if args.target:
            raise UserError("--resume runs on the target the run was started on; leave out --target")
        args.build_given = args.build
        args.build = os.path.abspath(args.build or os.path.join(repo, "build"))
        return resume(args, repo, argv, parse)
    args.build = os.path.abspath(args.build or os.path.join(repo, "build"))
    specs = list(args.target or [])
    if getattr(args, "targets", None):
        specs += fleet.read_targets_file(args.targets, targets.kinds())
    if args.parallel < 1:
        raise UserError("--parallel must be at least 1")
    chosen = resolve_all(specs or ["local"], args)
    targets.apply_labels(chosen, getattr(args, "label", None) or [])
    checks.before_running(args, chosen, repo)
    several = len(chosen) > 1
    parent = args.out if several and args.out else args.results
    host = hostenv.driving_host(repo)

    def run_one(t, stream, cancel):
        out = args.out if args.out and not several else os.path.join(parent, _run_id(t))
        return run_target(t, out, args, repo, argv, host, stream, cancel)
    done = fleet.run_all(chosen, run_one, args.parallel)
    paths, codes = [p for p, _ in done], [c for _, c in done]
    html = None
    if several and len(paths) > 1:
        html = compare(paths, os.path.join(parent, "compare-%s" % stamp()), "pagelab: %d targets" % len(paths))
    if several:
        _overview(chosen, done, repo, html)
    return 130 if 130 in codes else max(codes)


def _overview(chosen, done, repo, html):
    """After several targets: one line each, the runs to resume, and the comparison."""
    sys.stderr.write("pagelab: %d targets:\n" % len(done))
    for t, (path, code) in zip(chosen, done):
        m, _ = read_json(os.path.join(path, "manifest.json"))
        m = m if isinstance(m, dict) else {}
        conf, _ = read_json(os.path.join(path, "conformance.json")) \
            if os.path.exists(os.path.join(path, "conformance.json")) else (None, None)
        res = conf.get("results") if isinstance(conf, dict) and isinstance(conf.get("results"), list) else None
        sys.stderr.write("pagelab:   %-28s %s%s\n" % (t.spec, m.get("state", "?"), "; conformance " +
                                                     summary.counts_text(res) if res is not None else ""))
        if code == 130 or not m.get("complete"):
            sys.stderr.write("pagelab:     resume: %s\n" % summary.resume_command(repo, path))
    if html:
        sys.stderr.write("pagelab: comparison: %s\npagelab:   open it: %s\n" % (
            summary.shown_path(html), summary.opener(summary.shown_path(html))))


def _run_id(target):
    return hostenv.run_id(utc()) if target.kind == "local" else "%s-%s" % (stamp(), target.label())


def run_target(target, out, args, repo, argv, host, stream=sys.stderr, cancel=None):
    """Prepare and run one target; the run directory is finished whatever happens. (path, exit code)."""
    tdesc = {"spec": target.spec, "kind": target.kind, "label": target.label()}
    if target.run_label:
        tdesc["run_label"] = target.run_label
    rd = RunDir(out, argv, args.profile, tdesc, host)
    ctx = TargetRun(rd, repo, options(args), args.build, args.no_build, args.timeout or target.default_timeout,
                    stream, cancel)
    ctx.say("target %s -> %s" % (target.spec, rd.path))
    return _execute(target, rd, ctx, make_plan(ctx.options, target.jobs()))


def resume(args, repo, argv, parse):
    """`pagelab run --resume RUN`: run only what RUN did not finish (parts, benchmarks), with the options
    it was started with, then finish it and write its report again. parse: the command-line parser."""
    path = args.resume if os.path.isdir(args.resume) else os.path.join(args.results, args.resume)
    if not os.path.isdir(path):
        raise UserError("%s: no such run directory" % args.resume)
    manifest, problem = read_json(os.path.join(path, "manifest.json"))
    command = manifest.get("command") if isinstance(manifest, dict) else None
    spec = ((manifest or {}).get("target") or {}).get("spec") if isinstance(manifest, dict) else None
    if problem or not isinstance(command, list) or len(command) < 2 or not all(isinstance(a, str) for a in command):
        raise UserError("%s: the manifest does not say how the run was started (%s)" % (path, problem or "no command"))
    orig = parse(command[1:])
    # The build the run was started with, unless this command names one.
    args.build = os.path.abspath(args.build_given or orig.build or args.build)
    args.no_build = args.no_build or bool(getattr(orig, "no_build", False))
    spec = spec if isinstance(spec, str) else "local"
    target = resolve_all([spec], orig)[0]
    label = ((manifest.get("target") or {}).get("run_label"))
    if isinstance(label, str) and target.takes_label:
        target.run_label = label
    rd = RunDir.reopen(path, argv)
    ctx = TargetRun(rd, repo, options(orig), args.build, args.no_build, args.timeout or target.default_timeout)
    plan = resume_plan(ctx.options, target.jobs(), rd.manifest, rd.path)
    ctx.say("resume %s on %s: %s" % (rd.path, target.spec, ", ".join(
        "%s%s" % (p.name, " (%d benchmarks)" % len(p.resume_from["context"]["benchmarks_not_run"])
                  if p.resume_from else "") for p in plan) or "nothing left to run"))
    return _execute(target, rd, ctx, plan)[1]


def _execute(target, rd, ctx, plan):
    """Run the plan on the target and finish the run directory whatever happens. (path, exit code)."""
    reason, interrupted, bad_request = None, False, False
    try:
        if plan:
            target.prepare(ctx)
            target.run(plan, ctx)
    except TargetFailed as e:
        reason, bad_request = str(e), isinstance(e, BadRequest)
    except KeyboardInterrupt:
        interrupted = True
    try:
        rd.write_env(target.describe())
    except (OSError, ValueError) as e:
        warn("%s: environment not recorded: %s" % (target.spec, e))
    m = rd.finish(reason, interrupted)
    html = rd.write_report("pagelab run %s (%s)" % (m["run_id"], target.spec))
    for line in summary.lines(target.spec, rd.path, m, html, ctx.repo, interrupted):
        ctx.say(line)
    if html:
        print(html, flush=True)
    if bad_request:
        ctx.stream.write("pagelab: error: %s\n" % reason)
        return rd.path, 2
    return rd.path, 130 if interrupted else (0 if m["complete"] else 1)


def compare(paths, out, title):
    from .model import load_run
    from .report import write_report
    try:
        html = write_report([load_run(p) for p in paths], new_dir(out), title)
    except (OSError, ValueError, UserError) as e:
        warn("comparison failed: %s" % e)
        return None
    print(html, flush=True)
    return html


def list_targets(args):
    """`pagelab targets`: every kind, and for each of its forms what it needs and whether that is installed."""
    for kind, cls in targets.kinds().items():
        print("%-22s %s" % (cls.usage, cls.summary))
        for example in cls.examples:
            try:
                target = cls(example, args)
            except UserError:
                continue
            missing = target.missing()
            print("    %-28s %s" % (target.spec, "ready" if not missing else "needs " + ", ".join(
                "%s (apt-get install %s)" % (n.what, n.package) for n in missing)))
    return 0
