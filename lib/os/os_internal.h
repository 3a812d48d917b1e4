/* Shared by the POSIX files of the OS layer (lib/os/..._posix.c) and the
 * per-OS files under them; not public. */
#ifndef PAGELAB_OS_INTERNAL_H
#define PAGELAB_OS_INTERNAL_H

#include <stdbool.h>

#include "pagelab/os.h"

/* Per OS (fault_<platform>.c): what a caught signal means; addr is where it
 * faulted (si_addr), write whether the access was a write. */
enum pl_fault_kind pl_os_fault_kind(int sig, int code, void *addr, bool write);
/* Per OS: the system's own name of a si_code POSIX does not name, or NULL. */
const char *pl_os_fault_code_name(int sig, int code);
/* What POSIX says a signal and code mean (fault_posix.c), for the per-OS files. */
enum pl_fault_kind pl_posix_fault_kind(int sig, int code);

#endif
