"""Running a target binary with its output streamed to files, and progress on the terminal."""
import os
import queue
import signal
import subprocess
import threading
import time
from collections import namedtuple

Result = namedtuple("Result", "returncode signal interrupted timed_out")


def _hms(s):
    s = int(s)
    return "%d:%02d:%02d" % (s // 3600, s % 3600 // 60, s % 60) if s >= 3600 else "%d:%02d" % (s // 60, s % 60)


class Progress:
    """One status line (rewritten in place on a terminal, one line per step otherwise)."""

    def __init__(self, stream):
        self.stream = stream
        self.tty = stream.isatty()
        self.suite = None

    def start(self, suite, total):
        self.suite, self.total, self.done, self.failed = suite, total, 0, 0
        self.current, self.t0, self.seen = "", time.monotonic(), set()
        self.show()

    def step(self, name, failed=False, unique=False):
        if unique:
            if name in self.seen:
                return
            self.seen.add(name)
        self.done += 1
        self.failed += failed
        self.current = name
        self.show(newline=not self.tty)

    def line(self):
        el = time.monotonic() - self.t0
        s = "[%s %d" % (self.suite, self.done) + ("/%d" % self.total if self.total else "")
        s += (", %d failed" % self.failed if self.failed else "") + " | %s elapsed" % _hms(el)
        if self.total and self.done:
            s += ", ~%s left" % _hms(el / self.done * max(0, self.total - self.done))
        return s + "] " + self.current

    def show(self, newline=False):
        text = self.line()
        if self.tty:
            width = 118
            self.stream.write("\r" + text[:width].ljust(width))
        elif newline:
            self.stream.write(text + "\n")
        self.stream.flush()

    def finish(self):
        if self.tty:
            self.stream.write("\r" + self.line()[:118].ljust(118) + "\n")
            self.stream.flush()


def _pump(pipe, path, tag, q):
    with open(path, "wb") as f:
        for raw in iter(pipe.readline, b""):
            f.write(raw)
            f.flush()
            q.put((tag, raw.decode("utf-8", "replace").rstrip("\n")))
    q.put((tag, None))


def run_streaming(cmd, stdout_path, stderr_path, progress, parse, deadline=None):
    """Run cmd in its own process group; both streams to files; every stdout line goes to parse().
    Ctrl-C, or the monotonic deadline passing, stops the whole group and is reported."""
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    except OSError as e:
        with open(stderr_path, "w", encoding="utf-8") as f:
            f.write("cannot execute %s: %s\n" % (cmd[0], e.strerror))
        return Result(127, None, False, False)
    q = queue.Queue()
    threads = [threading.Thread(target=_pump, args=(proc.stdout, stdout_path, "out", q), daemon=True),
               threading.Thread(target=_pump, args=(proc.stderr, stderr_path, "err", q), daemon=True)]
    for t in threads:
        t.start()
    interrupted = timed_out = False
    try:
        timed_out = not _consume(q, progress, parse, deadline, proc)
        if timed_out:
            _stop(proc)
        proc.wait()
    except KeyboardInterrupt:
        interrupted = True
        _stop(proc)
    for t in threads:
        t.join(timeout=5)
    rc = proc.returncode
    sig = signal.Signals(-rc).name if rc is not None and rc < 0 else None
    return Result(rc, sig, interrupted, timed_out)


# Seconds the command's leftover children may keep its streams open after it exited.
LEFTOVER_S = 2.0


def _consume(q, progress, parse, deadline, proc):
    """Until both streams close (True) or the deadline passes (False). When the command has exited,
    what it left running in its process group (a launcher's orphaned children) is killed."""
    open_streams, exited = 2, None
    while open_streams:
        if deadline is not None and time.monotonic() > deadline:
            return False
        if exited is None and proc.poll() is not None:
            exited = time.monotonic()
        if exited is not None and time.monotonic() - exited > LEFTOVER_S:
            _kill_group(proc)
        try:
            tag, line = q.get(timeout=1.0)
        except queue.Empty:
            progress.show()
            continue
        if line is None:
            open_streams -= 1
        elif tag == "out":
            parse(line)
    return True


def _kill_group(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass


def _stop(proc):
    """SIGINT to the process group, then SIGKILL after 5 s: the child may be writing its results."""
    try:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except OSError:
        pass
    os.sync()
