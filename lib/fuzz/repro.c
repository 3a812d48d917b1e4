/* The standalone reproducer: a C program that needs nothing of pagelab. It
 * sets up the same arena and file, performs the sequence, checks every
 * operation's result against the contract, and at the step that failed
 * checks what disagreed. Exit 1: reproduced; 0: not reproduced; 2: setup failed. */
#include "fuzz.h"

#include <errno.h>
#include <string.h>

static const char preamble[] =
	"#define _GNU_SOURCE\n"
	"#include <errno.h>\n#include <setjmp.h>\n#include <signal.h>\n#include <stdint.h>\n#include <stdio.h>\n"
	"#include <stdlib.h>\n#include <string.h>\n#include <sys/mman.h>\n#include <sys/syscall.h>\n#include <sys/wait.h>\n#include <unistd.h>\n\n"
	"#define PAGES %d\n#define FILE_PAGES %d\n#define P(i) (base + (size_t)(i) * ps)\n\n"
	"static sigjmp_buf jb;\nstatic volatile sig_atomic_t got_sig, got_code;\n"
	"static unsigned char *base, *brk0;\nstatic size_t ps;\nstatic int file = -1, shared_file = -1;\n\n"
	"static void on_fault(int sig, siginfo_t *info, void *uc)\n{\n\t(void)uc;\n\tgot_sig = sig;\n"
	"\tgot_code = info ? info->si_code : 0;\n\tsiglongjmp(jb, 1);\n}\n\n"
	"/* Read or write one byte: the signal it raised (0: none); *code its si_code. */\n"
	"static int touch(unsigned char *p, int write, unsigned char val, int *code)\n{\n"
	"\tgot_sig = got_code = 0;\n\tif (sigsetjmp(jb, 1) == 0) {\n\t\tif (write)\n\t\t\t*(volatile unsigned char *)p = val;\n"
	"\t\telse\n\t\t\t(void)*(volatile unsigned char *)p;\n\t}\n\t*code = got_code;\n\treturn got_sig;\n}\n\n"
	"/* want: 0 no fault, 1 SIGSEGV/SEGV_MAPERR, 2 SIGSEGV/SEGV_ACCERR, 3 any SIGSEGV. */\n"
	"static int fault_is(int sig, int code, int want)\n{\n"
	"\treturn want == 0 ? sig == 0 : want == 1 ? sig == SIGSEGV && code == SEGV_MAPERR\n"
	"\t       : want == 2 ? sig == SIGSEGV && code == SEGV_ACCERR : sig == SIGSEGV;\n}\n\n"
	"static void deviation(const char *what)\n{\n\tfprintf(stderr, \"REPRODUCED (pid %%ld): %%s\\n\", (long)getpid(), what);\n"
	"\texit(1);\n}\n\n"
	"static void expect(int ok, const char *what)\n{\n\tif (!ok)\n\t\tdeviation(what);\n}\n\n"
	"static void setup_failed(const char *what)\n{\n\tperror(what);\n\texit(2);\n}\n\n"
	"static unsigned char file_byte(unsigned fpage, unsigned off)\n{\n"
	"\treturn (unsigned char)((fpage * 37u + off * 7u + 1u) | 1u);\n}\n\n"
	"/* A file of FILE_PAGES known pages: file_byte(first + page, offset). */\n"
	"static int make_file(unsigned first)\n{\n\tchar path[] = \"/tmp/fuzz-repro-XXXXXX\";\n"
	"\tunsigned char *buf = malloc(ps);\n\tint fd = mkstemp(path);\n"
	"\tif (fd < 0 || !buf || unlink(path) != 0)\n\t\tsetup_failed(\"file\");\n"
	"\tfor (unsigned p = 0; p < FILE_PAGES; p++) {\n\t\tfor (size_t o = 0; o < ps; o++)\n"
	"\t\t\tbuf[o] = file_byte(first + p, (unsigned)o);\n\t\tif (write(fd, buf, ps) != (ssize_t)ps)\n"
	"\t\t\tsetup_failed(\"file write\");\n\t}\n\tfree(buf);\n\treturn fd;\n}\n\n"
	"/* The arena between two PROT_NONE pages, the files of private and of shared file mappings, the fault\n"
	" * handler, the break's start. */\n"
	"static void setup(void)\n{\n\tstruct sigaction sa;\n\tps = (size_t)sysconf(_SC_PAGESIZE);\n"
	"\tunsigned char *r = mmap(NULL, (PAGES + 2) * ps, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);\n"
	"\tif (r == MAP_FAILED || munmap(r + ps, PAGES * ps) != 0)\n\t\tsetup_failed(\"arena\");\n\tbase = r + ps;\n"
	"\tfile = make_file(0);\n\tshared_file = make_file(FILE_PAGES);\n\tmemset(&sa, 0, sizeof(sa));\n"
	"\tsa.sa_sigaction = on_fault;\n\tsa.sa_flags = SA_SIGINFO;\n\tsigemptyset(&sa.sa_mask);\n"
	"\tif (sigaction(SIGSEGV, &sa, NULL) != 0 || sigaction(SIGBUS, &sa, NULL) != 0)\n\t\tsetup_failed(\"sigaction\");\n"
	"\tunsigned char *cur = sbrk(0);\n\tif (cur == (void *)-1)\n\t\tsetup_failed(\"sbrk\");\n"
	"\tbrk0 = (unsigned char *)(((uintptr_t)cur + 2 * ps - 1) & ~(uintptr_t)(ps - 1));\n}\n\n"
	"/* A hinted mapping may land anywhere free: not on pages of the arena mapped (mask), not on its edges. */\n"
	"static int hint_fine(unsigned char *r, size_t len, const char *mask)\n{\n"
	"\tif (r + len <= base - ps || r >= base + (PAGES + 1) * ps)\n\t\treturn 1;\n"
	"\tif (r < base || r + len > base + PAGES * ps || (size_t)(r - base) %% ps)\n\t\treturn 0;\n"
	"\tfor (size_t p = (size_t)(r - base) / ps; p < (size_t)(r - base + len) / ps; p++)\n"
	"\t\tif (mask[p] == '1')\n\t\t\treturn 0;\n\treturn 1;\n}\n\n"
	"int main(void)\n{\n\tvoid *r;\n\tint e, sig, code;\n\t(void)r, (void)e, (void)sig, (void)code, (void)hint_fine, (void)fault_is, (void)touch;\n\tsetup();\n";

