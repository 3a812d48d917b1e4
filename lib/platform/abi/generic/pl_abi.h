/* ABI values for a POSIX system with no pl_abi.h of its own: nothing beyond
 * what its headers define. A port adds abi/<platform>/pl_abi.h with the
 * numbers its headers may lack. */
#ifndef PAGELAB_PL_ABI_H
#define PAGELAB_PL_ABI_H

#include <sys/mman.h>

#ifndef MAP_ANONYMOUS
#define MAP_ANONYMOUS MAP_ANON /* the BSD spelling */
#endif

#endif
