"""The plan of parts every target runs, and how a part's status is judged.

A part is one run of a suite binary on the target. Its command line is
written here once, with two functions a target supplies: where a binary is
(on the target) and where a result file goes (on the target). The build
before the parts is the target's own preparation; the report after them is
made on the host. Every target, here or elsewhere, runs the same plan, and
every part is judged by the same rule (judge()).
"""
import os
import re

from .model import check_conformance, check_fuzz, check_perf, read_json

TAP_LINE = re.compile(r"^(not ok|ok)\b\s*\d*\s*-?\s*(\S*)")
TAP_PLAN = re.compile(r"^1\.\.(\d+)")
BENCH_NAME = re.compile(r"^([a-z][a-z0-9_]*/[A-Za-z0-9_./:-]+)")

# Part statuses; the first two mean the part's results are valid.
VALID = ("ok", "completed with failures")


class Part:
    """One suite binary run: its command line, its files in the run directory, its progress."""

    def __init__(self, name, binary, args, stdout, results, validate, progress, label=None, listing=None,
                 summarize=None):
        self.name = name
        self.binary = binary            # file name of the suite binary ("pagelab-conform")
        self._args = args               # fn(out) -> arguments after the binary
        self.stdout = stdout            # run-directory name that keeps the binary's stdout
        self.stderr = "logs/%s.stderr" % name
        self.results = results          # run-directory names the binary writes; the first decides validity
        self.validate = validate        # fn(doc, path) -> problem or None
        self.progress = progress        # fn(Progress) -> fn(line): follows the binary's stdout
        self.label = label or name
        self.listing = listing          # arguments that list what the part will run, one name a line (or None)
        self.summarize = summarize      # fn(doc) -> {manifest key: value} from its first result file (or None)
        self.resume_from = None         # a resumed part: the results it had, merged with what it runs now

    def argv(self, binary_path, out_path):
        """The command line on the target: binary_path(name) and out_path(run-dir name) say where things are."""
        return [binary_path(self.binary)] + self._args(out_path)

    def files(self):
        """Every run-directory file the part produces, result files first."""
        return list(self.results) + [self.stdout, self.stderr]


def _conform_progress(progress):
    def parse(line):
        m = TAP_PLAN.match(line)
        if m:
            progress.total = int(m.group(1))
        m = TAP_LINE.match(line)
        if m:
            # An expected failure is "not ok ... # TODO" in TAP: not a failure to count.
            progress.step(m.group(2) or "probe", failed=m.group(1) == "not ok" and "# TODO" not in line)
    return parse


def listed_names(text):
    """Names in a listing: the first word of each line that looks like a benchmark instance."""
    return [ln.split()[0] for ln in text.splitlines() if BENCH_NAME.match(ln.strip())]


def _bench_summary(doc):
    """What the manifest records of a perf part: how many benchmarks were planned and which did not run."""
    ctx = doc.get("context") if isinstance(doc, dict) else None
    if not isinstance(ctx, dict) or not isinstance(ctx.get("benchmarks_not_run"), list):
        return {}
    return {"benchmarks_planned": ctx.get("benchmarks_planned"), "benchmarks_not_run": ctx["benchmarks_not_run"]}


def summary(part, run_dir):
    """The part's summary for the manifest, from its first result file when that reads ({} otherwise)."""
    path = os.path.join(run_dir, part.results[0])
    if not part.summarize or not os.path.exists(path):
        return {}
    doc, problem = read_json(path)
    return part.summarize(doc) if not problem else {}


def exact_names_filter(names):
    """A --benchmark_filter (POSIX extended regex) matching exactly these instance names."""
    return "^(%s)$" % "|".join(re.sub(r"([.^$*+?()\[\]{}|\\])", r"\\\1", n) for n in names)


def merge_perf(old, new):
    """The results a run had, plus those its resumption added: old benchmarks the new file does not
    repeat, then the new ones; old context, with what is still not run and the resumption noted."""
    ran = {b.get("run_name") for b in new["benchmarks"]}
    ctx, nctx = dict(old["context"]), new.get("context") or {}
    ctx["benchmarks_not_run"] = list(nctx.get("benchmarks_not_run") or [])
    ctx["benchmarks_complete"] = not ctx["benchmarks_not_run"] and bool(nctx.get("benchmarks_complete"))
    descr = dict(ctx.get("benchmark_descriptions") or {})
    descr.update(nctx.get("benchmark_descriptions") or {})
    ctx["benchmark_descriptions"] = descr
    ctx["resumed"] = list(ctx.get("resumed") or []) + [
        {"date": nctx.get("date"), "load_avg": nctx.get("load_avg"), "instances": sorted(n for n in ran if n)}]
    return {"context": ctx, "benchmarks": [b for b in old["benchmarks"] if b.get("run_name") not in ran]
            + new["benchmarks"]}


