/* mprotect: PROT_NONE and PROT_READ fault as promised and keep contents,
 * partial changes split a mapping and restoring merges it (VMAs counted in
 * /proc/self/maps on Linux), holes give ENOMEM, read-only files give EACCES. */
#include "config.h"
#include "pagelab/check.h"
#include "pagelab/env.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define RW (PROT_READ | PROT_WRITE)

static int try_mprotect(void *p, size_t len, int prot)
{
	return mprotect(p, len, prot) == 0 ? 0 : errno;
}

PC_PROBE_KINDS(prot_none_faults, "mprotect.prot_none.faults", PC_ANON_KINDS | PC_FILE_KINDS | PC_THP,
	       "PROT_NONE makes reads and writes fault; restoring read-write keeps the contents")
{
	struct pc_map m;
	pc_map_or_skip(ctx, 4 * pl_page_size(), &m);
	pc_fill(m.addr, m.len, 1);
	PC_SETUP(ctx, try_mprotect(m.addr, m.len, PROT_NONE));
	/* Mapped without the access: SIGSEGV with SEGV_ACCERR (POSIX). */
	pc_expect_fault(ctx, "read_fault", m.addr, false, PL_FAULT_ACCESS);
	pc_expect_fault(ctx, "write_fault", (char *)m.addr + m.len - 1, true, PL_FAULT_ACCESS);
	PC_SETUP(ctx, try_mprotect(m.addr, m.len, RW));
	const char *after = pc_contents(m.addr, m.len, 1);
	pc_observe(ctx, "contents_after_restore", "%s", after);
	PC_CHECK(ctx, strcmp(after, "old") == 0, "contents after restoring read-write: %s, expected old", after);
	pc_unmap(&m);
	pc_pass(ctx);
}

PC_PROBE_KINDS(prot_read_write_faults, "mprotect.prot_read.write_faults",
	       PC_ANON_KINDS | PC_FILE_KINDS | PC_THP,
	       "PROT_READ keeps reads working and the contents, and makes writes fault")
{
	struct pc_map m;
	pc_map_or_skip(ctx, 4 * pl_page_size(), &m);
	pc_fill(m.addr, m.len, 2);
	PC_SETUP(ctx, try_mprotect(m.addr, m.len, PROT_READ));
	pc_expect_access(ctx, "read_fault", m.addr, false, 0);
	pc_expect_fault(ctx, "write_fault", m.addr, true, PL_FAULT_ACCESS);
	const char *after = pc_contents(m.addr, m.len, 2);
	pc_observe(ctx, "contents", "%s", after);
	PC_CHECK(ctx, strcmp(after, "old") == 0, "contents under PROT_READ: %s, expected old", after);
	pc_unmap(&m);
	pc_pass(ctx);
}

PC_PROBE(prot_write_only, "mprotect.prot_write.read_allowed",
	 "PROT_WRITE alone allows writes; whether reads are allowed too is the system's choice (observed)")
{
	size_t ps = pl_page_size();
	char *b;
	PC_SETUP(ctx, pl_map_anon(ps, (void **)&b));
	PC_SETUP(ctx, try_mprotect(b, ps, PROT_WRITE));
	int wr = pc_access_faults(b, true, 0x42);
	int rd = pc_access_faults(b, false, 0);
	pc_observe(ctx, "read_with_prot_write", "%s", rd ? "faults" : "allowed");
	PC_CHECK(ctx, wr == 0, "a write to PROT_WRITE memory faulted (signal %d)", wr);
	PC_SETUP(ctx, try_mprotect(b, ps, PROT_READ));
	PC_CHECK(ctx, b[0] == 0x42, "the write under PROT_WRITE was lost");
	PC_SETUP(ctx, pl_unmap(b, ps));
	pc_pass(ctx);
}

/* Writes to page i of b fault exactly where `ro` says. */
static bool writes_fault_only_at(char *b, size_t pages, size_t ro)
{
	for (size_t i = 0; i < pages; i++) {
		int sig = pc_access_faults(b + i * pl_page_size(), true, (unsigned char)(0x10 + i));
		if ((sig != 0) != (i == ro))
			return false;
	}
	return true;
}