static const char *const prot_c[P_N] = {"PROT_READ | PROT_WRITE", "PROT_READ", "PROT_NONE"};
static const char *const kind_c[K_N] = {"MAP_PRIVATE | MAP_ANONYMOUS", "MAP_SHARED | MAP_ANONYMOUS", "MAP_PRIVATE",
				       "MAP_SHARED"};
static const char *const errno_c[] = {[EINVAL] = "EINVAL", [ENOMEM] = "ENOMEM", [EEXIST] = "EEXIST",
				      [EBADF] = "EBADF", [EPERM] = "EPERM"};

/* The C condition for "the result is one the contract allows" (e is 0 or errno). */
static void allowed_cond(FILE *out, const struct fz_expect *e, const char *ok_extra)
{
	fprintf(out, "(");
	if (e->ok_allowed)
		fprintf(out, "(e == 0%s)", ok_extra);
	for (int i = 0; i < e->nerr; i++)
		fprintf(out, "%se == %s", e->ok_allowed || i ? " || " : "", errno_c[e->err[i]]);
	fprintf(out, ")");
}

static void emit_mapping_call(FILE *out, const struct fz_op *op)
{
	if (op->type == T_MMAP) {
		const char *mode = op->mode == M_FIXED ? " | MAP_FIXED" : op->mode == M_NOREPLACE ? " | 0x100000" : "";
		/* the file page behind a page is its arena page */
		const char *fd = op->kind == K_FILE_PRIVATE ? "file" : op->kind == K_FILE_SHARED ? "shared_file" : "-1";
		fprintf(out, "\tr = mmap(P(%u), %u * ps, %s, %s%s, %s, (off_t)%u * (off_t)ps);\n", op->start, op->n,
			prot_c[op->prot], kind_c[op->kind], mode, fd, op->kind >= K_FILE_PRIVATE ? op->start : 0);
	} else if (op->sub <= R_GROW) {
		fprintf(out, "\tr = mremap(P(%u), %u * ps, %u * ps, 0);\n", op->start, op->n, op->dn);
	} else {
		fprintf(out, "\tr = mremap(P(%u), %u * ps, %u * ps, MREMAP_MAYMOVE | MREMAP_FIXED%s, P(%u));\n",
			op->start, op->n, op->dn, op->sub == R_DONTUNMAP ? " | 4 /* MREMAP_DONTUNMAP */" : "", op->dst);
	}
	fprintf(out, "\te = r == MAP_FAILED ? errno : 0;\n");
}

