"""ssh:[USER@]HOST[:PORT]: another machine, reached with this machine's own ssh.

The host is asked what it is (`uname`), the suite is built statically for its
architecture here and copied into a private directory there (sftp, scp, or
plain `cat` when the host has neither server), each part runs with the
target's deadline while its output streams back for progress, and the result
files come back the same way. The host needs nothing but a POSIX shell: no
Python, no compiler. Its environment, read there with shell commands, is the
target's. A guardian session removes the directory when the run ends, and also
when this machine or the connection dies. ssh runs with BatchMode and the
user's own configuration, keys and known hosts (see _ssh_transport.py).
"""
import os
import re
import tempfile

from ..errors import UserError
from ..targetrun import TargetFailed
from . import Need, Target
from ._arch import ARCHES, ALIASES, build_dir
from ._ssh_transport import Host, SshError, parse_spec


class SshTarget(Target):
    kind = "ssh"
    usage = "ssh:[USER@]HOST[:PORT]"
    summary = "another machine over ssh: static build for its architecture, nothing left there"
    examples = ("HOST",)
    default_timeout = 3600
    runs_elsewhere = True

    def __init__(self, arg, opts):
        super().__init__(arg, opts)
        if not arg:
            raise UserError("target ssh needs a host: ssh:[USER@]HOST[:PORT]")
        self.user, self.hostname, self.port = parse_spec(arg)
        self.host = None
        self.env = {}
        self.resolved = {}

    def needs(self):
        return [Need("ssh", "openssh-client", "the connection"), Need("scp", "openssh-client", "file transfer")]

    def label(self):
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", self.hostname)
        return "ssh-%s%s" % (name, "-%d" % self.port if self.port else "")

    def jobs(self):
        n = self.env.get("ncpu", "")
        return int(n) if n.isdigit() and int(n) > 0 else 2

    def prepare(self, ctx):
        self.host = Host(self.user, self.hostname, self.port, cancel=ctx.cancel)
        try:
            self.resolved = self.host.resolve()
            self.env = self.host.connect()
            arch = self._arch()
            self.binaries = ctx.make(build_dir(ctx, "static-%s" % arch.name), arch.make_variables())
        except SshError as e:
            self._close(ctx)
            raise TargetFailed(str(e))
        except BaseException:
            self._close(ctx)
            raise

    def _arch(self):
        system, machine = self.env.get("os"), self.env.get("arch", "")
        found = ARCHES.get(ALIASES.get(machine, machine)) or ARCHES.get({"armv7l": "armhf", "i386": "i686"}.get(
            machine, ""))
        if system != "Linux" or found is None:
            raise TargetFailed("%s is %s on %s: pagelab builds static binaries for Linux on %s only"
                               % (self.hostname, system, machine, ", ".join(ARCHES)))
        return found

    def run(self, plan, ctx):
        try:
            self._record(ctx, directory=self.host.open_dir())
            self._record(ctx, transfer=self.host.push({b: self.binaries[b] for b in sorted({p.binary for p in plan})}))
            for part in plan:
                self._part(part, ctx)
        except SshError as e:
            raise TargetFailed(str(e))
        finally:
            self._close(ctx)

    def _part(self, part, ctx):
        argv = part.argv(lambda b: "./" + b, os.path.basename)
        ctx.begin(part, argv)
        out, err = [], []

        def stdout(line):
            out.append(line)
            ctx.output(part, line)
        ended = self.host.run(part.name, argv, stdout, err.append, ctx.remaining())
        ctx.store(part.stdout, "".join(ln + "\n" for ln in out).encode())
        ctx.store(part.stderr, "".join(ln + "\n" for ln in err).encode())
        problems = self._fetch(part, ctx)
        cancelled = ctx.cancel.is_set()
        ctx.end(part, ended.status, interrupted=cancelled, timed_out=ended.timed_out,
                note="; ".join(([ended.why] if ended.why else []) + problems) or None)
        if cancelled:
            raise KeyboardInterrupt
        if ended.why:
            raise TargetFailed("%s: %s" % (part.name, ended.why))

    def _fetch(self, part, ctx):
        """Bring back what the part wrote; problems as text (a missing file is judged by plan.judge)."""
        problems = []
        with tempfile.TemporaryDirectory(prefix="pagelab-fetch-") as d:
            for name in part.results:
                local = os.path.join(d, os.path.basename(name))
                why = self.host.fetch(os.path.basename(name), local)
                if why is None:
                    with open(local, "rb") as f:
                        ctx.store(name, f.read())
                elif name == part.results[0]:
                    problems.append("%s not brought back: %s" % (name, why))
        return problems

    def _close(self, ctx):
        left = self.host.close()
        if self.host.dir:
            self._record(ctx, cleanup="not confirmed: %s" % left if left else "directory removed")

    @staticmethod
    def _record(ctx, **info):
        """The manifest's "ssh" section: where the suite ran on the host, how files went, what was left."""
        ctx.rundir.manifest.setdefault("ssh", {}).update(info)
        ctx.rundir.save()

    def describe(self):
        env = dict(self.env, target=self.spec)
        for key in ("hostname", "port", "user"):
            if key in self.resolved:
                env["ssh_" + key] = self.resolved[key]
        if self.host and self.host.transfer:
            env["ssh_transfer"] = self.host.transfer
        return env


TARGET = SshTarget
