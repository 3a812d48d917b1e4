"""qemu-user:ARCH: a static cross build run under qemu-user (Linux system calls of this
machine's kernel, another CPU). It cannot stand in for another page size: qemu-user
reports the host's 4096 whatever the architecture's kernels use."""
from shutil import which

from ..errors import UserError
from ..targetrun import tool_version
from . import Need
from ._arch import ARCHES, arch
from ._command import CommandTarget


class QemuUserTarget(CommandTarget):
    kind = "qemu-user"
    host_page_size = True
    usage = "qemu-user:ARCH"
    summary = "static cross build under qemu-user; ARCH: " + ", ".join(a for a in ARCHES if a != "amd64")
    examples = tuple(a for a in ARCHES if a != "amd64")
    default_timeout = 7200

    def __init__(self, arg, opts):
        super().__init__(arg, opts)
        if not arg:
            raise UserError("target qemu-user needs an architecture: qemu-user:ARCH (%s)"
                            % ", ".join(a for a in ARCHES if a != "amd64"))
        self.arch = arch(arg, self.spec)

    def label(self):
        return "qemu-user-%s" % self.arch.name

    def needs(self):
        return [Need(self.arch.qemu_user, "qemu-user-static", "emulator")] + self.arch.build_needs()

    def make_variables(self):
        return self.arch.make_variables()

    def prefix(self):
        return [which(self.arch.qemu_user) or self.arch.qemu_user]

    def describe(self):
        return {"target": self.spec, "emulation": "qemu-user", "emulator": self.arch.qemu_user,
                "emulator_version": tool_version([self.arch.qemu_user]), "arch": self.arch.name,
                "byte_order": self.arch.byte_order, "pointer_bits": self.arch.bits,
                "build": "make %s" % " ".join(self.make_variables())}


TARGET = QemuUserTarget
