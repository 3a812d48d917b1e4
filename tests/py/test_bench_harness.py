"""The benchmark harness end to end: both back-ends write Google Benchmark's
JSON, compare.py reads it, flags are checked, and a build without any optional
library (make PORTABLE=1) builds and runs."""
import json
import os
import subprocess
import time

import pytest

COMPARE = "/usr/share/benchmark/compare.py"
ITERATION_KEYS = {"name", "family_index", "per_family_instance_index", "run_name", "run_type",
                  "repetitions", "repetition_index", "threads", "iterations", "real_time",
                  "cpu_time", "time_unit"}
AGGREGATE_KEYS = ITERATION_KEYS - {"repetition_index"} | {"aggregate_name", "aggregate_unit"}


def bench(build_dir):
    path = os.path.join(build_dir, "pagelab-bench")
    if not os.access(path, os.X_OK):
        pytest.skip("pagelab-bench not built")
    return path


def backends(exe):
    """The back-ends this binary was built with."""
    r = subprocess.run([exe, "--backend=gbench", "--benchmark_list_tests"], capture_output=True, text=True)
    return ["gbench", "portable"] if r.returncode == 0 else ["portable"]


def run_json(exe, out, *flags):
    r = subprocess.run([exe, "--benchmark_filter=^harness/", "--benchmark_repetitions=3",
                        "--benchmark_min_time=0.01", "--pin=none", "--benchmark_out=" + str(out), *flags],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    with open(out) as f:
        return json.load(f)


def check_schema(doc, backend):
    ctx = doc["context"]
    for key in ("date", "host_name", "num_cpus", "caches", "os", "kernel", "arch", "page_size",
                "counters", "counters_unavailable", "topology", "pinning"):
        assert key in ctx, key
    assert ctx["backend"] == backend
    runs = doc["benchmarks"]
    names = {b["run_name"] for b in runs}
    assert names == {"harness/empty", "harness/clock"}
    for b in runs:
        if b["run_type"] == "iteration":
            assert ITERATION_KEYS <= set(b)
            assert b["iterations"] > 0 and b["real_time"] > 0 and b["time_unit"] == "ns"
            for c in ctx["counters"]:
                assert isinstance(b[c], (int, float)), c
        else:
            assert b["run_type"] == "aggregate" and AGGREGATE_KEYS <= set(b)
    aggs = sorted(b["aggregate_name"] for b in runs if b["run_name"] == "harness/empty" and b["run_type"] == "aggregate")
    assert aggs == ["cv", "mean", "median", "stddev"]


@pytest.mark.parametrize("backend", ["gbench", "portable"])
def test_json_schema(build_dir, tmp_path, backend):
    exe = bench(build_dir)
    if backend not in backends(exe):
        pytest.skip("built without Google Benchmark")
    check_schema(run_json(exe, tmp_path / "out.json", "--backend=" + backend), backend)


def test_backends_agree_and_compare_py_reads_both(build_dir, tmp_path, python_exe):
    exe = bench(build_dir)
    bes = backends(exe)
    docs = {be: run_json(exe, tmp_path / (be + ".json"), "--backend=" + be) for be in bes}
    shapes = {be: [(b["name"], b["run_type"], sorted(b)) for b in d["benchmarks"]] for be, d in docs.items()}
    assert len({json.dumps(s) for s in shapes.values()}) == 1, "back-ends wrote different entries"
    if not os.path.exists(COMPARE):
        pytest.skip("compare.py (libbenchmark-tools) not installed")
    a, b = (tmp_path / (be + ".json") for be in (bes * 2)[:2])
    r = subprocess.run([python_exe, COMPARE, "--no-color", "benchmarks", str(a), str(b)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "harness/empty_mean" in r.stdout and "OVERALL_GEOMEAN" in r.stdout


@pytest.mark.parametrize("flag", ["--no-such-flag", "--counters=page-faults,bogus-event",
                                  "--profile=slow", "--benchmark_out_format=csv", "--pin=9999",
                                  "--benchmark_min_time=soon", "--backend=other"])
def test_bad_input_is_one_line_exit_2(build_dir, flag):
    r = subprocess.run([bench(build_dir), flag, "--benchmark_filter=^harness/empty$"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("pagelab-bench: ")


def test_list_and_profile_quick(build_dir):
    exe = bench(build_dir)
    r = subprocess.run([exe, "--benchmark_list_tests", "--profile=quick"], capture_output=True, text=True)
    assert r.returncode == 0
    lines = dict(ln.split(None, 1) for ln in r.stdout.splitlines())
    assert lines["harness/empty"].strip() == "one empty loop iteration"
    assert all(d.strip() for d in lines.values()), "every benchmark says what it measures"


def test_topology_xml_and_counter_reasons(build_dir, tmp_path):
    exe = bench(build_dir)
    xml = tmp_path / "topo.xml"
    doc = run_json(exe, tmp_path / "o.json", "--topology_out=" + str(xml), "--benchmark_filter=^harness/empty$")
    ctx = doc["context"]
    if ctx["topology"]["source"].startswith("hwloc"):
        assert xml.read_text().lstrip().startswith("<?xml")
    for name, reason in ctx["counters_unavailable"].items():
        assert reason and name not in ctx["counters"]


def test_rusage_fallback_counts_faults(build_dir, tmp_path):
    doc = run_json(bench(build_dir), tmp_path / "r.json", "--counter_source=rusage", "--backend=portable")
    ctx = doc["context"]
    assert ctx["counter_source"] == "getrusage"
    assert {"page-faults", "minor-faults", "major-faults", "context-switches"} <= set(ctx["counters"])
    assert "cpu-migrations" in ctx["counters_unavailable"]


def test_portable_build_without_optional_libraries(repo_root, tmp_path):
    build = tmp_path / "build-portable"
    r = subprocess.run(["make", "-s", "-j2", "PORTABLE=1", "BUILD=" + str(build), str(build / "pagelab-bench")],
                       cwd=repo_root, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    config = (build / "config.mk").read_text()
    assert "GBENCH := 0" in config and "HWLOC := 0" in config and "LIBPFM := 0" in config
    doc = run_json(str(build / "pagelab-bench"), tmp_path / "p.json")
    check_schema(doc, "portable")


def _finished_instances(doc):
    return {b["run_name"] for b in doc["benchmarks"] if b["run_type"] == "iteration"}


@pytest.mark.parametrize("backend", ["gbench", "portable"])
def test_killed_run_keeps_finished_benchmarks(build_dir, tmp_path, backend):
    """SIGKILL while the second benchmark runs: the file parses, holds the first
    one complete and names the second as not run."""
    exe = bench(build_dir)
    if backend not in backends(exe):
        pytest.skip("built without Google Benchmark")
    out = tmp_path / "perf.json"
    proc = subprocess.Popen([exe, "--backend=" + backend, "--benchmark_filter=^harness/(empty|clock)$",
                             "--benchmark_repetitions=40", "--benchmark_min_time=0.05", "--pin=none",
                             "--counters=none", "--benchmark_out=" + str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        # The file appears when the first benchmark finishes; the second needs 2 s more.
        while not out.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.kill()
    finally:
        proc.wait(timeout=60)
    with open(out) as f:
        doc = json.load(f)
    assert _finished_instances(doc) == {"harness/empty"}
    reps = [b for b in doc["benchmarks"] if b["run_type"] == "iteration"]
    assert sorted(b["repetition_index"] for b in reps) == list(range(40))
    ctx = doc["context"]
    assert ctx["benchmarks_planned"] == 2 and ctx["benchmarks_not_run"] == ["harness/clock"]
    assert ctx["benchmarks_complete"] is False
    assert not [p for p in os.listdir(tmp_path) if p != "perf.json"], "temporary files left behind"


def test_descriptions_and_distribution_in_json(build_dir, tmp_path):
    doc = run_json(bench(build_dir), tmp_path / "d.json")
    ctx = doc["context"]
    assert ctx["benchmarks_complete"] is True and ctx["benchmarks_not_run"] == []
    assert ctx["benchmark_descriptions"]["harness/empty"] == "one empty loop iteration"
    medians = [b for b in doc["benchmarks"] if b.get("aggregate_name") == "median"]
    for m in medians:
        dist = m["distribution"]
        counted = sum(x["count"] for x in dist["modes"]) + len(dist["outliers"])
        assert dist["shape"] in ("unimodal", "outliers", "bimodal", "multimodal", "scattered")
        assert counted == 3 or dist["shape"] == "scattered"


def test_perf_stability_reports_and_rechecks(repo_root, build_dir, tmp_path):
    """tools/perf_stability.py: the cv distribution of a results file, the benchmarks at 10% or more,
    and --recheck, which runs those again in fresh processes and says whether the spread recurs."""
    exe = bench(build_dir)
    doc = run_json(exe, tmp_path / "r.json")
    for b in doc["benchmarks"]:  # make harness/empty look spread
        if b["run_name"] == "harness/empty" and b.get("aggregate_name") == "cv":
            b["real_time"] = 0.25
    (tmp_path / "r.json").write_text(json.dumps(doc))
    tool = [os.path.join("/usr/bin/python3"), os.path.join(repo_root, "tools", "perf_stability.py")]
    r = subprocess.run(tool + ["--build", build_dir, "--recheck", "2", "--json", str(tmp_path / "r.json")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "cv >= 10%: 1" in r.stdout and "25.0%  harness/empty" in r.stdout
    lines = [x for x in r.stdout.splitlines() if x.strip().startswith("harness/empty")]
    assert len(lines) == 1 and ("transient" in lines[0] or "recurs" in lines[0]), r.stdout
    assert lines[0].count("%") >= 2  # one cv per re-run
    bad = subprocess.run(tool + ["--recheck", "-1", "--json", str(tmp_path / "r.json")], capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "--recheck" in bad.stderr
    own = subprocess.run(tool + ["--", "--benchmark_out=x.json"], capture_output=True, text=True)
    assert own.returncode == 2 and "Traceback" not in own.stderr and "--benchmark_out" in own.stderr
    (tmp_path / "junk.json").write_text("not json")
    junk = subprocess.run(tool + ["--json", str(tmp_path / "junk.json")], capture_output=True, text=True)
    assert junk.returncode != 0 and "Traceback" not in junk.stderr and len(junk.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("backend", ["gbench", "portable"])
def test_console_has_aggregate_lines(build_dir, backend):
    """Each finished instance prints Google Benchmark's aggregate lines after its repetitions, with the
    mean, median and stddev of the repetitions' times and the cv in percent."""
    exe = bench(build_dir)
    if backend not in backends(exe):
        pytest.skip("built without Google Benchmark")
    r = subprocess.run([exe, "--backend=" + backend, "--benchmark_filter=^harness/empty$", "--benchmark_repetitions=3",
                        "--benchmark_min_time=0.01", "--pin=none"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    rows = [ln.split() for ln in r.stdout.splitlines() if ln.startswith("harness/empty")]
    reps = [float(x[1]) for x in rows if x[0] == "harness/empty"]
    agg = {x[0].rsplit("_", 1)[1]: x for x in rows if x[0].startswith("harness/empty_")}
    assert len(reps) == 3 and set(agg) == {"mean", "median", "stddev", "cv"}, r.stdout
    assert min(reps) <= float(agg["median"][1]) <= max(reps) and agg["median"][2] == "ns"
    assert abs(float(agg["mean"][1]) - sum(reps) / 3) <= 0.1 + 1e-9 and agg["cv"][2] == "%" and agg["cv"][-1] == "3"
