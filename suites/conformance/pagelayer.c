/* The page layer's own contract (include/pagelab/platform.h), checked on
 * this system, fallbacks included: release_zero must read zero even where
 * madvise is refused (forced by mlock), guard/unguard, decommit/commit,
 * populate, reserve alignment, pattern mappings, residency and RSS. Each
 * probe records which implementation the capability set reports. */
#include "config.h"
#include "pagelab/check.h"
#include "pagelab/env.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pl_abi.h"

#define LEN_PAGES 64
#define SEED 21

static void observe_cap(struct pc_ctx *ctx, enum pl_op op)
{
	const struct pl_cap *c = &pl_caps()->op[op];
	/* How this system does it is shown, not compared: only what the operation did makes systems differ. */
	pc_measure(ctx, "implementation", "%s: %s", pl_impl_name(c->impl), c->via ? c->via : c->how ? c->how : "?");
	pc_measure(ctx, "native_claim", "%s", pl_verdict_name(c->verified));
	if (c->impl == PL_UNAVAILABLE)
		pc_skip_unsupported(ctx, "%s unavailable: %s", pl_op_name(op), c->how ? c->how : "no reason given");
}

static void *map_filled(struct pc_ctx *ctx, size_t len)
{
	void *p;
	PC_SETUP(ctx, pl_map_anon(len, &p));
	pc_fill(p, len, SEED);
	return p;
}

PC_PROBE_KINDS(release_zero, "pagelayer.release_zero.reads_zero", PC_PRIVATE_ANON | PC_THP,
	       "pl_release_zero: private anonymous memory reads zero afterwards")
{
	struct pc_map m;
	observe_cap(ctx, PL_OP_RELEASE_ZERO);
	pc_map_or_skip(ctx, LEN_PAGES * pl_page_size(), &m);
	pc_fill(m.addr, m.len, SEED);
	PC_CHECK(ctx, pl_release_zero(m.addr, m.len) == 0, "pl_release_zero failed");
	const char *got = pc_contents(m.addr, m.len, SEED);
	pc_observe(ctx, "contents_after", "%s", got);
	PC_CHECK(ctx, strcmp(got, "zero") == 0, "contents after pl_release_zero: %s", got);
	pc_unmap(&m);
	pc_pass(ctx);
}

PC_PROBE(release_zero_locked, "pagelayer.release_zero.fallback_mlocked",
	 "pl_release_zero reads zero on mlocked memory, where madvise(MADV_DONTNEED) is refused")
{
	size_t len = 16 * pl_page_size();
	char *p = map_filled(ctx, len);
	observe_cap(ctx, PL_OP_RELEASE_ZERO);
	pc_lock_or_skip(ctx, p, len);
	int e = pc_madvise(p, len, MADV_DONTNEED);
	pc_observe(ctx, "madvise_dontneed_on_locked", "%s", e ? pl_errno_name(e) : "accepted");
	pc_observe(ctx, "fallback_exercised", "%s", e ? "yes" : "no (madvise accepted locked memory)");
	pc_fill(p, len, SEED);
	e = pl_release_zero(p, len);
	PC_CHECK(ctx, e == 0, "pl_release_zero on locked memory returned %s", pc_strerror(e));
	const char *got = pc_contents(p, len, SEED);
	pc_observe(ctx, "contents_after", "%s", got);
	PC_CHECK(ctx, strcmp(got, "zero") == 0, "contents after pl_release_zero: %s", got);
	PC_SETUP(ctx, pc_unlock(p, len));
	PC_SETUP(ctx, pl_unmap(p, len));
	pc_pass(ctx);
}

PC_PROBE(release_zero_bad_range, "pagelayer.release_zero.rejects_unaligned",
	 "pl_release_zero refuses an unaligned address or length with EINVAL and leaves the bytes alone")
{
	size_t ps = pl_page_size(), len = 4 * ps;
	char *p = map_filled(ctx, len);
	int e1 = pl_release_zero(p + 8, ps);
	int e2 = pl_release_zero(p + ps, ps + 8);
	pc_observe(ctx, "unaligned_address", "%s", e1 ? pl_errno_name(e1) : "accepted");
	pc_observe(ctx, "unaligned_length", "%s", e2 ? pl_errno_name(e2) : "accepted");
	const char *got = pc_contents(p, len, SEED);
	PC_CHECK(ctx, e1 == EINVAL && e2 == EINVAL, "unaligned ranges returned %s and %s, not EINVAL",
		 pc_strerror(e1), pc_strerror(e2));
	PC_CHECK(ctx, strcmp(got, "old") == 0, "contents after refused calls: %s", got);
	PC_SETUP(ctx, pl_unmap(p, len));
	pc_pass(ctx);
}

