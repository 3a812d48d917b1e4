/* Acting on memory the way the kernel's other users do, on Linux: a debugger's
 * forced write (/proc/self/mem), page migration (mbind MPOL_MF_MOVE), and the
 * two kinds of pins copy-on-write must respect: a pipe holding pages by
 * reference (vmsplice) and a long-term writable pin (io_uring fixed buffers,
 * read back through IORING_OP_WRITE_FIXED into a memfd). */
#include "pl_internal.h"
#include "linux_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#ifdef HAVE_LINUX_IO_URING_H
#include <linux/io_uring.h>
#endif

/* include/uapi/linux/mempolicy.h */
#define PL_MPOL_LOCAL 4
#define PL_MPOL_MF_MOVE (1 << 1)

int pl_force_write(void *p, unsigned char byte)
{
	int fd = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? ENOTSUP : errno;
	ssize_t n = pwrite(fd, &byte, 1, (off_t)(uintptr_t)p);
	int e = n == 1 ? 0 : n < 0 ? errno : EIO;
	close(fd);
	return e;
}

int pl_migrate(void *p, size_t len)
{
#ifdef SYS_mbind
	if (syscall(SYS_mbind, p, len, PL_MPOL_LOCAL, NULL, 0UL, PL_MPOL_MF_MOVE) == 0)
		return 0;
	return errno == ENOSYS ? ENOTSUP : errno; /* ENOSYS: a kernel without NUMA */
#else
	(void)p; (void)len;
	return ENOTSUP;
#endif
}

struct ring; /* an io_uring with one entry, for the long-term pin */

struct pl_pin {
	enum pl_pin_kind kind;
	void *addr;
	size_t len;
	int fds[2]; /* pipe: read and write ends; long-term: ring fd and the memfd written through it */
	struct ring *ring;
};

static int pipe_pin(struct pl_pin *pin)
{
	if (pipe2(pin->fds, O_CLOEXEC) != 0)
		return errno;
	(void)fcntl(pin->fds[1], F_SETPIPE_SZ, (int)pin->len); /* best effort: a short pipe takes less */
	struct iovec iov = {pin->addr, pin->len};
	ssize_t n = vmsplice(pin->fds[1], &iov, 1, SPLICE_F_NONBLOCK);
	if (n <= 0)
		return n < 0 ? errno : EIO;
	pin->len = (size_t)n;
	return 0;
}

static int pipe_read(struct pl_pin *pin, void *out, size_t len, size_t *got)
{
	size_t want = len < pin->len ? len : pin->len, n = 0;
	while (n < want) {
		ssize_t r = read(pin->fds[0], (char *)out + n, want - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? errno : EIO;
		n += (size_t)r;
	}
	*got = n;
	return 0;
}

#if defined(HAVE_LINUX_IO_URING_H) && defined(SYS_io_uring_setup)
struct ring {
	int fd;
	struct io_uring_params p;
	unsigned char *sq, *cq;
	struct io_uring_sqe *sqes;
	size_t sq_len, cq_len, sqes_len;
};

static void *map_ring(int fd, size_t len, off_t off)
{
	void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, off);
	return m == MAP_FAILED ? NULL : m;
}

static void ring_close(struct ring *r)
{
	if (r->sq)
		munmap(r->sq, r->sq_len);
	if (r->cq)
		munmap(r->cq, r->cq_len);
	if (r->sqes)
		munmap(r->sqes, r->sqes_len);
	if (r->fd >= 0)
		close(r->fd);
	free(r);
}

static int ring_open(struct ring **out)
{
	struct ring *r = calloc(1, sizeof(*r));
	if (!r)
		return ENOMEM;
	r->fd = (int)syscall(SYS_io_uring_setup, 1, &r->p);
	if (r->fd < 0) {
		int e = errno == ENOSYS || errno == EPERM ? ENOTSUP : errno; /* EPERM: io_uring_disabled */
		free(r);
		return e;
	}
	r->sq_len = r->p.sq_off.array + r->p.sq_entries * sizeof(uint32_t);
	r->cq_len = r->p.cq_off.cqes + r->p.cq_entries * sizeof(struct io_uring_cqe);
	r->sqes_len = r->p.sq_entries * sizeof(struct io_uring_sqe);
	r->sq = map_ring(r->fd, r->sq_len, IORING_OFF_SQ_RING);
	r->cq = map_ring(r->fd, r->cq_len, IORING_OFF_CQ_RING);
	r->sqes = map_ring(r->fd, r->sqes_len, IORING_OFF_SQES);
	if (!r->sq || !r->cq || !r->sqes) {
		int e = errno;
		ring_close(r);
		return e;
	}
	*out = r;
	return 0;
}

