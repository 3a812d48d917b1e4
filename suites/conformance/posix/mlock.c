/* Locking memory: mlock2 with and without MLOCK_ONFAULT, mlockall with
 * MCL_CURRENT, MCL_FUTURE and MCL_ONFAULT, munlock splitting and merging
 * mappings, memory the system may drop (MAP_DROPPABLE) never locked, and what
 * the discarding advice does to locked memory (refused with EINVAL; the
 * *_LOCKED form allowed). Locked bytes are the system's own count; the
 * calls are made as raw system calls, so that no runtime can intercept them. */
#include "config.h"
#include "pagelab/check.h"
#include "pagelab/env.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pl_abi.h"

#define PAGES 8

static size_t locked_now(struct pc_ctx *ctx)
{
	size_t bytes = 0;
	int e = pl_locked_bytes(&bytes);
	if (e == ENOTSUP)
		pc_skip_unobservable(ctx, PC_CH_RSS, "this system does not report locked memory");
	PC_SETUP(ctx, e);
	return bytes;
}

/* A lock call the probe's subject needs: not implemented is unsupported, a limit is the
 * environment's, any other refusal of a valid request is the system's (mlock(2)). */
static void lock_or_skip(struct pc_ctx *ctx, int e, const char *what)
{
	if (e == 0)
		return;
	if (e == ENOSYS || e == ENOTSUP)
		pc_skip_unsupported(ctx, "%s: %s from this system", what, pl_errno_name(e));
	if (e == EPERM || e == ENOMEM || e == EAGAIN)
		pc_skip_prerequisite(ctx, "%s refused (%s): RLIMIT_MEMLOCK too small?", what, pl_errno_name(e));
	pc_fail_refused(ctx, "%s of a valid range refused: %s", what, pc_strerror(e));
}

static char *fresh(struct pc_ctx *ctx, size_t pages)
{
	char *p;
	PC_SETUP(ctx, pl_map_anon(pages * pl_page_size(), (void **)&p));
	(void)pc_madvise(p, pages * pl_page_size(), MADV_NOHUGEPAGE); /* one touch is one page; no THP: no matter */
	return p;
}

/* Resident pages of [p, p+pages) as a string of 0/1 per page. */
static const char *resident_map(struct pc_ctx *ctx, const char *p, size_t pages)
{
	static char map[PAGES + 1];
	unsigned char vec[PAGES];
	pc_obs_residency(ctx, p, pages * pl_page_size(), vec);
	for (size_t i = 0; i < pages; i++)
		map[i] = (vec[i] & 1) ? '1' : '0';
	map[pages] = 0;
	return map;
}

static void expect_locked_delta(struct pc_ctx *ctx, const char *key, size_t base, size_t want)
{
	size_t now = locked_now(ctx), delta = now > base ? now - base : 0;
	pc_observe(ctx, key, "%zu pages", delta / pl_page_size());
	PC_CHECK(ctx, delta == want, "%s: %zu bytes locked, expected %zu", key, delta, want);
}

#define LOCK PC_FB(PC_F_MLOCK)
#define ONFAULT (LOCK | PC_FB(PC_F_MLOCK_ONFAULT))
#define ALL_ONFAULT (LOCK | PC_FB(PC_F_MLOCKALL_ONFAULT))

PC_PROBE_NEEDS(mlock2_whole, "mlock.mlock2.locks_and_populates", LOCK,
	       "mlock2 without flags makes every page resident and counts the range locked; munlock gives it back")
{
	size_t len = PAGES * pl_page_size();
	char *p = fresh(ctx, PAGES);
	size_t base = locked_now(ctx);
	lock_or_skip(ctx, pc_mlock2(p, len, 0), "mlock2");
	expect_locked_delta(ctx, "locked_after_mlock2", base, len);
	const char *res = resident_map(ctx, p, PAGES);
	pc_observe(ctx, "resident", "%s", res);
	PC_CHECK(ctx, strchr(res, '0') == NULL, "mlock2 left pages out of memory (%s)", res);
	PC_SETUP(ctx, pc_munlock(p, len));
	expect_locked_delta(ctx, "locked_after_munlock", base, 0);
	pc_pass(ctx);
}

