/* mseal's rules range by range (Linux 6.10): which part of a range a seal
 * covers (page rounding, splits, merges, gaps), which operations it refuses
 * on the sealed part only (mprotect, munmap, mremap in every form, mmap with
 * MAP_FIXED over it) and which it allows (advice that keeps contents; discard
 * on writable, shared or file memory). Each case is a script run twice on
 * fresh mappings: once without the seals, where every operation must do what
 * it does on any mapping, and once with them; a step's expected result is
 * given for both runs. */
#include "config.h"
#include "pagelab/check.h"
#include "pagelab/env.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pl_abi.h"

#define RO PROT_READ
#define RW (PROT_READ | PROT_WRITE)
#define NO_CHECK (-1)
#define ANY_ERROR (-2)
#define MAX_STEPS 12

enum op {
	OP_END,       /* the script ends */
	OP_SEAL,      /* mseal(off, len): the sealed run only */
	OP_SEAL_B,    /* mseal the whole second area: the sealed run only */
	OP_SEAL_RAW,  /* mseal(off + delta bytes, len, flags=arg): the sealed run only */
	OP_UNMAP,     /* munmap */
	OP_PROT,      /* mprotect to arg */
	OP_MADV,      /* madvise(arg) */
	OP_MAP_FIXED, /* mmap(MAP_FIXED) over off with protection arg */
	OP_REMAP,     /* mremap(off, len -> arg pages, flags) */
	OP_MAPPED,    /* pages [off, off+len) are still mapped (0) or not (EFAULT) */
	OP_VMAS,      /* the area is arg mappings (where the system lists them) */
};

enum target { T_NONE, T_IN_PLACE, T_FREE, T_AREA_B, T_DONTUNMAP, T_DONTUNMAP_HINT };

struct step {
	enum op op;
	int off, len; /* pages */
	int delta;    /* bytes added to the length (or the address, OP_SEAL_RAW) */
	int arg;
	enum target to;
	int open_e, sealed_e; /* expected errno without and with the seals */
};

enum area_kind { A_ANON_RO, A_ANON_RW, A_SHARED_RO, A_FILE_RO };

struct rule {
	const char *id, *summary;
	enum area_kind area;
	int pages;
	struct step steps[MAX_STEPS];
};

#define SEAL(o, l, e) {OP_SEAL, o, l, 0, 0, T_NONE, NO_CHECK, e}
#define SEALD(o, l, d, e) {OP_SEAL, o, l, d, 0, T_NONE, NO_CHECK, e}
#define SEAL_RAW(o, l, d, f, e) {OP_SEAL_RAW, o, l, d, f, T_NONE, NO_CHECK, e}
#define UNMAP(o, l, a, b) {OP_UNMAP, o, l, 0, 0, T_NONE, a, b}
#define PROT(o, l, p, a, b) {OP_PROT, o, l, 0, p, T_NONE, a, b}
#define MADV(o, l, adv, a, b) {OP_MADV, o, l, 0, adv, T_NONE, a, b}
#define MAPF(o, l, p, a, b) {OP_MAP_FIXED, o, l, 0, p, T_NONE, a, b}
#define REMAP(o, l, n, t, a, b) {OP_REMAP, o, l, 0, n, t, a, b}
#define MAPPED(o, l, a, b) {OP_MAPPED, o, l, 0, 0, T_NONE, a, b}
#define VMAS(n) {OP_VMAS, 0, 0, 0, n, T_NONE, NO_CHECK, 0}

