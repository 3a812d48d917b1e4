"""The build variants the project promises: warning-free with gcc and clang,
a static musl build, a sanitizer build, and the plain-POSIX page layer.
Each variant is built from scratch and runs the conformance suite."""
import json
import os
import shutil
import struct
import subprocess
import sys

import pytest

BINARIES = ("pagelab-conform", "pagelab-bench", "pagelab-selftest")


def build(repo_root, build_dir, *args, targets=BINARIES):
    r = subprocess.run(["make", "-j2", "BUILD=%s" % build_dir, *args] + ["%s/%s" % (build_dir, t) for t in targets],
                       cwd=repo_root, capture_output=True, text=True, timeout=1200)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    return out


def conform(binary, tmp_path, *args):
    out = tmp_path / "c.json"
    r = subprocess.run([binary, "-q", "-j", "2", "--json", str(out), *args], capture_output=True, text=True,
                       timeout=900)
    doc = json.loads(out.read_text())
    bad = [(x["id"], x["status"], x["reason"]) for x in doc["results"] if x["status"] in ("fail", "error", "timeout")]
    assert r.returncode == 0 and not bad, bad[:10]
    return doc


def warnings(text):
    return [line for line in text.splitlines() if "warning:" in line]


@pytest.mark.parametrize("cc", ["gcc", "clang"])
def test_warning_free(repo_root, tmp_path, cc):
    if not shutil.which(cc):
        pytest.skip("%s is not installed" % cc)
    out = build(repo_root, tmp_path / cc, "CC=%s" % cc)
    assert warnings(out) == []
    conform(str(tmp_path / cc / "pagelab-conform"), tmp_path, "-f", "mmap.*")