PC_PROBE_NEEDS(mlock2_onfault, "mlock.mlock2.onfault_locks_on_touch", ONFAULT,
	       "MLOCK_ONFAULT counts the range locked but makes resident only the pages touched; munlock gives it back")
{
	size_t len = PAGES * pl_page_size();
	char *p = fresh(ctx, PAGES);
	size_t base = locked_now(ctx);
	lock_or_skip(ctx, pc_mlock2(p, len, MLOCK_ONFAULT), "mlock2(MLOCK_ONFAULT)");
	p[0] = 1;
	expect_locked_delta(ctx, "locked_after_mlock2", base, len);
	const char *res = resident_map(ctx, p, PAGES);
	pc_observe(ctx, "resident", "%s", res);
	PC_CHECK(ctx, res[0] == '1' && strchr(res + 1, '1') == NULL, "resident pages %s, expected only the touched one", res);
	PC_SETUP(ctx, pc_munlock(p, len));
	expect_locked_delta(ctx, "locked_after_munlock", base, 0);
	pc_pass(ctx);
}

PC_PROBE_NEEDS(mlock2_onfault_present, "mlock.mlock2.onfault_over_present_page", ONFAULT,
	       "MLOCK_ONFAULT over a range with a page already present locks the range and populates nothing more")
{
	size_t len = PAGES * pl_page_size();
	char *p = fresh(ctx, PAGES);
	p[0] = 1;
	size_t base = locked_now(ctx);
	lock_or_skip(ctx, pc_mlock2(p, len, MLOCK_ONFAULT), "mlock2(MLOCK_ONFAULT)");
	expect_locked_delta(ctx, "locked_after_mlock2", base, len);
	const char *res = resident_map(ctx, p, PAGES);
	pc_observe(ctx, "resident", "%s", res);
	PC_CHECK(ctx, strchr(res + 1, '1') == NULL, "MLOCK_ONFAULT populated untouched pages (%s)", res);
	pc_pass(ctx);
}

/* mlockall(flags) over a mapping made before; the expected residency of its untouched pages. */
static void lock_all_existing(struct pc_ctx *ctx, int flags, bool populate)
{
	size_t len = PAGES * pl_page_size();
	if (populate)
		pc_skip_if_shadow_memory(ctx, "mlockall(MCL_CURRENT) over the whole process");
	char *p = fresh(ctx, PAGES);
	size_t base = locked_now(ctx);
	lock_or_skip(ctx, pc_mlockall(flags), "mlockall");
	p[0] = 1;
	size_t now = locked_now(ctx);
	pc_measure(ctx, "locked_bytes_added", "%zu", now - base);
	PC_CHECK(ctx, now >= base + len, "mlockall left the mapping uncounted (%zu bytes more locked)", now - base);
	const char *res = resident_map(ctx, p, PAGES);
	pc_observe(ctx, "resident", "%s", res);
	if (populate)
		PC_CHECK(ctx, strchr(res, '0') == NULL, "mlockall(MCL_CURRENT) left pages out (%s)", res);
	else
		PC_CHECK(ctx, strchr(res + 1, '1') == NULL, "MCL_ONFAULT populated untouched pages (%s)", res);
	PC_SETUP(ctx, pc_munlockall());
	pc_observe(ctx, "locked_after_munlockall", "%s", locked_now(ctx) == 0 ? "none" : "some");
	PC_CHECK(ctx, locked_now(ctx) == 0, "munlockall left memory locked");
	pc_pass(ctx);
}

/* mlockall(MCL_FUTURE | flags), then a new mapping: locked at once; resident at once unless on fault. */
static void lock_all_future(struct pc_ctx *ctx, int flags, bool populate)
{
	size_t len = PAGES * pl_page_size();
	lock_or_skip(ctx, pc_mlockall(MCL_FUTURE | flags), "mlockall(MCL_FUTURE)");
	size_t base = locked_now(ctx);
	char *p = fresh(ctx, PAGES);
	size_t now = locked_now(ctx);
	pc_measure(ctx, "locked_bytes_added", "%zu", now - base);
	PC_CHECK(ctx, now >= base + len, "a mapping made after MCL_FUTURE is not counted locked");
	const char *res = resident_map(ctx, p, PAGES);
	pc_observe(ctx, "new_mapping_resident", "%s", res);
	if (populate)
		PC_CHECK(ctx, strchr(res, '0') == NULL, "a mapping made after MCL_FUTURE is not all resident (%s)", res);
	else
		PC_CHECK(ctx, strchr(res, '1') == NULL, "MCL_ONFAULT populated a new mapping (%s)", res);
	PC_SETUP(ctx, pc_munlockall());
	pc_pass(ctx);
}

