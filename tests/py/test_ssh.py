"""ssh targets and fleets: spec parsing, ssh's errors as one line, target lists and Ansible
inventories; then real hosts made of network namespaces (tests/fleet/nshosts.py), one of
them a busybox chroot without Python or an sftp/scp server, run in parallel, one of them
killed in the middle of its run."""
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from pagelab_host.errors import UserError
from pagelab_host.fleet import read_targets_file
from pagelab_host.targets import kinds
from pagelab_host.targets._ssh_transport import Host, explain, parse_spec

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fleet"))
import nshosts  # noqa: E402


# ---- specs, messages, files ----

@pytest.mark.parametrize("text,expected", [
    ("db1", (None, "db1", None)), ("root@db1", ("root", "db1", None)), ("root@db1:2222", ("root", "db1", 2222)),
    ("10.1.2.3:22", (None, "10.1.2.3", 22)), ("me@[fe80::1]:2200", ("me", "fe80::1", 2200)),
    ("[::1]", (None, "::1", None))])
def test_ssh_spec(text, expected):
    assert parse_spec(text) == expected


@pytest.mark.parametrize("text", ["", "a@b@c", "host:port", "host:70000", "a b", "@host"])
def test_bad_ssh_spec_is_a_user_error(text):
    with pytest.raises(UserError, match=r"^ssh:"):
        parse_spec(text)


def test_ssh_complaints_become_one_line_with_what_to_do():
    unknown = explain("No ED25519 host key is known for [10.0.0.5]:2222 and you have requested strict checking.\r\n"
                      "Host key verification failed.\r\n", "10.0.0.5", 2222)
    assert "not known" in unknown and "ssh-keyscan -p 2222 10.0.0.5" in unknown and "\n" not in unknown
    changed = explain("@@@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @@@\nHost key verification failed.",
                      "db1", 22)
    assert "has changed" in changed and "ssh-keygen -R db1" in changed
    denied = explain("root@db1: Permission denied (publickey).", "db1", 22)
    assert "BatchMode" in denied and "ssh-agent" in denied
    assert explain("ssh: connect to host db1 port 22: Connection refused\n", "db1", 22).endswith("Connection refused")
    assert "went down" in explain("", "db1", 22)


def test_targets_file_lines_and_bare_hosts(tmp_path):
    f = tmp_path / "hosts.txt"
    f.write_text("# lab\nssh:db1\n\nroot@db2:2222   # second\nlocal\nkernel:6.1/arm64\nssh:db1\n"
                 "lava:http://lava.example/#qemu\n")
    assert read_targets_file(str(f), kinds()) == ["ssh:db1", "ssh:root@db2:2222", "local", "kernel:6.1/arm64",
                                                  "lava:http://lava.example/#qemu"]


def test_ansible_inventory_hosts_and_variables(tmp_path):
    f = tmp_path / "inventory.ini"
    f.write_text("""
loose.example
[web]
web[01:03].example ansible_user=deploy
db ansible_host=10.0.0.9 ansible_port=2200
[db:children]
web
[web:vars]
ansible_port=2222
[all:vars]
ansible_user=admin
[local]
control ansible_connection=local
[windows]
win1 ansible_connection=winrm
""")
    specs = read_targets_file(str(f), kinds())
    assert specs == ["ssh:admin@loose.example", "ssh:deploy@web01.example:2222", "ssh:deploy@web02.example:2222",
                     "ssh:deploy@web03.example:2222", "ssh:admin@10.0.0.9:2200", "local"]


def test_yaml_inventory_and_empty_files_are_one_line_errors(tmp_path):
    y = tmp_path / "inv.yml"
    y.write_text("all:\n  hosts:\n    db1:\n")
    with pytest.raises(UserError, match="YAML inventory"):
        read_targets_file(str(y), kinds())
    e = tmp_path / "empty"
    e.write_text("# nothing\n")
    with pytest.raises(UserError, match="names no target"):
        read_targets_file(str(e), kinds())
    with pytest.raises(UserError, match="cannot read"):
        read_targets_file(str(tmp_path / "missing"), kinds())


# ---- real hosts ----

@pytest.fixture(scope="module")
def fleet(build_dir):
    why = nshosts.missing_prerequisites()
    if why:
        pytest.skip("namespace ssh hosts: " + why)
    base = os.path.join(build_dir, "check", "fleet-%d" % os.getpid())
    f = nshosts.Fleet(base).up()
    yield f
    f.down()
    assert all(not nshosts.namespace_pids(h.netns) for h in f.hosts)


