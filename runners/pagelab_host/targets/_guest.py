"""A booted guest (a kernel under QEMU, user-mode Linux): its init (tools/guest-init.c)
runs the plan written to /plan and sends every file back over the console between
markers. The host decides from the console alone: QEMU exits 0 on a clean power-off
and on a panic alike."""
import base64
import binascii
import os
import re
import select
import signal
import subprocess
import time

from ..errors import UserError
from ..fsutil import atomic_write_bytes
from ..plan import suite_binaries
from ..targetrun import TargetFailed
from . import Target

MARK = "=== pagelab-"
B64_LINE = re.compile(r"^[A-Za-z0-9+/]+=*$")
PANIC = re.compile(r"Kernel panic - not syncing:.*|Unable to handle kernel .*|BUG: .*")
GUEST_BIN, GUEST_OUT = "/", "/tmp/"
ALIVE_S = 300       # seconds for the guest's init to say it is alive
SILENCE_S = 900     # seconds without a console line before the guest counts as hung


def guest_plan(plan, setup=()):
    """/plan for the guest's init: the set-up directives, then each part's command line and the files to send back."""
    lines = list(setup)
    for part in plan:
        argv = part.argv(lambda b: GUEST_BIN + b, lambda name: GUEST_OUT + os.path.basename(name))
        lines.append("part %s" % part.name)
        lines += ["arg %s" % a for a in argv]
        lines += ["send %s %s%s" % (r, GUEST_OUT, os.path.basename(r)) for r in part.results]
        lines += ["out %s %s%s" % (part.stdout, GUEST_OUT, os.path.basename(part.stdout)),
                  "err %s %s%s" % (part.stderr, GUEST_OUT, os.path.basename(part.stderr)), "run"]
    if any("\n" in ln for ln in lines):
        raise UserError("a guest command line cannot contain a newline")
    return "\n".join(lines) + "\n"


def guest_files(binaries, plan_text, extra=None):
    """{path in the guest: bytes}: the init, the suite binaries, the plan, and any extra files the set-up needs."""
    files = dict(extra or {}, init=_read(binaries["pagelab-init"]), plan=plan_text.encode())
    for b in binaries:
        if b != "pagelab-init":
            files[b] = _read(binaries[b])
    return files


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def _cpio_entry(name, mode, data=b"", rdev=(0, 0), ino=[0]):
    ino[0] += 1
    name_b = name.encode() + b"\0"
    fields = (ino[0], mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(name_b), 0)
    out = b"070701" + b"".join(b"%08X" % f for f in fields) + name_b
    out += b"\0" * (-len(out) % 4)
    return out + data + b"\0" * (-len(data) % 4)


def make_initramfs(files, path):
    """A newc cpio archive: the mount points, /dev/console and the files (executable)."""
    parts = [_cpio_entry(d, 0o040755) for d in ("dev", "proc", "sys", "tmp", "bin")]
    parts.append(_cpio_entry("dev/console", 0o020600, rdev=(5, 1)))
    parts += [_cpio_entry(name, 0o100755 if name != "plan" else 0o100644, data) for name, data in files.items()]
    parts.append(_cpio_entry("TRAILER!!!", 0))
    atomic_write_bytes(path, b"".join(parts))


