"""No lost benchmark results: a `pagelab run` stopped in the middle of the
benchmarks keeps every finished one in a valid perf.json, its manifest names
the ones that did not run, and `pagelab run --resume` runs only those and
then writes the report; the report shows a sample's modes and outliers."""
import json
import os
import signal
import subprocess
import time

import pytest

GROW = "mremap/grow/%d" % os.sysconf("SC_PAGE_SIZE")  # the one-page instance
FILTER = "^harness/(empty|clock)$|^%s$" % GROW
REPS = ["--bench-arg=--benchmark_repetitions=30", "--bench-arg=--benchmark_min_time=0.06"]  # each benchmark >= 1.8 s: room to stop in the middle


def pagelab(repo_root, *args, timeout=600):
    return subprocess.run([os.path.join(repo_root, "runners", "pagelab")] + list(args),
                          capture_output=True, text=True, timeout=timeout)


def read(path):
    with open(path) as f:
        return json.load(f)


def iteration_names(doc):
    return [b["run_name"] for b in doc["benchmarks"] if b["run_type"] == "iteration"]


@pytest.fixture(scope="module")
def stopped_run(repo_root, build_dir, tmp_path_factory):
    """A run stopped (SIGTERM, as from a terminal or a scheduler) once the first benchmark is written."""
    if not os.access(os.path.join(build_dir, "pagelab-bench"), os.X_OK):
        pytest.skip("pagelab-bench not built")
    out = tmp_path_factory.mktemp("resume") / "r"
    cmd = [os.path.join(repo_root, "runners", "pagelab"), "run", "--no-build", "--build", build_dir, "--no-conform",
           "--filter", FILTER, "--out", str(out)] + REPS
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    partial = out / ".perf.json.partial"
    deadline = time.monotonic() + 120
    while not partial.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    return out, proc.returncode, err


def test_stopped_run_keeps_what_finished_and_names_the_rest(stopped_run):
    out, code, err = stopped_run
    assert code == 130 and "Traceback" not in err, err
    m = read(out / "manifest.json")
    perf = m["parts"]["perf"]
    assert m["complete"] is False and perf["status"] == "interrupted"
    doc = read(out / "perf.json")
    done = set(iteration_names(doc))
    assert "harness/empty" in done and iteration_names(doc).count("harness/empty") == 30
    assert perf["benchmarks_planned"] == 3
    assert sorted(perf["benchmarks_not_run"]) == sorted({"harness/empty", "harness/clock", GROW} - done)
    assert perf["benchmarks_not_run"], "the stop came too late to test anything"
    assert "did not run" in (out / "report.md").read_text()


def test_resume_runs_only_what_is_missing_then_reports(repo_root, build_dir, stopped_run):
    out, _, _ = stopped_run
    before = read(out / "perf.json")
    missing = read(out / "manifest.json")["parts"]["perf"]["benchmarks_not_run"]
    res = pagelab(repo_root, "run", "--resume", str(out), "--no-build", "--build", build_dir)
    assert res.returncode == 0, res.stderr
    assert "perf (%d benchmarks)" % len(missing) in res.stderr
    m = read(out / "manifest.json")
    assert m["complete"] is True and m["parts"]["perf"]["benchmarks_not_run"] == []
    assert m["resumed"][0]["command"][:3] == ["pagelab", "run", "--resume"]
    doc = read(out / "perf.json")
    names = iteration_names(doc)
    assert {n: names.count(n) for n in set(names)} == {n: 30 for n in ("harness/empty", "harness/clock", GROW)}
    # What had finished is kept as it was, not measured again.
    assert all(b in doc["benchmarks"] for b in before["benchmarks"])
    assert doc["context"]["benchmarks_complete"] is True
    assert sorted(doc["context"]["resumed"][0]["instances"]) == sorted(missing)
    assert "did not run" not in (out / "report.md").read_text()


def test_resuming_a_complete_run_runs_nothing(repo_root, build_dir, stopped_run):
    out, _, _ = stopped_run
    if not read(out / "manifest.json")["complete"]:
        pytest.skip("depends on the resume test")
    stamp = os.path.getmtime(out / "perf.json")
    res = pagelab(repo_root, "run", "--resume", str(out), "--no-build", "--build", build_dir)
    assert res.returncode == 0 and "nothing left to run" in res.stderr, res.stderr
    assert os.path.getmtime(out / "perf.json") == stamp


@pytest.mark.parametrize("args,words", [
    (["--resume", "/nonexistent/run"], "no such run directory"),
    (["--resume", "/tmp", "--target", "local"], "leave out --target"),
])
def test_bad_resume_is_one_line_exit_2(repo_root, args, words):
    res = pagelab(repo_root, "run", *args)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert words in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr


def test_report_shows_modes_and_outliers(tmp_path):
    """A bimodal sample and an outlier, as the harness records them, reach the report's cost table."""
    from pagelab_host.model import load_run
    from pagelab_host.report import write_report
    run = tmp_path / "run"
    run.mkdir()
    benches = []
    for name, times, dist in (
            ("x/bimodal/4096", [100, 101, 200, 201, 102], {
                "shape": "bimodal", "outliers": [],
                "modes": [{"real_time": 101, "count": 3, "repetitions": [0, 1, 4]},
                          {"real_time": 200.5, "count": 2, "repetitions": [2, 3], "differs_by": "minor-faults 512 vs 1"}]}),
            ("x/outlier/4096", [100, 101, 102, 103, 400], {
                "shape": "outliers", "modes": [{"real_time": 101.5, "count": 4, "repetitions": [0, 1, 2, 3]}],
                "outliers": [{"repetition": 4, "real_time": 400, "ratio_to_main_mode": 3.94,
                              "differs_by": "context-switches 12 vs 0"}]})):
        for i, t in enumerate(times):
            benches.append({"name": name, "run_name": name, "run_type": "iteration", "repetition_index": i,
                            "iterations": 10, "real_time": t, "cpu_time": t, "time_unit": "ns"})
        benches.append({"name": name + "_median", "run_name": name, "run_type": "aggregate",
                        "aggregate_name": "median", "real_time": sorted(times)[2], "time_unit": "ns",
                        "distribution": dist})
    ctx = {"benchmark_descriptions": {"x/bimodal": "the first call on fresh pages"}, "benchmarks_not_run": []}
    (run / "perf.json").write_text(json.dumps({"context": ctx, "benchmarks": benches}))
    write_report([load_run(str(run))], str(run), "t", formats=())
    md = (run / "report.md").read_text()
    assert "bimodal: 3 at 101 ns, 2 at 200 ns (minor-faults 512 vs 1)" in md
    assert "outliers: 4 at 102 ns, repetition 4 ×3.94 (context-switches 12 vs 0)" in md
    assert "| x/bimodal | the first call on fresh pages |" in md
    html = (run / "report.html").read_text()
    assert "title='the first call on fresh pages'" in html and "bimodal: 3 at 101 ns" in html
