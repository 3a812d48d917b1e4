/* FreeBSD ABI values the page layer and the probes use. FreeBSD's own
 * headers (14.x) define every one of them: MAP_GUARD and MAP_EXCL (11.2),
 * INHERIT_ZERO (12.0), MAP_ALIGNED(n), MINCORE_SUPER. A kernel that does not
 * know a flag refuses it with EINVAL, which the start-up checks record.
 * Linux's names (MAP_FIXED_NOREPLACE, MADV_WIPEONFORK ...) are left
 * undefined: the probes of them skip as "not in this system's headers", and
 * FreeBSD's own counterparts are reached through the page layer (pl_inherit,
 * pl_guard, pl_reserve). */
#ifndef PAGELAB_PL_ABI_H
#define PAGELAB_PL_ABI_H

#include <sys/mman.h>

#endif
