"""musl: a static build against musl libc (Debian's musl-gcc), run on this machine."""
from ..targetrun import tool_version
from . import Need
from ._command import CommandTarget


class MuslTarget(CommandTarget):
    kind = "musl"
    host_page_size = True
    usage = "musl"
    summary = "static build with musl libc, run here"

    def needs(self):
        return [Need("musl-gcc", "musl-tools", "musl's compiler wrapper")]

    def make_variables(self):
        return ("CC=musl-gcc", "STATIC=1")

    def describe(self):
        return {"target": self.spec, "libc": "musl", "compiler": tool_version(["musl-gcc"]),
                "build": "make %s" % " ".join(self.make_variables())}


TARGET = MuslTarget
