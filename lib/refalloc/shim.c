/* The malloc family for LD_PRELOAD, forwarding to refalloc. Start-up needs no
 * dlsym and no libc allocation (nested calls go to refalloc's bootstrap
 * arena), fork is handled by refalloc's atfork handlers, and memory from
 * before the shim took over is never passed here because the shim is the
 * process's only allocator from its first call. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include "pagelab/refalloc.h"

#define EXPORT __attribute__((visibility("default")))

EXPORT void *malloc(size_t size);
EXPORT void free(void *p);
EXPORT void *calloc(size_t n, size_t size);
EXPORT void *realloc(void *p, size_t size);
EXPORT void *reallocarray(void *p, size_t n, size_t size);
EXPORT void *memalign(size_t align, size_t size);
EXPORT int posix_memalign(void **out, size_t align, size_t size);
EXPORT void *aligned_alloc(size_t align, size_t size);
EXPORT void *valloc(size_t size);
EXPORT void *pvalloc(size_t size);
EXPORT size_t malloc_usable_size(void *p);

void *malloc(size_t size)
{
	return ra_malloc(size);
}

void free(void *p)
{
	ra_free(p);
}

void *calloc(size_t n, size_t size)
{
	return ra_calloc(n, size);
}

void *realloc(void *p, size_t size)
{
	return ra_realloc(p, size);
}

void *reallocarray(void *p, size_t n, size_t size)
{
	size_t total;
	if (__builtin_mul_overflow(n, size, &total)) {
		errno = ENOMEM;
		return NULL;
	}
	return ra_realloc(p, total);
}

void *memalign(size_t align, size_t size)
{
	return ra_memalign(align, size);
}

int posix_memalign(void **out, size_t align, size_t size)
{
	return ra_posix_memalign(out, align, size);
}

void *aligned_alloc(size_t align, size_t size)
{
	return ra_memalign(align, size);
}

static size_t page_size(void)
{
	long ps = sysconf(_SC_PAGESIZE);
	return ps > 0 ? (size_t)ps : 4096;
}

void *valloc(size_t size)
{
	return ra_memalign(page_size(), size);
}

void *pvalloc(size_t size)
{
	size_t ps = page_size(), rounded = (size + ps - 1) & ~(ps - 1);
	if (rounded < size) {
		errno = ENOMEM;
		return NULL;
	}
	return ra_memalign(ps, rounded ? rounded : ps);
}

size_t malloc_usable_size(void *p)
{
	return ra_usable_size(p);
}
