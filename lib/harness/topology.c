/* Topology and thread placement: hwloc, else sched_setaffinity, else nothing.
 * See include/pagelab/topology.h. */
#include "config.h"
#include "pagelab/topology.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef HAVE_HWLOC
#include <hwloc.h>
#endif
#if defined(HAVE_SCHED_H) && defined(__linux__)
#include <sched.h>
#define HAVE_AFFINITY 1
#endif

#define MAX_CORES 1024

struct core {
	int pu;      /* OS index of the PU a pinned thread runs on */
	int package; /* logical package index, 0 when unknown */
};

static struct {
	pthread_once_t once;
	int err;
	const char *source;
	int ncores, npus, npackages, nnuma;
	struct core core[MAX_CORES];
	int measuring;          /* index into core[], -1 when not pinned */
	bool pin_verified;
	char pin_note[160];
#ifdef HAVE_HWLOC
	hwloc_topology_t topo;
#endif
#ifdef HAVE_AFFINITY
	cpu_set_t initial;
#endif
} topo = {.once = PTHREAD_ONCE_INIT, .measuring = -1};

#ifdef HAVE_HWLOC
static int load_hwloc(void)
{
	if (hwloc_topology_init(&topo.topo) != 0)
		return errno ? errno : ENOMEM;
	if (hwloc_topology_load(topo.topo) != 0) {
		hwloc_topology_destroy(topo.topo);
		topo.topo = NULL;
		return errno ? errno : EIO;
	}
	hwloc_const_cpuset_t allowed = hwloc_topology_get_allowed_cpuset(topo.topo);
	int n = hwloc_get_nbobjs_by_type(topo.topo, HWLOC_OBJ_CORE);
	for (int i = 0; i < n && topo.ncores < MAX_CORES; i++) {
		hwloc_obj_t c = hwloc_get_obj_by_type(topo.topo, HWLOC_OBJ_CORE, (unsigned)i);
		hwloc_bitmap_t s = hwloc_bitmap_alloc();
		if (!s)
			return ENOMEM;
		hwloc_bitmap_and(s, c->cpuset, allowed);
		int pu = hwloc_bitmap_first(s);
		hwloc_bitmap_free(s);
		if (pu < 0)
			continue;
		hwloc_obj_t pkg = hwloc_get_ancestor_obj_by_type(topo.topo, HWLOC_OBJ_PACKAGE, c);
		topo.core[topo.ncores++] = (struct core){pu, pkg ? (int)pkg->logical_index : 0};
	}
	topo.npus = hwloc_get_nbobjs_by_type(topo.topo, HWLOC_OBJ_PU);
	topo.npackages = hwloc_get_nbobjs_by_type(topo.topo, HWLOC_OBJ_PACKAGE);
	topo.nnuma = hwloc_get_nbobjs_by_type(topo.topo, HWLOC_OBJ_NUMANODE);
	topo.source = "hwloc";
	return topo.ncores > 0 ? 0 : ENOENT;
}
#endif

/* Without hwloc every allowed CPU counts as a core of package 0. */
static int load_fallback(void)
{
#ifdef HAVE_AFFINITY
	if (sched_getaffinity(0, sizeof(topo.initial), &topo.initial) == 0) {
		for (int cpu = 0; cpu < CPU_SETSIZE && topo.ncores < MAX_CORES; cpu++)
			if (CPU_ISSET(cpu, &topo.initial))
				topo.core[topo.ncores++] = (struct core){cpu, 0};
		topo.npus = topo.ncores;
		topo.npackages = topo.nnuma = 0;
		topo.source = "sched_getaffinity";
		return 0;
	}
#endif
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	topo.ncores = topo.npus = n > 0 ? (int)(n < MAX_CORES ? n : MAX_CORES) : 1;
	topo.source = "sysconf";
	return 0;
}

static void load(void)
{
#ifdef HAVE_HWLOC
	if (load_hwloc() == 0)
		return;
	topo.ncores = 0;
#endif
	topo.err = load_fallback();
}

int pl_topo_init(void)
{
	int e = pthread_once(&topo.once, load);
	return e ? e : topo.err;
}

int pl_topo_ncores(void)
{
	return pl_topo_init() == 0 ? topo.ncores : 1;
}

