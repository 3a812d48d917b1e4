/* fault: what one page fault costs, per page, by kind: first-touch write on
 * private anonymous memory (base pages), read of untouched memory (zero
 * page), write after read, THP (2 MiB), file-backed with the page cache warm,
 * and copy-on-write in a child after fork. Timing is manual and covers only
 * the accesses; mapping, unmapping and fork are paused (counters too). */
#include "config.h"
#include "pagelab/bench.h"
#include "pagelab/env.h"
#include "pagelab/platform.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pl_abi.h"

#define FAULT_SIZES PB_ARGS(PB_KIB(256), PB_MIB(2), PB_MIB(64), PB_MIB(256), PB_GIB(1))
#define FAULT_QUICK PB_ARGS(PB_MIB(2), PB_MIB(64))

/* Private anonymous memory served in base pages: THP (and mTHP) off for the range. */
static int map_small_pages(size_t len, void **out)
{
	int e = pl_map_anon(len, out);
	if (e)
		return e;
	/* EINVAL: a kernel without THP, or a system that does not know the advice: base pages anyway. */
	if (madvise(*out, len, MADV_NOHUGEPAGE) != 0 && errno != EINVAL) {
		e = errno;
		(void)pl_unmap(*out, len);
		return e;
	}
	return 0;
}

static void write_pages(void *p, size_t len, size_t stride)
{
	volatile unsigned char *c = p;
	for (size_t off = 0; off < len; off += stride)
		c[off] = 1;
}

static unsigned read_pages(const void *p, size_t len)
{
	return pb_read_pages(p, len);
}

enum access { READ_ONLY, WRITE_ONLY, READ_THEN_WRITE };

/* One anonymous first-touch run: the access kind decides what is timed.
 * Without an RSS counter (pl_rss fails, e.g. ENOTSUP) the faults are still
 * timed; only rss_growth_bytes is left out. */
static void anon_fault(pb_state *s, enum access kind)
{
	size_t len = pb_arg_bytes(s), page = pl_page_size();
	if (!len)
		return;
	double rss_growth = 0;
	bool have_rss = true;
	volatile unsigned sink = 0;
	while (pb_keep_running(s)) {
		void *p;
		size_t rss0 = 0, rss1 = 0;
		pb_pause_timing(s);
		int e = map_small_pages(len, &p);
		if (!e && kind == READ_THEN_WRITE)
			sink += read_pages(p, len);
		have_rss = have_rss && !e && pl_rss(&rss0) == 0;
		pb_resume_timing(s);
		if (e) {
			pb_skip_errno(s, "mmap", e);
			return;
		}
		double t0 = pb_seconds();
		if (kind == READ_ONLY)
			sink += read_pages(p, len);
		else
			write_pages(p, len, page);
		double t1 = pb_seconds();
		pb_pause_timing(s);
		/* A read-only scan after the read: the zero page must not raise RSS. */
		if (kind == READ_ONLY)
			sink += read_pages(p, len);
		have_rss = have_rss && pl_rss(&rss1) == 0;
		e = pl_unmap(p, len);
		pb_resume_timing(s);
		if (e) {
			pb_skip_errno(s, "munmap", e);
			return;
		}
		rss_growth += (double)rss1 - (double)rss0;
		pb_set_iteration_time(s, t1 - t0);
	}
	(void)sink;
	pb_per_page(s, len / page);
	if (have_rss)
		pb_counter(s, "rss_growth_bytes", rss_growth, PB_COUNTER_AVG_ITER);
}

PB_BENCH(bm_fault_write, "fault/write",
	 "write one byte to each base page of fresh private anonymous memory (THP off)",
	 .args = FAULT_SIZES, .quick_args = FAULT_QUICK, .manual_time = true, .max_iterations = 2000)
{
	anon_fault(s, WRITE_ONLY);
}

