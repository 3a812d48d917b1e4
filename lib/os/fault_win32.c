/* Catching one bad access on Windows. The access is a single instruction in
 * a function of its own; a vectored exception handler that sees a fault at
 * that instruction records it and resumes at the next one, so no stack is
 * unwound and no jump crosses the exception dispatcher. Windows gives an
 * exception code but no "unmapped" or "refused" sub-code: the state of the
 * address (free, reserved, committed), asked with VirtualQuery while the
 * fault is handled, tells them apart. */
#include "config.h"
#include "pagelab/os.h"
#include "pl_win32.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#if !defined(__x86_64__)
#error "fault_win32.c has access stubs for x86-64 only"
#endif

/* uint8_t pl_win_read_byte(const volatile void *p) / void pl_win_write_byte(volatile void *p, uint8_t v):
 * Microsoft x64 calling convention (p in rcx, v in dl); *_at labels the access, *_resume what follows. */
__asm__(".text\n"
	".globl pl_win_read_byte\n"
	"pl_win_read_byte:\n"
	"\txorl %eax, %eax\n"
	"pl_win_read_at:\n"
	"\tmovzbl (%rcx), %eax\n"
	"pl_win_read_resume:\n"
	"\tret\n"
	".globl pl_win_write_byte\n"
	"pl_win_write_byte:\n"
	"pl_win_write_at:\n"
	"\tmovb %dl, (%rcx)\n"
	"pl_win_write_resume:\n"
	"\tret\n");
unsigned char pl_win_read_byte(const volatile void *p);
void pl_win_write_byte(volatile void *p, unsigned char v);
extern const char pl_win_read_at[], pl_win_read_resume[], pl_win_write_at[], pl_win_write_resume[];

static __thread DWORD fault_code;
static __thread ULONG_PTR fault_address;
static INIT_ONCE handler_once = INIT_ONCE_STATIC_INIT;
static PVOID handler;

static LONG CALLBACK on_exception(EXCEPTION_POINTERS *ep)
{
	DWORD64 at = ep->ContextRecord->Rip;
	DWORD64 resume = at == (DWORD64)pl_win_read_at ? (DWORD64)pl_win_read_resume
		       : at == (DWORD64)pl_win_write_at ? (DWORD64)pl_win_write_resume : 0;
	if (!resume)
		return EXCEPTION_CONTINUE_SEARCH;
	const EXCEPTION_RECORD *r = ep->ExceptionRecord;
	fault_code = r->ExceptionCode;
	fault_address = r->NumberParameters >= 2 ? r->ExceptionInformation[1] : 0;
	ep->ContextRecord->Rip = resume;
	return EXCEPTION_CONTINUE_EXECUTION;
}

static BOOL CALLBACK install(PINIT_ONCE once, PVOID arg, PVOID *ctx)
{
	(void)once; (void)arg; (void)ctx;
	handler = AddVectoredExceptionHandler(1, on_exception);
	return TRUE;
}

const char *pl_fault_kind_name(enum pl_fault_kind kind)
{
	static const char *const names[] = {"none", "unmapped", "access", "bus", "guard", "other"};
	return (unsigned)kind < sizeof(names) / sizeof(names[0]) ? names[kind] : "other";
}

/* EXCEPTION_ACCESS_VIOLATION: nothing there (a free address) or no access (reserved, or committed without it). */
static void describe_violation(struct pl_fault *f, const volatile void *p)
{
	MEMORY_BASIC_INFORMATION mbi;
	const void *where = fault_address ? (const void *)fault_address : (const void *)p;
	DWORD state = VirtualQuery(where, &mbi, sizeof(mbi)) == sizeof(mbi) ? mbi.State : 0;
	f->kind = state == MEM_FREE ? PL_FAULT_UNMAPPED : state ? PL_FAULT_ACCESS : PL_FAULT_OTHER;
	snprintf(f->name, sizeof(f->name), "EXCEPTION_ACCESS_VIOLATION/%s",
		 state == MEM_FREE ? "free" : state == MEM_RESERVE ? "reserved" : state == MEM_COMMIT ? "committed" : "unknown");
}

static void describe(struct pl_fault *f, const volatile void *p)
{
	f->sig = 0;
	f->code = (int)fault_code;
	switch (fault_code) {
	case EXCEPTION_ACCESS_VIOLATION:
		describe_violation(f, p);
		break;
	case EXCEPTION_GUARD_PAGE:
		f->kind = PL_FAULT_GUARD;
		snprintf(f->name, sizeof(f->name), "EXCEPTION_GUARD_PAGE");
		break;
	case EXCEPTION_IN_PAGE_ERROR: /* a view of a file past its end, or an I/O error behind it */
		f->kind = PL_FAULT_BUS;
		snprintf(f->name, sizeof(f->name), "EXCEPTION_IN_PAGE_ERROR");
		break;
	default:
		f->kind = PL_FAULT_OTHER;
		snprintf(f->name, sizeof(f->name), "exception 0x%08lx", (unsigned long)fault_code);
	}
}

int pl_try_access(volatile void *p, bool write, unsigned char val, struct pl_fault *f)
{
	memset(f, 0, sizeof(*f));
	(void)InitOnceExecuteOnce(&handler_once, install, NULL, NULL);
	if (!handler)
		return ENOSYS;
	fault_code = 0;
	fault_address = 0;
	if (write)
		pl_win_write_byte(p, val);
	else
		(void)pl_win_read_byte(p);
	if (fault_code)
		describe(f, p);
	else
		snprintf(f->name, sizeof(f->name), "none");
	return 0;
}