/* Where the system lists its mappings, check how many cover the range; record it under key. */
static void expect_vmas(struct pc_ctx *ctx, const struct pc_map *m, const char *key, size_t want)
{
	size_t n;
	if (!pc_try_mapping_count(ctx, m->addr, m->len, &n)) {
		pc_observe(ctx, key, "unobservable");
		return;
	}
	pc_observe(ctx, key, "%zu", n);
	/* How a system keeps its list of mappings is its own (POSIX speaks of pages, not mappings). */
	PC_BEHAVIOUR(ctx, n == want, "%s: expected %zu mappings over the range (Linux splits and merges its VMAs), "
		     "saw %zu", key, want, n);
}

PC_PROBE_KINDS(split_merge, "mprotect.split_merge", PC_ANON_KINDS | PC_FILE_KINDS,
	       "PROT_READ on the middle page splits the mapping in three; restoring read-write merges it")
{
	size_t ps = pl_page_size();
	struct pc_map m;
	pc_map_or_skip(ctx, 5 * ps, &m);
	char *b = m.addr;
	pc_fill(b, m.len, 3);
	PC_SETUP(ctx, try_mprotect(b + 2 * ps, ps, PROT_READ));
	expect_vmas(ctx, &m, "vmas_after_split", 3);
	PC_CHECK(ctx, pc_check_fill(b, m.len, 3), "contents changed by the split");
	PC_CHECK(ctx, writes_fault_only_at(b, 5, 2), "after the split, writes do not fault exactly at the read-only page");
	PC_SETUP(ctx, try_mprotect(b + 2 * ps, ps, RW));
	expect_vmas(ctx, &m, "vmas_after_merge", 1);
	PC_CHECK(ctx, writes_fault_only_at(b, 5, 5), "after restoring read-write, a write faulted");
	pc_unmap(&m);
	pc_pass(ctx);
}

PC_PROBE(hole_enomem, "mprotect.hole.enomem",
	 "mprotect over a range with a hole fails with ENOMEM; what happened before the hole is observed")
{
	size_t ps = pl_page_size();
	char *b;
	PC_SETUP(ctx, pl_map_anon(3 * ps, (void **)&b));
	PC_SETUP(ctx, pl_unmap(b + ps, ps));
	int e = try_mprotect(b, 3 * ps, PROT_READ);
	int before = pc_access_faults(b, true, 1);
	int after = pc_access_faults(b + 2 * ps, true, 1);
	pc_observe(ctx, "errno", "%s", e ? pl_errno_name(e) : "none");
	pc_observe(ctx, "page_before_hole", "%s", before ? "changed" : "unchanged");
	pc_observe(ctx, "page_after_hole", "%s", after ? "changed" : "unchanged");
	PC_CHECK(ctx, e == ENOMEM, "expected ENOMEM, got %s", e ? pc_strerror(e) : "success");
	PC_SETUP(ctx, pl_unmap(b, 3 * ps));
	pc_pass(ctx);
}

/* mprotect(PROT_READ) of [b+1, b+1+page) through `call`. POSIX lets the system
 * refuse with EINVAL or round to whole pages (musl's wrapper rounds): a success
 * must then have made both touched pages read-only; EINVAL must change nothing. */
static void unaligned_case(struct pc_ctx *ctx, int (*call)(void *, size_t, int))
{
	size_t ps = pl_page_size();
	char *b;
	PC_SETUP(ctx, pl_map_anon(2 * ps, (void **)&b));
	int e = call(b + 1, ps, PROT_READ);
	if (e == ENOSYS)
		pc_skip_unsupported(ctx, "mprotect: ENOSYS (no raw system call this build can name)");
	bool first_ro = pc_access_faults(b, true, 1) != 0, second_ro = pc_access_faults(b + ps, true, 1) != 0;
	const char *what = e == EINVAL ? "einval" : e ? pl_errno_name(e) : "rounded_to_pages";
	pc_observe(ctx, "result", "%s", what);
	PC_CHECK(ctx, e == 0 || e == EINVAL, "expected EINVAL or success, got %s", pc_strerror(e));
	PC_CHECK(ctx, e != EINVAL || (!first_ro && !second_ro), "a refused mprotect changed the protection");
	PC_CHECK(ctx, e != 0 || (first_ro && second_ro), "mprotect succeeded but the pages it covers stay writable");
	PC_SETUP(ctx, pl_unmap(b, 2 * ps));
	pc_pass(ctx);
}

