/* madvise(MADV_POPULATE_READ / MADV_POPULATE_WRITE), Linux 5.14: fault a
 * range in ahead of use, and the errors madvise(2) documents: EINVAL for
 * insufficient permissions, ENOMEM for unmapped holes, EFAULT where an access
 * would raise SIGBUS (beyond the end of a file). */
#include "config.h"
#include "pagelab/check.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pl_abi.h"

#define LEN_PAGES 64

#define READ_F PC_FB(PC_F_MADV_POPULATE_READ)
#define WRITE_F PC_FB(PC_F_MADV_POPULATE_WRITE)
#define ADVICE(write) ((write) ? MADV_POPULATE_WRITE : MADV_POPULATE_READ)
#define ADVICE_NAME(write) ((write) ? "MADV_POPULATE_WRITE" : "MADV_POPULATE_READ")

static void need_populate(struct pc_ctx *ctx, bool write)
{
	pc_need_advice(ctx, ADVICE(write), ADVICE_NAME(write));
}

/* Populate a fresh mapping: every page resident, contents zero, RSS up for writes. */
static void populate_resident(struct pc_ctx *ctx, bool write)
{
	struct pc_map m;
	size_t rss0 = 0, rss1 = 0, resident;
	need_populate(ctx, write);
	pc_map_or_skip(ctx, LEN_PAGES * pl_page_size(), &m);
	bool known = pc_try_rss(ctx, &rss0);
	pc_advise(ctx, m.addr, m.len, ADVICE(write), ADVICE_NAME(write));
	known = pc_try_rss(ctx, &rss1) && known;
	resident = pc_obs_resident_pages(ctx, m.addr, m.len);
	size_t pages = m.len / pl_page_size();
	pc_measure(ctx, "resident_pages_after", "%zu of %zu", resident, pages);
	pc_observe(ctx, "rss_after", "%s", known ? pc_rss_rise(rss0, rss1, m.len) : "unobservable");
	bool zp = false, z_known = pc_try_zero_page(ctx, m.addr, &zp);
	pc_observe(ctx, "zero_page", "%s", !z_known ? "unobservable" : zp ? "yes" : "no");
	PC_CHECK(ctx, resident == pages, "%zu of %zu pages resident after %s", resident, pages, ADVICE_NAME(write));
	/* Written-for pages are real, accounted memory, never the shared zero page. */
	if (write)
		PC_CHECK(ctx, !z_known || !zp, "page maps the zero page after MADV_POPULATE_WRITE");
	PC_CHECK(ctx, pc_all_bytes(m.addr, m.len, 0), "populated memory does not read zero");
	pc_unmap(&m);
	pc_pass(ctx);
}

/* Populate a range whose protection refuses the access: madvise(2) says EINVAL. */
static void populate_prot(struct pc_ctx *ctx, bool write, int prot)
{
	size_t len = 4 * pl_page_size();
	need_populate(ctx, write);
	void *p = mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		pc_error(ctx, "mmap: %s", pc_strerror(errno));
	int e = pc_madvise(p, len, ADVICE(write));
	pc_observe(ctx, "errno", "%s", e ? pc_strerror(e) : "none");
	PC_CHECK(ctx, e == EINVAL, "%s without the access right: expected EINVAL, got %s", ADVICE_NAME(write),
		 e ? pc_strerror(e) : "success");
	PC_SETUP(ctx, pl_unmap(p, len));
	pc_pass(ctx);
}

/* Populate three pages whose middle one is unmapped: ENOMEM. */
static void populate_hole(struct pc_ctx *ctx, bool write)
{
	size_t ps = pl_page_size(), resident;
	char *p;
	need_populate(ctx, write);
	PC_SETUP(ctx, pl_map_anon(3 * ps, (void **)&p));
	PC_SETUP(ctx, pl_unmap(p + ps, ps));
	int e = pc_madvise(p, 3 * ps, ADVICE(write));
	pc_observe(ctx, "errno", "%s", e ? pc_strerror(e) : "none");
	resident = pc_obs_resident_pages(ctx, p, ps);
	pc_observe(ctx, "page_before_hole", "%s", resident ? "populated" : "not populated");
	PC_CHECK(ctx, e == ENOMEM, "%s over a hole: expected ENOMEM, got %s", ADVICE_NAME(write),
		 e ? pc_strerror(e) : "success");
	pc_pass(ctx);
}

/* Populate a file mapping past the end of its one-page file: SIGBUS territory, EFAULT. */
static void populate_beyond_eof(struct pc_ctx *ctx, bool write)
{
	struct pc_map m;
	size_t ps = pl_page_size();
	need_populate(ctx, write);
	pc_map_or_skip(ctx, 4 * ps, &m);
	if (ftruncate(m.fd, (off_t)ps) != 0)
		pc_error(ctx, "ftruncate: %s", pc_strerror(errno));
	int e = pc_madvise(m.addr, m.len, ADVICE(write));
	pc_observe(ctx, "errno", "%s", e ? pc_strerror(e) : "none");
	PC_CHECK(ctx, e == EFAULT, "%s beyond end of file: expected EFAULT, got %s", ADVICE_NAME(write),
		 e ? pc_strerror(e) : "success");
	pc_unmap(&m);
	pc_pass(ctx);
}

PC_PROBE_KINDS_NEEDS(read_resident, "madvise.populate_read.resident", PC_ALL_KINDS, READ_F,
	       "MADV_POPULATE_READ makes every page resident; memory reads zero")
{
	populate_resident(ctx, false);
}

PC_PROBE_KINDS_NEEDS(write_resident, "madvise.populate_write.resident", PC_ALL_KINDS, WRITE_F,
	       "MADV_POPULATE_WRITE makes every page resident and accounted; memory reads zero")
{
	populate_resident(ctx, true);
}

PC_PROBE_NEEDS(read_prot_none, "madvise.populate_read.prot_none_einval", READ_F,
	 "MADV_POPULATE_READ of PROT_NONE memory fails with EINVAL")
{
	populate_prot(ctx, false, PROT_NONE);
}

PC_PROBE_NEEDS(write_prot_none, "madvise.populate_write.prot_none_einval", WRITE_F,
	 "MADV_POPULATE_WRITE of PROT_NONE memory fails with EINVAL")
{
	populate_prot(ctx, true, PROT_NONE);
}

PC_PROBE_NEEDS(write_prot_read, "madvise.populate_write.prot_read_einval", WRITE_F,
	 "MADV_POPULATE_WRITE of read-only memory fails with EINVAL")
{
	populate_prot(ctx, true, PROT_READ);
}

PC_PROBE_NEEDS(read_hole, "madvise.populate_read.hole_enomem", READ_F,
	 "MADV_POPULATE_READ over an unmapped hole fails with ENOMEM")
{
	populate_hole(ctx, false);
}

PC_PROBE_NEEDS(write_hole, "madvise.populate_write.hole_enomem", WRITE_F,
	 "MADV_POPULATE_WRITE over an unmapped hole fails with ENOMEM")
{
	populate_hole(ctx, true);
}

PC_PROBE_KINDS_NEEDS(read_eof, "madvise.populate_read.beyond_eof_efault", PC_FILE_KINDS, READ_F,
	       "MADV_POPULATE_READ past the end of the file fails with EFAULT")
{
	populate_beyond_eof(ctx, false);
}

PC_PROBE_KINDS_NEEDS(write_eof, "madvise.populate_write.beyond_eof_efault", PC_FILE_KINDS, WRITE_F,
	       "MADV_POPULATE_WRITE past the end of the file fails with EFAULT")
{
	populate_beyond_eof(ctx, true);
}
