/* Pages supplied by the process itself on Linux: userfaultfd in missing mode,
 * one descriptor and one handler thread per supplier. The thread answers each
 * missing-page fault (UFFDIO_COPY of a filled page, or UFFDIO_ZEROPAGE) and
 * counts UFFD_EVENT_REMOVE, which MADV_DONTNEED and MADV_REMOVE raise on a
 * watched range; with UFFD_FEATURE_SIGBUS the kernel refuses missing pages
 * itself. */
#include "pl_internal.h"
#include "linux_internal.h"

#include <errno.h>
#include <stdlib.h>

#if defined(HAVE_LINUX_USERFAULTFD_H) && defined(HAVE_SYS_userfaultfd)
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/userfaultfd.h>

#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00) /* Linux 6.1, /dev/userfaultfd */
#endif

int pl_linux_open_uffd(int flags, bool *user_only)
{
	int fd = (int)syscall(SYS_userfaultfd, flags);
	if (fd >= 0) {
		*user_only = false;
		return fd;
	}
	int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (dev >= 0) {
		fd = ioctl(dev, USERFAULTFD_IOC_NEW, flags);
		close(dev);
		if (fd >= 0) {
			*user_only = false;
			return fd;
		}
	}
	fd = (int)syscall(SYS_userfaultfd, flags | PL_UFFD_USER_MODE_ONLY);
	if (fd < 0)
		return -errno;
	*user_only = true;
	return fd;
}

struct pl_supplier {
	int fd, stop[2];
	pthread_t thread;
	bool running;
	enum pl_supply_mode mode;
	void *page; /* a page holding the fill byte */
	uintptr_t start;
	size_t len;
	_Atomic uint64_t faults, removals;
};

static int copy_page(struct pl_supplier *s, uintptr_t addr, void *src)
{
	struct uffdio_copy copy = {.dst = addr, .src = (uintptr_t)src, .len = pl_page_size(), .mode = 0};
	return ioctl(s->fd, UFFDIO_COPY, &copy) == 0 ? 0 : errno;
}

static void serve(struct pl_supplier *s, uintptr_t addr)
{
	size_t ps = pl_page_size();
	addr &= ~(uintptr_t)(ps - 1);
	int e;
	if (s->mode == PL_SUPPLY_ZERO_PAGE) {
		struct uffdio_zeropage z = {.range = {.start = addr, .len = ps}, .mode = 0};
		e = ioctl(s->fd, UFFDIO_ZEROPAGE, &z) == 0 ? 0 : errno;
	} else {
		e = copy_page(s, addr, s->page);
	}
	if (e == 0)
		return;
	/* Raced with another fill or an unmap: wake the faulting thread to retry. */
	struct uffdio_range range = {.start = addr, .len = ps};
	(void)ioctl(s->fd, UFFDIO_WAKE, &range);
}

static void *handler_main(void *arg)
{
	struct pl_supplier *s = arg;
	struct pollfd fds[2] = {{s->fd, POLLIN, 0}, {s->stop[0], POLLIN, 0}};
	for (;;) {
		if (poll(fds, 2, -1) < 0 && errno != EINTR)
			return NULL;
		if (fds[1].revents)
			return NULL;
		struct uffd_msg msg;
		ssize_t n = read(s->fd, &msg, sizeof(msg));
		if (n != (ssize_t)sizeof(msg))
			continue; /* EAGAIN: another wake-up already took it */
		if (msg.event == UFFD_EVENT_PAGEFAULT) {
			atomic_fetch_add(&s->faults, 1); /* before the answer wakes the faulting thread */
			serve(s, (uintptr_t)msg.arg.pagefault.address);
		}
		else if (msg.event == UFFD_EVENT_REMOVE)
			atomic_fetch_add(&s->removals, 1);
	}
}

/* The handler runs with every signal blocked: a probe's fault handler must stay in the probe's thread. */
static int start_thread(struct pl_supplier *s)
{
	sigset_t all, old;
	sigfillset(&all);
	int e = pthread_sigmask(SIG_BLOCK, &all, &old);
	if (e)
		return e;
	e = pthread_create(&s->thread, NULL, handler_main, s);
	int r = pthread_sigmask(SIG_SETMASK, &old, NULL);
	s->running = e == 0;
	return e ? e : r;
}