def _pagelab(repo_root, python_exe, fleet, args, timeout=900):
    env = dict(os.environ, PAGELAB_SSH_CONFIG=fleet.ssh_config)
    return subprocess.Popen([python_exe, os.path.join(repo_root, "runners", "pagelab"), "run", "--no-perf"] + args,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _runs(out):
    runs = {}
    for d in sorted(os.listdir(out)):
        path = os.path.join(out, d)
        if os.path.exists(os.path.join(path, "manifest.json")):
            with open(os.path.join(path, "manifest.json")) as f:
                m = json.load(f)
            runs[m["target"]["spec"]] = (path, m)
    return runs


def _control_dirs():
    import glob
    return set(glob.glob("/tmp/pagelab-ssh-*"))


def test_fleet_from_an_inventory_runs_everywhere_and_leaves_nothing(fleet, repo_root, python_exe, tmp_path):
    inv = tmp_path / "inventory.ini"
    inv.write_text("[lab]\n" + "".join("%s ansible_host=%s ansible_port=%d ansible_user=root\n"
                                       % (h.name, h.addr, h.port) for h in fleet.hosts))
    before = _control_dirs()
    p = _pagelab(repo_root, python_exe, fleet, ["--targets", str(inv), "--out", str(tmp_path / "runs")])
    out, err = p.communicate(timeout=900)
    assert p.returncode == 0, err[-3000:]
    runs = _runs(tmp_path / "runs")
    assert len(runs) == len(fleet.hosts)
    for h in fleet.hosts:
        path, m = runs["ssh:root@%s:%d" % (h.addr, h.port)]
        assert m["complete"] is True and m["parts"]["conformance"]["status"] in ("ok", "completed with failures")
        assert m["ssh"]["cleanup"] == "directory removed"
        assert m["ssh"]["transfer"] == ("cat" if h.kind == "busybox" else "sftp")
        with open(os.path.join(path, "env.json")) as f:
            env = json.load(f)
        assert env["hostname"] == h.name and env["ssh_hostname"] == h.addr
        with open(os.path.join(path, "conformance.json")) as f:
            assert json.load(f)["summary"]["total"] > 100
        assert os.listdir(fleet.tmp_of(h)) == [], "left on %s" % h.name
    assert not os.path.exists(os.path.join(fleet.hosts[-1].root, "usr", "bin", "python3"))
    compare = [d for d in os.listdir(tmp_path / "runs") if d.startswith("compare-")]
    assert compare and os.path.exists(tmp_path / "runs" / compare[0] / "report.html")
    assert _control_dirs() <= before


def _stop_when_running(netns, name="pagelab-conform", timeout=300):
    """SIGSTOP the first process named `name` in the namespace; its PID once it is stopped there."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in nshosts.namespace_pids(netns):
            try:
                with open("/proc/%d/comm" % pid) as f:
                    if f.read().strip() != name:
                        continue
                os.kill(pid, signal.SIGSTOP)
                with open("/proc/%d/stat" % pid) as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                continue
            if state == "T":
                return pid
        time.sleep(0.01)
    return None


def test_a_host_killed_mid_run_and_unreachable_ones_leave_the_others_complete(fleet, repo_root, python_exe,
                                                                                tmp_path):
    hosts = tmp_path / "hosts.txt"
    victim = fleet.hosts[1]
    hosts.write_text("".join("ssh:%s\n" % h.name for h in fleet.hosts) + "ssh:fleet-stranger\nfleet-down\n")
    p = _pagelab(repo_root, python_exe, fleet, ["--targets", str(hosts), "--out", str(tmp_path / "runs")])
    killed = []
    stopper = threading.Thread(target=lambda: killed.append(_stop_when_running(victim.netns)))
    stopper.start()
    stopper.join(timeout=600)
    assert killed and killed[0], "the victim's conformance run was never seen"
    fleet.kill_host(victim)
    out, err = p.communicate(timeout=900)
    assert p.returncode == 1, err[-3000:]
    assert "Traceback" not in err
    runs = _runs(tmp_path / "runs")
    assert set(runs) == {"ssh:fleet-h1", "ssh:fleet-h2", "ssh:fleet-h3", "ssh:fleet-stranger", "ssh:fleet-down"}
    for h in fleet.hosts:
        m = runs["ssh:" + h.name][1]
        if h is victim:
            assert m["complete"] is False and "connection lost" in m["reason"]
            assert m["parts"]["conformance"]["status"] == "died"
        else:
            assert m["complete"] is True, m["state"]
    stranger = runs["ssh:fleet-stranger"][1]
    assert stranger["complete"] is False and "host key" in stranger["reason"] and "not known" in stranger["reason"]
    assert "Connection refused" in runs["ssh:fleet-down"][1]["reason"]
    compare = [d for d in os.listdir(tmp_path / "runs") if d.startswith("compare-")]
    assert compare and os.path.exists(tmp_path / "runs" / compare[0] / "report.md")


def test_a_part_past_its_deadline_is_stopped_on_the_host(fleet):
    h = fleet.hosts[0]
    host = Host("root", h.addr, h.port, config=fleet.ssh_config)
    try:
        host.connect()
        d = host.open_dir()
        t0 = time.monotonic()
        ended = host.run("sleeper", ["sleep", "60"], lambda line: None, lambda line: None, 1)
        assert ended.timed_out and ended.status is None and time.monotonic() - t0 < 30
        assert not [p for p in nshosts.namespace_pids(h.netns) if _comm(p) == "sleep"]
        assert os.path.isdir(fleet.tmp_of(h) + d[len("/tmp"):])
    finally:
        assert host.close() is None
    assert os.listdir(fleet.tmp_of(h)) == []


def _comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return None
