/* --benchmark_filter on Windows, whose C runtimes have no <regex.h>: the
 * POSIX extended syntax benchmark filters use (literals, '.', bracket
 * expressions with ranges and '^', anchors, groups, '|', '*', '+', '?' and
 * {m,n}), parsed into a tree, compiled to a small program and run as a
 * Thompson simulation (linear in the name; no backtracking). */
#include "config.h"
#include "bench_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PATTERN 65536
#define MAX_REPEAT 64

enum node_kind { N_EMPTY, N_CHAR, N_ANY, N_SET, N_BOL, N_EOL, N_CAT, N_ALT, N_STAR, N_PLUS, N_QUEST };

struct node {
	enum node_kind kind;
	unsigned char c;
	unsigned char set[32];
	struct node *a, *b;
};

enum op { OP_CHAR, OP_ANY, OP_SET, OP_BOL, OP_EOL, OP_SPLIT, OP_JMP, OP_MATCH };

struct inst {
	enum op op;
	unsigned char c;
	const unsigned char *set;
	int x, y;
};

struct pb_filter {
	struct node *nodes;
	struct inst *prog;
	int ninst;
};

struct parser {
	const char *s;
	struct node *pool;
	int used, cap;
	bool bad;
};

static struct node *new_node(struct parser *p, enum node_kind kind, struct node *a, struct node *b)
{
	if (p->used == p->cap) {
		p->bad = true;
		return &p->pool[0];
	}
	struct node *n = &p->pool[p->used++];
	memset(n, 0, sizeof(*n));
	n->kind = kind;
	n->a = a;
	n->b = b;
	return n;
}

static struct node *parse_alt(struct parser *p);

/* "[...]" after its '[': ranges, a leading '^', a ']' first taken literally. */
static struct node *parse_set(struct parser *p)
{
	struct node *n = new_node(p, N_SET, NULL, NULL);
	bool negate = *p->s == '^';
	p->s += negate;
	for (bool first = true; *p->s && (first || *p->s != ']'); first = false) {
		unsigned char lo = (unsigned char)*p->s++, hi = lo;
		if (p->s[0] == '-' && p->s[1] && p->s[1] != ']') {
			hi = (unsigned char)p->s[1];
			p->s += 2;
		}
		for (unsigned c = lo; c <= hi; c++)
			n->set[c / 8] |= (unsigned char)(1u << (c % 8));
	}
	if (*p->s != ']')
		p->bad = true;
	else
		p->s++;
	if (negate)
		for (int i = 0; i < 32; i++)
			n->set[i] = (unsigned char)~n->set[i];
	return n;
}

static struct node *parse_atom(struct parser *p)
{
	char c = *p->s++;
	switch (c) {
	case '(': {
		struct node *n = parse_alt(p);
		if (*p->s != ')')
			p->bad = true;
		else
			p->s++;
		return n;
	}
	case '.': return new_node(p, N_ANY, NULL, NULL);
	case '[': return parse_set(p);
	case '^': return new_node(p, N_BOL, NULL, NULL);
	case '$': return new_node(p, N_EOL, NULL, NULL);
	case '*': case '+': case '?': case '{': case ')': case 0:
		p->bad = true;
		return new_node(p, N_EMPTY, NULL, NULL);
	case '\\':
		if (!*p->s)
			p->bad = true;
		c = *p->s ? *p->s++ : c;
		/* fall through */
	default: {
		struct node *n = new_node(p, N_CHAR, NULL, NULL);
		n->c = (unsigned char)c;
		return n;
	}
	}
}

/* a{m,n}: m copies of a, then n-m optional ones (or a star for {m,}). */
static struct node *bounded(struct parser *p, struct node *a)
{
	char *end;
	long m = strtol(p->s, &end, 10), n = m;
	if (end == p->s)
		p->bad = true;
	if (*end == ',')
		n = end[1] == '}' ? -1 : strtol(end + 1, &end, 10);
	else
		end--;
	p->s = end + 1;
	if (*p->s++ != '}' || m < 0 || m > MAX_REPEAT || n > MAX_REPEAT || (n >= 0 && n < m)) {
		p->bad = true;
		return a;
	}
	struct node *r = new_node(p, N_EMPTY, NULL, NULL);
	for (long i = 0; i < m; i++)
		r = new_node(p, N_CAT, r, a);
	if (n < 0)
		return new_node(p, N_CAT, r, new_node(p, N_STAR, a, NULL));
	for (long i = m; i < n; i++)
		r = new_node(p, N_CAT, r, new_node(p, N_QUEST, a, NULL));
	return r;
}

static struct node *parse_repeat(struct parser *p)
{
	struct node *a = parse_atom(p);
	for (;;) {
		char c = *p->s;
		if (c == '*' || c == '+' || c == '?') {
			p->s++;
			a = new_node(p, c == '*' ? N_STAR : c == '+' ? N_PLUS : N_QUEST, a, NULL);
		} else if (c == '{') {
			p->s++;
			a = bounded(p, a);
		} else {
			return a;
		}
	}
}

static struct node *parse_concat(struct parser *p)
{
	struct node *r = new_node(p, N_EMPTY, NULL, NULL);
	while (*p->s && *p->s != '|' && *p->s != ')' && !p->bad)
		r = new_node(p, N_CAT, r, parse_repeat(p));
	return r;
}

static struct node *parse_alt(struct parser *p)
{
	struct node *r = parse_concat(p);
	while (*p->s == '|' && !p->bad) {
		p->s++;
		r = new_node(p, N_ALT, r, parse_concat(p));
	}
	return r;
}

