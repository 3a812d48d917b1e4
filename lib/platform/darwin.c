/* The page layer on Darwin (macOS, built against its own headers): Darwin's
 * MADV_FREE_REUSABLE / MADV_FREE_REUSE pair for reusable/reuse (the pages
 * leave the process's phys_footprint at once and come back on reuse), MADV_FREE
 * for release, MADV_ZERO for release_zero where the kernel has it (macOS 14),
 * Mach's vm_map with an alignment mask for aligned reservations (no
 * over-reservation to trim), minherit for what a forked child gets, mincore
 * for residency, and Mach task_info for RSS and phys_footprint, the figure
 * macOS charges a process and judges allocators by. Every native claim is
 * checked by behaviour at start (lib/platform/verify.c): these were compiled
 * against macOS's headers, never run here.
 * Not used: purgeable memory (VM_FLAGS_PURGABLE) marks a whole object made
 * for it volatile, while pl_release takes ranges of ordinary memory. */
#include "pl_internal.h"
#include "pl_abi.h"

#include <errno.h>
#include <string.h>
#include <sys/types.h>
#include <sys/mman.h>
#include <sys/sysctl.h>
#include <unistd.h>
#include <mach/mach.h>
#include <mach/vm_inherit.h>

/* Which native calls the verbs use: accepted by the kernel and seen to work. */
static bool use_reusable, use_zero;

static void need_caps(void)
{
	(void)pl_caps();
}

/* Mach's answers as errno values. */
static int mach_errno(kern_return_t kr)
{
	switch (kr) {
	case KERN_SUCCESS: return 0;
	case KERN_INVALID_ADDRESS: case KERN_NO_SPACE: case KERN_RESOURCE_SHORTAGE: return ENOMEM;
	case KERN_PROTECTION_FAILURE: return EACCES;
	case KERN_INVALID_ARGUMENT: return EINVAL;
	case KERN_NOT_SUPPORTED: return ENOTSUP;
	default: return EIO;
	}
}

static int native_free(void *p, size_t len) { return pl_posix_madvise(p, len, MADV_FREE); }

/* Both halves of the pair, for the start-up check: afterwards each page reads old or zero. */
static int native_reusable_reuse(void *p, size_t len)
{
	int e = pl_posix_madvise(p, len, MADV_FREE_REUSABLE);
	return e ? e : pl_posix_madvise(p, len, MADV_FREE_REUSE);
}

#ifdef MADV_ZERO
static int native_zero(void *p, size_t len) { return pl_posix_madvise(p, len, MADV_ZERO); }
#endif

/* Check a claimed native call; false when it returned success without honouring it. */
static bool honoured(struct pl_caps *c, enum pl_op op, enum pl_verdict v, const char *claimed)
{
	pl_cap_verdict(c, op, v, claimed);
	return v != PL_NOT_HONOURED;
}

static void fill_release_caps(struct pl_caps *c)
{
	bool use_free = pl_posix_probe_advice(MADV_FREE) == 0 &&
			honoured(c, PL_OP_RELEASE, pl_check_old_or_zero(native_free),
				 "madvise(MADV_FREE) returned 0 and a page read neither its old bytes nor zero");
	if (use_free)
		pl_cap_set(c, PL_OP_RELEASE, PL_NATIVE, "madvise(MADV_FREE)", NULL);
	else
		pl_cap_set(c, PL_OP_RELEASE, PL_EMULATED, "none", "MADV_FREE refused or not honoured: pages keep their bytes");
	use_reusable = pl_posix_probe_advice(MADV_FREE_REUSABLE) == 0 &&
		       honoured(c, PL_OP_REUSABLE, pl_check_old_or_zero(native_reusable_reuse),
				"madvise(MADV_FREE_REUSABLE) then MADV_FREE_REUSE returned 0 and a page read neither its "
				"old bytes nor zero");
	c->op[PL_OP_REUSE].verified = c->op[PL_OP_REUSABLE].verified;
	if (use_reusable) {
		pl_cap_set(c, PL_OP_REUSABLE, PL_NATIVE, "madvise(MADV_FREE_REUSABLE)", NULL);
		pl_cap_set(c, PL_OP_REUSE, PL_NATIVE, "madvise(MADV_FREE_REUSE)", NULL);
	} else {
		pl_cap_set(c, PL_OP_REUSABLE, PL_EMULATED, c->op[PL_OP_RELEASE].via, "MADV_FREE_REUSABLE refused or not honoured");
		pl_cap_set(c, PL_OP_REUSE, PL_EMULATED, "none", "nothing to undo after release");
	}
#ifdef MADV_ZERO
	use_zero = pl_posix_probe_advice(MADV_ZERO) == 0 &&
		   honoured(c, PL_OP_RELEASE_ZERO, pl_check_reads_zero(native_zero),
			    "madvise(MADV_ZERO) returned 0 and the pages kept their bytes");
#endif
	if (use_zero)
		pl_cap_set(c, PL_OP_RELEASE_ZERO, PL_NATIVE, "madvise(MADV_ZERO)", "a fresh mapping where it is refused");
	else
		pl_cap_set(c, PL_OP_RELEASE_ZERO, PL_EMULATED, "mmap(MAP_FIXED)",
			   "no MADV_ZERO (macOS 14) here: map fresh memory over the range");
}

