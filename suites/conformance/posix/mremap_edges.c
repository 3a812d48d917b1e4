/* mremap at the edges: contents after moves between addresses aligned to a
 * page, 1 MiB, a PMD and a PUD (where the kernel moves whole page-table levels
 * at once), neighbours left intact by moves inside a mapping and next to
 * unmapped space, growth that merges mappings, moves and shrinks across
 * several mappings (Linux 6.17: older kernels refuse with EFAULT), the rest of
 * MREMAP_DONTUNMAP, file mappings, a move out and back that must keep file
 * offsets, and the errors (EFAULT, EINVAL) of the Linux form. */
#include "config.h"
#include "pagelab/check.h"
#include "pagelab/env.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pl_abi.h"

#define MIB ((size_t)1 << 20)
#define CHECKED (4 * MIB) /* bytes of a moved region filled and compared (the rest is only moved) */
#define SEED 31
#define RW (PROT_READ | PROT_WRITE)
#define UNKNOWN_FLAG 0x40000000 /* a flag bit no system gives mremap */
#define MREMAP_F PC_FB(PC_F_MREMAP)
#define FIXED_F (PC_FB(PC_F_MREMAP) | PC_FB(PC_F_MREMAP_FIXED))
#define SEVERAL_F (FIXED_F | PC_FB(PC_F_MREMAP_SEVERAL))
#define DONTUNMAP_F (FIXED_F | PC_FB(PC_F_MREMAP_DONTUNMAP))

/* mremap that answers the new address, or NULL with errno set. */
static void *remap(void *old, size_t old_len, size_t new_len, int flags, void *to)
{
	void *p;
	int e = pc_mremap(old, old_len, new_len, flags, to, &p);
	errno = e;
	return e ? NULL : p;
}

/* An address in a fresh reservation aligned to `align` but not to twice that, with `len` bytes after it. */
static char *aligned_spot(struct pc_ctx *ctx, size_t align, size_t len)
{
	char *r;
	/* A PUD spans 1 GiB with 4 KiB pages but 4 TiB with 64 KiB ones: more than some address spaces hold. */
	if (align > SIZE_MAX / 4 || len > SIZE_MAX - 3 * align)
		pc_skip_prerequisite(ctx, "%zu bytes at a %zu-byte alignment do not fit this address space", len, align);
	size_t span = len + 3 * align;
	int e = pl_reserve(span, 0, (void **)&r);
	if (e == ENOMEM)
		pc_skip_prerequisite(ctx, "no room for %zu bytes of address space (%zu-byte alignment) here", span, align);
	PC_SETUP(ctx, e);
	uintptr_t a = ((uintptr_t)r + align - 1) & ~(uintptr_t)(align - 1);
	if ((a & (2 * align - 1)) == 0)
		a += align;
	return (char *)a;
}

static char *map_at(struct pc_ctx *ctx, char *at, size_t len, int flags)
{
	void *p = mmap(at, len, RW, flags | MAP_FIXED, -1, 0);
	/* Two PUDs of writable memory are 2 GiB with 4 KiB pages: more than a small system commits (UML). */
	if (p == MAP_FAILED && errno == ENOMEM)
		pc_skip_prerequisite(ctx, "mapping %zu writable bytes was refused (ENOMEM): more than this system commits to one mapping",
				     len);
	if (p != at)
		pc_error(ctx, "mapping at %p: %s", (void *)at, pc_strerror(errno));
	return p;
}

static size_t min_size(size_t a, size_t b)
{
	return a < b ? a : b;
}

/* Move `len` bytes from an address aligned to src_align to one aligned to dst_align; optionally with a
 * mapping just before the destination that must survive. */