PC_PROBE_KINDS(release_any, "pagelayer.release.old_or_zero", PC_ALL_KINDS,
	       "pl_release: every page reads its old bytes or zero and stays accessible")
{
	struct pc_map m;
	observe_cap(ctx, PL_OP_RELEASE);
	pc_map_or_skip(ctx, LEN_PAGES * pl_page_size(), &m);
	char *old = malloc(m.len);
	if (!old)
		pc_error(ctx, "malloc of %zu bytes failed", m.len);
	pc_fill(m.addr, m.len, SEED);
	memcpy(old, m.addr, m.len);
	int e = pl_release(m.addr, m.len);
	PC_CHECK(ctx, e == 0, "pl_release on %s memory returned %s", pc_kind_name(m.kind), pc_strerror(e));
	pc_observe(ctx, "contents_after", "%s", pc_contents(m.addr, m.len, SEED));
	PC_CHECK(ctx, pc_pages_old_or_zero(m.addr, old, m.len), "a page reads neither old bytes nor zero");
	free(old);
	pc_unmap(&m);
	pc_pass(ctx);
}

PC_PROBE(decommit_commit, "pagelayer.decommit.faults_then_commit_zero",
	 "pl_decommit makes pages fault and gives their memory back; pl_commit makes them read zero")
{
	size_t len = pc_rss_window(), rss0 = 0, rss1 = 0;
	void *p;
	observe_cap(ctx, PL_OP_DECOMMIT);
	PC_SETUP(ctx, pl_reserve(len, 0, &p));
	PC_CHECK(ctx, pl_commit(p, len) == 0, "pl_commit of reserved memory failed");
	pc_fill(p, len, SEED);
	bool known = pc_try_rss(ctx, &rss0);
	PC_CHECK(ctx, pl_decommit(p, len) == 0, "pl_decommit failed");
	known = pc_try_rss(ctx, &rss1) && known;
	size_t drop = known && rss0 > rss1 ? rss0 - rss1 : 0;
	pc_observe(ctx, "rss_after_decommit", "%s", !known ? "unobservable" : drop >= len / 4 * 3 ? "dropped" : "not dropped");
	pc_expect_fault(ctx, "access_after_decommit", p, false, PL_FAULT_OTHER);
	PC_CHECK(ctx, !known || drop >= len / 4 * 3, "RSS fell by only %zu of %zu bytes", drop, len);
	PC_CHECK(ctx, pl_commit(p, len) == 0, "pl_commit after decommit failed");
	PC_CHECK(ctx, pc_all_bytes(p, len, 0), "recommitted memory does not read zero");
	PC_SETUP(ctx, pl_unmap(p, len));
	pc_pass(ctx);
}

/* Guard two middle pages of filled memory; check faults, then unguard and check zero. */
static void guard_cycle(struct pc_ctx *ctx, char *p, size_t len)
{
	size_t ps = pl_page_size();
	char *g = p + 2 * ps;
	char *copy = malloc(len);
	if (!copy)
		pc_error(ctx, "malloc of %zu bytes failed", len);
	memcpy(copy, p, len);
	int e = pl_guard(g, 2 * ps);
	PC_CHECK(ctx, e == 0, "pl_guard returned %s", pc_strerror(e));
	int r = pc_access_faults(g, false, 0), w = pc_access_faults(g + ps, true, 1);
	pc_observe(ctx, "guard_access", "%s", r && w ? "faults" : "allowed");
	PC_CHECK(ctx, r != 0 && w != 0, "guarded page accessible (read %d, write %d)", r, w);
	e = pl_unguard(g, 2 * ps);
	PC_CHECK(ctx, e == 0, "pl_unguard returned %s", pc_strerror(e));
	PC_CHECK(ctx, pc_access_faults(g, true, 0) == 0, "unguarded page still faults");
	PC_CHECK(ctx, pc_all_bytes(g, 2 * ps, 0), "unguarded pages do not read zero");
	PC_CHECK(ctx, memcmp(p, copy, 2 * ps) == 0 && memcmp(g + 2 * ps, copy + 4 * ps, len - 4 * ps) == 0,
		 "pages around the guard changed");
	free(copy);
}

