/* What a caught signal means on Darwin. A refused access to a mapped page
 * (KERN_PROTECTION_FAILURE) raises SIGBUS there, not SIGSEGV/SEGV_ACCERR,
 * with the same code as a page past the end of a file (KERN_MEMORY_ERROR):
 * the page's own protection, read back with vm_region_64, tells the two
 * apart. An unmapped address is SIGSEGV/SEGV_MAPERR, as everywhere. */
#include "config.h"
#include "os_internal.h"

#include <signal.h>
#include <stddef.h>
#include <mach/mach.h>

/* *prot = the protection of the map entry holding addr; false when nothing is mapped there. */
static bool protection_at(void *addr, vm_prot_t *prot)
{
	vm_address_t at = (vm_address_t)addr;
	vm_size_t size = 0;
	vm_region_basic_info_data_64_t info;
	mach_msg_type_number_t count = VM_REGION_BASIC_INFO_COUNT_64;
	mach_port_t object = MACH_PORT_NULL;
	kern_return_t kr = vm_region_64(mach_task_self(), &at, &size, VM_REGION_BASIC_INFO_64,
					(vm_region_info_t)&info, &count, &object);
	/* vm_region_64 answers with the next entry above addr when addr itself is in a hole. */
	if (kr != KERN_SUCCESS || at > (vm_address_t)addr)
		return false;
	*prot = info.protection;
	return true;
}

enum pl_fault_kind pl_os_fault_kind(int sig, int code, void *addr, bool write)
{
	vm_prot_t prot;
	if (sig != SIGBUS || !addr || !protection_at(addr, &prot))
		return pl_posix_fault_kind(sig, code);
	bool allowed = (prot & VM_PROT_READ) && (!write || (prot & VM_PROT_WRITE));
	return allowed ? PL_FAULT_BUS : PL_FAULT_ACCESS;
}

const char *pl_os_fault_code_name(int sig, int code)
{
	(void)sig; (void)code;
	return NULL;
}
