/* Darwin ABI values the page layer and the probes use. macOS's own headers
 * define them: MADV_FREE_REUSABLE / MADV_FREE_REUSE (sys/mman.h), the Mach VM
 * calls and VM_FLAGS_* (mach/mach_vm.h, mach/vm_statistics.h), VM_INHERIT_*
 * (mach/vm_inherit.h), TASK_VM_INFO's phys_footprint (mach/task_info.h).
 * Linux's names (MADV_COLD, MADV_WIPEONFORK ...) get values Darwin refuses
 * (../pl_abi_posix.h), so their probes skip as unsupported. Darwin's
 * MADV_PAGEOUT (10) is in its headers but meant for the kernel: the probes
 * that name it record what the running system answers. */
#ifndef PAGELAB_PL_ABI_H
#define PAGELAB_PL_ABI_H

#include <sys/mman.h>

/* What the headers lack: values the system refuses (shared with the generic layer). */
#include "../pl_abi_posix.h"

#endif
