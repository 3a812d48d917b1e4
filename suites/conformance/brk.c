/* brk: the program break, both through libc (brk/sbrk) and through the raw
 * system call, since libc may cache the break or refuse to move it (musl's brk
 * always fails) while the kernel would. Each probe puts the break back where it
 * found it: libc's malloc may own the memory below it. No malloc between
 * measurements. */
#include "config.h"
#include "pagelab/check.h"
#include "pagelab/env.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* One way of moving the break: get it, or set it to exactly `want` (0 or errno). */
struct brk_way {
	const char *name;
	bool libc;
	int (*get)(char **cur);
	int (*set)(char *want);
};

static int libc_get(char **cur)
{
	return pc_sbrk(0, (void **)cur);
}

static int libc_set(char *want)
{
	return pc_brk(want);
}
static const struct brk_way libc_way = {"libc", true, libc_get, libc_set};

static int raw_get(char **cur)
{
	return pl_raw_break(NULL, (void **)cur);
}

/* The kernel returns the new break on success and the old one on failure: it
 * reports no errno, so a refusal is EAGAIN here ("the break did not move"). */
static int raw_set(char *want)
{
	void *now;
	int e = pl_raw_break(want, &now);
	return e ? e : now == want ? 0 : EAGAIN;
}
static const struct brk_way raw_way = {"syscall", false, raw_get, raw_set};

/* A break far beyond any user address space: every system must refuse it. */
static char *absurd_break(void)
{
	size_t ps = pl_page_size();
	return (char *)((UINTPTR_MAX & ~(uintptr_t)(ps - 1)) - 16 * ps);
}

/* Does libc refuse a move the system would make? Where the kernel's break can be
 * asked directly, it is; elsewhere a libc that answers an ordinary move as it
 * answers an impossible one has brk turned off (musl does). Puts the break back. */
static bool libc_brk_disabled(int e)
{
	char *cur;
	if (raw_get(&cur) == 0) {
		if (raw_set(cur + pl_page_size()) != 0)
			return false;
		return raw_set(cur) == 0;
	}
	return pc_brk(absurd_break()) == e;
}

static char *page_up(char *p)
{
	size_t ps = pl_page_size();
	return (char *)(((uintptr_t)p + ps - 1) & ~(uintptr_t)(ps - 1));
}

/* Where a probe started: the break found, and the next page boundary above it. */
struct brk_start {
	char *orig;
	char *base;
};

/* Move the break to base + pages (up or down); skip when libc refuses what the kernel allows. */
static void move_to(struct pc_ctx *ctx, const struct brk_way *w, const struct brk_start *s, size_t pages)
{
	char *want = s->base + pages * pl_page_size(), *now;
	int e = w->set(want);
	if (e == ENOMEM && w->libc && libc_brk_disabled(e))
		pc_skip_unsupported(ctx, "libc's brk() refuses an ordinary move (ENOMEM) that the system would make: "
			"this libc disables brk (musl does)");
	PC_CHECK(ctx, e == 0, "%s brk to %zu pages above the start failed: %s", w->name, pages, pc_strerror(e));
	PC_SETUP(ctx, w->get(&now));
	PC_CHECK(ctx, now == want, "the break is %p after setting it to %p", (void *)now, (void *)want);
}

static const struct brk_way *way_or_skip(struct pc_ctx *ctx, bool libc)
{
	char *cur;
	int e = libc ? libc_get(&cur) : raw_get(&cur);
	if (e == ENOSYS || e == ENOTSUP)
		pc_skip_unsupported(ctx, "%s: %s", libc ? "no sbrk/brk in this libc" : "no raw break system call here",
				    pl_errno_name(e));
	return libc ? &libc_way : &raw_way;
}

/* Record the break and move it up to the next page boundary. */
static void begin(struct pc_ctx *ctx, const struct brk_way *w, struct brk_start *s)
{
	PC_SETUP(ctx, w->get(&s->orig));
	s->base = page_up(s->orig);
	move_to(ctx, w, s, 0);
}

/* Put the break back where the probe found it, then pass. */
static PC_NORETURN void restore_and_pass(struct pc_ctx *ctx, const struct brk_way *w, const struct brk_start *s)
{
	PC_SETUP(ctx, w->set(s->orig));
	pc_pass(ctx);
}

