/* Every release policy x init policy x pattern route: a child configures
 * refalloc, then allocates and frees small, medium and large objects and
 * checks what each allocation reads (the init contract; calloc reads zero
 * whatever the policy), that contents survive realloc, and that the
 * statistics balance once everything is freed. Then pattern memory that
 * pl_release_zero had to zero by hand (mlocked), and a forked child whose
 * pattern ranges the page layer can or cannot serve again. */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>

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

#define PAT 0xA5

static int configure_refpage(void)
{
	struct ra_config cfg;
	ra_config_default(&cfg);
	cfg.release = RA_RELEASE_ZERO;
	cfg.init = RA_INIT_PATTERN;
	cfg.via = RA_PATTERN_REFPAGE;
	cfg.pattern = PAT;
	cfg.retain = 0;
	return ra_configure(&cfg);
}

/* Freed while mlocked: MADV_DONTNEED is refused and the page layer writes zeros. */
static int locked_release(void *arg)
{
	(void)arg;
	if (configure_refpage() != 0)
		return 77;
	static const size_t lsizes[] = {300000, 9 << 20};
	for (size_t i = 0; i < 2; i++) {
		unsigned char *p = ra_malloc(lsizes[i]);
		if (!p || !all_bytes(p, lsizes[i], PAT))
			return 1;
		memset(p, 1, lsizes[i]);
		if (mlock(p, lsizes[i]) != 0)
			return 78;
		ra_free(p);
		unsigned char *q = ra_malloc(lsizes[i]);
		if (munlock(p, lsizes[i]) != 0)
			return 3;
		if (!q || !all_bytes(q, lsizes[i], PAT))
			return 10 + (int)i;
		ra_free(q);
	}
	return 0;
}

/* In the child: clean pattern blocks inherited from the parent must read the pattern. */
static int child_reuses(void *arg)
{
	bool no_fds = *(bool *)arg;
	struct rlimit none = {0, 0};
	if (no_fds && setrlimit(RLIMIT_NOFILE, &none) != 0)
		return 4; /* no descriptor: the page layer cannot open the child's userfaultfd */
	unsigned char *q = ra_malloc(9 << 20);
	if (!q || !all_bytes(q, 9 << 20, PAT))
		return 1;
	bool fell_back = ra_pattern_note() != NULL;
	return fell_back == no_fds ? 0 : 5;
}

static int fork_pattern(void *arg)
{
	if (configure_refpage() != 0)
		return 77;
	unsigned char *p = ra_malloc(9 << 20);
	if (!p)
		return 2;
	memset(p, 1, 9 << 20);
	ra_free(p); /* released: clean again, reads the pattern when served */
	return in_child(child_reuses, arg, 30);
}

/* The grandchild's counters restart at fork, below the baseline its parent took. */
static int child_fault_counts(void *arg)
{
	(void)arg;
	void *p = ra_malloc(100);
	struct ra_stats st;
	struct rusage ru;
	if (!p || ra_stats(&st) != 0 || getrusage(RUSAGE_SELF, &ru) != 0)
		return 2;
	ra_free(p);
	return st.minor_faults <= (uint64_t)ru.ru_minflt ? 0 : 1;
}

static int fault_baseline(void *arg)
{
	(void)arg;
	size_t len = (size_t)64 << 20;
	char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return 3;
	memset(m, 1, len); /* thousands of faults before refalloc takes its baseline */
	munmap(m, len);
	void *p = ra_malloc(100);
	if (!p)
		return 2;
	ra_free(p);
	return in_child(child_fault_counts, NULL, 30);
}

static void extra_cases(void)
{
	int fst = in_child(fault_baseline, NULL, 60);
	ok(fst == 0, "a forked child's fault counts start at the fork, never below zero (status %d)", fst);
	int st = in_child(locked_release, NULL, 60);
	if (st == 77 || st == 78)
		skip("mlocked pattern memory: %s", st == 77 ? "no reference-page mapping" : "mlock refused");
	else
		ok(st == 0, "pattern memory zeroed by hand on release (mlocked) is written again (child status %d)", st);
	for (int no_fds = 0; no_fds < 2; no_fds++) {
		bool arg = no_fds;
		st = in_child(fork_pattern, &arg, 60);
		if (st == 77)
			skip("forked child pattern: no reference-page mapping on this system");
		else
			ok(st == 0, "forked child %s reads the pattern in inherited clean blocks (status %d)",
			   no_fds ? "that cannot serve pattern ranges again" : "serving pattern ranges again", st);
	}
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
	extra_cases();
	return tap_done();
}
