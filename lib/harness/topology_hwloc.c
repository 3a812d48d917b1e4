/* The hwloc topology back-end: real cores and packages (a core's first PU
 * in this process's allowed set is where a pinned thread runs), binding
 * through hwloc, and the topology as hwloc XML for the run directory. */
#include "config.h"
#include "topology_impl.h"

#include <errno.h>
#include <hwloc.h>
#include <stdio.h>
#include <string.h>

static hwloc_topology_t topology;

static int first_allowed_pu(hwloc_obj_t core, hwloc_const_cpuset_t allowed, int *pu)
{
	hwloc_bitmap_t s = hwloc_bitmap_alloc();
	if (!s)
		return ENOMEM;
	hwloc_bitmap_and(s, core->cpuset, allowed);
	*pu = hwloc_bitmap_first(s);
	hwloc_bitmap_free(s);
	return 0;
}

static int hw_load(struct pl_topo_data *t)
{
	if (hwloc_topology_init(&topology) != 0)
		return errno ? errno : ENOMEM;
	if (hwloc_topology_load(topology) != 0) {
		int e = errno ? errno : EIO;
		hwloc_topology_destroy(topology);
		topology = NULL;
		return e;
	}
	hwloc_const_cpuset_t allowed = hwloc_topology_get_allowed_cpuset(topology);
	int n = hwloc_get_nbobjs_by_type(topology, HWLOC_OBJ_CORE);
	for (int i = 0; i < n && t->ncores < PL_TOPO_MAX_CORES; i++) {
		hwloc_obj_t c = hwloc_get_obj_by_type(topology, HWLOC_OBJ_CORE, (unsigned)i);
		int pu, e = first_allowed_pu(c, allowed, &pu);
		if (e)
			return e;
		if (pu < 0)
			continue;
		hwloc_obj_t pkg = hwloc_get_ancestor_obj_by_type(topology, HWLOC_OBJ_PACKAGE, c);
		t->core[t->ncores++] = (struct pl_topo_core){pu, pkg ? (int)pkg->logical_index : 0};
	}
	t->npus = hwloc_get_nbobjs_by_type(topology, HWLOC_OBJ_PU);
	t->npackages = hwloc_get_nbobjs_by_type(topology, HWLOC_OBJ_PACKAGE);
	t->nnuma = hwloc_get_nbobjs_by_type(topology, HWLOC_OBJ_NUMANODE);
	return 0;
}

static void hw_source(char *buf, size_t len)
{
	unsigned v = hwloc_get_api_version();
	snprintf(buf, len, "hwloc API %u.%u.%u", v >> 16, (v >> 8) & 0xff, v & 0xff);
}

static int hw_bind(int pu, bool *verified)
{
	*verified = false;
	hwloc_bitmap_t want = hwloc_bitmap_alloc(), got = hwloc_bitmap_alloc();
	int e = want && got ? 0 : ENOMEM;
	if (!e) {
		hwloc_bitmap_only(want, (unsigned)pu);
		if (hwloc_set_cpubind(topology, want, HWLOC_CPUBIND_THREAD) != 0)
			e = errno == ENOSYS || errno == EXDEV ? ENOTSUP : (errno ? errno : EINVAL);
		else if (hwloc_get_cpubind(topology, got, HWLOC_CPUBIND_THREAD) == 0)
			*verified = hwloc_bitmap_isequal(want, got);
	}
	hwloc_bitmap_free(want);
	hwloc_bitmap_free(got);
	return e;
}

static int hw_unbind(void)
{
	return hwloc_set_cpubind(topology, hwloc_topology_get_allowed_cpuset(topology), HWLOC_CPUBIND_THREAD) == 0
		       ? 0 : (errno ? errno : EINVAL);
}

static int hw_write_xml(const char *path)
{
	char *buf = NULL;
	int len = 0;
	if (hwloc_topology_export_xmlbuffer(topology, &buf, &len, 0) != 0)
		return errno ? errno : EIO;
	struct pl_atomic a;
	int e = pl_atomic_open(&a, path);
	if (!e) {
		size_t n = len > 0 ? strnlen(buf, (size_t)len) : 0;
		if (fwrite(buf, 1, n, a.f) != n) {
			e = EIO;
			pl_atomic_abort(&a);
		} else {
			e = pl_atomic_commit(&a);
		}
	}
	hwloc_free_xmlbuffer(topology, buf);
	return e;
}

static const struct pl_topo_backend hw_backend = {2, hw_load, hw_source, hw_bind, hw_unbind,
						      hw_write_xml};

__attribute__((constructor)) static void register_hw(void)
{
	pl_topo_register(&hw_backend);
}