PB_BENCH(bm_fault_read_zero, "fault/read_zero",
	 "read one byte of each page of fresh private anonymous memory (zero page; THP off)",
	 .args = FAULT_SIZES, .quick_args = FAULT_QUICK, .manual_time = true, .max_iterations = 2000)
{
	anon_fault(s, READ_ONLY);
}

PB_BENCH(bm_fault_write_after_read, "fault/write_after_read",
	 "write one byte to each page that a read mapped to the zero page (THP off)",
	 .args = FAULT_SIZES, .quick_args = FAULT_QUICK, .manual_time = true, .max_iterations = 2000)
{
	anon_fault(s, READ_THEN_WRITE);
}

/* Why huge pages cannot serve a fault here, or NULL when they can (a system that refuses
 * MADV_HUGEPAGE below skips with its answer). */
static const char *thp_unavailable(void)
{
	return pl_huge_unavailable();
}

/* A repetition of fault/thp is taken again when base pages served part of
 * the range, at most this often: it would time base-page faults. */
#define THP_RETRIES 8

/* Map len bytes aligned to huge with MADV_HUGEPAGE; base and maplen are for unmapping. */
static int map_thp(size_t len, size_t huge, void **base, size_t *maplen, void **out)
{
	*maplen = len + huge;
	int e = pl_map_anon(*maplen, base);
	if (e)
		return e;
	uintptr_t a = ((uintptr_t)*base + huge - 1) & ~(uintptr_t)(huge - 1);
	*out = (void *)a;
	if (madvise(*out, len, MADV_HUGEPAGE) != 0) {
		e = errno;
		(void)pl_unmap(*base, *maplen);
	}
	return e;
}

/* One timed first touch of len bytes of fresh huge-page memory; *backed: the
 * bytes huge pages served, where the system can tell (*known). */
static int thp_once(pb_state *s, size_t len, size_t huge, double *sec, size_t *backed, bool *known)
{
	void *base, *p;
	size_t maplen;
	pb_pause_timing(s);
	int e = map_thp(len, huge, &base, &maplen, &p);
	pb_resume_timing(s);
	if (e)
		return e;
	double t0 = pb_seconds();
	write_pages(p, len, huge);
	*sec = pb_seconds() - t0;
	pb_pause_timing(s);
	*known = pl_huge_bytes(p, len, backed) == 0;
	e = pl_unmap(base, maplen);
	pb_resume_timing(s);
	return e;
}

/* thp_once until huge pages back the whole range (or the system cannot tell). */
static int thp_sample(pb_state *s, size_t len, size_t huge, double *sec, int64_t *retries, bool *unverified)
{
	for (int k = 0;; k++) {
		size_t backed = 0;
		bool known;
		int e = thp_once(s, len, huge, sec, &backed, &known);
		if (e || !known || backed >= len) {
			*unverified |= !e && !known;
			return e;
		}
		if (k == THP_RETRIES)
			return EAGAIN;
		(*retries)++;
	}
}

PB_BENCH(bm_fault_thp, "fault/thp",
	 "write one byte to each huge page of fresh MADV_HUGEPAGE memory (one fault per huge page); a repetition "
	 "that base pages served in part is taken again",
	 .args = PB_ARGS(PB_MIB(2), PB_MIB(64), PB_MIB(256), PB_GIB(1)), .quick_args = PB_ARGS(PB_MIB(64)),
	 .manual_time = true, .max_iterations = 2000)
{
	const char *why = thp_unavailable();
	if (why) {
		pb_skip(s, why);
		return;
	}
	size_t len = pb_arg_bytes(s), huge = pl_caps()->huge_page_size;
	if (!len)
		return;
	int64_t retries = 0;
	bool unverified = false;
	while (pb_keep_running(s)) {
		double sec;
		int e = thp_sample(s, len, huge, &sec, &retries, &unverified);
		if (e) {
			pb_skip_errno(s, e == EAGAIN ? "THP: base pages served part of every try (memory fragmented?)"
						     : "mmap + MADV_HUGEPAGE + munmap", e);
			return;
		}
		pb_set_iteration_time(s, sec);
	}
	pb_per_page(s, len / pl_page_size());
	pb_counter(s, "huge_pages", (double)(len / huge), PB_COUNTER_TOTAL);
	pb_counter(s, "thp_retries", (double)retries, PB_COUNTER_TOTAL);
	if (unverified)
		pb_set_label(s, "huge-page backing not observable here");
}

