/* Every release policy x init policy x pattern route: a child configures
 * refalloc, then allocates and frees small, medium and large objects and
 * checks what each allocation reads (the init contract; calloc reads zero
 * whatever the policy), that contents survive realloc, and that the
 * statistics balance once everything is freed. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "pagelab/refalloc.h"
#include "../refalloc/tap.h"

struct combo {
	enum ra_release release;
	enum ra_init init;
	enum ra_pattern_via via;
};

static bool all_bytes(const unsigned char *p, size_t n, unsigned char b)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != b)
			return false;
	return true;
}

static const size_t sizes[] = {1, 16, 24, 100, 128, 500, 4096, 20000, 32768, 40000, 300000, 1 << 20,
			       (1 << 20) + 1, 3 << 20, 9 << 20};
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))

/* Allocate each size, check the init contract, dirty it, free it; three rounds
 * so the second and third see reused and released memory. */
static int rounds(const struct combo *c, unsigned char pat)
{
	for (int round = 0; round < 3; round++) {
		void *p[NSIZES], *z[NSIZES];
		for (size_t i = 0; i < NSIZES; i++) {
			p[i] = ra_malloc(sizes[i]);
			z[i] = ra_calloc(1, sizes[i]);
			if (!p[i] || !z[i])
				return 10;
			if (c->init == RA_INIT_ZERO && !all_bytes(p[i], sizes[i], 0))
				return 11;
			if (c->init == RA_INIT_PATTERN && !all_bytes(p[i], sizes[i], pat))
				return 12;
			if (!all_bytes(z[i], sizes[i], 0))
				return 13;
			memset(p[i], 0x5c, sizes[i]);
			memset(z[i], 0x3d, sizes[i]);
		}
		for (size_t i = 0; i < NSIZES; i++) {
			ra_free(p[i]);
			ra_free(z[i]);
		}
		if (ra_trim() != 0)
			return 14;
	}
	return 0;
}

static int realloc_keeps(void)
{
	unsigned char *p = ra_malloc(10);
	if (!p)
		return 20;
	memset(p, 7, 10);
	for (size_t n = 20; n < ((size_t)12 << 20); n = n * 3 / 2 + 1) {
		unsigned char *q = ra_realloc(p, n);
		if (!q || !all_bytes(q, 10, 7))
			return 21;
		p = q;
	}
	ra_free(p);
	return 0;
}

static int run_combo(void *arg)
{
	const struct combo *c = arg;
	struct ra_config cfg;
	ra_config_default(&cfg);
	cfg.release = c->release;
	cfg.init = c->init;
	cfg.via = c->via;
	cfg.pattern = 0xA5;
	cfg.retain = 0;
	int e = ra_configure(&cfg);
	if (e == ENOTSUP)
		return 77;
	if (e)
		return 2;
	int r = rounds(c, 0xA5);
	if (!r)
		r = realloc_keeps();
	struct ra_stats st;
	if (!r && ra_stats(&st) != 0)
		r = 30;
	if (!r && st.in_use != 0)
		r = 31;
	if (!r && c->release != RA_RELEASE_NONE && st.released == 0)
		r = 32;
	return r;
}

int main(void)
{
	static const enum ra_pattern_via vias[] = {RA_PATTERN_MEMSET, RA_PATTERN_REFPAGE, RA_PATTERN_AUTO};
	for (int r = RA_RELEASE_NONE; r <= RA_RELEASE_DECOMMIT; r++) {
		for (int i = RA_INIT_NONE; i <= RA_INIT_PATTERN; i++) {
			for (size_t v = 0; v < (i == RA_INIT_PATTERN ? 3u : 1u); v++) {
				struct combo c = {(enum ra_release)r, (enum ra_init)i, vias[v]};
				int st = in_child(run_combo, &c, 60);
				const char *name = i == RA_INIT_PATTERN ? ra_via_name(c.via) : "-";
				if (st == 77)
					skip("release=%s init=%s via=%s: no reference-page mapping on this system",
					     ra_release_name(c.release), ra_init_name(c.init), name);
				else
					ok(st == 0, "release=%s init=%s via=%s (child status %d)",
					   ra_release_name(c.release), ra_init_name(c.init), name, st);
			}
		}
	}
	return tap_done();
}
