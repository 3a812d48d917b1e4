/* The probe side of the conformance harness: what runs inside the probe's own
 * process. Outcomes and observations go to the runner as lines on a pipe:
 *   "O key\tvalue\n"  an observation
 *   "S status\treason\n"  the outcome, after which the process exits.
 */
#include "conform_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pagelab/env.h"

#ifndef MAP_ANONYMOUS
#define MAP_ANONYMOUS MAP_ANON
#endif

/* Write all of buf; the runner is the only reader, so a short write is retried. */
static void write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return; /* the runner went away: nothing left to tell */
		buf += n;
		len -= (size_t)n;
	}
}

/* One protocol line with tabs and newlines in the text folded to spaces. */
static void send_line(struct pc_ctx *ctx, char tag, const char *a, const char *b)
{
	char line[PC_LINE_MAX];
	int n = snprintf(line, sizeof(line), "%c %s\t%s", tag, a, b);
	if (n < 0)
		return;
	size_t len = (size_t)n < sizeof(line) - 1 ? (size_t)n : sizeof(line) - 2;
	for (size_t i = 2; i < len; i++)
		if (line[i] == '\n' || (line[i] == '\t' && i != 2 + strlen(a)))
			line[i] = ' ';
	line[len] = '\n';
	write_all(ctx->result_fd, line, len + 1);
}

static PC_NORETURN void finish(struct pc_ctx *ctx, const char *status, const char *fmt, va_list ap)
{
	char reason[PC_LINE_MAX / 2] = "";
	if (fmt)
		vsnprintf(reason, sizeof(reason), fmt, ap);
	send_line(ctx, 'S', status, reason);
	fflush(NULL);
	_exit(0);
}

#define FINISH(status)                          \
	do {                                    \
		va_list ap;                     \
		va_start(ap, fmt);              \
		finish(ctx, status, fmt, ap);   \
	} while (0)

void pc_pass(struct pc_ctx *ctx)
{
	send_line(ctx, 'S', "pass", "");
	fflush(NULL);
	_exit(0);
}
void pc_fail(struct pc_ctx *ctx, const char *fmt, ...) { FINISH("fail"); }
void pc_skip(struct pc_ctx *ctx, const char *fmt, ...) { FINISH("skip"); }
void pc_xfail(struct pc_ctx *ctx, const char *fmt, ...) { FINISH("xfail"); }
void pc_error(struct pc_ctx *ctx, const char *fmt, ...) { FINISH("error"); }

void pc_observe(struct pc_ctx *ctx, const char *key, const char *fmt, ...)
{
	char value[PC_LINE_MAX / 2];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(value, sizeof(value), fmt, ap);
	va_end(ap);
	send_line(ctx, 'O', key, value);
}

const char *pc_strerror(int e)
{
	return pl_errno_desc(e);
}

const char *pc_fmt(const char *fmt, ...)
{
	static char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return buf;
}

enum pc_kind pc_kind(const struct pc_ctx *ctx) { return ctx->kind; }
const char *pc_id(const struct pc_ctx *ctx) { return ctx->id; }
const char *pc_tmpdir(struct pc_ctx *ctx) { return ctx->tmpdir; }

const char *pc_kind_name(enum pc_kind kind)
{
	switch (kind) {
	case PC_PRIVATE_ANON: return "private_anon";
	case PC_SHARED_ANON: return "shared_anon";
	case PC_PRIVATE_FILE: return "private_file";
	case PC_SHARED_FILE: return "shared_file";
	case PC_THP: return "thp";
	default: return "";
	}
}

/* ---- helpers for probes ---- */

struct pc_ctx *pc_current;

static sigjmp_buf fault_jmp;
static volatile sig_atomic_t fault_sig;

static void on_fault(int sig)
{
	fault_sig = sig;
	siglongjmp(fault_jmp, 1);
}

