/* The benchmark clocks on Windows: QueryPerformanceCounter for elapsed time,
 * GetThreadTimes for the thread's CPU time (kernel and user; Windows updates
 * it at the scheduler's tick), GetSystemTimeAsFileTime for the date. */
#include "config.h"
#include "bench_impl.h"
#include "pagelab/os.h"

#include <windows.h>

/* 100-nanosecond FILETIME units as seconds. */
static double filetime_seconds(FILETIME t)
{
	ULARGE_INTEGER u = {.LowPart = t.dwLowDateTime, .HighPart = t.dwHighDateTime};
	return (double)u.QuadPart * 1e-7;
}

double pb_now(clockid_t clk)
{
	if (clk == CLOCK_THREAD_CPUTIME_ID) {
		FILETIME created, exited, kernel, user;
		if (!GetThreadTimes(GetCurrentThread(), &created, &exited, &kernel, &user))
			return 0;
		return filetime_seconds(kernel) + filetime_seconds(user);
	}
	if (clk == CLOCK_REALTIME) {
		FILETIME now;
		GetSystemTimeAsFileTime(&now);
		return filetime_seconds(now) - 11644473600.0; /* from 1601 to the Unix epoch */
	}
	return pl_now(); /* QueryPerformanceCounter, through the OS layer */
}