PC_PROBE(libc_unaligned, "mprotect.unaligned_addr.libc",
	 "mprotect at an address inside a page: EINVAL, or success rounded to whole pages (observed)")
{
	unaligned_case(ctx, try_mprotect);
}

PC_PROBE(raw_unaligned, "mprotect.unaligned_addr.syscall",
	 "the raw mprotect system call at an address inside a page: EINVAL, or rounded (observed)")
{
	unaligned_case(ctx, pc_mprotect_raw);
}

/* A file in the probe's directory holding one page of pattern 7, opened read-only. */
static int readonly_file(struct pc_ctx *ctx, int *fd_out)
{
	size_t ps = pl_page_size();
	char path[4200], page[65536];
	if (ps > sizeof(page))
		return EOVERFLOW;
	snprintf(path, sizeof(path), "%s/readonly", pc_tmpdir(ctx));
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return errno;
	pc_fill(page, ps, 7);
	ssize_t n = write(fd, page, ps);
	int e = n == (ssize_t)ps ? 0 : (n < 0 ? errno : EIO);
	if (close(fd) != 0 && e == 0)
		e = errno;
	if (e)
		return e;
	*fd_out = open(path, O_RDONLY | O_CLOEXEC);
	return *fd_out < 0 ? errno : 0;
}

PC_PROBE(eacces_shared_readonly, "mprotect.eacces.shared_readonly_fd",
	 "PROT_WRITE on a MAP_SHARED mapping of a read-only descriptor fails with EACCES")
{
	int fd;
	PC_SETUP(ctx, readonly_file(ctx, &fd));
	void *p = mmap(NULL, pl_page_size(), PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		pc_error(ctx, "mapping the read-only file: %s", pc_strerror(errno));
	int e = try_mprotect(p, pl_page_size(), RW);
	pc_observe(ctx, "errno", "%s", e ? pl_errno_name(e) : "none");
	PC_CHECK(ctx, e == EACCES, "expected EACCES, got %s", e ? pc_strerror(e) : "success");
	PC_CHECK(ctx, pc_access_faults(p, true, 1) > 0, "the shared read-only mapping became writable");
	pc_pass(ctx);
}

PC_PROBE(private_readonly_writable, "mprotect.private_readonly_fd.write_is_private",
	 "PROT_WRITE on a MAP_PRIVATE mapping of a read-only descriptor works; writes never reach the file")
{
	size_t ps = pl_page_size();
	int fd;
	PC_SETUP(ctx, readonly_file(ctx, &fd));
	char *p = mmap(NULL, ps, PROT_READ, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED)
		pc_error(ctx, "mapping the read-only file: %s", pc_strerror(errno));
	int e = try_mprotect(p, ps, RW);
	pc_observe(ctx, "errno", "%s", e ? pl_errno_name(e) : "none");
	PC_CHECK(ctx, e == 0, "mprotect read-write of a private file mapping failed: %s", pc_strerror(e));
	PC_CHECK(ctx, pc_access_faults(p, true, 0) == 0, "a write to the private copy faulted");
	char *q = mmap(NULL, ps, PROT_READ, MAP_SHARED, fd, 0);
	if (q == MAP_FAILED)
		pc_error(ctx, "mapping the file again: %s", pc_strerror(errno));
	PC_CHECK(ctx, pc_check_fill(q, ps, 7), "a write to a private mapping reached the file");
	pc_pass(ctx);
}
