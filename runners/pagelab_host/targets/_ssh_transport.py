"""One ssh host, driven with the controller's own ssh and scp.

Every command goes through one master connection per host (ControlMaster),
with BatchMode (never a password prompt) and the user's configuration and
keys (`PAGELAB_SSH_CONFIG` names another configuration file, as `ssh -F`).
Host keys are checked the way the user's configuration says; an unknown or
changed key, a refused key or an unreachable host is a one-line reason.
"""
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import threading
import time
from collections import namedtuple

from . import _ssh_remote as ssh_remote
from ..errors import UserError

CONNECT_TIMEOUT_S = 20
GUARDIAN_EXIT_S = 30
# A dead network is noticed after ServerAliveInterval * ServerAliveCountMax seconds.
ALIVE_OPTIONS = ("-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3")
SPEC = re.compile(r"^(?:(?P<user>[^@\s/]+)@)?(?P<host>\[[0-9A-Fa-f:.]+\]|[^@:\s/\[\]]+)(?::(?P<port>\d{1,5}))?$")


# How a part ended on the host: its exit status (None when it has none), why not, and whether the deadline hit.
Ended = namedtuple("Ended", "status why timed_out")


class SshError(Exception):
    """The host cannot be reached or used; the message is one line."""


def parse_spec(text):
    """'[USER@]HOST[:PORT]' (an IPv6 address in brackets) -> (user, host, port); port None when not given."""
    m = SPEC.match(text)
    if not m:
        raise UserError("ssh:%s: not [USER@]HOST[:PORT]" % text)
    port = int(m.group("port")) if m.group("port") else None
    if port is not None and not 0 < port < 65536:
        raise UserError("ssh:%s: port %d is out of range" % (text, port))
    return m.group("user"), m.group("host").strip("[]"), port


def missing_tools():
    """Debian packages the ssh target needs on the controller, or []."""
    return ["openssh-client"] if not (shutil.which("ssh") and shutil.which("scp")) else []


def explain(stderr, host, port):
    """ssh's complaint as one line that says what to do."""
    text = stderr.replace("\r", "")
    where = host if port == 22 else "%s port %d" % (host, port)
    scan = "ssh-keyscan %s%s" % ("-p %d " % port if port != 22 else "", host)
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in text:
        return ("the host key of %s has changed since it was recorded in known_hosts: if the change is expected, "
                "remove the old key with `ssh-keygen -R %s` and record the new one" % (where, host))
    if "Host key verification failed" in text or "host key is known for" in text:
        return ("the host key of %s is not known: compare `%s | ssh-keygen -lf -` with the key on the host, then add "
                "it to ~/.ssh/known_hosts (or connect once with plain ssh and accept it)" % (where, scan))
    if "Permission denied" in text:
        return ("%s refused every key offered (%s): pagelab runs ssh in BatchMode, so load the key into ssh-agent or "
                "name it with IdentityFile in ~/.ssh/config" % (where, _last(text, "Permission denied")))
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith(("Warning:", "debug"))]
    if not lines:
        return "%s: the connection closed (the host went down, or its sshd stopped)" % where
    return "%s: %s" % (where, lines[-1])


def _last(text, needle):
    return [ln for ln in text.splitlines() if needle in ln][-1].strip()