def make_root_dir(files, root):
    """The same guest as a directory (root on hostfs)."""
    for d in ("dev", "proc", "sys", "tmp", "bin"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    for name, data in files.items():
        atomic_write_bytes(os.path.join(root, name), data)
        os.chmod(os.path.join(root, name), 0o755 if name != "plan" else 0o644)


class Console:
    """What the guest says, turned into parts and files on ctx. Lines that are not
    the protocol's (kernel messages, firmware) are noise and never break a transfer."""

    def __init__(self, ctx, plan, log):
        self.ctx, self.log = ctx, log
        self.parts = {p.name: p for p in plan}
        self.alive = self.done = False
        self.current, self.ended, self.damaged = None, set(), {}
        self._file, self._b64 = None, []
        self.panic, self.last = None, ""

    def feed(self, line):
        self.log.write(line + "\n")
        at = line.find(MARK)
        if at < 0:
            if self._file is not None and B64_LINE.match(line.strip()):
                self._b64.append(line.strip())
            else:
                self._noise(line)
            return
        if at > 0:
            self._noise(line[:at])
        kind, _, rest = line[at + len(MARK):].partition(" ")
        getattr(self, "_on_" + kind, self._noise)(rest)

    def _noise(self, text):
        if text.strip():
            self.last = text.strip()[:200]
        m = PANIC.search(text)
        if m and not self.panic:
            self.panic = m.group(0).strip()[:200]

    def _on_alive(self, rest):
        self.alive = True

    def _on_begin(self, rest):
        part = self.parts.get(rest.split(" ")[0])
        if part:
            self.current = part
            self.ctx.begin(part, part.argv(lambda b: GUEST_BIN + b, lambda n: GUEST_OUT + os.path.basename(n)))

    def _on_out(self, rest):
        name, _, text = rest.partition(" ")
        if self.current and name == self.current.name:
            self.ctx.output(self.current, text)

    def _on_file(self, rest):
        self._file, self._b64 = rest.split(" ")[0], []

    def _on_end(self, rest):
        words = rest.split(" ")
        if self._file is None or words[0] != self._file or len(words) < 3:
            return self._noise(rest)
        name, self._file = self._file, None
        try:
            data = base64.b64decode("".join(self._b64), validate=True)
        except (ValueError, binascii.Error):
            data = None
        if data is None or str(len(data)) != words[1] or str(binascii.crc32(data)) != words[2]:
            self.damaged[name] = "damaged in transfer (%s bytes expected)" % words[1]
            return None
        self.ctx.store(name, data)
        return None

    def _on_missing(self, rest):
        self.damaged[rest.split(" ")[0]] = "not written in the guest"

    def _on_status(self, rest):
        words = rest.split(" ")
        part = self.parts.get(words[0])
        if part is None or part is not self.current or len(words) < 2:
            return
        code = int(words[1]) if re.match(r"^-?\d+$", words[1]) else None
        sig = signal.Signals(-code).name if code is not None and code < 0 and -code in _SIGNALS else None
        notes = ["%s: %s" % (n, why) for n, why in self.damaged.items() if n in part.files()]
        self.ctx.end(part, code, sig, note="; ".join(notes) or None)
        self.ended.add(part.name)
        self.current = None

    def _on_warning(self, rest):
        self.ctx.say("guest: warning %s" % rest)

    def _on_done(self, rest):
        self.done = True


_SIGNALS = {s.value for s in signal.Signals}


def boot(cmd, console, timeout, stop_when_alive=False, env=None):
    """Run the guest until it stops, hangs or runs out of time; (exit status, stderr tail, why it was stopped)."""
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                start_new_session=True, env=env)
    except OSError as e:
        raise TargetFailed("cannot start %s: %s" % (cmd[0], e.strerror))
    t0 = time.monotonic()
    heard, buf, err, stopped = t0, b"", b"", None
    streams = [proc.stdout, proc.stderr]
    try:
        while streams and not stopped:
            now = time.monotonic()
            stopped = _why_stop(console, now - t0, now - heard, timeout, stop_when_alive)
            ready, _, _ = select.select(streams, [], [], 1.0) if not stopped else ([], [], [])
            for s in ready:
                chunk = os.read(s.fileno(), 65536)
                if not chunk:
                    streams.remove(s)
                elif s is proc.stderr:
                    err = (err + chunk)[-4000:]
                else:
                    heard = time.monotonic()
                    buf += chunk
                    *lines, buf = buf.split(b"\n")
                    for ln in lines:
                        console.feed(ln.decode("utf-8", "replace").rstrip("\r"))
    finally:
        if proc.poll() is None:
            _kill(proc)
    return proc.wait(), err.decode("utf-8", "replace").strip(), stopped