/* Submit one write of the registered buffer to fd at offset 0 and wait for it; its result in *res. */
static int ring_write_fixed(struct ring *r, int fd, void *buf, size_t len, int *res)
{
	uint32_t *tail = (uint32_t *)(r->sq + r->p.sq_off.tail), *array = (uint32_t *)(r->sq + r->p.sq_off.array);
	uint32_t mask = *(uint32_t *)(r->sq + r->p.sq_off.ring_mask), t = *tail;
	memset(&r->sqes[0], 0, sizeof(r->sqes[0]));
	r->sqes[0].opcode = IORING_OP_WRITE_FIXED;
	r->sqes[0].fd = fd;
	r->sqes[0].addr = (uint64_t)(uintptr_t)buf;
	r->sqes[0].len = (uint32_t)len;
	r->sqes[0].buf_index = 0;
	array[t & mask] = 0;
	__atomic_store_n(tail, t + 1, __ATOMIC_RELEASE);
	if (syscall(SYS_io_uring_enter, r->fd, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0)
		return errno;
	uint32_t *head = (uint32_t *)(r->cq + r->p.cq_off.head);
	uint32_t cmask = *(uint32_t *)(r->cq + r->p.cq_off.ring_mask), h = __atomic_load_n(head, __ATOMIC_ACQUIRE);
	if (h == __atomic_load_n((uint32_t *)(r->cq + r->p.cq_off.tail), __ATOMIC_ACQUIRE))
		return EIO; /* GETEVENTS returned without the completion */
	*res = ((struct io_uring_cqe *)(r->cq + r->p.cq_off.cqes))[h & cmask].res;
	__atomic_store_n(head, h + 1, __ATOMIC_RELEASE);
	return 0;
}

static int longterm_pin(struct pl_pin *pin)
{
	int e = ring_open(&pin->ring);
	if (e)
		return e;
	struct iovec iov = {pin->addr, pin->len};
	/* Registering pins the pages FOLL_WRITE | FOLL_LONGTERM; ENOMEM when RLIMIT_MEMLOCK is too small. */
	if (syscall(SYS_io_uring_register, pin->ring->fd, IORING_REGISTER_BUFFERS, &iov, 1) != 0)
		return errno == EINVAL ? ENOTSUP : errno;
	pin->fds[0] = (int)syscall(SYS_memfd_create, "pagelab-pin", MFD_CLOEXEC);
	return pin->fds[0] < 0 ? errno : 0;
}

static int longterm_read(struct pl_pin *pin, void *out, size_t len, size_t *got)
{
	size_t want = len < pin->len ? len : pin->len;
	int res = 0, e = ring_write_fixed(pin->ring, pin->fds[0], pin->addr, want, &res);
	if (e)
		return e;
	if (res < 0 || (size_t)res != want)
		return res < 0 ? -res : EIO;
	ssize_t n = pread(pin->fds[0], out, want, 0);
	if (n != (ssize_t)want)
		return n < 0 ? errno : EIO;
	*got = want;
	return 0;
}
#else
static void ring_close(struct ring *r)
{
	(void)r;
}

static int longterm_pin(struct pl_pin *pin)
{
	(void)pin;
	return ENOTSUP; /* built without <linux/io_uring.h> */
}

static int longterm_read(struct pl_pin *pin, void *out, size_t len, size_t *got)
{
	(void)pin; (void)out; (void)len; (void)got;
	return ENOTSUP;
}
#endif

int pl_pin_start(void *p, size_t len, enum pl_pin_kind kind, struct pl_pin **out)
{
	struct pl_pin *pin = calloc(1, sizeof(*pin));
	if (!pin)
		return ENOMEM;
	*pin = (struct pl_pin){kind, p, len, {-1, -1}, NULL};
	int e = kind == PL_PIN_PIPE ? pipe_pin(pin) : longterm_pin(pin);
	if (e) {
		(void)pl_pin_stop(pin);
		return e;
	}
	*out = pin;
	return 0;
}

int pl_pin_read(struct pl_pin *pin, void *out, size_t len, size_t *got)
{
	return pin->kind == PL_PIN_PIPE ? pipe_read(pin, out, len, got) : longterm_read(pin, out, len, got);
}

int pl_pin_stop(struct pl_pin *pin)
{
	for (int i = 0; i < 2; i++)
		if (pin->fds[i] >= 0)
			close(pin->fds[i]);
	if (pin->ring)
		ring_close(pin->ring); /* closing the ring unregisters the buffer and drops the pin */
	free(pin);
	return 0;
}
