/* Copy-on-write without fork: a write to a private mapping must copy the page
 * it shares with other mappings (the shared zero page, the huge zero page, the
 * page cache of a file or memfd, a hugetlb file) and never change what those
 * see. And copy-on-write across THP collapse: MADV_COLLAPSE of a THP mapped by
 * page-table entries, before fork or after fork with all, the lower or the
 * upper half shared with the child, must not let the parent's later write
 * show in the child. */
#include "config.h"
#include "pagelab/check.h"
#include "pagelab/env.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "duet.h"
#include "pl_abi.h"

#define SEED 23
/* The feature that is mapping kind k (one kind bit), as a constant. */
#define KIND(k) PC_FB(PC_F_KIND_FIRST + __builtin_ctz(k))
#define COLLAPSE (PC_FB(PC_F_MADV_COLLAPSE) | PC_FB(PC_F_FORK) | KIND(PC_THP))

/* A private read-write view and a second view of the same page(s). */
struct views {
	char *priv, *other;
	size_t len;
};

static void read_each_page(const char *p, size_t len)
{
	for (size_t off = 0; off < len; off += pl_page_size())
		(void)((const volatile char *)p)[off];
}

/* Write through the private view; the other view must still read what it read before. */
static void write_private(struct pc_ctx *ctx, struct views *v)
{
	char *before = malloc(v->len);
	if (!before)
		pc_error(ctx, "malloc of %zu bytes failed", v->len);
	read_each_page(v->priv, v->len);
	memcpy(before, v->other, v->len);
	memset(v->priv, 0xff, v->len);
	bool kept = memcmp(before, v->other, v->len) == 0;
	pc_observe(ctx, "other_view_after", "%s", kept ? "unchanged" : "changed");
	PC_CHECK(ctx, kept, "a write to a private mapping changed another mapping of the same page");
	PC_CHECK(ctx, pc_all_bytes(v->priv, v->len, 0xff), "the private write did not stick");
	pc_pass(ctx);
}

static void map_views_of(struct pc_ctx *ctx, int fd, size_t len, struct views *v)
{
	v->len = len;
	v->priv = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	v->other = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	if (v->priv == MAP_FAILED || v->other == MAP_FAILED)
		pc_error(ctx, "mapping the file twice: %s", pc_strerror(errno));
}

PC_PROBE(zero_page_source, "cow.private_write.other_view_unchanged/zero_page",
	 "a write to private anonymous memory that maps the zero page leaves another zero-page mapping reading zero")
{
	struct views v = {.len = pl_page_size()};
	PC_SETUP(ctx, pl_map_anon(v.len, (void **)&v.priv));
	PC_SETUP(ctx, pl_map_anon(v.len, (void **)&v.other));
	PC_SETUP(ctx, pl_protect(v.other, v.len, PL_PROT_READ));
	read_each_page(v.other, v.len);
	write_private(ctx, &v);
}

PC_PROBE_NEEDS(huge_zero_source, "cow.private_write.other_view_unchanged/huge_zero_page", KIND(PC_THP),
	       "a write to a THP range that maps the huge zero page leaves another huge-zero-page range reading zero")
{
	struct pc_map a, b;
	bool on = false;
	if (pl_huge_zero_page_enabled(&on) != 0 || !on)
		pc_skip_prerequisite(ctx, "the huge zero page is disabled or unknown here (transparent_hugepage/use_zero_page)");
	pc_map_kind_or_skip(ctx, PC_THP, 1, &a);
	pc_map_kind_or_skip(ctx, PC_THP, 1, &b);
	read_each_page(b.addr, b.len);
	unsigned flags = pc_obs_page_flags(ctx, b.addr, PL_PF_ZERO | PL_PF_HUGE);
	if ((flags & (PL_PF_ZERO | PL_PF_HUGE)) != (PL_PF_ZERO | PL_PF_HUGE)) /* nothing to copy from: no verdict */
		pc_differs(ctx, "expected a read fault on THP memory to map the huge zero page (Linux's usual behaviour "
			   "with use_zero_page on), saw %s", flags & PL_PF_ZERO ? "the base zero page" : "a page of its own");
	struct views v = {a.addr, b.addr, a.len};
	write_private(ctx, &v);
}