def _why_stop(console, elapsed, silent, timeout, stop_when_alive):
    if stop_when_alive and console.alive:
        return "alive"
    if elapsed > timeout:
        return "did not finish within %d s" % timeout
    if not console.alive and elapsed > ALIVE_S:
        return "the guest's init did not start within %d s" % ALIVE_S
    if silent > SILENCE_S:
        return "no console output for %d s (hung)" % SILENCE_S
    return None


def _kill(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass


def reason(console, code, err, stopped):
    """One line for an unfinished guest, or None when it finished."""
    if console.done and not stopped:
        return None
    if console.panic:
        return "kernel panic: %s" % console.panic
    last = console.last or (err.splitlines() or ["no output"])[-1]
    if stopped:
        return "%s; last line: %s" % (stopped, last)
    if not console.alive:
        return "the guest stopped before its init started (exit status %s): %s" % (code, last)
    return "the guest stopped before finishing (exit status %s); last line: %s" % (code, last)


class GuestTarget(Target):
    """Subclasses build the guest's binaries (guest_binaries), say how to boot (boot_command) and
    whether the guest reads an initramfs or a root directory (root_kind)."""
    root_kind = "cpio"
    setup_files = {}  # files the set-up directives need in the guest, by name

    def guest_binaries(self, ctx):
        raise NotImplementedError

    def boot_command(self, ctx, root, mode="run"):
        raise NotImplementedError

    def prepare(self, ctx):
        self.binaries = ctx.make(self.build_dir(ctx), self.make_variables(),
                                 suite_binaries(ctx.options) + ("pagelab-init",))
        for name, path in self.binaries.items():
            if not os.path.exists(path):
                raise TargetFailed("%s is not built (%s)" % (name, path))

    def guest_setup(self, ctx):
        """(set-up directives for the guest's init, {file name: bytes} they need): none by default."""
        return [], {}

    def make_root(self, ctx, plan_text):
        files = guest_files(self.binaries, plan_text, self.setup_files)
        root = os.path.join(self.build_dir(ctx), "guest-root" if self.root_kind == "dir" else "initramfs.cpio")
        (make_root_dir if self.root_kind == "dir" else make_initramfs)(files, root)
        return root

    def run(self, plan, ctx):
        setup, self.setup_files = self.guest_setup(ctx)
        root = self.make_root(ctx, guest_plan(plan, setup))
        cmd = self.boot_command(ctx, root)
        ctx.rundir.part("boot", status="running", command=cmd)
        ctx.say("%s: booting (%s)" % (self.spec, os.path.basename(cmd[0])))
        t0 = time.monotonic()
        with open(ctx.path("logs/console.log"), "w", encoding="utf-8", errors="replace") as log:
            console = Console(ctx, plan, log)
            try:
                code, err, stopped = boot(cmd, console, ctx.remaining(), env=self.boot_env(ctx))
            except KeyboardInterrupt:
                self._close_parts(ctx, plan, console, "interrupted", interrupted=True)
                raise
        why = reason(console, code, err, stopped)
        ctx.rundir.part("boot", status="ok" if why is None else "failed", exit_status=code,
                        seconds=round(time.monotonic() - t0, 1), **({"stderr": err[-500:]} if err else {}))
        self._close_parts(ctx, plan, console, why, timed_out=bool(stopped))
        if why:
            raise TargetFailed(why)

    def boot_env(self, ctx):
        return None

    def _close_parts(self, ctx, plan, console, why, timed_out=False, interrupted=False):
        """Parts the guest began and never ended, and parts it never reached."""
        if console.current is not None:
            ctx.end(console.current, None, interrupted=interrupted, timed_out=timed_out, note=why)
            console.ended.add(console.current.name)
        for part in plan:
            if part.name not in console.ended:
                ctx.not_run(part, why or "the guest never ran it")
