/* Sequences: seeded random ones (the same seed gives the same sequence on
 * every target with the same features), and the alphabet the
 * bounded-exhaustive mode enumerates. Only operations the model can judge
 * and the system has are generated. */
#include "fuzz.h"

#include <string.h>

/* splitmix64: small, and the same on every architecture. */
uint64_t fz_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static unsigned below(uint64_t *st, unsigned n)
{
	return n ? (unsigned)(fz_rand(st) % n) : 0;
}

/* A type, by weight: what changes the layout, what checks it, what crosses a fork. */
static int pick_type(uint64_t *st, const struct fz_features *ft)
{
	static const unsigned weight[T_N] = {[T_MMAP] = 18, [T_MUNMAP] = 7, [T_MPROTECT] = 9, [T_MADVISE] = 26,
					     [T_WRITE] = 18, [T_MREMAP] = 10, [T_FORK] = 5, [T_BRK] = 4, [T_BAD] = 3,
					     [T_MLOCK] = 3, [T_MUNLOCK] = 2, [T_MSEAL] = 1};
	bool has[T_N];
	for (int t = 0; t < T_N; t++)
		has[t] = t == T_BRK ? ft->brk : t == T_MLOCK || t == T_MUNLOCK ? ft->mlock : t == T_MSEAL ? ft->mseal : true;
	unsigned total = 0;
	for (int t = 0; t < T_N; t++)
		total += has[t] ? weight[t] : 0;
	unsigned r = below(st, total);
	for (int t = 0; t < T_N; t++) {
		unsigned w = has[t] ? weight[t] : 0;
		if (r < w)
			return t;
		r -= w;
	}
	return T_WRITE;
}

static uint8_t pick_prot(uint64_t *st)
{
	unsigned r = below(st, 10);
	return (uint8_t)(r < 6 ? P_RW : r < 8 ? P_R : P_NONE);
}

static uint8_t pick_advice(uint64_t *st, const struct fz_features *ft)
{
	for (int tries = 0; tries < 32; tries++) {
		unsigned a = below(st, A_N);
		if (a == A_UNKNOWN ? below(st, 4) == 0 : ft->advice[a])
			return (uint8_t)a;
	}
	return A_DONTNEED;
}

static void random_op(uint64_t *st, const struct fz_features *ft, size_t ps, struct fz_op *op)
{
	memset(op, 0, sizeof(*op));
	op->type = (uint8_t)pick_type(st, ft);
	op->start = (uint8_t)below(st, FZ_PAGES);
	op->n = (uint8_t)(1 + below(st, 4));
	op->off = (uint16_t)below(st, (unsigned)(ps < 65536 ? ps : 65536));
	op->val = (uint8_t)(1 + below(st, 255));
	switch (op->type) {
	case T_MMAP: {
		unsigned r = below(st, 20);
		op->kind = (uint8_t)below(st, K_N);
		op->prot = pick_prot(st);
		op->mode = (uint8_t)(r < 12 ? M_FIXED : r < 17 ? M_NOREPLACE : M_HINT);
		break;
	}
	case T_MPROTECT: op->prot = pick_prot(st); break;
	case T_MADVISE: op->sub = pick_advice(st, ft); break;
	case T_MREMAP:
		op->sub = (uint8_t)below(st, R_N);
		op->dst = (uint8_t)below(st, FZ_PAGES);
		op->dn = (uint8_t)(op->sub == R_SHRINK ? 1 + below(st, op->n) : op->sub == R_GROW ? op->n + 1 + below(st, 3)
				   : op->sub == R_DONTUNMAP ? op->n : 1 + below(st, op->n + 2));
		break;
	case T_BRK: op->n = (uint8_t)below(st, FZ_BRK_PAGES + 1); break;
	case T_BAD: op->sub = (uint8_t)below(st, B_N); break;
	default: break;
	}
}

/* A sequence of up to len operations, each valid on the model where it stands. Returns its length. */
int fz_generate(uint64_t seed, int len, const struct fz_features *ft, size_t ps, struct fz_op *ops)
{
	struct fz_model m;
	struct fz_expect e;
	uint64_t st = seed;
	int n = 0;
	fz_model_init(&m, ps, false, NULL);
	while (n < len) {
		int tries = 0;
		do
			random_op(&st, ft, ps, &ops[n]);
		while (!fz_expect_op(&m, ft, &ops[n], &e) && ++tries < 200);
		if (tries >= 200)
			break;
		fz_apply(&m, &ops[n++]);
	}
	return n;
}

/* The bounded-exhaustive alphabet: on pages 0-3, each kind of mapping, most contracts the model has. */
static const char *const alphabet[] = {
	"mmap anon-private 0 2 rw fixed", "mmap anon-shared 1 2 rw fixed", "mmap file-private 0 2 rw fixed",
	"mmap anon-private 2 2 rw noreplace", "mmap anon-private 0 1 rw hint", "munmap 1 1", "mprotect 0 2 r",
	"mprotect 0 1 none", "write 0 5 0x11", "write 1 9 0x22", "madvise 0 2 dontneed", "madvise 0 2 free",
	"madvise 0 1 guard-install", "madvise 0 1 guard-remove", "madvise 0 2 dontfork", "madvise 0 2 wipeonfork",
	"madvise 1 1 remove", "madvise 0 1 unknown", "madvise 0 2 populate-write", "mremap move 0 2 2 2",
	"mremap shrink 0 2 0 1", "mremap grow 0 1 0 2", "mremap dontunmap 0 1 2 1", "fork 1 3 0x33", "brk 1",
	"brk 0", "bad munmap-unaligned 0 1", "mmap file-shared 2 2 rw fixed", "mlock 0 2", "munlock 0 2", "mseal 0 1",
};

int fz_alphabet(struct fz_op *ops, int max)
{
	int n = 0;
	for (size_t i = 0; i < sizeof(alphabet) / sizeof(alphabet[0]) && n < max; i++)
		if (fz_op_parse(alphabet[i], &ops[n]) == 0)
			n++;
	return n;
}
