/* refalloc unit tests: size classes and block indexing (white box), aligned
 * allocation, usable sizes, realloc in place, guard pages, the hardening
 * checks triggered on purpose (each in a child that must die with SIGABRT),
 * and the configuration parser. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pagelab/refalloc.h"
#include "../../lib/refalloc/internal.h"
#include "../refalloc/tap.h"

static void test_classes(void)
{
	ra_classes_init();
	bool good = true;
	for (size_t size = 0; size <= RA_SMALL_MAX && good; size++) {
		unsigned c = ra_class_of(size);
		good = c < RA_NCLASS && ra_class_size[c] >= size && (c == 0 || ra_class_size[c - 1] < size);
	}
	ok(good, "every size up to 32 KiB maps to the smallest class that holds it");
	good = true;
	for (unsigned c = 0; c < RA_NCLASS && good; c++) {
		uint32_t bs = ra_class_size[c], recip = (uint32_t)((((uint64_t)1 << 32) + bs - 1) / bs);
		for (uint64_t off = 0; off < RA_SPAN && good; off++)
			good = ((off * recip) >> 32) == off / bs;
	}
	ok(good, "reciprocal block index is exact for every offset in a span and every class");
}

static void test_alignment(void)
{
	bool good = true;
	for (size_t align = 8; align <= ((size_t)8 << 20) && good; align <<= 1) {
		static const size_t sizes[] = {1, 100, 5000, 70000, 2u << 20};
		for (size_t i = 0; i < 5 && good; i++) {
			void *p = NULL;
			int e = ra_posix_memalign(&p, align, sizes[i]);
			good = e == 0 && ((uintptr_t)p & (align - 1)) == 0 && ra_usable_size(p) >= sizes[i];
			if (good)
				memset(p, 1, sizes[i]);
			ra_free(p);
		}
	}
	ok(good, "posix_memalign from 8 B to 8 MiB alignment, sizes 1 B to 2 MiB");
	void *p = (void *)1;
	ok(ra_posix_memalign(&p, 24, 10) == EINVAL && p == (void *)1, "posix_memalign(24) is EINVAL");
	errno = 0;
	ok(ra_memalign(3, 10) == NULL && errno == EINVAL, "memalign(3) is NULL with EINVAL");
}

static void test_sizes_and_realloc(void)
{
	errno = 0;
	ok(ra_malloc(SIZE_MAX - 4096) == NULL && errno == ENOMEM, "malloc(SIZE_MAX - 4096) is NULL with ENOMEM");
	errno = 0;
	ok(ra_calloc(SIZE_MAX / 2, 3) == NULL && errno == ENOMEM, "calloc overflow is NULL with ENOMEM");
	char *p = ra_malloc(0);
	ok(p && ra_usable_size(p) >= 1, "malloc(0) returns a unique block");
	ra_free(p);
	p = ra_malloc(40000);
	memset(p, 9, 40000);
	char *q = ra_realloc(p, 100000);
	ok(q == p && q[39999] == 9, "a medium object grows in place when the next spans are free");
	q = ra_realloc(q, 90000);
	ok(q == p, "shrinking by less than half stays in place");
	ra_free(q);
	ok(ra_realloc(ra_malloc(10), 0) == NULL, "realloc(p, 0) frees and returns NULL");
	ok(!ra_owns(q) && ra_usable_size(NULL) == 0, "a freed pointer is no longer owned");
}

static sigjmp_buf jump;
static void on_fault(int sig)
{
	siglongjmp(jump, sig);
}

/* The signal a write to p raises, or 0 (our handler, so sanitizers do not intercept it). */
static int write_faults(char *p)
{
	struct sigaction sa = {.sa_handler = on_fault}, old_segv, old_bus;
	sigaction(SIGSEGV, &sa, &old_segv);
	sigaction(SIGBUS, &sa, &old_bus);
	volatile int sig = sigsetjmp(jump, 1);
	if (sig == 0)
		*(volatile char *)p = 1;
	sigaction(SIGSEGV, &old_segv, NULL);
	sigaction(SIGBUS, &old_bus, NULL);
	return sig;
}

static void test_guards(void)
{
	char *big = ra_malloc((size_t)3 << 20);
	size_t cap = ra_usable_size(big);
	int last = write_faults(big + cap - 1), after = write_faults(big + cap);
	ok(last == 0 && (after == SIGSEGV || after == SIGBUS),
	   "writing just past a large object faults (last byte: %d, next: %d)", last, after);
	ra_free(big);
	char *p = ra_malloc(64);
	char *guard = (char *)((uintptr_t)p & ~(uintptr_t)(RA_SEG - 1)) + RA_GUARD_SPAN * RA_SPAN;
	int sig = write_faults(guard);
	ok(sig == SIGSEGV || sig == SIGBUS, "the last span of a small segment is a guard (signal %d)", sig);
	ra_free(p);
}

