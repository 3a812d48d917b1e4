"""Targets: the places the suite runs, one module per kind.

A target spec on the command line is KIND or KIND:ARG (`local`, `musl`,
`qemu-user:s390x`, `kernel:6.1/ppc64el`, `uml`, `wrap:valgrind --tool=none`).
KIND names a module of this package (dashes become underscores: `qemu-user`
is qemu_user.py); the module sets TARGET to its class. Adding a place to run
is adding one module; nothing else changes.

The contract, all a new kind implements (see local.py for the smallest one):

    class MyTarget(Target):
        kind = "mykind"                 # the word before ':'
        usage = "mykind:HOST"           # as `pagelab targets` shows it
        summary = "one line: what it is"
        examples = ("host1",)           # arguments whose needs `pagelab targets` shows

        def __init__(self, arg, opts):  # arg: text after ':' (None without); bad arg -> UserError
            super().__init__(arg, opts)
        def needs(self):                # what must be installed: [Need(command, package), ...]
        def label(self):                # short name for run ids and report columns
        def prepare(self, ctx):         # build binaries for itself (ctx.make); TargetFailed on failure
        def run(self, plan, ctx):       # run each plan part there (see below)
        def describe(self):             # {key: value} facts of the target's OWN environment

run() receives the plan (plan.Part list: command line, result files, progress
parser) and a TargetRun ctx (targetrun.py). A part's command line comes from
`part.argv(binary_path, out_path)`: the target only says where binaries and
result files are on its side. The ctx calls a target uses:

    ctx.make(build_dir, make_vars, binaries) -> {name: path}   build (logs/build.log); honours --no-build
    ctx.exec_part(part, argv, outputs, total=None)             run a part as a local command (behind a
                                                               launcher, ssh, wine ...): streams, deadline,
                                                               result files renamed in, judged
    ctx.begin(part, command, total=None)                       or record a part yourself: it started,
    ctx.output(part, line)                                     each stdout line as it arrives (progress),
    ctx.store(name, data)                                      each result file brought back (atomic),
    ctx.end(part, exit_status, signal=None, timed_out=False)   it ended (negative status: that signal)
    ctx.not_run(part, why)                                     a part the target never reached
    ctx.remaining(), ctx.path(name), ctx.say(msg)              time left, run-directory paths, a message

Parts are judged by one rule (plan.judge) whichever way they ran. A target
that hangs, crashes or cannot start raises TargetFailed("one line"): the run
is kept, incomplete, with that reason and whatever logs the target stored
(logs/console.log for guests); the other targets still run.

describe() must never report the host's values as the target's: the driving
host is recorded apart (manifest "host"). What the suite itself reports from
inside the target (conformance.json "env", perf.json "context") is added to
env.json after the run. Two helper bases cover most kinds:
_command.CommandTarget (the suite as a local command, maybe behind a launcher)
and _guest.GuestTarget (a booted guest whose init runs the plan and sends
files back over the console).
"""
import importlib
import os
import pkgutil
import shutil

from ..errors import UserError


class Need:
    """Something a target kind needs installed: a command on PATH or a file, and the Debian package with it."""

    def __init__(self, what, package, why="", installable=True):
        self.what, self.package, self.why = what, package, why
        self.installable = installable   # package names apt-get takes (False: only a hint, e.g. a launcher's)

    def present(self):
        return os.path.exists(self.what) if os.path.isabs(self.what) else shutil.which(self.what) is not None


class Target:
    kind = None
    usage = None
    summary = ""
    default_timeout = 3600      # seconds for the whole target, unless --timeout says otherwise
    examples = (None,)          # arguments `pagelab targets` checks the needs of
    family = "posix"            # the suite's build for it: posix or windows (which probes exist)
    host_page_size = False      # its benchmarks see this machine's page size (its instance names match ours)
    takes_label = False         # --label NAME goes into its label (kernel targets: two bzImage runs apart)
    run_label = None

    def __init__(self, arg, opts):
        self.arg = arg
        self.opts = opts

    @property
    def spec(self):
        return self.kind + (":" + self.arg if self.arg is not None else "")

    def needs(self):
        return []

    def missing(self):
        return [n for n in self.needs() if not n.present()]

    def check(self):
        """UserError naming the package of the first missing need."""
        for n in self.missing():
            raise UserError("target %s: %s not found (Debian: apt-get install %s)" % (self.spec, n.what, n.package))

    def label(self):
        return self.spec.replace(":", "-").replace("/", "-")

    def jobs(self):
        """Probes run at once on the target."""
        return 2

    def prepare(self, ctx):
        raise NotImplementedError

    def run(self, plan, ctx):
        raise NotImplementedError

    def describe(self):
        return {}


def apply_labels(chosen, labels):
    """--label NAME (repeatable): one label for every target that takes one, or one each, in order."""
    if not labels:
        return
    takers = [t for t in chosen if t.takes_label]
    if not takers:
        raise UserError("--label names the runs of kernel targets, and no kernel target is given")
    if len(labels) not in (1, len(takers)):
        raise UserError("--label given %d times for %d kernel targets: give it once, or once per kernel target"
                        % (len(labels), len(takers)))
    for i, t in enumerate(takers):
        t.run_label = labels[0] if len(labels) == 1 else labels[i]


def kinds():
    """{kind: module} for every target module of this package."""
    out = {}
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            mod = importlib.import_module("%s.%s" % (__name__, info.name))
            out[mod.TARGET.kind] = mod.TARGET
    return dict(sorted(out.items()))


def resolve(spec, opts):
    """The Target for a spec such as 'qemu-user:s390x'; UserError for an unknown kind or a bad argument."""
    kind, sep, arg = spec.partition(":")
    known = kinds()
    if kind not in known:
        raise UserError("target %s: unknown kind %r (known: %s)" % (spec, kind, ", ".join(known)))
    return known[kind](arg if sep else None, opts)
