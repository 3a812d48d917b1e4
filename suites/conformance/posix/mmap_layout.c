/* mmap beyond the basics: MAP_FIXED_NOREPLACE against every overlap of an
 * existing mapping, file mappings past the end of the file (the rest of the
 * last page reads zero and never reaches the file; whole pages past it raise
 * SIGBUS; truncation moves that line), descriptors opened read-only or
 * write-only, bad descriptors, PROT_NONE and PROT_EXEC file mappings,
 * MAP_LOCKED, addresses past the end of the address space, MAP_SHARED_VALIDATE
 * with an unknown flag, /dev/zero, remapping two files at each other's
 * addresses, MAP_32BIT, MAP_GROWSDOWN growth and its gap, and the arguments
 * systems answer differently (observed). */
#include "config.h"
#include "pagelab/check.h"
#include "pagelab/env.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pl_abi.h"

#define RW (PROT_READ | PROT_WRITE)
#define ANON (MAP_PRIVATE | MAP_ANONYMOUS)
#define SEED 37

static int try_mmap(void *hint, size_t len, int prot, int flags, int fd, off_t off, void **out)
{
	void *p = mmap(hint, len, prot, flags, fd, off);
	if (p == MAP_FAILED)
		return errno;
	*out = p;
	return 0;
}

struct overlap {
	const char *name;
	size_t first, pages; /* the request, in pages of a 5-page window whose pages 1-3 are mapped */
	int want;            /* EEXIST, or 0 for a range next to the mapping */
};

static const struct overlap overlaps[] = {
	{"covers_mapping", 0, 5, EEXIST}, {"inside_mapping", 2, 1, EEXIST}, {"overlaps_end", 3, 2, EEXIST},
	{"overlaps_start", 0, 2, EEXIST}, {"adjacent_before", 0, 1, 0},     {"adjacent_after", 4, 1, 0},
};

PC_PROBE_NEEDS(noreplace_layouts, "mmap.fixed_noreplace.every_overlap", PC_FB(PC_F_MAP_FIXED_NOREPLACE),
	       "MAP_FIXED_NOREPLACE fails with EEXIST over, inside and across either end of a mapping, and maps right next to it")
{
	size_t ps = pl_page_size();
	char *b, results[256] = "";
	void *p;
	PC_SETUP(ctx, pl_reserve(5 * ps, 0, (void **)&b));
	PC_SETUP(ctx, pl_unmap(b, 5 * ps));
	int first = try_mmap(b + ps, 3 * ps, PROT_NONE, ANON | MAP_FIXED_NOREPLACE, -1, 0, &p);
	if (first)
		pc_fail_refused(ctx, "MAP_FIXED_NOREPLACE at a free address refused: %s", pc_strerror(first));
	PC_CHECK(ctx, p == b + ps, "MAP_FIXED_NOREPLACE at a free address mapped at %p, asked for %p", p, (void *)(b + ps));
	for (size_t i = 0; i < sizeof(overlaps) / sizeof(overlaps[0]); i++) {
		const struct overlap *o = &overlaps[i];
		char *want = b + o->first * ps;
		int e = try_mmap(want, o->pages * ps, PROT_NONE, ANON | MAP_FIXED_NOREPLACE, -1, 0, &p);
		snprintf(results + strlen(results), sizeof(results) - strlen(results), "%s%s=%s", i ? " " : "", o->name,
			 e ? pl_errno_name(e) : p == want ? "mapped" : "elsewhere");
		PC_CHECK(ctx, e == o->want && (e || p == want), "%s: expected %s, got %s", o->name,
			 o->want ? "EEXIST" : "a mapping there", e ? pl_errno_name(e) : "a mapping");
	}
	pc_observe(ctx, "results", "%s", results);
	pc_pass(ctx);
}