/* A temporary file of len bytes, written so its pages sit in the page cache:
 * clean (synced), or dirty (not yet written back) when dirty is set. */
static int warm_file(size_t len, bool dirty, int *fd_out)
{
	const char *dir = getenv("TMPDIR");
	char path[512];
	snprintf(path, sizeof(path), "%s/pagelab-fault-XXXXXX", dir && dir[0] ? dir : "/tmp");
	int fd = mkstemp(path);
	if (fd < 0)
		return errno;
	int e = unlink(path) == 0 ? 0 : errno;
	static const unsigned char block[1 << 16] = {1};
	for (size_t off = 0; !e && off < len; off += sizeof(block)) {
		size_t n = len - off < sizeof(block) ? len - off : sizeof(block);
		ssize_t w = pwrite(fd, block, n, (off_t)off);
		e = w == (ssize_t)n ? 0 : (w < 0 ? errno : EIO);
	}
	if (!e && !dirty && fsync(fd) != 0)
		e = errno;
	if (e) {
		close(fd);
		return e;
	}
	*fd_out = fd;
	return 0;
}

/* File-backed faults: map the warm file (private or shared), time the accesses. */
static void file_fault(pb_state *s, int flags, enum access kind)
{
	size_t len = pb_arg_bytes(s), page = pl_page_size();
	if (!len)
		return;
	int fd, prot = kind == READ_ONLY ? PROT_READ : PROT_READ | PROT_WRITE;
	/* Shared writes leave the pages dirty: start them dirty, so every iteration meets the same state. */
	int e = warm_file(len, flags == MAP_SHARED && kind == WRITE_ONLY, &fd);
	if (e) {
		pb_skip_errno(s, "temporary file in $TMPDIR or /tmp", e);
		return;
	}
	volatile unsigned sink = 0;
	while (pb_keep_running(s)) {
		pb_pause_timing(s);
		void *p = mmap(NULL, len, prot, flags, fd, 0);
		e = p == MAP_FAILED ? errno : 0;
		pb_resume_timing(s);
		if (e)
			break;
		double t0 = pb_seconds();
		if (kind == READ_ONLY)
			sink += read_pages(p, len);
		else
			write_pages(p, len, page);
		double t1 = pb_seconds();
		pb_pause_timing(s);
		e = pl_unmap(p, len);
		pb_resume_timing(s);
		if (e)
			break;
		pb_set_iteration_time(s, t1 - t0);
	}
	(void)sink;
	close(fd);
	if (e)
		pb_skip_errno(s, "mmap/munmap of the file", e);
	else
		pb_per_page(s, len / page);
}

#define FILE_SIZES PB_ARGS(PB_MIB(2), PB_MIB(64), PB_MIB(256))
#define FILE_QUICK PB_ARGS(PB_MIB(16))

PB_BENCH(bm_fault_file_private_read, "fault/file_private_read",
	 "read one byte of each page of a MAP_PRIVATE file mapping whose pages are in the page cache",
	 .args = FILE_SIZES, .quick_args = FILE_QUICK, .manual_time = true, .max_iterations = 2000)
{
	file_fault(s, MAP_PRIVATE, READ_ONLY);
}

PB_BENCH(bm_fault_file_private_write, "fault/file_private_write",
	 "write one byte to each page of a MAP_PRIVATE file mapping (copy from the warm page cache)",
	 .args = FILE_SIZES, .quick_args = FILE_QUICK, .manual_time = true, .max_iterations = 2000)
{
	file_fault(s, MAP_PRIVATE, WRITE_ONLY);
}

