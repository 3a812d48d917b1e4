/* mmap: anonymous zero-fill, MAP_FIXED, MAP_FIXED_NOREPLACE, MAP_NORESERVE,
 * MAP_POPULATE, and the errors allocators rely on. */
#include "pagelab/check.h"

#include <errno.h>
#include <sys/mman.h>

PC_PROBE_KINDS(anon_zero_fill, "mmap.anon.zero_fill", PC_ANON_KINDS | PC_THP,
	       "fresh anonymous memory reads zero on every page")
{
	struct pc_map m;
	size_t len = 64 * pl_page_size();
	pc_map_or_skip(ctx, len, &m);
	bool zero = pc_all_bytes(m.addr, m.len, 0);
	pc_observe(ctx, "contents", "%s", zero ? "zero" : "nonzero");
	PC_CHECK(ctx, zero, "fresh anonymous memory is not zero-filled");
	pc_unmap(&m);
	pc_pass(ctx);
}