/* A shared file mapping of one page over a file of `size` bytes (less than a page). */
static char *map_short_file(struct pc_ctx *ctx, size_t size, struct pc_map *m)
{
	pc_map_or_skip(ctx, pl_page_size(), m);
	memset(m->addr, 'a', size);
	PC_SETUP(ctx, ftruncate(m->fd, (off_t)size) == 0 ? 0 : errno);
	return m->addr;
}

static off_t file_size(struct pc_ctx *ctx, int fd)
{
	off_t end = lseek(fd, 0, SEEK_END);
	if (end < 0)
		pc_error(ctx, "lseek: %s", pc_strerror(errno));
	return end;
}

PC_PROBE_KINDS(eof_tail, "mmap.file.tail_past_eof", PC_SHARED_FILE | PC_SHARED_DISK | PC_PRIVATE_FILE,
	       "the rest of the page after the end of a file reads zero, takes writes, and the writes never grow the file")
{
	struct pc_map m;
	size_t size = pl_page_size() / 2 + 100;
	char *p = map_short_file(ctx, size, &m);
	bool zero = pc_all_bytes(p + size, pl_page_size() - size, 0);
	pc_observe(ctx, "tail_reads", "%s", zero ? "zero" : "data");
	PC_CHECK(ctx, zero, "the part of the last page past the end of the file does not read zero");
	memcpy(p + size, "XYZ", 3);
	PC_SETUP(ctx, msync(p, pl_page_size(), MS_SYNC) == 0 ? 0 : errno);
	off_t end = file_size(ctx, m.fd);
	pc_observe(ctx, "file_grew", "%s", end != (off_t)size ? "yes" : "no");
	PC_CHECK(ctx, end == (off_t)size, "a write past the end of the file changed its size to %lld", (long long)end);
	pc_pass(ctx);
}

PC_PROBE_KINDS(eof_sigbus, "mmap.file.sigbus_past_last_page", PC_SHARED_FILE | PC_SHARED_DISK | PC_PRIVATE_FILE,
	       "a whole page past the end of the file raises SIGBUS (POSIX); the code is observed")
{
	struct pc_map m;
	size_t ps = pl_page_size();
	pc_map_or_skip(ctx, 2 * ps, &m);
	PC_SETUP(ctx, ftruncate(m.fd, (off_t)(ps / 2)) == 0 ? 0 : errno);
	pc_expect_access(ctx, "last_page", m.addr, false, 0);
	pc_expect_fault(ctx, "page_past_end", (char *)m.addr + ps + 1, true, PL_FAULT_BUS);
	pc_pass(ctx);
}

PC_PROBE_KINDS(truncate_moves, "mmap.file.truncate_moves_sigbus_line", PC_SHARED_FILE | PC_SHARED_DISK,
	       "shrinking a mapped file makes the cut pages raise SIGBUS; growing it back makes them read zero")
{
	struct pc_map m;
	size_t ps = pl_page_size();
	pc_map_or_skip(ctx, 4 * ps, &m);
	pc_fill(m.addr, m.len, SEED);
	PC_SETUP(ctx, ftruncate(m.fd, (off_t)(2 * ps)) == 0 ? 0 : errno);
	pc_expect_fault(ctx, "cut_page", (char *)m.addr + 3 * ps, false, PL_FAULT_BUS);
	PC_SETUP(ctx, ftruncate(m.fd, (off_t)(4 * ps)) == 0 ? 0 : errno);
	pc_expect_access(ctx, "regrown_page", (char *)m.addr + 3 * ps, false, 0);
	PC_CHECK(ctx, pc_all_bytes((char *)m.addr + 2 * ps, 2 * ps, 0), "pages cut and grown back do not read zero");
	PC_SETUP(ctx, ftruncate(m.fd, 0) == 0 ? 0 : errno);
	pc_expect_fault(ctx, "first_page_of_empty_file", m.addr, false, PL_FAULT_BUS);
	pc_observe(ctx, "regrown_reads", "zero");
	pc_pass(ctx);
}

