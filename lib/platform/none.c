/* The page layer's calls a system has no way to answer (platform.h: the
 * observations, the deeper ones, and those that act like the kernel's other
 * users): every one answers ENOTSUP. The generic POSIX layer and Windows build
 * this file; Linux answers them all itself (linux_*.c). */
#include "pl_internal.h"

#include <errno.h>

int pl_is_zero_page(const void *p, bool *is_zero)
{
	(void)p; (void)is_zero;
	return ENOTSUP;
}

int pl_locked_bytes(size_t *bytes)
{
	(void)bytes;
	return ENOTSUP;
}

int pl_break_start(uintptr_t *addr)
{
	(void)addr;
	return ENOTSUP;
}

int pl_raw_break(void *want, void **now)
{
	(void)want; (void)now;
	return ENOTSUP;
}

int pl_file_in_memory(int fd, bool *yes)
{
	(void)fd; (void)yes;
	return ENOTSUP;
}

int pl_commit_strict(bool *strict)
{
	(void)strict;
	return ENOTSUP;
}

int pl_huge_zero_page_enabled(bool *on)
{
	(void)on;
	return ENOTSUP;
}

int pl_tlb_shootdowns(uint64_t *count)
{
	(void)count;
	return ENOTSUP;
}

int pl_clear_soft_dirty(void)
{
	return ENOTSUP;
}

int pl_mthp_sizes(size_t *sizes, size_t max, size_t *count)
{
	(void)sizes; (void)max; (void)count;
	return ENOTSUP;
}

int pl_hugetlb_free(size_t size, size_t *pages)
{
	(void)size; (void)pages;
	return ENOTSUP;
}

int pl_hugetlb_sizes(size_t *sizes, size_t max, size_t *count)
{
	(void)sizes; (void)max; (void)count;
	return ENOTSUP;
}

int pl_merge_running(bool *on)
{
	(void)on;
	return ENOTSUP;
}

int pl_merge_into_zero_page(bool *on)
{
	(void)on;
	return ENOTSUP;
}

int pl_merge_settle(int timeout_ms)
{
	(void)timeout_ms;
	return ENOTSUP;
}

int pl_merged_pages(size_t *pages)
{
	(void)pages;
	return ENOTSUP;
}

int pl_merge_after_exec(bool *on)
{
	(void)on;
	return ENOTSUP;
}

int pl_migrate(void *p, size_t len)
{
	(void)p; (void)len;
	return ENOTSUP;
}

int pl_pin_start(void *p, size_t len, enum pl_pin_kind kind, struct pl_pin **out)
{
	(void)p; (void)len; (void)kind; (void)out;
	return ENOTSUP;
}

int pl_pin_read(struct pl_pin *pin, void *out, size_t len, size_t *got)
{
	(void)pin; (void)out; (void)len; (void)got;
	return ENOTSUP;
}

int pl_pin_stop(struct pl_pin *pin)
{
	(void)pin;
	return ENOTSUP;
}

int pl_supply_start(void *p, size_t len, enum pl_supply_mode mode, unsigned char byte, struct pl_supplier **out)
{
	(void)p; (void)len; (void)mode; (void)byte; (void)out;
	return ENOTSUP;
}

int pl_supply_place(struct pl_supplier *s, void *p, unsigned char byte)
{
	(void)s; (void)p; (void)byte;
	return ENOTSUP;
}

int pl_supply_stats(struct pl_supplier *s, struct pl_supply_stats *st)
{
	(void)s; (void)st;
	return ENOTSUP;
}

int pl_supply_stop(struct pl_supplier *s)
{
	(void)s;
	return ENOTSUP;
}

int pl_memlimit_join(struct pl_memlimit *m)
{
	(void)m;
	return ENOTSUP;
}

int pl_memlimit_remove(struct pl_memlimit *m)
{
	(void)m;
	return ENOTSUP;
}

int pl_mapping_limit(size_t *count)
{
	(void)count;
	return ENOTSUP;
}
