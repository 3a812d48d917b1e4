"""wrap:COMMAND: the native build run under any launcher given as a command prefix
(a sandbox kernel, an emulator, an instrumentation tool, a scheduler's wrapper).
The launcher must follow the suite's child processes: probes run in children."""
import os
import shlex

from ..errors import UserError
from . import Need
from ._command import CommandTarget


class WrapTarget(CommandTarget):
    kind = "wrap"
    host_page_size = True
    usage = "wrap:COMMAND"
    summary = "the native build under a launcher given as a command prefix"
    examples = ()

    def __init__(self, arg, opts):
        super().__init__(arg, opts)
        try:
            self.launcher = shlex.split(arg or "")
        except ValueError as e:
            raise UserError("target %s: cannot split the command: %s" % (self.spec, e))
        if not self.launcher:
            raise UserError("target wrap needs a command: wrap:COMMAND (e.g. wrap:'setarch -R')")

    def label(self):
        return "wrap-" + "".join(c if c.isalnum() or c in "._-" else "_" for c in
                                 os.path.basename(self.launcher[0]))[:40]

    def needs(self):
        return [Need(self.launcher[0], "the package that provides %s" % self.launcher[0], "launcher",
                     installable=False)]

    def prefix(self):
        return list(self.launcher)

    def jobs(self):
        return max(1, os.cpu_count() or 1)

    def describe(self):
        return {"target": self.spec, "launcher": shlex.join(self.launcher)}


TARGET = WrapTarget
