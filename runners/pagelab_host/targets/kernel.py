"""kernel:SPEC[/ARCH]: a Linux kernel booted under qemu-system with an initramfs
holding static pagelab binaries and the guest init. SPEC is a Debian kernel series
(6.1, 6.12), an image package name, a .deb file or a kernel image path; ARCH is
amd64 (this machine's, the default), arm64, arm64-16k, ppc64el, s390x or riscv64.
Foreign architectures run under TCG; this machine's uses KVM when a guest really
boots with it (nested virtualisation often fails) and says why not otherwise."""
import os
import platform
import re

from ..errors import UserError
from ..targetrun import TargetFailed, tool_version
from . import Need
from . import _debian
from ._arch import ARCHES, build_dir
from ._guest import Console, GuestTarget, boot

KVM_ALIVE_S = 120
SWAP_MIB = 256          # a RAM disk for swap
HUGETLB_PMD_PAGES = 16  # hugetlb pages of the PMD size (the probes' largest need is 9)
HUGETLB_PUD_MIN_MIB = 6144  # guests at least this big also get pages of 1 GiB (the probes need two)


class KernelArch:
    def __init__(self, name, build_arch, debian, flavours, machine, cpu, console):
        self.name = name
        self.build = ARCHES[build_arch]         # what the guest's binaries are built for
        self.debian = debian                    # Debian's architecture, for the private APT
        self.flavours = flavours                # kernel flavours in order of preference
        self.machine, self.cpu, self.console = machine, cpu, console


KERNEL_ARCHES = {k.name: k for k in (
    KernelArch("amd64", "amd64", "amd64", ("amd64",), [], "max", "ttyS0"),
    # `max` with pointer authentication emulated is 4-10x slower.
    KernelArch("arm64", "aarch64", "arm64", ("arm64",), ["-M", "virt"], "max,pauth=off", "ttyAMA0"),
    # 16 KiB pages: bookworm-backports and trixie only; hangs silently with -cpu cortex-a57.
    KernelArch("arm64-16k", "aarch64", "arm64", ("arm64-16k",), ["-M", "virt"], "max,pauth=off", "ttyAMA0"),
    # 64 KiB pages: 6.1's powerpc64le flavour has them, from 6.12 only powerpc64le-64k. The
    # SLOF firmware is 4x slower than VOF; the caps silence spectre-mitigation warnings under TCG.
    KernelArch("ppc64el", "ppc64el", "ppc64el", ("powerpc64le-64k", "powerpc64le"),
               ["-M", "pseries,x-vof=on,cap-cfpc=broken,cap-sbbc=broken,cap-ibs=broken,cap-ccf-assist=off"],
               "POWER9", "hvc0"),
    KernelArch("s390x", "s390x", "s390x", ("s390x",), ["-M", "s390-ccw-virtio"], "max", "ttysclp0"),
    KernelArch("riscv64", "riscv64", "riscv64", ("riscv64",), ["-M", "virt"], "rv64", "ttyS0"),
)}
# The kernel's COMMAND_LINE_SIZE (with its terminating NUL) per architecture, in Debian's configurations.
CMDLINE_SIZE = {"amd64": 2048, "arm64": 2048, "arm64-16k": 2048, "ppc64el": 2048, "s390x": 4096, "riscv64": 1024}
HOST_KERNEL_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "ppc64le": "ppc64el", "s390x": "s390x",
                    "riscv64": "riscv64"}
_accel_seen = {}


def split_spec(arg, spec):
    """(kernel SPEC, KernelArch) from 'SPEC[/ARCH]'."""
    if not arg:
        raise UserError("target kernel needs a kernel: kernel:SERIES[/ARCH] (e.g. kernel:6.1/ppc64el)")
    head, sep, tail = arg.rpartition("/")
    if sep and tail in KERNEL_ARCHES:
        return head, KERNEL_ARCHES[tail]
    if sep and not os.path.exists(arg) and "/" not in head and not head.startswith("."):
        raise UserError("target %s: unknown architecture %r (known: %s)" % (spec, tail, ", ".join(KERNEL_ARCHES)))
    host = HOST_KERNEL_ARCH.get(platform.machine())
    if host is None:
        raise UserError("target %s: name the architecture (kernel:SPEC/ARCH)" % spec)
    return arg, KERNEL_ARCHES[host]


