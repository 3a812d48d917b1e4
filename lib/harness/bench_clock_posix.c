/* The benchmark clocks on POSIX: clock_gettime. */
#include "config.h"
#include "bench_impl.h"

double pb_now(clockid_t clk)
{
	struct timespec t;
	if (clock_gettime(clk, &t) != 0)
		return 0;
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}
