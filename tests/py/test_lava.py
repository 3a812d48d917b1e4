"""LAVA: the monitors that turn the console into test cases, the job YAML, the API's log
format, offline validation of every job pagelab writes (lava_common's schema and
`lava-run --validate` on a rendered device), one job run by a standalone lava-run,
and one run end to end through a LAVA instance brought up here (tests/fleet/lavalab.py)."""
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from pagelab_host.errors import UserError
from pagelab_host.targets import _lava_api, _lava_job
from pagelab_host.targets.lava import Artifacts, parse_target

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fleet"))
import lavalab  # noqa: E402

HAVE_LAVA_COMMON = os.path.isdir("/usr/lib/python3/dist-packages/lava_common")
HAVE_LAVA_RUN = shutil.which("lava-run") is not None
needs_lava_common = pytest.mark.skipif(not HAVE_LAVA_COMMON, reason="lava-common is not installed")
needs_lava_run = pytest.mark.skipif(not HAVE_LAVA_RUN, reason="lava-dispatcher is not installed")


def _matches(pattern, text):
    """Every match, as LAVA's monitor finds them (pexpect compiles with DOTALL)."""
    return [m.groupdict() for m in re.compile(pattern, re.DOTALL).finditer(text)]


def test_conformance_monitor_reads_every_tap_outcome():
    out = "".join("=== pagelab-out conformance %s\r\n" % ln for ln in (
        "TAP version 13", "1..5", "ok 1 - mmap.anon.zero_fill/private_anon", "  ---", "  status: pass",
        "ok 2 - madvise.free.contents_after/shared_anon # SKIP MADV_FREE refused (EINVAL)",
        "not ok 3 - mremap.grow.keeps_contents", "not ok 4 - brk.libc.shrink # TODO xfail: musl",
        "ok 5 - fork.cow.private"))
    found = [(m["test_case_id"], _lava_job.CONFORMANCE_FIXUP[m["result"]])
             for m in _matches(_lava_job.CONFORMANCE_PATTERN, out + "=== pagelab-out conformance ok 6 - half.li")]
    assert found == [("mmap.anon.zero_fill/private_anon", "pass"), ("madvise.free.contents_after/shared_anon", "skip"),
                     ("mremap.grow.keeps_contents", "fail"), ("brk.libc.shrink", "pass"), ("fork.cow.private", "pass")]


def test_perf_monitor_reads_measurements_and_skips():
    lines = ["Benchmark    Time   CPU   Iterations  Counters (per iteration)",
             "mmap/map_unmap/4096      3226.2 ns      3222.4 ns         4381  page-faults=0 pages=1",
             "madvise/pageout/4096     SKIPPED: needs swap",
             "mmap/map_unmap/4096_median   3200.0 ns   3190.0 ns   5",
             "mmap/map_unmap/4096_cv   2.90 %   2.80 %   5",
             "mmap/map_unmap/4096 bimodal: 3 at 3226 ns, 2 at 4400 ns"]
    out = "".join("=== pagelab-out perf %s\r\n" % ln for ln in lines)
    found = [(m["test_case_id"], _lava_job.PERF_FIXUP[m["result"]], m["measurement"], m["units"])
             for m in _matches(_lava_job.PERF_PATTERN, out)]
    assert found == [("mmap/map_unmap/4096", "pass", "3226.2", "ns"), ("madvise/pageout/4096", "skip", None, ""),
                     ("mmap/map_unmap/4096_median", "pass", "3200.0", "ns")]


def _spec(boot="qemu", device_type="qemu", arch="amd64", parts=("conformance", "perf")):
    """A job whose files are on a lab's file server (validation stands in local files for them)."""
    base = "https://files.example/pagelab/"
    return _lava_job.JobSpec(device_type, boot, base + "vmlinuz", base + "initramfs.cpio", parts,
                             dtb_url=base + "board.dtb" if boot == "u-boot" else None, arch=arch, minutes=30)


def test_job_yaml_reads_back_as_the_job():
    yaml = pytest.importorskip("yaml")
    for spec in (_spec(), _spec("u-boot", "bcm2711-rpi-4-b", "aarch64"), _spec("grub", "synquacer", "aarch64")):
        job = _lava_job.definition(spec)
        assert yaml.safe_load(_lava_job.to_yaml(job)) == job
    assert yaml.safe_load(_lava_job.to_yaml({"a": ["yes", "no", "1.5", "on"], "b": {}})) == \
        {"a": ["yes", "no", "1.5", "on"], "b": {}}


def test_job_boots_with_the_guest_init_and_a_quiet_kernel():
    job = _lava_job.definition(_spec(parts=("conformance",)))
    deploy, boot, test = (next(iter(a.values())) for a in job["actions"])
    assert deploy["to"] == "tmpfs" and "loglevel=1" in deploy["images"]["kernel"]["image_arg"]
    assert boot["parameters"]["kernel-start-message"] == _lava_job.ALIVE
    assert [m["name"] for m in test["monitors"]] == ["pagelab-conformance"]
    assert job["context"]["arch"] == "amd64"
    with pytest.raises(UserError, match="device tree"):
        _lava_job.JobSpec("x", "u-boot", "k", "r", [], arch="aarch64")
    with pytest.raises(UserError, match="boot method"):
        _lava_job.check_boot("pxe", "amd64", None)


