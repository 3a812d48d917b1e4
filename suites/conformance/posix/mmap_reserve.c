/* FreeBSD's reservation flags for mmap, as FreeBSD's own tests check them:
 * MAP_GUARD makes an entry with nothing behind it (no memory, no access,
 * never chosen for a mapping without MAP_FIXED, replaced by one with it);
 * MAP_FIXED|MAP_EXCL places a mapping at an address only where nothing is
 * mapped. The probes run wherever the headers name the flags (pl_abi.h gives
 * Linux the values) and skip as unsupported where the running system refuses
 * them as it refuses an unknown request, or ignores the bit. */
#include "config.h"
#include "pagelab/check.h"
#include "pagelab/env.h"

#include <errno.h>
#include <sys/mman.h>

#include "pl_abi.h"

#define GUARD_PAGES 16
#define SEED 41

#ifdef MAP_GUARD
/* A MAP_GUARD entry of `pages` pages, or a skip where the system does not know the flag. */
static char *map_guard(struct pc_ctx *ctx, size_t pages)
{
	size_t len = pages * pl_page_size();
	void *p = mmap(NULL, len, PROT_NONE, MAP_GUARD, -1, 0);
	if (p == MAP_FAILED) {
		int e = errno;
		/* The unknown request of the same shape (no type, no descriptor): Linux checks the
		 * descriptor before the flags and answers EBADF to both. */
		void *u = mmap(NULL, len, PROT_NONE, PL_ABSENT_FLAG, -1, 0);
		int unknown = u == MAP_FAILED ? errno : 0;
		if (u != MAP_FAILED && munmap(u, len) != 0)
			pc_error(ctx, "munmap: %s", pc_strerror(errno));
		pc_refusal(ctx, "mmap(MAP_GUARD)", e, unknown);
	}
	return p;
}
#endif

PC_PROBE(guard_faults, "mmap.guard.access_faults",
	 "a MAP_GUARD entry faults on every access and is removed by munmap")
{
#ifdef MAP_GUARD
	size_t len = GUARD_PAGES * pl_page_size();
	char *g = map_guard(ctx, GUARD_PAGES);
	pc_expect_fault(ctx, "read_fault", g, false, PL_FAULT_OTHER);
	pc_expect_fault(ctx, "write_fault", g + len - 1, true, PL_FAULT_OTHER);
	PC_CHECK(ctx, munmap(g, len) == 0, "munmap of a guard entry failed: %s", pc_strerror(errno));
	pc_pass(ctx);
#else
	pc_skip_unsupported(ctx, "no MAP_GUARD in this system's headers");
#endif
}

