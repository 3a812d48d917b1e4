"""The user's side of `pagelab`: what the end of a run says, typos caught before anything runs,
options for kernel developers, CSV export, --fail-above, and JUnit XML."""
import csv
import glob
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import pytest

from pagelab_host import __version__, model, summary, targets
from pagelab_host.cli import build_parser

SUITE_ERROR = "pagelab: error:"


def pagelab(repo_root, *args, env=None, timeout=300):
    return subprocess.run([os.path.join(repo_root, "runners", "pagelab")] + list(args), capture_output=True,
                          text=True, timeout=timeout, env=env)


def one_error_line(res, *words):
    assert res.returncode == 2, (res.returncode, res.stderr)
    assert "Traceback" not in res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith(SUITE_ERROR)]
    assert len(lines) == 1, res.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


def fixture_runs(fixtures_dir):
    return sorted(glob.glob(os.path.join(fixtures_dir, "runs", "*")))


FAKE_CONFORM = r'''#!/usr/bin/python3
import json, sys
argv = sys.argv[1:]
if "-l" in argv:
    sys.exit(0)
out = argv[argv.index("--json") + 1]
results = [{"id": "a.pass%d" % i, "status": "pass"} for i in range(3)]
results += [{"id": "b.fail%d" % i, "status": "fail", "class": "not_honoured", "reason": "r%d" % i} for i in range(8)]
results += [{"id": "c.skip", "status": "skip", "class": "unsupported", "reason": "no such advice"},
            {"id": "d.err", "status": "error", "class": "environment", "reason": "no memory"}]
print("TAP version 13")
print("1..%d" % len(results))
for n, r in enumerate(results, 1):
    print("%s %d - %s" % ("ok" if r["status"] in ("pass", "skip") else "not ok", n, r["id"]))
json.dump({"schema": "pagelab.conformance/2", "env": {}, "results": results,
           "summary": {"total": len(results)}}, open(out, "w"))
sys.exit(1)
'''


def fake_build(tmp_path, conform=FAKE_CONFORM):
    d = tmp_path / "fakebuild"
    d.mkdir()
    exe = d / "pagelab-conform"
    exe.write_text(conform)
    exe.chmod(0o755)
    return str(d)


# ---- 1. the end of a run ----

def test_end_of_run_names_counts_fails_report_and_how_to_open_it(repo_root, tmp_path):
    build = fake_build(tmp_path)
    out = tmp_path / "run"
    res = pagelab(repo_root, "run", "--no-build", "--build", build, "--no-perf", "--out", str(out))
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    err = res.stderr
    assert "pagelab: local: complete" in err
    assert "conformance: 3 pass, 8 fail, 1 skip, 1 error (13 probes)" in err
    assert "failed: b.fail0, b.fail1, b.fail2, b.fail3, b.fail4 and 3 more" in err
    assert "errors: d.err" in err
    assert "report: %s" % (out / "report.html") in err
    assert "open it: xdg-open %s" % (out / "report.html") in err
    assert res.stdout.strip() == str(out / "report.html")