PC_PROBE_NEEDS(mlockall_current, "mlock.mlockall.current", LOCK,
	       "mlockall(MCL_CURRENT) locks and populates existing mappings; munlockall unlocks everything")
{
	lock_all_existing(ctx, MCL_CURRENT, true);
}

PC_PROBE_NEEDS(mlockall_onfault, "mlock.mlockall.current_onfault", ALL_ONFAULT,
	       "mlockall(MCL_CURRENT | MCL_ONFAULT) locks existing mappings without populating them")
{
	lock_all_existing(ctx, MCL_CURRENT | MCL_ONFAULT, false);
}

PC_PROBE_NEEDS(mlockall_future, "mlock.mlockall.future", LOCK,
	       "after mlockall(MCL_FUTURE) a new mapping is locked and populated at once")
{
	lock_all_future(ctx, 0, true);
}

PC_PROBE_NEEDS(mlockall_future_onfault, "mlock.mlockall.future_onfault", ALL_ONFAULT,
	       "after mlockall(MCL_FUTURE | MCL_ONFAULT) a new mapping is locked but not populated")
{
	lock_all_future(ctx, MCL_ONFAULT, false);
}

/* Three pages locked on fault: munlock of the middle one splits the mapping in three, of all merges it again.
 * How a system keeps its list of mappings is its own: the counts are Linux's behaviour (VMAs). */
static void split_merge(struct pc_ctx *ctx, char *p)
{
	size_t ps = pl_page_size(), n = 0;
	if (!pc_try_mapping_count(ctx, p, 3 * ps, &n))
		pc_skip_unobservable(ctx, PC_CH_MAPPINGS, "the mapping list is not observable here");
	PC_BEHAVIOUR(ctx, n == 1, "expected three fresh pages to be one mapping before locking, saw %zu", n);
	PC_SETUP(ctx, pc_munlock(p + ps, ps));
	if (!pc_try_mapping_count(ctx, p, 3 * ps, &n))
		pc_error(ctx, "the mapping list could be read once, then not");
	pc_observe(ctx, "mappings_after_partial_munlock", "%zu", n);
	PC_BEHAVIOUR(ctx, n == 3, "expected munlock of the middle page to split the mapping in three, saw %zu", n);
	PC_SETUP(ctx, pc_munlock(p, 3 * ps));
	if (!pc_try_mapping_count(ctx, p, 3 * ps, &n))
		pc_error(ctx, "the mapping list could be read once, then not");
	pc_observe(ctx, "mappings_after_munlock", "%zu", n);
	PC_BEHAVIOUR(ctx, n == 1, "expected munlock of all to merge the mapping into one again, saw %zu", n);
	pc_pass(ctx);
}

PC_PROBE_NEEDS(split_merge_mlock2, "mlock.munlock.splits_and_merges", ONFAULT,
	       "munlock of the middle of a range locked on fault splits the mapping; munlock of all merges it")
{
	char *p = fresh(ctx, 3);
	lock_or_skip(ctx, pc_mlock2(p, 3 * pl_page_size(), MLOCK_ONFAULT), "mlock2(MLOCK_ONFAULT)");
	split_merge(ctx, p);
}

PC_PROBE_NEEDS(split_merge_mlockall, "mlock.munlock.splits_and_merges_under_mlockall", ALL_ONFAULT,
	       "the same for a mapping made after mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT)")
{
	lock_or_skip(ctx, pc_mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT), "mlockall(MCL_FUTURE | MCL_ONFAULT)");
	split_merge(ctx, fresh(ctx, 3));
}

PC_PROBE_NEEDS(droppable_unlocked, "mlock.droppable.never_locked", LOCK | PC_FB(PC_F_MAP_DROPPABLE),
	       "mlock2 of droppable memory succeeds but does not lock it, and MCL_FUTURE does not lock new droppable memory")
{
	size_t len = PAGES * pl_page_size();
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_DROPPABLE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		pc_refusal(ctx, "mmap(MAP_DROPPABLE)", errno == PL_ENOTSUPP ? ENOTSUP : errno, pc_unknown_map_type_errno());
	size_t base = locked_now(ctx);
	lock_or_skip(ctx, pc_mlock2(p, len, 0), "mlock2");
	expect_locked_delta(ctx, "locked_after_mlock2", base, 0);
	lock_or_skip(ctx, pc_mlockall(MCL_FUTURE), "mlockall(MCL_FUTURE)");
	base = locked_now(ctx);
	void *q = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_DROPPABLE | MAP_ANONYMOUS, -1, 0);
	PC_CHECK(ctx, q != MAP_FAILED, "droppable mapping under MCL_FUTURE: %s", pc_strerror(errno));
	expect_locked_delta(ctx, "locked_after_new_droppable", base, 0);
	PC_SETUP(ctx, pc_munlockall());
	pc_pass(ctx);
}

