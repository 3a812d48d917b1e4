/* MAP_DROPPABLE (Linux 6.11): anonymous memory the kernel may drop under
 * pressure instead of swapping; dropped pages read zero. Probed by number, so
 * old headers and kernels skip with the feature probe's evidence. Contents are allowed to be old
 * or zero per page: the probes record which and check nothing else appears. */
#include "config.h"
#include "pagelab/check.h"
#include "pagelab/env.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pl_abi.h"

#define RW (PROT_READ | PROT_WRITE)
#define DROP_PAGES 64
#define DROP PC_FB(PC_F_MAP_DROPPABLE)

/* len bytes of MAP_DROPPABLE memory, or skip where the kernel lacks it. */
static char *map_droppable(struct pc_ctx *ctx, size_t len)
{
	void *p = mmap(NULL, len, RW, MAP_DROPPABLE | MAP_ANONYMOUS, -1, 0);
	if (p != MAP_FAILED)
		return p;
	int e = errno;
	/* 32-bit kernels leak their internal ENOTSUPP: it says "not supported" too. */
	pc_refusal(ctx, "mmap(MAP_DROPPABLE)", e == PL_ENOTSUPP ? ENOTSUP : e, pc_unknown_map_type_errno());
}

/* Every page of [p, p+len) holds pc_fill(seed) or zero, never anything else. */
static const char *old_or_zero(struct pc_ctx *ctx, const char *p, size_t len, unsigned seed)
{
	const char *c = pc_contents(p, len, seed);
	PC_CHECK(ctx, strcmp(c, "other") != 0, "droppable memory holds bytes that were never written");
	return c;
}

PC_PROBE_NEEDS(zero_fill, "droppable.map.zero_fill", DROP,
	       "MAP_DROPPABLE memory maps, reads zero, and takes writes")
{
	size_t len = DROP_PAGES * pl_page_size();
	char *p = map_droppable(ctx, len);
	bool zero = pc_all_bytes(p, len, 0);
	pc_observe(ctx, "contents", "%s", zero ? "zero" : "nonzero");
	PC_CHECK(ctx, zero, "fresh droppable memory is not zero");
	PC_CHECK(ctx, pc_access_faults(p + len - 1, true, 1) == 0, "droppable memory is not writable");
	PC_SETUP(ctx, pl_unmap(p, len));
	pc_pass(ctx);
}

PC_PROBE_NEEDS(contents, "droppable.contents.old_or_zero", DROP,
	       "written droppable pages read back old or zero (dropped), per page; which is observed")
{
	size_t len = DROP_PAGES * pl_page_size();
	char *p = map_droppable(ctx, len);
	pc_fill(p, len, 2);
	pc_observe(ctx, "contents_after", "%s", old_or_zero(ctx, p, len, 2));
	PC_SETUP(ctx, pl_unmap(p, len));
	pc_pass(ctx);
}

/* How many pages are resident; any page that is not must read zero (nothing to swap back in). */
static size_t check_dropped_read_zero(struct pc_ctx *ctx, char *p, size_t pages)
{
	unsigned char vec[DROP_PAGES];
	size_t ps = pl_page_size(), resident = 0;
	pc_obs_residency(ctx, p, pages * ps, vec);
	for (size_t i = 0; i < pages; i++) {
		resident += vec[i] & 1;
		PC_CHECK(ctx, (vec[i] & 1) || pc_all_bytes(p + i * ps, ps, 0),
			 "page %zu was dropped but does not read zero", i);
	}
	return resident;
}

PC_PROBE_NEEDS(pageout, "droppable.pageout.dropped", DROP | PC_FB(PC_F_MADV_PAGEOUT),
	       "MADV_PAGEOUT may drop droppable pages even without swap; dropped pages read zero")
{
	size_t len = DROP_PAGES * pl_page_size();
	char *p = map_droppable(ctx, len);
	pc_fill(p, len, 3);
	pc_advise(ctx, p, len, MADV_PAGEOUT, "MADV_PAGEOUT");
	size_t resident = check_dropped_read_zero(ctx, p, DROP_PAGES);
	pc_measure(ctx, "resident_after", "%zu/%d", resident, DROP_PAGES);
	pc_observe(ctx, "contents_after", "%s", old_or_zero(ctx, p, len, 3));
	PC_SETUP(ctx, pl_unmap(p, len));
	pc_pass(ctx);
}

static char *child_view;

/* Exit 0 zero, 1 old, 2 mixed, 3 other: what the child sees of pattern 4. */
static int child_reads(void *arg)
{
	const char *c = pc_contents(child_view, (size_t)arg, 4);
	return strcmp(c, "zero") == 0 ? 0 : strcmp(c, "old") == 0 ? 1 : strcmp(c, "mixed") == 0 ? 2 : 3;
}

PC_PROBE_NEEDS(fork_child, "droppable.fork.child_contents", DROP | PC_FB(PC_F_FORK),
	       "a forked child can read droppable memory: zero (wiped on fork) or the parent's data; observed")
{
	static const char *names[] = {"zero", "old", "mixed", "other"};
	size_t len = DROP_PAGES * pl_page_size();
	child_view = map_droppable(ctx, len);
	pc_fill(child_view, len, 4);
	int st = pc_in_child(child_reads, (void *)len);
	if (st < 0)
		pc_error(ctx, "fork: %s", pc_strerror(errno));
	PC_CHECK(ctx, st <= 3, "the child died reading droppable memory (status %d)", st);
	pc_observe(ctx, "child_sees", "%s", names[st]);
	PC_CHECK(ctx, st != 3, "the child saw bytes that were never written");
	pc_observe(ctx, "parent_after", "%s", old_or_zero(ctx, child_view, len, 4));
	pc_pass(ctx);
}

PC_PROBE_NEEDS(file_einval, "droppable.file.einval", DROP,
	       "MAP_DROPPABLE is anonymous only: with a file it fails with EINVAL")
{
	size_t len = pl_page_size();
	PC_SETUP(ctx, pl_unmap(map_droppable(ctx, len), len));
	struct pc_map m;
	const char *why = NULL;
	int e = pc_map(ctx, PC_SHARED_FILE, len, &m, &why);
	if (e)
		pc_error(ctx, "backing file: %s", why ? why : pc_strerror(e));
	void *p = mmap(NULL, len, RW, MAP_DROPPABLE, m.fd, 0);
	e = p == MAP_FAILED ? errno : 0;
	pc_observe(ctx, "errno", "%s", e ? pl_errno_name(e) : "none (mapped)");
	PC_CHECK(ctx, e == EINVAL, "expected EINVAL, got %s", e ? pc_strerror(e) : "success");
	pc_pass(ctx);
}
