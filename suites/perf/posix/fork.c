/* fork: what creating a process costs as the parent's memory grows, for clean
 * (zero-page backed), dirty (written), THP-backed and fragmented (many VMAs)
 * layouts; vfork+exec and posix_spawn of a trivial program as baselines.
 * "fork/..." times the parent's return from fork(); "fork_wait/..." times
 * fork + child _exit + waitpid. Set-up (mapping and touching) is untimed.
 * Written layouts are written again before every fork (untimed): a fork
 * write-protects the parent's writable pages, and pages a previous fork left
 * write-protected cost it less, which is not the state the name says. */
#include "config.h"
#include "pagelab/bench.h"
#include "pagelab/platform.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef HAVE_SPAWN_H
#include <spawn.h>
#endif

#include "pl_abi.h"

extern char **environ;

#define TRIVIAL_PROGRAM "/bin/true"

enum layout { LAYOUT_CLEAN, LAYOUT_DIRTY, LAYOUT_THP, LAYOUT_FRAG };

struct region {
	char *p;
	size_t len;
	size_t vmas; /* VMAs the region adds */
	size_t huge; /* bytes huge pages back (THP layout) */
};

/* RSS sweeps: 0 to 1 GiB; THP starts at one huge page's worth of sizes. */
#define FORK_SIZES_FULL PB_ARGS(0, PB_MIB(16), PB_MIB(64), PB_MIB(256), PB_GIB(1))
#define FORK_SIZES_QUICK PB_ARGS(0, PB_MIB(64), PB_GIB(1))
/* Written layouts are written again before every fork: at 1 GiB that is a
 * quarter of a million faults per iteration, which the full profile pays. */
#define FORK_DIRTY_QUICK PB_ARGS(0, PB_MIB(64), PB_MIB(256))
#define FORK_THP_FULL PB_ARGS(PB_MIB(16), PB_MIB(64), PB_MIB(256), PB_GIB(1))
/* Huge pages for 1 GiB can take seconds of compaction: quick stays at 64 MiB. */
#define FORK_THP_QUICK PB_ARGS(PB_MIB(64))
#define FORK_VMAS_FULL PB_ARGS(1024, 4096, 16384)
#define FORK_VMAS_QUICK PB_ARGS(4096)
/* A 1 GiB fork takes tens of ms: cap calibration so the quick profile stays short. */
#define FORK_MAX_ITER 200
#define REWRITE_SAMPLE ((size_t)PB_MIB(64))

/* Ask for base pages (huge=false) or huge ones; EINVAL: a kernel without THP (or a system that does
 * not know the advice), which is base pages anyway; for huge ones it is the answer the benchmark skips with. */
static int set_huge_advice(void *p, size_t len, bool huge)
{
	if (madvise(p, len, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE) == 0)
		return 0;
	return errno == EINVAL && !huge ? 0 : errno;
}

static int map_thp(struct region *r, const char **why)
{
	size_t huge = pl_caps()->huge_page_size;
	*why = "THP: this system has no transparent huge pages";
	if (huge == 0)
		return ENOTSUP;
	int e = pl_reserve(r->len, huge, (void **)&r->p);
	if (e)
		return *why = "reserve", e;
	if ((e = pl_commit(r->p, r->len)) || (e = set_huge_advice(r->p, r->len, true)))
		return *why = "THP: madvise(MADV_HUGEPAGE)", e;
	pb_touch_pages(r->p, r->len);
	if ((e = pl_huge_bytes(r->p, r->len, &r->huge)))
		return *why = "THP: which pages are huge is not observable here", e;
	*why = "THP: fewer than half the pages came as huge pages (fragmented memory?)";
	return r->huge < r->len / 2 ? ENOMEM : 0;
}

/* Alternate read-write and read-only pages: every page its own VMA. */
static int map_fragmented(struct region *r, const char **why)
{
	size_t ps = pl_page_size();
	int e = pl_map_anon(r->len, (void **)&r->p);
	if (e)
		return *why = "mmap", e;
	if ((e = set_huge_advice(r->p, r->len, false)))
		return *why = "madvise(MADV_NOHUGEPAGE)", e;
	pb_touch_pages(r->p, r->len);
	for (size_t off = ps; off < r->len && !e; off += 2 * ps)
		e = pl_protect(r->p + off, ps, PL_PROT_READ);
	*why = "mprotect (vm.max_map_count too low?)";
	return e;
}

