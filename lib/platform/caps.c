/* The page layer's portable part, the same on every OS: the names of
 * operations, implementations and verdicts, setting a capability entry, and
 * counting resident pages from the per-OS residency call, touching pages,
 * and pattern mappings written up front. */
#include "pl_internal.h"

#include <errno.h>
#include <string.h>

static const char *const op_names[PL_OP_COUNT] = {
	[PL_OP_RESERVE] = "reserve",         [PL_OP_COMMIT] = "commit",
	[PL_OP_DECOMMIT] = "decommit",       [PL_OP_RELEASE] = "release",
	[PL_OP_RELEASE_ZERO] = "release_zero", [PL_OP_REUSABLE] = "reusable",
	[PL_OP_REUSE] = "reuse",             [PL_OP_PROTECT] = "protect",
	[PL_OP_GUARD] = "guard",             [PL_OP_UNGUARD] = "unguard",
	[PL_OP_POPULATE] = "populate",       [PL_OP_MAP_PATTERN] = "map_pattern",
	[PL_OP_RESIDENCY] = "residency",     [PL_OP_ZERO_PAGE] = "zero_page",
	[PL_OP_RSS] = "rss",                 [PL_OP_UNMAP] = "unmap",
};

const char *pl_op_name(enum pl_op op)
{
	return (unsigned)op < PL_OP_COUNT ? op_names[op] : "?";
}

const char *pl_impl_name(enum pl_impl impl)
{
	switch (impl) {
	case PL_NATIVE: return "native";
	case PL_EMULATED: return "emulated";
	default: return "unavailable";
	}
}

const char *pl_verdict_name(enum pl_verdict v)
{
	switch (v) {
	case PL_HONOURED: return "honoured";
	case PL_NOT_HONOURED: return "not_honoured";
	default: return "not_checked";
	}
}

const char *pl_pattern_mode_name(enum pl_pattern_mode mode)
{
	switch (mode) {
	case PL_PATTERN_NATIVE: return "native";
	case PL_PATTERN_UFFD: return "uffd";
	case PL_PATTERN_MEMSET: return "memset";
	case PL_PATTERN_UFFD_FULL: return "uffd_full";
	default: return "auto";
	}
}

int pl_reserve_args(size_t len, size_t *align)
{
	size_t ps = pl_page_size();
	if (len == 0 || len % ps)
		return EINVAL;
	if (*align < ps)
		*align = ps;
	return *align & (*align - 1) ? EINVAL : 0;
}

void pl_cap_set(struct pl_caps *c, enum pl_op op, enum pl_impl impl, const char *via, const char *how)
{
	c->op[op].impl = impl;
	c->op[op].via = via;
	c->op[op].how = how;
}

int pl_resident_pages(const void *p, size_t len, size_t *count)
{
	unsigned char vec[4096 + 1]; /* an unaligned start spans one page more */
	size_t ps = pl_page_size(), chunk = (sizeof(vec) - 1) * ps, total = 0;
	for (size_t off = 0; off < len; off += chunk) {
		size_t part = len - off < chunk ? len - off : chunk;
		int e = pl_residency((const char *)p + off, part, vec);
		if (e)
			return e;
		uintptr_t a = (uintptr_t)p + off;
		for (size_t i = 0; i < (a + part + ps - 1) / ps - a / ps; i++)
			total += vec[i];
	}
	*count = total;
	return 0;
}

void pl_touch_pages(void *p, size_t len, bool write)
{
	size_t ps = pl_page_size();
	for (size_t off = 0; off < len; off += ps) {
		volatile unsigned char *b = (volatile unsigned char *)p + off;
		unsigned char v = *b;
		if (write)
			*b = v;
	}
}

int pl_map_pattern_memset(size_t len, unsigned char byte, void **out)
{
	void *p = NULL;
	int e = pl_map_anon(len, &p);
	if (e)
		return e;
	memset(p, byte, len);
	*out = p;
	return 0;
}

int pl_map_pattern_memset_only(size_t len, unsigned char byte, enum pl_pattern_mode mode, void **out,
			       enum pl_pattern_mode *used)
{
	if (mode != PL_PATTERN_AUTO && mode != PL_PATTERN_MEMSET)
		return ENOTSUP;
	int e = pl_map_pattern_memset(len, byte, out);
	if (e == 0 && used)
		*used = PL_PATTERN_MEMSET;
	return e;
}