/* Do writes to each of `pages` pages from p work (0) or fault? */
static bool pages_writable(char *p, size_t pages)
{
	for (size_t i = 0; i < pages; i++)
		if (pc_access_faults(p + i * pl_page_size(), true, 0x33) != 0)
			return false;
	return true;
}

static void probe_grow(struct pc_ctx *ctx, bool libc)
{
	const struct brk_way *w = way_or_skip(ctx, libc);
	struct brk_start s;
	begin(ctx, w, &s);
	move_to(ctx, w, &s, 4);
	bool zero = pc_all_bytes(s.base, 4 * pl_page_size(), 0);
	bool writable = pages_writable(s.base, 4);
	pc_observe(ctx, "new_pages", "%s", zero ? "zero" : "nonzero");
	PC_CHECK(ctx, zero, "memory from growing the break is not zero");
	PC_CHECK(ctx, writable, "memory from growing the break is not writable");
	restore_and_pass(ctx, w, &s);
}

static void probe_shrink(struct pc_ctx *ctx, bool libc)
{
	const struct brk_way *w = way_or_skip(ctx, libc);
	struct brk_start s;
	size_t ps = pl_page_size();
	begin(ctx, w, &s);
	move_to(ctx, w, &s, 4);
	pc_fill(s.base, ps, 1);
	move_to(ctx, w, &s, 1);
	int sig = pc_access_faults(s.base + ps, false, 0);
	int last = pc_access_faults(s.base + 4 * ps - 1, false, 0);
	pc_observe(ctx, "released_pages", "%s", sig && last ? "fault" : "accessible");
	PC_CHECK(ctx, pc_check_fill(s.base, ps, 1), "the page still below the break lost its contents");
	PC_CHECK(ctx, sig > 0 && last > 0, "pages above the lowered break are still accessible");
	restore_and_pass(ctx, w, &s);
}

/* Shrink into the middle of a page, grow again: whole pages come back zero. */
static void probe_regrow(struct pc_ctx *ctx, bool libc)
{
	const struct brk_way *w = way_or_skip(ctx, libc);
	struct brk_start s;
	size_t ps = pl_page_size(), half = ps / 2;
	begin(ctx, w, &s);
	move_to(ctx, w, &s, 4);
	pc_fill(s.base, half, 2);
	pc_fill(s.base + half, 4 * ps - half, 3);
	int e = w->set(s.base + half);
	PC_CHECK(ctx, e == 0, "lowering the break into a page failed: %s", pc_strerror(e));
	move_to(ctx, w, &s, 4);
	const char *partial = pc_contents(s.base + half, ps - half, 3);
	bool whole_zero = pc_all_bytes(s.base + ps, 3 * ps, 0);
	pc_observe(ctx, "pages_after_regrow", "%s", whole_zero ? "zero" : "nonzero");
	pc_observe(ctx, "partial_page_after_regrow", "%s", partial);
	PC_CHECK(ctx, pc_check_fill(s.base, half, 2), "bytes that stayed below the break changed");
	PC_CHECK(ctx, whole_zero, "whole pages given back and regrown do not read zero");
	PC_CHECK(ctx, strcmp(partial, "old") == 0 || strcmp(partial, "zero") == 0,
		 "the rest of the partly kept page reads %s, expected old or zero", partial);
	restore_and_pass(ctx, w, &s);
}

static void probe_absurd(struct pc_ctx *ctx, bool libc)
{
	const struct brk_way *w = way_or_skip(ctx, libc);
	char *before, *after;
	PC_SETUP(ctx, w->get(&before));
	int e = w->set(absurd_break());
	PC_SETUP(ctx, w->get(&after));
	/* The raw system call has no errno: only "refused" and where the break is can be seen. */
	pc_observe(ctx, w->libc ? "errno" : "result", "%s", !e ? "success" : w->libc ? pl_errno_name(e) : "refused");
	pc_observe(ctx, "break_after", "%s", after == before ? "unchanged" : "moved");
	if (w->libc)
		PC_CHECK(ctx, e == ENOMEM, "brk to %p: expected ENOMEM, got %s", (void *)absurd_break(),
			 e ? pc_strerror(e) : "success");
	else
		PC_CHECK(ctx, e != 0, "brk to %p was accepted", (void *)absurd_break());
	PC_CHECK(ctx, after == before, "a refused brk moved the break from %p to %p", (void *)before, (void *)after);
	pc_pass(ctx);
}

