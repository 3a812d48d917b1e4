/* The self-test probes that need POSIX: a hang in pause(), and a forked
 * child that outlives its probe (the process group kill must reach it). */
#include "pagelab/check.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

PC_PROBE(st_hang, "selftest.hang", "never reports an outcome")
{
	for (;;)
		pause();
}

PC_PROBE(st_child, "selftest.leave_child", "forks a child that outlives the probe")
{
	pid_t pid = fork();
	if (pid < 0)
		pc_error(ctx, "fork failed");
	if (pid == 0) {
		for (;;)
			pause();
	}
	pc_observe(ctx, "child_pid", "%d", (int)pid);
	pc_pass(ctx);
}
