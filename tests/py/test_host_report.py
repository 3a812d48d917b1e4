"""Reports from real runs: the behaviour matrix, the cost tables and the environments side by side."""
import glob
import json
import os
import shutil
import subprocess

import pytest

from pagelab_host import analysis, model


def fixture_runs(fixtures_dir):
    return sorted(glob.glob(os.path.join(fixtures_dir, "runs", "*")))


def compare(repo_root, runs, out, *extra):
    res = subprocess.run([os.path.join(repo_root, "runners", "pagelab"), "compare"] + list(runs) +
                         ["--out", str(out), "--no-figures"] + list(extra), capture_output=True, text=True, timeout=600)
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    return (out / "report.md").read_text()


def test_cost_table_has_median_cv_n_and_ratio_per_run(repo_root, fixtures_dir, tmp_path):
    runs = fixture_runs(fixtures_dir)
    md = compare(repo_root, runs, tmp_path / "c")
    data = analysis.Data([model.load_run(r) for r in runs])
    row = next(r for r in data.costs if all(c.median for c in r.cells) and r.cells[1].ratio)
    line = next(ln for ln in md.splitlines() if ln.startswith("| %s |" % row.key))
    assert "n=%d" % row.cells[0].n in line and "cv " in line
    assert "×%.2f" % row.cells[1].ratio in line
    assert row.cells[1].ratio == pytest.approx(row.cells[1].median / row.cells[0].median)
    assert "Geometric mean of the ratios per area" in md


def test_environment_differences_are_marked(repo_root, fixtures_dir, tmp_path):
    runs = fixture_runs(fixtures_dir)
    data = analysis.Data([model.load_run(r) for r in runs])
    md = compare(repo_root, runs, tmp_path / "c")
    for key, vals, differs in data.env:
        assert differs == (len(set(vals)) > 1)
        if differs:
            assert "| ▶ %s |" % key in md
    # The two fixture runs differ at least in time of day.
    assert any(d for _, _, d in data.env)


def test_behaviour_difference_is_highlighted(repo_root, fixtures_dir, tmp_path):
    a = fixture_runs(fixtures_dir)[0]
    b = tmp_path / "b"
    shutil.copytree(a, b)
    doc = json.loads((b / "conformance.json").read_text())
    probe = doc["results"][0]
    probe["status"], probe["reason"] = "fail", "changed for this test"
    (b / "conformance.json").write_text(json.dumps(doc))
    md = compare(repo_root, [a, str(b)], tmp_path / "c")
    line = next(ln for ln in md.splitlines() if ln.startswith("| ▶ %s |" % probe["id"]))
    assert "**FAIL**" in line
    assert "1 of %d probes differ" % len(doc["results"]) in md


def test_same_run_twice_has_no_difference_and_ratio_one(repo_root, fixtures_dir, tmp_path):
    a = fixture_runs(fixtures_dir)[0]
    b = tmp_path / "again"
    shutil.copytree(a, b)
    md = compare(repo_root, [a, str(b)], tmp_path / "c")
    assert "0 of" in md and "| ▶ " not in md.split("## Cost")[0].split("## Behaviour matrix")[1]
    data = analysis.Data([model.load_run(a), model.load_run(str(b))])
    ratios = [r.cells[1].ratio for r in data.costs if r.cells[1].ratio]
    assert ratios and all(x == pytest.approx(1.0) for x in ratios)


