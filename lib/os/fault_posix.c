/* Catching one bad access on POSIX: a SIGSEGV/SIGBUS handler that jumps back,
 * with si_code telling an unmapped address from a refused access. What a
 * signal means is the OS's (fault_<platform>.c): Darwin raises SIGBUS for a
 * refused access, where the others raise SIGSEGV/SEGV_ACCERR. */
#include "config.h"
#include "pagelab/os.h"
#include "os_internal.h"

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static sigjmp_buf fault_jmp;
static volatile sig_atomic_t fault_sig, fault_code;
static void *volatile fault_addr; /* a pointer, never an integer: capabilities keep their width */

static void on_fault(int sig, siginfo_t *info, void *uctx)
{
	(void)uctx;
	fault_sig = sig;
	fault_code = info ? info->si_code : 0;
	fault_addr = info ? info->si_addr : NULL;
	siglongjmp(fault_jmp, 1);
}

const char *pl_fault_kind_name(enum pl_fault_kind kind)
{
	static const char *const names[] = {"none", "unmapped", "access", "bus", "guard", "other"};
	return (unsigned)kind < sizeof(names) / sizeof(names[0]) ? names[kind] : "other";
}

enum pl_fault_kind pl_posix_fault_kind(int sig, int code)
{
	if (sig == SIGSEGV)
		return code == SEGV_MAPERR ? PL_FAULT_UNMAPPED : code == SEGV_ACCERR ? PL_FAULT_ACCESS : PL_FAULT_OTHER;
	return sig == SIGBUS ? PL_FAULT_BUS : PL_FAULT_OTHER;
}

static const char *code_name(int sig, int code)
{
	if (sig == SIGSEGV && code == SEGV_MAPERR)
		return "SEGV_MAPERR";
	if (sig == SIGSEGV && code == SEGV_ACCERR)
		return "SEGV_ACCERR";
	if (sig == SIGBUS && code == BUS_ADRERR)
		return "BUS_ADRERR";
	if (sig == SIGBUS && code == BUS_ADRALN)
		return "BUS_ADRALN";
	if (sig == SIGBUS && code == BUS_OBJERR)
		return "BUS_OBJERR";
	return pl_os_fault_code_name(sig, code);
}

static void describe(struct pl_fault *f, int sig, int code, void *addr, bool write)
{
	f->sig = sig;
	f->code = code;
	const char *cn = code_name(sig, code);
	f->kind = pl_os_fault_kind(sig, code, addr, write);
	const char *sn = sig == SIGSEGV ? "SIGSEGV" : sig == SIGBUS ? "SIGBUS" : "signal";
	if (cn)
		snprintf(f->name, sizeof(f->name), "%s/%s", sn, cn);
	else
		snprintf(f->name, sizeof(f->name), "%s/code %d", sn, code);
}

int pl_try_access(volatile void *p, bool write, unsigned char val, struct pl_fault *f)
{
	struct sigaction sa, old_segv, old_bus;
	memset(&sa, 0, sizeof(sa));
	memset(f, 0, sizeof(*f));
	sa.sa_sigaction = on_fault;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSEGV, &sa, &old_segv) != 0)
		return errno;
	if (sigaction(SIGBUS, &sa, &old_bus) != 0) {
		int e = errno;
		(void)sigaction(SIGSEGV, &old_segv, NULL);
		return e;
	}
	fault_sig = 0;
	if (sigsetjmp(fault_jmp, 1) == 0) {
		if (write)
			*(volatile unsigned char *)p = val;
		else
			(void)*(volatile unsigned char *)p;
	}
	int e = 0;
	if (sigaction(SIGSEGV, &old_segv, NULL) != 0 || sigaction(SIGBUS, &old_bus, NULL) != 0)
		e = errno;
	if (fault_sig)
		describe(f, fault_sig, fault_code, fault_addr, write);
	else
		snprintf(f->name, sizeof(f->name), "none");
	return e;
}