static void probe_unaligned(struct pc_ctx *ctx, bool libc)
{
	const struct brk_way *w = way_or_skip(ctx, libc);
	struct brk_start s;
	size_t ps = pl_page_size();
	begin(ctx, w, &s);
	char *want = s.base + ps + 123, *now;
	int e = w->set(want);
	PC_CHECK(ctx, e == 0, "brk to an address inside a page failed: %s", pc_strerror(e));
	PC_SETUP(ctx, w->get(&now));
	int rest = pc_access_faults(want, true, 1);
	pc_observe(ctx, "break_reported", "%s", now == want ? "exact" : now == page_up(want) ? "rounded_up" : "other");
	pc_observe(ctx, "rest_of_last_page", "%s", rest ? "faults" : "accessible");
	PC_CHECK(ctx, now == want, "the break reads %p after setting it to %p", (void *)now, (void *)want);
	PC_CHECK(ctx, pages_writable(s.base, 1) && pc_access_faults(want - 1, true, 1) == 0,
		 "memory below an unaligned break is not writable");
	restore_and_pass(ctx, w, &s);
}

static void probe_below_start(struct pc_ctx *ctx, bool libc)
{
	const struct brk_way *w = way_or_skip(ctx, libc);
	uintptr_t start_brk = pc_obs_break_start(ctx);
	char *before, *after;
	PC_SETUP(ctx, w->get(&before));
	int e = w->set((char *)start_brk - 16 * pl_page_size());
	PC_SETUP(ctx, w->get(&after));
	pc_observe(ctx, "result", "%s", !e ? "success" : w->libc ? pl_errno_name(e) : "refused");
	pc_observe(ctx, "break_after", "%s", after == before ? "unchanged" : "moved");
	PC_CHECK(ctx, (uintptr_t)after >= start_brk, "the break went below its start: %p < %p",
		 (void *)after, (void *)start_brk);
	PC_CHECK(ctx, after == before || e == 0, "a refused brk moved the break");
	if (after != before)
		PC_SETUP(ctx, w->set(before));
	pc_pass(ctx);
}

PC_PROBE(libc_sbrk_increment, "brk.libc.sbrk_increment",
	 "sbrk(+n) returns the old break and moves it by n; sbrk(-n) moves it back")
{
	intptr_t n = (intptr_t)(4 * pl_page_size());
	char *orig, *up, *mid, *down, *end;
	PC_SETUP(ctx, pc_sbrk(0, (void **)&orig));
	int e = pc_sbrk(n, (void **)&up);
	if (e == ENOMEM && libc_brk_disabled(ENOMEM))
		pc_skip_unsupported(ctx, "libc's sbrk() refuses to grow (ENOMEM) where the system would: "
			"this libc disables brk (musl does)");
	PC_CHECK(ctx, e == 0, "sbrk(+%ld) failed: %s", (long)n, pc_strerror(e));
	PC_SETUP(ctx, pc_sbrk(0, (void **)&mid));
	e = pc_sbrk(-n, (void **)&down);
	PC_CHECK(ctx, e == 0, "sbrk(-%ld) failed: %s", (long)n, pc_strerror(e));
	PC_SETUP(ctx, pc_sbrk(0, (void **)&end));
	pc_observe(ctx, "sbrk_plus_returns", "%s", up == orig ? "old_break" : "other");
	pc_observe(ctx, "sbrk_minus_returns", "%s", down == mid ? "old_break" : "other");
	PC_CHECK(ctx, up == orig && mid == orig + n, "sbrk(+n) returned %p and moved the break %p -> %p",
		 (void *)up, (void *)orig, (void *)mid);
	PC_CHECK(ctx, down == mid && end == orig, "sbrk(-n) returned %p and moved the break %p -> %p",
		 (void *)down, (void *)mid, (void *)end);
	pc_pass(ctx);
}

