/* Mapping kinds as features: each kind's variants run only where this
 * system can make that kind of mapping, decided once per run by trying it,
 * so a filtered run skips a missing kind as any run does. */
#include "pagelab/check.h"

#include <errno.h>

/* Map 4 pages (or one huge page) of the kind: pass, or skip with the class pc_map gives. */
static void kind_feature(struct pc_ctx *ctx, enum pc_kind kind)
{
	struct pc_map m;
	const char *why = NULL;
	int e = pc_map(ctx, kind, 4 * pl_page_size(), &m, &why);
	if (e == 0) {
		pc_measure(ctx, "mapped_bytes", "%zu", m.len);
		pc_unmap(&m);
		pc_pass(ctx);
	}
	if (e == ENOTSUP && why)
		pc_skip_unsupported(ctx, "%s", why);
	if (e == EPERM && why)
		pc_skip_prerequisite(ctx, "%s", why);
	if (e == ENODATA && why)
		pc_skip_unobservable(ctx, PC_CH_HUGE_BACKING, "%s: %s", pc_kind_name(kind), why);
	if (e == ENOSYS || e == ENOTSUP)
		pc_skip_unsupported(ctx, "mapping %s memory: %s", pc_kind_name(kind), pc_strerror(e));
	pc_error(ctx, "mapping %s memory: %s", pc_kind_name(kind), pc_strerror(e));
}

#define KIND_FEATURE(fn, name, kind)                                                                  \
	PC_FEATURE_PROBE(fn, "feature.kind." name, PC_F_KIND_FIRST + __builtin_ctz(kind),             \
			 "this system can map " name " memory (the kind's probe variants need it)")      \
	{                                                                                             \
		kind_feature(ctx, kind);                                                              \
	}

KIND_FEATURE(kind_private_anon, "private_anon", PC_PRIVATE_ANON)
KIND_FEATURE(kind_shared_anon, "shared_anon", PC_SHARED_ANON)
KIND_FEATURE(kind_private_file, "private_file", PC_PRIVATE_FILE)
KIND_FEATURE(kind_shared_file, "shared_file", PC_SHARED_FILE)
KIND_FEATURE(kind_thp, "thp", PC_THP)
KIND_FEATURE(kind_shared_disk, "shared_disk", PC_SHARED_DISK)
KIND_FEATURE(kind_mthp, "mthp", PC_MTHP)
KIND_FEATURE(kind_hugetlb_pmd, "hugetlb_pmd", PC_HUGETLB_PMD)
KIND_FEATURE(kind_hugetlb_pud, "hugetlb_pud", PC_HUGETLB_PUD)
