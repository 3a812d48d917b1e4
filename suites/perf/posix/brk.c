/* brk: growing and shrinking the program break by one page and by 1 MiB,
 * through libc's sbrk and through the raw system call. Grow is timed on an
 * untouched extension; shrink is timed after every page of the extension
 * was written (what a malloc trim gives back). Before every shrink the
 * break is checked to be where this benchmark left it, so that memory
 * someone else took from the break in between is never cut off. */
#include "config.h"
#include "pagelab/bench.h"
#include "pagelab/env.h"
#include "pagelab/platform.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#define BRK_SIZES PB_ARGS(PB_PAGE, PB_MIB(1))

/* One way to move the break: to the absolute address `to`; 0 or errno. */
struct brk_ops {
	const char *name;
	int (*current)(uintptr_t *cur);
	int (*set)(uintptr_t cur, uintptr_t to);
};

/* sbrk(3): ENOSYS where this build's C library has none (the benchmark then skips with that answer). */
static int libc_sbrk(intptr_t increment, void **old)
{
#ifdef HAVE_SBRK
	void *p = sbrk(increment);
	*old = p;
	return p == (void *)-1 ? (errno ? errno : ENOMEM) : 0;
#else
	(void)increment;
	*old = NULL;
	return ENOSYS;
#endif
}

static int sbrk_current(uintptr_t *cur)
{
	void *p;
	int e = libc_sbrk(0, &p);
	*cur = (uintptr_t)p;
	return e;
}

static int sbrk_set(uintptr_t cur, uintptr_t to)
{
	void *old;
	return libc_sbrk((intptr_t)(to - cur), &old);
}
static const struct brk_ops libc_ops = {"sbrk", sbrk_current, sbrk_set};

/* The kernel's own break (the page layer's call: ENOTSUP where the system has none). */
static int sys_current(uintptr_t *cur)
{
	void *now = NULL;
	int e = pl_raw_break(NULL, &now);
	*cur = (uintptr_t)now;
	return e;
}

/* The kernel answers with the break, not an errno: a refusal leaves it elsewhere than asked. */
static int sys_set(uintptr_t cur, uintptr_t to)
{
	void *now = NULL;
	(void)cur;
	int e = pl_raw_break((void *)to, &now);
	return e ? e : (uintptr_t)now == to ? 0 : ENOMEM;
}
static const struct brk_ops raw_ops = {"brk syscall", sys_current, sys_set};

/* Shrink back to base only if the break is still at top. */
static int shrink_checked(const struct brk_ops *o, uintptr_t base, uintptr_t top, double *t)
{
	uintptr_t cur;
	int e = o->current(&cur);
	if (e)
		return e;
	if (cur != top)
		return EBUSY;
	double t0 = pb_seconds();
	e = o->set(top, base);
	*t = pb_seconds() - t0;
	return e;
}

static int grow_shrink(pb_state *s, const struct brk_ops *o, size_t n, bool time_shrink, double *t)
{
	uintptr_t base;
	int e = o->current(&base);
	if (e)
		return e;
	double t0 = pb_seconds();
	e = o->set(base, base + n);
	double t1 = pb_seconds();
	if (e)
		return e;
	if (!time_shrink) {
		*t = t1 - t0;
		double ignored;
		return shrink_checked(o, base, base + n, &ignored);
	}
	pb_pause_timing(s);
	pb_touch_pages((void *)base, n);
	pb_resume_timing(s);
	return shrink_checked(o, base, base + n, t);
}

static void run(pb_state *s, const struct brk_ops *o, bool time_shrink)
{
	size_t n = pb_arg_bytes(s);
	if (!n)
		return;
	uintptr_t cur;
	int e = o->current(&cur);
	if (e) { /* no such call here (ENOSYS, ENOTSUP): skip with the answer, before the loop */
		pb_skip_errno(s, o->name, e);
		return;
	}
	while (pb_keep_running(s)) {
		double t;
		if ((e = grow_shrink(s, o, n, time_shrink, &t)) != 0)
			break;
		pb_set_iteration_time(s, t);
	}
	if (e) {
		pb_skip_errno(s, e == EBUSY ? "the break moved under the benchmark" : o->name, e);
		return;
	}
	size_t pages = n / pl_page_size();
	pb_set_items_processed(s, pb_iterations(s) * (int64_t)pages);
	pb_counter(s, "pages", (double)pages, PB_COUNTER_TOTAL);
}

PB_BENCH(bm_brk_sbrk_grow, "brk/sbrk_grow", "sbrk(+n): grow the break over never-touched memory (the shrink back is untimed)",
	 .args = BRK_SIZES, .manual_time = true)
{
	run(s, &libc_ops, false);
}

PB_BENCH(bm_brk_sbrk_shrink, "brk/sbrk_shrink", "sbrk(-n) of n bytes of break whose every page was written",
	 .args = BRK_SIZES, .manual_time = true)
{
	run(s, &libc_ops, true);
}

PB_BENCH(bm_brk_sys_grow, "brk/syscall_grow", "raw brk system call: grow the break over never-touched memory (the shrink back is untimed)",
	 .args = BRK_SIZES, .manual_time = true)
{
	run(s, &raw_ops, false);
}

PB_BENCH(bm_brk_sys_shrink, "brk/syscall_shrink",
	 "raw brk system call: shrink by n bytes of break whose every page was written",
	 .args = BRK_SIZES, .manual_time = true)
{
	run(s, &raw_ops, true);
}
