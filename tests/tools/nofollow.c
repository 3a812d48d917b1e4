/* A launcher that does not follow its children: it runs a program under
 * ptrace, as a tracer or a sandbox built on ptrace does, without asking to
 * trace the processes the program starts. Whatever the program re-executes
 * runs untraced, outside the launcher. Exit status: the program's.
 * usage: nofollow PROGRAM [ARG...] */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 2) {
		fputs("usage: nofollow PROGRAM [ARG...]\n", stderr);
		return 2;
	}
	pid_t pid = fork();
	if (pid < 0) {
		perror("nofollow: fork");
		return 2;
	}
	if (pid == 0) {
		if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) != 0) {
			perror("nofollow: PTRACE_TRACEME");
			_exit(126);
		}
		execvp(argv[1], argv + 1);
		perror("nofollow: exec");
		_exit(127);
	}
	for (;;) {
		int st;
		if (waitpid(pid, &st, 0) < 0) {
			if (errno == EINTR)
				continue;
			perror("nofollow: waitpid");
			return 2;
		}
		if (WIFEXITED(st))
			return WEXITSTATUS(st);
		if (WIFSIGNALED(st))
			return 128 + WTERMSIG(st);
		/* The stop after exec is ours; any other stop is a signal to deliver. */
		int sig = WSTOPSIG(st) == SIGTRAP ? 0 : WSTOPSIG(st);
		if (ptrace(PTRACE_CONT, pid, NULL, (void *)(long)sig) != 0 && errno != ESRCH) {
			perror("nofollow: PTRACE_CONT");
			return 2;
		}
	}
}