PC_PROBE(guard_unguard, "pagelayer.guard.faults_unguard_zero",
	 "pl_guard pages fault on read and write; after pl_unguard they read zero; neighbours kept")
{
	size_t len = 8 * pl_page_size();
	char *p = map_filled(ctx, len);
	observe_cap(ctx, PL_OP_GUARD);
	guard_cycle(ctx, p, len);
	PC_SETUP(ctx, pl_unmap(p, len));
	pc_pass(ctx);
}

PC_PROBE(guard_locked, "pagelayer.guard.fallback_mlocked",
	 "pl_guard / pl_unguard keep their promise on mlocked memory, where guard markers are refused")
{
	size_t len = 8 * pl_page_size();
	char *p = map_filled(ctx, len);
	observe_cap(ctx, PL_OP_GUARD);
	pc_lock_or_skip(ctx, p, len);
	guard_cycle(ctx, p, len);
	PC_SETUP(ctx, pc_unlock(p, len));
	PC_SETUP(ctx, pl_unmap(p, len));
	pc_pass(ctx);
}

/* These probes count 4 KiB pages: with THP "always" one touch makes a whole
 * huge page resident. */
static void no_thp(void *p, size_t len)
{
	(void)pc_madvise(p, len, MADV_NOHUGEPAGE); /* refused only where THP does not exist */
}

static void populate_check(struct pc_ctx *ctx, bool write)
{
	size_t len = LEN_PAGES * pl_page_size(), resident, rss0 = 0, rss1 = 0;
	void *p;
	observe_cap(ctx, PL_OP_POPULATE);
	PC_SETUP(ctx, pl_map_anon(len, &p));
	no_thp(p, len);
	bool known = pc_try_rss(ctx, &rss0);
	int e = pl_populate(p, len, write);
	PC_CHECK(ctx, e == 0, "pl_populate returned %s", pc_strerror(e));
	known = pc_try_rss(ctx, &rss1) && known;
	resident = pc_obs_resident_pages(ctx, p, len);
	pc_measure(ctx, "resident_pages_after", "%zu of %zu", resident, len / pl_page_size());
	PC_CHECK(ctx, resident == len / pl_page_size(), "%zu pages resident after pl_populate", resident);
	/* RSS is only an observation: before 6.2 Linux batched per-task RSS counters
	 * (SPLIT_RSS_COUNTING), so /proc/self/statm can lag a populate by 64 pages. */
	if (known)
		pc_measure(ctx, "rss_rise_pages", "%zu of %zu", (rss1 > rss0 ? rss1 - rss0 : 0) / pl_page_size(),
			   len / pl_page_size());
	bool zp;
	if (write && pc_try_zero_page(ctx, p, &zp)) {
		pc_observe(ctx, "first_page_is_zero_page", "%s", zp ? "yes" : "no");
		PC_CHECK(ctx, !zp, "write-populated page maps the shared zero page");
	}
	PC_CHECK(ctx, pc_all_bytes(p, len, 0), "populated memory does not read zero");
	PC_SETUP(ctx, pl_unmap(p, len));
	pc_pass(ctx);
}

PC_PROBE(populate_read, "pagelayer.populate.read_resident",
	 "pl_populate(read) makes every page resident; memory reads zero")
{
	populate_check(ctx, false);
}

PC_PROBE(populate_write, "pagelayer.populate.write_resident",
	 "pl_populate(write) makes every page resident and raises RSS; memory reads zero")
{
	populate_check(ctx, true);
}

/* Alignments an allocator asks for: a page, 64 KiB, a PMD huge page, 1 GiB (address space only). */
static const size_t reserve_align[] = {0, 64 << 10, 2 << 20, (size_t)1 << 30};