def test_static_musl_build_runs_the_suite(repo_root, tmp_path):
    if not shutil.which("musl-gcc"):
        pytest.skip("musl-gcc is not installed (Debian: musl-tools)")
    b = tmp_path / "musl"
    out = build(repo_root, b, "CC=musl-gcc", "STATIC=1")
    assert warnings(out) == []
    file_out = subprocess.run(["file", str(b / "pagelab-conform")], capture_output=True, text=True).stdout \
        if shutil.which("file") else "statically linked"
    assert "statically linked" in file_out or "static-pie" in file_out
    doc = conform(str(b / "pagelab-conform"), tmp_path)
    assert doc["env"]["libc"].startswith("musl")
    assert doc["summary"]["pass"] >= 250
    r = subprocess.run([str(b / "pagelab-bench"), "--benchmark_filter=^harness/", "--benchmark_min_time=0.01"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-1000:]


def test_sanitizer_build_runs_the_suite(repo_root, tmp_path):
    b = tmp_path / "asan"
    build(repo_root, b, "SANITIZE=address,undefined", targets=("pagelab-conform",))
    env = dict(os.environ, UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1")
    out = tmp_path / "a.json"
    r = subprocess.run([str(b / "pagelab-conform"), "-q", "-j", "2", "--json", str(out)], capture_output=True,
                       text=True, timeout=900, env=env)
    doc = json.loads(out.read_text())
    bad = [(x["id"], x["status"], x["reason"], x.get("output", "")[-300:]) for x in doc["results"]
           if x["status"] in ("fail", "error", "timeout")]
    assert r.returncode == 0 and not bad, bad[:5]
    assert not [x for x in doc["results"] if "runtime error" in x.get("output", "")]


def test_generic_posix_page_layer(repo_root, tmp_path):
    b = tmp_path / "generic"
    build(repo_root, b, "PLATFORM=generic")
    doc = conform(str(b / "pagelab-conform"), tmp_path)
    assert doc["env"]["platform"] == "generic"
    caps = doc["capabilities"]
    assert caps["release_zero"] == {"impl": "emulated", "via": "mmap(MAP_FIXED)", "verified": "not_checked",
                                    "how": "POSIX promises no zeroing madvise: map fresh memory over the range"}
    assert caps["zero_page"]["impl"] == "unavailable"
    # What a new OS gets: the page-layer contract probes still pass through the fallbacks.
    by_id = {x["id"]: x for x in doc["results"]}
    assert by_id["pagelayer.release_zero.reads_zero/private_anon"]["status"] == "pass"
    assert by_id["pagelayer.release_zero.reads_zero/private_anon"]["measured"]["implementation"] == "emulated: mmap(MAP_FIXED)"


@pytest.mark.parametrize("os_name", ["netbsd", "haiku"])
def test_a_system_without_its_own_page_layer_builds_the_generic_one(repo_root, tmp_path, os_name):
    """A system with no lib/platform file of its own: the build says so and takes the generic POSIX layer."""
    r = subprocess.run(["make", "-n", "BUILD=%s" % (tmp_path / os_name), "PLATFORM=%s" % os_name,
                        "%s/%s/pagelab-conform" % (tmp_path, os_name)],
                       cwd=repo_root, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, (r.stdout + r.stderr)[-2000:]
    assert "no page layer of its own for '%s'" % os_name in r.stdout + r.stderr
    assert "lib/platform/generic.c" in r.stdout and "lib/platform/linux.c" not in r.stdout
    assert "lib/os/self_generic.c" in r.stdout and "abi/generic" in r.stdout


@pytest.mark.parametrize("os_name", ["freebsd", "darwin"])
def test_freebsd_and_darwin_get_their_own_page_layer(repo_root, tmp_path, os_name):
    """PLATFORM=freebsd|darwin builds that system's page layer over posix.c, with its own ABI values."""
    r = subprocess.run(["make", "-n", "BUILD=%s" % (tmp_path / os_name), "PLATFORM=%s" % os_name,
                        "%s/%s/pagelab-conform" % (tmp_path, os_name)],
                       cwd=repo_root, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, (r.stdout + r.stderr)[-2000:]
    assert "no page layer of its own" not in r.stdout + r.stderr
    assert "lib/platform/%s.c" % os_name in r.stdout and "lib/platform/posix.c" in r.stdout
    assert "lib/platform/generic.c" not in r.stdout and "lib/platform/linux.c" not in r.stdout
    assert "abi/%s" % os_name in r.stdout


def zig_command():
    """The command that runs Zig's toolchain: $ZIG, else PyPI's ziglang under this or PATH's python3; or None."""
    candidates = [os.environ["ZIG"]] if os.environ.get("ZIG") else []
    candidates += ["%s -m ziglang" % py for py in (sys.executable, shutil.which("python3")) if py]
    for zig in candidates:
        if subprocess.run(zig.split() + ["version"], capture_output=True).returncode == 0:
            return zig
    return None


# ELF e_machine and Mach-O cputype of each architecture.
ELF_MACHINE = {"x86_64": 62, "aarch64": 183}
MACHO_CPU = {"x86_64": 0x01000007, "aarch64": 0x0100000C}


def elf_notes(data):
    """The owner names of the ELF file's PT_NOTE notes (64-bit little-endian)."""
    phoff, = struct.unpack_from("<Q", data, 32)
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    names = []
    for i in range(phnum):
        p_type, _, p_offset, _, _, p_filesz = struct.unpack_from("<IIQQQQ", data, phoff + i * phentsize)
        at, end = p_offset, p_offset + p_filesz
        while p_type == 4 and at + 12 <= end:
            namesz, descsz, _ = struct.unpack_from("<III", data, at)
            names.append(data[at + 12:at + 12 + namesz].rstrip(b"\0").decode("ascii", "replace"))
            at += 12 + (namesz + 3) // 4 * 4 + (descsz + 3) // 4 * 4
    return names


def check_executable(path, os_name, arch):
    """What `file` would say, read from the headers: a FreeBSD ELF or a Mach-O executable of arch."""
    data = open(path, "rb").read()
    if os_name == "freebsd":
        assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1, "%s: not a 64-bit LSB ELF" % path
        e_type, e_machine = struct.unpack_from("<HH", data, 16)
        assert e_type in (2, 3) and e_machine == ELF_MACHINE[arch], (path, e_type, e_machine)
        # FreeBSD marks its executables by OS/ABI 9 or, as its own crt1 does, by a "FreeBSD" ABI note.
        assert data[7] == 9 or "FreeBSD" in elf_notes(data), (path, data[7], elf_notes(data))
    else:
        magic, cputype, _, filetype = struct.unpack_from("<IiiI", data, 0)
        assert magic == 0xFEEDFACF, "%s: not a 64-bit Mach-O file" % path
        assert cputype == MACHO_CPU[arch] and filetype == 2, (path, hex(cputype), filetype)


@pytest.mark.parametrize("target,arch", [("freebsd", "x86_64"), ("freebsd", "aarch64"),
                                         ("macos", "x86_64"), ("macos", "aarch64")])
def test_cross_build_against_the_systems_own_headers(repo_root, tmp_path, target, arch):
    """make TARGET=freebsd|macos builds the target-side binaries with Zig's toolchain, which carries FreeBSD's
    and macOS's headers and link stubs: every warning is an error, and the headers say which system it is for."""
    zig = zig_command()
    if not zig:
        pytest.skip("Zig's toolchain is not installed (pip install ziglang): the FreeBSD and macOS builds "
                    "are not checked")
    b = tmp_path / ("%s-%s" % (target, arch))
    env = dict(os.environ, ZIG_GLOBAL_CACHE_DIR=str(tmp_path.parent / "zig-cache"))
    r = subprocess.run(["make", "-j2", "TARGET=%s" % target, "ARCH=%s" % arch, "BUILD=%s" % b, "WERROR=1",
                        "ZIG=%s" % zig, "%s/pagelab-conform" % b, "%s/pagelab-bench" % b],
                       cwd=repo_root, capture_output=True, text=True, timeout=1800, env=env)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    assert warnings(out) == []
    platform = "freebsd" if target == "freebsd" else "darwin"
    assert "lib/platform/%s.c" % platform in out and "no page layer of its own" not in out
    for binary in ("pagelab-conform", "pagelab-bench"):
        check_executable(str(b / binary), target, arch)