static void emit_call(FILE *out, const struct fz_op *op)
{
	static const char *const bad_c[B_N] = {
		"r = mmap(NULL, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);\n\te = r == MAP_FAILED ? errno : 0;",
		("r = mmap(P(%u) + 1, %u * ps, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);\n"
		 "\te = r == MAP_FAILED ? errno : 0;"),
		"e = munmap(P(%u) + 1, %u * ps) == 0 ? 0 : errno;",
		"e = mprotect(P(%u) + 1, %u * ps, PROT_READ) == 0 ? 0 : errno;",
		"e = madvise(P(%u) + 1, %u * ps, MADV_DONTNEED) == 0 ? 0 : errno;",
		"r = mremap(P(%u) + 1, %u * ps, %u * ps, 0);\n\te = r == MAP_FAILED ? errno : 0;"};
	switch (op->type) {
	case T_MMAP: case T_MREMAP: emit_mapping_call(out, op); break;
	case T_MUNMAP: fprintf(out, "\te = munmap(P(%u), %u * ps) == 0 ? 0 : errno;\n", op->start, op->n); break;
	case T_MPROTECT:
		fprintf(out, "\te = mprotect(P(%u), %u * ps, %s) == 0 ? 0 : errno;\n", op->start, op->n, prot_c[op->prot]);
		break;
	case T_MADVISE:
		fprintf(out, "\te = madvise(P(%u), %u * ps, %ld /* %s */) == 0 ? 0 : errno;\n", op->start, op->n,
			fz_advice_value(op->sub), fz_advice_name(op->sub));
		break;
	case T_BRK: fprintf(out, "\te = brk(brk0 + %u * ps) == 0 ? 0 : errno;\n", op->n); break;
	case T_MLOCK: case T_MUNLOCK:
		fprintf(out, "\te = %s(P(%u), %u * ps) == 0 ? 0 : errno;\n", op->type == T_MLOCK ? "mlock" : "munlock",
			op->start, op->n);
		break;
	case T_MSEAL:
		fprintf(out, "\te = syscall(%d /* mseal */, P(%u), %u * ps, 0UL) == 0 ? 0 : errno;\n", FZ_NR_MSEAL,
			op->start, op->n);
		break;
	case T_BAD:
		fprintf(out, "\t");
		fprintf(out, bad_c[op->sub], op->start, op->n, op->n);
		fprintf(out, "\n");
		break;
	default: break;
	}
}

static void emit_result_check(FILE *out, const struct fz_model *m, const struct fz_op *op, const struct fz_expect *e,
			      const char *label)
{
	char extra[FZ_PAGES + 64] = "";
	if (op->type == T_MMAP && op->mode == M_HINT) {
		char mask[FZ_PAGES + 1];
		for (int p = 0; p < FZ_PAGES; p++)
			mask[p] = m->pg[p].mapped ? '1' : '0';
		mask[FZ_PAGES] = 0;
		snprintf(extra, sizeof(extra), " && hint_fine(r, %u * ps, \"%s\")", op->n, mask);
	} else if (op->type == T_MMAP || (op->type == T_MREMAP && op->sub <= R_GROW)) {
		snprintf(extra, sizeof(extra), " && r == P(%u)", op->start);
	} else if (op->type == T_MREMAP) {
		snprintf(extra, sizeof(extra), " && r == P(%u)", op->dst);
	}
	fprintf(out, "\texpect(");
	allowed_cond(out, e, extra);
	fprintf(out, ", \"%s: a result the contract does not allow\");\n", label);
	if (op->type == T_MMAP && op->mode == M_HINT)
		fprintf(out, "\tif (e == 0 && munmap(r, %u * ps) != 0)\n\t\tsetup_failed(\"munmap\");\n", op->n);
}

static void emit_fault_check(FILE *out, const char *where, bool write, unsigned val, int want, const char *label)
{
	fprintf(out, "\tsig = touch(%s, %d, 0x%02x, &code);\n", where, write, val);
	fprintf(out, "\texpect(fault_is(sig, code, %d), \"%s\");\n", want, label);
}