PC_PROBE(reserve_alignment, "pagelayer.reserve.alignment",
	 "pl_reserve returns address space aligned as asked, with no access")
{
	size_t len = 4 * pl_page_size();
	observe_cap(ctx, PL_OP_RESERVE);
	for (size_t i = 0; i < sizeof(reserve_align) / sizeof(reserve_align[0]); i++) {
		size_t a = reserve_align[i] ? reserve_align[i] : pl_page_size();
		void *p;
		int e = pl_reserve(len, reserve_align[i], &p);
		PC_CHECK(ctx, e == 0, "pl_reserve(align %zu) returned %s", a, pc_strerror(e));
		bool aligned = ((uintptr_t)p & (a - 1)) == 0; /* no '%' inside PC_CHECK: it becomes a format */
		PC_CHECK(ctx, aligned, "pl_reserve(align %zu) gave %p", a, p);
		int sig = pc_access_faults(p, false, 0);
		PC_CHECK(ctx, sig != 0, "reserved memory (align %zu) is readable", a);
		PC_SETUP(ctx, pl_unmap(p, len));
	}
	pc_observe(ctx, "alignments", "page 64K 2M 1G");
	pc_pass(ctx);
}

PC_PROBE(reserve_einval, "pagelayer.reserve.bad_arguments_einval",
	 "pl_reserve refuses length 0, an unaligned length and a non-power-of-two alignment with EINVAL")
{
	void *p;
	size_t ps = pl_page_size();
	PC_CHECK(ctx, pl_reserve(0, 0, &p) == EINVAL, "length 0 accepted");
	PC_CHECK(ctx, pl_reserve(ps + 1, 0, &p) == EINVAL, "unaligned length accepted");
	PC_CHECK(ctx, pl_reserve(ps, 3 * ps, &p) == EINVAL, "alignment 3 pages accepted");
	pc_observe(ctx, "errno", "EINVAL");
	pc_pass(ctx);
}

#define PATTERN 0xc3
#define POKE_PAGE 3

/* Map a pattern region of the mode, or skip when the mode is not on offer here. */
static char *map_pattern_or_skip(struct pc_ctx *ctx, size_t len, enum pl_pattern_mode mode)
{
	void *p;
	enum pl_pattern_mode used;
	int e = pl_map_pattern(len, PATTERN, mode, &p, &used);
	if (e == ENOTSUP)
		pc_skip_unsupported(ctx, "pattern mode %s not available on this system", pl_pattern_mode_name(mode));
	PC_CHECK(ctx, e == 0, "pl_map_pattern(%s) returned %s", pl_pattern_mode_name(mode), pc_strerror(e));
	pc_observe(ctx, "mode_used", "%s", pl_pattern_mode_name(used));
	return p;
}

static void pattern_check(struct pc_ctx *ctx, enum pl_pattern_mode mode)
{
	size_t ps = pl_page_size(), len = 16 * ps;
	observe_cap(ctx, PL_OP_MAP_PATTERN);
	char *a = map_pattern_or_skip(ctx, len, mode);
	char *b = map_pattern_or_skip(ctx, len, mode);
	PC_CHECK(ctx, pc_all_bytes(a, len, PATTERN), "fresh pattern memory does not read the pattern");
	a[POKE_PAGE * ps + 5] = 0x11;
	/* The write is private: the rest of its page, other pages and other mappings keep the pattern. */
	PC_CHECK(ctx, a[POKE_PAGE * ps + 5] == 0x11, "the write did not stick");
	a[POKE_PAGE * ps + 5] = (char)PATTERN;
	PC_CHECK(ctx, pc_all_bytes(a, len, PATTERN), "a write changed other bytes of the mapping");
	PC_CHECK(ctx, pc_all_bytes(b, len, PATTERN), "a write to one pattern mapping showed in another");
	PC_SETUP(ctx, pl_unmap_pattern(a, len));
	PC_SETUP(ctx, pl_unmap_pattern(b, len));
	pc_pass(ctx);
}

PC_PROBE(pattern_auto, "pagelayer.map_pattern.reads_pattern/auto",
	 "pl_map_pattern(auto): pages read the byte until written; writes stay private")
{
	pattern_check(ctx, PL_PATTERN_AUTO);
}

