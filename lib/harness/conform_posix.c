/* The POSIX side of the probe helpers: mappings of each kind, madvise with
 * raw advice values, a forked child. A system without them (Windows) has its
 * own file beside this one. */
#include "conform_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pagelab/env.h"
#include "pl_abi.h"

/* An advice value no system defines: what "unknown advice" gets here. */
#define PC_UNKNOWN_ADVICE 0x7a31

int pc_unknown_advice_errno(void *p, size_t len)
{
	return pc_madvise(p, len, PC_UNKNOWN_ADVICE);
}

int pc_unknown_map_type_errno(void)
{
	/* MAP_SHARED and MAP_PRIVATE are 1 and 2 nearly everywhere; 0xf is no type anywhere. */
	void *p = mmap(NULL, pl_page_size(), PROT_READ | PROT_WRITE, 0xf | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return errno;
	(void)munmap(p, pl_page_size());
	return 0;
}

void pc_need_advice(struct pc_ctx *ctx, int advice, const char *name)
{
	int e = pc_madvise(NULL, 0, advice);
	if (e)
		pc_refusal(ctx, pc_fmt("madvise(%s) of nothing", name), e, pc_unknown_advice_errno(NULL, 0));
}

void pc_advise(struct pc_ctx *ctx, void *p, size_t len, int advice, const char *name)
{
	int e = pc_madvise(p, len, advice);
	if (e)
		pc_refusal(ctx, pc_fmt("madvise(%s) on %s memory", name, pc_kind_name(pc_kind(ctx) ? pc_kind(ctx) : PC_PRIVATE_ANON)),
			   e, pc_unknown_advice_errno(p, len));
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
	if (pid < 0 && errno == ENOSYS)
		pc_skip_unsupported(pc_current, "fork: ENOSYS: this system has no fork");
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
		return pl_caps()->huge_page_size ? EPERM : ENOTSUP; /* a setting forbids them, or there are none */
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
		pc_skip_unsupported(ctx, "%s", why);
	if (e == EPERM && why)
		pc_skip_prerequisite(ctx, "%s", why);
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
