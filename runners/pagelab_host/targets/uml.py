"""uml[:KERNEL]: user-mode Linux (Debian's user-mode-linux, or the linux.uml binary given),
root on hostfs: a directory of this machine holding the guest's init, binaries and plan."""
import os
import shutil

from ..targetrun import tool_version
from . import Need
from ._arch import build_dir, host_arch
from ._guest import GuestTarget

DEFAULT_UML = "linux.uml"


class UmlTarget(GuestTarget):
    kind = "uml"
    host_page_size = True
    usage = "uml[:KERNEL]"
    summary = "user-mode Linux with root on hostfs (KERNEL: a linux.uml binary; default Debian's)"
    root_kind = "dir"
    default_timeout = 3600

    def kernel(self):
        return self.arg or DEFAULT_UML

    def label(self):
        return "uml" if not self.arg else "uml-" + os.path.basename(self.arg)

    def needs(self):
        return [Need(self.kernel(), "user-mode-linux", "the user-mode kernel")] + host_arch().build_needs()

    def build_dir(self, ctx):
        return build_dir(ctx, "static-%s" % host_arch().name)

    def make_variables(self):
        return host_arch().make_variables()

    def jobs(self):
        return 1

    def boot_command(self, ctx, root, mode="run"):
        return [shutil.which(self.kernel()) or self.kernel(), "mem=%s" % self.opts.memory, "rootfstype=hostfs",
                "rootflags=%s" % os.path.abspath(root), "rw", "init=/init", "con=null", "con0=null,fd:1",
                "loglevel=1", "panic=-1", "pagelab.mode=%s" % mode]

    def describe(self):
        return {"target": self.spec, "emulation": "user-mode-linux", "uml_kernel": self.kernel(),
                "uml_version": tool_version([shutil.which(self.kernel()) or self.kernel()]),
                "memory": self.opts.memory, "root": "hostfs"}


TARGET = UmlTarget
