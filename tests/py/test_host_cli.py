"""The pagelab CLI: help on every subcommand, and one clear line (never a traceback) for bad input."""
import glob
import json
import os
import shutil
import subprocess

import pytest

SUBCOMMANDS = ("run", "targets", "compare", "report", "plot", "list", "kernels", "export")


def pagelab(repo_root, *args, results=None):
    cmd = [os.path.join(repo_root, "runners", "pagelab")]
    if results:
        cmd += ["--results", results]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=300)


def fixture_runs(fixtures_dir):
    runs = sorted(glob.glob(os.path.join(fixtures_dir, "runs", "*")))
    assert len(runs) >= 2, "tests/fixtures/runs must hold at least two real runs"
    return runs


def assert_one_line_error(res, *words):
    assert res.returncode != 0
    assert "Traceback" not in res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("pagelab: error:")]
    assert len(lines) == 1, res.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])


def test_launcher_runs_under_any_python(repo_root):
    # The launcher re-executes itself with Debian's python3 when the first one lacks numpy/matplotlib.
    res = subprocess.run(["python3", os.path.join(repo_root, "runners", "pagelab"), "--help"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "compare" in res.stdout


@pytest.mark.parametrize("sub", SUBCOMMANDS)
def test_every_subcommand_has_help(repo_root, sub):
    res = pagelab(repo_root, sub, "--help")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("usage: pagelab %s" % sub)


def test_unknown_option_is_a_usage_error(repo_root):
    res = pagelab(repo_root, "compare", "--bogus", "x")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "unrecognized arguments: --bogus" in res.stderr


def test_missing_path(repo_root, tmp_path):
    res = pagelab(repo_root, "report", str(tmp_path / "nope"))
    assert_one_line_error(res, str(tmp_path / "nope"), "no such file or directory")


def test_directory_that_is_not_a_run(repo_root, tmp_path):
    res = pagelab(repo_root, "report", str(tmp_path))
    assert_one_line_error(res, str(tmp_path), "not a run directory")


def test_file_instead_of_run(repo_root, tmp_path):
    f = tmp_path / "x.json"
    f.write_text("{}")
    res = pagelab(repo_root, "compare", str(f))
    assert "Traceback" not in res.stderr
    assert "%s: not a run directory" % f in res.stderr
    assert res.returncode == 2


def test_wrong_schema_version_is_named_and_compare_carries_on(repo_root, fixtures_dir, tmp_path):
    a, b = fixture_runs(fixtures_dir)[:2]
    bad = tmp_path / "bad"
    shutil.copytree(b, bad)
    doc = json.loads((bad / "conformance.json").read_text())
    doc["schema"] = "pagelab.conformance/99"
    (bad / "conformance.json").write_text(json.dumps(doc))
    res = pagelab(repo_root, "compare", a, str(bad), "--out", str(tmp_path / "cmp"), "--no-figures")
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    assert "%s: schema 'pagelab.conformance/99' is not one of pagelab.conformance/1, pagelab.conformance/2" % (bad / "conformance.json") in res.stderr
    # The perf part of the bad run is still valid and compared.
    md = (tmp_path / "cmp" / "report.md").read_text()
    assert "`bad`" in md and "## Cost" in md


def test_truncated_perf_json(repo_root, fixtures_dir, tmp_path):
    a, b = fixture_runs(fixtures_dir)[:2]
    bad = tmp_path / "trunc"
    shutil.copytree(b, bad)
    text = (bad / "perf.json").read_text()
    (bad / "perf.json").write_text(text[: len(text) // 2])
    res = pagelab(repo_root, "compare", a, str(bad), "--out", str(tmp_path / "cmp"), "--no-figures")
    assert res.returncode == 0 and "Traceback" not in res.stderr
    assert "%s: truncated JSON" % (bad / "perf.json") in res.stderr
    assert (tmp_path / "cmp" / "report.html").exists()


def test_benchmark_missing_from_one_run(repo_root, fixtures_dir, tmp_path):
    a, b = fixture_runs(fixtures_dir)[:2]
    cut = tmp_path / "cut"
    shutil.copytree(b, cut)
    doc = json.loads((cut / "perf.json").read_text())
    gone = doc["benchmarks"][0]["run_name"]
    doc["benchmarks"] = [x for x in doc["benchmarks"] if x.get("run_name") != gone]
    (cut / "perf.json").write_text(json.dumps(doc))
    res = pagelab(repo_root, "compare", a, str(cut), "--out", str(tmp_path / "cmp"), "--no-figures")
    assert res.returncode == 0 and "Traceback" not in res.stderr
    assert "%s: benchmark %s is missing" % (cut / "perf.json", gone) in res.stderr
    row = [ln for ln in (tmp_path / "cmp" / "report.md").read_text().splitlines() if ln.startswith("| %s |" % gone)]
    assert len(row) == 1 and row[0].rstrip().endswith("| missing |")


def test_compare_with_no_valid_run(repo_root, tmp_path):
    res = pagelab(repo_root, "compare", str(tmp_path / "a"), str(tmp_path / "b"))
    assert_one_line_error(res, "no valid run")


def test_baseline_must_be_compared(repo_root, fixtures_dir, tmp_path):
    a, b = fixture_runs(fixtures_dir)[:2]
    res = pagelab(repo_root, "compare", a, "--baseline", b, "--out", str(tmp_path / "c"))
    assert_one_line_error(res, "baseline is not one of the runs")


def test_list_shows_runs_and_parts(repo_root, fixtures_dir):
    runs = fixture_runs(fixtures_dir)
    res = pagelab(repo_root, "list", results=os.path.join(fixtures_dir, "runs"))
    assert res.returncode == 0, res.stderr
    for r in runs:
        assert os.path.basename(r) in res.stdout
    res = pagelab(repo_root, "list", runs[0])
    assert res.returncode == 0
    assert "part conformance" in res.stdout and "file      perf.json" in res.stdout


@pytest.mark.parametrize("name", ["manifest.json", "conformance.json", "perf.json"])
def test_damaged_files_never_give_a_traceback(repo_root, fixtures_dir, tmp_path, name):
    src = fixture_runs(fixtures_dir)[0]
    text = open(os.path.join(src, name), encoding="utf-8").read()
    damages = [text[: len(text) * k // 7] for k in range(1, 7)] + ["[]", "null", '{"schema": 1}', "\x00\x01"]
    for i, damaged in enumerate(damages):
        run = tmp_path / ("r%d" % i)
        shutil.copytree(src, run)
        (run / name).write_text(damaged)
        res = pagelab(repo_root, "report", str(run), "--no-figures")
        assert "Traceback" not in res.stderr, (i, res.stderr)
        assert res.returncode == 0, (i, res.stderr)
        assert str(run / name) in res.stderr, (i, res.stderr)
