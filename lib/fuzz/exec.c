/* Running a sequence on the system and checking every step against the
 * model: each operation's result (errno, address), then every arena page's
 * accessibility (the signal a read raises) and contents, and the break's pages.
 * Runs in a child of the driver; the first disagreement is written to the
 * result channel and ends the sequence. */
#include "fuzz.h"

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static sigjmp_buf fault_jmp;
static volatile sig_atomic_t fault_sig, fault_code;
static int result_fd = -1;

static void on_fault(int sig, siginfo_t *info, void *uctx)
{
	(void)uctx;
	fault_sig = sig;
	fault_code = info ? info->si_code : 0;
	siglongjmp(fault_jmp, 1);
}

static int catch_faults(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_fault;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSEGV, &sa, NULL) != 0 || sigaction(SIGBUS, &sa, NULL) != 0)
		return errno;
	return 0;
}

/* Read or write one byte; *val gets what was read. The signal raised, 0 for none. */
static int touch(volatile unsigned char *p, bool write, unsigned char *val, int *code)
{
	fault_sig = 0;
	fault_code = 0;
	if (sigsetjmp(fault_jmp, 1) == 0) {
		if (write)
			*p = *val;
		else
			*val = *p;
	}
	*code = fault_code;
	return fault_sig;
}

static bool fault_matches(enum fz_fault want, int sig, int code)
{
	switch (want) {
	case F_NONE: return sig == 0;
	case F_MAPERR: return sig == SIGSEGV && code == SEGV_MAPERR;
	case F_ACCERR: return sig == SIGSEGV && code == SEGV_ACCERR;
	case F_SEGV: return sig == SIGSEGV;
	}
	return false;
}

static const char *const fault_names[] = {"no fault", "SIGSEGV/SEGV_MAPERR", "SIGSEGV/SEGV_ACCERR", "SIGSEGV"};

const char *fz_check_name(int check)
{
	static const char *const names[] = {"none", "errno", "address", "fault", "contents", "child-fault",
					    "child-contents", "brk-fault", "crash", "hang", "setup"};
	return check >= 0 && check <= C_SETUP ? names[check] : "?";
}

static bool fail(struct fz_failure *f, int check, int op, int page, const char *fmt, ...)
{
	va_list ap;
	f->check = check;
	f->op = op;
	f->page = page;
	va_start(ap, fmt);
	vsnprintf(f->msg, sizeof(f->msg), fmt, ap);
	va_end(ap);
	return false;
}

/* ---- one step's observations ---- */

static bool check_fault(const struct fz_model *m, unsigned char *addr, int page, bool write, int op, int check,
			struct fz_failure *f)
{
	unsigned char v = 0;
	int code;
	enum fz_fault want = fz_page_fault(m, page, write);
	int sig = touch(addr, write, &v, &code);
	if (fault_matches(want, sig, code))
		return true;
	f->write = write;
	f->want_fault = want;
	f->got_sig = sig;
	f->got_code = code;
	return fail(f, check, op, page, "page %d: a %s raised %s (signal %d, code %d), the model wants %s", page,
		    write ? "write" : "read", sig ? "a signal" : "no signal", sig, code, fault_names[want]);
}

/* The page holds none of the allowed contents: for each, an offset where it differs. */
static bool contents_fail(const struct fz_model *m, const unsigned char *addr, int page, int op, int check,
			  struct fz_failure *f)
{
	f->nalt = m->nalt[page];
	for (int a = 0; a < m->nalt[page]; a++) {
		size_t o = 0;
		while (o < m->ps && addr[o] == m->alt[page][a][o])
			o++;
		f->alt_off[a] = (uint16_t)o;
		f->alt_byte[a] = m->alt[page][a][o];
		f->got_byte[a] = addr[o];
	}
	return fail(f, check, op, page, "page %d holds none of the %d allowed contents: at offset %u 0x%02x, "
		    "the model allows 0x%02x%s", page, m->nalt[page], f->alt_off[0], f->got_byte[0], f->alt_byte[0],
		    m->nalt[page] > 1 ? " (or, at another offset, the other content)" : "");
}

