/* Darwin ABI values the page layer and the probes use. macOS's own headers
 * define them: MADV_FREE_REUSABLE / MADV_FREE_REUSE (sys/mman.h), the Mach VM
 * calls and VM_FLAGS_* (mach/mach_vm.h, mach/vm_statistics.h), VM_INHERIT_*
 * (mach/vm_inherit.h), TASK_VM_INFO's phys_footprint (mach/task_info.h).
 * Linux's names (MADV_COLD, MAP_FIXED_NOREPLACE ...) are left undefined: the
 * probes of them skip as "not in this system's headers". Darwin's
 * MADV_PAGEOUT (10) is in its headers but meant for the kernel: the probes
 * that name it record what the running system answers. */
#ifndef PAGELAB_PL_ABI_H
#define PAGELAB_PL_ABI_H

#include <sys/mman.h>

#endif
