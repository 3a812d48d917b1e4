/* The model of the arena: per page, what is mapped there and which contents
 * the contracts allow; per operation, which results its contract allows.
 * Only contracts (POSIX, the Linux man pages) go in here. A corner where
 * Linux's answer is not a documented contract is not generated: an
 * operation the model cannot judge is "not valid" (fz_expect_op returns false). */
#include "fuzz.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

/* The store: each page's allowed contents, the shared file as the sequence has written it, then both files
 * as they start (computed once by fz_store_prepare, copied from then on). */
size_t fz_model_store_size(size_t ps)
{
	return ((size_t)FZ_PAGES * FZ_MAX_ALT + 3 * FZ_FILE_PAGES) * ps;
}

const unsigned char *fz_store_file(const unsigned char *store, size_t ps, bool shared)
{
	return store + ((size_t)FZ_PAGES * FZ_MAX_ALT + (shared ? 2 : 1) * FZ_FILE_PAGES) * ps;
}

/* The backing files' bytes, before any sequence runs. */
void fz_store_prepare(unsigned char *store, size_t ps)
{
	unsigned char *priv = (unsigned char *)fz_store_file(store, ps, false);
	for (size_t i = 0; i < 2 * (size_t)FZ_FILE_PAGES * ps; i++)
		priv[i] = fz_file_byte((unsigned)(i / ps), (unsigned)(i % ps));
}

/* store: fz_model_store_size(ps) bytes, prepared (fz_store_prepare); NULL without contents. */
void fz_model_init(struct fz_model *m, size_t ps, bool contents, unsigned char *store)
{
	memset(m, 0, sizeof(*m));
	m->ps = ps;
	m->contents = contents && store;
	m->next_seg = 1;
	if (!m->contents)
		return;
	for (int p = 0; p < FZ_PAGES; p++)
		for (int a = 0; a < FZ_MAX_ALT; a++)
			m->alt[p][a] = store + ((size_t)p * FZ_MAX_ALT + (size_t)a) * ps;
	for (unsigned f = 0; f < FZ_FILE_PAGES; f++)
		m->shared_file[f] = store + ((size_t)FZ_PAGES * FZ_MAX_ALT + f) * ps;
	memcpy(m->shared_file[0], fz_store_file(store, ps, true), (size_t)FZ_FILE_PAGES * ps);
	m->private_file = fz_store_file(store, ps, false);
}

/* The backing files' byte at (file page, offset): every page differs from zero and from the others. The
 * shared file's pages are numbered after the private file's. */
unsigned char fz_file_byte(unsigned fpage, unsigned off)
{
	return (unsigned char)((fpage * 37u + off * 7u + 1u) | 1u);
}

static bool is_file(int kind)
{
	return kind == K_FILE_PRIVATE || kind == K_FILE_SHARED;
}

static bool in_arena(int start, int n)
{
	return n >= 1 && start >= 0 && start + n <= FZ_PAGES;
}

static int count_mapped(const struct fz_model *m, int start, int n)
{
	int c = 0;
	for (int i = start; i < start + n; i++)
		c += m->pg[i].mapped;
	return c;
}

/* All mapped, one kind, one protection, locked or sealed alike: an operation acts the same on every page. */
static bool uniform(const struct fz_model *m, int start, int n)
{
	const struct fz_page *a = &m->pg[start];
	for (int i = start; i < start + n; i++) {
		const struct fz_page *p = &m->pg[i];
		if (!p->mapped || p->kind != a->kind || p->prot != a->prot || p->locked != a->locked ||
		    p->sealed != a->sealed)
			return false;
	}
	return true;
}

/* 0: no page of the range sealed; 1: every page mapped and sealed; -1: some (the model does not judge
 * where a partly sealed range's call stops). */
static int sealed_range(const struct fz_model *m, int start, int n)
{
	int c = 0;
	for (int i = start; i < start + n; i++)
		c += m->pg[i].mapped && m->pg[i].sealed;
	return c == 0 ? 0 : c == n ? 1 : -1;
}

static bool any_guard(const struct fz_model *m, int start, int n)
{
	for (int i = start; i < start + n; i++)
		if (m->pg[i].guard)
			return true;
	return false;
}

static bool any_wipe(const struct fz_model *m, int start, int n)
{
	for (int i = start; i < start + n; i++)
		if (m->pg[i].wipeonfork)
			return true;
	return false;
}

/* One segment without guards: certainly inside one VMA, as mremap requires. */
static bool one_segment(const struct fz_model *m, int start, int n)
{
	if (!uniform(m, start, n) || any_guard(m, start, n))
		return false;
	for (int i = start; i < start + n; i++)
		if (m->pg[i].seg != m->pg[start].seg)
			return false;
	return true;
}