/* A file in the probe's directory holding one page of SEED, opened with `flags`. */
static int open_seeded(struct pc_ctx *ctx, int flags)
{
	struct pc_map m;
	char path[4200];
	snprintf(path, sizeof(path), "%s/seeded", pc_tmpdir(ctx));
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)pl_page_size()) != 0)
		pc_error(ctx, "creating %s: %s", path, pc_strerror(errno));
	m.addr = mmap(NULL, pl_page_size(), RW, MAP_SHARED, fd, 0);
	if (m.addr == MAP_FAILED)
		pc_error(ctx, "mapping %s: %s", path, pc_strerror(errno));
	pc_fill(m.addr, pl_page_size(), SEED);
	PC_SETUP(ctx, pl_unmap(m.addr, pl_page_size()));
	close(fd);
	fd = open(path, flags | O_CLOEXEC);
	if (fd < 0)
		pc_error(ctx, "reopening %s: %s", path, pc_strerror(errno));
	return fd;
}

PC_PROBE(readonly_fd, "mmap.file.readonly_fd_prot_read",
	 "a descriptor opened read-only maps with PROT_READ (private or shared) and shows the file; "
	 "writable shared is EACCES, writable private allowed")
{
	int fd = open_seeded(ctx, O_RDONLY);
	void *s, *p;
	PC_SETUP(ctx, try_mmap(NULL, pl_page_size(), PROT_READ, MAP_SHARED, fd, 0, &s));
	PC_SETUP(ctx, try_mmap(NULL, pl_page_size(), PROT_READ, MAP_PRIVATE, fd, 0, &p));
	PC_CHECK(ctx, pc_check_fill(s, pl_page_size(), SEED) && pc_check_fill(p, pl_page_size(), SEED),
		 "a read-only mapping does not show the file");
	pc_expect_fault(ctx, "write_fault", s, true, PL_FAULT_ACCESS);
	void *w;
	int e = try_mmap(NULL, pl_page_size(), RW, MAP_SHARED, fd, 0, &w);
	pc_observe(ctx, "shared_writable_errno", "%s", e ? pl_errno_name(e) : "none");
	PC_CHECK(ctx, e == EACCES, "a writable shared mapping of a read-only descriptor: expected EACCES, got %s",
		 e ? pc_strerror(e) : "success");
	PC_SETUP(ctx, try_mmap(NULL, pl_page_size(), RW, MAP_PRIVATE, fd, 0, &w));
	pc_pass(ctx);
}

PC_PROBE(writeonly_fd, "mmap.file.eacces_write_only_fd",
	 "mapping a descriptor opened write-only fails with EACCES")
{
	int fd = open_seeded(ctx, O_WRONLY);
	void *p;
	int e = try_mmap(NULL, pl_page_size(), PROT_READ, MAP_SHARED, fd, 0, &p);
	pc_observe(ctx, "errno", "%s", e ? pl_errno_name(e) : "none");
	PC_CHECK(ctx, e == EACCES, "expected EACCES, got %s", e ? pc_strerror(e) : "success");
	pc_pass(ctx);
}

PC_PROBE(bad_fd, "mmap.file.ebadf_bad_descriptor",
	 "a file mapping with a descriptor that is not open fails with EBADF")
{
	int fd = open_seeded(ctx, O_RDONLY);
	void *p;
	close(fd);
	int e = try_mmap(NULL, pl_page_size(), PROT_READ, MAP_SHARED, fd, 0, &p);
	pc_observe(ctx, "errno", "%s", e ? pl_errno_name(e) : "none");
	PC_CHECK(ctx, e == EBADF, "expected EBADF, got %s", e ? pc_strerror(e) : "success");
	pc_pass(ctx);
}