/* A file of len bytes holding pattern SEED: memfd (memfd=true) or a file in the probe's directory. */
static int seeded_file(struct pc_ctx *ctx, enum pc_kind kind, size_t len)
{
	struct pc_map m;
	pc_map_kind_or_skip(ctx, kind, len, &m);
	pc_fill(m.addr, m.len, SEED);
	int fd = dup(m.fd);
	if (fd < 0)
		pc_error(ctx, "dup: %s", pc_strerror(errno));
	pc_unmap(&m);
	return fd;
}

PC_PROBE(memfd_source, "cow.private_write.other_view_unchanged/memfd",
	 "a write to a private mapping of a memfd leaves a shared mapping of it (the page cache) unchanged")
{
	struct views v;
	map_views_of(ctx, seeded_file(ctx, PC_SHARED_FILE, 4 * pl_page_size()), 4 * pl_page_size(), &v);
	write_private(ctx, &v);
}

PC_PROBE(disk_source, "cow.private_write.other_view_unchanged/disk_file",
	 "a write to a private mapping of a disk file leaves a shared mapping of it (the page cache) unchanged")
{
	struct views v;
	map_views_of(ctx, seeded_file(ctx, PC_SHARED_DISK, 4 * pl_page_size()), 4 * pl_page_size(), &v);
	write_private(ctx, &v);
}

PC_PROBE_NEEDS(hugetlb_file_source, "cow.private_write.other_view_unchanged/hugetlb_file", KIND(PC_HUGETLB_PMD),
	       "a write to a private mapping of a hugetlb file leaves a shared mapping of it unchanged")
{
	size_t size = pc_kind_granule(PC_HUGETLB_PMD), free_pages = 0;
	if (size == pl_page_size())
		pc_skip_unsupported(ctx, "no hugetlb pool of the PMD size here");
	if (pl_hugetlb_free(size, &free_pages) != 0 || free_pages < 2)
		pc_skip_prerequisite(ctx, "needs 2 free hugetlb pages of %zu KiB, the pool has %zu: run on a kernel "
				     "target (its guest reserves them)", size / 1024, free_pages);
	int fd, e = pc_memfd("pagelab-hugetlb", MFD_CLOEXEC | MFD_HUGETLB, &fd);
	if (e)
		pc_refusal(ctx, "memfd_create(MFD_HUGETLB)", e, EINVAL);
	PC_SETUP(ctx, ftruncate(fd, (off_t)size) == 0 ? 0 : errno);
	struct views v;
	map_views_of(ctx, fd, size, &v);
	write_private(ctx, &v);
}

/* ---- THP collapse and fork ---- */

enum sharing { SHARE_NONE, SHARE_ALL, SHARE_LOWER, SHARE_UPPER };

static int collapse(void *p, size_t len)
{
	int e = EAGAIN;
	for (int tries = 0; tries < 3 && e == EAGAIN; tries++)
		e = pc_madvise(p, len, MADV_COLLAPSE);
	return e;
}

static void collapse_or_skip(struct pc_ctx *ctx, char *p, size_t len)
{
	int e = collapse(p, len);
	if (e == ENOMEM || e == EAGAIN || e == EBUSY)
		pc_skip_prerequisite(ctx, "MADV_COLLAPSE: %s: no huge page could be had now", pl_errno_name(e));
	if (e)
		pc_refusal(ctx, "madvise(MADV_COLLAPSE) of a THP mapped by page-table entries", e,
			   pc_unknown_advice_errno(p, len));
}

/* The part of the THP the child shares: all of it, or one half. */
static void shared_part(enum sharing s, char *mem, size_t len, char **part, size_t *part_len)
{
	*part = s == SHARE_UPPER ? mem + len / 2 : mem;
	*part_len = s == SHARE_LOWER || s == SHARE_UPPER ? len / 2 : len;
}

