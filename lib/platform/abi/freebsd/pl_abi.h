/* FreeBSD ABI values the page layer and the probes use. FreeBSD's own
 * headers (14.x) define every one of them: MAP_GUARD and MAP_EXCL (11.2),
 * INHERIT_ZERO (12.0), MAP_ALIGNED(n), MINCORE_SUPER. A kernel that does not
 * know a flag refuses it with EINVAL, which the start-up checks record.
 * Linux's names (MADV_WIPEONFORK, MADV_COLD ...) get values FreeBSD refuses
 * (../pl_abi_posix.h: its madvise refuses any advice above MADV_CORE with
 * EINVAL, as an unknown one), so their probes skip as unsupported; FreeBSD's
 * own counterparts are reached through the page layer (pl_inherit,
 * pl_guard, pl_reserve). */
#ifndef PAGELAB_PL_ABI_H
#define PAGELAB_PL_ABI_H

#include <sys/mman.h>

/* What the headers lack: values the system refuses (shared with the generic layer). */
#include "../pl_abi_posix.h"

#endif