PC_PROBE(exec_file, "mmap.file.prot_exec_readable",
	 "a file mapped with PROT_READ|PROT_EXEC from a read-only descriptor shows the file")
{
	int fd = open_seeded(ctx, O_RDONLY);
	void *p;
	int e = try_mmap(NULL, pl_page_size(), PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0, &p);
	if (e == EPERM || e == EACCES)
		pc_skip_prerequisite(ctx, "executable mappings of the probe directory refused (%s): a noexec file system?",
				     pl_errno_name(e));
	PC_CHECK(ctx, e == 0, "mmap(PROT_EXEC) of a file: %s", pc_strerror(e));
	PC_CHECK(ctx, pc_check_fill(p, pl_page_size(), SEED), "the executable mapping does not show the file");
	pc_pass(ctx);
}

PC_PROBE(prot_none_file, "mmap.file.prot_none_faults",
	 "a file mapped PROT_NONE from a read-write descriptor faults on access with SEGV_ACCERR")
{
	int fd = open_seeded(ctx, O_RDWR);
	void *p;
	PC_SETUP(ctx, try_mmap(NULL, pl_page_size(), PROT_NONE, MAP_SHARED, fd, 0, &p));
	pc_expect_fault(ctx, "read_fault", p, false, PL_FAULT_ACCESS);
	pc_pass(ctx);
}

PC_PROBE_NEEDS(map_locked, "mmap.locked.resident_and_counted", PC_FB(PC_F_MAP_LOCKED),
	       "MAP_LOCKED memory is resident at once and counted as locked")
{
	size_t len = 16 * pl_page_size(), before = 0, after = 0;
	void *p;
	bool counted = pl_locked_bytes(&before) == 0;
	int e = try_mmap(NULL, len, RW, ANON | MAP_LOCKED, -1, 0, &p);
	if (e == EAGAIN || e == EPERM || e == ENOMEM)
		pc_skip_prerequisite(ctx, "MAP_LOCKED refused (%s): RLIMIT_MEMLOCK too small?", pl_errno_name(e));
	if (e)
		pc_fail_refused(ctx, "mmap(MAP_LOCKED) refused: %s", pc_strerror(e));
	size_t resident = pc_obs_resident_pages(ctx, p, len);
	counted = counted && pl_locked_bytes(&after) == 0;
	pc_measure(ctx, "resident_pages", "%zu of %zu", resident, len / pl_page_size());
	pc_observe(ctx, "locked_counted", "%s", !counted ? "unobservable" : after >= before + len ? "yes" : "no");
	/* mmap(2): MAP_LOCKED "will try to populate" the range and does not fail when it cannot. */
	PC_BEHAVIOUR(ctx, resident == len / pl_page_size(), "expected MAP_LOCKED to populate every page at once "
		     "(Linux's usual behaviour; mmap(2) only promises to try), saw %zu of %zu resident", resident,
		     len / pl_page_size());
	PC_CHECK(ctx, !counted || after >= before + len, "the locked-memory count did not grow by the mapping");
	pc_pass(ctx);
}

PC_PROBE(past_address_space, "mmap.fixed.past_address_space",
	 "MAP_FIXED at the top of the address space fails with ENOMEM or EINVAL (observed)")
{
	void *p;
	uintptr_t top = (UINTPTR_MAX / pl_page_size()) * pl_page_size();
	int e = try_mmap((void *)(top - pl_page_size()), 2 * pl_page_size(), RW, ANON | MAP_FIXED, -1, 0, &p);
	pc_observe(ctx, "errno", "%s", e ? pl_errno_name(e) : "none");
	PC_CHECK(ctx, e == ENOMEM || e == EINVAL, "expected ENOMEM or EINVAL, got %s", e ? pc_strerror(e) : "success");
	pc_pass(ctx);
}