/* Bind the calling thread to one PU; *verified when read back equal. */
static int bind_pu(int pu, bool *verified)
{
	*verified = false;
#ifdef HAVE_HWLOC
	if (topo.topo) {
		hwloc_bitmap_t want = hwloc_bitmap_alloc(), got = hwloc_bitmap_alloc();
		int e = want && got ? 0 : ENOMEM;
		if (!e) {
			hwloc_bitmap_only(want, (unsigned)pu);
			if (hwloc_set_cpubind(topo.topo, want, HWLOC_CPUBIND_THREAD) != 0)
				e = errno == ENOSYS || errno == EXDEV ? ENOTSUP : (errno ? errno : EINVAL);
			else if (hwloc_get_cpubind(topo.topo, got, HWLOC_CPUBIND_THREAD) == 0)
				*verified = hwloc_bitmap_isequal(want, got);
		}
		hwloc_bitmap_free(want);
		hwloc_bitmap_free(got);
		return e;
	}
#endif
#ifdef HAVE_AFFINITY
	cpu_set_t want, got;
	CPU_ZERO(&want);
	CPU_SET(pu, &want);
	if (sched_setaffinity(0, sizeof(want), &want) != 0)
		return errno;
	*verified = sched_getaffinity(0, sizeof(got), &got) == 0 && CPU_EQUAL(&want, &got);
	return 0;
#else
	(void)pu;
	return ENOTSUP;
#endif
}

int pl_topo_pin_measuring(int cpu)
{
	int e = pl_topo_init();
	if (e)
		return e;
	int core = cpu < 0 ? topo.ncores - 1 : -1;
	for (int i = 0; cpu >= 0 && i < topo.ncores; i++)
		if (topo.core[i].pu == cpu)
			core = i;
	if (core < 0)
		return EINVAL;
	e = bind_pu(topo.core[core].pu, &topo.pin_verified);
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
	int pkg = topo.measuring >= 0 ? topo.core[topo.measuring].package : 0;
	/* Two passes: cores sharing the measuring core's package, then the rest. */
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < topo.ncores; i++) {
			if (i == topo.measuring || (topo.core[i].package == pkg) != (pass == 0))
				continue;
			if (n-- == 0) {
				bool verified;
				return bind_pu(topo.core[i].pu, &verified);
			}
		}
	return EINVAL;
}

int pl_topo_unpin(void)
{
	int e = pl_topo_init();
	if (e)
		return e;
#ifdef HAVE_HWLOC
	if (topo.topo)
		return hwloc_set_cpubind(topo.topo, hwloc_topology_get_allowed_cpuset(topo.topo), HWLOC_CPUBIND_THREAD) == 0
			       ? 0 : (errno ? errno : EINVAL);
#endif
#ifdef HAVE_AFFINITY
	return sched_setaffinity(0, sizeof(topo.initial), &topo.initial) == 0 ? 0 : errno;
#else
	return ENOTSUP;
#endif
}

void pl_topo_json_members(struct pl_json *j)
{
	if (pl_topo_init() != 0)
		return;
	pl_json_key(j, "topology");
	pl_json_begin_object(j);
	char ver[32] = "";
#ifdef HAVE_HWLOC
	unsigned v = hwloc_get_api_version();
	if (topo.topo)
		snprintf(ver, sizeof(ver), " %u.%u.%u", v >> 16, (v >> 8) & 0xff, v & 0xff);
#endif
	char src[64];
	snprintf(src, sizeof(src), "%s%s", topo.source, ver[0] ? " API" : "");
	if (ver[0])
		snprintf(src + strlen(src), sizeof(src) - strlen(src), "%s", ver);
	pl_json_kv_str(j, "source", src);
	pl_json_kv_int(j, "packages", topo.npackages);
	pl_json_kv_int(j, "numa_nodes", topo.nnuma);
	pl_json_kv_int(j, "usable_cores", topo.ncores);
	pl_json_kv_int(j, "pus", topo.npus);
	pl_json_end_object(j);
	pl_json_key(j, "pinning");
	pl_json_begin_object(j);
	pl_json_kv_bool(j, "pinned", topo.measuring >= 0);
	if (topo.measuring >= 0) {
		pl_json_kv_int(j, "cpu", topo.core[topo.measuring].pu);
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
#ifdef HAVE_HWLOC
	if (!topo.topo)
		return ENOTSUP;
	char *buf = NULL;
	int len = 0;
	if (hwloc_topology_export_xmlbuffer(topo.topo, &buf, &len, 0) != 0)
		return errno ? errno : EIO;
	struct pl_atomic a;
	e = pl_atomic_open(&a, path);
	if (!e) {
		size_t n = len > 0 ? strnlen(buf, (size_t)len) : 0;
		if (fwrite(buf, 1, n, a.f) != n) {
			e = EIO;
			pl_atomic_abort(&a);
		} else {
			e = pl_atomic_commit(&a);
		}
	}
	hwloc_free_xmlbuffer(topo.topo, buf);
	return e;
#else
	(void)path;
	return ENOTSUP;
#endif
}
