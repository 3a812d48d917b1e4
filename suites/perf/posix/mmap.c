/* mmap/munmap: the cost per page of getting and returning private anonymous
 * memory: map+unmap untouched, map+touch+unmap, MAP_POPULATE, and munmap of
 * a resident range on its own. */
#include "config.h"
#include "pagelab/bench.h"
#include "pagelab/env.h"
#include "pagelab/platform.h"

#include <errno.h>
#include <stdio.h>
#include <sys/mman.h>
#include <time.h>

#include "pl_abi.h"

#define MMAP_QUICK PB_ARGS(PB_PAGE, PB_MIB(2), PB_MIB(256))

static int map_unmap(size_t len, bool touch)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return errno;
	if (touch)
		pb_touch_pages(p, len);
	return munmap(p, len) == 0 ? 0 : errno;
}

/* Benchmark s: map_unmap of pb_arg bytes per iteration. */
static void run_map_unmap(pb_state *s, bool touch)
{
	size_t len = pb_arg_bytes(s);
	if (!len)
		return;
	int e = 0;
	while (pb_keep_running(s))
		if ((e = map_unmap(len, touch)) != 0)
			break;
	if (e)
		pb_skip_errno(s, "mmap/munmap", e);
	else
		pb_per_page(s, len / pl_page_size());
}

PB_BENCH(bm_mmap_untouched, "mmap/map_unmap", "mmap then munmap of private anonymous memory, never touched",
	 .args = PB_SIZES_FULL, .quick_args = MMAP_QUICK)
{
	run_map_unmap(s, false);
}

PB_BENCH(bm_mmap_touched, "mmap/map_touch_unmap",
	 "mmap, write one byte to each page, munmap (private anonymous, the system's THP default)",
	 .args = PB_SIZES_FULL, .quick_args = MMAP_QUICK)
{
	run_map_unmap(s, true);
}

/* mmap with MAP_POPULATE; *t gets the seconds the mmap call took. */
static int map_populate(size_t len, void **p, double *t)
{
	double t0 = pb_seconds();
	*p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	*t = pb_seconds() - t0;
	return *p == MAP_FAILED ? errno : 0;
}

PB_BENCH(bm_mmap_populate, "mmap/populate", "mmap with MAP_POPULATE of private anonymous memory (munmap untimed)",
	 .args = PB_SIZES_FULL, .quick_args = MMAP_QUICK, .manual_time = true)
{
	if (MAP_POPULATE & PL_ABSENT_FLAG) { /* an mmap that ignores unknown flags would time a plain mmap */
		pb_skip(s, "MAP_POPULATE: this system's headers do not define it");
		return;
	}
	size_t len = pb_arg_bytes(s);
	if (!len)
		return;
	int e = 0;
	while (pb_keep_running(s)) {
		void *p;
		double t;
		if ((e = map_populate(len, &p, &t)) != 0)
			break;
		pb_pause_timing(s);
		e = munmap(p, len) == 0 ? 0 : errno;
		pb_resume_timing(s);
		if (e)
			break;
		pb_set_iteration_time(s, t);
	}
	if (e)
		pb_skip_errno(s, "mmap(MAP_POPULATE)/munmap", e);
	else
		pb_per_page(s, len / pl_page_size());
}

PB_BENCH(bm_munmap_resident, "mmap/munmap_resident",
	 "munmap of a private anonymous range whose every page was written (mapping and writing untimed)",
	 .args = PB_SIZES_FULL, .quick_args = MMAP_QUICK, .manual_time = true)
{
	size_t len = pb_arg_bytes(s);
	if (!len)
		return;
	int e = 0;
	while (pb_keep_running(s)) {
		void *p;
		pb_pause_timing(s);
		e = pl_map_anon(len, &p);
		if (!e && (e = pl_populate(p, len, true)) != 0)
			(void)pl_unmap(p, len);
		if (!e)
			pb_touch_pages(p, len);
		pb_resume_timing(s);
		if (e)
			break;
		double t0 = pb_seconds();
		e = munmap(p, len) == 0 ? 0 : errno;
		double t1 = pb_seconds();
		if (e)
			break;
		pb_set_iteration_time(s, t1 - t0);
	}
	if (e)
		pb_skip_errno(s, "mmap/populate/munmap", e);
	else
		pb_per_page(s, len / pl_page_size());
}