PC_PROBE_NEEDS(shared_validate, "mmap.shared_validate.unknown_flag_eopnotsupp", PC_FB(PC_F_MAP_SHARED_VALIDATE),
	       "MAP_SHARED_VALIDATE with a flag the system does not know fails with EOPNOTSUPP; plain MAP_SHARED ignores it")
{
	struct pc_map m;
	void *p;
	pc_map_kind_or_skip(ctx, PC_SHARED_FILE, pl_page_size(), &m);
	int unknown = 0x200000; /* no mmap flag on Linux or the BSDs */
	int e = try_mmap(NULL, pl_page_size(), RW, MAP_SHARED_VALIDATE | unknown, m.fd, 0, &p);
	int plain = try_mmap(NULL, pl_page_size(), RW, MAP_SHARED | unknown, m.fd, 0, &p);
	pc_observe(ctx, "validate_errno", "%s", e ? pl_errno_name(e) : "none");
	pc_observe(ctx, "plain_shared", "%s", plain ? pl_errno_name(plain) : "mapped");
	PC_CHECK(ctx, e == EOPNOTSUPP, "expected EOPNOTSUPP, got %s", e ? pc_strerror(e) : "success");
	pc_pass(ctx);
}

PC_PROBE(dev_zero, "mmap.dev_zero.private_and_shared",
	 "mappings of /dev/zero read zero and keep writes, private and shared alike; each mapping is memory of its own")
{
	int fd = open("/dev/zero", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		pc_skip_unsupported(ctx, "no /dev/zero here (%s)", pl_errno_name(errno));
	size_t len = 8 * pl_page_size();
	static const int types[] = {MAP_PRIVATE, MAP_SHARED};
	for (size_t t = 0; t < 2; t++) {
		const char *name = types[t] == MAP_PRIVATE ? "private" : "shared";
		char *a, *b, *c;
		PC_SETUP(ctx, try_mmap(NULL, len, RW, types[t], fd, 0, (void **)&a));
		PC_SETUP(ctx, try_mmap(NULL, len, RW, types[t], fd, 0, (void **)&b));
		PC_CHECK(ctx, pc_all_bytes(a, len, 0) && pc_all_bytes(b, len, 0), "a %s /dev/zero mapping does not read zero",
			 name);
		pc_fill(a, len, SEED);
		PC_CHECK(ctx, pc_all_bytes(b, len, 0), "a write to one %s /dev/zero mapping shows in another", name);
		pc_fill(b, len, SEED + 1);
		PC_CHECK(ctx, pc_check_fill(a, len, SEED) && pc_check_fill(b, len, SEED + 1),
			 "writes to %s /dev/zero mappings did not stick", name);
		PC_SETUP(ctx, try_mmap(NULL, len, RW, types[t], fd, 0, (void **)&c));
		PC_CHECK(ctx, pc_all_bytes(c, len, 0), "a new %s /dev/zero mapping shows earlier writes", name);
		PC_SETUP(ctx, pl_unmap(a, len));
		PC_SETUP(ctx, pl_unmap(b, len));
		PC_SETUP(ctx, pl_unmap(c, len));
	}
	pc_pass(ctx);
}

PC_PROBE(swap_files, "mmap.file.remap_at_swapped_addresses",
	 "two files unmapped and mapped again at each other's addresses each show their own data")
{
	struct pc_map a, b;
	size_t len = 4 * pl_page_size();
	pc_map_kind_or_skip(ctx, PC_SHARED_FILE, len, &a);
	pc_map_kind_or_skip(ctx, PC_SHARED_FILE, len, &b);
	pc_fill(a.addr, len, SEED);
	pc_fill(b.addr, len, SEED + 1);
	void *pa = a.addr, *pb = b.addr, *p = NULL;
	PC_SETUP(ctx, pl_unmap(pa, len));
	PC_SETUP(ctx, pl_unmap(pb, len));
	PC_SETUP(ctx, try_mmap(pb, len, RW, MAP_SHARED | MAP_FIXED, a.fd, 0, &p));
	PC_SETUP(ctx, try_mmap(pa, len, RW, MAP_SHARED | MAP_FIXED, b.fd, 0, &p));
	bool ok = pc_check_fill(pb, len, SEED) && pc_check_fill(pa, len, SEED + 1);
	pc_observe(ctx, "contents_after", "%s", ok ? "each file's own" : "stale");
	PC_CHECK(ctx, ok, "an address shows the file mapped there before (a stale translation)");
	pc_pass(ctx);
}

PC_PROBE(large_file, "mmap.file.large_write_readback",
	 "64 MiB written through a shared mapping of a disk file read back through read() after msync")
{
	struct pc_map m;
	size_t len = 64 << 20, chunk = 1 << 20;
	pc_map_kind_or_skip(ctx, PC_SHARED_DISK, len, &m);
	pc_fill(m.addr, len, SEED);
	PC_SETUP(ctx, msync(m.addr, len, MS_SYNC) == 0 ? 0 : errno);
	char *buf = malloc(chunk), *want = malloc(chunk);
	if (!buf || !want)
		pc_error(ctx, "malloc failed");
	for (size_t off = 0; off < len; off += chunk) {
		PC_CHECK(ctx, pread(m.fd, buf, chunk, (off_t)off) == (ssize_t)chunk, "short read at %zu", off);
		memcpy(want, (char *)m.addr + off, chunk);
		PC_CHECK(ctx, memcmp(buf, want, chunk) == 0, "the file differs from the mapping at %zu", off);
	}
	pc_observe(ctx, "file_after_msync", "matches");
	pc_pass(ctx);
}

/* Arguments POSIX leaves to the system: each answer observed, nothing required. */
PC_PROBE(system_choices, "mmap.arguments.system_choices",
	 "answers to arguments systems treat differently: extra PROT bits, an undefined flag, SHARED|PRIVATE, an fd with MAP_ANON, address 0")
{
	size_t ps = pl_page_size();
	struct {
		const char *key;
		void *hint;
		int prot, flags, fd;
	} tries[] = {
		{"extra_prot_bits", NULL, RW | 0x100000, ANON, -1},
		{"garbage_prot", NULL, 0xffff, ANON, -1},
		{"undefined_flag", NULL, RW, ANON | 0x200000, -1},
		{"shared_and_private", NULL, RW, MAP_SHARED | MAP_PRIVATE | MAP_ANONYMOUS, -1},
		{"anon_with_fd", NULL, RW, ANON, 0},
		{"fixed_at_zero", NULL, RW, ANON | MAP_FIXED, -1},
	};
	for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
		void *p = NULL;
		int e = try_mmap(tries[i].hint, ps, tries[i].prot, tries[i].flags, tries[i].fd, 0, &p);
		pc_observe(ctx, tries[i].key, "%s", e ? pl_errno_name(e) : "mapped");
		if (e == 0)
			PC_SETUP(ctx, pl_unmap(p, ps));
	}
	pc_observed(ctx, "each answer recorded; POSIX leaves these to the system");
}