static bool expect_ok(struct fz_expect *e)
{
	memset(e, 0, sizeof(*e));
	e->ok_allowed = true;
	return true;
}

static bool expect_err(struct fz_expect *e, int err)
{
	memset(e, 0, sizeof(*e));
	e->nerr = 1;
	e->err[0] = err;
	return true;
}

/* On locked pages: DONTNEED and GUARD_INSTALL fail (madvise(2)); the flags and guard removal work; the
 * others are not generated. On sealed pages (mseal(2)): discarding needs write permission, EPERM without;
 * what neither discards nor changes the VMA works; the rest is not generated. */
static bool expect_locked_or_sealed(const struct fz_model *m, const struct fz_op *op, struct fz_expect *e,
				    bool *judged)
{
	const struct fz_page *p = &m->pg[op->start];
	*judged = true;
	if (p->locked && p->sealed)
		return false;
	if (p->locked) {
		if (op->sub == A_DONTNEED || op->sub == A_GUARD_INSTALL)
			return expect_err(e, EINVAL);
		*judged = !(op->sub == A_GUARD_REMOVE || (op->sub >= A_DONTFORK && op->sub <= A_KEEPONFORK));
		return false;
	}
	if (p->sealed && (op->sub == A_DONTNEED || op->sub == A_FREE) && p->prot != P_RW)
		return p->kind == K_ANON_PRIVATE && expect_err(e, EPERM);
	*judged = !(op->sub == A_DONTNEED || op->sub == A_FREE || op->sub == A_COLD || op->sub == A_WILLNEED ||
		    op->sub == A_POPULATE_READ || op->sub == A_POPULATE_WRITE);
	return false;
}

static bool expect_advice(const struct fz_model *m, const struct fz_op *op, struct fz_expect *e)
{
	int s = op->start, n = op->n;
	const struct fz_page *p = &m->pg[s];
	bool private_anon = p->kind == K_ANON_PRIVATE;
	if (p->locked || p->sealed) {
		bool judged;
		bool r = expect_locked_or_sealed(m, op, e, &judged);
		if (judged)
			return r;
	}
	switch (op->sub) {
	case A_DONTNEED: case A_COLD: case A_PAGEOUT: case A_DONTFORK: case A_DOFORK: case A_KEEPONFORK:
		return expect_ok(e);
	case A_FREE:
		return private_anon ? expect_ok(e) : expect_err(e, EINVAL);
	case A_WILLNEED: /* madvise(2): EBADF "the area maps something that isn't a file" */
		expect_ok(e);
		if (!is_file(p->kind))
			e->err[e->nerr++] = EBADF;
		return true;
	case A_POPULATE_READ:
		return p->prot != P_NONE && !any_guard(m, s, n) && expect_ok(e);
	case A_POPULATE_WRITE:
		return p->prot == P_RW && !any_guard(m, s, n) && expect_ok(e);
	case A_REMOVE: /* shared writable mappings only */
		return p->kind == K_ANON_SHARED && p->prot == P_RW && expect_ok(e);
	case A_GUARD_INSTALL: case A_GUARD_REMOVE: /* writable private anonymous mappings only */
		return private_anon && p->prot == P_RW && !any_wipe(m, s, n) && expect_ok(e);
	case A_WIPEONFORK: /* private anonymous mappings only */
		if (!private_anon)
			return expect_err(e, EINVAL);
		return !any_guard(m, s, n) && expect_ok(e);
	default:
		return false;
	}
}

static bool expect_madvise(const struct fz_model *m, const struct fz_features *ft, const struct fz_op *op,
			   struct fz_expect *e)
{
	if (op->sub >= A_N || !in_arena(op->start, op->n))
		return false;
	if (op->sub == A_UNKNOWN)
		return expect_err(e, EINVAL);
	if (!ft->advice[op->sub])
		return false;
	int c = count_mapped(m, op->start, op->n);
	if (c == 0)
		return expect_err(e, ENOMEM);
	return uniform(m, op->start, op->n) && expect_advice(m, op, e);
}

static bool file_fits(const struct fz_page *p, int n)
{
	return !is_file(p->kind) || p->fpage + n <= FZ_FILE_PAGES;
}