static int double_free(void *arg)
{
	size_t size = *(size_t *)arg;
	void *p = ra_malloc(size);
	ra_free(p);
	ra_free(p);
	return 0;
}

static int foreign_free(void *arg)
{
	int on_stack;
	(void)arg;
	ra_free(&on_stack);
	return 0;
}

static int interior_free(void *arg)
{
	size_t size = *(size_t *)arg;
	char *p = ra_malloc(size);
	ra_free(p + 16);
	return 0;
}

static int libc_free(void *arg)
{
	(void)arg;
	void *p = malloc(100); /* the C library's, not ours */
	ra_free(p);
	return 0;
}

static void *free_in_thread(void *p)
{
	ra_free(p);
	return NULL;
}

/* Freed by another thread first: the block sits in that thread's cache. */
static int cross_thread_double_free(void *arg)
{
	(void)arg;
	void *p = ra_malloc(64);
	pthread_t t;
	if (pthread_create(&t, NULL, free_in_thread, p) != 0 || pthread_join(t, NULL) != 0)
		return 1;
	ra_free(p);
	return 0;
}

/* The block after a fresh one was carved into the cache but never handed out. */
static int free_of_unreturned_neighbour(void *arg)
{
	(void)arg;
	char *p = ra_malloc(64);
	ra_free(p + 64);
	return 0;
}

/* A write into a freed, cached block is caught when it is handed out again. */
static int write_after_free(void *arg)
{
	(void)arg;
	char *p = ra_malloc(64);
	ra_free(p);
	memset(p, 0x5a, 64);
	(void)ra_malloc(64);
	return 0;
}

static void test_hardening(void)
{
	int cst = in_child(cross_thread_double_free, NULL, 20);
	ok(cst == 128 + SIGABRT, "double free of a block another thread freed first aborts (status %d)", cst);
	cst = in_child(free_of_unreturned_neighbour, NULL, 20);
	ok(cst == 128 + SIGABRT, "free of a block never handed out aborts (status %d)", cst);
	cst = in_child(write_after_free, NULL, 20);
	ok(cst == 128 + SIGABRT, "a write into a freed small block aborts the next malloc of its class (status %d)", cst);
	static size_t sizes[] = {24, 5000, 200000, (size_t)5 << 20};
	for (size_t i = 0; i < 4; i++) {
		int st = in_child(double_free, &sizes[i], 20);
		ok(st == 128 + SIGABRT, "double free of a %zu-byte object aborts (status %d)", sizes[i], st);
		st = in_child(interior_free, &sizes[i], 20);
		ok(st == 128 + SIGABRT, "free inside a %zu-byte object aborts (status %d)", sizes[i], st);
	}
	int st = in_child(foreign_free, NULL, 20);
	ok(st == 128 + SIGABRT, "free of a stack address aborts (status %d)", st);
	st = in_child(libc_free, NULL, 20);
	ok(st == 128 + SIGABRT, "free of another allocator's block aborts (status %d)", st);
}

static void test_parse(void)
{
	enum ra_release r;
	enum ra_init i;
	enum ra_pattern_via v;
	ok(ra_release_parse("release_zero", &r) == 0 && r == RA_RELEASE_ZERO && ra_release_parse("zero", &r) == EINVAL,
	   "release names parse, unknown ones are EINVAL");
	ok(ra_init_parse("pattern", &i) == 0 && i == RA_INIT_PATTERN && ra_via_parse("refpage", &v) == 0 &&
		   v == RA_PATTERN_REFPAGE && ra_via_parse("", &v) == EINVAL,
	   "init and via names parse");
	struct ra_config c;
	setenv("REFALLOC_RELEASE", "decommit", 1);
	setenv("REFALLOC_PATTERN", "0x5a", 1);
	setenv("REFALLOC_RETAIN", "12345", 1);
	ok(ra_config_from_env(&c) == 0 && c.release == RA_RELEASE_DECOMMIT && c.pattern == 0x5a && c.retain == 12345,
	   "REFALLOC_* variables are read");
	setenv("REFALLOC_PATTERN", "300", 1);
	ok(ra_config_from_env(&c) == EINVAL && c.pattern == 0xAA, "an out-of-range pattern is EINVAL and keeps the default");
	unsetenv("REFALLOC_RELEASE");
	unsetenv("REFALLOC_PATTERN");
	unsetenv("REFALLOC_RETAIN");
	ra_config_default(&c);
	c.release = (enum ra_release)99;
	ok(ra_configure(&c) == EINVAL, "ra_configure rejects an unknown policy");
}

int main(void)
{
	test_parse();
	test_classes();
	test_alignment();
	test_sizes_and_realloc();
	struct ra_config c;
	ra_config_default(&c);
	ok(ra_configure(&c) == EBUSY, "ra_configure after the first allocation is EBUSY");
	test_guards();
	test_hardening();
	return tap_done();
}
