/* Shrinking: a failing sequence is reduced, one accepted step at a time, to
 * one that still fails with the same signature and from which no operation
 * can be removed and no field made simpler. Each candidate is checked on the
 * model first (it must stay judgeable) and then run on the system. */
#include "fuzz.h"

#include <string.h>

struct shrinker {
	struct fz_op *ops;
	int n;
	fz_fails_fn fails;
	void *ctx;
	const struct fz_features *ft;
	size_t ps;
	int budget; /* candidate runs left */
};

/* Accept cand (of length n) when it is judgeable and still fails the same way. */
static bool try_candidate(struct shrinker *s, const struct fz_op *cand, int n)
{
	if (s->budget <= 0 || !fz_seq_valid(cand, n, s->ft, s->ps))
		return false;
	s->budget--;
	if (!s->fails(cand, n, s->ctx))
		return false;
	memcpy(s->ops, cand, (size_t)n * sizeof(*cand));
	s->n = n;
	return true;
}

/* Remove runs of operations, from half the sequence down to one. */
static bool remove_runs(struct shrinker *s)
{
	bool any = false;
	struct fz_op cand[FZ_MAX_OPS];
	for (int size = s->n / 2 > 0 ? s->n / 2 : 1; size >= 1; size /= 2) {
		for (int i = 0; i + size <= s->n;) {
			memcpy(cand, s->ops, (size_t)i * sizeof(*cand));
			memcpy(cand + i, s->ops + i + size, (size_t)(s->n - i - size) * sizeof(*cand));
			if (try_candidate(s, cand, s->n - size))
				any = true;
			else
				i++;
		}
	}
	return any;
}

static bool uses_pages(const struct fz_op *op)
{
	return op->type != T_BRK && !(op->type == T_BAD && op->sub == B_MMAP_ZERO);
}

static bool moves_to_dst(const struct fz_op *op)
{
	return op->type == T_MREMAP && op->sub >= R_MOVE;
}

/* Move the sequence down the arena by d pages: every operation (all), or those at page d and above (the
 * others, such as a fork's write to a page nothing maps, stay where they are). */
static bool shift(struct shrinker *s, int d, bool all)
{
	struct fz_op cand[FZ_MAX_OPS];
	memcpy(cand, s->ops, (size_t)s->n * sizeof(*cand));
	for (int i = 0; i < s->n; i++) {
		struct fz_op *op = &cand[i];
		if (!uses_pages(op))
			continue;
		if (all && (op->start < d || (moves_to_dst(op) && op->dst < d)))
			return false;
		if (op->start >= d)
			op->start = (uint8_t)(op->start - d);
		if (moves_to_dst(op) && op->dst >= d)
			op->dst = (uint8_t)(op->dst - d);
	}
	return try_candidate(s, cand, s->n);
}

/* The lowest page the sequence names, and the lowest above the lowest. */
static void low_pages(const struct shrinker *s, int *low, int *next)
{
	*low = *next = 255;
	for (int i = 0; i < s->n; i++) {
		const struct fz_op *op = &s->ops[i];
		int pages[2] = {op->start, moves_to_dst(op) ? op->dst : 255};
		for (int k = 0; k < 2 && uses_pages(op); k++) {
			if (pages[k] < *low)
				*next = *low, *low = pages[k];
			else if (pages[k] > *low && pages[k] < *next)
				*next = pages[k];
		}
	}
}

/* The whole sequence down to page 0; else what lies above the lowest page, as far down as it goes. */
static bool shift_down(struct shrinker *s)
{
	int low, next;
	low_pages(s, &low, &next);
	if (low > 0 && low < 255 && (shift(s, low, true) || shift(s, 1, true)))
		return true;
	for (int d = next < 255 ? next : 0; d >= 1; d--)
		if (shift(s, d, false))
			return true;
	return false;
}

/* An mremap's old and new lengths together (DONTUNMAP needs them equal). */
static bool shorten_remap(struct shrinker *s, int i)
{
	struct fz_op cand[FZ_MAX_OPS];
	if (s->ops[i].type != T_MREMAP || s->ops[i].n < 2 || s->ops[i].dn < 2)
		return false;
	memcpy(cand, s->ops, (size_t)s->n * sizeof(*cand));
	cand[i].n--;
	cand[i].dn--;
	return try_candidate(s, cand, s->n);
}

/* Simpler values of one field: its simplest, half, one less. */
static bool simplify_field(struct shrinker *s, int i, size_t field, size_t width, unsigned simplest)
{
	struct fz_op cand[FZ_MAX_OPS];
	unsigned char *base = (unsigned char *)&s->ops[i] + field;
	unsigned v = width == 1 ? *base : *(uint16_t *)(void *)base;
	unsigned tries[3] = {simplest, simplest + (v - simplest) / 2, v - 1};
	for (int k = 0; k < 3; k++) {
		if (v <= simplest || tries[k] >= v || (k > 0 && tries[k] == tries[k - 1]))
			continue;
		memcpy(cand, s->ops, (size_t)s->n * sizeof(*cand));
		unsigned char *f = (unsigned char *)&cand[i] + field;
		if (width == 1)
			*f = (uint8_t)tries[k];
		else
			*(uint16_t *)(void *)f = (uint16_t)tries[k];
		if (try_candidate(s, cand, s->n))
			return true;
	}
	return false;
}

static bool simplify_fields(struct shrinker *s)
{
	bool any = false;
	for (int i = 0; i < s->n; i++) {
		const struct fz_op *op = &s->ops[i];
		unsigned n_min = op->type == T_BRK ? 0 : 1;
		any |= simplify_field(s, i, offsetof(struct fz_op, n), 1, n_min);
		any |= simplify_field(s, i, offsetof(struct fz_op, start), 1, 0);
		any |= simplify_field(s, i, offsetof(struct fz_op, off), 2, 0);
		any |= simplify_field(s, i, offsetof(struct fz_op, val), 1, 1);
		if (op->type == T_MMAP) {
			any |= simplify_field(s, i, offsetof(struct fz_op, kind), 1, 0);
			any |= simplify_field(s, i, offsetof(struct fz_op, prot), 1, 0);
			any |= simplify_field(s, i, offsetof(struct fz_op, mode), 1, 0);
		}
		if (op->type == T_MPROTECT)
			any |= simplify_field(s, i, offsetof(struct fz_op, prot), 1, 0);
		if (op->type == T_MREMAP) {
			any |= simplify_field(s, i, offsetof(struct fz_op, dst), 1, 0);
			any |= simplify_field(s, i, offsetof(struct fz_op, dn), 1, 1);
			any |= shorten_remap(s, i);
		}
	}
	return any;
}

/* Shrink ops[0..n) in place; its new length. budget: at most that many candidate runs. */
int fz_shrink(struct fz_op *ops, int n, fz_fails_fn fails, void *ctx, const struct fz_features *ft, size_t ps,
	      int budget)
{
	struct shrinker s = {ops, n, fails, ctx, ft, ps, budget};
	bool progress = true;
	for (int i = 0; i < n; i++) { /* fields an operation does not use go to zero, as the replay text has them */
		char line[128];
		fz_op_format(&ops[i], line, sizeof(line));
		if (fz_op_parse(line, &ops[i]) != 0)
			return n;
	}
	while (progress && s.budget > 0) {
		progress = remove_runs(&s);
		progress |= shift_down(&s);
		progress |= simplify_fields(&s);
	}
	return s.n;
}