class Host:
    """A connection to one host; close() always leaves nothing behind on it."""

    def __init__(self, user, host, port, config=None, cancel=None):
        self.user, self.host, self.port = user, host, port
        self.cancel = cancel or threading.Event()     # set: stop the running part and return
        self.config = config if config is not None else os.environ.get("PAGELAB_SSH_CONFIG") or None
        self._control = tempfile.mkdtemp(prefix="pagelab-ssh-")
        self.transfer = None
        self.dir = None
        self.where = (host, port or 22)
        self._guardian = None

    # ---- commands ----
    def _options(self):
        opts = ["-o", "BatchMode=yes", "-o", "ControlMaster=auto", "-o", "ControlPersist=30",
                "-o", "ControlPath=%s" % os.path.join(self._control, "%C"), "-o", "ConnectTimeout=%d" % CONNECT_TIMEOUT_S]
        opts += list(ALIVE_OPTIONS)
        if self.config:
            opts = ["-F", self.config] + opts
        return opts

    def ssh_cmd(self, command):
        """argv for running COMMAND (a string the remote login shell parses) on the host."""
        cmd = ["ssh"] + self._options() + ["-T"]
        if self.port:
            cmd += ["-p", str(self.port)]
        if self.user:
            cmd += ["-l", self.user]
        return cmd + ["--", self.host, command]

    def _scp_cmd(self, legacy):
        cmd = ["scp", "-q", "-p"] + self._options() + (["-O"] if legacy else [])
        return cmd + (["-P", str(self.port)] if self.port else [])

    def _remote(self, path):
        host = "[%s]" % self.host if ":" in self.host else self.host
        return "%s%s:%s" % (self.user + "@" if self.user else "", host, path)

    def script(self, text, timeout=120):
        """Run a shell script on the host (`sh -s`); returns (exit status, stdout, stderr)."""
        try:
            res = subprocess.run(self.ssh_cmd("sh -s"), input=text, capture_output=True, text=True,
                                 timeout=timeout, errors="replace")
        except subprocess.TimeoutExpired:
            raise SshError("%s: no answer within %d s" % (self.host, timeout))
        if res.returncode == 255:
            raise SshError(explain(res.stderr, *self.where))
        return res.returncode, res.stdout, res.stderr

    # ---- life cycle ----
    def resolve(self):
        """What ssh makes of the name with the user's configuration: {hostname, port, user, ...} (`ssh -G`)."""
        cmd = ["ssh", "-G"] + (["-F", self.config] if self.config else []) + (["-p", str(self.port)] if self.port else [])
        res = subprocess.run(cmd + (["-l", self.user] if self.user else []) + ["--", self.host], capture_output=True,
                             text=True, timeout=30)
        if res.returncode != 0:
            raise SshError("%s: ssh cannot use this name: %s" % (self.host, _tail(res.stderr)))
        conf = dict(ln.split(" ", 1) for ln in res.stdout.splitlines() if " " in ln)
        self.where = (conf.get("hostname", self.host), int(conf.get("port", 22)))
        return {k: conf.get(k) for k in ("hostname", "port", "user", "stricthostkeychecking", "hostkeyalias")
                if conf.get(k) and conf.get(k) != "none"}

    def connect(self):
        """Open the master connection and describe the host: a dict of its environment."""
        status, out, err = self.script(ssh_remote.DESCRIBE)
        env = dict(ln.split("=", 1) for ln in out.splitlines() if "=" in ln)
        if not env.get("os") or not env.get("arch"):
            raise SshError("%s: `uname` gave no answer (exit %d): %s" % (self.host, status, err.strip()[-200:]))
        return env

    def open_dir(self):
        """Start the guardian; returns the private directory it made on the host."""
        self._guardian = subprocess.Popen(self.ssh_cmd("sh -s"), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, text=True, errors="replace")
        self._guardian.stdin.write(ssh_remote.GUARDIAN)
        self._guardian.stdin.flush()
        line = self._guardian.stdout.readline().strip()
        if not line.startswith(ssh_remote.DIR_MARK):
            self._guardian.stdin.close()
            err = self._guardian.stderr.read()
            self._guardian.wait()
            self._guardian = None
            if "pagelab-error nodir" in line:
                raise SshError("%s: no writable directory that allows executables ($TMPDIR, /tmp, /var/tmp, $HOME)"
                               % self.host)
            raise SshError(explain(err, *self.where))
        self.dir = line[len(ssh_remote.DIR_MARK):]
        return self.dir

    def stop(self, name):
        """Ask the guardian to stop a running part (SIGTERM: the suites keep what they finished)."""
        if self._guardian and self._guardian.poll() is None:
            try:
                self._guardian.stdin.write("stop %s\n" % name)
                self._guardian.stdin.flush()
            except (BrokenPipeError, OSError):
                pass

    def close(self):
        """End the guardian (it stops what still runs and removes its directory), then the master connection."""
        left = None
        if self._guardian:
            try:
                self._guardian.stdin.close()
            except (BrokenPipeError, OSError):
                pass
            try:
                self._guardian.wait(timeout=GUARDIAN_EXIT_S)
            except subprocess.TimeoutExpired:
                self._guardian.kill()
                self._guardian.wait()
                left = "%s: the host did not confirm removing %s" % (self.host, self.dir)
            self._guardian = None
        subprocess.run(["ssh"] + self._options() + ["-O", "exit"] + (["-p", str(self.port)] if self.port else [])
                       + (["-l", self.user] if self.user else []) + [self.host], capture_output=True, timeout=30)
        shutil.rmtree(self._control, ignore_errors=True)
        return left

    # ---- files ----
    def push(self, files):
        """Copy {remote name: local path} into the directory, executable; returns the method that worked."""
        for method in ([self.transfer] if self.transfer else ["sftp", "scp", "cat"]):
            err = self._push_with(method, files)
            if err is None:
                self.transfer = method
                return method
        raise SshError("%s: cannot copy files there (sftp, scp and cat all failed): %s" % (self.host, err))

    def _push_with(self, method, files):
        if method == "cat":
            for name, local in files.items():
                with open(local, "rb") as f:
                    res = subprocess.run(self.ssh_cmd(ssh_remote.write_file("%s/%s" % (self.dir, name), 0o755)),
                                         stdin=f, capture_output=True, timeout=600)
                if res.returncode != 0:
                    return _tail(res.stderr)
            return None
        staged = tempfile.mkdtemp(prefix="pagelab-push-")
        try:
            paths = []
            for name, local in files.items():
                os.symlink(os.path.abspath(local), os.path.join(staged, name))
                paths.append(os.path.join(staged, name))
            res = subprocess.run(self._scp_cmd(method == "scp") + paths + [self._remote(self.dir + "/")],
                                 capture_output=True, timeout=600)
        finally:
            shutil.rmtree(staged, ignore_errors=True)
        return None if res.returncode == 0 else _tail(res.stderr)

    def fetch(self, name, local):
        """Copy NAME from the directory to LOCAL (written whole or not at all); None, or why not."""
        tmp = local + ".partial"
        try:
            if self.transfer == "cat":
                with open(tmp, "wb") as f:
                    res = subprocess.run(self.ssh_cmd(ssh_remote.read_file("%s/%s" % (self.dir, name))), stdout=f,
                                         stderr=subprocess.PIPE, timeout=600)
            else:
                res = subprocess.run(self._scp_cmd(self.transfer == "scp") + [self._remote("%s/%s" % (self.dir, name)),
                                                                               tmp], capture_output=True, timeout=600)
            if res.returncode != 0:
                return _tail(res.stderr) or "exit %d" % res.returncode
            os.replace(tmp, local)
            return None
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    # ---- parts ----
    def run(self, name, argv, on_stdout, on_stderr, deadline_s=None):
        """Run argv (relative to the directory) on the host; each output line to the callbacks.

        Returns Ended: no status when the session ended without one (the host or the connection died),
        or the part was stopped at the deadline."""
        proc = subprocess.Popen(self.ssh_cmd("sh -s"), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        try:
            proc.stdin.write(ssh_remote.run_part(self.dir, name, argv).encode())
            proc.stdin.close()
        except BrokenPipeError:
            pass
        status, err_tail = [None], []

        def errors(line):
            if line.startswith(ssh_remote.STATUS_MARK):
                status[0] = int(line.split()[-1])
            else:
                err_tail[:] = (err_tail + [line])[-5:]
                on_stderr(line)
        readers = [threading.Thread(target=_lines, args=(proc.stdout, on_stdout), daemon=True),
                   threading.Thread(target=_lines, args=(proc.stderr, errors), daemon=True)]
        for t in readers:
            t.start()
        timed_out = self._wait(proc, name, deadline_s)
        for t in readers:
            t.join(timeout=10)
        if timed_out:
            return Ended(None, "stopped at the target's deadline (%d s left for it)" % deadline_s, True)
        if status[0] is None:
            why = explain("\n".join(err_tail), *self.where) if proc.returncode == 255 else \
                "the session ended without an exit status (exit %s)" % proc.returncode
            return Ended(None, "connection lost: " + why, False)
        return Ended(status[0], None, False)

    def _wait(self, proc, name, deadline_s):
        """Wait for the session; at the deadline (or when cancelled) stop the part on the host. True: deadline."""
        end = time.monotonic() + deadline_s if deadline_s is not None else None
        try:
            while proc.poll() is None:
                if self.cancel.is_set():
                    self._stop_and_wait(proc, name)
                    return False
                if end is not None and time.monotonic() >= end:
                    self._stop_and_wait(proc, name)
                    return True
                try:
                    proc.wait(timeout=0.5)
                except subprocess.TimeoutExpired:
                    pass
            return False
        except KeyboardInterrupt:
            self._stop_and_wait(proc, name)
            raise

    def _stop_and_wait(self, proc, name):
        self.stop(name)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _lines(pipe, callback):
    for raw in iter(pipe.readline, b""):
        callback(raw.decode("utf-8", "replace").rstrip("\n"))
    pipe.close()


def _tail(data):
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def quote_argv(argv):
    return " ".join(shlex.quote(a) for a in argv)
