/* Start-up checks of native claims: a call that returns success must also do
 * what its guarantee says (qemu-user returns 0 for MADV_GUARD_INSTALL and
 * does nothing). Each OS file runs the checks for the operations it claims
 * natively and falls back to its emulation when one is not honoured. Only
 * page-layer calls are used here; the isolated fault check is per OS. */
#include "pl_internal.h"

#include <string.h>

#define CHECK_PAGES 4
#define FILL 0xa5

static bool all_bytes(const unsigned char *p, size_t len, unsigned char b)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != b)
			return false;
	return true;
}

enum pl_verdict pl_check_reads_zero(pl_range_op op)
{
	size_t len = CHECK_PAGES * pl_page_size();
	void *p;
	if (pl_map_anon(len, &p) != 0)
		return PL_NOT_CHECKED;
	memset(p, FILL, len);
	enum pl_verdict v = PL_NOT_CHECKED;
	if (op(p, len) == 0)
		v = all_bytes(p, len, 0) ? PL_HONOURED : PL_NOT_HONOURED;
	(void)pl_unmap(p, len);
	return v;
}

enum pl_verdict pl_check_old_or_zero(pl_range_op op)
{
	size_t ps = pl_page_size(), len = CHECK_PAGES * ps;
	unsigned char *p;
	if (pl_map_anon(len, (void **)&p) != 0)
		return PL_NOT_CHECKED;
	memset(p, FILL, len);
	enum pl_verdict v = PL_NOT_CHECKED;
	if (op(p, len) == 0) {
		v = PL_HONOURED;
		for (size_t off = 0; off < len; off += ps)
			if (!all_bytes(p + off, ps, FILL) && !all_bytes(p + off, ps, 0))
				v = PL_NOT_HONOURED;
	}
	(void)pl_unmap(p, len);
	return v;
}

enum pl_verdict pl_check_resident(pl_range_op op)
{
	size_t len = CHECK_PAGES * pl_page_size(), before = 0, after = 0;
	void *p;
	if (pl_map_anon(len, &p) != 0)
		return PL_NOT_CHECKED;
	enum pl_verdict v = PL_NOT_CHECKED;
	/* Fresh pages must read as absent first, or residency cannot tell anything here. */
	if (pl_resident_pages(p, len, &before) == 0 && before == 0 && op(p, len) == 0 &&
	    pl_resident_pages(p, len, &after) == 0)
		v = after == CHECK_PAGES ? PL_HONOURED : PL_NOT_HONOURED;
	(void)pl_unmap(p, len);
	return v;
}

enum pl_verdict pl_check_faults(pl_range_op op, pl_range_op undo)
{
	size_t ps = pl_page_size();
	void *p;
	if (pl_map_anon(2 * ps, &p) != 0)
		return PL_NOT_CHECKED;
	enum pl_verdict v = pl_os_check_faults(p, ps, op, undo);
	(void)pl_unmap(p, 2 * ps);
	return v;
}

void pl_cap_verdict(struct pl_caps *c, enum pl_op op, enum pl_verdict v, const char *claimed)
{
	c->op[op].verified = v;
	c->op[op].claimed = v == PL_NOT_HONOURED ? claimed : NULL;
}
