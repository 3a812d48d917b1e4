/* The harness's own cost, so every other number can be read against it:
 * an empty iteration, and one reading of the clock the timers use. */
#include "pagelab/bench.h"

#include <time.h>

PB_BENCH(bm_harness_empty, "harness/empty", "one empty loop iteration")
{
	while (pb_keep_running(s))
		pb_clobber_memory();
}

PB_BENCH(bm_harness_clock, "harness/clock", "one clock_gettime(CLOCK_MONOTONIC)")
{
	struct timespec t;
	while (pb_keep_running(s)) {
		if (clock_gettime(CLOCK_MONOTONIC, &t) != 0) {
			pb_skip(s, "clock_gettime(CLOCK_MONOTONIC) failed");
			return;
		}
		pb_do_not_optimize(&t);
	}
}
