/* What a caught signal means on a POSIX system without a file of its own: what POSIX says
 * (SIGSEGV/SEGV_MAPERR unmapped, SEGV_ACCERR refused, SIGBUS nothing behind
 * a mapped page). */
#include "config.h"
#include "os_internal.h"

#include <stddef.h>

enum pl_fault_kind pl_os_fault_kind(int sig, int code, void *addr, bool write)
{
	(void)addr; (void)write;
	return pl_posix_fault_kind(sig, code);
}

const char *pl_os_fault_code_name(int sig, int code)
{
	(void)sig; (void)code;
	return NULL;
}
