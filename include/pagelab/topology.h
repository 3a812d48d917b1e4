/* Machine topology and thread placement for benchmarks: hwloc where present,
 * sched_setaffinity or nothing otherwise. Every function returns 0 or an
 * errno value; ENOTSUP where this system cannot do it. */
#ifndef PAGELAB_TOPOLOGY_H
#define PAGELAB_TOPOLOGY_H

#include <stdbool.h>
#include <stddef.h>

#include "pagelab/json.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Load the topology once (hwloc, else the online CPU count). */
int pl_topo_init(void);
/* Usable cores (hwloc cores in this process's allowed set, else online CPUs). */
int pl_topo_ncores(void);
/* Pin the calling thread to CPU `cpu` (OS number of a usable core's first PU;
 * -1: the last usable core) and make its core the measuring core. Checks the
 * binding took where the system can tell. EINVAL for a CPU that is not such a
 * PU; ENOTSUP where binding is unsupported. */
int pl_topo_pin_measuring(int cpu);
/* Pin the calling thread to the n-th usable core other than the measuring one,
 * cores in the measuring core's package first. EINVAL if there is no such core. */
int pl_topo_pin_other(int n);
/* Let the calling thread run on every CPU the process may use. */
int pl_topo_unpin(void);
/* Writes "topology": {...} and "pinning": {...} members (summary and outcome). */
void pl_topo_json_members(struct pl_json *j);
/* Write the topology as hwloc XML to path, atomically; ENOTSUP without hwloc. */
int pl_topo_write_xml(const char *path);

#ifdef __cplusplus
}
#endif
#endif