static int size(const struct node *n)
{
	switch (n->kind) {
	case N_EMPTY: return 0;
	case N_CAT: return size(n->a) + size(n->b);
	case N_ALT: return 2 + size(n->a) + size(n->b);
	case N_STAR: return 2 + size(n->a);
	case N_PLUS: case N_QUEST: return 1 + size(n->a);
	default: return 1;
	}
}

static int emit(const struct node *n, struct inst *prog, int pc)
{
	static const enum op leaf_op[] = {[N_CHAR] = OP_CHAR, [N_ANY] = OP_ANY, [N_SET] = OP_SET, [N_BOL] = OP_BOL, [N_EOL] = OP_EOL};
	int start = pc;
	switch (n->kind) {
	case N_EMPTY: return pc;
	case N_CAT: return emit(n->b, prog, emit(n->a, prog, pc));
	case N_ALT:
		pc = emit(n->a, prog, pc + 1);
		prog[start] = (struct inst){.op = OP_SPLIT, .x = start + 1, .y = pc + 1};
		pc = emit(n->b, prog, pc + 1);
		prog[prog[start].y - 1] = (struct inst){.op = OP_JMP, .x = pc};
		return pc;
	case N_STAR:
		pc = emit(n->a, prog, pc + 1);
		prog[pc] = (struct inst){.op = OP_JMP, .x = start};
		prog[start] = (struct inst){.op = OP_SPLIT, .x = start + 1, .y = pc + 1};
		return pc + 1;
	case N_PLUS:
		pc = emit(n->a, prog, pc);
		prog[pc] = (struct inst){.op = OP_SPLIT, .x = start, .y = pc + 1};
		return pc + 1;
	case N_QUEST:
		pc = emit(n->a, prog, pc + 1);
		prog[start] = (struct inst){.op = OP_SPLIT, .x = start + 1, .y = pc};
		return pc;
	default:
		prog[pc] = (struct inst){.op = leaf_op[n->kind], .c = n->c, .set = n->set};
		return pc + 1;
	}
}

int pb_filter_compile(const char *pattern, struct pb_filter **out)
{
	size_t len = strlen(pattern);
	if (len > MAX_PATTERN)
		return EINVAL;
	size_t bounds = 0; /* each {m,n} makes up to 2 * MAX_REPEAT + 2 nodes */
	for (const char *c = pattern; *c; c++)
		bounds += *c == '{';
	struct parser p = {.s = pattern, .cap = (int)(2 * len + 8 + bounds * (2 * MAX_REPEAT + 2))};
	struct pb_filter *f = calloc(1, sizeof(*f));
	p.pool = f ? calloc((size_t)p.cap, sizeof(*p.pool)) : NULL;
	if (!p.pool) {
		free(f);
		return ENOMEM;
	}
	struct node *root = parse_alt(&p);
	if (p.bad || *p.s) {
		free(p.pool);
		free(f);
		return EINVAL;
	}
	f->nodes = p.pool;
	f->ninst = size(root) + 1;
	f->prog = calloc((size_t)f->ninst, sizeof(*f->prog));
	if (!f->prog) {
		pb_filter_free(f);
		return ENOMEM;
	}
	f->prog[emit(root, f->prog, 0)].op = OP_MATCH;
	*out = f;
	return 0;
}

struct threads {
	int *pc;
	int n;
};

/* Add pc and everything reachable from it without reading a character; true on a match. */
static bool add(const struct pb_filter *f, struct threads *t, int *mark, int gen, int pc, const char *s, size_t at)
{
	if (mark[pc] == gen)
		return false;
	mark[pc] = gen;
	const struct inst *i = &f->prog[pc];
	switch (i->op) {
	case OP_JMP: return add(f, t, mark, gen, i->x, s, at);
	case OP_SPLIT: return add(f, t, mark, gen, i->x, s, at) | add(f, t, mark, gen, i->y, s, at);
	case OP_BOL: return at == 0 && add(f, t, mark, gen, pc + 1, s, at);
	case OP_EOL: return s[at] == 0 && add(f, t, mark, gen, pc + 1, s, at);
	case OP_MATCH: return true;
	default:
		t->pc[t->n++] = pc;
		return false;
	}
}

static bool consumes(const struct inst *i, unsigned char c)
{
	return (i->op == OP_CHAR && i->c == c) || (i->op == OP_ANY && c) ||
	       (i->op == OP_SET && c && (i->set[c / 8] & (1u << (c % 8))));
}

bool pb_filter_match(const struct pb_filter *f, const char *name)
{
	int *buf = calloc((size_t)f->ninst * 3, sizeof(int));
	if (!buf)
		return false;
	struct threads cur = {buf, 0}, next = {buf + f->ninst, 0};
	int *mark = buf + 2 * f->ninst, gen = 1;
	bool matched = false;
	for (size_t at = 0; !matched; at++, gen++) {
		/* A match may start anywhere: the start state joins at every position. */
		matched = add(f, &cur, mark, gen, 0, name, at);
		if (matched || !name[at])
			break;
		next.n = 0;
		for (int k = 0; k < cur.n && !matched; k++)
			if (consumes(&f->prog[cur.pc[k]], (unsigned char)name[at]))
				matched = add(f, &next, mark, gen + 1, cur.pc[k] + 1, name, at + 1);
		struct threads tmp = cur;
		cur = next;
		next = tmp;
	}
	free(buf);
	return matched;
}

void pb_filter_free(struct pb_filter *f)
{
	if (!f)
		return;
	free(f->nodes);
	free(f->prog);
	free(f);
}
