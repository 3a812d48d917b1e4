/* The page layer fills its capability set the first time anything needs it:
 * an observation or a verb called before pl_caps() must answer exactly as it
 * does after (the same method, never ENOTSUP for want of a filled set). Run
 * as its own process, since the set is filled once per process. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "pagelab/platform.h"
#include "../refalloc/tap.h"

int main(void)
{
	size_t ps = pl_page_size(), before_n = 0, after_n = 0;
	bool before = false, after = false;
	char *p;
	if (pl_map_anon(4 * ps, (void **)&p) != 0) {
		printf("Bail out! mmap failed\n");
		return 1;
	}
	(void)*(volatile char *)p; /* a read fault: the zero page where the system has one */
	p[2 * ps] = 1;
	int e1 = pl_is_zero_page(p, &before);
	int r1 = pl_resident_pages(p, 4 * ps, &before_n);
	const struct pl_caps *c = pl_caps();
	int e2 = pl_is_zero_page(p, &after);
	int r2 = pl_resident_pages(p, 4 * ps, &after_n);
	ok(c->page_size == ps && c->platform != NULL, "the set is filled (platform %s)", c->platform);
	ok(e1 == e2 && (e1 != 0 || before == after), "zero-page identity before pl_caps(): %s, after: %s",
	   e1 ? strerror(e1) : before ? "zero page" : "not zero page", e2 ? strerror(e2) : after ? "zero page" : "not zero page");
	ok(r1 == r2 && before_n == after_n, "residency before and after pl_caps(): %zu and %zu pages", before_n, after_n);
	ok(pl_unmap(p, 4 * ps) == 0, "unmapped");
	return tap_done();
}