static int collapse_case(struct pc_ctx *ctx, enum sharing s, char *mem, size_t len)
{
	char *part, *other;
	size_t part_len;
	shared_part(s, mem, len, &part, &part_len);
	other = s == SHARE_LOWER ? mem + len / 2 : mem;
	if (s == SHARE_NONE)
		collapse_or_skip(ctx, mem, len);
	if (s == SHARE_LOWER || s == SHARE_UPPER)
		pc_advise(ctx, other, len / 2, MADV_DONTFORK, "MADV_DONTFORK");
	struct duet d;
	PC_SETUP(ctx, duet_fork(&d));
	if (d.pid == 0) {
		char *old = malloc(part_len);
		if (!old)
			_exit(2);
		memcpy(old, part, part_len);
		if (duet_tell(&d) != 0 || duet_wait(&d) != 0)
			_exit(2);
		_exit(memcmp(old, part, part_len) != 0);
	}
	PC_SETUP(ctx, duet_wait(&d));
	if (s == SHARE_LOWER || s == SHARE_UPPER)
		pc_advise(ctx, mem, len, MADV_DOFORK, "MADV_DOFORK"); /* one mapping again, so it can collapse */
	if (s != SHARE_NONE)
		collapse_or_skip(ctx, mem, len);
	memset(mem, 0xff, len);
	PC_SETUP(ctx, duet_tell(&d));
	return duet_end(&d);
}

static void run_collapse(struct pc_ctx *ctx, enum sharing s)
{
	struct pc_map m;
	size_t ps = pl_page_size();
	pc_need_advice(ctx, MADV_COLLAPSE, "MADV_COLLAPSE"); /* Linux 6.1 */
	pc_map_kind_or_skip(ctx, PC_THP, 1, &m);
	pc_fill(m.addr, m.len, SEED);
	PC_SETUP(ctx, pl_protect((char *)m.addr + ps, ps, PL_PROT_READ)); /* map the THP by page-table entries */
	PC_SETUP(ctx, pl_protect((char *)m.addr + ps, ps, PL_PROT_RW));
	int st = collapse_case(ctx, s, m.addr, m.len);
	if (st != 0 && st != 1)
		pc_error(ctx, "the child could not run its part (status %d)", st);
	pc_measure(ctx, "huge_bytes_after", "%zu", pc_obs_huge_bytes(ctx, m.addr, m.len));
	pc_observe(ctx, "leak", "%s", st ? "yes" : "no");
	PC_CHECK(ctx, st == 0, "after MADV_COLLAPSE the parent's write showed in the child");
	pc_pass(ctx);
}

PC_PROBE_NEEDS(collapse_before_fork, "cow.collapse.before_fork", COLLAPSE,
	       "a THP collapsed from page-table entries before fork: the parent's later write stays out of the child")
{
	run_collapse(ctx, SHARE_NONE);
}

PC_PROBE_NEEDS(collapse_fully_shared, "cow.collapse.after_fork/fully_shared", COLLAPSE,
	       "a THP shared whole with a child, then collapsed: the parent's write stays out of the child")
{
	run_collapse(ctx, SHARE_ALL);
}

PC_PROBE_NEEDS(collapse_lower_shared, "cow.collapse.after_fork/lower_shared", COLLAPSE | PC_FB(PC_F_MADV_DONTFORK),
	       "a THP whose lower half is shared with a child, then collapsed: the parent's write stays out of the child")
{
	run_collapse(ctx, SHARE_LOWER);
}

PC_PROBE_NEEDS(collapse_upper_shared, "cow.collapse.after_fork/upper_shared", COLLAPSE | PC_FB(PC_F_MADV_DONTFORK),
	       "a THP whose upper half is shared with a child, then collapsed: the parent's write stays out of the child")
{
	run_collapse(ctx, SHARE_UPPER);
}