def resume_plan(opts, jobs, manifest, run_dir):
    """The parts a resumed run still needs: a part that did not end validly runs again; the perf part
    runs only the benchmarks its perf.json lists as not run (all of them without a readable file)."""
    parts = []
    for part in make_plan(opts, jobs):
        status = ((manifest.get("parts") or {}).get(part.name) or {}).get("status")
        if part.name != "perf":
            if status not in VALID:
                parts.append(part)
            continue
        doc, problem = read_json(os.path.join(run_dir, "perf.json")) \
            if os.path.exists(os.path.join(run_dir, "perf.json")) else (None, "no perf.json")
        problem = problem or check_perf(doc, "perf.json")
        missing = None if problem else (doc["context"].get("benchmarks_not_run"))
        if problem or not isinstance(missing, list):
            parts.append(part)  # nothing usable to resume from: the whole part again
        elif missing:
            opts_missing = Options(conform=False, perf=True, profile=opts.profile,
                                   bench_filter=exact_names_filter(missing), bench_args=opts.bench_args)
            resumed = make_plan(opts_missing, jobs)[0]
            resumed.resume_from = doc
            parts.append(resumed)
    return parts


def _bench_progress(progress):
    def parse(line):
        for tok in line.split()[:2]:
            base = re.sub(r"_(mean|median|stddev|cv)$", "", tok)
            if BENCH_NAME.match(base):
                progress.step(base, unique=True)
                return
    return parse


class Options:
    """What the user asked of every target: parts, profile, filters, extra arguments."""

    def __init__(self, conform=True, perf=True, profile="quick", probe_filters=(), bench_filter=None,
                 conform_args=(), bench_args=(), fuzz=None, fuzz_seed=1):
        self.conform, self.perf, self.profile = conform, perf, profile
        self.fuzz, self.fuzz_seed = fuzz, fuzz_seed  # seconds of model-based random testing (None: no fuzz part)
        self.probe_filters = list(probe_filters)
        self.bench_filter = bench_filter
        self.conform_args, self.bench_args = list(conform_args), list(bench_args)


def _fuzz_progress(progress):
    def parse(line):
        if line.startswith('{"event": "finding"'):
            progress.step("finding", failed=True)
    return parse


def _fuzz_summary(doc):
    """What the manifest records of a fuzz part: how many sequences ran and how many findings came of them."""
    return {"fuzz_sequences": doc.get("sequences"), "fuzz_findings": len(doc.get("findings") or [])}


def suite_binaries(opts):
    """The suite binaries the plan's parts need built."""
    return tuple(b for b, wanted in (("pagelab-conform", True), ("pagelab-bench", True), ("pagelab-fuzz", opts.fuzz))
                 if wanted)


def make_plan(opts, jobs):
    """The parts to run, in order, for a target that runs `jobs` probes at once."""
    parts = []
    if opts.conform:
        filters = [a for f in opts.probe_filters for a in ("-f", f)]
        parts.append(Part("conformance", "pagelab-conform",
                          lambda out: ["-j", str(jobs), "--json", out("conformance.json")] + filters
                          + opts.conform_args,
                          "conformance.tap", ["conformance.json"], check_conformance, _conform_progress))
    if opts.perf:
        bench_filter = ["--benchmark_filter=%s" % opts.bench_filter] if opts.bench_filter else []
        parts.append(Part("perf", "pagelab-bench",
                          lambda out: ["--benchmark_out=%s" % out("perf.json"), "--benchmark_out_format=json",
                                       "--profile=%s" % opts.profile, "--topology_out=%s" % out("topology.xml")]
                          + bench_filter + opts.bench_args,
                          "logs/perf.stdout", ["perf.json", "topology.xml"], check_perf, _bench_progress,
                          listing=["--benchmark_list_tests=true", "--profile=%s" % opts.profile] + bench_filter,
                          summarize=_bench_summary))
    if opts.fuzz:
        parts.append(Part("fuzz", "pagelab-fuzz",
                          lambda out: ["--duration", "%g" % opts.fuzz, "--seed", str(opts.fuzz_seed),
                                       "--json", out("fuzz.json")],
                          "logs/fuzz.stdout", ["fuzz.json"], check_fuzz, _fuzz_progress, summarize=_fuzz_summary))
    return parts


def judge(part, run_dir, exit_status, signal=None, interrupted=False, timed_out=False):
    """(status, problem): the one rule for every target, from how the binary ended and what it left."""
    path = os.path.join(run_dir, part.results[0])
    if os.path.exists(path):
        doc, problem = read_json(path)
        problem = problem or part.validate(doc, path)
    else:
        problem = "%s: not written" % part.results[0]
    if interrupted:
        return "interrupted", problem
    if timed_out:
        return "timed out", problem
    if signal or problem or exit_status is None:
        return "died", problem or ("killed by %s" % signal if signal else "no exit status")
    return ("ok" if exit_status == 0 else "completed with failures"), None