PC_PROBE(guard_prot_none_only, "mmap.guard.refuses_access_rights",
	 "MAP_GUARD with any access right, or with a mapping type, is refused (EINVAL)")
{
#ifdef MAP_GUARD
	size_t len = GUARD_PAGES * pl_page_size();
	char *g = map_guard(ctx, GUARD_PAGES);
	PC_CHECK(ctx, munmap(g, len) == 0, "munmap of a guard entry failed: %s", pc_strerror(errno));
	void *r = mmap(NULL, len, PROT_READ, MAP_GUARD, -1, 0);
	int er = r == MAP_FAILED ? errno : 0;
	void *t = mmap(NULL, len, PROT_NONE, MAP_GUARD | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int et = t == MAP_FAILED ? errno : 0;
	pc_observe(ctx, "with_prot_read", "%s", er ? pl_errno_name(er) : "accepted");
	pc_observe(ctx, "with_map_private", "%s", et ? pl_errno_name(et) : "accepted");
	if (!er)
		(void)munmap(r, len);
	if (!et)
		(void)munmap(t, len);
	PC_CHECK(ctx, er == EINVAL, "MAP_GUARD with PROT_READ: %s, expected EINVAL", er ? pc_strerror(er) : "accepted");
	PC_CHECK(ctx, et == EINVAL, "MAP_GUARD with MAP_PRIVATE|MAP_ANONYMOUS: %s, expected EINVAL",
		 et ? pc_strerror(et) : "accepted");
	pc_pass(ctx);
#else
	pc_skip_unsupported(ctx, "no MAP_GUARD in this system's headers");
#endif
}

PC_PROBE(guard_not_chosen, "mmap.guard.not_chosen_without_fixed",
	 "a mapping asked for at a guard's address without MAP_FIXED lands outside the guard")
{
#ifdef MAP_GUARD
	size_t ps = pl_page_size(), len = GUARD_PAGES * ps;
	char *g = map_guard(ctx, GUARD_PAGES);
	char *m = mmap(g + ps, ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		pc_error(ctx, "mmap with a hint: %s", pc_strerror(errno));
	bool inside = m >= g && m < g + len;
	pc_observe(ctx, "placed_inside_guard", "%s", inside ? "yes" : "no");
	PC_CHECK(ctx, munmap(m, ps) == 0 && munmap(g, len) == 0, "munmap failed: %s", pc_strerror(errno));
	PC_CHECK(ctx, !inside, "a mapping without MAP_FIXED was placed inside a guard entry");
	pc_pass(ctx);
#else
	pc_skip_unsupported(ctx, "no MAP_GUARD in this system's headers");
#endif
}

PC_PROBE(guard_replaced, "mmap.guard.replaced_by_fixed",
	 "MAP_FIXED memory over part of a guard reads zero and keeps writes; the rest of the guard still faults")
{
#ifdef MAP_GUARD
	size_t ps = pl_page_size(), len = GUARD_PAGES * ps;
	char *g = map_guard(ctx, GUARD_PAGES);
	char *m = mmap(g + ps, 2 * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	if (m == MAP_FAILED)
		pc_fail_refused(ctx, "MAP_FIXED over a guard entry: %s", pc_strerror(errno));
	PC_CHECK(ctx, m == g + ps, "MAP_FIXED over a guard landed at %p, not %p", (void *)m, (void *)(g + ps));
	PC_CHECK(ctx, pc_all_bytes(m, 2 * ps, 0), "fresh memory over a guard does not read zero");
	pc_fill(m, 2 * ps, SEED);
	PC_CHECK(ctx, pc_check_fill(m, 2 * ps, SEED), "memory over a guard lost a write");
	pc_expect_fault(ctx, "guard_below", g, false, PL_FAULT_OTHER);
	pc_expect_fault(ctx, "guard_above", g + 3 * ps, false, PL_FAULT_OTHER);
	PC_CHECK(ctx, munmap(g, len) == 0, "munmap failed: %s", pc_strerror(errno));
	pc_pass(ctx);
#else
	pc_skip_unsupported(ctx, "no MAP_GUARD in this system's headers");
#endif
}

PC_PROBE(excl_occupied, "mmap.excl.refuses_occupied",
	 "MAP_FIXED|MAP_EXCL over a mapping is refused and the mapping keeps its bytes")
{
#ifdef MAP_EXCL
	size_t ps = pl_page_size();
	char *b;
	PC_SETUP(ctx, pl_map_anon(4 * ps, (void **)&b));
	pc_fill(b, 4 * ps, SEED);
	char *m = mmap(b + ps, ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_EXCL, -1, 0);
	int e = m == MAP_FAILED ? errno : 0;
	pc_observe(ctx, "errno", "%s", e ? pl_errno_name(e) : "accepted");
	if (!e) {
		bool kept = pc_check_fill(b, 4 * ps, SEED);
		pc_observe(ctx, "old_mapping", "%s", kept ? "kept" : "replaced");
		/* A system that does not know the flag maps over the old pages as plain MAP_FIXED does. */
		if (!kept)
			pc_skip_unsupported(ctx, "MAP_EXCL was ignored (the old mapping was replaced), as this system "
					    "ignores an mmap flag it does not know");
	}
	PC_CHECK(ctx, e != 0, "MAP_FIXED|MAP_EXCL over a mapping returned success");
	PC_CHECK(ctx, pc_check_fill(b, 4 * ps, SEED), "the refused request changed the old mapping");
	PC_CHECK(ctx, pl_unmap(b, 4 * ps) == 0, "munmap failed");
	pc_pass(ctx);
#else
	pc_skip_unsupported(ctx, "no MAP_EXCL in this system's headers");
#endif
}

PC_PROBE(excl_free, "mmap.excl.places_in_a_hole",
	 "MAP_FIXED|MAP_EXCL at an address where nothing is mapped places the mapping there")
{
#ifdef MAP_EXCL
	size_t ps = pl_page_size();
	char *b;
	PC_SETUP(ctx, pl_map_anon(3 * ps, (void **)&b));
	PC_SETUP(ctx, pl_unmap(b + ps, ps));
	char *m = mmap(b + ps, ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_EXCL, -1, 0);
	if (m == MAP_FAILED)
		pc_refusal(ctx, "mmap(MAP_FIXED|MAP_EXCL) into a hole", errno, pc_unknown_map_type_errno());
	PC_CHECK(ctx, m == b + ps, "MAP_FIXED|MAP_EXCL landed at %p, not %p", (void *)m, (void *)(b + ps));
	PC_CHECK(ctx, pc_all_bytes(m, ps, 0), "the new page does not read zero");
	PC_CHECK(ctx, pl_unmap(b, 3 * ps) == 0, "munmap failed");
	pc_pass(ctx);
#else
	pc_skip_unsupported(ctx, "no MAP_EXCL in this system's headers");
#endif
}
