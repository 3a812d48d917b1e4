#!/bin/sh
# Install what pagelab needs from Debian packages, when missing.
# usage: tools/install-deps.sh [run|check]   (PAGELAB_NO_DEPS=1 skips this step)
# Without root or apt-get it lists what is missing and goes on: every optional
# library has a fallback, and the host side says what it cannot do.
set -u
[ "${PAGELAB_NO_DEPS:-0}" = 1 ] && exit 0
what=${1:-run}
# Target side: compiler and the optional libraries (each has a fallback).
pkgs="make gcc g++ libc6-dev libhwloc-dev hwloc libpfm4-dev libbenchmark-dev"
# Host side: reports and figures.
pkgs="$pkgs python3 python3-matplotlib python3-numpy python3-scipy"
if [ "$what" = check ]; then
	# Tests: static musl build, clang warnings, compare.py, real programs under the
	# malloc shim, the report rendered in a real browser, and a Debian kernel booted under QEMU.
	pkgs="$pkgs python3-pytest musl-tools clang libbenchmark-tools sqlite3 poppler-utils groff ghostscript time libjemalloc2 libmimalloc2.0 chromium cpio qemu-system-x86"
	# Targets: qemu-user on aarch64 and s390x (static cross builds), user-mode Linux, and
	# Debian's ppc64el kernel under qemu-system (fetched with pagelab's private APT setup).
	pkgs="$pkgs qemu-user-static user-mode-linux qemu-system-ppc debian-archive-keyring gcc-aarch64-linux-gnu libc6-dev-arm64-cross gcc-s390x-linux-gnu libc6-dev-s390x-cross gcc-powerpc64le-linux-gnu libc6-dev-ppc64el-cross"
	# ssh targets: hosts made of network namespaces with their own sshd, one a busybox chroot.
	# LAVA: server, dispatcher and PostgreSQL, and what `lava-run --validate` needs for boards.
	pkgs="$pkgs openssh-client openssh-server openssh-sftp-server busybox-static iproute2 python3-yaml postgresql lava-server lava-dispatcher lava-common u-boot-tools tftpd-hpa"
	# Windows: the mingw-w64 cross compiler and Wine (64-bit) to run the Windows build headless.
	pkgs="$pkgs gcc-mingw-w64-x86-64 wine wine64"
fi
command -v dpkg-query >/dev/null 2>&1 || { echo "install-deps: not a Debian system; install the equivalents of: $pkgs" >&2; exit 0; }
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "install-deps: missing Debian packages:$missing (run as root, or install them; continuing with fallbacks)" >&2
	exit 0
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null || { echo "install-deps: apt-get update failed" >&2; exit 1; }
# lava-server's postinst migrates its database: PostgreSQL must run first (no systemd starts it here).
case " $missing " in *" lava-server "*)
	apt-get install -y -qq --no-install-recommends postgresql >/dev/null || { echo "install-deps: postgresql failed" >&2; exit 1; }
	pg_lsclusters -h | grep -q online || pg_lsclusters -h | head -n 1 | { read -r v c _ && pg_ctlcluster "$v" "$c" start; } ||
		{ echo "install-deps: cannot start PostgreSQL for lava-server" >&2; exit 1; }
esac
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null || { echo "install-deps: apt-get install failed for:$missing" >&2; exit 1; }