/* The check that failed at this step (an operation's own result is checked with the operation). */
static void emit_failed_check(FILE *out, const struct fz_failure *f, const char *label)
{
	char where[64], msg[256];
	snprintf(where, sizeof(where), "P(%d)", f->page);
	if ((f->check == C_FAULT || f->check == C_CHILD_FAULT) && !f->write) {
		snprintf(msg, sizeof(msg), "%s: a read of page %d: not the fault the contract says", label, f->page);
		emit_fault_check(out, where, false, 0, f->want_fault, msg);
	} else if (f->check == C_CONTENTS || f->check == C_CHILD_CONTENTS) {
		fprintf(out, "\texpect(!(");
		for (int a = 0; a < f->nalt; a++)
			fprintf(out, "%sP(%d)[%u] != 0x%02x", a ? " && " : "", f->page, f->alt_off[a], f->alt_byte[a]);
		fprintf(out, "), \"%s: page %d holds none of the contents the contract allows\");\n", label, f->page);
	} else if (f->check == C_BRK_FAULT) {
		fprintf(out, "\tsig = touch(brk0 + %d * ps, 0, 0, &code);\n", f->page);
		fprintf(out, "\texpect(%s, \"%s: break page %d\");\n", f->want_fault ? "sig == SIGSEGV" : "sig == 0",
			label, f->page);
	}
}

static void emit_fork(FILE *out, const struct fz_model *m, const struct fz_op *op, const struct fz_failure *f,
		      bool failing, const char *label)
{
	struct fz_model child = *m;
	char where[64], msg[200], in_child[200];
	fz_fork_child(&child);
	snprintf(where, sizeof(where), "P(%u) + %u", op->start, op->off);
	snprintf(msg, sizeof(msg), "%s: the child's write", label);
	snprintf(in_child, sizeof(in_child), "%s: in the forked child", label);
	fprintf(out, "\t{\n\tpid_t pid = fork();\n\tif (pid == 0) {\n");
	if (failing)
		emit_failed_check(out, f, in_child);
	emit_fault_check(out, where, true, op->val, fz_page_fault(&child, op->start, true), msg);
	fprintf(out, "\t\t_exit(0);\n\t}\n\tint st;\n\tif (pid < 0 || waitpid(pid, &st, 0) != pid)\n"
		"\t\tsetup_failed(\"fork\");\n\tif (WIFEXITED(st) && WEXITSTATUS(st) == 1)\n\t\texit(1);\n"
		"\texpect(WIFEXITED(st) && WEXITSTATUS(st) == 0, \"%s: the forked child crashed\");\n\t}\n", label);
}

int fz_write_reproducer(FILE *out, const struct fz_op *ops, int n, const struct fz_failure *f,
			const struct fz_features *ft, size_t ps)
{
	struct fz_model m;
	struct fz_expect e;
	char text[128], label[160];
	fz_model_init(&m, ps, false, NULL);
	fprintf(out, "/* pagelab-fuzz reproducer: %s\n * Standalone: cc -o repro THIS.c && ./repro "
		"(exit 1: reproduced, 0: not reproduced, 2: setup failed). */\n", f->msg);
	fprintf(out, preamble, FZ_PAGES, FZ_FILE_PAGES);
	for (int i = 0; i < n; i++) {
		const struct fz_op *op = &ops[i];
		if (!fz_expect_op(&m, ft, op, &e))
			return EINVAL;
		fz_op_format(op, text, sizeof(text));
		snprintf(label, sizeof(label), "%d: %s", i + 1, text);
		fprintf(out, "\t/* %s */\n", label);
		bool failing = i == f->op;
		if (op->type == T_WRITE) {
			char where[64];
			snprintf(where, sizeof(where), "P(%u) + %u", op->start, op->off);
			emit_fault_check(out, where, true, op->val, fz_page_fault(&m, op->start, true), label);
		} else if (op->type == T_FORK) {
			emit_fork(out, &m, op, f, failing && (f->check == C_CHILD_FAULT || f->check == C_CHILD_CONTENTS),
				  label);
		} else {
			emit_call(out, op);
			emit_result_check(out, &m, op, &e, label);
		}
		if (failing && f->check != C_CHILD_FAULT && f->check != C_CHILD_CONTENTS)
			emit_failed_check(out, f, label);
		fz_apply(&m, op);
	}
	fprintf(out, "\tfprintf(stderr, \"not reproduced\\n\");\n\treturn 0;\n}\n");
	return ferror(out) ? EIO : 0;
}