static bool expect_mremap(const struct fz_model *m, const struct fz_features *ft, const struct fz_op *op,
			  struct fz_expect *e)
{
	int s = op->start, n = op->n, d = op->dst, dn = op->dn;
	if (!in_arena(s, n) || !one_segment(m, s, n) || m->pg[s].locked || op->sub >= R_N)
		return false;
	if (op->sub >= R_MOVE && (!in_arena(d, dn) || sealed_range(m, d, dn) != 0))
		return false;
	const struct fz_page *p = &m->pg[s];
	if (p->sealed) /* a sealed mapping is neither moved, nor shrunk, nor grown (mseal(2)) */
		return (op->sub != R_DONTUNMAP || ft->dontunmap) && expect_err(e, EPERM);
	/* A shared anonymous object does not grow with its mapping (the new pages would raise SIGBUS). */
	bool may_grow = p->kind != K_ANON_SHARED;
	switch (op->sub) {
	case R_SHRINK:
		return dn >= 1 && dn < n && expect_ok(e);
	case R_GROW:
		if (dn <= n || !in_arena(s, dn) || !may_grow || !file_fits(p, dn))
			return false;
		return count_mapped(m, s + n, dn - n) ? expect_err(e, ENOMEM) : expect_ok(e);
	case R_MOVE: case R_DONTUNMAP:
		if (!in_arena(d, dn) || (d < s + n && s < d + dn))
			return false;
		if (op->sub == R_DONTUNMAP)
			return ft->dontunmap && p->kind == K_ANON_PRIVATE && dn == n && expect_ok(e);
		return (dn <= n || may_grow) && file_fits(p, dn) && expect_ok(e);
	default:
		return false;
	}
}

static bool expect_bad(const struct fz_op *op, struct fz_expect *e)
{
	return op->sub < B_N && in_arena(op->start, op->n) && expect_err(e, EINVAL);
}

/* What changes or removes a mapping: EPERM on sealed pages (mseal(2)); a range partly sealed is not judged. */
static bool expect_unsealed(const struct fz_model *m, const struct fz_op *op, struct fz_expect *e)
{
	int sealed = sealed_range(m, op->start, op->n);
	return sealed == 0 ? expect_ok(e) : sealed == 1 && expect_err(e, EPERM);
}

/* mlock(2), munlock: ENOMEM on a hole. mlock is generated only where it can populate (readable, no guard).
 * mseal(2): ENOMEM on a range with a hole, and nothing sealed then. */
static bool expect_lock_seal(const struct fz_model *m, const struct fz_features *ft, const struct fz_op *op,
			     struct fz_expect *e)
{
	int s = op->start, n = op->n;
	if (!in_arena(s, n) || !(op->type == T_MSEAL ? ft->mseal : ft->mlock))
		return false;
	int c = count_mapped(m, s, n);
	if (op->type == T_MSEAL)
		return c == n ? expect_ok(e) : expect_err(e, ENOMEM);
	if (c == 0)
		return expect_err(e, ENOMEM);
	if (c != n)
		return false;
	if (op->type == T_MUNLOCK)
		return expect_ok(e);
	return uniform(m, s, n) && m->pg[s].prot != P_NONE && !any_guard(m, s, n) && expect_ok(e);
}

/* Whether the model can judge op here, and if so what its contract allows. */
bool fz_expect_op(const struct fz_model *m, const struct fz_features *ft, const struct fz_op *op, struct fz_expect *e)
{
	switch (op->type) {
	case T_MMAP:
		if (!in_arena(op->start, op->n) || op->kind >= K_N || op->prot >= P_N || op->mode >= M_N)
			return false;
		if (is_file(op->kind) && (!ft->file || op->start + op->n > FZ_FILE_PAGES))
			return false;
		if (op->mode == M_NOREPLACE && count_mapped(m, op->start, op->n))
			return sealed_range(m, op->start, op->n) == 0 && expect_err(e, EEXIST);
		return op->mode == M_HINT ? expect_ok(e) : expect_unsealed(m, op, e);
	case T_MUNMAP:
		return in_arena(op->start, op->n) && expect_unsealed(m, op, e);
	case T_MPROTECT: {
		if (!in_arena(op->start, op->n) || op->prot >= P_N)
			return false;
		int c = count_mapped(m, op->start, op->n);
		return c == 0 ? expect_err(e, ENOMEM) : c == op->n && expect_unsealed(m, op, e);
	}
	case T_MLOCK: case T_MUNLOCK: case T_MSEAL:
		return expect_lock_seal(m, ft, op, e);
	case T_MADVISE:
		return expect_madvise(m, ft, op, e);
	case T_WRITE: case T_FORK:
		return op->start < FZ_PAGES && op->off < m->ps && expect_ok(e);
	case T_MREMAP:
		return expect_mremap(m, ft, op, e);
	case T_BRK:
		return ft->brk && op->n <= FZ_BRK_PAGES && expect_ok(e);
	case T_BAD:
		return expect_bad(op, e);
	default:
		return false;
	}
}