PC_PROBE(map_32bit, "mmap.map_32bit.low_address",
	 "MAP_32BIT places anonymous and /dev/zero mappings wholly in the first 2 GiB")
{
	if (MAP_32BIT & PL_ABSENT_FLAG) /* Linux ignores a flag it does not know: nothing to ask the system */
		pc_skip_unsupported(ctx, "this system's headers do not define MAP_32BIT (an x86-64 flag)");
	size_t ps = pl_page_size();
	uintptr_t limit = (uintptr_t)1 << 30 << 1;
	void *a, *z;
	int fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
	int e = try_mmap(NULL, ps, RW, ANON | MAP_32BIT, -1, 0, &a);
	if (e)
		pc_refusal(ctx, "mmap(MAP_32BIT)", e, pc_unknown_map_type_errno());
	pc_measure(ctx, "address", "%p", a);
	PC_CHECK(ctx, (uintptr_t)a + ps <= limit, "MAP_32BIT gave %p, past 2 GiB", a);
	PC_CHECK(ctx, pc_access_faults(a, true, 1) == 0, "the MAP_32BIT page does not take writes");
	if (fd >= 0) {
		PC_SETUP(ctx, try_mmap(NULL, ps, PROT_READ, MAP_PRIVATE | MAP_32BIT, fd, 0, &z));
		PC_CHECK(ctx, (uintptr_t)z + ps <= limit, "MAP_32BIT of /dev/zero gave %p, past 2 GiB", z);
		PC_CHECK(ctx, pc_all_bytes(z, ps, 0), "the MAP_32BIT /dev/zero page does not read zero");
	}
	pc_pass(ctx);
}