PC_PROBE(pattern_native, "pagelayer.map_pattern.reads_pattern/native",
	 "pl_map_pattern(native reference pages): pages read the byte; writes stay private")
{
	pattern_check(ctx, PL_PATTERN_NATIVE);
}

PC_PROBE(pattern_uffd, "pagelayer.map_pattern.reads_pattern/uffd",
	 "pl_map_pattern(userfaultfd): pages read the byte; writes stay private")
{
	pattern_check(ctx, PL_PATTERN_UFFD);
}

PC_PROBE(pattern_uffd_full, "pagelayer.map_pattern.reads_pattern/uffd_full",
	 "pl_map_pattern(userfaultfd serving kernel-mode faults): pages read the byte; writes stay private")
{
	pattern_check(ctx, PL_PATTERN_UFFD_FULL);
}

/* The system itself writes into fresh pattern memory (read(2) from a pipe): it takes the fault. */
static void pattern_syscall_check(struct pc_ctx *ctx, enum pl_pattern_mode mode)
{
	size_t ps = pl_page_size(), len = 8 * ps;
	enum pl_pattern_mode used;
	char *p, msg[64];
	int e = pl_map_pattern(len, PATTERN, mode, (void **)&p, &used);
	if (e == ENOTSUP)
		pc_skip_unsupported(ctx, "pattern mode %s not available on this system", pl_pattern_mode_name(mode));
	PC_CHECK(ctx, e == 0, "pl_map_pattern(%s) returned %s", pl_pattern_mode_name(mode), pc_strerror(e));
	pc_observe(ctx, "mode_used", "%s", pl_pattern_mode_name(used));
	memset(msg, 0x5a, sizeof(msg));
	int re = pc_system_write(p + 4 * ps + 16, msg, sizeof(msg));
	pc_observe(ctx, "read", "%s", re ? pl_errno_name(re) : "ok");
	if (re && used == PL_PATTERN_UFFD)
		pc_skip_prerequisite(ctx, "user-mode-only userfaultfd (no privilege for a full one): faults inside "
				     "system calls get %s", pl_errno_name(re));
	PC_CHECK(ctx, re == 0, "a system call's write into fresh pattern memory (%s) failed: %s",
		 pl_pattern_mode_name(used), pc_strerror(re));
	PC_CHECK(ctx, memcmp(p + 4 * ps + 16, msg, sizeof(msg)) == 0, "the bytes read(2) wrote are not there");
	PC_CHECK(ctx, pc_all_bytes(p + 4 * ps, 16, PATTERN) && pc_all_bytes(p, 4 * ps, PATTERN),
		 "read(2) disturbed the pattern around it");
	PC_SETUP(ctx, pl_unmap_pattern(p, len));
	pc_pass(ctx);
}

PC_PROBE(pattern_syscall_auto, "pagelayer.map_pattern.syscall_fault/auto",
	 "pl_map_pattern(auto): read(2) into fresh pattern memory succeeds")
{
	pattern_syscall_check(ctx, PL_PATTERN_AUTO);
}

PC_PROBE(pattern_syscall_uffd_full, "pagelayer.map_pattern.syscall_fault/uffd_full",
	 "pl_map_pattern(uffd_full): read(2) into fresh pattern memory succeeds")
{
	pattern_syscall_check(ctx, PL_PATTERN_UFFD_FULL);
}

PC_PROBE(pattern_syscall_uffd, "pagelayer.map_pattern.syscall_fault/uffd",
	 "pl_map_pattern(uffd): read(2) into fresh pattern memory succeeds unless the userfaultfd is user-mode only")
{
	pattern_syscall_check(ctx, PL_PATTERN_UFFD);
}

struct fork_pattern {
	char *p;
	size_t len;
};

/* In the child: after one pl_map_pattern call the inherited mapping reads the pattern again. */
static int child_pattern(void *arg)
{
	struct fork_pattern *f = arg;
	void *q;
	enum pl_pattern_mode used;
	if (pl_map_pattern(pl_page_size(), PATTERN, PL_PATTERN_UFFD_FULL, &q, &used) != 0)
		return 2;
	if (!pc_all_bytes(f->p, f->len, PATTERN))
		return 1;
	return pl_unmap_pattern(q, pl_page_size()) == 0 ? 0 : 3;
}