enum fz_fault fz_page_fault(const struct fz_model *m, int page, bool write)
{
	const struct fz_page *p = &m->pg[page];
	if (!p->mapped)
		return F_MAPERR;
	if (p->guard)
		return F_SEGV;
	if (p->prot == P_NONE || (write && p->prot != P_RW))
		return F_ACCERR;
	return F_NONE;
}

/* ---- effects ---- */

static void set_zero(struct fz_model *m, int p)
{
	m->nalt[p] = 1;
	if (m->contents)
		memset(m->alt[p][0], 0, m->ps);
}

static void set_file(struct fz_model *m, int p)
{
	m->nalt[p] = 1;
	if (m->contents)
		memcpy(m->alt[p][0], m->private_file + (size_t)m->pg[p].fpage * m->ps, m->ps);
}

/* What a page shows when first touched: its file's bytes (a shared file's as written so far), or zero. */
static void set_fresh(struct fz_model *m, int p)
{
	if (m->pg[p].kind == K_FILE_PRIVATE) {
		set_file(m, p);
	} else if (m->pg[p].kind == K_FILE_SHARED) {
		m->nalt[p] = 1;
		if (m->contents)
			memcpy(m->alt[p][0], m->shared_file[m->pg[p].fpage], m->ps);
	} else {
		set_zero(m, p);
	}
}

/* After MADV_FREE: what it held, or zero. */
static void add_zero(struct fz_model *m, int p)
{
	if (!m->contents)
		return;
	for (int a = 0; a < m->nalt[p]; a++) {
		bool zero = true;
		for (size_t o = 0; o < m->ps && zero; o++)
			zero = m->alt[p][a][o] == 0;
		if (zero)
			return;
	}
	memset(m->alt[p][m->nalt[p]], 0, m->ps);
	m->nalt[p]++;
}

static void map_pages(struct fz_model *m, int start, int n, const struct fz_page *like, uint16_t fpage0)
{
	uint16_t seg = m->next_seg++;
	for (int i = 0; i < n; i++) {
		struct fz_page *p = &m->pg[start + i];
		*p = *like;
		p->mapped = 1;
		p->guard = 0;
		p->seg = seg;
		p->fpage = (uint16_t)(fpage0 + i);
		set_fresh(m, start + i);
	}
}

/* Attributes changed on a range: each segment it touches splits off as a new one. */
static void resegment(struct fz_model *m, int start, int n)
{
	uint16_t old = 0, now = 0;
	for (int i = start; i < start + n; i++) {
		if (i == start || m->pg[i].seg != old) {
			old = m->pg[i].seg;
			now = m->next_seg++;
		}
		m->pg[i].seg = now;
	}
}

static void apply_advice(struct fz_model *m, const struct fz_op *op)
{
	for (int i = op->start; i < op->start + op->n; i++) {
		struct fz_page *p = &m->pg[i];
		switch (op->sub) {
		case A_DONTNEED:
			if (p->kind != K_ANON_SHARED)
				set_fresh(m, i);
			break;
		case A_FREE: add_zero(m, i); break;
		case A_REMOVE: set_zero(m, i); break;
		case A_GUARD_INSTALL: p->guard = 1; set_zero(m, i); break;
		case A_GUARD_REMOVE: p->guard = 0; break;
		case A_DONTFORK: p->dontfork = 1; break;
		case A_DOFORK: p->dontfork = 0; break;
		case A_WIPEONFORK: p->wipeonfork = 1; break;
		case A_KEEPONFORK: p->wipeonfork = 0; break;
		default: break;
		}
	}
	if (op->sub >= A_DONTFORK && op->sub <= A_KEEPONFORK)
		resegment(m, op->start, op->n);
}

static void swap_contents(struct fz_model *m, int a, int b)
{
	for (int k = 0; k < FZ_MAX_ALT; k++) {
		unsigned char *t = m->alt[a][k];
		m->alt[a][k] = m->alt[b][k];
		m->alt[b][k] = t;
	}
	uint8_t t = m->nalt[a];
	m->nalt[a] = m->nalt[b];
	m->nalt[b] = t;
}