/* Whether this machine's stacks grow towards lower addresses (all but a few). */
static bool stack_grows_down_below(const char *outer)
{
	volatile char inner = 0;
	return (uintptr_t)&inner < (uintptr_t)outer;
}
static bool (*volatile grows_down_check)(const char *) = stack_grows_down_below;

/* A MAP_GROWSDOWN mapping of two pages with `free_below` free pages under it; returns its start. */
static char *grows_down_mapping(struct pc_ctx *ctx, size_t free_below)
{
	volatile char outer = 0;
	if (!grows_down_check((const char *)&outer))
		pc_skip_unsupported(ctx, "stacks grow upwards on this machine");
	size_t ps = pl_page_size(), total = free_below + 2;
	char *b, *p;
	PC_SETUP(ctx, pl_reserve(total * ps, 0, (void **)&b));
	PC_SETUP(ctx, pl_unmap(b, total * ps));
	int e = try_mmap(b + free_below * ps, 2 * ps, RW, ANON | MAP_FIXED | MAP_GROWSDOWN, -1, 0, (void **)&p);
	if (e)
		pc_refusal(ctx, "mmap(MAP_GROWSDOWN)", e, pc_unknown_map_type_errno());
	return p;
}

/* Free pages left under the growing mapping: well past the kernel's gap kept below stacks (256 pages by default). */
#define GROW_ROOM 4096

PC_PROBE_NEEDS(growsdown_grows, "mmap.growsdown.grows_on_touch", PC_FB(PC_F_MAP_GROWSDOWN),
	       "touching the page under a MAP_GROWSDOWN mapping with free space below extends it: the page reads zero and takes writes")
{
	size_t ps = pl_page_size();
	char *p = grows_down_mapping(ctx, GROW_ROOM);
	struct pl_fault f = pc_access(p - ps, true, 0x5a);
	pc_observe(ctx, "touch_below", "%s", f.kind == PL_FAULT_NONE ? "grows" : f.name);
	PC_CHECK(ctx, f.kind == PL_FAULT_NONE, "the page under a MAP_GROWSDOWN mapping faulted (%s)", f.name);
	PC_CHECK(ctx, pc_all_bytes(p - ps + 1, ps - 1, 0) && p[-ps] == 0x5a, "the grown page does not read zero");
	pc_expect_access(ctx, "second_page_below", p - 2 * ps, false, 0);
	pc_pass(ctx);
}

PC_PROBE_NEEDS(growsdown_gap, "mmap.growsdown.stops_at_gap", PC_FB(PC_F_MAP_GROWSDOWN),
	       "a MAP_GROWSDOWN mapping does not grow to touch an accessible mapping under it: the touch faults as unmapped")
{
	size_t ps = pl_page_size();
	char *p = grows_down_mapping(ctx, GROW_ROOM), *below;
	PC_SETUP(ctx, try_mmap(p - 2 * ps, ps, PROT_READ, ANON | MAP_FIXED, -1, 0, (void **)&below));
	pc_expect_fault(ctx, "touch_above_other_mapping", p - ps, false, PL_FAULT_UNMAPPED);
	pc_expect_access(ctx, "growing_mapping_intact", p, true, 1);
	pc_pass(ctx);
}