PC_PROBE(pattern_fork_child, "pagelayer.map_pattern.fork_child/uffd_full",
	 "a forked child's inherited userfaultfd pattern mapping reads the byte after its next pl_map_pattern")
{
	struct fork_pattern f = {.len = 8 * pl_page_size()};
	enum pl_pattern_mode used;
	int e = pl_map_pattern(f.len, PATTERN, PL_PATTERN_UFFD_FULL, (void **)&f.p, &used);
	if (e == ENOTSUP)
		pc_skip_unsupported(ctx, "pattern mode uffd_full not available on this system");
	PC_CHECK(ctx, e == 0, "pl_map_pattern(uffd_full) returned %s", pc_strerror(e));
	int st = pc_in_child(child_pattern, &f);
	pc_observe(ctx, "child_status", "%d", st);
	PC_CHECK(ctx, st != -1, "fork failed: %s", pc_strerror(errno));
	PC_CHECK(ctx, st != 2, "pl_map_pattern failed in the child");
	PC_CHECK(ctx, st == 0, "the child's inherited pattern mapping does not read the pattern (status %d)", st);
	PC_CHECK(ctx, pc_all_bytes(f.p, f.len, PATTERN), "the parent's pattern mapping changed");
	PC_SETUP(ctx, pl_unmap_pattern(f.p, f.len));
	pc_pass(ctx);
}

PC_PROBE(pattern_memset, "pagelayer.map_pattern.reads_pattern/memset",
	 "pl_map_pattern(memset): pages read the byte; writes stay private")
{
	pattern_check(ctx, PL_PATTERN_MEMSET);
}

PC_PROBE(caps_consistent, "pagelayer.caps.consistent",
	 "every capability names its system call (native, emulated) or why it is unavailable")
{
	const struct pl_caps *c = pl_caps();
	pc_observe(ctx, "platform", "%s", c->platform ? c->platform : "?");
	pc_measure(ctx, "granularity", "%zu", c->granularity);
	pc_observe(ctx, "partial_unmap", "%s", c->partial_unmap ? "yes" : "no");
	PC_CHECK(ctx, c->page_size == pl_page_size(), "caps page size %zu != %zu", c->page_size, pl_page_size());
	PC_CHECK(ctx, c->granularity >= c->page_size && c->granularity % c->page_size == 0,
		 "granularity %zu is not a multiple of the page size", c->granularity);
	for (int op = 0; op < PL_OP_COUNT; op++) {
		const struct pl_cap *k = &c->op[op];
		pc_observe(ctx, pl_op_name((enum pl_op)op), "%s: %s", pl_impl_name(k->impl),
			   k->via ? k->via : k->how ? k->how : "?");
		PC_CHECK(ctx, k->impl == PL_UNAVAILABLE ? k->how != NULL : k->via != NULL,
			 "%s: %s without %s", pl_op_name((enum pl_op)op), pl_impl_name(k->impl),
			 k->impl == PL_UNAVAILABLE ? "a reason" : "a system call");
	}
	pc_pass(ctx);
}

/* A native call that returned success at start-up without doing what its
 * guarantee says is this system's finding; the page layer then emulates it. */
PC_PROBE(caps_honoured, "pagelayer.caps.claims_honoured",
	 "every operation the system does natively was seen to keep its guarantee at start-up")
{
	const struct pl_caps *c = pl_caps();
	const char *broken = NULL;
	for (int op = 0; op < PL_OP_COUNT; op++) {
		const struct pl_cap *k = &c->op[op];
		pc_observe(ctx, pl_op_name((enum pl_op)op), "%s", pl_verdict_name(k->verified));
		if (k->verified == PL_NOT_HONOURED && !broken)
			broken = pc_fmt("%s: %s; the page layer uses %s instead", pl_op_name((enum pl_op)op),
					k->claimed ? k->claimed : "not honoured", k->via ? k->via : "its emulation");
	}
	if (broken)
		pc_fail(ctx, "%s", broken);
	pc_pass(ctx);
}
