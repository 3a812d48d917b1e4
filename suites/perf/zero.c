/* zero: the user-space cost of clearing a page with memset, to set next to
 * the fault benchmarks so reports can state what share of a fault is zeroing.
 * Hot: the same one-page or 2 MiB buffer (cache-resident). Cold: successive
 * pages of a resident 128 MiB buffer, as a fault meets a freshly allocated page. */
#include "config.h"
#include "pagelab/bench.h"
#include "pagelab/env.h"
#include "pagelab/platform.h"

#include <stdio.h>
#include <string.h>

PB_BENCH(bm_zero_memset, "zero/memset",
	 "memset to zero a resident, cache-warm buffer of the argument's size (one base page or one 2 MiB page)",
	 .args = PB_ARGS(PB_PAGE, PB_MIB(2)))
{
	size_t len = pb_arg_bytes(s);
	if (!len)
		return;
	void *p;
	int e = pl_map_anon(len, &p);
	if (e) {
		pb_skip_errno(s, "mmap", e);
		return;
	}
	memset(p, 1, len);
	while (pb_keep_running(s)) {
		memset(p, 0, len);
		pb_do_not_optimize(p);
	}
	e = pl_unmap(p, len);
	if (e) {
		pb_skip_errno(s, "munmap", e);
		return;
	}
	pb_per_page(s, len / pl_page_size());
}

#define COLD_BUFFER PB_MIB(128) /* four times a 32 MiB last-level cache */

PB_BENCH(bm_zero_memset_cold, "zero/memset_cold",
	 "memset to zero one base page of a resident 128 MiB buffer, moving on each iteration (cache-cold)",
	 .args = PB_ARGS(PB_PAGE))
{
	size_t len = pb_arg_bytes(s), buf = (size_t)COLD_BUFFER;
	if (!len)
		return;
	unsigned char *p;
	int e = pl_map_anon(buf, (void **)&p);
	if (e) {
		pb_skip_errno(s, "mmap", e);
		return;
	}
	memset(p, 1, buf);
	size_t off = 0;
	while (pb_keep_running(s)) {
		memset(p + off, 0, len);
		pb_do_not_optimize(p + off);
		off = off + len < buf ? off + len : 0;
	}
	e = pl_unmap(p, buf);
	if (e) {
		pb_skip_errno(s, "munmap", e);
		return;
	}
	pb_per_page(s, len / pl_page_size());
}
