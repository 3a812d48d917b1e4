"""This machine's environment: the local target's env.json, and the driving host in every manifest."""
import os
import platform
import shutil
import socket
import subprocess

from . import __version__


def _read(path):
    try:
        with open(path, "r", encoding="utf-8", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return None


def _choice(path):
    """'always [madvise] never' -> 'madvise'."""
    s = _read(path)
    if s and "[" in s and "]" in s:
        return s[s.index("[") + 1:s.index("]")]
    return s


def _cpu_model():
    text = _read("/proc/cpuinfo") or ""
    for line in text.splitlines():
        if line.startswith("model name") and ":" in line:
            return line.split(":", 1)[1].strip()
    return None


def _virtualization():
    tool = shutil.which("systemd-detect-virt")
    if not tool:
        return None
    try:
        res = subprocess.run([tool], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return res.stdout.strip() or None


def git_commit(repo):
    try:
        res = subprocess.run(["git", "-C", repo, "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True,
                             timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return res.stdout.strip() if res.returncode == 0 else None


def capture():
    """This machine as a target: what the local run's env.json starts from."""
    u = platform.uname()
    env = {
        "os": u.system, "kernel": u.release, "kernel_version": u.version, "arch": u.machine,
        "hostname": socket.gethostname(), "cpu_model": _cpu_model(), "ncpu": os.cpu_count(),
        "thp": _choice("/sys/kernel/mm/transparent_hugepage/enabled"),
        "thp_defrag": _choice("/sys/kernel/mm/transparent_hugepage/defrag"),
        "aslr": _read("/proc/sys/kernel/randomize_va_space"),
        "perf_event_paranoid": _read("/proc/sys/kernel/perf_event_paranoid"),
        "governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        "virtualization": _virtualization(),
        "swap": "yes" if len((_read("/proc/swaps") or "").splitlines()) > 1 else "no",
    }
    return {k: v for k, v in env.items() if v is not None}


def driving_host(repo):
    """The machine that drove a run (manifest "host"), never mixed into a target's environment."""
    u = platform.uname()
    host = {"hostname": socket.gethostname(), "os": u.system, "kernel": u.release, "arch": u.machine,
            "cpu_model": _cpu_model(), "ncpu": os.cpu_count(), "python": platform.python_version(),
            "pagelab_version": __version__, "pagelab_commit": git_commit(repo)}
    return {k: v for k, v in host.items() if v is not None}


def run_id(when):
    """'20261122T050003Z-vm-6.18.44': time, host, kernel."""
    host = socket.gethostname().split(".")[0] or "host"
    return "%s-%s-%s" % (when.strftime("%Y%m%dT%H%M%SZ"), host.replace("/", "_"), platform.release().replace("/", "_"))
