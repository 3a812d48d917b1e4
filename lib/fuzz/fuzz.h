/* pagelab-fuzz: random and bounded-exhaustive operation sequences on a small
 * arena, each checked against a model of what the contracts allow
 * (DESIGN.md, "Random testing against a model").
 *
 * Linux only: the operations are Linux's (the constants are defined here,
 * whatever the headers of the build have); which of them the running system
 * has is decided at run time (fz_probe_features). */
#ifndef PAGELAB_FUZZ_H
#define PAGELAB_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define FZ_PAGES 16      /* arena pages */
#define FZ_FILE_PAGES 40 /* pages of the backing file: an arena's worth plus what a grow reaches */
#define FZ_BRK_PAGES 4   /* how far the break moves above its start */
#define FZ_MAX_OPS 64
#define FZ_MAX_ALT 2     /* contents a page may hold: exact, or old-or-zero */

/* Linux's values (asm-generic/mman-common.h, linux/mman.h), never taken from the build's headers. */
enum {
	FZ_MADV_WILLNEED = 3, FZ_MADV_DONTNEED = 4, FZ_MADV_FREE = 8, FZ_MADV_REMOVE = 9,
	FZ_MADV_DONTFORK = 10, FZ_MADV_DOFORK = 11, FZ_MADV_WIPEONFORK = 18, FZ_MADV_KEEPONFORK = 19,
	FZ_MADV_COLD = 20, FZ_MADV_PAGEOUT = 21, FZ_MADV_POPULATE_READ = 22, FZ_MADV_POPULATE_WRITE = 23,
	FZ_MADV_GUARD_INSTALL = 102, FZ_MADV_GUARD_REMOVE = 103,
	FZ_MADV_NO_SUCH = 0x7a31, /* an advice no system defines */
};
#define FZ_MAP_FIXED_NOREPLACE 0x100000
#define FZ_MREMAP_MAYMOVE 1
#define FZ_MREMAP_FIXED 2
#define FZ_MREMAP_DONTUNMAP 4
#define FZ_NR_MSEAL 462 /* the same number on every architecture (asm-generic/unistd.h) */

enum fz_type { T_MMAP, T_MUNMAP, T_MPROTECT, T_MADVISE, T_WRITE, T_MREMAP, T_FORK, T_BRK, T_BAD, T_MLOCK, T_MUNLOCK,
	T_MSEAL, T_N };
/* Each enumeration lists its simplest member first: the shrinker moves toward 0. */
enum fz_kind { K_ANON_PRIVATE, K_ANON_SHARED, K_FILE_PRIVATE, K_FILE_SHARED, K_N };
enum fz_prot { P_RW, P_R, P_NONE, P_N };
enum fz_mode { M_FIXED, M_NOREPLACE, M_HINT, M_N };
enum fz_advice {
	A_DONTNEED, A_FREE, A_COLD, A_PAGEOUT, A_WILLNEED, A_POPULATE_READ, A_POPULATE_WRITE, A_REMOVE,
	A_GUARD_INSTALL, A_GUARD_REMOVE, A_DONTFORK, A_DOFORK, A_WIPEONFORK, A_KEEPONFORK, A_UNKNOWN, A_N
};
enum fz_remap { R_SHRINK, R_GROW, R_MOVE, R_DONTUNMAP, R_N };
/* Invalid arguments, each with EINVAL as its contract. */
enum fz_bad { B_MMAP_ZERO, B_MMAP_FIXED_UNALIGNED, B_MUNMAP_UNALIGNED, B_MPROTECT_UNALIGNED,
	B_MADVISE_UNALIGNED, B_MREMAP_UNALIGNED, B_N };

/* One operation. Fields by type:
 *   mmap: kind prot mode start n   munmap: start n   mprotect: start n prot
 *   madvise: start n sub=advice    write: start off val   fork: start off val (the child writes)
 *   mremap: start n sub=remap dst dn   brk: n (the break, in pages above its start)   bad: sub start n
 *   mlock, munlock, mseal: start n */
struct fz_op {
	uint8_t type, kind, prot, mode, sub;
	uint8_t start, n, dst, dn, val;
	uint16_t off;
};

struct fz_page {
	uint8_t mapped, kind, prot, guard, dontfork, wipeonfork, locked, sealed;
	uint16_t seg;   /* pages of one segment lie in one VMA (a new segment at every attribute change) */
	uint16_t fpage; /* file page behind it (file mappings) */
};

/* The model. contents: false for the generator's and shrinker's dry runs, which need only the structure. */
struct fz_model {
	struct fz_page pg[FZ_PAGES];
	uint16_t next_seg;
	uint8_t brk_pages, brk_max;
	bool contents;
	size_t ps;
	uint8_t nalt[FZ_PAGES];
	unsigned char *alt[FZ_PAGES][FZ_MAX_ALT];
	unsigned char *shared_file[FZ_FILE_PAGES]; /* the shared file's pages: what its mappings show */
	const unsigned char *private_file;        /* the private mappings' file, never written */
};