def test_report_regenerates_in_place(repo_root, fixtures_dir, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(fixture_runs(fixtures_dir)[0], run)
    for f in ("report.md", "report.html"):
        (run / f).unlink(missing_ok=True)
    res = subprocess.run([os.path.join(repo_root, "runners", "pagelab"), "report", str(run)],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert (run / "report.html").exists() and (run / "figures" / "behaviour_matrix.pdf").exists()


def _perf_run(path, entries):
    """A run directory holding only a perf.json with these benchmark entries (times in ns)."""
    path.mkdir()
    doc = {"context": {"page_size": 4096}, "benchmarks": [
        dict({"name": name, "run_name": name, "run_type": "iteration", "iterations": 10,
              "real_time": t, "cpu_time": t, "time_unit": "ns"}, **extra) for name, t, extra in entries]}
    (path / "perf.json").write_text(json.dumps(doc))
    return str(path)


def test_per_page_comes_from_the_pages_counter_only(repo_root, tmp_path):
    run = _perf_run(tmp_path / "run", [
        ("fault/write_4k/2097152", 512000.0, {"items_per_second": 5e8, "pages": 512}),
        ("tlb/reaccess_warm/16", 160.0, {"items_per_second": 1e8, "pages": 16}),
        # Items are allocator operations and the argument a block size: no page count to divide by.
        ("refalloc/none/65536", 256000.0, {"items_per_second": 1e6, "ops": 256}),
        # A page count of the parent's memory, but an iteration (one fork) does not handle pages.
        ("fork/dirty/67108864", 1e6, {"pages": 16384}),
        # Items without a pages counter: the argument is not taken for a size.
        ("madvise/dontneed/2097152", 51200.0, {"items_per_second": 1e7})])
    benches = model.benchmarks(model.load_run(run))
    assert benches["fault/write_4k/2097152"].per_page_times() == [pytest.approx(1000.0)]
    assert benches["tlb/reaccess_warm/16"].per_page_times() == [pytest.approx(10.0)]
    for key in ("refalloc/none/65536", "fork/dirty/67108864", "madvise/dontneed/2097152"):
        assert benches[key].per_page_times() == [], key
        assert benches[key].per_page_counter("ops") == [], key
    md = compare(repo_root, [run], tmp_path / "c")
    rows = {ln.split(" | ")[0][2:]: ln for ln in md.splitlines() if ln.startswith("| ") and "/" in ln}
    assert "/page" in rows["fault/write_4k/2097152"]
    assert "/page" not in rows["refalloc/none/65536"] and "/page" not in rows["madvise/dontneed/2097152"]


class _Run:
    def __init__(self, results, schema="pagelab.conformance/2"):
        self.conformance = {"schema": schema, "results": results}


def _res(pid, status="pass", observed=None, measured=None, cls=None):
    r = {"id": pid, "status": status, "observed": observed or {}}
    if measured is not None:
        r["measured"] = measured
    if cls:
        r["class"] = cls
    return r


def test_only_semantic_observations_and_outcome_classes_make_probes_differ():
    from pagelab_host.analysis import behaviour_matrix
    a = _Run([_res("brk.start", observed={"after_exec": "above bss"}, measured={"gap_bytes": 4096}),
              _res("mmap.noreserve", measured={"reservation_gib": 7.6}),
              _res("madvise.free", observed={"contents_after": "zero"}),
              _res("madvise.cold", "skip", cls="unsupported")])
    b = _Run([_res("brk.start", observed={"after_exec": "above bss"}, measured={"gap_bytes": 1 << 20}),
              _res("mmap.noreserve", measured={"reservation_gib": 7.7}),
              _res("madvise.free", observed={"contents_after": "old"}),
              _res("madvise.cold", "skip", cls="unobservable")])
    rows = {r.id: r for r in behaviour_matrix([a, b]).rows}
    assert not rows["brk.start"].differs and not rows["mmap.noreserve"].differs
    assert rows["madvise.free"].differs and rows["madvise.cold"].differs
    assert rows["mmap.noreserve"].cells[1]["measured"] == "reservation gib: 7.7"


def test_results_without_measured_count_every_observation_as_semantic():
    from pagelab_host.analysis import behaviour_matrix
    a = _Run([_res("brk.start", observed={"gap_bytes": 4096})], "pagelab.conformance/1")
    b = _Run([_res("brk.start", observed={"gap_bytes": 8192})], "pagelab.conformance/1")
    assert behaviour_matrix([a, b]).rows[0].differs


def test_probes_only_some_systems_build_are_shown_apart_not_as_differences():
    from pagelab_host.analysis import behaviour_matrix
    linux = _Run([_res("madvise.free", observed={"contents_after": "old"}),
                  _res("pagelayer.release", observed={"implementation": "native: madvise(MADV_FREE)"})])
    windows = _Run([_res("virtualalloc.mem_reset", observed={"contents_after": "zero"}),
                    _res("pagelayer.release", observed={"implementation": "native: VirtualAlloc(MEM_RESET)"})])
    m = behaviour_matrix([linux, windows])
    rows = {r.id: r for r in m.rows}
    assert rows["madvise.free"].partial and not rows["madvise.free"].differs
    assert rows["virtualalloc.mem_reset"].partial and rows["virtualalloc.mem_reset"].cells[0] is None
    assert rows["pagelayer.release"].differs and not rows["pagelayer.release"].partial
    assert (m.n_differ, m.n_partial) == (1, 2)


def test_report_columns_are_the_targets_labels_when_they_differ():
    from pagelab_host.model import Run, short_labels

    def run(rid, label):
        r = Run("/x/" + rid)
        r.manifest = {"target": {"label": label}} if label else {}
        return r
    a, b = run("20261129T1500Z-vm-6.18", "local"), run("20261129T150012Z-qemu-user-s390x", "qemu-user-s390x")
    assert short_labels([a, b]) == ["local", "qemu-user-s390x"]
    # Two runs of the same target are told apart by their ids.
    c = run("20261130T1500Z-vm-6.18", "local")
    assert short_labels([a, c]) == ["20261129T1500Z", "20261130T1500Z"]


def test_findings_take_the_reading_of_the_first_matching_triage_rule():
    from pagelab_host import findings
    from pagelab_host.model import Run

    run = Run("/x/20261129T150000Z-qemu-user-s390x")
    run.manifest = {"target": {"spec": "qemu-user:s390x", "label": "qemu-user-s390x"}}
    run.env_file = {"emulation": "qemu-user", "arch": "s390x"}
    run.conformance = {"results": [
        _res("madvise.guard_install.access_faults/private_anon", "fail", {"access": "none"}, cls="not_honoured"),
        _res("mmap.fixed_noreplace.eexist_over_mapping", "fail", cls="not_honoured"),
        _res("mmap.anon.zero_fill", "pass"), _res("mprotect.hole.enomem", "timeout")]}
    rules = [{"probe": "madvise.guard_install.*", "when": {"emulation": "qemu-user*"}, "verdict": "system",
              "reading": "qemu-user ignores MADV_GUARD_INSTALL"},
             {"probe": "mmap.*", "when": {"emulation": "user-mode-linux"}, "reading": "not this one"}]
    (s,) = findings.collect([run], ["qemu-user-s390x"], rules)
    assert s.target == "qemu-user:s390x" and s.others == {"timeout": 1}
    guard, noreplace = s.items
    assert (guard.reading, guard.verdict) == ("qemu-user ignores MADV_GUARD_INSTALL", "system")
    assert "access: none" in guard.did
    assert noreplace.verdict == "untriaged" and noreplace.reading == findings.BY_CLASS["not_honoured"]
    doc = findings.to_json([s], "now")
    assert doc["systems"][0]["fails"][0]["probe"] == "madvise.guard_install.access_faults/private_anon"


def test_every_triage_rule_is_well_formed(repo_root):
    import fnmatch
    with open(os.path.join(repo_root, "results", "triage.json")) as f:
        doc = json.load(f)
    assert doc["schema"] == "pagelab.triage/1"
    for rule in doc["rules"]:
        assert set(rule) <= {"probe", "when", "verdict", "reading", "why"}, rule
        assert rule["verdict"] in ("system", "ours") and rule["reading"] and "\n" not in rule["reading"]
        assert fnmatch.translate(rule["probe"]) and isinstance(rule.get("when", {}), dict)
