/* What the running system has, decided by asking it: an advice it refuses the
 * way it refuses an advice no system defines is one it does not have, and is
 * never generated. Nothing here looks at the build's headers. */
#include "fuzz.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static const struct {
	const char *name;
	long value;
} advices[A_N] = {
	[A_DONTNEED] = {"dontneed", FZ_MADV_DONTNEED}, [A_FREE] = {"free", FZ_MADV_FREE},
	[A_COLD] = {"cold", FZ_MADV_COLD}, [A_PAGEOUT] = {"pageout", FZ_MADV_PAGEOUT},
	[A_WILLNEED] = {"willneed", FZ_MADV_WILLNEED}, [A_POPULATE_READ] = {"populate-read", FZ_MADV_POPULATE_READ},
	[A_POPULATE_WRITE] = {"populate-write", FZ_MADV_POPULATE_WRITE}, [A_REMOVE] = {"remove", FZ_MADV_REMOVE},
	[A_GUARD_INSTALL] = {"guard-install", FZ_MADV_GUARD_INSTALL},
	[A_GUARD_REMOVE] = {"guard-remove", FZ_MADV_GUARD_REMOVE}, [A_DONTFORK] = {"dontfork", FZ_MADV_DONTFORK},
	[A_DOFORK] = {"dofork", FZ_MADV_DOFORK}, [A_WIPEONFORK] = {"wipeonfork", FZ_MADV_WIPEONFORK},
	[A_KEEPONFORK] = {"keeponfork", FZ_MADV_KEEPONFORK}, [A_UNKNOWN] = {"unknown", FZ_MADV_NO_SUCH},
};

long fz_advice_value(int advice)
{
	return advice >= 0 && advice < A_N ? advices[advice].value : -1;
}

const char *fz_advice_name(int advice)
{
	return advice >= 0 && advice < A_N ? advices[advice].name : "?";
}

/* The error an unknown request gets (0: it is accepted, so refusals say nothing). */
static int refusal(void *p, size_t ps, long advice)
{
	return madvise(p, ps, (int)advice) == 0 ? 0 : errno;
}

/* Each advice on a fresh mapping of the kind it is meant for (REMOVE: shared). */
static void probe_advice(struct fz_features *ft, size_t ps)
{
	void *priv = mmap(NULL, 2 * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	void *shared = mmap(NULL, 2 * ps, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (priv == MAP_FAILED || shared == MAP_FAILED)
		goto out;
	int unknown = refusal(priv, ps, FZ_MADV_NO_SUCH);
	for (int a = 0; a < A_N; a++) {
		if (a == A_UNKNOWN)
			continue;
		int e = refusal(a == A_REMOVE ? shared : priv, ps, advices[a].value);
		ft->advice[a] = !(e == ENOSYS || (unknown && e == unknown));
	}
	/* Undo what the probes left (a guard, the fork flags) before the mappings go. */
	if (ft->advice[A_GUARD_REMOVE] && madvise(priv, ps, FZ_MADV_GUARD_REMOVE) != 0)
		ft->advice[A_GUARD_INSTALL] = false;
out:
	if (priv != MAP_FAILED && munmap(priv, 2 * ps) != 0)
		ft->advice[A_GUARD_INSTALL] = false;
	if (shared != MAP_FAILED && munmap(shared, 2 * ps) != 0)
		ft->advice[A_REMOVE] = false;
}

/* MREMAP_DONTUNMAP, compared with a flag bit mremap does not define. */
static bool probe_dontunmap(size_t ps)
{
	unsigned char *p = mmap(NULL, 4 * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return false;
	int unknown = mremap(p, ps, ps, 0x40) == MAP_FAILED ? errno : 0;
	void *r = mremap(p, ps, ps, FZ_MREMAP_MAYMOVE | FZ_MREMAP_FIXED | FZ_MREMAP_DONTUNMAP, p + 2 * ps);
	int e = r == MAP_FAILED ? errno : 0;
	bool ok = munmap(p, 4 * ps) == 0;
	return ok && !(e == ENOSYS || (unknown && e == unknown));
}

/* The break can be read and set to where it is. */
static bool probe_brk(void)
{
	void *cur = sbrk(0);
	return cur != (void *)-1 && brk(cur) == 0;
}

/* mlock and munlock work on a page (not under RLIMIT_MEMLOCK's refusal, not unimplemented). mseal seals
 * one (which then stays mapped in this process and its children, outside the arena). */
static void probe_lock_seal(struct fz_features *ft, size_t ps)
{
	void *p = mmap(NULL, ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	void *q = mmap(NULL, ps, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ft->mlock = p != MAP_FAILED && mlock(p, ps) == 0 && munlock(p, ps) == 0;
	ft->mseal = q != MAP_FAILED && syscall(FZ_NR_MSEAL, q, ps, 0UL) == 0;
	if (p != MAP_FAILED && munmap(p, ps) != 0)
		ft->mlock = false;
	if (q != MAP_FAILED && !ft->mseal && munmap(q, ps) != 0)
		ft->mseal = false;
}

void fz_probe_features(struct fz_features *ft, size_t ps)
{
	for (int a = 0; a < A_N; a++)
		ft->advice[a] = false;
	probe_advice(ft, ps);
	ft->advice[A_UNKNOWN] = true;
	ft->dontunmap = probe_dontunmap(ps);
	ft->brk = probe_brk();
	probe_lock_seal(ft, ps);
	ft->file = true;
}