static void apply_mremap(struct fz_model *m, const struct fz_op *op)
{
	int s = op->start, n = op->n, d = op->dst, dn = op->dn;
	struct fz_page like = m->pg[s];
	if (op->sub == R_SHRINK) {
		for (int i = s + dn; i < s + n; i++)
			m->pg[i].mapped = 0;
		return;
	}
	if (op->sub == R_GROW) {
		map_pages(m, s + n, dn - n, &like, (uint16_t)(like.fpage + n));
		for (int i = s + n; i < s + dn; i++)
			m->pg[i].seg = like.seg;
		return;
	}
	int moved = dn < n ? dn : n;
	map_pages(m, d, dn, &like, like.fpage);
	for (int i = 0; i < moved; i++)
		swap_contents(m, d + i, s + i);
	for (int i = 0; i < n; i++)
		m->pg[s + i].mapped = 0;
	if (op->sub == R_DONTUNMAP) /* the old range stays, empty: zero-filled on access (mremap(2)) */
		map_pages(m, s, n, &like, like.fpage);
}

/* A write to a shared file page reaches the file, and every page of the arena that maps that file page. */
static void write_byte(struct fz_model *m, int page, unsigned off, uint8_t val)
{
	const struct fz_page *p = &m->pg[page];
	if (!m->contents)
		return;
	for (int a = 0; a < m->nalt[page]; a++)
		m->alt[page][a][off] = val;
	if (p->kind != K_FILE_SHARED)
		return;
	m->shared_file[p->fpage][off] = val;
	for (int q = 0; q < FZ_PAGES; q++)
		if (m->pg[q].mapped && m->pg[q].kind == K_FILE_SHARED && m->pg[q].fpage == p->fpage)
			m->alt[q][0][off] = val;
}

/* Every feature: an effect depends on what the operation did, not on whether it would be generated. */
static const struct fz_features *everything(void)
{
	static struct fz_features all;
	memset(&all, 1, sizeof(all));
	return &all;
}

static void set_flag(struct fz_model *m, const struct fz_op *op, size_t field, uint8_t v)
{
	for (int i = op->start; i < op->start + op->n; i++)
		((uint8_t *)&m->pg[i])[field] = v;
	resegment(m, op->start, op->n);
}

/* The effect of op, valid here, when it does what its contract says (an error leaves the model as it was). */
void fz_apply(struct fz_model *m, const struct fz_op *op)
{
	struct fz_page like = {.kind = op->kind, .prot = op->prot};
	struct fz_expect e;
	if (!fz_expect_op(m, everything(), op, &e) || !e.ok_allowed)
		return;
	switch (op->type) {
	case T_MMAP:
		if (op->mode != M_HINT) /* a hinted mapping is unmapped again at once */
			map_pages(m, op->start, op->n, &like, op->start);
		break;
	case T_MUNMAP:
		for (int i = op->start; i < op->start + op->n; i++)
			m->pg[i].mapped = 0;
		break;
	case T_MPROTECT: set_flag(m, op, offsetof(struct fz_page, prot), op->prot); break;
	case T_MADVISE: apply_advice(m, op); break;
	case T_WRITE:
		if (fz_page_fault(m, op->start, true) == F_NONE)
			write_byte(m, op->start, op->off, op->val);
		break;
	case T_FORK: /* the child's write reaches the parent through a shared page */
		if (fz_page_fault(m, op->start, true) == F_NONE && !m->pg[op->start].dontfork &&
		    (m->pg[op->start].kind == K_ANON_SHARED || m->pg[op->start].kind == K_FILE_SHARED))
			write_byte(m, op->start, op->off, op->val);
		break;
	case T_MREMAP: apply_mremap(m, op); break;
	case T_BRK:
		m->brk_pages = op->n;
		if (op->n > m->brk_max)
			m->brk_max = op->n;
		break;
	case T_MLOCK: set_flag(m, op, offsetof(struct fz_page, locked), 1); break;
	case T_MUNLOCK: set_flag(m, op, offsetof(struct fz_page, locked), 0); break;
	case T_MSEAL: set_flag(m, op, offsetof(struct fz_page, sealed), 1); break;
	default:
		break;
	}
}

/* The child's view right after fork: DONTFORK pages absent, WIPEONFORK pages zero, no locks (mlock(2)). */
void fz_fork_child(struct fz_model *m)
{
	for (int i = 0; i < FZ_PAGES; i++) {
		m->pg[i].locked = 0;
		if (m->pg[i].dontfork)
			m->pg[i].mapped = 0;
		else if (m->pg[i].wipeonfork)
			set_zero(m, i);
	}
}

bool fz_seq_valid(const struct fz_op *ops, int n, const struct fz_features *ft, size_t ps)
{
	struct fz_model m;
	struct fz_expect e;
	fz_model_init(&m, ps, false, NULL);
	for (int i = 0; i < n; i++) {
		if (!fz_expect_op(&m, ft, &ops[i], &e))
			return false;
		fz_apply(&m, &ops[i]);
	}
	return true;
}
