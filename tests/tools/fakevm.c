/* A fake VM layer for the harness's own tests, preloaded into pagelab-conform
 * (LD_PRELOAD): it makes the system under test misbehave in the ways other
 * systems do (an emulator, a sandbox kernel, a tool that emulates the break),
 * chosen by environment variables, one per mode. tests/py/test_fault_catalogue.py
 * runs the suite under each and checks every verdict that must change.
 *
 * Advice (N: a decimal advice value, or a comma-separated list of them)
 *   FAKEVM_REFUSE_ADVICE=N   madvise(advice N) fails with EINVAL, as an unknown advice does
 *   FAKEVM_IGNORE_ADVICE=N   madvise(advice N) returns 0 and does nothing (an emulator's way;
 *                            an unaligned start is still EINVAL)
 *   FAKEVM_NOOP_ADVICE=N     madvise(advice N) checks its range as MADV_NORMAL does, then does nothing
 *                            (errors for holes and bad addresses stay right; only the effect is missing)
 *   FAKEVM_ENOSYS_ADVICE=N   madvise(advice N) fails with ENOSYS
 *   FAKEVM_QEMU_MADVISE=1    qemu-user: an unaligned start is EINVAL, MADV_DONTNEED is done,
 *                            every other advice (unknown ones too) answers 0 and does nothing
 *   FAKEVM_MADVISE_UNALIGNED_OK=1  madvise at an unaligned start answers 0 (and does nothing)
 *   FAKEVM_CRASH_ADVICE=N    madvise(advice N) in a probe process dies of SIGABRT
 *   FAKEVM_HANG_ADVICE=N     madvise(advice N) in a probe process never returns
 *   FAKEVM_BUSY_SHARED_ADVICE=N  madvise(advice N) on a shared mapping fails with EBUSY (a refusal
 *                            of a known advice, unlike an unknown advice's EINVAL)
 *   FAKEVM_NO_THP=1          no transparent huge pages (user-mode Linux): MADV_HUGEPAGE,
 *                            MADV_NOHUGEPAGE and MADV_COLLAPSE are EINVAL like unknown advice,
 *                            /sys/kernel/mm/transparent_hugepage is absent
 * Flags (names: populate, locked, growsdown, fixed_noreplace, dontunmap, fixed, onfault, droppable,
 *        future: mlockall's MCL_FUTURE)
 *   FAKEVM_IGNORE_FLAG=a,b   the flag is dropped from the call (mmap's MAP_*, mremap's MREMAP_*,
 *                            mlock2's MLOCK_ONFAULT); fixed_noreplace dropped makes the address a hint
 *   FAKEVM_REFUSE_FLAG=a,b   a call with the flag fails with EINVAL, as for an unknown flag
 * Calls (call names: mmap munmap mprotect mremap madvise mincore mlock mlock2 mlockall mseal
 *        fork vmsplice io_uring_setup process_madvise userfaultfd memfd_create prctl brk;
 *        errno names: EINVAL ENOMEM EFAULT EPERM EACCES EAGAIN ENOSYS EEXIST ENOTSUP EOPNOTSUPP, or 0)
 *   FAKEVM_MUNMAP_WRAP_EXITS=1  qemu-user 7.2: munmap of a range wrapping past the top of the
 *                            address space ends the process with status 127 (its own assertion)
 *   FAKEVM_FAIL=call:E[,..]  the call fails with E before doing anything (fork only in probe processes)
 *   FAKEVM_ERRNO=call:E1:E2[,..]  where the real call fails with E1 it answers E2 instead (0: success)
 *   FAKEVM_KILL_CALL=call    the call, in a probe process, kills it with SIGKILL
 *   FAKEVM_NO_ANON_EXEC=1    mprotect(PROT_EXEC) of anonymous memory fails with EACCES (a W^X policy)
 *   FAKEVM_MPROTECT_HOLE_PARTIAL=1  qemu-user: mprotect over a range with a hole answers ENOMEM
 *                            after changing every mapped page of the range, past the hole too
 *   FAKEVM_MREMAP_UNALIGNED_UNMAPS=1  qemu-user: mremap of an unaligned address answers EINVAL
 *                            after unmapping the source's pages
 *   FAKEVM_DONTUNMAP_DROPS=1 MREMAP_DONTUNMAP is accepted but the old range is unmapped
 *   FAKEVM_MREMAP_ONE_MAPPING=1  user-mode Linux: mremap of a range that spans more than one
 *                            mapping fails with EFAULT (FAKEVM_ERRNO=mremap:EFAULT:EINVAL makes it
 *                            valgrind's EINVAL)
 * The break
 *   FAKEVM_BRK_KEEPS_PAGES=1 qemu-user: brk(2) lowering the break answers the new break and keeps
 *                            the pages above it mapped, with their contents, for the next rise
 *   FAKEVM_BRK_ELSEWHERE=1   valgrind: brk(2) is emulated with mappings of its own below the
 *                            program, so the kernel's start of the break describes another heap
 * Observation channels
 *   FAKEVM_MINCORE_LIES=1    mincore reports every page resident
 *   FAKEVM_NO_PAGEMAP_SCAN=1 the PAGEMAP_SCAN ioctl is unknown (ENOTTY), as before Linux 6.7
 *   FAKEVM_HIDE=a,b          these files are absent (ENOENT): statm, stat, maps, smaps, pagemap,
 *                            mem (each /proc/self/NAME), thp (what /sys/kernel/mm/transparent_hugepage
 *                            holds), userfaultfd (/dev/userfaultfd)
 *   FAKEVM_NO_TMPFILES=1     a probe process cannot create files (open with O_CREAT or O_TMPFILE,
 *                            mkstemp, mkostemp: EACCES), as in a sandbox without a writable temporary directory
 *   FAKEVM_MAPS_HIDE_PROT_NONE=1  /proc/self/maps leaves out PROT_NONE mappings (qemu-user does,
 *                            once their neighbours are unmapped)
 *   FAKEVM_FORCED_WRITE_LOST=1  a write through /proc/self/mem answers success and lands nowhere
 *                            (32-bit qemu-user guests)
 *   FAKEVM_FORCED_WRITE_EINVAL=1  a write through /proc/self/mem is refused with EINVAL (a system whose
 *                            /proc/self/mem reads but does not write)
 *   FAKEVM_STATM_FROZEN=1    /proc/self/statm reads the same numbers whatever the process does
 *   FAKEVM_RUSAGE_FROZEN=1   getrusage reports no page faults ever
 *   FAKEVM_SI_CODE=lies      SIGSEGV/SIGBUS handlers see SEGV_MAPERR for every fault
 *   FAKEVM_SI_CODE=none      they see si_code 0 (SI_USER): faults carry no code
 *   FAKEVM_NO_ZERO_PAGE=1    a kernel whose zero page is disabled: no page is ever the shared zero
 *                            page (PAGEMAP_SCAN never reports PAGE_IS_PFNZERO)
 * "A probe process" is one started with --run-one (and its children): the runner itself, which
 * forks and waits, is left alone by the modes that kill, hang or refuse fork.
 * Everything else goes to the real C library. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

/* The C library's own `name`, looked up once; a library without it cannot be faked over. */
#define REAL(name, type) \
	static __typeof__((type)0) real_##name; \
	if (!real_##name && !(real_##name = (type)dlsym(RTLD_NEXT, #name))) \
		missing_symbol(#name)

static void missing_symbol(const char *name)
{
	static const char msg[] = "fakevm: the C library has no ";
	if (write(2, msg, sizeof(msg) - 1) < 0 || write(2, name, strlen(name)) < 0 || write(2, "\n", 1) < 0)
		abort();
	abort();
}

/* ---- the environment ---- */

static long env_number(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? strtol(v, NULL, 10) : -1;
}

static bool env_on(const char *name)
{
	return env_number(name) == 1;
}

/* Is n one of the comma-separated numbers in the variable? */
static bool env_has_number(const char *name, long n)
{
	const char *v = getenv(name);
	while (v && *v) {
		char *end;
		long x = strtol(v, &end, 10);
		if (end == v)
			return false;
		if (x == n)
			return true;
		v = *end == ',' ? end + 1 : end;
		if (*end != ',')
			break;
	}
	return false;
}

/* Is word one of the comma-separated words in the variable? */
static bool env_has_word(const char *name, const char *word)
{
	const char *v = getenv(name);
	size_t n = strlen(word);
	while (v && *v) {
		const char *end = strchr(v, ',');
		size_t len = end ? (size_t)(end - v) : strlen(v);
		if (len == n && strncmp(v, word, n) == 0)
			return true;
		if (!end)
			break;
		v = end + 1;
	}
	return false;
}

static const struct { const char *name; int e; } errnos[] = {
	{"0", 0},          {"EINVAL", EINVAL}, {"ENOMEM", ENOMEM}, {"EFAULT", EFAULT}, {"EPERM", EPERM},
	{"EACCES", EACCES}, {"EAGAIN", EAGAIN}, {"ENOSYS", ENOSYS}, {"EEXIST", EEXIST}, {"ENOTSUP", ENOTSUP},
	{"EOPNOTSUPP", EOPNOTSUPP}, {"EBUSY", EBUSY},
};

static int errno_by_name(const char *s, size_t len)
{
	for (size_t i = 0; i < sizeof(errnos) / sizeof(errnos[0]); i++)
		if (strlen(errnos[i].name) == len && strncmp(errnos[i].name, s, len) == 0)
			return errnos[i].e;
	return -1;
}

/* In "call:A[:B],..." find call's entry: a and b (-1 where absent); false when the call is not named. */
static bool env_call_entry(const char *name, const char *call, int *a, int *b)
{
	const char *v = getenv(name);
	size_t n = strlen(call);
	while (v && *v) {
		const char *end = strchr(v, ',');
		size_t len = end ? (size_t)(end - v) : strlen(v);
		if (len > n && strncmp(v, call, n) == 0 && v[n] == ':') {
			const char *x = v + n + 1, *colon = memchr(x, ':', len - n - 1);
			size_t xl = colon ? (size_t)(colon - x) : len - n - 1;
			*a = errno_by_name(x, xl);
			*b = colon ? errno_by_name(colon + 1, (size_t)(v + len - colon - 1)) : -1;
			return true;
		}
		if (!end)
			break;
		v = end + 1;
	}
	return false;
}

/* FAKEVM_FAIL: the errno the call must fail with before it runs, or -1. */
static int planned_failure(const char *call)
{
	int a, b;
	return env_call_entry("FAKEVM_FAIL", call, &a, &b) && a > 0 ? a : -1;
}

/* FAKEVM_ERRNO: the answer to give for a real failure e (0: success). */
static int mapped_errno(const char *call, int e)
{
	int a, b;
	if (env_call_entry("FAKEVM_ERRNO", call, &a, &b) && a == e && b >= 0)
		return b;
	return e;
}

/* The real C library's syscall(2), and raw calls through it (never through our own syscall()). */
static long raw(long nr, long a, long b, long c, long d, long e, long f)
{
	REAL(syscall, long (*)(long, ...));
	return real_syscall(nr, a, b, c, d, e, f);
}

/* Is this process a probe (started with --run-one), or a child of one? */
static bool in_probe(void)
{
	static int known = -1;
	if (known >= 0)
		return known;
	char buf[8192];
	int fd = (int)raw(SYS_openat, AT_FDCWD, (long)"/proc/self/cmdline", O_RDONLY | O_CLOEXEC, 0, 0, 0);
	ssize_t n = 0;
	if (fd >= 0) {
		n = (ssize_t)raw(SYS_read, fd, (long)buf, (long)sizeof(buf) - 1, 0, 0, 0);
		if (raw(SYS_close, fd, 0, 0, 0, 0, 0) != 0)
			n = -1;
	}
	known = 0;
	for (ssize_t i = 0; i + 9 <= n; i++)
		if (memcmp(buf + i, "--run-one", 9) == 0 && (i == 0 || buf[i - 1] == 0))
			known = 1;
	return known;
}

static void maybe_kill(const char *call)
{
	const char *v = getenv("FAKEVM_KILL_CALL");
	if (v && strcmp(v, call) == 0 && in_probe())
		(void)raw(SYS_kill, getpid(), SIGKILL, 0, 0, 0, 0);
}

/* Before a call: 0 to go on, else the errno to fail with at once. */
static int before(const char *call)
{
	maybe_kill(call);
	int e = planned_failure(call);
	if (e > 0 && strcmp(call, "fork") == 0 && !in_probe())
		return 0;
	return e > 0 ? e : 0;
}

/* The text of /proc/self/maps in a mapping of its own (never in this library's own data: a
 * library with megabytes of .bss is placed on either side of libc from one exec to the next,
 * and the runner compares the order of the code objects of parent and child). NULL with errno
 * on failure; give it back with free_maps. */
#define MAPS_MAX ((size_t)4 << 20)
static char *read_maps(void)
{
	REAL(mmap, void *(*)(void *, size_t, int, int, int, off_t));
	REAL(munmap, int (*)(void *, size_t));
	char *buf = real_mmap(NULL, MAPS_MAX, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (buf == MAP_FAILED)
		return NULL;
	int fd = (int)raw(SYS_openat, AT_FDCWD, (long)"/proc/self/maps", O_RDONLY | O_CLOEXEC, 0, 0, 0);
	size_t got = 0;
	long n = fd < 0 ? -1 : 0;
	while (fd >= 0 && (n = raw(SYS_read, fd, (long)(buf + got), (long)(MAPS_MAX - 1 - got), 0, 0, 0)) > 0)
		got += (size_t)n;
	int e = errno;
	if ((fd >= 0 && raw(SYS_close, fd, 0, 0, 0, 0, 0) != 0) || n < 0) {
		e = n < 0 ? e : errno;
		if (real_munmap(buf, MAPS_MAX) != 0)
			abort();
		errno = e;
		return NULL;
	}
	buf[got] = 0;
	return buf;
}

static void free_maps(char *buf)
{
	REAL(munmap, int (*)(void *, size_t));
	if (real_munmap(buf, MAPS_MAX) != 0)
		abort();
}

/* The /proc/self/maps line of the mapping holding p, in line (empty when none or unreadable). */
static void maps_line_of(uintptr_t p, char *line, size_t size)
{
	line[0] = 0;
	char *buf = read_maps();
	if (!buf)
		return;
	for (char *l = buf; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		unsigned long long lo, hi;
		if (sscanf(l, "%llx-%llx", &lo, &hi) == 2 && p >= lo && p < hi) {
			const char *end = strchr(l, '\n');
			size_t n = end ? (size_t)(end - l) : strlen(l);
			if (n >= size)
				n = size - 1;
			memcpy(line, l, n);
			line[n] = 0;
			break;
		}
	}
	free_maps(buf);
}

/* Is p in a MAP_SHARED mapping (the fourth permission letter is 's')? */
static bool shared_mapping(const void *p)
{
	char line[512];
	maps_line_of((uintptr_t)p, line, sizeof(line));
	const char *perm = strchr(line, ' ');
	return perm && strlen(perm) > 4 && perm[4] == 's';
}

/* Is p in an anonymous mapping (no inode: the fifth field is 0)? */
static bool anonymous_mapping(const void *p)
{
	char line[512];
	unsigned long long lo, hi, off, inode;
	char perms[8], dev[16];
	maps_line_of((uintptr_t)p, line, sizeof(line));
	return sscanf(line, "%llx-%llx %7s %llx %15s %llu", &lo, &hi, perms, &off, dev, &inode) == 6 && inode == 0;
}

/* ---- madvise ---- */

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif

static bool advice_unaligned(void *addr)
{
	return ((uintptr_t)addr & ((uintptr_t)sysconf(_SC_PAGESIZE) - 1)) != 0;
}

int madvise(void *addr, size_t len, int advice)
{
	REAL(madvise, int (*)(void *, size_t, int));
	int e = before("madvise");
	if (e) {
		errno = e;
		return -1;
	}
	if (env_has_number("FAKEVM_CRASH_ADVICE", advice) && in_probe())
		abort();
	if (env_has_number("FAKEVM_HANG_ADVICE", advice) && in_probe())
		for (;;)
			pause();
	if (env_has_number("FAKEVM_REFUSE_ADVICE", advice) ||
	    (env_on("FAKEVM_NO_THP") &&
	     (advice == MADV_HUGEPAGE || advice == MADV_NOHUGEPAGE || advice == MADV_COLLAPSE))) {
		errno = EINVAL;
		return -1;
	}
	if (env_has_number("FAKEVM_BUSY_SHARED_ADVICE", advice) && shared_mapping(addr)) {
		errno = EBUSY;
		return -1;
	}
	if (env_has_number("FAKEVM_ENOSYS_ADVICE", advice)) {
		errno = ENOSYS;
		return -1;
	}
	if (env_has_number("FAKEVM_IGNORE_ADVICE", advice)) {
		if (advice_unaligned(addr)) { /* the arguments are still checked */
			errno = EINVAL;
			return -1;
		}
		return 0;
	}
	if (env_has_number("FAKEVM_NOOP_ADVICE", advice))
		return real_madvise(addr, len, MADV_NORMAL);
	if (env_on("FAKEVM_QEMU_MADVISE")) {
		if (advice_unaligned(addr)) {
			errno = EINVAL;
			return -1;
		}
		if (advice != MADV_DONTNEED)
			return 0;
	}
	if (env_on("FAKEVM_MADVISE_UNALIGNED_OK") && advice_unaligned(addr))
		return 0;
	if (real_madvise(addr, len, advice) == 0)
		return 0;
	e = mapped_errno("madvise", errno);
	if (e == 0)
		return 0;
	errno = e;
	return -1;
}

/* ---- mmap, munmap, mprotect, mremap ---- */

static void *do_mmap(void *(*real)(void *, size_t, int, int, int, off_t), void *addr, size_t len, int prot,
		     int flags, int fd, off_t off)
{
	int e = before("mmap");
	if (e) {
		errno = e;
		return MAP_FAILED;
	}
	static const struct { const char *name; int flag; } flags_known[] = {
		{"populate", MAP_POPULATE}, {"locked", MAP_LOCKED}, {"growsdown", MAP_GROWSDOWN},
		{"fixed_noreplace", MAP_FIXED_NOREPLACE},
	};
	for (size_t i = 0; i < sizeof(flags_known) / sizeof(flags_known[0]); i++) {
		if (!(flags & flags_known[i].flag))
			continue;
		if (env_has_word("FAKEVM_REFUSE_FLAG", flags_known[i].name)) {
			errno = EINVAL;
			return MAP_FAILED;
		}
		if (env_has_word("FAKEVM_IGNORE_FLAG", flags_known[i].name))
			flags &= ~flags_known[i].flag;
	}
	if ((flags & MAP_TYPE) == 0x08 /* MAP_DROPPABLE */ && env_has_word("FAKEVM_REFUSE_FLAG", "droppable")) {
		errno = EINVAL;
		return MAP_FAILED;
	}
	void *p = real(addr, len, prot, flags, fd, off);
	if (p != MAP_FAILED)
		return p;
	e = mapped_errno("mmap", errno);
	errno = e ? e : ENOMEM; /* no address to answer "success" with */
	return MAP_FAILED;
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	REAL(mmap, void *(*)(void *, size_t, int, int, int, off_t));
	return do_mmap(real_mmap, addr, len, prot, flags, fd, off);
}

void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	REAL(mmap64, void *(*)(void *, size_t, int, int, int, off_t));
	return do_mmap(real_mmap64, addr, len, prot, flags, fd, off);
}

/* A real call's answer passed through FAKEVM_ERRNO. */
static int answer(const char *call, int r)
{
	if (r == 0)
		return 0;
	int e = mapped_errno(call, errno);
	if (e == 0)
		return 0;
	errno = e;
	return -1;
}

int munmap(void *addr, size_t len)
{
	REAL(munmap, int (*)(void *, size_t));
	int e = before("munmap");
	if (e) {
		errno = e;
		return -1;
	}
	if (env_on("FAKEVM_MUNMAP_WRAP_EXITS") && in_probe() && (uintptr_t)addr + len < (uintptr_t)addr)
		_exit(127);
	return answer("munmap", real_munmap(addr, len));
}

int mprotect(void *addr, size_t len, int prot)
{
	REAL(mprotect, int (*)(void *, size_t, int));
	int e = before("mprotect");
	if (e) {
		errno = e;
		return -1;
	}
	if ((prot & PROT_EXEC) && env_on("FAKEVM_NO_ANON_EXEC") && anonymous_mapping(addr)) {
		errno = EACCES;
		return -1;
	}
	int r = real_mprotect(addr, len, prot);
	if (r != 0 && errno == ENOMEM && env_on("FAKEVM_MPROTECT_HOLE_PARTIAL")) {
		size_t ps = (size_t)sysconf(_SC_PAGESIZE);
		for (size_t off = 0; off < len; off += ps)
			(void)real_mprotect((char *)addr + off, ps, prot); /* a hole's page fails: skipped */
		errno = ENOMEM;
		return -1;
	}
	return answer("mprotect", r);
}

static bool inside_one_mapping(uintptr_t p, size_t len);

void *mremap(void *old, size_t old_len, size_t new_len, int flags, ...)
{
	REAL(mremap, void *(*)(void *, size_t, size_t, int, ...));
	va_list ap;
	va_start(ap, flags);
	void *target = (flags & MREMAP_FIXED) ? va_arg(ap, void *) : NULL;
	va_end(ap);
	int e = before("mremap");
	if (e) {
		errno = e;
		return MAP_FAILED;
	}
	if (((flags & MREMAP_FIXED) && env_has_word("FAKEVM_REFUSE_FLAG", "fixed")) ||
	    ((flags & MREMAP_DONTUNMAP) && env_has_word("FAKEVM_REFUSE_FLAG", "dontunmap"))) {
		errno = EINVAL;
		return MAP_FAILED;
	}
	if ((flags & MREMAP_DONTUNMAP) && env_has_word("FAKEVM_IGNORE_FLAG", "dontunmap"))
		flags &= ~MREMAP_DONTUNMAP;
	size_t ps = (size_t)sysconf(_SC_PAGESIZE);
	if (((uintptr_t)old & (ps - 1)) && env_on("FAKEVM_MREMAP_UNALIGNED_UNMAPS")) {
		REAL(munmap, int (*)(void *, size_t));
		void *page = (void *)((uintptr_t)old & ~(uintptr_t)(ps - 1));
		if (real_munmap(page, old_len) != 0)
			return MAP_FAILED;
		errno = EINVAL;
		return MAP_FAILED;
	}
	if (env_on("FAKEVM_MREMAP_ONE_MAPPING") && !inside_one_mapping((uintptr_t)old, old_len)) {
		e = mapped_errno("mremap", EFAULT);
		errno = e ? e : EFAULT;
		return MAP_FAILED;
	}
	bool drops = (flags & MREMAP_DONTUNMAP) && env_on("FAKEVM_DONTUNMAP_DROPS");
	void *p = real_mremap(old, old_len, new_len, flags, target);
	if (p == MAP_FAILED) {
		e = mapped_errno("mremap", errno);
		errno = e ? e : EINVAL;
		return MAP_FAILED;
	}
	if (drops) {
		REAL(munmap, int (*)(void *, size_t));
		if (real_munmap(old, old_len) != 0)
			return MAP_FAILED;
	}
	return p;
}

/* Does [p, p+len) lie inside one line of /proc/self/maps? True when it cannot be told. */
static bool inside_one_mapping(uintptr_t p, size_t len)
{
	char line[512];
	unsigned long long lo, hi;
	maps_line_of(p, line, sizeof(line));
	return sscanf(line, "%llx-%llx", &lo, &hi) != 2 || p + len <= hi;
}

/* ---- residency, locking ---- */

int mincore(void *addr, size_t len, unsigned char *vec)
{
	REAL(mincore, int (*)(void *, size_t, unsigned char *));
	int e = before("mincore");
	if (e) {
		errno = e;
		return -1;
	}
	int r = real_mincore(addr, len, vec);
	if (r == 0 && env_on("FAKEVM_MINCORE_LIES")) {
		size_t ps = (size_t)sysconf(_SC_PAGESIZE);
		memset(vec, 1, (len + ps - 1) / ps);
	}
	return answer("mincore", r);
}

int mlock(const void *addr, size_t len)
{
	REAL(mlock, int (*)(const void *, size_t));
	int e = before("mlock");
	if (e) {
		errno = e;
		return -1;
	}
	return answer("mlock", real_mlock(addr, len));
}

#ifndef MLOCK_ONFAULT
#define MLOCK_ONFAULT 1
#endif
#ifndef MCL_ONFAULT
#define MCL_ONFAULT 4
#endif

/* mlock2's flags as FAKEVM_IGNORE_FLAG / FAKEVM_REFUSE_FLAG say; -1 (errno set) when refused. */
static long mlock2_flags(long flags)
{
	if ((flags & MLOCK_ONFAULT) && env_has_word("FAKEVM_REFUSE_FLAG", "onfault")) {
		errno = EINVAL;
		return -1;
	}
	if ((flags & MLOCK_ONFAULT) && env_has_word("FAKEVM_IGNORE_FLAG", "onfault"))
		flags &= ~(long)MLOCK_ONFAULT;
	return flags;
}

int mlock2(const void *addr, size_t len, unsigned int flags)
{
	int e = before("mlock2");
	if (e) {
		errno = e;
		return -1;
	}
	long f = mlock2_flags(flags);
	if (f < 0)
		return -1;
	return answer("mlock2", (int)raw(SYS_mlock2, (long)addr, (long)len, f, 0, 0, 0));
}

int mlockall(int flags)
{
	REAL(mlockall, int (*)(int));
	int e = before("mlockall");
	if (e) {
		errno = e;
		return -1;
	}
	if ((flags & MCL_ONFAULT) && env_has_word("FAKEVM_REFUSE_FLAG", "onfault")) {
		errno = EINVAL;
		return -1;
	}
	if ((flags & MCL_ONFAULT) && env_has_word("FAKEVM_IGNORE_FLAG", "onfault"))
		flags &= ~MCL_ONFAULT;
	if ((flags & MCL_FUTURE) && env_has_word("FAKEVM_IGNORE_FLAG", "future")) {
		flags &= ~(MCL_FUTURE | MCL_ONFAULT); /* MCL_ONFAULT alone is refused */
		if (!(flags & MCL_CURRENT))
			return 0;
	}
	return answer("mlockall", real_mlockall(flags));
}

/* ---- processes, pipes, memfd, prctl ---- */

pid_t fork(void)
{
	REAL(fork, pid_t (*)(void));
	int e = before("fork");
	if (e) {
		errno = e;
		return -1;
	}
	return real_fork();
}

ssize_t vmsplice(int fd, const struct iovec *iov, size_t n, unsigned int flags)
{
	REAL(vmsplice, ssize_t (*)(int, const struct iovec *, size_t, unsigned int));
	int e = before("vmsplice");
	if (e) {
		errno = e;
		return -1;
	}
	return real_vmsplice(fd, iov, n, flags);
}

int memfd_create(const char *name, unsigned int flags)
{
	REAL(memfd_create, int (*)(const char *, unsigned int));
	int e = before("memfd_create");
	if (e) {
		errno = e;
		return -1;
	}
	return real_memfd_create(name, flags);
}

int prctl(int option, ...)
{
	REAL(prctl, int (*)(int, ...));
	va_list ap;
	va_start(ap, option);
	unsigned long a2 = va_arg(ap, unsigned long), a3 = va_arg(ap, unsigned long);
	unsigned long a4 = va_arg(ap, unsigned long), a5 = va_arg(ap, unsigned long);
	va_end(ap);
	int e = before("prctl");
	if (e) {
		errno = e;
		return -1;
	}
	return real_prctl(option, a2, a3, a4, a5);
}

int getrusage(int who, struct rusage *ru)
{
	REAL(getrusage, int (*)(int, struct rusage *));
	int r = real_getrusage(who, ru);
	if (r == 0 && env_on("FAKEVM_RUSAGE_FROZEN")) {
		ru->ru_minflt = 0;
		ru->ru_majflt = 0;
	}
	return r;
}

/* ---- the break ---- */

/* FAKEVM_BRK_KEEPS_PAGES: the break the program was told, below the kernel's real one. */
static uintptr_t told_break;

/* FAKEVM_BRK_ELSEWHERE: the emulated heap, grown by mappings of its own from a fixed low address
 * (below where the program and the kernel's heap are), given back by unmapping. */
#define FAKE_HEAP_BASE ((uintptr_t)0x10000000UL)
#define FAKE_HEAP_SIZE ((uintptr_t)64 << 20)
static uintptr_t fake_break = FAKE_HEAP_BASE;

static long fake_brk(uintptr_t want)
{
	size_t ps = (size_t)sysconf(_SC_PAGESIZE);
	if (want < FAKE_HEAP_BASE || want > FAKE_HEAP_BASE + FAKE_HEAP_SIZE)
		return (long)fake_break; /* refused: the break stays */
	uintptr_t old_top = (fake_break + ps - 1) & ~(uintptr_t)(ps - 1);
	uintptr_t new_top = (want + ps - 1) & ~(uintptr_t)(ps - 1);
	REAL(mmap, void *(*)(void *, size_t, int, int, int, off_t));
	REAL(munmap, int (*)(void *, size_t));
	if (new_top > old_top) {
		void *p = real_mmap((void *)old_top, new_top - old_top, PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		if (p == MAP_FAILED)
			return (long)fake_break;
		if (p != (void *)old_top) { /* taken as a hint: not ours to keep */
			if (real_munmap(p, new_top - old_top) != 0)
				abort();
			return (long)fake_break;
		}
	}
	if (new_top < old_top && real_munmap((void *)new_top, old_top - new_top) != 0)
		return (long)fake_break;
	fake_break = want;
	return (long)fake_break;
}

static long brk_call(long want)
{
	if (before("brk")) {
		errno = ENOSYS;
		return -1;
	}
	if (env_on("FAKEVM_BRK_ELSEWHERE"))
		return fake_brk((uintptr_t)want);
	if (env_on("FAKEVM_BRK_KEEPS_PAGES")) {
		uintptr_t real_now = (uintptr_t)raw(SYS_brk, 0, 0, 0, 0, 0, 0);
		if (!told_break)
			told_break = real_now;
		if (want == 0)
			return (long)told_break;
		if ((uintptr_t)want <= real_now) { /* lower, or back up into kept pages: the kernel is not asked */
			told_break = (uintptr_t)want;
			return (long)told_break;
		}
		long r = raw(SYS_brk, want, 0, 0, 0, 0, 0);
		if ((uintptr_t)r == (uintptr_t)want)
			told_break = (uintptr_t)r;
		return (long)told_break;
	}
	return raw(SYS_brk, want, 0, 0, 0, 0, 0);
}

/* ---- syscall(2): the raw calls the suite makes ---- */

#ifndef SYS_mseal
#define SYS_mseal 462
#endif

static const struct { long nr; const char *name; } raw_calls[] = {
	{SYS_mseal, "mseal"},           {SYS_mlock2, "mlock2"},
	{SYS_io_uring_setup, "io_uring_setup"}, {SYS_process_madvise, "process_madvise"},
	{SYS_userfaultfd, "userfaultfd"}, {SYS_memfd_create, "memfd_create"},
	{SYS_madvise, "madvise"},       {SYS_mremap, "mremap"},
	{SYS_mprotect, "mprotect"},     {SYS_munmap, "munmap"},
	{SYS_mincore, "mincore"},       {SYS_mlock, "mlock"},
	{SYS_mlockall, "mlockall"},
};

long syscall(long nr, ...)
{
	va_list ap;
	va_start(ap, nr);
	long a = va_arg(ap, long), b = va_arg(ap, long), c = va_arg(ap, long);
	long d = va_arg(ap, long), e = va_arg(ap, long), f = va_arg(ap, long);
	va_end(ap);
	if (nr == SYS_brk)
		return brk_call(a);
	const char *name = NULL;
	for (size_t i = 0; i < sizeof(raw_calls) / sizeof(raw_calls[0]); i++)
		if (raw_calls[i].nr == nr)
			name = raw_calls[i].name;
	if (!name)
		return raw(nr, a, b, c, d, e, f);
	int err = before(name);
	if (err) {
		errno = err;
		return -1;
	}
	if (nr == SYS_mlock2 && (c = mlock2_flags(c)) < 0)
		return -1;
	if (nr == SYS_madvise)
		return madvise((void *)a, (size_t)b, (int)c);
	if (nr == SYS_mlockall)
		return mlockall((int)a);
	long r = raw(nr, a, b, c, d, e, f);
	if (r >= 0 || nr == SYS_mremap)
		return r;
	err = mapped_errno(name, errno);
	if (err == 0)
		return 0;
	errno = err;
	return -1;
}

/* ---- files: hidden ones, and ones that lie ---- */

static const struct { const char *word; const char *path; } hideable[] = {
	{"statm", "/proc/self/statm"}, {"stat", "/proc/self/stat"},     {"maps", "/proc/self/maps"},
	{"smaps", "/proc/self/smaps"}, {"pagemap", "/proc/self/pagemap"}, {"mem", "/proc/self/mem"},
	{"thp", "/sys/kernel/mm/transparent_hugepage/"}, {"userfaultfd", "/dev/userfaultfd"},
};

static bool hidden(const char *path)
{
	if (!path)
		return false;
	if (env_on("FAKEVM_NO_THP") && strncmp(path, "/sys/kernel/mm/transparent_hugepage", 35) == 0)
		return true;
	for (size_t i = 0; i < sizeof(hideable) / sizeof(hideable[0]); i++) {
		const char *p = hideable[i].path;
		size_t n = strlen(p);
		bool prefix = p[n - 1] == '/';
		if ((prefix ? strncmp(path, p, n) == 0 : strcmp(path, p) == 0) && env_has_word("FAKEVM_HIDE", hideable[i].word))
			return true;
	}
	return false;
}

/* A memfd holding fixed text, standing in for a file that lies; -1 with errno on failure. */
static int fixed_file(const char *text)
{
	int fd = (int)raw(SYS_memfd_create, (long)"fakevm", MFD_CLOEXEC, 0, 0, 0, 0);
	if (fd < 0)
		return -1;
	size_t n = strlen(text);
	if (write(fd, text, n) != (ssize_t)n || lseek(fd, 0, SEEK_SET) != 0) {
		int e = errno;
		(void)close(fd);
		errno = e ? e : EIO;
		return -1;
	}
	return fd;
}

#define FROZEN_STATM "25000 5000 1000 100 0 2000 0\n"

/* /proc/self/maps without its PROT_NONE mappings, as a file of its own; -1 with errno on failure. */
static int maps_without_prot_none(void)
{
	char *buf = read_maps();
	if (!buf)
		return -1;
	size_t k = 0;
	for (char *l = buf; *l;) { /* filtered in place: what is kept never overtakes what is read */
		char *end = strchr(l, '\n');
		size_t n = end ? (size_t)(end - l) + 1 : strlen(l);
		const char *perm = strchr(l, ' ');
		bool none = perm && (size_t)(perm - l) < n && strncmp(perm + 1, "---", 3) == 0;
		if (!none) {
			memmove(buf + k, l, n);
			k += n;
		}
		l += n;
	}
	buf[k] = 0;
	int fd = fixed_file(buf), e = errno;
	free_maps(buf);
	errno = e;
	return fd;
}

static bool filtered_maps(const char *path)
{
	return path && env_on("FAKEVM_MAPS_HIDE_PROT_NONE") && strcmp(path, "/proc/self/maps") == 0;
}

/* FAKEVM_FORCED_WRITE_LOST: the descriptor of /proc/self/mem last opened, whose writes are dropped. */
static int lost_mem_fd = -1;

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	REAL(pwrite, ssize_t (*)(int, const void *, size_t, off_t));
	if (fd >= 0 && fd == lost_mem_fd && env_on("FAKEVM_FORCED_WRITE_LOST"))
		return (ssize_t)n;
	if (fd >= 0 && fd == lost_mem_fd && env_on("FAKEVM_FORCED_WRITE_EINVAL")) {
		errno = EINVAL;
		return -1;
	}
	return real_pwrite(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
	REAL(pwrite64, ssize_t (*)(int, const void *, size_t, off_t));
	if (fd >= 0 && fd == lost_mem_fd && env_on("FAKEVM_FORCED_WRITE_LOST"))
		return (ssize_t)n;
	if (fd >= 0 && fd == lost_mem_fd && env_on("FAKEVM_FORCED_WRITE_EINVAL")) {
		errno = EINVAL;
		return -1;
	}
	return real_pwrite64(fd, buf, n, off);
}

static bool frozen_statm(const char *path)
{
	return path && env_on("FAKEVM_STATM_FROZEN") && strcmp(path, "/proc/self/statm") == 0;
}

static int do_open(int dirfd, const char *path, int flags, mode_t mode)
{
	if (((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) && env_on("FAKEVM_NO_TMPFILES") && in_probe()) {
		errno = EACCES;
		return -1;
	}
	if (hidden(path)) {
		errno = ENOENT;
		return -1;
	}
	if (frozen_statm(path))
		return fixed_file(FROZEN_STATM);
	if (filtered_maps(path))
		return maps_without_prot_none();
	int fd = (int)raw(SYS_openat, dirfd, (long)path, flags, mode, 0, 0);
	if (fd >= 0 && strcmp(path, "/proc/self/mem") == 0)
		lost_mem_fd = fd;
	return fd;
}

static mode_t open_mode(int flags, va_list ap)
{
	return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? (mode_t)va_arg(ap, int) : 0;
}

int open(const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t mode = open_mode(flags, ap);
	va_end(ap);
	return do_open(AT_FDCWD, path, flags, mode);
}

int open64(const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t mode = open_mode(flags, ap);
	va_end(ap);
	return do_open(AT_FDCWD, path, flags, mode);
}

int openat(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t mode = open_mode(flags, ap);
	va_end(ap);
	return do_open(dirfd, path, flags, mode);
}

int openat64(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t mode = open_mode(flags, ap);
	va_end(ap);
	return do_open(dirfd, path, flags, mode);
}

static int refuse_tmpfile(void)
{
	errno = EACCES;
	return -1;
}

int mkstemp(char *templ)
{
	REAL(mkstemp, int (*)(char *));
	return env_on("FAKEVM_NO_TMPFILES") && in_probe() ? refuse_tmpfile() : real_mkstemp(templ);
}

int mkostemp(char *templ, int flags)
{
	REAL(mkostemp, int (*)(char *, int));
	return env_on("FAKEVM_NO_TMPFILES") && in_probe() ? refuse_tmpfile() : real_mkostemp(templ, flags);
}

static FILE *do_fopen(FILE *(*real)(const char *, const char *), const char *path, const char *how)
{
	if (hidden(path)) {
		errno = ENOENT;
		return NULL;
	}
	if (frozen_statm(path) || filtered_maps(path)) {
		int fd = frozen_statm(path) ? fixed_file(FROZEN_STATM) : maps_without_prot_none();
		FILE *f = fd < 0 ? NULL : fdopen(fd, "r");
		if (fd >= 0 && !f) {
			int e = errno;
			(void)close(fd);
			errno = e;
		}
		return f;
	}
	return real(path, how);
}

FILE *fopen(const char *path, const char *how)
{
	REAL(fopen, FILE *(*)(const char *, const char *));
	return do_fopen(real_fopen, path, how);
}

FILE *fopen64(const char *path, const char *how)
{
	REAL(fopen64, FILE *(*)(const char *, const char *));
	return do_fopen(real_fopen64, path, how);
}

/* ---- ioctl: PAGEMAP_SCAN ---- */

/* PAGEMAP_SCAN is _IOWR('f', 16, struct pm_scan_arg): type 'f', number 16. */
#define IOC_TYPE_NR(req) ((unsigned long)(req) & 0xffffUL)
#define PAGE_IS_PFNZERO_BIT (1ULL << 5)

struct fake_page_region {
	uint64_t start, end, categories;
};
struct fake_pm_scan_arg {
	uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
	uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};

int ioctl(int fd, unsigned long request, ...)
{
	REAL(ioctl, int (*)(int, unsigned long, ...));
	va_list ap;
	va_start(ap, request);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	bool scan = IOC_TYPE_NR(request) == (('f' << 8) | 16);
	if (scan && env_on("FAKEVM_NO_PAGEMAP_SCAN")) {
		errno = ENOTTY;
		return -1;
	}
	int n = real_ioctl(fd, request, arg);
	if (scan && n > 0 && env_on("FAKEVM_NO_ZERO_PAGE")) {
		struct fake_pm_scan_arg *a = arg;
		struct fake_page_region *v = (struct fake_page_region *)(uintptr_t)a->vec;
		uint64_t wanted = a->category_anyof_mask | a->category_mask;
		int k = 0;
		for (int i = 0; i < n; i++) {
			v[i].categories &= ~PAGE_IS_PFNZERO_BIT;
			/* A region asked for because it is the zero page is no longer one. */
			if (wanted && !(v[i].categories & wanted))
				continue;
			v[k++] = v[i];
		}
		n = k;
	}
	return n;
}

/* ---- fault codes ---- */

static void (*user_handler[NSIG])(int, siginfo_t *, void *);

static void code_rewriter(int sig, siginfo_t *info, void *uc)
{
	const char *how = getenv("FAKEVM_SI_CODE");
	if (info && how && strcmp(how, "lies") == 0)
		info->si_code = SEGV_MAPERR; /* also BUS_ADRALN's value: any fault reads as one kind */
	else if (info && how && strcmp(how, "none") == 0)
		info->si_code = SI_USER;
	user_handler[sig](sig, info, uc);
}

int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	REAL(sigaction, int (*)(int, const struct sigaction *, struct sigaction *));
	const char *how = getenv("FAKEVM_SI_CODE");
	if (!how || !*how || !act || (sig != SIGSEGV && sig != SIGBUS) || !(act->sa_flags & SA_SIGINFO))
		return real_sigaction(sig, act, old);
	struct sigaction mine = *act;
	void (*prev)(int, siginfo_t *, void *) = user_handler[sig];
	user_handler[sig] = act->sa_sigaction;
	mine.sa_sigaction = code_rewriter;
	int r = real_sigaction(sig, &mine, old);
	if (r != 0)
		user_handler[sig] = prev;
	else if (old && (old->sa_flags & SA_SIGINFO) && old->sa_sigaction == code_rewriter)
		old->sa_sigaction = prev;
	return r;
}