/* Which allowed content the page holds (-1: none). */
static int matching_alt(const struct fz_model *m, const unsigned char *addr, int page)
{
	for (int a = 0; a < m->nalt[page]; a++)
		if (memcmp(addr, m->alt[page][a], m->ps) == 0)
			return a;
	return -1;
}

static bool check_pages(const struct fz_arena *ar, const struct fz_model *m, int op, bool child, struct fz_failure *f)
{
	for (int p = 0; p < FZ_PAGES; p++) {
		unsigned char *addr = ar->base + (size_t)p * ar->ps;
		if (!check_fault(m, addr, p, false, op, child ? C_CHILD_FAULT : C_FAULT, f))
			return false;
		if (fz_page_fault(m, p, false) == F_NONE && matching_alt(m, addr, p) < 0)
			return contents_fail(m, addr, p, op, child ? C_CHILD_CONTENTS : C_CONTENTS, f);
	}
	return true;
}

/* Pages below the break are there; pages the break went down past are not. */
static bool check_brk(const struct fz_arena *ar, const struct fz_model *m, int op, struct fz_failure *f)
{
	for (int i = 0; i < m->brk_max; i++) {
		unsigned char v = 0;
		int code;
		int sig = touch(ar->brk0 + (size_t)i * ar->ps, false, &v, &code);
		bool want = i >= m->brk_pages;
		if ((sig == SIGSEGV) != want) {
			f->want_fault = want ? F_SEGV : F_NONE;
			f->got_sig = sig;
			f->got_code = code;
			return fail(f, C_BRK_FAULT, op, i, "page %d above the break's start (break at %d pages): "
				    "a read raised signal %d, the model wants %s", i, m->brk_pages, sig,
				    want ? "SIGSEGV" : "no fault");
		}
	}
	return true;
}

/* ---- performing an operation ---- */

static const int prots[P_N] = {PROT_READ | PROT_WRITE, PROT_READ, PROT_NONE};

static int kind_flags(int kind)
{
	static const int flags[K_N] = {MAP_PRIVATE | MAP_ANONYMOUS, MAP_SHARED | MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED};
	return flags[kind];
}

static int mode_flags(int mode)
{
	return mode == M_FIXED ? MAP_FIXED : mode == M_NOREPLACE ? FZ_MAP_FIXED_NOREPLACE : 0;
}