class KernelTarget(GuestTarget):
    kind = "kernel"
    usage = "kernel:SPEC[/ARCH]"
    summary = "a Debian (or given) kernel under qemu-system; ARCH: " + ", ".join(KERNEL_ARCHES)
    examples = ("6.1/amd64", "6.1/arm64", "6.12/arm64-16k", "6.1/ppc64el", "6.1/s390x", "6.12/riscv64")
    default_timeout = 5400
    takes_label = True

    def __init__(self, arg, opts):
        super().__init__(arg, opts)
        self.kernel, self.karch = split_spec(arg, self.spec)
        if not os.path.exists(self.kernel) and not re.match(r"^(\d+\.\d+|linux-image-\S+)$", self.kernel):
            raise UserError("target %s: %s is neither a file nor a Debian series (6.1) or image package name"
                            % (self.spec, self.kernel))
        self.image = self.package = None
        self.accel, self.accel_reason = "tcg", "not decided yet"
        line, most = self.append("run"), CMDLINE_SIZE.get(self.karch.name, 2048) - 1
        if getattr(opts, "append", None) and len(line) > most:
            raise UserError("target %s: --append makes the kernel command line %d characters; a %s kernel keeps "
                            "%d and drops the rest" % (self.spec, len(line), self.karch.name, most))

    def label(self):
        kernel = os.path.basename(self.kernel) if os.path.exists(self.kernel) else self.kernel
        return "kernel-%s-%s%s" % (kernel, self.karch.name, "-" + self.run_label if self.run_label else "")

    def qemu(self):
        return self.karch.build.system

    def needs(self):
        return [Need(self.qemu()[0], self.qemu()[1], "emulator"), Need("dpkg-deb", "dpkg", "unpacks kernel packages"),
                Need(_debian.KEYRING, "debian-archive-keyring", "checks Debian's package lists")] \
            + self.karch.build.build_needs()

    def native(self):
        return HOST_KERNEL_ARCH.get(platform.machine()) == self.karch.name

    def build_dir(self, ctx):
        return build_dir(ctx, "static-%s" % self.karch.build.name)

    def make_variables(self):
        return self.karch.build.make_variables()

    def prepare(self, ctx):
        self.image, self.package = self.resolve(ctx)
        super().prepare(ctx)
        self.accel, self.accel_reason = self.choose_accel(ctx)

    def resolve(self, ctx):
        """(kernel image, package file or None)."""
        spec = self.kernel
        if os.path.isfile(spec) and spec.endswith(".deb"):
            return _debian.extract_image(os.path.abspath(spec)), os.path.basename(spec)
        if os.path.isfile(spec):
            return os.path.abspath(spec), None
        ctx.say("%s: resolving Debian's %s %s kernel" % (self.spec, self.karch.name, spec))
        try:
            if spec.startswith("linux-image-"):
                apt = _debian.PrivateApt(self.karch.debian)
                apt.update()
                deb = apt.download(spec, os.path.join(_debian.cache_root(), "debs"))
                return _debian.extract_image(deb), os.path.basename(deb)
            return _debian.fetch_kernel(spec, self.karch.debian, self.karch.flavours)
        except UserError as e:
            raise TargetFailed(str(e))

    def qemu_command(self, accel, initrd, append, memory, cpus):
        cpu = "host" if accel == "kvm" else self.karch.cpu
        return ([self.qemu()[0]] + self.karch.machine +
                ["-accel", accel, "-cpu", cpu, "-m", memory, "-smp", str(cpus), "-display", "none",
                 "-monitor", "none", "-serial", "stdio", "-no-reboot", "-kernel", self.image, "-initrd", initrd,
                 "-append", append])

    def append(self, mode):
        line = "console=%s panic=-1 loglevel=1 pagelab.mode=%s" % (self.karch.console, mode)
        if mode != "alive" and _mib(self.opts.memory) >= HUGETLB_PUD_MIN_MIB:
            # At boot: later, memory is too scattered. Three asked, as the kernel's own placement
            # (KASLR, the initramfs) was seen to leave room for only one or two.
            line += " hugepagesz=1G hugepages=3"
        extra = getattr(self.opts, "append", None)
        return line + " " + extra if extra else line

    def boot_command(self, ctx, root, mode="run"):
        return self.qemu_command(self.accel, root, self.append(mode), self.opts.memory, self.opts.cpus)

    def jobs(self):
        return self.opts.cpus

    def choose_accel(self, ctx):
        """('kvm'|'tcg', reason): KVM only when a guest really comes alive with it."""
        want = self.opts.accel
        if not self.native():
            return "tcg", "another architecture than this machine's"
        if want == "tcg":
            return "tcg", "asked for with --accel tcg"
        if self.image not in _accel_seen:
            _accel_seen[self.image] = self._probe_kvm(ctx)
        reason = _accel_seen[self.image]
        if reason is None:
            return "kvm", "a guest booted with KVM"
        if want == "kvm":
            raise TargetFailed("--accel kvm: %s" % reason)
        return "tcg", reason + ": using TCG"

    def _probe_kvm(self, ctx):
        """None when a guest comes alive under KVM, else why not."""
        if not os.path.exists("/dev/kvm"):
            return "no /dev/kvm"
        if not os.access("/dev/kvm", os.R_OK | os.W_OK):
            return "/dev/kvm is not accessible to this user"
        root = self.make_root(ctx, "")
        cmd = self.qemu_command("kvm", root, self.append("alive"), "512M", 1)
        with open(ctx.path("logs/kvm-probe.log"), "w", encoding="utf-8", errors="replace") as log:
            con = Console(ctx, [], log)
            _, err, _ = boot(cmd, con, KVM_ALIVE_S, stop_when_alive=True)
        if con.alive:
            return None
        return "a KVM guest did not come alive (%s)" % ((err.splitlines() or ["no output"])[-1])

    def guest_setup(self, ctx):
        """The guest is ours, so the privileged probes get what they need there: swap on a RAM disk (brd from the
        kernel's own package), hugetlb pages, KSM running (merging zero-filled pages into the zero page), mTHP on
        advice, the memory cgroup delegated."""
        lines, files = [], {}
        pkg = self.package and (self.package if self.package.endswith(".deb") else self.package + ".deb")
        deb = self.kernel if self.kernel.endswith(".deb") else pkg and os.path.join(_debian.cache_root(), "debs", pkg)
        brd = deb and _debian.extract_module(deb, "drivers/block/brd")
        if brd:
            name = os.path.basename(brd)
            with open(brd, "rb") as f:
                files[name] = f.read()
            lines += ["module /%s rd_nr=1 rd_size=%d" % (name, SWAP_MIB * 1024), "swap /dev/ram0"]
        else:
            ctx.say("%s: no brd module in the kernel's package: the guest has no swap" % self.spec)
        lines += ["write /proc/sys/vm/nr_hugepages %d" % HUGETLB_PMD_PAGES,
                  "write /sys/kernel/mm/ksm/use_zero_pages 1", "write /sys/kernel/mm/ksm/run 1", "write /sys/kernel/mm/ksm/sleep_millisecs 10",
                  "write /sys/kernel/mm/ksm/pages_to_scan 1000",
                  "write /sys/kernel/mm/transparent_hugepage/hugepages-64kB/enabled madvise",
                  "write /proc/sys/vm/unprivileged_userfaultfd 1",
                  "mount cgroup2 /sys/fs/cgroup", "write /sys/fs/cgroup/cgroup.subtree_control +memory"]
        return lines, files

    def describe(self):
        return {"target": self.spec, "emulation": "qemu-system-" + self.accel, "qemu": self.qemu()[0],
                "qemu_version": tool_version([self.qemu()[0]]), "qemu_machine": " ".join(self.karch.machine) or "pc",
                "qemu_cpu": "host" if self.accel == "kvm" else self.karch.cpu, "accel": self.accel,
                "accel_reason": self.accel_reason, "memory": self.opts.memory, "cpus": self.opts.cpus,
                "kernel_image": self.image and os.path.basename(self.image), "kernel_package": self.package,
                "byte_order": self.karch.build.byte_order, "pointer_bits": self.karch.build.bits,
                **({"kernel_append": self.opts.append} if getattr(self.opts, "append", None) else {}),
                **({"run_label": self.run_label} if self.run_label else {})}


def _mib(size):
    """MiB in a QEMU memory size ('2G', '1536M', '1024')."""
    m = re.match(r"^(\d+)([MGT]?)$", str(size).upper())
    return int(m.group(1)) * {"": 1, "M": 1, "G": 1024, "T": 1 << 20}[m.group(2)] if m else 0


TARGET = KernelTarget