static const struct rule rules[] = {
	{"mseal.range.unmapped_start_enomem", "a seal over a range whose start is unmapped fails with ENOMEM; the mapped part seals",
	 A_ANON_RO, 4, {UNMAP(0, 2, 0, 0), PROT(0, 4, RW, ENOMEM, ENOMEM), SEAL(0, 4, ENOMEM), SEAL(2, 2, 0)}},
	{"mseal.range.unmapped_middle_enomem", "a seal over a range with a hole fails with ENOMEM; each side seals alone",
	 A_ANON_RO, 4, {UNMAP(1, 2, 0, 0), PROT(0, 4, RW, ENOMEM, ENOMEM), SEAL(0, 4, ENOMEM), SEAL(0, 1, 0), SEAL(3, 1, 0)}},
	{"mseal.range.unmapped_end_enomem", "a seal over a range whose end is unmapped fails with ENOMEM; the mapped part seals",
	 A_ANON_RO, 4, {UNMAP(2, 2, 0, 0), PROT(0, 4, RW, ENOMEM, ENOMEM), SEAL(0, 4, ENOMEM), SEAL(0, 2, 0)}},
	{"mseal.range.across_mappings", "one seal covers three mappings of different protection",
	 A_ANON_RO, 4, {PROT(1, 2, RW, 0, 0), PROT(0, 4, RO, 0, 0), PROT(1, 2, RW, 0, 0), SEAL(0, 4, 0), PROT(0, 4, RO, 0, EPERM)}},
	{"mseal.range.split_at_start", "sealing the first page splits the mapping; the rest seals after",
	 A_ANON_RO, 4, {PROT(0, 2, RW, 0, 0), SEAL(0, 1, 0), PROT(1, 3, RW, 0, 0), SEAL(1, 3, 0), PROT(1, 3, RO, 0, EPERM)}},
	{"mseal.range.split_at_end", "sealing the last page splits the mapping; the rest seals after",
	 A_ANON_RO, 4, {PROT(0, 2, RW, 0, 0), SEAL(3, 1, 0), SEAL(0, 3, 0), PROT(0, 4, RO, 0, EPERM)}},
	{"mseal.range.bad_arguments", "unknown flags and an unaligned start are EINVAL, a length past the mapping ENOMEM",
	 A_ANON_RO, 8, {UNMAP(4, 4, 0, 0), SEAL_RAW(0, 4, 0, 0x20, EINVAL), SEAL_RAW(0, 2, 1, 0, EINVAL), SEAL(0, 5, ENOMEM),
			PROT(0, 4, RW, 0, 0)}},
	{"mseal.range.zero_length", "a seal of length zero succeeds and seals nothing",
	 A_ANON_RO, 4, {PROT(0, 0, RW, 0, 0), SEAL(0, 0, 0), PROT(0, 4, RW, 0, 0)}},
	{"mseal.range.twice", "sealing a sealed range again succeeds", A_ANON_RO, 4,
	 {SEAL(0, 4, 0), SEAL(0, 4, 0), PROT(0, 4, RW, 0, EPERM)}},
	{"mseal.range.length_rounds_up", "a seal one byte short of two pages covers both pages, not the third",
	 A_ANON_RO, 4, {SEALD(0, 2, -1, 0), PROT(0, 2, RW, 0, EPERM), PROT(1, 1, RW, 0, EPERM), PROT(2, 1, RW, 0, 0)}},
	{"mseal.range.length_rounds_up_over", "a seal one byte past two pages covers three pages, not the fourth",
	 A_ANON_RO, 4, {SEALD(0, 2, 1, 0), PROT(0, 3, RW, 0, EPERM), PROT(2, 1, RW, 0, EPERM), PROT(3, 1, RW, 0, 0)}},
	{"mseal.mprotect.sealed_part_only", "mprotect is refused on the sealed first page and allowed after it",
	 A_ANON_RO, 4, {SEAL(0, 1, 0), PROT(0, 1, RW, 0, EPERM), PROT(1, 3, RW, 0, 0)}},
	{"mseal.mprotect.sealed_tail_only", "mprotect is allowed before the sealed last three pages and refused on them",
	 A_ANON_RO, 4, {SEAL(1, 3, 0), PROT(0, 1, RW, 0, 0), PROT(1, 3, RW, 0, EPERM)}},
	{"mseal.mprotect.two_mappings", "a seal over two mappings refuses mprotect of either",
	 A_ANON_RO, 4, {PROT(0, 2, RW, 0, 0), SEAL(0, 4, 0), PROT(0, 2, RW, 0, EPERM), PROT(2, 2, RW, 0, EPERM)}},
	{"mseal.mprotect.two_mappings_split", "a seal over the middle of two mappings refuses exactly the sealed pages",
	 A_ANON_RO, 4, {PROT(0, 2, RW, 0, 0), SEAL(1, 2, 0), PROT(0, 1, RW, 0, 0), PROT(1, 1, RW, 0, EPERM),
			PROT(2, 1, RW, 0, EPERM), PROT(3, 1, RW, 0, 0)}},
	{"mseal.mprotect.partly_sealed_range", "mprotect of a range that only starts sealed is refused whole",
	 A_ANON_RO, 4, {SEAL(0, 1, 0), PROT(0, 2, RW, 0, EPERM), MAPPED(1, 1, 0, 0)}},
	{"mseal.mprotect.gap", "with a hole in the middle, mprotect and mseal of the whole range fail; each side stays unsealed",
	 A_ANON_RO, 4, {PROT(0, 1, RW, 0, 0), PROT(3, 1, RW, 0, 0), UNMAP(1, 2, 0, 0), PROT(0, 4, RO, ENOMEM, ENOMEM),
			SEAL(0, 4, ENOMEM), PROT(0, 1, RO, 0, 0), PROT(3, 1, RO, 0, 0)}},
	{"mseal.mprotect.split_mapping", "a seal over a mapping split by mprotect refuses mprotect of both parts",
	 A_ANON_RO, 4, {PROT(0, 1, RW, 0, 0), SEAL(0, 4, 0), PROT(0, 2, RO, 0, EPERM), PROT(2, 2, RO, 0, EPERM)}},
	{"mseal.mprotect.merge", "sealing two pages across a split refuses them and leaves the rest alone",
	 A_ANON_RO, 4, {PROT(0, 1, RW, 0, 0), SEAL(0, 2, 0), PROT(0, 2, RO, 0, EPERM), PROT(2, 2, RO, 0, 0)}},
	{"mseal.munmap.whole", "munmap of a sealed range fails with EPERM", A_ANON_RO, 4,
	 {SEAL(0, 4, 0), UNMAP(0, 4, 0, EPERM)}},
	{"mseal.munmap.two_mappings", "munmap of either sealed mapping, or across them, fails", A_ANON_RO, 4,
	 {PROT(0, 2, RW, 0, 0), SEAL(0, 4, 0), UNMAP(0, 2, 0, EPERM), UNMAP(1, 2, 0, EPERM)}},
	{"mseal.munmap.around_gap", "a range with a hole cannot be sealed, and every part of it can be unmapped",
	 A_ANON_RO, 4, {UNMAP(1, 2, 0, 0), SEAL(0, 4, ENOMEM), UNMAP(0, 1, 0, 0), UNMAP(2, 1, 0, 0), UNMAP(0, 4, 0, 0)}},
	{"mseal.munmap.start_already_unmapped", "munmap over an unmapped first page and three sealed ones fails and unmaps nothing",
	 A_ANON_RO, 4, {UNMAP(0, 1, 0, 0), SEAL(1, 3, 0), UNMAP(0, 4, 0, EPERM), MAPPED(1, 3, EFAULT, 0)}},
	{"mseal.munmap.end_already_unmapped", "munmap over three sealed pages and an unmapped last one fails",
	 A_ANON_RO, 4, {UNMAP(3, 1, 0, 0), SEAL(0, 3, 0), UNMAP(0, 4, 0, EPERM), MAPPED(0, 3, EFAULT, 0)}},
	{"mseal.munmap.middle_already_unmapped", "munmap over a sealed first page, a hole and an unsealed last page fails whole",
	 A_ANON_RO, 4, {UNMAP(1, 2, 0, 0), SEAL(0, 1, 0), UNMAP(0, 4, 0, EPERM), MAPPED(0, 1, EFAULT, 0), MAPPED(3, 1, EFAULT, 0)}},
	{"mseal.mremap.shrink", "shrinking a sealed mapping in place fails with EPERM", A_ANON_RO, 4,
	 {SEAL(0, 4, 0), REMAP(0, 4, 2, T_IN_PLACE, 0, EPERM)}},
	{"mseal.mremap.expand", "growing a sealed mapping in place fails with EPERM", A_ANON_RO, 4,
	 {UNMAP(2, 2, 0, 0), SEAL(0, 2, 0), REMAP(0, 2, 4, T_IN_PLACE, 0, EPERM)}},
	{"mseal.mremap.move_fixed", "moving a sealed mapping to a free address fails with EPERM", A_ANON_RO, 1,
	 {SEAL(0, 1, 0), REMAP(0, 1, 1, T_FREE, 0, EPERM)}},
	{"mseal.mremap.shrink_fixed", "moving and shrinking a sealed mapping onto another fails with EPERM", A_ANON_RO, 4,
	 {SEAL(0, 4, 0), REMAP(0, 4, 2, T_AREA_B, 0, EPERM)}},
	{"mseal.mremap.onto_sealed_target", "moving and growing a mapping onto a sealed one fails with EPERM", A_ANON_RO, 1,
	 {{OP_SEAL_B, 0, 0, 0, 0, T_NONE, NO_CHECK, 0}, REMAP(0, 1, 4, T_AREA_B, 0, EPERM)}},
	{"mseal.mremap.move_onto_sealed_target", "moving a mapping onto a sealed one of the same size fails with EPERM",
	 A_ANON_RO, 4, {{OP_SEAL_B, 0, 0, 0, 0, T_NONE, NO_CHECK, 0}, REMAP(0, 4, 4, T_AREA_B, 0, EPERM)}},
	{"mseal.mremap.dontunmap", "MREMAP_DONTUNMAP of a sealed mapping fails with EPERM", A_ANON_RO, 4,
	 {SEAL(0, 4, 0), REMAP(0, 4, 4, T_DONTUNMAP, 0, EPERM)}},
	{"mseal.mremap.dontunmap_to_hint", "MREMAP_DONTUNMAP of a sealed mapping to a chosen free address fails with EPERM",
	 A_ANON_RO, 4, {SEAL(0, 4, 0), REMAP(0, 4, 4, T_DONTUNMAP_HINT, 0, EPERM)}},
	{"mseal.mmap_fixed.overwrite", "mmap(MAP_FIXED) over a sealed page fails with EPERM", A_ANON_RO, 1,
	 {SEAL(0, 1, 0), MAPF(0, 1, PROT_NONE, 0, EPERM)}},
	{"mseal.mmap_fixed.expand", "mmap(MAP_FIXED) over a sealed mapping and the free pages after it fails with EPERM",
	 A_ANON_RO, 12, {UNMAP(8, 4, 0, 0), SEAL(0, 8, 0), MAPF(0, 12, RO, 0, EPERM)}},
	{"mseal.mmap_fixed.shrink", "mmap(MAP_FIXED) over the start of a sealed mapping fails with EPERM", A_ANON_RO, 12,
	 {SEAL(0, 12, 0), MAPF(0, 8, RO, 0, EPERM)}},
	{"mseal.madvise.keeps_contents_allowed", "advice that keeps contents (MADV_RANDOM) is allowed on sealed memory",
	 A_ANON_RO, 4, {SEAL(0, 4, 0), MADV(0, 4, MADV_RANDOM, 0, 0), UNMAP(0, 4, 0, EPERM)}},
	{"mseal.madvise.discard_readonly_anon", "MADV_DONTNEED on sealed read-only private anonymous memory fails with EPERM",
	 A_ANON_RO, 4, {SEAL(0, 4, 0), MADV(0, 4, MADV_DONTNEED, 0, EPERM), UNMAP(0, 4, 0, EPERM)}},
	{"mseal.madvise.discard_writable_anon", "MADV_DONTNEED on sealed writable anonymous memory is allowed",
	 A_ANON_RW, 4, {SEAL(0, 4, 0), MADV(0, 4, MADV_DONTNEED, 0, 0), UNMAP(0, 4, 0, EPERM)}},
	{"mseal.madvise.discard_shared", "MADV_DONTNEED on sealed read-only shared memory is allowed", A_SHARED_RO, 4,
	 {SEAL(0, 4, 0), MADV(0, 4, MADV_DONTNEED, 0, 0), UNMAP(0, 4, 0, EPERM)}},
	{"mseal.madvise.discard_file", "MADV_DONTNEED on a sealed read-only private file mapping is allowed", A_FILE_RO, 4,
	 {SEAL(0, 4, 0), MADV(0, 4, MADV_DONTNEED, 0, 0), UNMAP(0, 4, 0, EPERM)}},
	{"mseal.vmas.split_and_merge", "seals split a mapping where they start and end and merge with sealed neighbours",
	 A_ANON_RO, 24, {PROT(0, 1, PROT_NONE, 0, 0), PROT(23, 1, PROT_NONE, 0, 0), VMAS(3), SEAL(1, 1, 0), VMAS(4),
			 SEAL(22, 1, 0), VMAS(5), SEAL(2, 1, 0), SEAL(21, 1, 0), VMAS(5), SEAL(2, 20, 0), VMAS(3)}},
};
#define NRULES (sizeof(rules) / sizeof(rules[0]))