static int open_and_register(struct pl_supplier *s)
{
	bool user_only;
	s->fd = pl_linux_open_uffd(O_CLOEXEC | O_NONBLOCK, &user_only);
	if (s->fd < 0)
		return -s->fd == ENOSYS ? ENOTSUP : -s->fd;
	struct uffdio_api api = {.api = UFFD_API, .features = UFFD_FEATURE_EVENT_REMOVE};
	if (s->mode == PL_SUPPLY_SIGBUS)
		api.features |= UFFD_FEATURE_SIGBUS;
	if (ioctl(s->fd, UFFDIO_API, &api) != 0)
		return errno == EINVAL ? ENOTSUP : errno; /* the kernel lacks a feature asked for */
	struct uffdio_register reg = {.range = {.start = s->start, .len = s->len}, .mode = UFFDIO_REGISTER_MODE_MISSING};
	if (ioctl(s->fd, UFFDIO_REGISTER, &reg) != 0)
		return errno;
	return pipe2(s->stop, O_CLOEXEC) == 0 ? 0 : errno;
}

int pl_supply_start(void *p, size_t len, enum pl_supply_mode mode, unsigned char byte, struct pl_supplier **out)
{
	struct pl_supplier *s = calloc(1, sizeof(*s));
	if (!s)
		return ENOMEM;
	s->fd = s->stop[0] = s->stop[1] = -1;
	s->mode = mode;
	s->start = (uintptr_t)p;
	s->len = len;
	int e = pl_map_anon(pl_page_size(), &s->page);
	if (e == 0) {
		memset(s->page, byte, pl_page_size());
		e = open_and_register(s);
	}
	if (e == 0)
		e = start_thread(s);
	if (e) {
		(void)pl_supply_stop(s);
		return e;
	}
	*out = s;
	return 0;
}

int pl_supply_place(struct pl_supplier *s, void *p, unsigned char byte)
{
	void *src;
	int e = pl_map_anon(pl_page_size(), &src);
	if (e)
		return e;
	memset(src, byte, pl_page_size());
	e = copy_page(s, (uintptr_t)p, src);
	int u = pl_unmap(src, pl_page_size());
	return e ? e : u;
}

int pl_supply_stats(struct pl_supplier *s, struct pl_supply_stats *st)
{
	st->faults = atomic_load(&s->faults);
	st->removals = atomic_load(&s->removals);
	return 0;
}

int pl_supply_stop(struct pl_supplier *s)
{
	int e = 0;
	if (s->running) {
		if (write(s->stop[1], "x", 1) != 1)
			e = errno;
		else
			e = pthread_join(s->thread, NULL);
	}
	if (s->fd >= 0) {
		struct uffdio_range range = {.start = s->start, .len = s->len};
		(void)ioctl(s->fd, UFFDIO_UNREGISTER, &range); /* the range may be gone already */
		close(s->fd);
	}
	for (int i = 0; i < 2; i++)
		if (s->stop[i] >= 0)
			close(s->stop[i]);
	if (s->page)
		(void)pl_unmap(s->page, pl_page_size());
	free(s);
	return e;
}
#else
int pl_supply_start(void *p, size_t len, enum pl_supply_mode mode, unsigned char byte, struct pl_supplier **out)
{
	(void)p; (void)len; (void)mode; (void)byte; (void)out;
	return ENOTSUP; /* built without <linux/userfaultfd.h> */
}

int pl_supply_place(struct pl_supplier *s, void *p, unsigned char byte)
{
	(void)s; (void)p; (void)byte;
	return ENOTSUP;
}

int pl_supply_stats(struct pl_supplier *s, struct pl_supply_stats *st)
{
	(void)s; (void)st;
	return ENOTSUP;
}

int pl_supply_stop(struct pl_supplier *s)
{
	(void)s;
	return ENOTSUP;
}
#endif
