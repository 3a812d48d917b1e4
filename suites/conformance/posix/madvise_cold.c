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

#include "pl_abi.h"

#ifndef HAVE_FDATASYNC
#define fdatasync fsync /* macOS's headers declare no fdatasync: fsync writes the data as well */
#endif

#define LEN_PAGES 128
#define SEED 11

/* Fill, advise, and check every byte is still what was written. */
static void contents_kept(struct pc_ctx *ctx, int advice, const char *name)
{
	struct pc_map m;
	size_t resident;
	pc_map_or_skip(ctx, LEN_PAGES * pl_page_size(), &m);
	pc_fill(m.addr, m.len, SEED);
	pc_advise(ctx, m.addr, m.len, advice, name);
	resident = pc_obs_resident_pages(ctx, m.addr, m.len);
	pc_measure(ctx, "resident_pages_after", "%zu of %zu", resident, m.len / pl_page_size());
	const char *got = pc_contents(m.addr, m.len, SEED);
	pc_observe(ctx, "contents_after", "%s", got);
	/* Anything but "old" means a non-destructive hint destroyed data. */
	PC_CHECK(ctx, strcmp(got, "old") == 0, "contents after %s: expected old, observed %s", name, got);
	pc_unmap(&m);
	pc_pass(ctx);
}

PC_PROBE_KINDS_NEEDS(cold_contents, "madvise.cold.contents_kept", PC_ALL_KINDS, PC_FB(PC_F_MADV_COLD),
	       "MADV_COLD keeps every byte")
{
	contents_kept(ctx, MADV_COLD, "MADV_COLD");
}

PC_PROBE_KINDS_NEEDS(pageout_contents, "madvise.pageout.contents_kept", PC_ALL_KINDS, PC_FB(PC_F_MADV_PAGEOUT),
	       "MADV_PAGEOUT keeps every byte (paged out and back in, or left resident)")
{
	contents_kept(ctx, MADV_PAGEOUT, "MADV_PAGEOUT");
}

/* A file of len bytes holding the SEED pattern, written back; *in_memory when its file system is RAM. */
static int seeded_file(struct pc_ctx *ctx, size_t len, bool *in_memory)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/pageout.XXXXXX", pc_tmpdir(ctx));
	int fd = mkstemp(path);
	if (fd < 0)
		pc_error(ctx, "mkstemp in %s: %s", pc_tmpdir(ctx), pc_strerror(errno));
	char *buf = malloc(len);
	if (!buf || unlink(path) != 0)
		pc_error(ctx, "preparing the file: %s", pc_strerror(buf ? errno : ENOMEM));
	int e = pl_file_in_memory(fd, in_memory);
	if (e)
		*in_memory = false; /* unknown: a refused page-out is then the probe's finding to read */
	pc_fill(buf, len, SEED);
	ssize_t n = pwrite(fd, buf, len, 0);
	free(buf);
	/* Dirty pages are not written back by MADV_PAGEOUT: make them clean first. */
	if (n != (ssize_t)len || fdatasync(fd) != 0)
		pc_error(ctx, "writing the file: %s", n < 0 ? pc_strerror(errno) : "short write");
	return fd;
}

/* Map a seeded disk file (shared or private), read every page: clean page-cache pages. */
static void map_file_read(struct pc_ctx *ctx, size_t len, struct pc_map *m)
{
	bool in_memory;
	m->fd = seeded_file(ctx, len, &in_memory);
	if (in_memory && !pc_swap_available())
		pc_skip_prerequisite(ctx, "MADV_PAGEOUT of files in memory (tmpfs) needs swap: none configured "
				     "(the probe directory is in memory)");
	int flags = pc_kind_shared(pc_kind(ctx)) ? MAP_SHARED : MAP_PRIVATE;
	m->addr = mmap(NULL, len, PROT_READ | PROT_WRITE, flags, m->fd, 0);
	if (m->addr == MAP_FAILED)
		pc_error(ctx, "mmap of the file: %s", pc_strerror(errno));
	m->len = len;
	m->kind = pc_kind(ctx);
	PC_CHECK(ctx, pc_check_fill(m->addr, len, SEED), "the file does not read back as written");
}

PC_PROBE_KINDS_NEEDS(pageout_resident, "madvise.pageout.resident_after", PC_ALL_KINDS, PC_FB(PC_F_MADV_PAGEOUT),
	       "MADV_PAGEOUT takes pages out of memory; they read back unchanged")
{
	struct pc_map m;
	size_t len = pc_rss_window(), before, after;
	bool file = (pc_kind(ctx) & PC_FILE_KINDS) != 0;
	if (!file && !pc_swap_available())
		pc_skip_prerequisite(ctx, "MADV_PAGEOUT of anonymous or shmem memory needs swap: none configured");
	if (file)
		map_file_read(ctx, len, &m);
	else {
		pc_map_or_skip(ctx, len, &m);
		pc_fill(m.addr, m.len, SEED);
	}
	before = pc_obs_rss(ctx);
	pc_advise(ctx, m.addr, m.len, MADV_PAGEOUT, "MADV_PAGEOUT");
	after = pc_obs_rss(ctx);
	size_t drop = before > after ? before - after : 0;
	pc_observe(ctx, "rss_after", "%s", drop >= m.len / 4 * 3 ? "dropped" : drop ? "partial" : "unchanged");
	/* madvise(2) calls MADV_PAGEOUT a hint to reclaim: that the pages leave memory at once is Linux's behaviour. */
	PC_BEHAVIOUR(ctx, drop >= m.len / 2, "expected RSS to fall by half the range or more right after "
		     "MADV_PAGEOUT (Linux reclaims at once), saw %zu of %zu bytes", drop, m.len);
	const char *got = pc_contents(m.addr, m.len, SEED);
	pc_observe(ctx, "contents_after", "%s", got);
	PC_CHECK(ctx, strcmp(got, "old") == 0, "contents after paging back in: %s", got);
	pc_unmap(&m);
	pc_pass(ctx);
}
