/* madvise(MADV_COLD) and madvise(MADV_PAGEOUT): reclaim hints that must
 * never change contents. Paging out anonymous or shmem memory needs swap;
 * clean file pages on a disk file go without it. */
#include "config.h"
#include "pagelab/check.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifdef __linux__
#include <sys/vfs.h>
#ifndef TMPFS_MAGIC
#define TMPFS_MAGIC 0x01021994 /* include/uapi/linux/magic.h; musl's headers lack it */
#endif
#include "linux_abi.h"
#endif

#define LEN_PAGES 128
#define RSS_PAGES 4096 /* RSS windows big enough that other faults in the window are noise */
#define SEED 11

#if defined(MADV_COLD) && defined(MADV_PAGEOUT)
/* The advice, or skip when this kernel does not know it. */
static void advise(struct pc_ctx *ctx, void *p, size_t len, int advice, const char *name)
{
	if (pc_madvise(NULL, 0, advice) == EINVAL)
		pc_skip(ctx, "%s: EINVAL from this kernel (before 5.4)", name);
	int e = pc_madvise(p, len, advice);
	PC_CHECK(ctx, e == 0, "madvise(%s) on %s memory returned %s", name, pc_kind_name(pc_kind(ctx)),
		 pc_strerror(e));
}

/* Fill, advise, and check every byte is still what was written. */
static void contents_kept(struct pc_ctx *ctx, int advice, const char *name)
{
	struct pc_map m;
	size_t resident;
	pc_map_or_skip(ctx, LEN_PAGES * pl_page_size(), &m);
	pc_fill(m.addr, m.len, SEED);
	advise(ctx, m.addr, m.len, advice, name);
	PC_SETUP(ctx, pl_resident_pages(m.addr, m.len, &resident));
	pc_observe(ctx, "resident_pages_after", "%zu of %zu", resident, m.len / pl_page_size());
	const char *got = pc_contents(m.addr, m.len, SEED);
	pc_observe(ctx, "contents_after", "%s", got);
	/* Anything but "old" means a non-destructive hint destroyed data. */
	PC_CHECK(ctx, strcmp(got, "old") == 0, "contents after %s: expected old, observed %s", name, got);
	pc_unmap(&m);
	pc_pass(ctx);
}
#else
static void contents_kept(struct pc_ctx *ctx, int advice, const char *name)
{
	(void)advice;
	pc_skip(ctx, "no %s on this system", name);
}
/* Placeholders: the stub above skips before any advice is used. */
#define MADV_COLD 0
#define MADV_PAGEOUT 0
#endif

PC_PROBE_KINDS(cold_contents, "madvise.cold.contents_kept", PC_ALL_KINDS,
	       "MADV_COLD keeps every byte")
{
	contents_kept(ctx, MADV_COLD, "MADV_COLD");
}

PC_PROBE_KINDS(pageout_contents, "madvise.pageout.contents_kept", PC_ALL_KINDS,
	       "MADV_PAGEOUT keeps every byte (paged out and back in, or left resident)")
{
	contents_kept(ctx, MADV_PAGEOUT, "MADV_PAGEOUT");
}

#if defined(__linux__)
/* A disk file (not tmpfs) of len bytes holding the SEED pattern, written back. */
static int seeded_file(struct pc_ctx *ctx, size_t len, bool *on_tmpfs)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/pageout.XXXXXX", pc_tmpdir(ctx));
	int fd = mkstemp(path);
	if (fd < 0)
		pc_error(ctx, "mkstemp in %s: %s", pc_tmpdir(ctx), pc_strerror(errno));
	char *buf = malloc(len);
	struct statfs sfs;
	if (!buf || unlink(path) != 0 || fstatfs(fd, &sfs) != 0)
		pc_error(ctx, "preparing the file: %s", pc_strerror(buf ? errno : ENOMEM));
	pc_fill(buf, len, SEED);
	ssize_t n = pwrite(fd, buf, len, 0);
	free(buf);
	/* Dirty pages are not written back by MADV_PAGEOUT: make them clean first. */
	if (n != (ssize_t)len || fdatasync(fd) != 0)
		pc_error(ctx, "writing the file: %s", n < 0 ? pc_strerror(errno) : "short write");
	*on_tmpfs = sfs.f_type == TMPFS_MAGIC;
	return fd;
}

/* Map a seeded disk file (shared or private), read every page: clean page-cache pages. */
static void map_file_read(struct pc_ctx *ctx, size_t len, struct pc_map *m)
{
	bool tmpfs;
	m->fd = seeded_file(ctx, len, &tmpfs);
	if (tmpfs && !pc_swap_available())
		pc_skip(ctx, "MADV_PAGEOUT of tmpfs files needs swap: none configured (probe directory is tmpfs)");
	int flags = pc_kind(ctx) == PC_SHARED_FILE ? MAP_SHARED : MAP_PRIVATE;
	m->addr = mmap(NULL, len, PROT_READ | PROT_WRITE, flags, m->fd, 0);
	if (m->addr == MAP_FAILED)
		pc_error(ctx, "mmap of the file: %s", pc_strerror(errno));
	m->len = len;
	m->kind = pc_kind(ctx);
	PC_CHECK(ctx, pc_check_fill(m->addr, len, SEED), "the file does not read back as written");
}
#endif

PC_PROBE_KINDS(pageout_resident, "madvise.pageout.resident_after", PC_ALL_KINDS,
	       "MADV_PAGEOUT takes pages out of memory; they read back unchanged")
{
#if defined(__linux__)
	struct pc_map m;
	size_t len = RSS_PAGES * pl_page_size(), before, after;
	bool file = pc_kind(ctx) == PC_PRIVATE_FILE || pc_kind(ctx) == PC_SHARED_FILE;
	if (!file && !pc_swap_available())
		pc_skip(ctx, "MADV_PAGEOUT of anonymous or shmem memory needs swap: none configured");
	if (file)
		map_file_read(ctx, len, &m);
	else {
		pc_map_or_skip(ctx, len, &m);
		pc_fill(m.addr, m.len, SEED);
	}
	if (pl_rss(&before) != 0)
		pc_skip(ctx, "no RSS measure in this page layer");
	advise(ctx, m.addr, m.len, MADV_PAGEOUT, "MADV_PAGEOUT");
	PC_SETUP(ctx, pl_rss(&after));
	size_t drop = before > after ? before - after : 0;
	pc_observe(ctx, "rss_after", "%s", drop >= m.len / 4 * 3 ? "dropped" : drop ? "partial" : "unchanged");
	/* Returning 0 but keeping every page means the advice was not honoured. */
	PC_CHECK(ctx, drop >= m.len / 2, "RSS fell by %zu of %zu bytes after MADV_PAGEOUT", drop, m.len);
	const char *got = pc_contents(m.addr, m.len, SEED);
	pc_observe(ctx, "contents_after", "%s", got);
	PC_CHECK(ctx, strcmp(got, "old") == 0, "contents after paging back in: %s", got);
	pc_unmap(&m);
	pc_pass(ctx);
#else
	pc_skip(ctx, "MADV_PAGEOUT is Linux-only");
#endif
}