/* Invalid arguments: a length of zero, an address inside a page. */
static int perform_bad(const struct fz_arena *ar, const struct fz_op *op)
{
	unsigned char *a = ar->base + (size_t)op->start * ar->ps;
	size_t len = (size_t)op->n * ar->ps;
	void *r;
	switch (op->sub) {
	case B_MMAP_ZERO:
		r = mmap(NULL, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		break;
	case B_MMAP_FIXED_UNALIGNED:
		r = mmap(a + 1, len, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		break;
	case B_MREMAP_UNALIGNED:
		r = mremap(a + 1, len, len, 0);
		break;
	case B_MUNMAP_UNALIGNED: return munmap(a + 1, len) == 0 ? 0 : errno;
	case B_MPROTECT_UNALIGNED: return mprotect(a + 1, len, PROT_READ) == 0 ? 0 : errno;
	case B_MADVISE_UNALIGNED: return madvise(a + 1, len, FZ_MADV_DONTNEED) == 0 ? 0 : errno;
	default: return 0;
	}
	return r == MAP_FAILED ? errno : 0;
}

/* Perform op: 0 or an errno value; *res the address a mapping call returned. */
static int perform(const struct fz_arena *ar, const struct fz_op *op, void **res)
{
	size_t ps = ar->ps;
	unsigned char *a = ar->base + (size_t)op->start * ps, *d = ar->base + (size_t)op->dst * ps;
	size_t len = (size_t)op->n * ps;
	*res = NULL;
	switch (op->type) {
	case T_MMAP: {
		int fd = op->kind == K_FILE_PRIVATE ? ar->file : op->kind == K_FILE_SHARED ? ar->shared_file : -1;
		off_t off = fd >= 0 ? (off_t)op->start * (off_t)ps : 0; /* the file page behind a page is its index */
		*res = mmap(a, len, prots[op->prot], kind_flags(op->kind) | mode_flags(op->mode), fd, off);
		return *res == MAP_FAILED ? errno : 0;
	}
	case T_MUNMAP: return munmap(a, len) == 0 ? 0 : errno;
	case T_MPROTECT: return mprotect(a, len, prots[op->prot]) == 0 ? 0 : errno;
	case T_MADVISE: return madvise(a, len, (int)fz_advice_value(op->sub)) == 0 ? 0 : errno;
	case T_MREMAP: {
		size_t nlen = (size_t)op->dn * ps;
		if (op->sub == R_SHRINK || op->sub == R_GROW)
			*res = mremap(a, len, nlen, 0);
		else
			*res = mremap(a, len, nlen, FZ_MREMAP_MAYMOVE | FZ_MREMAP_FIXED |
				      (op->sub == R_DONTUNMAP ? FZ_MREMAP_DONTUNMAP : 0), d);
		return *res == MAP_FAILED ? errno : 0;
	}
	case T_BRK: return brk(ar->brk0 + (size_t)op->n * ps) == 0 ? 0 : errno;
	case T_BAD: return perform_bad(ar, op);
	case T_MLOCK: return mlock(a, len) == 0 ? 0 : errno;
	case T_MUNLOCK: return munlock(a, len) == 0 ? 0 : errno;
	case T_MSEAL: return syscall(FZ_NR_MSEAL, a, len, 0UL) == 0 ? 0 : errno;
	default: return 0;
	}
}

/* ---- judging an operation's result ---- */

static bool errno_allowed(const struct fz_expect *e, int err)
{
	if (err == 0)
		return e->ok_allowed;
	for (int i = 0; i < e->nerr; i++)
		if (e->err[i] == err)
			return true;
	return false;
}

static bool outside_arena(const struct fz_arena *ar, const unsigned char *r, size_t len)
{
	return r + len <= ar->base - ar->ps || r >= ar->base + (size_t)(FZ_PAGES + 1) * ar->ps;
}

/* A hint: anywhere free. In the arena, on pages the model has free; elsewhere, not on the arena. Unmapped again. */
static bool check_hint(const struct fz_arena *ar, const struct fz_model *m, const struct fz_op *op, void *res,
		       int i, struct fz_failure *f)
{
	unsigned char *r = res;
	size_t len = (size_t)op->n * ar->ps;
	bool fine = outside_arena(ar, r, len);
	if (!fine && r >= ar->base && r + len <= ar->base + (size_t)FZ_PAGES * ar->ps &&
	    (size_t)(r - ar->base) % ar->ps == 0) {
		int p = (int)((size_t)(r - ar->base) / ar->ps);
		fine = true;
		for (int k = p; k < p + op->n; k++)
			fine = fine && !m->pg[k].mapped;
	}
	if (!fine)
		return fail(f, C_ADDRESS, i, -1, "a mapping with a hint came back at arena offset %td, over pages "
			    "already mapped", r - ar->base);
	if (munmap(r, len) != 0)
		return fail(f, C_SETUP, i, -1, "munmap of the hinted mapping: errno %d", errno);
	return true;
}

/* The address a successful mapping call returned. */
static bool check_address(const struct fz_arena *ar, const struct fz_model *m, const struct fz_op *op, void *res,
			  int i, struct fz_failure *f)
{
	unsigned char *want = NULL;
	if (op->type == T_MMAP && op->mode == M_HINT)
		return check_hint(ar, m, op, res, i, f);
	if (op->type == T_MMAP || (op->type == T_MREMAP && op->sub <= R_GROW))
		want = ar->base + (size_t)op->start * ar->ps;
	else if (op->type == T_MREMAP)
		want = ar->base + (size_t)op->dst * ar->ps;
	if (!want || res == want)
		return true;
	if (outside_arena(ar, res, (size_t)(op->type == T_MMAP ? op->n : op->dn) * ar->ps))
		if (munmap(res, (size_t)(op->type == T_MMAP ? op->n : op->dn) * ar->ps) != 0)
			return fail(f, C_SETUP, i, -1, "munmap of a mapping outside the arena: %s", strerror(errno));
	return fail(f, C_ADDRESS, i, -1, "returned another address than the one asked for (arena offset %td "
		    "instead of %td)", (unsigned char *)res - ar->base, want - ar->base);
}

const char *fz_errno_name(int e)
{
	switch (e) {
	case 0: return "success";
	case EINVAL: return "EINVAL";
	case ENOMEM: return "ENOMEM";
	case EEXIST: return "EEXIST";
	case EBADF: return "EBADF";
	case EPERM: return "EPERM";
	case EFAULT: return "EFAULT";
	case EAGAIN: return "EAGAIN";
	case EACCES: return "EACCES";
	case ENOSYS: return "ENOSYS";
	default: return strerror(e);
	}
}

static bool check_result(const struct fz_arena *ar, const struct fz_model *m, const struct fz_op *op,
			 const struct fz_expect *e, int err, void *res, int i, struct fz_failure *f)
{
	if (!errno_allowed(e, err)) {
		f->got_errno = err;
		f->want_errno = e->ok_allowed ? 0 : e->err[0];
		return fail(f, C_ERRNO, i, -1, "returned %s; the contract allows %s%s%s%s%s", fz_errno_name(err),
			    e->ok_allowed ? "success" : "", e->ok_allowed && e->nerr ? " or " : "",
			    e->nerr ? fz_errno_name(e->err[0]) : "", e->nerr > 1 ? " or " : "",
			    e->nerr > 1 ? fz_errno_name(e->err[1]) : "");
	}
	return err || !res ? true : check_address(ar, m, op, res, i, f);
}

/* A write to a page that may hold old-or-zero fixes it: keep what the page now holds. */
static bool settle(const struct fz_arena *ar, struct fz_model *m, int page, int i, struct fz_failure *f)
{
	unsigned char *addr = ar->base + (size_t)page * ar->ps;
	if (m->nalt[page] < 2)
		return true;
	int a = matching_alt(m, addr, page);
	if (a < 0)
		return contents_fail(m, addr, page, i, C_CONTENTS, f);
	unsigned char *keep = m->alt[page][a];
	m->alt[page][a] = m->alt[page][0];
	m->alt[page][0] = keep;
	m->nalt[page] = 1;
	return true;
}

static bool do_write(const struct fz_arena *ar, struct fz_model *m, const struct fz_op *op, int i, int check,
		     struct fz_failure *f)
{
	unsigned char *addr = ar->base + (size_t)op->start * ar->ps + op->off;
	unsigned char v = op->val;
	int code;
	enum fz_fault want = fz_page_fault(m, op->start, true);
	int sig = touch(addr, true, &v, &code);
	if (!fault_matches(want, sig, code)) {
		f->write = true;
		f->want_fault = want;
		f->got_sig = sig;
		f->got_code = code;
		return fail(f, check, i, op->start, "page %d: a write raised signal %d (code %d), the model wants %s",
			    op->start, sig, code, fault_names[want]);
	}
	fz_apply(m, &(struct fz_op){.type = T_WRITE, .start = op->start, .off = op->off, .val = op->val});
	return want != F_NONE || settle(ar, m, op->start, i, f);
}

static void report(const struct fz_failure *f)
{
	const char *p = (const char *)f;
	size_t left = sizeof(*f);
	while (left > 0 && result_fd >= 0) {
		ssize_t w = write(result_fd, p, left);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		left -= (size_t)w;
	}
}

/* The child checks its view and writes; the parent then sees a write through a shared page only. */
static bool do_fork(const struct fz_arena *ar, struct fz_model *m, const struct fz_op *op, int i,
		    struct fz_failure *f)
{
	pid_t pid = fork();
	if (pid < 0)
		return fail(f, C_ERRNO, i, -1, "fork failed: %s", strerror(errno));
	if (pid == 0) {
		fz_fork_child(m);
		bool ok = check_pages(ar, m, i, true, f) && do_write(ar, m, op, i, C_CHILD_FAULT, f);
		if (!ok)
			report(f);
		_exit(ok ? 0 : 3);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return fail(f, C_SETUP, i, -1, "waitpid: %s", strerror(errno));
	if (WIFEXITED(st) && WEXITSTATUS(st) == 3)
		return fail(f, C_NONE, i, -1, "reported by the forked child");
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return fail(f, C_CRASH, i, -1, "the forked child ended with status 0x%x (signal %d)", st,
			    WIFSIGNALED(st) ? WTERMSIG(st) : 0);
	fz_apply(m, op);
	return true;
}

static bool step(const struct fz_arena *ar, const struct fz_features *ft, struct fz_model *m,
		 const struct fz_op *op, int i, struct fz_failure *f)
{
	struct fz_expect e;
	if (!fz_expect_op(m, ft, op, &e))
		return fail(f, C_SETUP, i, -1, "operation %d is not valid on the model here", i);
	if (op->type == T_WRITE)
		return do_write(ar, m, op, i, C_FAULT, f);
	if (op->type == T_FORK)
		return do_fork(ar, m, op, i, f);
	void *res;
	int err = perform(ar, op, &res);
	if (!check_result(ar, m, op, &e, err, res, i, f))
		return false;
	if (!err)
		fz_apply(m, op);
	return true;
}

/* Write a file's pages from the start (bytes: FZ_FILE_PAGES pages). */
static int fill_file(int fd, const unsigned char *bytes, size_t ps)
{
	size_t len = (size_t)FZ_FILE_PAGES * ps, done = 0;
	while (done < len) {
		ssize_t w = pwrite(fd, bytes + done, len - done, (off_t)done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? errno : EIO;
		done += (size_t)w;
	}
	return 0;
}

/* Run ops from an empty arena. True when every step agreed with the model; otherwise *f says how it did not
 * (also written to result_fd unless a forked child already wrote it). */
bool fz_run(const struct fz_arena *ar, const struct fz_features *ft, const struct fz_op *ops, int n, int fd,
	    struct fz_failure *f)
{
	struct fz_model m;
	memset(f, 0, sizeof(*f));
	f->page = -1;
	result_fd = fd;
	int e = catch_faults();
	if (!e && ar->shared_file >= 0) /* what the last sequence wrote there is gone */
		e = fill_file(ar->shared_file, fz_store_file(ar->store, ar->ps, true), ar->ps);
	if (e) {
		fail(f, C_SETUP, -1, -1, "setting up the fault handler and the shared file: %s", strerror(e));
		report(f);
		return false;
	}
	fz_model_init(&m, ar->ps, true, ar->store);
	for (int i = 0; i < n; i++) {
		bool ok = step(ar, ft, &m, &ops[i], i, f) && check_pages(ar, &m, i, false, f) &&
			  (!ar->brk0 || check_brk(ar, &m, i, f));
		if (!ok) {
			if (f->check != C_NONE)
				report(f);
			return false;
		}
	}
	return true;
}

/* A file of FZ_FILE_PAGES known pages, already unlinked. */
static int make_file(const unsigned char *bytes, size_t ps, int *fd)
{
	char path[] = "/tmp/pagelab-fuzz-XXXXXX";
	*fd = mkstemp(path);
	if (*fd < 0)
		return errno;
	if (unlink(path) != 0)
		return errno;
	return fill_file(*fd, bytes, ps);
}

/* The arena: FZ_PAGES free pages between two PROT_NONE pages that stay mapped (so nothing else lands
 * there unasked); the two files; the model's store. The break's start is set in each child. */
int fz_arena_open(struct fz_arena *a, const struct fz_features *ft)
{
	size_t ps = a->ps;
	unsigned char *r = mmap(NULL, (FZ_PAGES + 2) * ps, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (r == MAP_FAILED)
		return errno;
	if (munmap(r + ps, FZ_PAGES * ps) != 0)
		return errno;
	a->base = r + ps;
	a->file = a->shared_file = -1;
	a->brk0 = NULL;
	a->store = malloc(fz_model_store_size(ps));
	if (!a->store)
		return ENOMEM;
	fz_store_prepare(a->store, ps);
	if (!ft->file)
		return 0;
	int e = make_file(fz_store_file(a->store, ps, false), ps, &a->file);
	return e ? e : make_file(fz_store_file(a->store, ps, true), ps, &a->shared_file);
}

/* In the sequence's child: the break's start, a page above where it is now. */
int fz_arena_brk(struct fz_arena *a)
{
	unsigned char *cur = sbrk(0);
	if (cur == (void *)-1)
		return errno;
	a->brk0 = (unsigned char *)(((uintptr_t)cur + 2 * a->ps - 1) & ~(uintptr_t)(a->ps - 1));
	return 0;
}
