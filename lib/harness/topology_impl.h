/* Topology back-ends (not a public header). Each back-end is one file that
 * registers itself at start-up; the Makefile builds the files this system
 * has (topology_none.c always, topology_affinity.c where sched_setaffinity
 * exists, topology_hwloc.c where hwloc does), and topology.c uses the one
 * with the highest priority that loads. */
#ifndef PAGELAB_TOPOLOGY_IMPL_H
#define PAGELAB_TOPOLOGY_IMPL_H

#include <stdbool.h>

#include "pagelab/topology.h"

#define PL_TOPO_MAX_CORES 1024

struct pl_topo_core {
	int pu;      /* OS index of the PU a pinned thread runs on */
	int package; /* logical package index, 0 when unknown */
};

struct pl_topo_data {
	int ncores, npus, npackages, nnuma; /* 0 packages/NUMA nodes: unknown */
	struct pl_topo_core core[PL_TOPO_MAX_CORES];
};

struct pl_topo_backend {
	int priority;
	/* Fill *t with the usable cores; 0 or errno (the next back-end is tried). */
	int (*load)(struct pl_topo_data *t);
	/* Where the topology came from, e.g. "hwloc API 2.9.0". */
	void (*source)(char *buf, size_t len);
	/* Bind the calling thread to one PU; *verified when read back equal. ENOTSUP where impossible. */
	int (*bind)(int pu, bool *verified);
	/* Let the calling thread run on every CPU the process may use. */
	int (*unbind)(void);
	/* Write the topology as XML, atomically; ENOTSUP when this back-end has none. */
	int (*write_xml)(const char *path);
};

/* Called by each back-end's constructor. */
void pl_topo_register(const struct pl_topo_backend *b);

#endif