struct areas {
	char *a, *b, *free_range; /* the area, a second area of 4 pages, a free range of the area's size */
	size_t ps;
	int fd;
};

static char *map_area(struct pc_ctx *ctx, enum area_kind kind, size_t len, int fd)
{
	int prot = kind == A_ANON_RW ? RW : RO, flags = kind == A_SHARED_RO ? MAP_SHARED | MAP_ANONYMOUS
						  : kind == A_FILE_RO ? MAP_PRIVATE : MAP_PRIVATE | MAP_ANONYMOUS;
	char *p = mmap(NULL, len, prot, flags, kind == A_FILE_RO ? fd : -1, 0);
	if (p == MAP_FAILED)
		pc_error(ctx, "mapping the area: %s", pc_strerror(errno));
	return p;
}

static void make_areas(struct pc_ctx *ctx, const struct rule *r, struct areas *ar)
{
	struct pc_map file = {.fd = -1};
	ar->ps = pl_page_size();
	size_t len = (size_t)r->pages * ar->ps;
	ar->fd = -1;
	if (r->area == A_FILE_RO) {
		pc_map_kind_or_skip(ctx, PC_SHARED_FILE, len, &file);
		ar->fd = file.fd;
	}
	ar->a = map_area(ctx, r->area, len, ar->fd);
	ar->b = map_area(ctx, A_ANON_RO, 4 * ar->ps, -1);
	PC_SETUP(ctx, pl_reserve(len > 4 * ar->ps ? len : 4 * ar->ps, 0, (void **)&ar->free_range));
	PC_SETUP(ctx, pl_unmap(ar->free_range, len > 4 * ar->ps ? len : 4 * ar->ps));
}