void pl_os_fill_caps(struct pl_caps *c)
{
	c->platform = "darwin";
	c->huge_page_size = 0; /* no transparent superpages: only an explicit VM_FLAGS_SUPERPAGE_SIZE_2MB on x86_64 */
	pl_cap_set(c, PL_OP_RESERVE, PL_NATIVE, "vm_map(VM_PROT_NONE, alignment mask)", NULL);
	fill_release_caps(c);
	pl_cap_set(c, PL_OP_GUARD, PL_EMULATED, "mprotect(PROT_NONE)", "Darwin has no guard entries for user space");
	pl_cap_set(c, PL_OP_UNGUARD, PL_EMULATED, "mmap(MAP_FIXED)", NULL);
	pl_cap_set(c, PL_OP_POPULATE, PL_EMULATED, "touch each page", "MADV_WILLNEED does not fault anonymous memory in");
	pl_cap_set(c, PL_OP_ZERO_PAGE, PL_UNAVAILABLE, NULL, "Darwin shows no process the physical page behind an address");
	pl_cap_set(c, PL_OP_RSS, PL_NATIVE, "task_info(MACH_TASK_BASIC_INFO) resident_size", NULL);
	pl_cap_set(c, PL_OP_MAP_PATTERN, PL_EMULATED, "memset", "no reference-page mapping: the pattern is written up front");
}

/* vm_map places the entry at an address with the mask's bits clear: aligned, nothing to trim. */
int pl_reserve(size_t len, size_t align, void **out)
{
	int e = pl_reserve_args(len, &align);
	if (e)
		return e;
	vm_address_t addr = 0;
	kern_return_t kr = vm_map(mach_task_self(), &addr, len, align - 1, VM_FLAGS_ANYWHERE, MACH_PORT_NULL, 0, FALSE,
				  VM_PROT_NONE, VM_PROT_READ | VM_PROT_WRITE | VM_PROT_EXECUTE, VM_INHERIT_DEFAULT);
	if (kr != KERN_SUCCESS)
		return pl_posix_reserve(len, align, out); /* a sandbox that denies Mach calls still has mmap */
	*out = (void *)addr; /* Mach speaks addresses as integers; Darwin has no capability pointers */
	return 0;
}

int pl_commit(void *p, size_t len)
{
	return pl_posix_commit(p, len);
}

int pl_decommit(void *p, size_t len)
{
	return pl_posix_decommit(p, len);
}

int pl_release(void *p, size_t len)
{
	size_t ps = pl_page_size();
	if ((uintptr_t)p % ps || len % ps)
		return EINVAL; /* checked first: the kernel's EINVAL below is taken for "not this kind of mapping" */
	int e = pl_posix_madvise(p, len, MADV_FREE);
	/* Refused on mappings it does not apply to: keeping the bytes honours old-or-zero. */
	return e == EINVAL ? 0 : e;
}

int pl_release_zero(void *p, size_t len)
{
	size_t ps = pl_page_size();
	if ((uintptr_t)p % ps || len % ps)
		return EINVAL; /* mmap would round the length up and zero bytes the caller kept */
	need_caps();
#ifdef MADV_ZERO
	if (use_zero && pl_posix_madvise(p, len, MADV_ZERO) == 0)
		return 0;
#endif
	return pl_posix_remap_fresh(p, len, PL_PROT_RW);
}

int pl_reusable(void *p, size_t len)
{
	need_caps();
	return use_reusable ? pl_posix_madvise(p, len, MADV_FREE_REUSABLE) : pl_release(p, len);
}

int pl_reuse(void *p, size_t len)
{
	need_caps();
	return use_reusable ? pl_posix_madvise(p, len, MADV_FREE_REUSE) : 0;
}

int pl_guard(void *p, size_t len)
{
	return pl_protect(p, len, PL_PROT_NONE);
}

int pl_unguard(void *p, size_t len)
{
	return pl_posix_remap_fresh(p, len, PL_PROT_RW);
}

int pl_populate(void *p, size_t len, bool write)
{
	pl_touch_pages(p, len, write);
	return 0;
}

