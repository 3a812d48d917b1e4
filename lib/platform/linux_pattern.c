/* Pattern-initialised memory on Linux. No mainline kernel has a reference-page
 * mapping (the MAP_REFPAGE proposal was not merged), so PL_PATTERN_NATIVE is
 * ENOTSUP. userfaultfd emulates it: a handler thread answers each missing-page
 * fault with UFFDIO_COPY of a page filled with the pattern byte. Pages dropped
 * later with MADV_DONTNEED fault again and so read as the pattern again.
 *
 * Privilege: a full userfaultfd (root, vm.unprivileged_userfaultfd=1 or access
 * to /dev/userfaultfd) also serves faults taken inside system calls (read(2)
 * into a fresh buffer). UFFD_USER_MODE_ONLY (Linux 5.11, unprivileged) does
 * not: such a system call fails with EFAULT. So PL_PATTERN_AUTO and
 * PL_PATTERN_UFFD_FULL use userfaultfd only in full mode, PL_PATTERN_UFFD
 * accepts either, and *used tells them apart.
 *
 * fork: without UFFD_FEATURE_EVENT_FORK the child's copies lose their
 * registration. Opening a descriptor and starting a thread are not safe in a
 * fork handler of a multithreaded process, so the child handler only drops
 * the parent's descriptor; the child's next userfaultfd pl_map_pattern opens
 * its own, starts its handler and registers the inherited ranges again. */
#include "pl_internal.h"
#include "linux_internal.h"

#ifdef HAVE_LINUX_USERFAULTFD_H

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/userfaultfd.h>


#define MAX_REGIONS 4096

struct pattern_region {
	_Atomic uintptr_t start, end;
	_Atomic unsigned char byte;
};

static pthread_mutex_t pat_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pattern_region regions[MAX_REGIONS];
static _Atomic size_t nregions;
static _Atomic unsigned table_seq; /* odd while the table changes (a seqlock) */
static int uffd = -1;
static bool uffd_user_mode_only;
static int uffd_open_error; /* sticky: why userfaultfd cannot be used */
static bool atfork_registered;
static void *_Atomic pattern_page[256];


/* Must be called with pat_lock held. */
static int pattern_page_for(unsigned char byte, void **out)
{
	if (!pattern_page[byte]) {
		void *p;
		int e = pl_map_anon(pl_page_size(), &p);
		if (e)
			return e;
		memset(p, byte, pl_page_size());
		atomic_store_explicit(&pattern_page[byte], p, memory_order_release);
	}
	*out = pattern_page[byte];
	return 0;
}

/* Lock-free for the handler: a thread holding an allocator lock may be the one
 * waiting on the fault, and fork holds pat_lock, so the handler never takes it. */
static bool lookup_byte(uintptr_t addr, unsigned char *byte)
{
	for (;;) {
		unsigned seq = atomic_load_explicit(&table_seq, memory_order_acquire);
		if (seq & 1)
			continue;
		bool found = false;
		size_t n = atomic_load_explicit(&nregions, memory_order_relaxed);
		for (size_t i = 0; i < n && i < MAX_REGIONS && !found; i++) {
			uintptr_t start = atomic_load_explicit(&regions[i].start, memory_order_relaxed);
			uintptr_t end = atomic_load_explicit(&regions[i].end, memory_order_relaxed);
			if (addr >= start && addr < end) {
				*byte = atomic_load_explicit(&regions[i].byte, memory_order_relaxed);
				found = true;
			}
		}
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&table_seq, memory_order_relaxed) == seq)
			return found;
	}
}

static void serve_fault(int fd, uintptr_t addr)
{
	size_t ps = pl_page_size();
	addr &= ~(uintptr_t)(ps - 1);
	unsigned char byte;
	void *src = NULL;
	if (lookup_byte(addr, &byte))
		src = atomic_load_explicit(&pattern_page[byte], memory_order_acquire);
	if (src) {
		struct uffdio_copy copy = {.dst = addr, .src = (uintptr_t)src, .len = ps, .mode = 0};
		if (ioctl(fd, UFFDIO_COPY, &copy) == 0)
			return;
	}
	/* Raced with another fill or an unmap (EEXIST, ENOENT): wake the faulting thread to retry. */
	struct uffdio_range range = {.start = addr, .len = ps};
	(void)ioctl(fd, UFFDIO_WAKE, &range);
}

