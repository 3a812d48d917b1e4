/* A fake VM layer for the harness's own tests, preloaded into pagelab-conform
 * (LD_PRELOAD): it makes the system under test misbehave in the ways other
 * systems do, chosen by environment variables.
 *   FAKEVM_REFUSE_ADVICE=N   madvise(advice N) fails with EINVAL, as an unknown advice does
 *   FAKEVM_IGNORE_ADVICE=N   madvise(advice N) returns 0 and does nothing (an emulator's way)
 *   FAKEVM_NOOP_ADVICE=N     madvise(advice N) checks its range as MADV_NORMAL does, then does nothing
 *                            (errors for holes and bad addresses stay right; only the effect is missing)
 *   FAKEVM_MINCORE_LIES=1    mincore reports every page resident
 *   FAKEVM_NO_PAGEMAP_SCAN=1 the PAGEMAP_SCAN ioctl is unknown (ENOTTY), as before Linux 6.7
 * Everything else goes to the real C library. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

static long env_number(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? strtol(v, NULL, 10) : -1;
}

int madvise(void *addr, size_t len, int advice)
{
	static int (*real)(void *, size_t, int);
	if (!real)
		real = (int (*)(void *, size_t, int))dlsym(RTLD_NEXT, "madvise");
	if (advice == env_number("FAKEVM_REFUSE_ADVICE")) {
		errno = EINVAL;
		return -1;
	}
	if (advice == env_number("FAKEVM_IGNORE_ADVICE"))
		return 0;
	if (advice == env_number("FAKEVM_NOOP_ADVICE"))
		return real(addr, len, MADV_NORMAL);
	return real(addr, len, advice);
}

int mincore(void *addr, size_t len, unsigned char *vec)
{
	static int (*real)(void *, size_t, unsigned char *);
	if (!real)
		real = (int (*)(void *, size_t, unsigned char *))dlsym(RTLD_NEXT, "mincore");
	int r = real(addr, len, vec);
	if (r == 0 && env_number("FAKEVM_MINCORE_LIES") == 1) {
		size_t ps = (size_t)sysconf(_SC_PAGESIZE);
		memset(vec, 1, (len + ps - 1) / ps);
	}
	return r;
}

/* PAGEMAP_SCAN is _IOWR('f', 16, struct pm_scan_arg): type 'f', number 16. */
#define IOC_TYPE_NR(req) ((unsigned long)(req) & 0xffffUL)

int ioctl(int fd, unsigned long request, ...)
{
	static int (*real)(int, unsigned long, ...);
	va_list ap;
	va_start(ap, request);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	if (!real)
		real = (int (*)(int, unsigned long, ...))dlsym(RTLD_NEXT, "ioctl");
	if (env_number("FAKEVM_NO_PAGEMAP_SCAN") == 1 && IOC_TYPE_NR(request) == (('f' << 8) | 16)) {
		errno = ENOTTY;
		return -1;
	}
	return real(fd, request, arg);
}