static int remap(const struct areas *ar, const struct step *s, size_t len)
{
	char *src = ar->a + (size_t)s->off * ar->ps, *to = NULL;
	size_t new_len = (size_t)s->arg * ar->ps;
	int flags = 0;
	switch (s->to) {
	case T_IN_PLACE: break;
	case T_FREE: to = ar->free_range; flags = MREMAP_MAYMOVE | MREMAP_FIXED; break;
	case T_AREA_B: to = ar->b; flags = MREMAP_MAYMOVE | MREMAP_FIXED; break;
	case T_DONTUNMAP: flags = MREMAP_MAYMOVE | MREMAP_DONTUNMAP; break;
	case T_DONTUNMAP_HINT: to = ar->free_range; flags = MREMAP_MAYMOVE | MREMAP_DONTUNMAP; break;
	default: return EINVAL;
	}
	void *out;
	return pc_mremap(src, len, new_len, flags, to, &out);
}

/* Pages still mapped: 0; any page gone: EFAULT. */
static int still_mapped(char *p, size_t len, size_t ps)
{
	for (size_t off = 0; off < len; off += ps)
		if (pc_access_faults(p + off, false, 0) != 0)
			return EFAULT;
	return 0;
}

static int do_step(struct pc_ctx *ctx, const struct areas *ar, const struct step *s, size_t area_len)
{
	char *p = ar->a + (size_t)s->off * ar->ps;
	size_t len = (size_t)s->len * ar->ps;
	size_t n;
	switch (s->op) {
	case OP_SEAL: return pc_mseal(p, (size_t)((long)len + s->delta), 0);
	case OP_SEAL_B: return pc_mseal(ar->b, 4 * ar->ps, 0);
	case OP_SEAL_RAW: return pc_mseal(p + s->delta, len, (unsigned long)s->arg);
	case OP_UNMAP: return munmap(p, len) == 0 ? 0 : errno;
	case OP_PROT: return mprotect(p, len, s->arg) == 0 ? 0 : errno;
	case OP_MADV: return pc_madvise(p, len, s->arg);
	case OP_MAP_FIXED:
		return mmap(p, len, s->arg, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED ? errno : 0;
	case OP_REMAP: return remap(ar, s, len);
	case OP_MAPPED: return still_mapped(p, len, ar->ps);
	case OP_END: return 0;
	case OP_VMAS:
		/* Skips (unobservable) where the mapping list cannot be trusted: the step is the probe's point. */
		n = pc_obs_mapping_count(ctx, ar->a, area_len);
		return n == (size_t)s->arg ? 0 : ERANGE;
	}
	return EINVAL;
}

static bool is_seal(enum op op)
{
	return op == OP_SEAL || op == OP_SEAL_B || op == OP_SEAL_RAW;
}

/* One run of the script; observes the sealed run's answers as one line. */
static void run_script(struct pc_ctx *ctx, const struct rule *r, bool sealed)
{
	struct areas ar;
	char answers[512] = "";
	make_areas(ctx, r, &ar);
	for (int i = 0; i < MAX_STEPS && r->steps[i].op != OP_END; i++) {
		const struct step *s = &r->steps[i];
		if (is_seal(s->op) && !sealed)
			continue;
		int e = do_step(ctx, &ar, s, (size_t)r->pages * ar.ps), want = sealed ? s->sealed_e : s->open_e;
		if (sealed)
			snprintf(answers + strlen(answers), sizeof(answers) - strlen(answers), "%s%s", answers[0] ? " " : "",
				 e ? pl_errno_name(e) : "0");
		if (want == NO_CHECK || (want == ANY_ERROR && e != 0))
			continue;
		/* How the system cuts and joins its mappings is its own (mseal(2) promises what a seal refuses,
		 * not how many mappings the list shows): a different count is a behaviour. */
		if (s->op == OP_VMAS) {
			PC_BEHAVIOUR(ctx, e == 0, "sealed run, step %d: expected %d mappings, saw another count", i + 1, s->arg);
			continue;
		}
		PC_CHECK(ctx, e == want, "%s run, step %d: expected %s, got %s", sealed ? "sealed" : "unsealed", i + 1,
			 want ? pl_errno_name(want) : "success", e ? pl_errno_name(e) : "success");
	}
	if (sealed)
		pc_observe(ctx, "sealed_run", "%s", answers);
}

static void run_rule(struct pc_ctx *ctx);
static struct pc_probe probes[NRULES];

/* The features a rule's steps need besides mseal: each mremap form, MADV_DONTNEED. */
static uint64_t rule_needs(const struct rule *r)
{
	uint64_t needs = PC_FB(PC_F_MSEAL);
	for (int i = 0; i < MAX_STEPS && r->steps[i].op != OP_END; i++) {
		const struct step *s = &r->steps[i];
		if (s->op == OP_REMAP)
			needs |= PC_FB(PC_F_MREMAP);
		if (s->op == OP_REMAP && (s->to == T_FREE || s->to == T_AREA_B))
			needs |= PC_FB(PC_F_MREMAP_FIXED);
		if (s->op == OP_REMAP && (s->to == T_DONTUNMAP || s->to == T_DONTUNMAP_HINT))
			needs |= PC_FB(PC_F_MREMAP_DONTUNMAP);
		if (s->op == OP_MADV && s->arg == MADV_DONTNEED)
			needs |= PC_FB(PC_F_MADV_DONTNEED);
	}
	return needs;
}

__attribute__((constructor)) static void register_rules(void)
{
	for (size_t i = 0; i < NRULES; i++) {
		probes[i] = (struct pc_probe){.id = rules[i].id, .summary = rules[i].summary, .fn = run_rule,
					      .needs = rule_needs(&rules[i])};
		pc_register(&probes[i]);
	}
}

static void run_rule(struct pc_ctx *ctx)
{
	const struct rule *r = NULL;
	for (size_t i = 0; i < NRULES && !r; i++)
		if (strcmp(rules[i].id, pc_id(ctx)) == 0)
			r = &rules[i];
	if (!r)
		pc_error(ctx, "no mseal rule is named %s", pc_id(ctx));
	run_script(ctx, r, false);
	run_script(ctx, r, true);
	pc_pass(ctx);
}
