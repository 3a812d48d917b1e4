/* pagelab's OS layer under the harness: processes, faults, files, and the
 * world a process runs in. The portable logic above it (the conformance
 * scheduler, protocol and output) makes no OS calls of its own.
 *
 * One implementation file per OS family and layer (lib/os/proc_posix.c,
 * fault_posix.c, file_posix.c, world_<platform>.c ...), chosen by the
 * Makefile. Every call returns 0 or an errno value unless stated.
 */
#ifndef PAGELAB_OS_H
#define PAGELAB_OS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- faults ---- */

enum pl_fault_kind {
	PL_FAULT_NONE = 0,
	PL_FAULT_UNMAPPED, /* nothing mapped there (SIGSEGV/SEGV_MAPERR; Linux guard regions too) */
	PL_FAULT_ACCESS,   /* mapped without that access (SIGSEGV/SEGV_ACCERR) */
	PL_FAULT_BUS,      /* mapped but nothing behind it (SIGBUS/BUS_ADRERR: past the end of a file) */
	PL_FAULT_GUARD,    /* a one-shot guard page (Windows PAGE_GUARD) */
	PL_FAULT_OTHER,    /* a fault the kinds above do not name */
};

struct pl_fault {
	enum pl_fault_kind kind;
	int sig;       /* the signal; 0 where the OS raises exceptions instead */
	int code;      /* si_code, or the exception code; 0 where the OS gives none */
	char name[48]; /* "SIGSEGV/SEGV_ACCERR", "EXCEPTION_GUARD_PAGE", "none" ... */
};

/* Read (write=false) or write val to the byte at p and say whether and how
 * it faulted. 0, or an errno value when no fault catcher could be set up. */
int pl_try_access(volatile void *p, bool write, unsigned char val, struct pl_fault *f);
/* "none", "unmapped", "access", "bus", "guard", "other". */
const char *pl_fault_kind_name(enum pl_fault_kind kind);

/* ---- files ---- */

/* Read a whole small file (e.g. under /proc) into buf, trailing newline removed. */
int pl_read_file(const char *path, char *buf, size_t size);
/* Make a new private directory under the system's temporary directory. */
int pl_make_tmpdir(const char *prefix, char *out, size_t size);
/* Remove a directory and everything below it (symbolic links are not followed). */
int pl_remove_tree(const char *path);
/* Replace `to` by `from` in one step, so readers see the old file or the new. */
int pl_replace_file(const char *from, const char *to);
/* Flush a file's data to stable storage where the file system allows. */
int pl_sync_file(void *stdio_file);

/* ---- processes ---- */

enum pl_exit_how {
	PL_EXITED,     /* it called exit: code is the status */
	PL_CRASHED,    /* killed by a fault or another signal/exception: code is which */
	PL_KILLED,     /* killed outright (SIGKILL: the runner, or out of memory) */
};

struct pl_exit {
	enum pl_exit_how how;
	int code;
	char desc[96]; /* "exit status 127", "signal 11 (Segmentation fault)" */
};

/* A child process with two channels back to its parent: results (the probe
 * protocol) and output (its stdout and stderr together). */
struct pl_child {
	intptr_t id;         /* the process (pid, or a process handle) */
	intptr_t group;      /* what a tree kill reaches (process group, or job object) */
	intptr_t result_rd, output_rd; /* the parent's ends; -1 once at end of file */
	intptr_t result_wr, output_wr; /* the child's ends until it has started */
	char result_arg[32]; /* how the child names its result channel on its command line */
	bool running;
};

/* Create the channels; result_arg is then valid for building the child's command line. */
int pl_child_open(struct pl_child *c);
/* Start path with argv in its own process group/job, stdin from the null
 * device, stdout and stderr to the output channel. mem_limit_mib > 0 caps its
 * address space. */
int pl_child_exec(struct pl_child *c, const char *path, char *const argv[], long mem_limit_mib);
/* Start a copy of this process running fn(arg, result channel); ENOTSUP where
 * the OS has no fork. fn must not return. */
int pl_child_fork(struct pl_child *c, void (*fn)(void *arg, intptr_t result), void *arg, long mem_limit_mib);
/* What is there on a channel, without blocking: *got bytes; *eof at end of file. */
int pl_child_read(struct pl_child *c, bool result_channel, char *buf, size_t size, size_t *got, bool *eof);
/* Wait up to timeout_ms until a channel of one of the children has data or closes. */
void pl_children_wait(struct pl_child *const *cs, size_t n, int timeout_ms);
/* Non-blocking: true once the child has ended, with how in *x. */
bool pl_child_ended(struct pl_child *c, struct pl_exit *x);
/* Kill the child and everything it started, and wait for the child. */
void pl_child_kill(struct pl_child *c, struct pl_exit *x);
/* Close the parent's ends of the channels. */
void pl_child_close(struct pl_child *c);

/* In a child: the result channel named by arg (from the command line). */
int pl_result_channel(const char *arg, intptr_t *channel);
/* Write all of buf to a channel (a short write is retried). */
int pl_channel_write(intptr_t channel, const char *buf, size_t len);

/* This process's id, e.g. for unique temporary names. */
long pl_pid(void);
/* The path of this program, for re-executing it. */
int pl_self_path(const char *argv0, char *out, size_t size);
/* Seconds on a monotonic clock. */
double pl_now(void);
/* Call fn(signal number) when the user asks the run to stop (SIGINT, SIGTERM, Ctrl-C). */
int pl_on_stop(void (*fn)(int sig));
/* Cap this process's address space (the probe's --mem-limit). */
int pl_limit_memory(long mib);

/* ---- the world ----
 * What a process can see of the system it runs in: the kernel's name and
 * release, whether a tracer holds it, the executable code mapped into it (a
 * dynamic instrumentation tool maps its own), the auxiliary vector an
 * emulator rewrites. A child that re-executes this program under a launcher
 * that does not follow children sees another world; comparing the two tells
 * the runner to isolate with fork instead. Limits: a launcher that leaves no
 * trace in any of these cannot be told apart. */
int pl_world(char *out, size_t size);

#ifdef __cplusplus
}
#endif
#endif