def test_target_spec_artifacts_and_server_urls(tmp_path):
    assert parse_target("http://lava.example/#qemu", "lava:x") == ("http://lava.example/", "qemu")
    assert parse_target("lkft#bcm2711-rpi-4-b", "lava:x") == ("lkft", "bcm2711-rpi-4-b")
    for bad in ("http://lava.example/", "#qemu", "x#bad type"):
        with pytest.raises(UserError, match="lava:SERVER#DEVICE_TYPE"):
            parse_target(bad, "lava:" + bad)
    assert _lava_api.server_url("https://lava.example/RPC2") == "https://lava.example/"
    assert _lava_api.server_url("http://127.0.0.1:8000") == "http://127.0.0.1:8000/"
    with pytest.raises(UserError):
        _lava_api.server_url("lava.example")
    a = Artifacts("%s=https://files.example/pagelab" % tmp_path, "unused")
    f = tmp_path / "in.cpio"
    f.write_bytes(b"070701")
    url = a.publish(str(f), ".cpio")
    assert url.startswith("https://files.example/pagelab/pagelab-") and url.endswith(".cpio")
    assert os.path.exists(tmp_path / url.rsplit("/", 1)[1])
    assert Artifacts(None, str(tmp_path)).url == "file://%s/" % tmp_path


def test_token_from_lavacli_identity_or_environment(tmp_path, monkeypatch):
    pytest.importorskip("yaml")
    (tmp_path / "lavacli.yaml").write_text("lab:\n  uri: https://lava.example/RPC2\n  username: me\n  token: t0k\n")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv("PAGELAB_LAVA_TOKEN", raising=False)
    s = _lava_api.connect("lab")
    assert (s.url, s.token) == ("https://lava.example/", "t0k")
    assert _lava_api.connect("https://lava.example/").token == "t0k"
    monkeypatch.setenv("PAGELAB_LAVA_TOKEN", "env")
    assert _lava_api.connect("lab").token == "env"
    with pytest.raises(UserError, match="neither a URL nor a lavacli identity"):
        _lava_api.connect("other")


def test_log_entries_and_console_lines():
    """LAVA writes a backslash before every double quote of a console line; reading it back undoes that."""
    original = 'reason: "a \\"b\\" c"'
    stored = original.replace('"', '\\"')
    text = ('- {"dt": "1", "lvl": "info", "msg": "start"}\n'
            '- %s\n' % json.dumps({"dt": "2", "lvl": "target", "msg": stored}) +
            '- {"dt": "3", "lvl": "feedback", "msg": "=== pagelab-done all 0", "ns": "common"}\n'
            '- {"dt": "4", "lvl": "results", "msg": {"case": "job", "result": "pass"}}\n'
            'not a log line\n')
    entries = _lava_api.parse_log(text)
    assert [_lava_api.console_line(e) for e in entries] == [None, original, "=== pagelab-done all 0", None, None]


# ---- offline validation of what pagelab writes ----

BOARDS = [("u-boot", "bcm2711-rpi-4-b"), ("grub", "synquacer")]


@needs_lava_common
@pytest.mark.parametrize("boot,device_type", [("qemu", "qemu")] + BOARDS)
def test_every_job_kind_validates_offline(boot, device_type):
    for parts in (("conformance", "perf"), ("conformance",), ("perf",)):
        job = _lava_job.definition(_spec(boot, device_type, "amd64" if boot == "qemu" else "aarch64", parts))
        problems, notes = _lava_job.validate(job)
        assert problems == []
        if HAVE_LAVA_RUN and (boot == "qemu" or (shutil.which("in.tftpd") and shutil.which("mkimage"))):
            assert notes == []


@needs_lava_run
def test_validation_reports_what_lava_run_refuses():
    job = _lava_job.definition(_spec())
    job["actions"][1]["boot"]["media"] = "tmpfs"
    job["actions"][0]["deploy"]["images"]["kernel"]["url"] = "file:///no/such/vmlinuz"
    problems, _ = _lava_job.validate(job)
    assert problems and "lava-run --validate" in problems[0]
    job = _lava_job.definition(_spec())
    job["actions"][2]["test"]["monitors"][0]["name"] = "bad name"
    problems, _ = _lava_job.validate(job)
    assert problems and problems[0].startswith("schema:")


def _pagelab(repo_root, python_exe, args, env=None, timeout=900):
    return subprocess.run([python_exe, os.path.join(repo_root, "runners", "pagelab")] + args, capture_output=True,
                          text=True, timeout=timeout, env=dict(os.environ, **(env or {})))