static void aligned_move(struct pc_ctx *ctx, size_t src_align, size_t dst_align, size_t len, size_t preamble)
{
	int flags = pc_kind(ctx) == PC_SHARED_ANON ? MAP_SHARED | MAP_ANONYMOUS : MAP_PRIVATE | MAP_ANONYMOUS;
	if (len < src_align) /* twice the alignment wrapped around: a 32-bit address space */
		pc_skip_prerequisite(ctx, "two units of %zu bytes do not fit this address space", src_align);
	size_t check = min_size(len - pl_page_size(), CHECKED);
	char *src = map_at(ctx, aligned_spot(ctx, src_align, len), len, flags);
	char *dst = aligned_spot(ctx, dst_align, len + preamble) + preamble, *pre = dst - preamble;
	pc_fill(src, check, SEED);
	pc_fill(src + len - pl_page_size(), pl_page_size(), SEED + 1);
	if (preamble) {
		map_at(ctx, pre, preamble, flags);
		pc_fill(pre, preamble, SEED + 2);
	}
	void *p = remap(src, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
	PC_CHECK(ctx, p == dst, "mremap to %p: %s", (void *)dst, p ? "elsewhere" : pc_strerror(errno));
	bool kept = pc_check_fill(dst, check, SEED) && pc_check_fill(dst + len - pl_page_size(), pl_page_size(), SEED + 1);
	pc_observe(ctx, "contents_after_move", "%s", kept ? "kept" : "corrupted");
	PC_CHECK(ctx, kept, "contents changed by the move");
	if (preamble) {
		bool pre_kept = pc_check_fill(pre, preamble, SEED + 2);
		pc_observe(ctx, "mapping_before_destination", "%s", pre_kept ? "kept" : "corrupted");
		PC_CHECK(ctx, pre_kept, "the mapping before the destination changed");
	}
	PC_CHECK(ctx, pc_access_faults(src, false, 0) != 0, "the source is still mapped after the move");
	pc_pass(ctx);
}
#define ALIGNED_MOVE(fn, name, sa, da, len, pre, text)                                                     \
	PC_PROBE_KINDS_NEEDS(fn, "mremap.move_aligned." name, PC_PRIVATE_ANON | PC_SHARED_ANON, FIXED_F, text) \
	{                                                                                                    \
		aligned_move(ctx, sa, da, len, pre);                                                         \
	}
#define PAGE pl_page_size()
#define PMD (pl_caps()->huge_page_size ? pl_caps()->huge_page_size : 2 * MIB)
#define PUD (PMD * (PAGE / sizeof(void *)))

ALIGNED_MOVE(page_page, "page_to_page", PAGE, PAGE, 2 * PAGE,
	     0, "two pages moved between page-aligned addresses keep their contents")
ALIGNED_MOVE(mib_page, "1mib_to_page", MIB, PAGE, 2 * MIB, 0, "2 MiB moved from a 1 MiB-aligned to a page-aligned address")
ALIGNED_MOVE(mib_mib, "1mib_to_1mib", MIB, MIB, 2 * MIB, 0, "2 MiB moved between 1 MiB-aligned addresses")
ALIGNED_MOVE(pmd_page, "pmd_to_page", PMD, PAGE, 2 * PMD, 0, "two PMDs' worth moved from a PMD-aligned to a page-aligned address")
ALIGNED_MOVE(pmd_mib, "pmd_to_1mib", PMD, MIB, 2 * PMD, 0, "two PMDs' worth moved from a PMD-aligned to a 1 MiB-aligned address")
ALIGNED_MOVE(pmd_pmd, "pmd_to_pmd", PMD, PMD, 2 * PMD, 0, "two PMDs' worth moved between PMD-aligned addresses (whole PMDs)")
ALIGNED_MOVE(pud_page, "pud_to_page", PUD, PAGE, 2 * PUD, 0, "two PUDs' worth moved from a PUD-aligned to a page-aligned address")
ALIGNED_MOVE(pud_mib, "pud_to_1mib", PUD, MIB, 2 * PUD, 0, "two PUDs' worth moved from a PUD-aligned to a 1 MiB-aligned address")
ALIGNED_MOVE(pud_pmd, "pud_to_pmd", PUD, PMD, 2 * PUD, 0, "two PUDs' worth moved from a PUD-aligned to a PMD-aligned address")
ALIGNED_MOVE(pud_pud, "pud_to_pud", PUD, PUD, 2 * PUD, 0, "two PUDs' worth moved between PUD-aligned addresses (whole PUDs)")
ALIGNED_MOVE(mib_5, "5mib_1mib_to_1mib", MIB, MIB, 5 * MIB, 0, "5 MiB moved between 1 MiB-aligned addresses")
ALIGNED_MOVE(mib_5_pre, "5mib_next_to_mapping", MIB, MIB, 5 * MIB, 40 * MIB,
	     "5 MiB moved right after a 40 MiB mapping: the mapping before the destination is kept")

PC_PROBE_NEEDS(misaligned_target, "mremap.fixed.einval_unaligned_target", FIXED_F,
	 "MREMAP_FIXED to an address that is not page-aligned fails with EINVAL and keeps the mapping")
{
	size_t ps = pl_page_size();
	char *b, *to;
	PC_SETUP(ctx, pl_map_anon(ps, (void **)&b));
	PC_SETUP(ctx, pl_reserve(2 * ps, 0, (void **)&to));
	pc_fill(b, ps, SEED);
	int e = remap(b, ps, ps, MREMAP_MAYMOVE | MREMAP_FIXED, to + ps / 4) ? 0 : errno;
	pc_observe(ctx, "errno", "%s", e ? pl_errno_name(e) : "none");
	PC_CHECK(ctx, e == EINVAL, "expected EINVAL, got %s", e ? pc_strerror(e) : "success");
	PC_CHECK(ctx, pc_check_fill(b, ps, SEED), "the mapping changed after a refused mremap");
	pc_pass(ctx);
}

PC_PROBE_NEEDS(unmapped_source, "mremap.efault.unmapped_source", MREMAP_F,
	 "mremap of an address range with nothing mapped fails with EFAULT")
{
	size_t ps = pl_page_size();
	char *b;
	PC_SETUP(ctx, pl_reserve(2 * ps, 0, (void **)&b));
	PC_SETUP(ctx, pl_unmap(b, 2 * ps));
	int e = remap(b, ps, 2 * ps, MREMAP_MAYMOVE, NULL) ? 0 : errno;
	pc_observe(ctx, "errno", "%s", e ? pl_errno_name(e) : "none");
	PC_CHECK(ctx, e == EFAULT, "expected EFAULT, got %s", e ? pc_strerror(e) : "success");
	pc_pass(ctx);
}

/* Three pages with one unmapped (the middle, or the last); grow the page at `grow` by one page in place:
 * the three pages must be one mapping again. */
static void expand_merge(struct pc_ctx *ctx, size_t hole, size_t grow)
{
	size_t ps = pl_page_size(), n;
	char *b;
	PC_SETUP(ctx, pl_map_anon(3 * ps, (void **)&b));
	PC_SETUP(ctx, pl_unmap(b + hole * ps, ps));
	void *p = remap(b + grow * ps, ps, 2 * ps, 0, NULL);
	PC_CHECK(ctx, p == b + grow * ps, "growing in place: %s", p ? "moved" : pc_strerror(errno));
	if (!pc_try_mapping_count(ctx, b, 3 * ps, &n))
		pc_skip_unobservable(ctx, PC_CH_MAPPINGS, "the mapping list is not observable here");
	pc_observe(ctx, "mappings_after", "%zu", n);
	/* Merging neighbours into one mapping is what Linux does; no contract promises it. */
	PC_BEHAVIOUR(ctx, n == 1, "expected the grown page merged with its neighbours (1 mapping), saw %zu", n);
	pc_pass(ctx);
}

PC_PROBE_NEEDS(expand_merge_mid, "mremap.grow.merges_with_next", MREMAP_F,
	 "growing the first of three pages into the unmapped middle one leaves a single mapping")
{
	expand_merge(ctx, 1, 0);
}

PC_PROBE_NEEDS(expand_merge_offset, "mremap.grow.merges_from_offset", MREMAP_F,
	 "growing the middle of three pages into the unmapped last one leaves a single mapping")
{
	expand_merge(ctx, 2, 1);
}

PC_PROBE_NEEDS(move_within, "mremap.move.within_mapping_keeps_rest", FIXED_F,
	 "moving the upper half of a 2 MiB block 2 MiB down inside one mapping leaves the lower half intact")
{
	char *b;
	PC_SETUP(ctx, pl_map_anon(20 * MIB, (void **)&b));
	memset(b, 0, 20 * MIB);
	char *src = (char *)(((uintptr_t)b + 6 * MIB) & ~(uintptr_t)(2 * MIB - 1)), *dst = src - 2 * MIB;
	pc_fill(src, 2 * MIB, SEED);
	void *p = remap(src + MIB, MIB, MIB, MREMAP_MAYMOVE | MREMAP_FIXED, dst + MIB);
	PC_CHECK(ctx, p == dst + MIB, "mremap: %s", p ? "elsewhere" : pc_strerror(errno));
	bool kept = pc_check_fill(src, MIB, SEED);
	pc_observe(ctx, "unmoved_half", "%s", kept ? "kept" : "corrupted");
	PC_CHECK(ctx, kept, "the half that stayed was corrupted by the move next to it");
	pc_pass(ctx);
}

PC_PROBE_NEEDS(move_next_to_hole, "mremap.move.next_to_unmapped_space", FIXED_F,
	 "moving 1 MiB to just after an unmapped MiB (same offset in a PMD) leaves the source's start intact")
{
	size_t off = MIB + MIB / 4, span = 6 * MIB;
	char *s = aligned_spot(ctx, 2 * MIB, span + off) + off, *d = aligned_spot(ctx, 2 * MIB, span + off) + off;
	map_at(ctx, s, span, MAP_PRIVATE | MAP_ANONYMOUS);
	map_at(ctx, d, span, MAP_PRIVATE | MAP_ANONYMOUS);
	pc_fill(s, 2 * MIB, SEED);
	PC_SETUP(ctx, pl_unmap(d, MIB));
	void *p = remap(s + MIB, MIB, MIB, MREMAP_MAYMOVE | MREMAP_FIXED, d + MIB);
	PC_CHECK(ctx, p == d + MIB, "mremap: %s", p ? "elsewhere" : pc_strerror(errno));
	bool kept = pc_check_fill(s, MIB, SEED);
	pc_observe(ctx, "source_start", "%s", kept ? "kept" : "corrupted");
	PC_CHECK(ctx, kept, "the start of the source was corrupted by the move");
	pc_pass(ctx);
}

/* Moves across several mappings (Linux 6.17) are a feature: where feature.mremap_several_mappings
 * passed, a refusal of one is the system refusing what it offers. */
static void multi_refused(struct pc_ctx *ctx, int e)
{
	pc_observe(ctx, "result", "%s", pl_errno_name(e));
	pc_fail_refused(ctx, "mremap across several mappings: %s", pc_strerror(e));
}

/* Pages 0 2 4-5 6 8 10 of an 11-page range: six mappings with gaps, pages filled per SEED. */
static char *pieces(struct pc_ctx *ctx, size_t ps)
{
	char *b;
	PC_SETUP(ctx, pl_map_anon(11 * ps, (void **)&b));
	for (int i = 1; i < 10; i += 2)
		if (i != 5)
			PC_SETUP(ctx, pl_unmap(b + i * ps, ps));
	for (int i = 0; i <= 10; i++)
		if (i % 2 == 0 || i == 5)
			pc_fill(b + i * ps, ps, SEED + (unsigned)i);
	return b;
}

static bool pieces_kept(char *b, size_t ps)
{
	for (int i = 0; i <= 10; i++)
		if ((i % 2 == 0 || i == 5) && !pc_check_fill(b + i * ps, ps, SEED + (unsigned)i))
			return false;
	return true;
}

static void move_pieces(struct pc_ctx *ctx, bool dontunmap)
{
	size_t ps = pl_page_size(), len = 11 * ps;
	int flags = MREMAP_MAYMOVE | MREMAP_FIXED | (dontunmap ? MREMAP_DONTUNMAP : 0);
	char *b = pieces(ctx, ps), *to;
	PC_SETUP(ctx, pl_reserve(2 * len, 0, (void **)&to));
	PC_SETUP(ctx, pl_unmap(to, 2 * len));
	if (!remap(b, len, len, flags, to))
		multi_refused(ctx, errno);
	PC_CHECK(ctx, pieces_kept(to, ps), "the six mappings lost data in the move");
	PC_CHECK(ctx, remap(to, len, len, flags, to + len) != NULL, "moving them next to themselves: %s",
		 pc_strerror(errno));
	PC_CHECK(ctx, pieces_kept(to + len, ps), "the six mappings lost data in the second move");
	map_at(ctx, to, len, MAP_PRIVATE | MAP_ANONYMOUS);
	PC_CHECK(ctx, remap(to + len, len, len, flags, to) != NULL, "moving them over a mapping: %s",
		 pc_strerror(errno));
	PC_CHECK(ctx, pieces_kept(to, ps), "the six mappings lost data moving over a mapping");
	pc_observe(ctx, "contents_after_moves", "kept");
	pc_pass(ctx);
}

PC_PROBE_NEEDS(multi_move, "mremap.several_mappings.move", SEVERAL_F,
	 "a range of six mappings with gaps moves whole, next to itself and over a mapping, keeping every page")
{
	move_pieces(ctx, false);
}

PC_PROBE_NEEDS(multi_move_dontunmap, "mremap.several_mappings.move_dontunmap",
	 SEVERAL_F | PC_FB(PC_F_MREMAP_DONTUNMAP),
	 "the same moves with MREMAP_DONTUNMAP")
{
	move_pieces(ctx, true);
}

static void shrink_pieces(struct pc_ctx *ctx, bool in_place)
{
	size_t ps = pl_page_size(), len = 10 * ps;
	char *b, *to;
	PC_SETUP(ctx, pl_map_anon(len, (void **)&b));
	PC_SETUP(ctx, pl_map_anon(len, (void **)&to));
	for (int i = 1; i < 10; i += 2)
		PC_SETUP(ctx, pl_unmap(b + i * ps, ps));
	pc_fill(b, ps, SEED);
	void *p = in_place ? remap(b, len, ps, 0, NULL) : remap(b, len, ps, MREMAP_MAYMOVE | MREMAP_FIXED, to);
	if (!p)
		multi_refused(ctx, errno);
	PC_CHECK(ctx, pc_check_fill(p, ps, SEED), "the page kept by shrinking lost its data");
	for (int i = 2; i < 10; i += 2)
		PC_CHECK(ctx, pc_access_faults(b + i * ps, false, 0) != 0, "page %d is still mapped after shrinking", i);
	pc_observe(ctx, "after_shrink", "one page");
	pc_pass(ctx);
}

PC_PROBE_NEEDS(multi_shrink_in_place, "mremap.several_mappings.shrink_in_place", SEVERAL_F,
	 "shrinking a range of five mappings with gaps to its first page in place unmaps the rest")
{
	shrink_pieces(ctx, true);
}

PC_PROBE_NEEDS(multi_shrink_move, "mremap.several_mappings.shrink_and_move", SEVERAL_F,
	 "shrinking a range of five mappings with gaps while moving it keeps the first page and unmaps the rest")
{
	shrink_pieces(ctx, false);
}

/* Pages 2..8 of a 10-page range with page 5 unmapped move into a fresh range: six pages of data around a hole. */
static void split_move(struct pc_ctx *ctx, bool dontunmap)
{
	size_t ps = pl_page_size(), len = 7 * ps;
	int flags = MREMAP_MAYMOVE | MREMAP_FIXED | (dontunmap ? MREMAP_DONTUNMAP : 0);
	char *b, *to, *want = malloc(10 * ps);
	if (!want)
		pc_error(ctx, "malloc of %zu bytes failed", 10 * ps);
	PC_SETUP(ctx, pl_map_anon(10 * ps, (void **)&b));
	PC_SETUP(ctx, pl_reserve(len, 0, (void **)&to));
	PC_SETUP(ctx, pl_unmap(to, len));
	PC_SETUP(ctx, pl_unmap(b + 5 * ps, ps));
	pc_fill(b, 5 * ps, SEED);
	pc_fill(b + 6 * ps, 4 * ps, SEED + 1);
	pc_fill(want, 5 * ps, SEED);
	pc_fill(want + 6 * ps, 4 * ps, SEED + 1);
	if (!remap(b + 2 * ps, len, len, flags, to))
		multi_refused(ctx, errno);
	bool kept = memcmp(to, want + 2 * ps, 3 * ps) == 0 && memcmp(to + 4 * ps, want + 6 * ps, 3 * ps) == 0;
	bool hole = pc_access_faults(to + 3 * ps, false, 0) != 0;
	pc_observe(ctx, "contents_after_move", "%s", kept ? "kept" : "corrupted");
	pc_observe(ctx, "hole_after_move", "%s", hole ? "unmapped" : "mapped");
	PC_CHECK(ctx, kept, "the pages around the hole lost data in the move");
	PC_CHECK(ctx, hole, "the hole did not move with the pages");
	pc_pass(ctx);
}

PC_PROBE_NEEDS(multi_split, "mremap.several_mappings.move_part", SEVERAL_F,
	 "moving the middle of two mappings split by a hole moves the pages and keeps the hole")
{
	split_move(ctx, false);
}

PC_PROBE_NEEDS(multi_split_dontunmap, "mremap.several_mappings.move_part_dontunmap",
	 SEVERAL_F | PC_FB(PC_F_MREMAP_DONTUNMAP),
	 "the same with MREMAP_DONTUNMAP")
{
	split_move(ctx, true);
}

PC_PROBE_NEEDS(multi_supplied_last, "mremap.several_mappings.supplied_mapping_stops",
	 SEVERAL_F | PC_FB(PC_F_USERFAULTFD),
	 "a move across five mappings whose last is supplied by the process (userfaultfd) moves the others, then EFAULT")
{
	size_t ps = pl_page_size(), len = 10 * ps;
	char *b, *to;
	struct pl_supplier *s;
	PC_SETUP(ctx, pl_map_anon(len, (void **)&b));
	for (int i = 1; i < 10; i += 2)
		PC_SETUP(ctx, pl_unmap(b + i * ps, ps));
	for (int i = 0; i < 8; i += 2)
		pc_fill(b + i * ps, ps, SEED + (unsigned)i);
	int e = pl_supply_start(b + 8 * ps, ps, PL_SUPPLY_COPY, 1, &s);
	if (e == ENOTSUP || e == EPERM)
		pc_skip_unsupported(ctx, "this process cannot supply its own pages here (userfaultfd: %s)", pl_errno_name(e));
	PC_SETUP(ctx, e);
	/* Reserved after the supplier's own pages are mapped, so that nothing lands in the target meanwhile. */
	PC_SETUP(ctx, pl_reserve(len, 0, (void **)&to));
	PC_SETUP(ctx, pl_unmap(to, len));
	e = remap(b, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, to) ? 0 : errno;
	pc_observe(ctx, "result", "%s", e ? pl_errno_name(e) : "moved all");
	/* Where each mapping ends up is Linux 6.17's choice (its commit, not a manual page): moved up to the
	 * supplied one, then EFAULT. What a move may never do is lose the data of a mapping it moved. */
	PC_BEHAVIOUR(ctx, e == EFAULT, "expected EFAULT at the supplied mapping, saw %s", e ? pl_errno_name(e) : "success");
	for (int i = 0; i < 8; i += 2) {
		bool moved = pc_access_faults(to + i * ps, false, 0) == 0;
		PC_CHECK(ctx, moved || pc_access_faults(b + i * ps, false, 0) == 0,
			 "the mapping at page %d is neither moved nor left in place", i);
		PC_BEHAVIOUR(ctx, moved, "expected the mapping at page %d moved before the supplied one, saw it stay", i);
		PC_CHECK(ctx, pc_check_fill(moved ? to + i * ps : b + i * ps, ps, SEED + (unsigned)i),
			 "the mapping at page %d lost its data (%s)", i, moved ? "moved" : "not moved");
	}
	PC_BEHAVIOUR(ctx, pc_access_faults(to + 8 * ps, false, 0) != 0,
		     "expected the supplied mapping left in place, saw it moved");
	pc_pass(ctx);
}

/* What mremap answers for a flag no system defines, on a scratch page of its own. */
static int unknown_flag_errno(struct pc_ctx *ctx)
{
	size_t ps = pl_page_size();
	void *p, *q;
	PC_SETUP(ctx, pl_map_anon(ps, &p));
	q = remap(p, ps, ps, MREMAP_MAYMOVE | UNKNOWN_FLAG, NULL);
	int e = q ? 0 : errno;
	PC_SETUP(ctx, pl_unmap(q ? q : p, ps));
	return e;
}

static void *dontunmap(struct pc_ctx *ctx, void *src, size_t len, int flags, void *to)
{
	void *p = remap(src, len, len, MREMAP_MAYMOVE | MREMAP_DONTUNMAP | flags, to);
	if (!p) {
		int e = errno;
		pc_refusal(ctx, "mremap(MREMAP_DONTUNMAP)", e, unknown_flag_errno(ctx));
	}
	return p;
}

/* MREMAP_DONTUNMAP leaves the old range mapped: every page of it must read (a fault is a failure, not a crash). */
static void expect_old_range_mapped(struct pc_ctx *ctx, char *old, size_t len)
{
	for (size_t off = 0; off < len; off += pl_page_size())
		pc_expect_access(ctx, "old_range_access", old + off, false, 0);
}

PC_PROBE_NEEDS(dontunmap_fixed, "mremap.dontunmap.fixed_target", DONTUNMAP_F,
	 "MREMAP_DONTUNMAP with MREMAP_FIXED replaces the target with the moved pages; the source reads zero")
{
	size_t len = 5 * pl_page_size();
	char *src, *dst;
	PC_SETUP(ctx, pl_map_anon(len, (void **)&dst));
	PC_SETUP(ctx, pl_map_anon(len, (void **)&src));
	memset(dst, 'X', len);
	pc_fill(src, len, SEED);
	void *p = dontunmap(ctx, src, len, MREMAP_FIXED, dst);
	PC_CHECK(ctx, p == dst, "moved to %p, asked for %p", p, (void *)dst);
	PC_CHECK(ctx, pc_check_fill(dst, len, SEED), "the target does not hold the moved pages");
	expect_old_range_mapped(ctx, src, len);
	PC_CHECK(ctx, pc_all_bytes(src, len, 0), "the source does not read zero");
	pc_observe(ctx, "source_after", "zero");
	pc_pass(ctx);
}

PC_PROBE_NEEDS(dontunmap_partial, "mremap.dontunmap.part_of_mapping", DONTUNMAP_F,
	 "MREMAP_DONTUNMAP of the last half of a mapping: the first half keeps its data, the second reads zero")
{
	size_t half = 5 * pl_page_size();
	char *src, *want = malloc(2 * half);
	if (!want)
		pc_error(ctx, "malloc of %zu bytes failed", 2 * half);
	PC_SETUP(ctx, pl_map_anon(2 * half, (void **)&src));
	pc_fill(src, 2 * half, SEED);
	pc_fill(want, 2 * half, SEED);
	char *p = dontunmap(ctx, src + half, half, 0, NULL);
	PC_CHECK(ctx, pc_check_fill(src, half, SEED), "the half that stayed lost its data");
	expect_old_range_mapped(ctx, src + half, half);
	PC_CHECK(ctx, pc_all_bytes(src + half, half, 0), "the moved half's old range does not read zero");
	PC_CHECK(ctx, memcmp(p, want + half, half) == 0, "the moved half does not hold its data");
	pc_observe(ctx, "old_range_after", "zero");
	pc_pass(ctx);
}

PC_PROBE_NEEDS(dontunmap_overwrite_part, "mremap.dontunmap.over_part_of_target", DONTUNMAP_F,
	 "MREMAP_DONTUNMAP onto the first half of a larger mapping leaves its second half untouched")
{
	size_t len = 5 * pl_page_size();
	char *src, *dst;
	PC_SETUP(ctx, pl_map_anon(len, (void **)&src));
	PC_SETUP(ctx, pl_map_anon(2 * len, (void **)&dst));
	pc_fill(src, len, SEED);
	memset(dst, 'X', 2 * len);
	void *p = dontunmap(ctx, src, len, MREMAP_FIXED, dst);
	PC_CHECK(ctx, p == dst, "moved to %p, asked for %p", p, (void *)dst);
	PC_CHECK(ctx, pc_check_fill(dst, len, SEED), "the target's first half does not hold the moved pages");
	PC_CHECK(ctx, pc_all_bytes(dst + len, len, 'X'), "the target's second half changed");
	expect_old_range_mapped(ctx, src, len);
	PC_CHECK(ctx, pc_all_bytes(src, len, 0), "the source does not read zero");
	pc_observe(ctx, "target_rest", "kept");
	pc_pass(ctx);
}

PC_PROBE_NEEDS(dontunmap_supplied, "mremap.dontunmap.old_range_supplied",
	 DONTUNMAP_F | PC_FB(PC_F_USERFAULTFD),
	 "after MREMAP_DONTUNMAP of a range the process supplies (userfaultfd), touching the old range asks the supplier")
{
	size_t len = 4 * pl_page_size();
	char *src;
	struct pl_supplier *s;
	struct pl_supply_stats st;
	PC_SETUP(ctx, pl_map_anon(len, (void **)&src));
	pc_fill(src, len, SEED);
	int e = pl_supply_start(src, len, PL_SUPPLY_COPY, 'U', &s);
	if (e == ENOTSUP || e == EPERM)
		pc_skip_unsupported(ctx, "this process cannot supply its own pages here (userfaultfd: %s)", pl_errno_name(e));
	PC_SETUP(ctx, e);
	char *p = dontunmap(ctx, src, len, 0, NULL);
	PC_CHECK(ctx, pc_check_fill(p, len, SEED), "the moved pages lost their data");
	bool supplied = pc_all_bytes(src, len, 'U');
	PC_SETUP(ctx, pl_supply_stats(s, &st));
	pc_observe(ctx, "old_range_after", "%s", supplied ? "supplied" : pc_all_bytes(src, len, 0) ? "zero" : "other");
	pc_measure(ctx, "pages_supplied", "%llu", (unsigned long long)st.faults);
	PC_CHECK(ctx, supplied && st.faults >= len / pl_page_size(), "the old range was not filled by the supplier");
	pc_pass(ctx);
}

PC_PROBE_KINDS_NEEDS(file_grow, "mremap.file.grow_moves_and_syncs", PC_SHARED_FILE | PC_SHARED_DISK, MREMAP_F,
	       "growing a shared file mapping (file extended first) with MREMAP_MAYMOVE: the new part reaches the file")
{
	size_t ps = pl_page_size();
	struct pc_map m;
	pc_map_or_skip(ctx, 2 * ps, &m);
	pc_fill(m.addr, m.len, SEED);
	PC_SETUP(ctx, ftruncate(m.fd, (off_t)(8 * ps)) == 0 ? 0 : errno);
	char *p = remap(m.addr, 2 * ps, 8 * ps, MREMAP_MAYMOVE, NULL);
	PC_CHECK(ctx, p != NULL, "growing the file mapping: %s", pc_strerror(errno));
	PC_CHECK(ctx, pc_check_fill(p, 2 * ps, SEED), "the first pages lost their data");
	memset(p + 2 * ps, 'G', 6 * ps);
	PC_SETUP(ctx, msync(p, 8 * ps, MS_SYNC) == 0 ? 0 : errno);
	char c = 0;
	PC_CHECK(ctx, pread(m.fd, &c, 1, (off_t)(7 * ps)) == 1 && c == 'G', "the grown part's write is not in the file");
	pc_observe(ctx, "grown_part_in_file", "yes");
	pc_pass(ctx);
}

/* Move page 1 of a shared file mapping past its end and back, with page `ro` (1-based, 0: none) made read-only
 * meanwhile: each page must still show its own part of the file. */
static void out_and_back(struct pc_ctx *ctx, int ro)
{
	size_t ps = pl_page_size();
	struct pc_map m;
	pc_map_or_skip(ctx, 4 * ps, &m);
	for (int i = 0; i < 4; i++)
		memset((char *)m.addr + i * ps, '0' + i, ps);
	char *b = m.addr;
	PC_SETUP(ctx, pl_unmap(b + 3 * ps, ps)); /* the space to move into */
	PC_CHECK(ctx, remap(b + ps, ps, ps, MREMAP_MAYMOVE | MREMAP_FIXED, b + 3 * ps) == b + 3 * ps,
		 "moving page 1 out: %s", pc_strerror(errno));
	if (ro)
		PC_SETUP(ctx, pl_protect(b + (size_t)(ro - 1) * ps, ps, PL_PROT_READ));
	PC_CHECK(ctx, remap(b + 3 * ps, ps, ps, MREMAP_MAYMOVE | MREMAP_FIXED, b + ps) == b + ps,
		 "moving page 1 back: %s", pc_strerror(errno));
	for (int i = 0; i < 3; i++)
		PC_CHECK(ctx, b[i * ps] == '0' + i, "page %d shows part %c of the file, expected %c", i, b[i * ps], '0' + i);
	pc_observe(ctx, "pages_after", "in place");
	pc_pass(ctx);
}

PC_PROBE_KINDS_NEEDS(out_and_back_plain, "mremap.file.move_out_and_back", PC_SHARED_FILE | PC_SHARED_DISK,
	       FIXED_F,
	       "a page of a shared file mapping moved away and back merges with the right file offsets")
{
	out_and_back(ctx, 0);
}

PC_PROBE_KINDS_NEEDS(out_and_back_ro_last, "mremap.file.move_out_and_back_next_to_readonly", PC_SHARED_FILE | PC_SHARED_DISK,
	       FIXED_F,
	       "the same with the page after it made read-only meanwhile (no merge on that side)")
{
	out_and_back(ctx, 3);
}

PC_PROBE_KINDS_NEEDS(out_and_back_ro_first, "mremap.file.move_out_and_back_after_readonly", PC_SHARED_FILE | PC_SHARED_DISK,
	       FIXED_F,
	       "the same with the page before it made read-only meanwhile")
{
	out_and_back(ctx, 1);
}