def test_interrupted_run_says_the_exact_resume_command(repo_root, tmp_path):
    build = fake_build(tmp_path, "#!/bin/sh\necho 'TAP version 13'\necho '1..3'\nexec sleep 60\n")
    out = tmp_path / "stopped"
    proc = subprocess.Popen([os.path.join(repo_root, "runners", "pagelab"), "run", "--no-build", "--build", build,
                             "--no-perf", "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=repo_root)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (out / "logs" / "conformance.stderr").exists():
        time.sleep(0.2)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err
    assert "interrupted; finish it with: runners/pagelab run --resume %s" % out in err, err
    # The command works as printed: the run's own build is used again, without naming it.
    shutil.rmtree(build)
    fake_build(tmp_path)
    res = subprocess.run(["runners/pagelab", "run", "--resume", str(out)], capture_output=True, text=True,
                         timeout=300, cwd=repo_root)
    assert "Traceback" not in res.stderr and res.returncode == 0, res.stderr
    assert json.loads((out / "manifest.json").read_text())["parts"]["conformance"]["status"] == \
        "completed with failures"


def test_counts_follow_model_statuses_and_keep_unknown_ones(monkeypatch):
    results = [{"id": "p", "status": "pass"}, {"id": "d", "status": "differs"}, {"id": "n", "status": "novel"},
               {"id": "s", "status": "skip"}, {"id": "f", "status": "fail"}]
    monkeypatch.setattr(model, "STATUSES", ("pass", "fail", "differs", "skip", "xfail", "error", "timeout"))
    assert summary.counts_text(results) == "1 pass, 1 fail, 1 differs, 1 skip, 1 novel (5 probes)"
    monkeypatch.setattr(model, "STATUSES", ("pass", "fail", "skip", "xfail", "error", "timeout"))
    assert summary.counts_text(results) == "1 pass, 1 fail, 1 skip, 1 differs, 1 novel (5 probes)"
    assert summary.counts_text(results[:1]) == "1 pass, 0 fail (1 probes)"


def test_several_targets_end_with_one_line_each(repo_root, tmp_path):
    build = fake_build(tmp_path)
    res = pagelab(repo_root, "run", "--no-build", "--build", build, "--no-perf", "--target", "local",
                  "--target", "wrap:env", "--out", str(tmp_path / "many"))
    assert "Traceback" not in res.stderr
    assert "pagelab: 2 targets:" in res.stderr and "pagelab: comparison: " in res.stderr
    for spec in ("local", "wrap:env"):
        assert any(ln.startswith("pagelab:   %s" % spec) and "8 fail" in ln for ln in res.stderr.splitlines())


# ---- 2. typos caught before anything runs ----

def test_probes_pattern_that_matches_nothing_is_refused_before_running(repo_root, build_dir, tmp_path):
    if not os.access(os.path.join(build_dir, "pagelab-conform"), os.X_OK):
        pytest.skip("run make first")
    out = tmp_path / "o"
    res = pagelab(repo_root, "run", "--no-build", "--build", build_dir, "--probes", "mmap.*",
                  "--probes", "mmap.nosuch*", "--out", str(out))
    one_error_line(res, "--probes 'mmap.nosuch*': matches no probe")
    assert "'mmap.*'" not in res.stderr and not out.exists()


def test_filter_that_matches_no_benchmark_is_refused(repo_root, build_dir, tmp_path):
    if not os.access(os.path.join(build_dir, "pagelab-bench"), os.X_OK):
        pytest.skip("pagelab-bench not built")
    out = tmp_path / "o"
    res = pagelab(repo_root, "run", "--no-build", "--build", build_dir, "--filter", "^harnes/", "--out", str(out))
    one_error_line(res, "--filter '^harnes/': matches no benchmark")
    res = pagelab(repo_root, "run", "--no-build", "--build", build_dir, "--filter", "^harness/(", "--out", str(out))
    one_error_line(res, "not a valid regular expression")
    assert not out.exists()


@pytest.mark.parametrize("args,words", [
    (["run", "--memory", "2X"], "'2X' is not a size"),
    (["kernels", "6.1", "--memory", "lots"], "'lots' is not a size"),
    (["run", "--cpus", "0"], "must be at least 1"),
    (["run", "--label", "a/b", "--target", "kernel:6.1"], "a label is"),
    (["run", "--label", "x"], "no kernel target is given"),
    (["compare", "a", "--fail-above", "much"], "not a percentage"),
])
def test_malformed_values_are_one_line(repo_root, tmp_path, args, words):
    one_error_line(pagelab(repo_root, *args, "--out", str(tmp_path / "o")) if args[0] != "compare"
                   else pagelab(repo_root, *args), words)
    assert not (tmp_path / "o").exists()


def test_global_options_are_taken_after_the_subcommand(repo_root, fixtures_dir):
    runs = os.path.join(fixtures_dir, "runs")
    res = pagelab(repo_root, "list", "--results", runs)
    assert res.returncode == 0, res.stderr
    assert all(os.path.basename(r) in res.stdout for r in fixture_runs(fixtures_dir))
    a = build_parser().parse_args(["run", "--results", "/x"])
    b = build_parser().parse_args(["--results", "/x", "run"])
    c = build_parser().parse_args(["run"])
    assert a.results == b.results == "/x" and c.results.endswith("results")


def test_compare_refuses_a_directory_that_is_not_a_run(repo_root, fixtures_dir, tmp_path):
    a = fixture_runs(fixtures_dir)[0]
    res = pagelab(repo_root, "compare", a, str(tmp_path), "--out", str(tmp_path / "c"), "--no-figures")
    one_error_line(res, "%s: not a run directory" % tmp_path)
    assert not (tmp_path / "c").exists()


def test_every_missing_package_in_one_apt_get_line(repo_root, tmp_path):
    env = dict(os.environ, PATH="/nonexistent")
    res = subprocess.run([sys.executable, os.path.join(repo_root, "runners", "pagelab"), "run",
                          "--target", "qemu-user:s390x", "--target", "musl", "--target", "wrap:nosuchlauncher",
                          "--out", str(tmp_path / "o")], capture_output=True, text=True, env=env, timeout=120)
    line = one_error_line(res, "qemu-s390x-static not found", "musl-gcc not found", "nosuchlauncher not found")
    apt = line.split("all at once: ")[1]
    assert apt.startswith("apt-get install ")
    assert set(apt.split()[2:]) >= {"qemu-user-static", "musl-tools", "gcc-s390x-linux-gnu"}
    assert "provides" not in apt


def test_version(repo_root):
    res = pagelab(repo_root, "--version")
    assert res.returncode == 0 and res.stdout.strip() == "pagelab %s" % __version__


def test_manifest_records_the_version(repo_root, tmp_path):
    build = fake_build(tmp_path)
    out = tmp_path / "run"
    pagelab(repo_root, "run", "--no-build", "--build", build, "--no-perf", "--out", str(out))
    assert json.loads((out / "manifest.json").read_text())["host"]["pagelab_version"] == __version__


# ---- 4. for kernel developers ----

def kernel_target(*args):
    ns = build_parser().parse_args(["run", "--target", "kernel:6.1/arm64"] + list(args))
    t = targets.resolve("kernel:6.1/arm64", ns)
    targets.apply_labels([t], ns.label or [])
    return t


def test_append_and_label_reach_the_kernel_line_the_run_id_and_env():
    t = kernel_target("--append", "mitigations=off  transparent_hugepage=always", "--label", "fix-1")
    assert t.append("run").endswith(" mitigations=off  transparent_hugepage=always")
    assert "pagelab.mode=run" in t.append("run")
    assert t.label() == "kernel-6.1-arm64-fix-1"
    d = t.describe()
    assert d["kernel_append"] == "mitigations=off  transparent_hugepage=always" and d["run_label"] == "fix-1"
    plain = kernel_target()
    assert plain.label() == "kernel-6.1-arm64" and "kernel_append" not in plain.describe()


def test_one_label_per_kernel_target():
    ns = build_parser().parse_args(["run", "--label", "a", "--label", "b"])
    ts = [targets.resolve(s, ns) for s in ("kernel:6.1/arm64", "local", "kernel:6.12/arm64")]
    targets.apply_labels(ts, ns.label)
    assert [t.label() for t in ts] == ["kernel-6.1-arm64-a", "local", "kernel-6.12-arm64-b"]
    with pytest.raises(Exception, match="given 3 times for 2 kernel targets"):
        targets.apply_labels(ts, ["a", "b", "c"])


def test_export_csv_has_every_probe_and_benchmark_median(repo_root, fixtures_dir, tmp_path):
    runs = fixture_runs(fixtures_dir)
    res = pagelab(repo_root, "export", "--csv", *runs)
    assert res.returncode == 0, res.stderr
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    for r in runs:
        conf = json.loads(open(os.path.join(r, "conformance.json")).read())
        mine = [x for x in rows if x["run"] == os.path.basename(r)]
        assert sorted(x["name"] for x in mine if x["part"] == "conformance") == sorted(c["id"] for c in conf["results"])
        perf = [x for x in mine if x["part"] == "perf"]
        assert perf and all(float(x["median_ns"]) > 0 for x in perf if x["outcome"] == "measured")
    out = tmp_path / "x.csv"
    assert pagelab(repo_root, "export", runs[0], "-o", str(out)).returncode == 0
    assert out.read_text().startswith("run,target,label,part,name,outcome")
    one_error_line(pagelab(repo_root, "export", "--csv", runs[0], str(tmp_path / "nope")), "no such file")


def slowed_copy(src, dst, factor, which):
    shutil.copytree(src, dst)
    doc = json.loads((dst / "perf.json").read_text())
    for b in doc["benchmarks"]:
        if b.get("run_name") == which and isinstance(b.get("real_time"), (int, float)):
            b["real_time"] *= factor
    (dst / "perf.json").write_text(json.dumps(doc))


def test_compare_fail_above_exits_1_and_lists_regressions(repo_root, fixtures_dir, tmp_path):
    a = fixture_runs(fixtures_dir)[0]
    which = next(b["run_name"] for b in json.loads(open(os.path.join(a, "perf.json")).read())["benchmarks"]
                 if b.get("run_type") == "iteration")
    slow = tmp_path / "slow"
    slowed_copy(a, slow, 1.5, which)
    res = pagelab(repo_root, "compare", a, str(slow), "--no-figures", "--out", str(tmp_path / "c1"),
                  "--fail-above", "20")
    assert res.returncode == 1, res.stderr
    regs = [ln for ln in res.stderr.splitlines() if ln.startswith("pagelab: regression: ")]
    assert len(regs) == 1 and regs[0].startswith("pagelab: regression: %s: " % which) and "+50.0%" in regs[0]
    res = pagelab(repo_root, "compare", a, str(slow), "--no-figures", "--out", str(tmp_path / "c2"),
                  "--fail-above", "60")
    assert res.returncode == 0 and "0 benchmark(s) more than 60% slower" in res.stderr


# ---- 5. JUnit XML ----

def test_junit_xml_of_a_run(repo_root, tmp_path):
    build = fake_build(tmp_path)
    out = tmp_path / "run"
    pagelab(repo_root, "run", "--no-build", "--build", build, "--no-perf", "--out", str(out))
    root = ET.parse(str(out / "junit.xml")).getroot()
    suite = root.find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"), suite.get("skipped")) == \
        ("13", "8", "1", "1")
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert len(cases) == 13 and cases["b.fail3"].get("classname") == "pagelab.b"
    assert cases["b.fail3"].find("failure").get("message") == "not honoured: r3"
    assert cases["c.skip"].find("skipped").get("message") == "unsupported: no such advice"
    assert cases["d.err"].find("error") is not None and len(list(cases["a.pass0"])) == 0
    assert "junit.xml" in json.loads((out / "manifest.json").read_text())["files"]
    assert suite.get("timestamp") == json.loads((out / "manifest.json").read_text())["started"][:19]


def test_junit_report_command_and_differs_and_unknown_outcomes(repo_root, fixtures_dir, tmp_path):
    from pagelab_host.junit import document
    from pagelab_host.model import load_run
    run = tmp_path / "r"
    shutil.copytree(fixture_runs(fixtures_dir)[0], run)
    assert pagelab(repo_root, "report", str(run), "--no-figures").returncode == 0
    n = len(json.loads((run / "conformance.json").read_text())["results"])
    assert len(ET.parse(str(run / "junit.xml")).getroot().find("testsuite").findall("testcase")) == n
    r = load_run(str(run))
    r.conformance["results"] = [{"id": "zero_page.read\x01", "status": "differs", "reason": "no zero page"},
                                {"id": "x.y", "status": "novel", "reason": "?"},
                                {"id": "mmap.hint", "status": "observed", "observed": {"placed": "at the hint"}}]
    suite = document(r).getroot().find("testsuite")
    d, u, o = suite.findall("testcase")
    assert "no zero page" in d.find("system-out").text and d.find("failure") is None
    assert o.find("system-out").text == "observed (asserts nothing): placed: at the hint" and len(list(o)) == 1
    assert "outcome 'novel'" in u.find("skipped").get("message")
    assert suite.get("failures") == "0" and suite.get("skipped") == "1"
    ET.fromstring(ET.tostring(document(r).getroot()))  # the control character did not break the XML


def test_a_part_that_dies_says_what_the_binary_said(repo_root, tmp_path):
    # Where the pattern could not be checked first (no build here yet), the run says why it died.
    build = fake_build(tmp_path, "#!/bin/sh\necho 'pagelab-conform: no probe matches the filters (see --help)' >&2\n"
                                 "exit 2\n")
    out = tmp_path / "run"
    res = pagelab(repo_root, "run", "--no-build", "--build", build, "--no-perf", "--out", str(out))
    assert res.returncode == 1 and "Traceback" not in res.stderr
    part = json.loads((out / "manifest.json").read_text())["parts"]["conformance"]
    assert part["status"] == "died" and part["problem"].endswith("it said: pagelab-conform: no probe matches "
                                                                  "the filters (see --help)")
    assert "conformance: no results (died; " in res.stderr and "no probe matches the filters" in res.stderr


def test_filter_for_bigger_pages_is_left_to_targets_that_have_them(build_dir):
    from pagelab_host import checks
    from pagelab_host.errors import UserError
    if not os.access(os.path.join(build_dir, "pagelab-bench"), os.X_OK):
        pytest.skip("pagelab-bench not built")
    args = build_parser().parse_args(["run", "--no-build", "--build", build_dir, "--filter", "^mremap/grow/65536$"])
    # 64 KiB pages name the one-page instance 65536: a ppc64el kernel has it, this machine does not.
    checks.before_running(args, [targets.resolve("kernel:6.1/ppc64el", args)], "/nonexistent")
    with pytest.raises(UserError, match="matches no benchmark"):
        checks.before_running(args, [targets.resolve("local", args)], "/nonexistent")
    args.filter = "^mremap/grow/65537$"
    with pytest.raises(UserError, match="matches no benchmark"):
        checks.before_running(args, [targets.resolve("kernel:6.1/ppc64el", args)], "/nonexistent")


def test_resume_command_is_runnable_from_where_it_is_shown(repo_root, tmp_path, monkeypatch):
    monkeypatch.chdir(os.path.join(repo_root, "runners"))
    assert summary.resume_command(repo_root, str(tmp_path / "r")) == "./pagelab run --resume %s" % (tmp_path / "r")
    monkeypatch.chdir(repo_root)
    assert summary.resume_command(repo_root, os.path.join(repo_root, "results", "x y")) == \
        "runners/pagelab run --resume 'results/x y'"
    monkeypatch.chdir(str(tmp_path))
    assert summary.resume_command(repo_root, str(tmp_path / "r")).startswith(
        os.path.join(repo_root, "runners", "pagelab") + " run --resume r")


def test_fail_above_with_nothing_to_compare_is_no_pass(repo_root, fixtures_dir, tmp_path):
    a = fixture_runs(fixtures_dir)[0]
    noperf = tmp_path / "noperf"
    shutil.copytree(a, noperf)
    (noperf / "perf.json").unlink()
    res = pagelab(repo_root, "compare", a, str(noperf), "--no-figures", "--out", str(tmp_path / "c"),
                  "--fail-above", "5")
    one_error_line(res, "--fail-above: no benchmark", "nothing to judge")


def test_selection_is_checked_again_by_the_targets_own_build(build_dir):
    from types import SimpleNamespace
    from pagelab_host.plan import Options, make_plan
    from pagelab_host.targetrun import BadRequest
    if not os.access(os.path.join(build_dir, "pagelab-bench"), os.X_OK):
        pytest.skip("run make first")
    t = targets.resolve("local", build_parser().parse_args(["run"]))
    t.binaries = {n: os.path.join(build_dir, n) for n in ("pagelab-conform", "pagelab-bench")}
    for opts, words in ((Options(probe_filters=["mmap.*", "nosuch.*"]), "--probes 'nosuch.*': matches no probe"),
                        (Options(bench_filter="^harnes/"), r"--filter '\^harnes/': matches no benchmark")):
        with pytest.raises(BadRequest, match=words):
            t.check_selection(make_plan(opts, 1), SimpleNamespace(options=opts))
    fine = Options(probe_filters=["mmap.*"], bench_filter="^harness/")
    t.check_selection(make_plan(fine, 1), SimpleNamespace(options=fine))


def test_a_typo_found_after_the_build_stops_the_run_with_exit_2(repo_root, tmp_path):
    # The check before the run cannot tell (the binary fails its first listing, as a build that is not
    # there yet would); the target's own check after its build finds the typo before any part runs.
    count = tmp_path / "calls"
    build = fake_build(tmp_path, "#!/bin/sh\necho x >> %s\n" % count +
                       "[ $(wc -l < %s) -eq 1 ] && exit 1\n" % count +
                       "echo 'pagelab-conform: no probe matches the filters (see --help)' >&2\nexit 2\n")
    out = tmp_path / "run"
    res = pagelab(repo_root, "run", "--no-build", "--build", build, "--probes", "typo*", "--out", str(out))
    one_error_line(res, "--probes 'typo*': matches no probe")
    m = json.loads((out / "manifest.json").read_text())
    assert m["parts"] == {} or set(m["parts"]) <= {"report"}
    assert "matches no probe" in m["reason"] and m["complete"] is False


def test_without_a_desktop_opener_the_report_is_a_file_url(monkeypatch, tmp_path):
    monkeypatch.setattr(summary.shutil, "which", lambda tool: None)
    monkeypatch.setattr(summary.sys, "platform", "linux")
    assert summary.opener(str(tmp_path / "a b.html")) == "a browser, at file://%s" % (
        str(tmp_path / "a b.html").replace(" ", "%20"))
    monkeypatch.setattr(summary.shutil, "which", lambda tool: "/usr/bin/" + tool)
    assert summary.opener("r/report.html") == "xdg-open r/report.html"


def test_append_longer_than_the_kernel_keeps_is_refused(repo_root, tmp_path):
    res = pagelab(repo_root, "run", "--target", "kernel:6.1/riscv64", "--append", "x=" + "y" * 1100,
                  "--out", str(tmp_path / "o"))
    one_error_line(res, "kernel command line", "a riscv64 kernel keeps 1023")
    assert not (tmp_path / "o").exists()
    assert kernel_target("--append", "x=" + "y" * 1100).append("run").endswith("y")  # arm64 keeps 2047


def test_list_names_every_outcome_but_skips(repo_root, tmp_path):
    build = fake_build(tmp_path)
    results = tmp_path / "results"
    pagelab(repo_root, "run", "--no-build", "--build", build, "--no-perf", "--out", str(results / "r1"))
    res = pagelab(repo_root, "list", "--results", str(results))
    assert res.returncode == 0, res.stderr
    assert "conformance 3/13 pass, 8 fail, 1 error " in res.stdout


def test_end_lines_name_the_probes_that_differ(tmp_path, repo_root):
    results = [{"id": "zero_page.read%d" % i, "status": "differs"} for i in range(7)] + [{"id": "a", "status": "pass"}]
    (tmp_path / "conformance.json").write_text(json.dumps({"results": results}))
    lines = summary.lines("kernel:x", str(tmp_path), {"complete": True, "state": "complete"}, None, repo_root)
    assert "  differs: zero_page.read0, zero_page.read1, zero_page.read2, zero_page.read3, zero_page.read4 " \
           "and 2 more" in lines


def test_end_lines_give_the_fuzz_reproducers(tmp_path, repo_root):
    found = [{"signature": "sig%d" % i, "minimal": ["mmap anon-private 0 1 rw fixed", "madvise 0 1 free"]}
             for i in range(6)]
    (tmp_path / "fuzz.json").write_text(json.dumps({"sequences": 120, "seconds": 59.7, "findings": found}))
    lines = summary.lines("qemu-user:aarch64", str(tmp_path), {"complete": True, "state": "complete"}, None,
                          repo_root)
    assert "  fuzz: 120 sequences in 60 s, 6 minimal reproducers in %s" % (tmp_path / "fuzz") in lines
    assert "    sig0: mmap anon-private 0 1 rw fixed; madvise 0 1 free" in lines
    assert "    and 1 more" in lines
