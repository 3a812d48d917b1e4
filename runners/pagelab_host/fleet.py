"""Several targets in one `pagelab run`: target lists, Ansible inventories, and running side by side.

A targets file holds one target a line (`ssh:db1`, `kernel:6.1/arm64`, `local`;
`#` starts a comment); a line without a target kind is an ssh host, as in an
inventory. An Ansible INI inventory is read too: its hosts, with
ansible_host/ansible_port/ansible_user (host, group or [all:vars]); hosts
with ansible_connection=local are the local target, other connections are
left out with a warning.

Targets that run elsewhere (ssh, lava) run side by side, at most --parallel at
once; targets that use this machine's CPUs run one after another, beside
them, so their timings do not disturb each other. A target that fails or
dies gives its own incomplete run and never stops the others.
"""
import itertools
import re
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as StillRunning

from .errors import UserError, warn

COMMENT = re.compile(r"(^|\s)[#;].*$")
SECTION = re.compile(r"^\[([^\]:]+)(?::(vars|children))?\]$")
RANGE = re.compile(r"\[([0-9]+|[a-z]):([0-9]+|[a-z])\]")
HOST_VARS = {"ansible_host": "host", "ansible_ssh_host": "host", "ansible_port": "port", "ansible_ssh_port": "port",
             "ansible_user": "user", "ansible_ssh_user": "user", "ansible_connection": "connection"}


def read_targets_file(path, kinds):
    """Target specs from a targets file or an Ansible INI inventory, in file order, each once."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = [COMMENT.sub("", ln).strip() for ln in f]
    except OSError as e:
        raise UserError("%s: cannot read the targets file: %s" % (path, e.strerror))
    except UnicodeDecodeError:
        raise UserError("%s: not a text file" % path)
    lines = [ln for ln in lines if ln]
    if lines and lines[0].rstrip(":") in ("all", "---"):
        raise UserError("%s: a YAML inventory: pagelab reads INI inventories and target lists "
                        "(`ansible-inventory -i %s --graph` shows its hosts)" % (path, path))
    inventory = any(SECTION.match(ln) or "ansible_" in ln for ln in lines)
    specs = _inventory(lines, path) if inventory else [_spec(ln, kinds) for ln in lines]
    if not specs:
        raise UserError("%s: names no target" % path)
    return list(dict.fromkeys(specs))


def _spec(line, kinds):
    kind = line.partition(":")[0]
    return line if kind in kinds else "ssh:" + line


def _inventory(lines, path):
    """Hosts of an INI inventory as target specs; variables from host lines, [group:vars] and [all:vars]."""
    hosts, groups, group_vars = {}, {}, {}
    section, kind = "ungrouped", None
    for n, line in enumerate(lines, 1):
        m = SECTION.match(line)
        if m:
            section, kind = m.group(1), m.group(2)
            continue
        words = line.split()
        if kind == "vars":
            key, sep, value = line.partition("=")
            if not sep:
                raise UserError("%s: [%s:vars] line %r is not KEY=VALUE" % (path, section, line))
            group_vars.setdefault(section, {})[key.strip()] = value.strip().strip("'\"")
        elif kind is None:
            host_vars = _pairs(words[1:], path, line)
            for name in _expand(words[0]):
                hosts.setdefault(name, {}).update(host_vars)
                groups.setdefault(name, []).append(section)
    return [s for s in (_host_spec(name, _merged(name, hosts, groups, group_vars)) for name in hosts) if s]


def _pairs(words, path, line):
    out = {}
    for w in words:
        key, sep, value = w.partition("=")
        if not sep:
            raise UserError("%s: host line %r: %r is not KEY=VALUE" % (path, line, w))
        out[key] = value.strip("'\"")
    return out


def _expand(pattern):
    """Ansible's host ranges: web[01:03] -> web01 web02 web03; db-[a:c] -> db-a db-b db-c."""
    m = RANGE.search(pattern)
    if not m:
        return [pattern]
    lo, hi = m.group(1), m.group(2)
    if lo.isdigit() != hi.isdigit():
        raise UserError("host range %s mixes numbers and letters" % pattern)
    width = len(lo) if lo.isdigit() and lo.startswith("0") else 0
    values = ["%0*d" % (width, i) for i in range(int(lo), int(hi) + 1)] if lo.isdigit() else \
        [chr(c) for c in range(ord(lo), ord(hi) + 1)]
    head, tail = pattern[:m.start()], pattern[m.end():]
    return list(itertools.chain.from_iterable(_expand(head + v + tail) for v in values))


def _merged(name, hosts, groups, group_vars):
    merged = dict(group_vars.get("all", {}))
    for g in groups[name]:
        merged.update(group_vars.get(g, {}))
    merged.update(hosts[name])
    return {HOST_VARS[k]: v for k, v in merged.items() if k in HOST_VARS}


def _host_spec(name, v):
    connection = v.get("connection", "ssh")
    if connection == "local":
        return "local"
    if connection not in ("ssh", "paramiko", "smart"):
        warn("inventory host %s: ansible_connection=%s is not ssh (left out)" % (name, connection))
        return None
    host = v.get("host", name)
    host = "[%s]" % host if ":" in host else host
    return "ssh:%s%s%s" % (v["user"] + "@" if v.get("user") else "", host, ":" + v["port"] if v.get("port") else "")


# ---- running ----

class PrefixedStream:
    """Lines of one target among several on a shared terminal: each line named, never rewritten in place,
    and progress lines ("[part n/total ...") at most one per PROGRESS_EVERY_S seconds for each target."""

    PROGRESS_EVERY_S = 5
    _lock = threading.Lock()

    def __init__(self, stream, name):
        self.stream, self.name, self._buf, self._shown = stream, name, "", 0.0

    def isatty(self):
        return False

    def write(self, text):
        self._buf += text
        *lines, self._buf = self._buf.split("\n")
        now = time.monotonic()
        lines = [ln for ln in lines if not ln.startswith("[") or now - self._shown >= self.PROGRESS_EVERY_S]
        if any(ln.startswith("[") for ln in lines):
            self._shown = now
        with self._lock:
            for ln in lines:
                self.stream.write("[%s] %s\n" % (self.name, ln))

    def flush(self):
        self.stream.flush()


def run_all(chosen, run_one, parallel):
    """run_one(target, stream, cancel) -> (path, exit code) for every target; results in the order given.

    Targets that run elsewhere go to a pool of `parallel` threads; the others run here one by one. On
    Ctrl-C (or SIGTERM) every target is told to stop and keeps what it finished."""
    several = len(chosen) > 1
    cancel = threading.Event()
    stream = (lambda t: PrefixedStream(sys.stderr, t.label())) if several else (lambda t: sys.stderr)
    elsewhere = [t for t in chosen if getattr(t, "runs_elsewhere", False)]
    results = {}
    with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(elsewhere) or 1))) as pool:
        futures = {t: pool.submit(run_one, t, stream(t), cancel) for t in elsewhere}
        try:
            for t in chosen:
                if t not in futures and not cancel.is_set():
                    results[t] = run_one(t, stream(t), cancel)
                    if results[t][1] == 130:
                        cancel.set()
            for t, fut in futures.items():
                results[t] = _result(fut)
        except KeyboardInterrupt:
            cancel.set()
            for t, fut in futures.items():
                results[t] = _result(fut)
    return [results[t] for t in chosen if t in results]


def _result(future):
    """A thread's result, waiting in short steps so that Ctrl-C reaches this thread."""
    while True:
        try:
            return future.result(timeout=0.5)
        except StillRunning:
            continue