/* Mach's inheritance has share, copy and none; no "zero in the child". */
int pl_inherit(void *p, size_t len, enum pl_inherit how)
{
	int flag;
	switch (how) {
	case PL_INHERIT_COPY: flag = VM_INHERIT_COPY; break;
	case PL_INHERIT_SHARE: flag = VM_INHERIT_SHARE; break;
	case PL_INHERIT_NONE: flag = VM_INHERIT_NONE; break;
	case PL_INHERIT_ZERO: return ENOTSUP;
	default: return EINVAL;
	}
	return minherit(p, len, flag) == 0 ? 0 : errno;
}

/* ---- observations: Mach task_info, vm_region, mincore ---- */

int pl_rss(size_t *bytes)
{
	mach_task_basic_info_data_t info;
	mach_msg_type_number_t count = MACH_TASK_BASIC_INFO_COUNT;
	kern_return_t kr = task_info(mach_task_self(), MACH_TASK_BASIC_INFO, (task_info_t)&info, &count);
	if (kr != KERN_SUCCESS)
		return mach_errno(kr);
	*bytes = (size_t)info.resident_size;
	return 0;
}

int pl_footprint(size_t *bytes)
{
	task_vm_info_data_t info;
	mach_msg_type_number_t count = TASK_VM_INFO_COUNT;
	kern_return_t kr = task_info(mach_task_self(), TASK_VM_INFO, (task_info_t)&info, &count);
	if (kr != KERN_SUCCESS)
		return mach_errno(kr);
	if (count < TASK_VM_INFO_REV1_COUNT)
		return ENOTSUP; /* a kernel older than phys_footprint */
	*bytes = (size_t)info.phys_footprint;
	return 0;
}

int pl_huge_bytes(const void *p, size_t len, size_t *bytes)
{
	(void)p; (void)len; (void)bytes;
	return ENOTSUP;
}

int pl_page_flags(const void *p, unsigned *flags, unsigned *known)
{
	char v = 0;
	const char *page = (const char *)p - ((uintptr_t)p & (pl_page_size() - 1));
	if (mincore(page, pl_page_size(), &v) != 0)
		return errno;
	*known = PL_PF_PRESENT | PL_PF_SWAPPED;
	*flags = ((v & MINCORE_INCORE) ? PL_PF_PRESENT : 0) | ((v & MINCORE_PAGED_OUT) ? PL_PF_SWAPPED : 0);
	return 0;
}

#define REGION_WALK_MAX 65536 /* entries looked at, at most: never loop without a bound */

/* Map entries overlapping [p, p+len), walked with vm_region_recurse_64 (submaps entered). */
int pl_mapping_count(const void *p, size_t len, size_t *count)
{
	vm_address_t addr = (vm_address_t)p, end = addr + len;
	natural_t depth = 0;
	*count = 0;
	for (int i = 0; i < REGION_WALK_MAX && addr < end; i++) {
		vm_size_t size = 0;
		vm_region_submap_info_data_64_t info;
		mach_msg_type_number_t n = VM_REGION_SUBMAP_INFO_COUNT_64;
		kern_return_t kr = vm_region_recurse_64(mach_task_self(), &addr, &size, &depth,
							(vm_region_recurse_info_t)&info, &n);
		if (kr == KERN_INVALID_ADDRESS)
			return 0; /* nothing mapped at or above addr */
		if (kr != KERN_SUCCESS)
			return mach_errno(kr);
		if (info.is_submap) {
			depth++;
			continue;
		}
		if (addr < end)
			++*count;
		addr += size;
	}
	return 0;
}

int pl_swap_total(uint64_t *bytes)
{
	struct xsw_usage u;
	size_t len = sizeof(u);
	if (sysctlbyname("vm.swapusage", &u, &len, NULL, 0) != 0)
		return errno;
	*bytes = u.xsu_total;
	return 0;
}

const char *pl_huge_unavailable(void)
{
	return "no transparent huge pages on Darwin (superpages only by an explicit VM_FLAGS_SUPERPAGE_SIZE_2MB on x86_64)";
}

int pl_folio_bytes(const void *p, size_t *bytes)
{
	(void)p; (void)bytes;
	return ENOTSUP;
}

int pl_force_write(void *p, unsigned char byte)
{
	(void)p; (void)byte;
	return ENOTSUP; /* vm_write to oneself goes through the protection only with task_for_pid rights */
}

int pl_memlimit_create(size_t bytes, struct pl_memlimit **out, const char **why)
{
	(void)bytes; (void)out;
	*why = "no memory-limited process groups on Darwin (jetsam limits are the system's)";
	return ENOTSUP;
}

int pl_map_pattern(size_t len, unsigned char byte, enum pl_pattern_mode mode, void **out,
		   enum pl_pattern_mode *used)
{
	return pl_map_pattern_memset_only(len, byte, mode, out, used);
}

int pl_unmap_pattern(void *p, size_t len)
{
	return pl_unmap(p, len);
}