static void *handler_main(void *arg)
{
	int fd = (int)(intptr_t)arg;
	for (;;) {
		struct uffd_msg msg;
		ssize_t n = read(fd, &msg, sizeof(msg));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n != (ssize_t)sizeof(msg))
			return NULL; /* descriptor closed (e.g. in a forked child): nothing left to serve */
		if (msg.event == UFFD_EVENT_PAGEFAULT)
			serve_fault(fd, (uintptr_t)msg.arg.pagefault.address);
	}
}

static int start_handler(int fd)
{
	pthread_attr_t attr;
	sigset_t all, old;
	int e = pthread_attr_init(&attr);
	if (e)
		return e;
	e = pthread_attr_setstacksize(&attr, 64 * 1024);
	if (!e)
		e = pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	/* The handler takes no signals, so the program's signals go to its own threads. */
	sigfillset(&all);
	if (!e)
		e = pthread_sigmask(SIG_SETMASK, &all, &old);
	if (!e) {
		pthread_t t;
		e = pthread_create(&t, &attr, handler_main, (void *)(intptr_t)fd);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	pthread_attr_destroy(&attr);
	return e;
}

static int register_range(int fd, uintptr_t start, uintptr_t end)
{
	struct uffdio_register reg = {
		.range = {.start = start, .len = end - start},
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};
	return ioctl(fd, UFFDIO_REGISTER, &reg) == 0 ? 0 : errno;
}

/* Must be called with pat_lock held: a descriptor, negotiated, with its handler running. */
static int uffd_start_locked(void)
{
	bool user_only = false;
	int fd = pl_linux_open_uffd(O_CLOEXEC, &user_only);
	if (fd < 0)
		return -fd;
	struct uffdio_api api = {.api = UFFD_API, .features = 0};
	int e = ioctl(fd, UFFDIO_API, &api) == 0 ? 0 : errno;
	for (size_t i = 0; i < nregions && !e; i++)
		e = register_range(fd, regions[i].start, regions[i].end);
	if (!e)
		e = start_handler(fd);
	if (e) {
		close(fd);
		return e;
	}
	uffd = fd;
	uffd_user_mode_only = user_only;
	return 0;
}

static void atfork_child(void)
{
	/* The parent's descriptor serves the parent; uffd_ready_locked opens the child's own later. */
	if (uffd >= 0) {
		close(uffd);
		uffd = -1;
	}
	pthread_mutex_unlock(&pat_lock);
}

static void atfork_prepare(void)
{
	pthread_mutex_lock(&pat_lock);
}

static void atfork_parent(void)
{
	pthread_mutex_unlock(&pat_lock);
}

/* Must be called with pat_lock held. */
static int uffd_ready_locked(void)
{
	if (uffd >= 0)
		return 0;
	if (uffd_open_error)
		return uffd_open_error;
	if (!atfork_registered) {
		int e = pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
		if (e)
			return e;
		atfork_registered = true;
	}
	uffd_open_error = uffd_start_locked();
	return uffd_open_error;
}

/* Must be called with pat_lock held and the table open for change. */
static void table_set(size_t i, uintptr_t start, uintptr_t end, unsigned char byte)
{
	atomic_store_explicit(&regions[i].start, start, memory_order_relaxed);
	atomic_store_explicit(&regions[i].end, end, memory_order_relaxed);
	atomic_store_explicit(&regions[i].byte, byte, memory_order_relaxed);
}

static void table_begin(void)
{
	atomic_fetch_add_explicit(&table_seq, 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
}

static void table_end(void)
{
	atomic_fetch_add_explicit(&table_seq, 1, memory_order_release);
}

/* Must be called with pat_lock held and room in the table. */
static void table_add_locked(uintptr_t start, uintptr_t end, unsigned char byte)
{
	table_begin();
	size_t n = atomic_load_explicit(&nregions, memory_order_relaxed);
	table_set(n, start, end, byte);
	atomic_store_explicit(&nregions, n + 1, memory_order_relaxed);
	table_end();
}

/* Must be called with pat_lock held: forget [start, end) in the region table. */
static int forget_range_locked(uintptr_t start, uintptr_t end)
{
	int e = 0;
	table_begin();
	for (size_t i = 0; i < atomic_load_explicit(&nregions, memory_order_relaxed); i++) {
		uintptr_t rs = regions[i].start, re = regions[i].end;
		unsigned char b = regions[i].byte;
		size_t n = nregions;
		if (re <= start || rs >= end)
			continue;
		if (rs < start && re > end) {
			if (n == MAX_REGIONS) {
				e = ENOMEM;
				break;
			}
			table_set(n, end, re, b);
			atomic_store_explicit(&nregions, n + 1, memory_order_relaxed);
			table_set(i, rs, start, b);
		} else if (rs < start) {
			table_set(i, rs, start, b);
		} else if (re > end) {
			table_set(i, end, re, b);
		} else {
			table_set(i, regions[n - 1].start, regions[n - 1].end, regions[n - 1].byte);
			atomic_store_explicit(&nregions, n - 1, memory_order_relaxed);
			i--;
		}
	}
	table_end();
	return e;
}

static int map_uffd(size_t len, unsigned char byte, bool need_kernel_faults, void **out, bool *user_only)
{
	pthread_mutex_lock(&pat_lock);
	int e = uffd_ready_locked();
	if (!e && need_kernel_faults && uffd_user_mode_only)
		e = ENOTSUP;
	*user_only = uffd_user_mode_only;
	if (!e && nregions == MAX_REGIONS)
		e = ENOMEM;
	void *dummy;
	if (!e)
		e = pattern_page_for(byte, &dummy);
	void *p = NULL;
	if (!e)
		e = pl_map_anon(len, &p);
	if (!e) {
		e = register_range(uffd, (uintptr_t)p, (uintptr_t)p + len);
		if (e)
			munmap(p, len);
	}
	if (!e) {
		table_add_locked((uintptr_t)p, (uintptr_t)p + len, byte);
		*out = p;
	}
	pthread_mutex_unlock(&pat_lock);
	return e;
}

int pl_map_pattern(size_t len, unsigned char byte, enum pl_pattern_mode mode, void **out,
		   enum pl_pattern_mode *used)
{
	size_t ps = pl_page_size();
	if (len == 0 || !out)
		return EINVAL;
	len = (len + ps - 1) & ~(ps - 1);
	bool user_only = false;
	int e;
	switch (mode) {
	case PL_PATTERN_NATIVE:
		return ENOTSUP; /* no MAP_REFPAGE in any mainline kernel */
	case PL_PATTERN_UFFD:
	case PL_PATTERN_UFFD_FULL:
		e = map_uffd(len, byte, mode == PL_PATTERN_UFFD_FULL, out, &user_only);
		if (e == EPERM || e == ENOSYS || e == EINVAL)
			e = ENOTSUP;
		break;
	case PL_PATTERN_AUTO:
		e = map_uffd(len, byte, true, out, &user_only);
		if (e == 0 || e == ENOMEM)
			break;
		/* userfaultfd unusable here: write the pattern up front */
		__attribute__((fallthrough));
	default:
		e = pl_map_pattern_memset(len, byte, out);
		if (e == 0 && used)
			*used = PL_PATTERN_MEMSET;
		return e;
	}
	if (e == 0 && used)
		*used = user_only ? PL_PATTERN_UFFD : PL_PATTERN_UFFD_FULL;
	return e;
}

int pl_unmap_pattern(void *p, size_t len)
{
	size_t ps = pl_page_size();
	if ((uintptr_t)p % ps || len == 0)
		return EINVAL;
	len = (len + ps - 1) & ~(ps - 1);
	pthread_mutex_lock(&pat_lock);
	int e = munmap(p, len) == 0 ? 0 : errno;
	if (!e)
		e = forget_range_locked((uintptr_t)p, (uintptr_t)p + len);
	pthread_mutex_unlock(&pat_lock);
	return e;
}

#else /* built without kernel headers (e.g. musl): the pattern is written up front */

int pl_map_pattern(size_t len, unsigned char byte, enum pl_pattern_mode mode, void **out,
		   enum pl_pattern_mode *used)
{
	return pl_map_pattern_memset_only(len, byte, mode, out, used);
}

int pl_unmap_pattern(void *p, size_t len)
{
	return pl_unmap(p, len);
}
#endif