PB_BENCH(bm_fault_file_shared_read, "fault/file_shared_read",
	 "read one byte of each page of a MAP_SHARED file mapping whose pages are in the page cache",
	 .args = FILE_SIZES, .quick_args = FILE_QUICK, .manual_time = true, .max_iterations = 2000)
{
	file_fault(s, MAP_SHARED, READ_ONLY);
}

PB_BENCH(bm_fault_file_shared_write, "fault/file_shared_write",
	 "write one byte to each page of a MAP_SHARED file mapping whose pages are in the page cache, already dirty "
	 "(written before, not yet written back)",
	 .args = FILE_SIZES, .quick_args = FILE_QUICK, .manual_time = true, .max_iterations = 2000)
{
	file_fault(s, MAP_SHARED, WRITE_ONLY);
}

struct cow_result {
	double seconds;
	double minor_faults;
	int error;
};

/* In the forked child: time the copy-on-write writes; only async-signal-safe calls. */
static void cow_child(int wfd, void *p, size_t len, size_t page)
{
	struct cow_result r = {0, 0, 0};
	struct rusage ru0, ru1;
	if (getrusage(RUSAGE_SELF, &ru0) != 0)
		r.error = errno;
	double t0 = pb_seconds();
	write_pages(p, len, page);
	double t1 = pb_seconds();
	if (!r.error && getrusage(RUSAGE_SELF, &ru1) != 0)
		r.error = errno;
	r.seconds = t1 - t0;
	if (!r.error)
		r.minor_faults = (double)(ru1.ru_minflt - ru0.ru_minflt);
	ssize_t w = write(wfd, &r, sizeof(r));
	_exit(w == (ssize_t)sizeof(r) ? 0 : 1);
}

/* Fork with p resident in the parent; the child's timed writes come back through a pipe. */
static int cow_once(void *p, size_t len, struct cow_result *r)
{
	int fds[2];
	if (pipe(fds) != 0)
		return errno;
	pid_t pid = fork();
	if (pid == 0) {
		close(fds[0]);
		cow_child(fds[1], p, len, pl_page_size());
	}
	int e = pid < 0 ? errno : 0;
	close(fds[1]);
	if (!e) {
		ssize_t n = read(fds[0], r, sizeof(*r));
		e = n == (ssize_t)sizeof(*r) ? r->error : (n < 0 ? errno : EPIPE);
		int st;
		if (waitpid(pid, &st, 0) != pid && !e)
			e = errno;
		else if (!e && !(WIFEXITED(st) && WEXITSTATUS(st) == 0))
			e = ECHILD;
	}
	close(fds[0]);
	return e;
}

PB_BENCH(bm_fault_cow, "fault/cow",
	 "in a child after fork, write one byte to each page the parent had written (copy-on-write, THP off)",
	 .args = PB_ARGS(PB_MIB(2), PB_MIB(64), PB_MIB(256)), .quick_args = PB_ARGS(PB_MIB(64)),
	 .manual_time = true, .max_iterations = 500)
{
	size_t len = pb_arg_bytes(s);
	if (!len)
		return;
	void *p;
	int e = map_small_pages(len, &p);
	if (e) {
		pb_skip_errno(s, "mmap", e);
		return;
	}
	write_pages(p, len, pl_page_size());
	double child_faults = 0;
	while (pb_keep_running(s)) {
		struct cow_result r;
		pb_pause_timing(s);
		e = cow_once(p, len, &r);
		pb_resume_timing(s);
		if (e)
			break;
		child_faults += r.minor_faults;
		pb_set_iteration_time(s, r.seconds);
	}
	int e2 = pl_unmap(p, len);
	if (e || e2) {
		pb_skip_errno(s, "fork/child/munmap", e ? e : e2);
		return;
	}
	pb_per_page(s, len / pl_page_size());
	/* The child's faults: the parent's counters do not follow the child. */
	pb_counter(s, "child_minor_faults", child_faults, PB_COUNTER_AVG_ITER);
}
