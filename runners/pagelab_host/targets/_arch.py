"""The architectures other targets build for: cross compilers, qemu-user and qemu-system.

Names are Debian's architecture names; common aliases are accepted.
"""
import os
import platform

from ..errors import UserError
from . import Need


class Arch:
    def __init__(self, name, triple, debian, qemu_user, byte_order, bits, system=None):
        self.name = name
        self.triple = triple                # the cross compiler's prefix
        self.debian = debian                # Debian's name, for the cross libc package
        self.qemu_user = qemu_user          # qemu-user-static's binary for it
        self.byte_order = byte_order
        self.bits = bits
        self.system = system                # qemu-system binary and its package

    def native(self):
        return _HOST.get(platform.machine()) == self.name

    def cc(self):
        return None if self.native() else "%s-gcc" % self.triple

    def make_variables(self):
        """A static build for this architecture (cross unless it is this machine's)."""
        return ("STATIC=1",) if self.native() else ("CC=%s" % self.cc(), "STATIC=1")

    def build_needs(self):
        if self.native():
            return [Need("/usr/lib/%s/libc.a" % self.triple, "libc6-dev", "static C library")]
        return [Need(self.cc(), "gcc-%s" % self.triple, "cross compiler"),
                Need("/usr/%s/lib/libc.a" % self.triple, "libc6-dev-%s-cross" % self.debian, "static C library")]


ARCHES = {a.name: a for a in (
    Arch("amd64", "x86_64-linux-gnu", "amd64", "qemu-x86_64-static", "little", 64,
         ("qemu-system-x86_64", "qemu-system-x86")),
    Arch("aarch64", "aarch64-linux-gnu", "arm64", "qemu-aarch64-static", "little", 64,
         ("qemu-system-aarch64", "qemu-system-arm")),
    Arch("riscv64", "riscv64-linux-gnu", "riscv64", "qemu-riscv64-static", "little", 64,
         ("qemu-system-riscv64", "qemu-system-misc")),
    Arch("ppc64el", "powerpc64le-linux-gnu", "ppc64el", "qemu-ppc64le-static", "little", 64,
         ("qemu-system-ppc64", "qemu-system-ppc")),
    Arch("s390x", "s390x-linux-gnu", "s390x", "qemu-s390x-static", "big", 64,
         ("qemu-system-s390x", "qemu-system-misc")),
    Arch("i686", "i686-linux-gnu", "i386", "qemu-i386-static", "little", 32),
    Arch("armhf", "arm-linux-gnueabihf", "armhf", "qemu-arm-static", "little", 32),
)}
ALIASES = {"arm64": "aarch64", "x86_64": "amd64", "ppc64le": "ppc64el", "i386": "i686", "riscv": "riscv64"}
_HOST = {"x86_64": "amd64", "aarch64": "aarch64", "ppc64le": "ppc64el", "s390x": "s390x", "riscv64": "riscv64"}


def arch(name, spec):
    a = ARCHES.get(ALIASES.get(name, name))
    if a is None:
        raise UserError("target %s: unknown architecture %r (known: %s)" % (spec, name, ", ".join(ARCHES)))
    return a


def host_arch():
    return ARCHES.get(_HOST.get(platform.machine(), ""))


def build_dir(ctx, label):
    return os.path.join(ctx.build_root, "targets", label)
