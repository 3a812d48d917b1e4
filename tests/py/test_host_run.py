"""`pagelab run` with the project's own binaries: the run directory, the manifest, and dying targets."""
import json
import os
import stat
import subprocess

import pytest


def pagelab_run(repo_root, build, out, *extra):
    cmd = [os.path.join(repo_root, "runners", "pagelab"), "run", "--no-build", "--build", build, "--out", str(out)]
    return subprocess.run(cmd + list(extra), capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def real_run(repo_root, build_dir, tmp_path_factory):
    assert os.access(os.path.join(build_dir, "pagelab-conform"), os.X_OK), "run make first"
    out = tmp_path_factory.mktemp("run") / "r"
    # One cheap benchmark family keeps the test short; conformance runs in full.
    res = pagelab_run(repo_root, build_dir, out, "--filter", "^harness/")
    return out, res


def test_run_writes_a_complete_run_directory(real_run, build_dir):
    out, res = real_run
    assert "Traceback" not in res.stderr
    m = json.loads((out / "manifest.json").read_text())
    assert m["schema"] == "pagelab.manifest/2"
    assert m["target"] == {"spec": "local", "kind": "local", "label": "local"} and m["host"]["hostname"]
    assert m["parts"]["conformance"]["status"] in ("ok", "completed with failures")
    assert m["parts"]["conformance"]["exit_status"] in (0, 1)
    conf = json.loads((out / "conformance.json").read_text())
    assert conf["schema"] in ("pagelab.conformance/1", "pagelab.conformance/2")
    assert conf["summary"]["total"] == len(conf["results"]) > 0
    tap = (out / "conformance.tap").read_text()
    assert tap.startswith("TAP version 13") and "1..%d" % conf["summary"]["total"] in tap
    if os.access(os.path.join(build_dir, "pagelab-bench"), os.X_OK):
        assert m["parts"]["perf"]["status"] == "ok", m["parts"]["perf"]
        perf = json.loads((out / "perf.json").read_text())
        assert perf["benchmarks"] and all(b["name"].startswith("harness/") for b in perf["benchmarks"])
        assert m["complete"] is True and res.returncode == 0
    else:
        assert m["parts"]["perf"]["status"] == "not built"
        assert m["complete"] is False and res.returncode == 1
    assert m["finished"] and set(m["files"]) >= {"conformance.json", "report.html", "report.md", "env.json"}
    # No temporary file is left behind.
    assert not [n for n in os.listdir(out) if n.startswith(".")]


def test_run_prints_progress_and_the_report_path(real_run):
    out, res = real_run
    assert res.stdout.strip() == str(out / "report.html")
    assert "[conformance " in res.stderr and "elapsed" in res.stderr


def test_report_of_a_real_run_shows_its_probes(real_run):
    out, _ = real_run
    conf = json.loads((out / "conformance.json").read_text())
    md = (out / "report.md").read_text()
    for r in conf["results"]:
        assert "| %s |" % r["id"] in md or "| ▶ %s |" % r["id"] in md


def _fake_build(tmp_path, script):
    d = tmp_path / "fakebuild"
    d.mkdir()
    exe = d / "pagelab-conform"
    exe.write_text("#!/bin/sh\n" + script)
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return str(d)


def test_target_that_dies_leaves_an_incomplete_run_with_a_report(repo_root, tmp_path):
    # A target killed by a signal before writing results.
    build = _fake_build(tmp_path, "echo 'TAP version 13'\necho '1..5'\necho 'ok 1 - a.b'\nkill -SEGV $$\n")
    out = tmp_path / "dead"
    res = pagelab_run(repo_root, build, out)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    m = json.loads((out / "manifest.json").read_text())
    part = m["parts"]["conformance"]
    assert part["status"] == "died" and part["signal"] == "SIGSEGV" and part["exit_status"] == -11
    assert m["complete"] is False and "conformance died" in m["state"]
    assert m["parts"]["perf"]["status"] == "not built"
    assert (out / "conformance.tap").read_text().startswith("TAP version 13")
    assert (out / "report.html").exists() and "incomplete" in (out / "report.md").read_text()
    res = subprocess.run([os.path.join(repo_root, "runners", "pagelab"), "report", str(out)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "run is marked incomplete" in res.stderr


def test_existing_run_directory_is_never_overwritten(repo_root, tmp_path):
    build = _fake_build(tmp_path, "exit 3\n")
    out = tmp_path / "r"
    out.mkdir()
    (out / "keep").write_text("x")
    res = pagelab_run(repo_root, build, out, "--no-perf")
    assert (out / "keep").read_text() == "x"
    assert (tmp_path / "r-2" / "manifest.json").exists(), res.stderr


def test_fresh_run_files_match_the_documented_schemas(real_run, repo_root):
    from test_host_schema import violations
    out, _ = real_run
    for name, kind in (("manifest.json", "manifest"), ("conformance.json", "conformance"), ("perf.json", "perf"),
                       ("findings.json", "findings")):
        if not (out / name).exists():
            continue
        schema = json.loads(open(os.path.join(repo_root, "results", "schema", kind + ".schema.json")).read())
        assert violations(json.loads((out / name).read_text()), schema) == [], name


def test_stopped_run_is_kept_as_interrupted_with_a_report(repo_root, tmp_path):
    import signal
    import time
    build = _fake_build(tmp_path, "echo 'TAP version 13'\necho '1..3'\nexec sleep 60\n")
    out = tmp_path / "stopped"
    cmd = [os.path.join(repo_root, "runners", "pagelab"), "run", "--no-build", "--build", build, "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (out / "logs" / "conformance.stderr").exists():
        time.sleep(0.2)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err
    m = json.loads((out / "manifest.json").read_text())
    assert m["parts"]["conformance"]["status"] == "interrupted"
    assert "perf" not in m["parts"]  # nothing runs after an interrupt
    assert m["complete"] is False and (out / "report.html").exists()
