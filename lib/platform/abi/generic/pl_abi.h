/* ABI values for a POSIX system with no pl_abi.h of its own: only the
 * fallbacks every POSIX system shares (../pl_abi_posix.h). A port adds
 * abi/<platform>/pl_abi.h with its own numbers, then includes those. */
#ifndef PAGELAB_PL_ABI_H
#define PAGELAB_PL_ABI_H

#include "../pl_abi_posix.h"

#endif
