/* Topology and thread placement: which cores there are, which one measures,
 * and where other threads go. The back-ends (hwloc, sched_setaffinity,
 * none) are in topology_<backend>.c. See include/pagelab/topology.h. */
#include "config.h"
#include "topology_impl.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define MAX_BACKENDS 4

static const struct pl_topo_backend *backends[MAX_BACKENDS];
static int nbackends;

static struct {
	pthread_once_t once;
	int err;
	const struct pl_topo_backend *b;
	struct pl_topo_data d;
	int measuring; /* index into d.core[], -1 when not pinned */
	bool pin_verified;
	char pin_note[160];
} topo = {.once = PTHREAD_ONCE_INIT, .measuring = -1};

void pl_topo_register(const struct pl_topo_backend *b)
{
	if (nbackends < MAX_BACKENDS)
		backends[nbackends++] = b;
}

/* The back-ends by priority until one loads. */
static void load(void)
{
	bool tried[MAX_BACKENDS] = {false};
	topo.err = ENOTSUP;
	for (int k = 0; k < nbackends && topo.err; k++) {
		int best = -1;
		for (int i = 0; i < nbackends; i++)
			if (!tried[i] && (best < 0 || backends[i]->priority > backends[best]->priority))
				best = i;
		tried[best] = true;
		memset(&topo.d, 0, sizeof(topo.d));
		topo.err = backends[best]->load(&topo.d);
		if (!topo.err && topo.d.ncores > 0)
			topo.b = backends[best];
		else if (!topo.err)
			topo.err = ENOENT;
	}
}

int pl_topo_init(void)
{
	int e = pthread_once(&topo.once, load);
	return e ? e : topo.err;
}

int pl_topo_ncores(void)
{
	return pl_topo_init() == 0 ? topo.d.ncores : 1;
}

int pl_topo_pin_measuring(int cpu)
{
	int e = pl_topo_init();
	if (e)
		return e;
	int core = cpu < 0 ? topo.d.ncores - 1 : -1;
	for (int i = 0; cpu >= 0 && i < topo.d.ncores; i++)
		if (topo.d.core[i].pu == cpu)
			core = i;
	if (core < 0)
		return EINVAL;
	e = topo.b->bind(topo.d.core[core].pu, &topo.pin_verified);
	if (e) {
		snprintf(topo.pin_note, sizeof(topo.pin_note), "binding unsupported or refused: %s", strerror(e));
		return e;
	}
	topo.measuring = core;
	snprintf(topo.pin_note, sizeof(topo.pin_note), "%s", topo.pin_verified ? "bound and read back" : "bound, not verifiable");
	return 0;
}

int pl_topo_pin_other(int n)
{
	int e = pl_topo_init();
	if (e)
		return e;
	int pkg = topo.measuring >= 0 ? topo.d.core[topo.measuring].package : 0;
	/* Two passes: cores sharing the measuring core's package, then the rest. */
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < topo.d.ncores; i++) {
			if (i == topo.measuring || (topo.d.core[i].package == pkg) != (pass == 0))
				continue;
			if (n-- == 0) {
				bool verified;
				return topo.b->bind(topo.d.core[i].pu, &verified);
			}
		}
	return EINVAL;
}

int pl_topo_unpin(void)
{
	int e = pl_topo_init();
	return e ? e : topo.b->unbind();
}

void pl_topo_json_members(struct pl_json *j)
{
	if (pl_topo_init() != 0)
		return;
	char src[96];
	topo.b->source(src, sizeof(src));
	pl_json_key(j, "topology");
	pl_json_begin_object(j);
	pl_json_kv_str(j, "source", src);
	pl_json_kv_int(j, "packages", topo.d.npackages);
	pl_json_kv_int(j, "numa_nodes", topo.d.nnuma);
	pl_json_kv_int(j, "usable_cores", topo.d.ncores);
	pl_json_kv_int(j, "pus", topo.d.npus);
	pl_json_end_object(j);
	pl_json_key(j, "pinning");
	pl_json_begin_object(j);
	pl_json_kv_bool(j, "pinned", topo.measuring >= 0);
	if (topo.measuring >= 0) {
		pl_json_kv_int(j, "cpu", topo.d.core[topo.measuring].pu);
		pl_json_kv_bool(j, "verified", topo.pin_verified);
	}
	pl_json_kv_str(j, "note", topo.pin_note[0] ? topo.pin_note : "not requested");
	pl_json_end_object(j);
}

int pl_topo_write_xml(const char *path)
{
	int e = pl_topo_init();
	if (e)
		return e;
	return topo.b->write_xml ? topo.b->write_xml(path) : ENOTSUP;
}
