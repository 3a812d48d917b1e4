"""The `pagelab` command line: run, targets, kernels, compare, report, plot, list."""
import argparse
import datetime
import json
import os
import sys

from . import __version__, runcmd
from .targets import lava
from .errors import UserError, warn

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FORMATS = ("pdf", "png", "svg")


class Parser(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        sys.stderr.write("pagelab: error: %s\n" % message)
        sys.exit(2)


def build_parser():
    p = Parser(prog="pagelab", description="Run the pagelab suite on this machine, compare runs, "
                                           "and write reports and figures.")
    p.add_argument("--results", default=os.path.join(REPO, "results"), help="results directory (default: %(default)s)")
    p.add_argument("--version", action="version", version="pagelab %s" % __version__)
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    r = sub.add_parser("run", help="run the suite on one or more targets; one run directory each, compared",
                       description="Build, run the conformance suite and the benchmarks on each target (this "
                                   "machine by default), and write one run directory per target with manifest, "
                                   "results, logs and report; with several targets, a comparison too. "
                                   "`pagelab targets` lists the kinds.")
    r.add_argument("--target", "-t", action="append", metavar="SPEC",
                   help="where to run (repeatable): local, musl, qemu-user:ARCH, kernel:SERIES[/ARCH], uml[:KERNEL], "
                        "wrap:COMMAND, ssh:[USER@]HOST[:PORT] ... (default: local)")
    r.add_argument("--targets", metavar="FILE",
                   help="more targets from FILE: one a line (a line without a kind is an ssh host), or the hosts "
                        "of an Ansible INI inventory")
    r.add_argument("--build", help="build directory; other targets build under BUILD/targets/ (default: %s; "
                                   "with --resume, the run's own)" % os.path.join(REPO, "build"))
    runcmd.add_run_options(r)
    r.add_argument("--resume", metavar="RUN", help="finish an interrupted run: only the parts and benchmarks it "
                                                   "did not run, with the options it was started with")
    lava.add_run_options(r)
    t = sub.add_parser("targets", help="the kinds of target, what each needs, and whether it is installed",
                       description="List the target kinds `pagelab run --target` accepts, with the tools each "
                                   "needs and the Debian package to install when one is missing.")
    t.set_defaults(build=os.path.join(REPO, "build"), memory="2G", cpus=2, accel="auto")
    c = sub.add_parser("compare", help="comparative report across runs",
                       description="Write a comparative report (Markdown, HTML, figures) across any number of runs.")
    c.add_argument("runs", nargs="+", metavar="RUN", help="run directories")
    c.add_argument("--baseline", metavar="RUN", help="the run ratios are against (default: the first)")
    c.add_argument("--out", help="output directory (default: RESULTS/compare-<time>)")
    c.add_argument("--format", choices=FORMATS, action="append", help="figure formats besides png (default: pdf)")
    c.add_argument("--no-figures", action="store_true", help="tables only (faster)")
    c.add_argument("--fail-above", type=_percent, metavar="PCT",
                   help="exit 1 when a benchmark's median is more than PCT%% slower than the baseline's in any "
                        "run, and list those (for `git bisect run`)")
    rp = sub.add_parser("report", help="regenerate a run's report and figures",
                        description="Regenerate report.md, report.html and figures/ inside a run directory.")
    rp.add_argument("run", metavar="RUN")
    rp.add_argument("--format", choices=FORMATS, action="append", help="figure formats besides png (default: pdf)")
    rp.add_argument("--no-figures", action="store_true", help="tables only (faster)")
    pl = sub.add_parser("plot", help="figures from stored runs",
                        description="Draw every figure the runs allow, one line or bar per run.")
    pl.add_argument("runs", nargs="+", metavar="RUN")
    pl.add_argument("--format", choices=FORMATS, action="append", help="formats (default: pdf and png)")
    pl.add_argument("--out", help="directory for the figures (default: RUN/figures, or RESULTS/plot-<time> for several runs)")
    k = sub.add_parser("kernels", help="shorthand: run --target kernel:K for each kernel K, and compare",
                       description="Boot each kernel under QEMU with the suite inside, one run directory each, "
                                   "then compare them: `pagelab run --target kernel:K ...`.")
    k.add_argument("kernels", nargs="+", metavar="KERNEL",
                   help="a Debian kernel series (6.1, 6.12), a package name, a .deb or an image path; /ARCH "
                        "for another architecture (6.1/ppc64el)")
    k.add_argument("--build", default=os.path.join(REPO, "build"), help="build directory (default: %(default)s)")
    runcmd.add_run_options(k)
    lava.add_parser(sub, REPO)
    ex = sub.add_parser("export", help="results as CSV: conformance outcomes and benchmark medians",
                        description="Write the runs' conformance outcomes (one row per probe) and benchmark "
                                    "medians (one row per benchmark instance) as one CSV table.")
    ex.add_argument("runs", nargs="+", metavar="RUN", help="run directories (or run ids under the results directory)")
    ex.add_argument("--csv", action="store_true", help="CSV (the only format, and the default)")
    ex.add_argument("--out", "-o", metavar="FILE", help="write FILE (atomically) instead of standard output")
    ls = sub.add_parser("list", help="list runs, or what one run holds",
                        description="Without RUN: the runs under the results directory. With RUN: its parts and files.")
    ls.add_argument("run", nargs="?", metavar="RUN")
    _global_options_everywhere(sub)
    return p


def _global_options_everywhere(sub):
    """`pagelab run --results DIR` as well as `pagelab --results DIR run`: every subcommand (and theirs)
    takes the global options too; given there, they win over the ones before the subcommand."""
    for parser in set(sub.choices.values()):
        parser.add_argument("--results", default=argparse.SUPPRESS, help="results directory (as before the command)")
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                _global_options_everywhere(action)


def _percent(text):
    try:
        v = float(text.rstrip("%"))
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not a percentage (e.g. 5 or 5%%)" % text)
    if not v >= 0:
        raise argparse.ArgumentTypeError("%r: must be 0 or more" % text)
    return v


def _resolve(path, results):
    """A run given by path, or by its id under the results directory."""
    if not os.path.exists(path) and os.path.isdir(os.path.join(results, path)):
        return os.path.join(results, path)
    return path


def _load_many(paths, results):
    """Every path must be a run: one that is not (a typo, a parent directory) is an error, never left out
    quietly. A run with damaged files is kept, its problems said."""
    from .model import load_run
    runs, bad = [], []
    for p in paths:
        try:
            runs.append(load_run(_resolve(p, results)))
        except UserError as e:
            bad.append(str(e))
    if not runs:
        raise UserError("no valid run among: %s (%s)" % (" ".join(paths), "; ".join(bad)))
    if bad:
        raise UserError("; ".join(bad))
    for r in runs:
        for prob in r.problems:
            warn(prob)
    return runs


def _stamp():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def cmd_compare(a):
    from .report import write_report
    runs = _load_many(a.runs, a.results)
    base = 0
    if a.baseline:
        want = os.path.abspath(_resolve(a.baseline, a.results)).rstrip("/")
        ids = [r.path for r in runs]
        if want not in ids:
            raise UserError("%s: the baseline is not one of the runs being compared" % a.baseline)
        base = ids.index(want)
    out = a.out or os.path.join(a.results, "compare-%s" % _stamp())
    title = "pagelab comparison of %d runs" % len(runs)
    print(write_report(runs, out, title, base, () if a.no_figures else (a.format or ("pdf", "png"))))
    if a.fail_above is None:
        return 0
    from .export import regressions
    found = regressions(runs, base, a.fail_above)
    if found is None:
        raise UserError("--fail-above: no benchmark of %s was measured in another run too: nothing to judge"
                        % runs[base].id)
    for line in found:
        sys.stderr.write("pagelab: regression: %s\n" % line)
    sys.stderr.write("pagelab: %d benchmark(s) more than %g%% slower than %s\n" % (
        len(found), a.fail_above, runs[base].id))
    return 1 if found else 0


def cmd_export(a):
    from .export import csv_text
    from .fsutil import atomic_write_text
    text = csv_text(_load_many(a.runs, a.results))
    if a.out:
        atomic_write_text(a.out, text)
    else:
        sys.stdout.write(text)
    return 0


def cmd_report(a):
    from .model import load_run
    from .report import write_report
    run = load_run(_resolve(a.run, a.results))
    for prob in run.problems:
        warn(prob)
    html = write_report([run], run.path, "pagelab run %s" % run.id, 0,
                        () if a.no_figures else (a.format or ("pdf", "png")))
    from .junit import write_junit
    write_junit(run, os.path.join(run.path, "junit.xml"))
    print(html)
    return 0


def cmd_plot(a):
    from .analysis import Data
    from .report import make_figures
    runs = _load_many(a.runs, a.results)
    out = a.out or (os.path.join(runs[0].path, "figures") if len(runs) == 1
                    else os.path.join(a.results, "plot-%s" % _stamp()))
    figs = make_figures(Data(runs), out, tuple(a.format or ("pdf", "png")))
    if not figs:
        warn("the runs hold nothing to plot")
    for f in figs:
        for path in f.files.values():
            print(path)
    return 0


def cmd_list(a):
    from .model import find_runs, load_run
    if a.run:
        run = load_run(_resolve(a.run, a.results))
        return _show_run(run)
    paths = find_runs(a.results)
    if not paths:
        print("no runs under %s" % a.results)
    for p in paths:
        run = load_run(p)
        state = "complete" if run.complete else ("incomplete" if run.manifest else "no manifest")
        target = ((run.manifest or {}).get("target") or {}).get("spec", "")
        print("%-48s %-18s %-10s conformance %-18s perf %s" % (
            run.id, target, state, _conformance_brief(run) if run.conformance else "–",
            "%d entries" % len(run.perf["benchmarks"]) if run.perf else "–"))
    return 0


def _conformance_brief(run):
    """'296/309 pass, 2 fail, 3 differs': passes of the total, then every other outcome but skips."""
    from .summary import counts
    results = run.conformance.get("results") or []
    c = dict(counts(results))
    others = ", ".join("%d %s" % (n, st) for st, n in counts(results) if st not in ("pass", "skip"))
    return "%d/%d pass%s" % (c.get("pass", 0), len(results), ", " + others if others else "")


def _show_run(run):
    print("run %s  (%s)" % (run.id, run.path))
    if run.manifest:
        m = run.manifest
        print("  target:   %s" % (m.get("target") or {}).get("spec", "this machine (before targets)"))
        print("  state:    %s" % m.get("state"))
        print("  started:  %s  finished: %s  profile: %s" % (m.get("started"), m.get("finished"), m.get("profile")))
        for name, part in (m.get("parts") or {}).items():
            print("  part %-12s %-24s exit %s" % (name, part.get("status"), part.get("exit_status", "–")))
    for prob in run.problems:
        print("  problem:  %s" % prob)
    for root, _, names in sorted(os.walk(run.path)):
        for n in sorted(names):
            if not n.startswith("."):
                print("  file      %s" % os.path.relpath(os.path.join(root, n), run.path))
    return 0


def main(argv):
    args = build_parser().parse_args(argv)
    try:
        if args.cmd == "run":
            return runcmd.main(args, REPO, ["pagelab"] + list(argv), build_parser().parse_args)
        if args.cmd == "kernels":
            args.target = ["kernel:%s" % k for k in args.kernels]
            return runcmd.main(args, REPO, ["pagelab"] + list(argv))
        if args.cmd == "targets":
            return runcmd.list_targets(args)
        if args.cmd == "lava":
            return lava.job_main(args, REPO, ["pagelab"] + list(argv))
        return {"compare": cmd_compare, "report": cmd_report, "plot": cmd_plot, "list": cmd_list,
                "export": cmd_export}[args.cmd](args)
    except UserError as e:
        sys.stderr.write("pagelab: error: %s\n" % e)
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("pagelab: interrupted\n")
        return 130
    except BrokenPipeError:
        return 1
    except (OSError, json.JSONDecodeError) as e:
        sys.stderr.write("pagelab: error: %s\n" % e)
        return 1