int pc_access_faults(volatile void *p, bool write, unsigned char val)
{
	struct sigaction sa, old_segv, old_bus;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_fault;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSEGV, &sa, &old_segv) != 0 || sigaction(SIGBUS, &sa, &old_bus) != 0)
		pc_error(pc_current, "sigaction: %s", pc_strerror(errno)); /* a fault could not be told apart */
	fault_sig = 0;
	if (sigsetjmp(fault_jmp, 1) == 0) {
		if (write)
			*(volatile unsigned char *)p = val;
		else
			(void)*(volatile unsigned char *)p;
	}
	if (sigaction(SIGSEGV, &old_segv, NULL) != 0 || sigaction(SIGBUS, &old_bus, NULL) != 0)
		pc_error(pc_current, "restoring signal handlers: %s", pc_strerror(errno));
	return fault_sig;
}

const char *pc_fault_name(int sig)
{
	switch (sig) {
	case 0: return "none";
	case SIGSEGV: return "SIGSEGV";
	case SIGBUS: return "SIGBUS";
	default: return "other";
	}
}

bool pc_all_bytes(const void *p, size_t len, unsigned char b)
{
	const unsigned char *c = p;
	for (size_t i = 0; i < len; i++)
		if (c[i] != b)
			return false;
	return true;
}

/* A byte that depends on the position and seed, never zero, so "old" and "zero" differ. */
static unsigned char fill_byte(size_t i, unsigned seed)
{
	unsigned v = (unsigned)(i * 2654435761u) ^ (seed * 40503u);
	unsigned char b = (unsigned char)(v >> 13);
	return b ? b : 0x5a;
}

void pc_fill(void *p, size_t len, unsigned seed)
{
	unsigned char *c = p;
	for (size_t i = 0; i < len; i++)
		c[i] = fill_byte(i, seed);
}

bool pc_check_fill(const void *p, size_t len, unsigned seed)
{
	const unsigned char *c = p;
	for (size_t i = 0; i < len; i++)
		if (c[i] != fill_byte(i, seed))
			return false;
	return true;
}

const char *pc_contents(const void *p, size_t len, unsigned seed)
{
	const unsigned char *c = p;
	size_t ps = pl_page_size(), old = 0, zero = 0, pages = 0;
	for (size_t off = 0; off < len; off += ps, pages++) {
		size_t n = len - off < ps ? len - off : ps;
		bool is_zero = true, is_old = true;
		for (size_t i = off; i < off + n; i++) {
			is_zero = is_zero && c[i] == 0;
			is_old = is_old && c[i] == fill_byte(i, seed);
		}
		if (!is_zero && !is_old)
			return "other";
		zero += is_zero;
		old += is_old;
	}
	if (zero == pages)
		return "zero";
	if (old == pages)
		return "old";
	return "mixed";
}

bool pc_pages_old_or_zero(const void *p, const void *old, size_t len)
{
	size_t ps = pl_page_size();
	for (size_t off = 0; off < len; off += ps) {
		size_t n = len - off < ps ? len - off : ps;
		const char *a = (const char *)p + off, *b = (const char *)old + off;
		if (memcmp(a, b, n) != 0 && !pc_all_bytes(a, n, 0))
			return false;
	}
	return true;
}

bool pc_force_reclaim(void *p, size_t len)
{
#ifdef MADV_PAGEOUT
	return pc_madvise(p, len, MADV_PAGEOUT) == 0;
#else
	(void)p; (void)len;
	return false;
#endif
}

int pc_in_child(int (*fn)(void *arg), void *arg)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0)
		_exit(fn(arg) & 0xff);
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return WEXITSTATUS(st);
}

bool pc_thp_available(const char **why)
{
	const char *no = pl_thp_unavailable();
	if (no)
		*why = no;
	return no == NULL;
}

bool pc_swap_available(void)
{
	char buf[4096];
	if (pl_read_file("/proc/swaps", buf, sizeof(buf)) != 0)
		return false;
	return strchr(buf, '\n') != NULL; /* a header line, then one line per swap device */
}

