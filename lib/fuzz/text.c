/* The replay format: one operation a line, words as `pagelab-fuzz --replay`
 * reads them ("mmap anon-private 0 2 rw fixed", "madvise 0 1 free"). Lines
 * starting with '#' are comments. */
#include "fuzz.h"

#include <stdio.h>
#include <string.h>

static const char *const types[T_N] = {"mmap", "munmap", "mprotect", "madvise", "write", "mremap", "fork", "brk",
				       "bad", "mlock", "munlock", "mseal"};
static const char *const kinds[K_N] = {"anon-private", "anon-shared", "file-private", "file-shared"};
static const char *const prot_names[P_N] = {"rw", "r", "none"};
static const char *const modes[M_N] = {"fixed", "noreplace", "hint"};
static const char *const remaps[R_N] = {"shrink", "grow", "move", "dontunmap"};
static const char *const bads[B_N] = {"mmap-zero", "mmap-fixed-unaligned", "munmap-unaligned",
				      "mprotect-unaligned", "madvise-unaligned", "mremap-unaligned"};

const char *fz_prot_name(int prot)
{
	return prot >= 0 && prot < P_N ? prot_names[prot] : "?";
}

const char *fz_kind_name(int kind)
{
	return kind >= 0 && kind < K_N ? kinds[kind] : "?";
}

static const char *name_of(const char *const *names, int n, int i)
{
	return i >= 0 && i < n ? names[i] : "?";
}

int fz_op_format(const struct fz_op *op, char *buf, size_t size)
{
	const char *t = name_of(types, T_N, op->type);
	switch (op->type) {
	case T_MMAP:
		return snprintf(buf, size, "%s %s %u %u %s %s", t, fz_kind_name(op->kind), op->start, op->n,
				fz_prot_name(op->prot), name_of(modes, M_N, op->mode));
	case T_MUNMAP: case T_MLOCK: case T_MUNLOCK: case T_MSEAL:
		return snprintf(buf, size, "%s %u %u", t, op->start, op->n);
	case T_MPROTECT:
		return snprintf(buf, size, "%s %u %u %s", t, op->start, op->n, fz_prot_name(op->prot));
	case T_MADVISE:
		return snprintf(buf, size, "%s %u %u %s", t, op->start, op->n, fz_advice_name(op->sub));
	case T_WRITE: case T_FORK:
		return snprintf(buf, size, "%s %u %u 0x%02x", t, op->start, op->off, op->val);
	case T_MREMAP:
		return snprintf(buf, size, "%s %s %u %u %u %u", t, name_of(remaps, R_N, op->sub), op->start, op->n,
				op->dst, op->dn);
	case T_BRK:
		return snprintf(buf, size, "%s %u", t, op->n);
	case T_BAD:
		return snprintf(buf, size, "%s %s %u %u", t, name_of(bads, B_N, op->sub), op->start, op->n);
	default:
		return snprintf(buf, size, "?");
	}
}

static int lookup(const char *const *names, int n, const char *word)
{
	for (int i = 0; i < n; i++)
		if (names[i] && strcmp(names[i], word) == 0)
			return i;
	return -1;
}

static int lookup_advice(const char *word)
{
	for (int a = 0; a < A_N; a++)
		if (strcmp(fz_advice_name(a), word) == 0)
			return a;
	return -1;
}

static bool fits(unsigned v, unsigned max)
{
	return v <= max;
}

/* 0, or -1 for a line that is no operation. */
int fz_op_parse(const char *line, struct fz_op *op)
{
	char t[16], w1[32], w2[16], w3[16];
	unsigned a = 0, b = 0, c = 0, d = 0;
	memset(op, 0, sizeof(*op));
	if (sscanf(line, "%15s", t) != 1 || (op->type = (uint8_t)lookup(types, T_N, t)) >= T_N)
		return -1;
	int k, p, m;
	switch (op->type) {
	case T_MMAP:
		if (sscanf(line, "%*s %31s %u %u %15s %15s", w1, &a, &b, w2, w3) != 5 ||
		    (k = lookup(kinds, K_N, w1)) < 0 || (p = lookup(prot_names, P_N, w2)) < 0 ||
		    (m = lookup(modes, M_N, w3)) < 0)
			return -1;
		op->kind = (uint8_t)k, op->prot = (uint8_t)p, op->mode = (uint8_t)m;
		break;
	case T_MUNMAP: case T_MLOCK: case T_MUNLOCK: case T_MSEAL:
		if (sscanf(line, "%*s %u %u", &a, &b) != 2)
			return -1;
		break;
	case T_MPROTECT:
		if (sscanf(line, "%*s %u %u %15s", &a, &b, w2) != 3 || (p = lookup(prot_names, P_N, w2)) < 0)
			return -1;
		op->prot = (uint8_t)p;
		break;
	case T_MADVISE:
		if (sscanf(line, "%*s %u %u %31s", &a, &b, w1) != 3 || (k = lookup_advice(w1)) < 0)
			return -1;
		op->sub = (uint8_t)k;
		break;
	case T_WRITE: case T_FORK:
		if (sscanf(line, "%*s %u %u %x", &a, &c, &d) != 3 || !fits(c, 0xffff) || !fits(d, 0xff))
			return -1;
		op->off = (uint16_t)c, op->val = (uint8_t)d;
		break;
	case T_MREMAP:
		if (sscanf(line, "%*s %31s %u %u %u %u", w1, &a, &b, &c, &d) != 5 || (k = lookup(remaps, R_N, w1)) < 0 ||
		    !fits(c, 255) || !fits(d, 255))
			return -1;
		op->sub = (uint8_t)k, op->dst = (uint8_t)c, op->dn = (uint8_t)d;
		break;
	case T_BRK:
		if (sscanf(line, "%*s %u", &b) != 1)
			return -1;
		break;
	case T_BAD:
		if (sscanf(line, "%*s %31s %u %u", w1, &a, &b) != 3 || (k = lookup(bads, B_N, w1)) < 0)
			return -1;
		op->sub = (uint8_t)k;
		break;
	}
	if (!fits(a, 255) || !fits(b, 255))
		return -1;
	op->start = (uint8_t)a, op->n = (uint8_t)b;
	return 0;
}

/* What failed, in words that do not depend on where: the operation (with its kind of request) and the check.
 * Shrinking keeps a sequence only while its signature stays the same. */
void fz_signature(const struct fz_op *ops, const struct fz_failure *f, char *buf, size_t size)
{
	if (f->op < 0) {
		snprintf(buf, size, "%s", fz_check_name(f->check));
		return;
	}
	const struct fz_op *op = &ops[f->op];
	const char *detail = op->type == T_MADVISE ? fz_advice_name(op->sub)
			     : op->type == T_MMAP ? name_of(modes, M_N, op->mode)
			     : op->type == T_MREMAP ? name_of(remaps, R_N, op->sub)
			     : op->type == T_BAD ? name_of(bads, B_N, op->sub) : "";
	if (f->check == C_ERRNO && op->type == T_MADVISE && op->sub != A_UNKNOWN) {
		/* A wrong errno is the same deviation whichever known advice meets it (a hole's ENOMEM ...). */
		snprintf(buf, size, "madvise: errno %s where the contract wants %s", fz_errno_name(f->got_errno),
			 fz_errno_name(f->want_errno));
		return;
	}
	snprintf(buf, size, "%s%s%s: %s", types[op->type], *detail ? " " : "", detail, fz_check_name(f->check));
}