@pytest.fixture(scope="module")
def qemu_job(repo_root, python_exe, tmp_path_factory):
    """`pagelab lava job` for a qemu device: the mmap probes on Debian's 6.1 kernel."""
    if not (HAVE_LAVA_COMMON and HAVE_LAVA_RUN and shutil.which("qemu-system-x86_64")):
        pytest.skip("needs lava-common, lava-dispatcher and qemu-system-x86")
    d = tmp_path_factory.mktemp("lava-job")
    p = _pagelab(repo_root, python_exe, ["lava", "job", "--device-type", "qemu", "--no-perf", "--probes", "mmap.*",
                                         "--artifacts", str(d / "artifacts"), "--minutes", "15", "-o",
                                         str(d / "job.yaml")])
    assert p.returncode == 0, p.stderr[-2000:]
    assert "lava-run --validate not run" not in p.stderr
    return d / "job.yaml"


def test_a_job_runs_under_a_standalone_lava_run(qemu_job, tmp_path):
    """lava-run without a server: the device boots, each probe is a LAVA test case, the files come back."""
    import yaml
    job = yaml.safe_load(qemu_job.read_text())
    device = tmp_path / "device.yaml"
    device.write_text(_lava_job.render_device(lavalab.device_dictionary(), job))
    res = subprocess.run(["nice", "-n", "10", "lava-run", "--job-id", str(os.getpid()), "--output-dir",
                          str(tmp_path / "out"), "--device", str(device), str(qemu_job)],
                         capture_output=True, text=True, timeout=900)
    entries = _json_lines(res.stderr)
    results = [e["msg"] for e in entries if e["lvl"] == "results"]
    assert {"case": "job", "definition": "lava", "result": "pass"} in results, res.stderr[-3000:]
    cases = [r for r in results if r["definition"] == "pagelab-conformance"]
    console = [e["msg"].replace('\\"', '"') for e in entries if e["lvl"] in ("target", "feedback")]
    ids = [ln.split(" - ")[1].split()[0] for ln in console if re.match(r"=== pagelab-out conformance (not )?ok ", ln)]
    assert len(ids) > 10 and [c["extra"]["test_case_id"] for c in cases] == ids
    assert any(ln.startswith("=== pagelab-end conformance.json ") for ln in console)


def _json_lines(text):
    out = []
    for ln in text.splitlines():
        try:
            out.append(json.loads(ln))
        except ValueError:
            continue
    return [e for e in out if isinstance(e, dict) and "lvl" in e]


# ---- a LAVA instance on this machine ----

@pytest.fixture(scope="module")
def lab(build_dir):
    why = lavalab.missing_prerequisites()
    if why:
        pytest.skip("LAVA instance: " + why)
    lab = lavalab.Lab(os.path.join(build_dir, "check", "lava-%d" % os.getpid())).up()
    pids = dict(lab.state["pids"])
    yield lab
    lab.down()
    assert all(not os.path.exists("/proc/%d" % pid) for pid in pids.values())


def test_a_run_through_a_lava_instance(lab, repo_root, python_exe, tmp_path, qemu_job):
    spec = "lava:%s#%s" % (lab.url, lab.device_type)
    p = _pagelab(repo_root, python_exe, ["run", "--no-perf", "--probes", "mmap.*", "--target", spec, "--lava-artifacts",
                                         str(tmp_path / "artifacts"), "--out", str(tmp_path / "run")],
                 env={"PAGELAB_LAVA_TOKEN": lab.token})
    assert p.returncode == 0, p.stderr[-3000:]
    with open(tmp_path / "run" / "manifest.json") as f:
        m = json.load(f)
    assert m["complete"] is True and m["target"]["spec"] == spec
    lava = m["lava"]
    assert lava["health"] == "Complete" and lava["job_url"] == "%sscheduler/job/%d" % (lab.url, lava["job_id"])
    assert m["parts"]["conformance"]["seconds_from"] == "the LAVA log's timestamps"
    with open(tmp_path / "run" / "conformance.json") as f:
        conf = json.load(f)
    assert conf["summary"]["total"] > 10 and conf["env"]["kernel"].startswith("6.1.")
    assert sum(lava["test_cases"]["pagelab-conformance"].values()) == conf["summary"]["total"]
    with open(tmp_path / "run" / "env.json") as f:
        env = json.load(f)
    assert env["lava_job"] == lava["job_id"] and env["lava_device_type"] == "qemu"


def test_a_lava_target_without_a_token_is_one_line(lab, repo_root, python_exe, tmp_path):
    p = _pagelab(repo_root, python_exe, ["run", "--no-perf", "--target", "lava:%s#qemu" % lab.url, "--out",
                                         str(tmp_path / "run")], env={"PAGELAB_LAVA_TOKEN": "",
                                                                      "XDG_CONFIG_HOME": str(tmp_path)})
    assert p.returncode == 1 and "Traceback" not in p.stderr
    with open(tmp_path / "run" / "manifest.json") as f:
        m = json.load(f)
    assert "no token" in m["reason"] and "PAGELAB_LAVA_TOKEN" in m["reason"]