int pc_madvise(void *p, size_t len, int advice)
{
	return madvise(p, len, advice) == 0 ? 0 : errno;
}

/* A file of len zero bytes: a real file in the probe's directory, or a memfd. */
static int backing_file(struct pc_ctx *ctx, enum pc_kind kind, size_t len, int *fd_out)
{
	int fd = -1;
#ifdef HAVE_MEMFD_CREATE
	if (kind == PC_SHARED_FILE)
		fd = memfd_create("pagelab", MFD_CLOEXEC);
#endif
	if (fd < 0) {
		char path[4200];
		snprintf(path, sizeof(path), "%s/backing.XXXXXX", ctx->tmpdir);
		fd = mkstemp(path);
		if (fd < 0)
			return errno;
		if (unlink(path) != 0) {
			int e = errno;
			close(fd);
			return e;
		}
	}
	if (ftruncate(fd, (off_t)len) != 0) {
		int e = errno;
		close(fd);
		return e;
	}
	*fd_out = fd;
	return 0;
}

/* Private anonymous memory in whole huge pages, aligned, with MADV_HUGEPAGE. */
static int pc_map_thp(size_t len, struct pc_map *m, const char **why)
{
#ifdef HAVE_MADV_HUGEPAGE
	if (!pc_thp_available(why))
		return ENOTSUP;
	size_t huge = pl_caps()->huge_page_size;
	m->len = (len + huge - 1) / huge * huge;
	int e = pl_reserve(m->len, huge, &m->addr);
	if (e == 0)
		e = pl_commit(m->addr, m->len);
	if (e == 0 && madvise(m->addr, m->len, MADV_HUGEPAGE) != 0)
		e = errno;
	if (e && m->addr) {
		munmap(m->addr, m->len);
		m->addr = NULL;
	}
	return e;
#else
	(void)len; (void)m;
	*why = "no MADV_HUGEPAGE on this system";
	return ENOTSUP;
#endif
}

int pc_map(struct pc_ctx *ctx, enum pc_kind kind, size_t len, struct pc_map *m, const char **why)
{
	memset(m, 0, sizeof(*m));
	m->fd = -1;
	m->kind = kind;
	m->len = len;
	int flags = MAP_PRIVATE | MAP_ANONYMOUS, e;
	switch (kind) {
	case PC_SHARED_ANON:
		flags = MAP_SHARED | MAP_ANONYMOUS;
		break;
	case PC_PRIVATE_FILE:
	case PC_SHARED_FILE:
		if ((e = backing_file(ctx, kind, len, &m->fd)) != 0)
			return e;
		flags = kind == PC_SHARED_FILE ? MAP_SHARED : MAP_PRIVATE;
		break;
	case PC_THP:
		return pc_map_thp(len, m, why);
	default:
		break;
	}
	m->addr = mmap(NULL, len, PROT_READ | PROT_WRITE, flags, m->fd, 0);
	if (m->addr == MAP_FAILED) {
		e = errno;
		if (m->fd >= 0)
			close(m->fd);
		return e;
	}
	return 0;
}

void pc_map_or_skip(struct pc_ctx *ctx, size_t len, struct pc_map *m)
{
	const char *why = NULL;
	enum pc_kind kind = ctx->kind ? ctx->kind : PC_PRIVATE_ANON;
	int e = pc_map(ctx, kind, len, m, &why);
	if (e == ENOTSUP && why)
		pc_skip(ctx, "%s", why);
	if (e)
		pc_error(ctx, "mapping %zu bytes of %s memory: %s", len, pc_kind_name(kind), pc_strerror(e));
}

void pc_unmap(struct pc_map *m)
{
	if (m->addr && m->addr != MAP_FAILED)
		munmap(m->addr, m->len);
	if (m->fd >= 0)
		close(m->fd);
	m->addr = NULL;
	m->fd = -1;
}