/* What the contract allows an operation to return: success, or one of the listed errno values. */
struct fz_expect {
	bool ok_allowed;
	int nerr;
	int err[2];
};

/* What the running system has (decided at run time, never from headers). */
struct fz_features {
	bool advice[A_N];
	bool dontunmap, brk, file, mlock, mseal;
};

/* How a sequence failed. check: what disagreed with the model. */
enum fz_check { C_NONE, C_ERRNO, C_ADDRESS, C_FAULT, C_CONTENTS, C_CHILD_FAULT, C_CHILD_CONTENTS,
	C_BRK_FAULT, C_CRASH, C_HANG, C_SETUP };
struct fz_failure {
	int check;          /* enum fz_check */
	int op;             /* index of the operation after which it was seen */
	int page;           /* arena page (brk page for C_BRK_FAULT), or -1 */
	bool write;         /* the access was a write (C_FAULT) */
	int want_fault, got_sig, got_code; /* fault checks: wanted class (enum fz_fault), what happened */
	int got_errno, want_errno; /* C_ERRNO: what came, what the contract wants first (0: success) */
	int nalt;           /* C_CONTENTS: for each allowed content, an offset where the page differs */
	uint16_t alt_off[FZ_MAX_ALT];
	uint8_t alt_byte[FZ_MAX_ALT], got_byte[FZ_MAX_ALT];
	char msg[200];
};

/* The fault a page access must raise. */
enum fz_fault { F_NONE, F_MAPERR, F_ACCERR, F_SEGV /* any SIGSEGV: guard regions */ };

/* model.c */
void fz_model_init(struct fz_model *m, size_t ps, bool contents, unsigned char *store);
size_t fz_model_store_size(size_t ps);
void fz_store_prepare(unsigned char *store, size_t ps);
const unsigned char *fz_store_file(const unsigned char *store, size_t ps, bool shared);
bool fz_expect_op(const struct fz_model *m, const struct fz_features *ft, const struct fz_op *op, struct fz_expect *e);
void fz_apply(struct fz_model *m, const struct fz_op *op);
void fz_fork_child(struct fz_model *m);
enum fz_fault fz_page_fault(const struct fz_model *m, int page, bool write);
unsigned char fz_file_byte(unsigned fpage, unsigned off);
bool fz_seq_valid(const struct fz_op *ops, int n, const struct fz_features *ft, size_t ps);

/* exec.c: run a sequence here (in a child of the driver), checking every step. */
struct fz_arena {
	unsigned char *base; /* FZ_PAGES pages, with a mapped PROT_NONE page on each side */
	unsigned char *brk0; /* the break's start, page aligned (NULL without brk) */
	int file;            /* the file of private file mappings, never written; -1 without */
	int shared_file;     /* the file of shared file mappings, refilled before each sequence; -1 without */
	unsigned char *store; /* the model's contents (allocated before any child runs: children never allocate) */
	size_t ps;
};
int fz_arena_open(struct fz_arena *a, const struct fz_features *ft);
int fz_arena_brk(struct fz_arena *a);
bool fz_run(const struct fz_arena *a, const struct fz_features *ft, const struct fz_op *ops, int n, int fd,
	    struct fz_failure *f);
const char *fz_check_name(int check);
const char *fz_errno_name(int e); /* "ENOMEM"; 0: "success" */

/* features.c */
void fz_probe_features(struct fz_features *ft, size_t ps);
long fz_advice_value(int advice);
const char *fz_advice_name(int advice);

/* text.c: the replay format, one operation a line. */
int fz_op_format(const struct fz_op *op, char *buf, size_t size);
int fz_op_parse(const char *line, struct fz_op *op);
const char *fz_prot_name(int prot);
const char *fz_kind_name(int kind);
void fz_signature(const struct fz_op *ops, const struct fz_failure *f, char *buf, size_t size);

/* gen.c */
uint64_t fz_rand(uint64_t *state);
int fz_generate(uint64_t seed, int len, const struct fz_features *ft, size_t ps, struct fz_op *ops);
int fz_alphabet(struct fz_op *ops, int max);

/* shrink.c: fails(ops, n, ctx) runs a candidate and says whether it fails with the signature sought. */
typedef bool (*fz_fails_fn)(const struct fz_op *ops, int n, void *ctx);
int fz_shrink(struct fz_op *ops, int n, fz_fails_fn fails, void *ctx, const struct fz_features *ft, size_t ps,
	      int budget);

/* repro.c: a standalone C program that replays a sequence and checks the failing step. */
int fz_write_reproducer(FILE *out, const struct fz_op *ops, int n, const struct fz_failure *f,
			const struct fz_features *ft, size_t ps);

#endif