/* Locked memory of kind `kind`, filled: discarding advice must be refused with EINVAL and keep the data.
 * documented: madvise(2) lists the refusal (MADV_DONTNEED, MADV_REMOVE); else it is Linux's behaviour. */
static void discard_refused(struct pc_ctx *ctx, enum pc_kind kind, int advice, const char *name, bool documented)
{
	struct pc_map m;
	pc_map_kind_or_skip(ctx, kind, PAGES * pl_page_size(), &m);
	pc_fill(m.addr, m.len, 41);
	pc_need_advice(ctx, advice, name);
	lock_or_skip(ctx, pc_mlock2(m.addr, m.len, 0), "mlock2");
	int e = pc_madvise(m.addr, m.len, advice);
	pc_observe(ctx, "errno", "%s", e ? pl_errno_name(e) : "none");
	if (e == ENOSYS)
		pc_skip_unsupported(ctx, "%s: ENOSYS: not implemented here", name);
	bool kept = pc_check_fill(m.addr, m.len, 41);
	pc_observe(ctx, "contents_after", "%s", pc_contents(m.addr, m.len, 41));
	if (documented) {
		PC_CHECK(ctx, e == EINVAL, "%s on locked memory: expected EINVAL (madvise(2)), got %s", name,
			 e ? pc_strerror(e) : "success");
		PC_CHECK(ctx, kept, "locked memory lost data to a refused %s", name);
	}
	PC_BEHAVIOUR(ctx, e == EINVAL, "expected %s on locked memory to be refused with EINVAL (Linux's behaviour; "
		     "madvise(2) does not list it), saw %s", name, e ? pl_errno_name(e) : "success");
	PC_CHECK(ctx, e == 0 || kept, "locked memory lost data to a refused %s", name);
	pc_pass(ctx);
}

PC_PROBE_NEEDS(dontneed_locked_refused, "mlock.madvise_dontneed.einval", LOCK | PC_FB(PC_F_MADV_DONTNEED),
	       "MADV_DONTNEED on locked memory fails with EINVAL and keeps the data")
{
	discard_refused(ctx, PC_PRIVATE_ANON, MADV_DONTNEED, "MADV_DONTNEED", true);
}

PC_PROBE_NEEDS(free_locked_refused, "mlock.madvise_free.einval", LOCK | PC_FB(PC_F_MADV_FREE),
	       "MADV_FREE on locked memory fails with EINVAL and keeps the data (Linux's behaviour)")
{
	discard_refused(ctx, PC_PRIVATE_ANON, MADV_FREE, "MADV_FREE", false);
}

PC_PROBE_NEEDS(remove_locked_refused, "mlock.madvise_remove.einval", LOCK | PC_FB(PC_F_MADV_REMOVE),
	       "MADV_REMOVE on locked shared memory fails with EINVAL and keeps the data")
{
	discard_refused(ctx, PC_SHARED_FILE, MADV_REMOVE, "MADV_REMOVE", true);
}

PC_PROBE_NEEDS(dontneed_locked_allowed, "mlock.madvise_dontneed_locked.drops", LOCK | PC_FB(PC_F_MADV_DONTNEED_LOCKED),
	       "MADV_DONTNEED_LOCKED on locked private memory drops it (reads zero) and leaves it locked")
{
	size_t len = PAGES * pl_page_size();
	char *p = fresh(ctx, PAGES);
	pc_fill(p, len, 43);
	pc_need_advice(ctx, MADV_DONTNEED_LOCKED, "MADV_DONTNEED_LOCKED"); /* Linux 5.18 */
	size_t base = locked_now(ctx);
	lock_or_skip(ctx, pc_mlock2(p, len, 0), "mlock2");
	pc_advise(ctx, p, len, MADV_DONTNEED_LOCKED, "MADV_DONTNEED_LOCKED");
	bool zero = pc_all_bytes(p, len, 0);
	pc_observe(ctx, "contents_after", "%s", zero ? "zero" : "old");
	PC_CHECK(ctx, zero, "locked memory does not read zero after MADV_DONTNEED_LOCKED");
	expect_locked_delta(ctx, "locked_after", base, len);
	pc_pass(ctx);
}