/* Build the parent's memory for one layout; len is bytes, or VMAs for LAYOUT_FRAG. */
static int region_setup(struct region *r, enum layout k, int64_t arg, const char **why)
{
	memset(r, 0, sizeof(*r));
	if (arg <= 0)
		return 0;
	r->len = k == LAYOUT_FRAG ? (size_t)arg * pl_page_size() : (size_t)arg;
	r->vmas = k == LAYOUT_FRAG ? (size_t)arg : 1;
	if (k == LAYOUT_THP)
		return map_thp(r, why);
	if (k == LAYOUT_FRAG)
		return map_fragmented(r, why);
	int e = pl_map_anon(r->len, (void **)&r->p);
	if (e)
		return *why = "mmap", e;
	if ((e = set_huge_advice(r->p, r->len, false)))
		return *why = "madvise(MADV_NOHUGEPAGE)", e;
	if (k == LAYOUT_DIRTY)
		pb_touch_pages(r->p, r->len);
	else
		pb_do_not_optimize((void *)(uintptr_t)pb_read_pages(r->p, r->len));
	return 0;
}

static void region_teardown(struct region *r)
{
	if (r->p && pl_unmap(r->p, r->len) != 0)
		fprintf(stderr, "fork: munmap of the benchmark region failed\n");
	r->p = NULL;
}

/* Reap pid; EPROTO unless it exited with status 0. */
static int reap(pid_t pid)
{
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return errno;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : EPROTO;
}

/* One fork; *sec = the parent's return (wait=false) or fork+exit+wait. */
static int fork_once(bool wait, double *sec)
{
	*sec = 0;
	double t0 = pb_seconds();
	pid_t pid = fork();
	if (pid == 0)
		_exit(0);
	if (pid < 0)
		return errno;
	double t1 = pb_seconds();
	int e = reap(pid);
	*sec = (wait ? pb_seconds() : t1) - t0;
	return e;
}

/* After the loop: faults per page when the parent rewrites (the first 64 MiB
 * of) its memory. One per page shows fork write-protected it (CoW armed). */
static void count_rewrite_faults(pb_state *s, const struct region *r)
{
	uint64_t min0, maj0, min1, maj1;
	size_t len = r->len < REWRITE_SAMPLE ? r->len : REWRITE_SAMPLE;
	size_t pages = len / pl_page_size();
	if (pages == 0 || pl_fault_counts(&min0, &maj0) != 0)
		return;
	pb_touch_pages(r->p, len);
	if (pl_fault_counts(&min1, &maj1) != 0)
		return;
	pb_counter(s, "rewrite_faults_per_page", (double)(min1 - min0) / (double)pages, PB_COUNTER_TOTAL);
}

/* Write every page the layout writes again, so each fork meets writable pages. */
static void rewrite(const struct region *r, enum layout k)
{
	size_t ps = pl_page_size();
	if (k == LAYOUT_DIRTY || k == LAYOUT_THP)
		pb_touch_pages(r->p, r->len);
	for (size_t off = 0; k == LAYOUT_FRAG && off < r->len; off += 2 * ps)
		((volatile char *)r->p)[off] = 1; /* the read-write pages of the alternation */
}

static void run_fork(pb_state *s, enum layout k, bool wait)
{
	struct region r;
	const char *why = "";
	size_t rss = 0;
	int e = region_setup(&r, k, pb_arg(s, 0), &why);
	if (e) {
		pb_skip_errno(s, why, e);
		region_teardown(&r);
		return;
	}
	/* No RSS counter on this platform: fork is still timed, rss_bytes left out. */
	bool have_rss = pl_rss(&rss) == 0;
	while (pb_keep_running(s)) {
		double sec;
		pb_pause_timing(s);
		if (r.p)
			rewrite(&r, k);
		pb_resume_timing(s);
		if ((e = fork_once(wait, &sec)) != 0) {
			pb_skip_errno(s, e == EPROTO ? "child did not exit with 0" : "fork", e);
			break;
		}
		pb_set_iteration_time(s, sec);
	}
	if (have_rss)
		pb_counter(s, "rss_bytes", (double)rss, PB_COUNTER_TOTAL);
	pb_counter(s, "pages", (double)(r.len / pl_page_size()), PB_COUNTER_TOTAL);
	pb_counter(s, "vmas", (double)r.vmas, PB_COUNTER_TOTAL);
	if (k == LAYOUT_THP && r.len)
		pb_counter(s, "huge_fraction", (double)r.huge / (double)r.len, PB_COUNTER_TOTAL); /* explains a slower repetition */
	if (!e && (k == LAYOUT_DIRTY || k == LAYOUT_THP) && r.p)
		count_rewrite_faults(s, &r);
	region_teardown(&r);
}

#define FORK_BENCH(func, name, what, layout, wait, full, quick)                                     \
	PB_BENCH(func, name, what, .args = full, .quick_args = quick, .manual_time = true,          \
		 .max_iterations = FORK_MAX_ITER)                                                 \
	{                                                                                          \
		run_fork(s, layout, wait);                                                         \
	}