#ifdef HAVE_END_SYMBOL
extern char end; /* the end of .bss: a symbol Unix linkers have always defined */
static bool bss_end(uintptr_t *at)
{
	*at = (uintptr_t)&end;
	return true;
}
#else
static bool bss_end(uintptr_t *at) /* PE linkers define no such symbol */
{
	*at = 0;
	return false;
}
#endif

PC_PROBE_NEEDS(start_layout, "brk.start.after_exec", PC_FB(PC_F_BRK),
	       "the break set up at exec starts after the end of .bss; alignment and gap are observed")
{
	uintptr_t start_brk = pc_obs_break_start(ctx);
	char *cur;
	if (raw_get(&cur) != 0)
		pc_skip_unsupported(ctx, "no raw break system call on this system");
	uintptr_t bss;
	if (!bss_end(&bss))
		pc_skip_unsupported(ctx, "the linker defines no end-of-.bss symbol (end)");
	pc_observe(ctx, "start_brk_page_aligned", "%s", start_brk % pl_page_size() ? "no" : "yes");
	pc_measure(ctx, "gap_after_bss_bytes", "%llu", (unsigned long long)(start_brk - bss));
	pc_measure(ctx, "moved_before_probe_bytes", "%llu", (unsigned long long)((uintptr_t)cur - start_brk));
	PC_CHECK(ctx, start_brk >= bss, "the break starts at %p, inside .bss (ends %p)",
		 (void *)start_brk, (void *)bss);
	PC_CHECK(ctx, (uintptr_t)cur >= start_brk, "the current break %p is below its start", (void *)cur);
	pc_pass(ctx);
}

/* Each behaviour twice: through libc's brk/sbrk and through the raw system call. */
#define BRK_PROBES(fn, name, text)                                               \
	PC_PROBE(libc_##fn, "brk.libc." name, text " (libc brk/sbrk)") { fn(ctx, true); } \
	PC_PROBE_NEEDS(raw_##fn, "brk.syscall." name, PC_FB(PC_F_BRK), text " (raw system call)") { fn(ctx, false); }

BRK_PROBES(probe_grow, "grow", "raising the break gives zeroed, writable memory")
BRK_PROBES(probe_shrink, "shrink", "lowering the break keeps what stays below and unmaps the rest")
BRK_PROBES(probe_regrow, "regrow_zero", "pages given back by lowering the break read zero when regrown")
BRK_PROBES(probe_absurd, "failure_unchanged", "a break beyond the address space fails with ENOMEM and leaves the break alone")
BRK_PROBES(probe_unaligned, "unaligned_break", "the break can be set inside a page and reads back exactly")
BRK_PROBES(probe_below_start, "below_start", "the break never moves below where it started")

PC_PROBE_NEEDS(brk_shrink_over_readonly, "brk.syscall.shrink_over_readonly_part", PC_FB(PC_F_BRK),
	       "the break grown by two pages, the new part made read-only, then shrunk back: it moves and the part is gone")
{
	void *start, *now;
	size_t ps = pl_page_size();
	int e = pl_raw_break(NULL, &start);
	if (e == ENOTSUP || e == ENOSYS)
		pc_skip_unsupported(ctx, "no program break system call on this system: %s", pl_errno_name(e));
	PC_SETUP(ctx, e);
	char *base = (char *)(((uintptr_t)start + ps - 1) & ~(uintptr_t)(ps - 1));
	PC_SETUP(ctx, pl_raw_break(base + 3 * ps, &now));
	if (now != base + 3 * ps)
		pc_skip_prerequisite(ctx, "the break cannot grow here");
	PC_SETUP(ctx, pl_protect(base + ps, ps, PL_PROT_READ));
	PC_SETUP(ctx, pl_raw_break(start, &now));
	pc_observe(ctx, "break_after_shrink", "%s", now == start ? "moved back" : "stayed");
	PC_CHECK(ctx, now == start, "the break did not shrink back over the read-only part");
	pc_expect_fault(ctx, "former_heap", base + ps, false, PL_FAULT_UNMAPPED);
	pc_pass(ctx);
}
