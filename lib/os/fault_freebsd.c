/* What a caught signal means on FreeBSD: what POSIX says (a refused access
 * is SIGSEGV/SEGV_ACCERR since FreeBSD 7, machdep.prot_fault_translation),
 * plus FreeBSD's own codes: SIGBUS/BUS_OOMERR when no page could be had for
 * a fault, SIGSEGV/SEGV_PKUERR for an x86 protection-key violation. */
#include "config.h"
#include "os_internal.h"

#include <signal.h>
#include <stddef.h>

enum pl_fault_kind pl_os_fault_kind(int sig, int code, void *addr, bool write)
{
	(void)addr; (void)write;
#ifdef BUS_OOMERR
	if (sig == SIGBUS && code == BUS_OOMERR)
		return PL_FAULT_OTHER; /* out of memory, not a fault of the mapping */
#endif
	return pl_posix_fault_kind(sig, code);
}

const char *pl_os_fault_code_name(int sig, int code)
{
#ifdef BUS_OOMERR
	if (sig == SIGBUS && code == BUS_OOMERR)
		return "BUS_OOMERR";
#endif
#ifdef SEGV_PKUERR
	if (sig == SIGSEGV && code == SEGV_PKUERR)
		return "SEGV_PKUERR";
#endif
	return NULL;
}