FORK_BENCH(bm_fork_clean, "fork/clean",
	   "fork() parent's return; arg bytes mapped and read (zero page), never written",
	   LAYOUT_CLEAN, false, FORK_SIZES_FULL, FORK_SIZES_QUICK)
FORK_BENCH(bm_fork_dirty, "fork/dirty",
	   "fork() parent's return; arg bytes in base pages, every page written since the last fork (writable)",
	   LAYOUT_DIRTY, false, FORK_SIZES_FULL, FORK_DIRTY_QUICK)
FORK_BENCH(bm_fork_thp, "fork/thp",
	   "fork() parent's return; arg bytes in huge pages, every page written since the last fork (writable)",
	   LAYOUT_THP, false, FORK_THP_FULL, FORK_THP_QUICK)
FORK_BENCH(bm_fork_frag, "fork/fragmented",
	   "fork() parent's return; arg one-page VMAs alternating read-write (written since the last fork) and read-only",
	   LAYOUT_FRAG, false, FORK_VMAS_FULL, FORK_VMAS_QUICK)
FORK_BENCH(bm_forkw_clean, "fork_wait/clean",
	   "fork + child _exit + waitpid; arg bytes mapped and read (zero page), never written",
	   LAYOUT_CLEAN, true, FORK_SIZES_FULL, FORK_SIZES_QUICK)
FORK_BENCH(bm_forkw_dirty, "fork_wait/dirty",
	   "fork + child _exit + waitpid; arg bytes in base pages, every page written since the last fork",
	   LAYOUT_DIRTY, true, FORK_SIZES_FULL, FORK_DIRTY_QUICK)
FORK_BENCH(bm_forkw_thp, "fork_wait/thp",
	   "fork + child _exit + waitpid; arg bytes in huge pages, every page written since the last fork",
	   LAYOUT_THP, true, FORK_THP_FULL, FORK_THP_QUICK)
FORK_BENCH(bm_forkw_frag, "fork_wait/fragmented",
	   "fork + child _exit + waitpid; arg one-page VMAs alternating read-write (written since the last fork) "
	   "and read-only", LAYOUT_FRAG, true, FORK_VMAS_FULL, FORK_VMAS_QUICK)

/* vfork's child may only exec or _exit; kept in its own frame for that reason. */
static int vfork_exec(const char *path, char *const argv[], pid_t *out)
{
#ifndef HAVE_VFORK
	(void)path; (void)argv; (void)out;
	return ENOSYS; /* macOS deprecates vfork: configure leaves it out */
#else
	pid_t pid = vfork();
	if (pid == 0) {
		execve(path, argv, environ);
		_exit(127);
	}
	if (pid < 0)
		return errno;
	*out = pid;
	return 0;
#endif
}

/* posix_spawn(3): ENOSYS where this build's C library has none (the benchmark then skips with that answer). */
static int spawn(const char *path, char **argv, pid_t *pid)
{
#ifdef HAVE_POSIX_SPAWN
	return posix_spawn(pid, path, NULL, NULL, argv, environ);
#else
	(void)path; (void)argv; (void)pid;
	return ENOSYS;
#endif
}

static int spawn_once(bool use_vfork, double *sec)
{
	char *argv[] = {(char *)TRIVIAL_PROGRAM, NULL};
	pid_t pid = 0;
	double t0 = pb_seconds();
	int e;
	if (use_vfork)
		e = vfork_exec(TRIVIAL_PROGRAM, argv, &pid);
	else
		e = spawn(TRIVIAL_PROGRAM, argv, &pid);
	if (!e)
		e = reap(pid);
	*sec = pb_seconds() - t0;
	return e;
}

static void run_spawn(pb_state *s, bool use_vfork)
{
	if (access(TRIVIAL_PROGRAM, X_OK) != 0) {
		pb_skip_errno(s, TRIVIAL_PROGRAM " is not executable", errno);
		return;
	}
	while (pb_keep_running(s)) {
		double sec;
		int e = spawn_once(use_vfork, &sec);
		if (e) {
			pb_skip_errno(s, e == EPROTO ? TRIVIAL_PROGRAM " did not exit with 0"
				   : use_vfork ? "vfork" : "posix_spawn", e);
			break;
		}
		pb_set_iteration_time(s, sec);
	}
}

PB_BENCH(bm_vfork_exec, "fork/vfork_exec", "vfork + exec of /bin/true + waitpid (baseline)",
	 .manual_time = true, .max_iterations = 2000)
{
	run_spawn(s, true);
}

PB_BENCH(bm_posix_spawn, "fork/posix_spawn", "posix_spawn of /bin/true + waitpid (baseline)",
	 .manual_time = true, .max_iterations = 2000)
{
	run_spawn(s, false);
}