/* A locked read-only page of `kind` takes a debugger's forced write, keeps refusing plain writes and unlocks. */
static void forced_write_locked(struct pc_ctx *ctx, enum pc_kind kind)
{
	struct pc_map m;
	size_t ps = pl_page_size();
	pc_map_kind_or_skip(ctx, kind, ps, &m);
	if (m.fd < 0)
		pc_fill(m.addr, ps, 44); /* a file's page stays the file's own until the forced write */
	unsigned char old = *(unsigned char *)m.addr;
	PC_SETUP(ctx, pl_protect(m.addr, ps, PL_PROT_READ));
	lock_or_skip(ctx, pc_mlock2(m.addr, ps, 0), "mlock2");
	int e = pl_force_write(m.addr, (unsigned char)(old ^ 0xff));
	if (e == ENOTSUP || e == ENOSYS)
		pc_skip_unsupported(ctx, "this system has no debugger-style forced write (/proc/self/mem): %s",
				    pl_errno_name(e));
	if (e)
		pc_fail_refused(ctx, "a forced write into locked read-only memory, which writes to an unlocked one "
				"reach (feature.forced_write), was refused: %s", pc_strerror(e));
	PC_CHECK(ctx, *(volatile unsigned char *)m.addr == (unsigned char)(old ^ 0xff),
		 "the forced write did not land in the locked page");
	pc_expect_fault(ctx, "write_fault", m.addr, true, PL_FAULT_ACCESS);
	e = pc_munlock(m.addr, ps);
	PC_CHECK(ctx, e == 0, "munlock after the forced write failed: %s", pc_strerror(e));
	if (m.fd >= 0) {
		unsigned char disk;
		PC_SETUP(ctx, pread(m.fd, &disk, 1, 0) == 1 ? 0 : errno);
		pc_observe(ctx, "file_after", "%s", disk == old ? "unchanged" : "changed");
		PC_CHECK(ctx, disk == old, "a forced write into a private file mapping reached the file");
	}
	pc_pass(ctx);
}

PC_PROBE_KINDS_NEEDS(forced_write_locked_probe, "mlock.forced_write.locked_readonly", PC_PRIVATE_ANON | PC_PRIVATE_FILE,
		     LOCK | PC_FB(PC_F_FORCED_WRITE),
	       "a debugger's write into a locked read-only private page copies it (never the file), "
	       "plain writes still fault, and munlock works after")
{
	forced_write_locked(ctx, pc_kind(ctx));
}

PC_PROBE_KINDS_NEEDS(truncate_locked, "mlock.truncate.locked_shared_file", PC_SHARED_FILE | PC_SHARED_DISK, LOCK,
	       "a locked shared file mapping truncated to nothing and grown back reads zero, and unlocks")
{
	struct pc_map m;
	size_t len = PAGES * pl_page_size();
	pc_map_or_skip(ctx, len, &m);
	lock_or_skip(ctx, pc_mlock2(m.addr, len, 0), "mlock2");
	pc_fill(m.addr, len, 45);
	PC_SETUP(ctx, ftruncate(m.fd, 0) == 0 ? 0 : errno);
	PC_SETUP(ctx, ftruncate(m.fd, (off_t)len) == 0 ? 0 : errno);
	bool zero = pc_all_bytes(m.addr, len, 0);
	pc_observe(ctx, "contents_after_regrow", "%s", zero ? "zero" : "old");
	PC_CHECK(ctx, zero, "locked pages cut by truncation and grown back do not read zero");
	int e = pc_munlock(m.addr, len);
	PC_CHECK(ctx, e == 0, "munlock of the truncated mapping failed: %s", pc_strerror(e));
	PC_SETUP(ctx, ftruncate(m.fd, 0) == 0 ? 0 : errno);
	e = pc_mlock2(m.addr, len, 0);
	pc_observe(ctx, "mlock_past_end_of_file", "%s", e ? pl_errno_name(e) : "accepted");
	e = pc_munlock(m.addr, len);
	PC_CHECK(ctx, e == 0, "munlock of a mapping past the end of its file failed: %s", pc_strerror(e));
	pc_pass(ctx);
}
