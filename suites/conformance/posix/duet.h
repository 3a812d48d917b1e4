/* A forked child and its parent in step: each waits for the other's one-byte
 * token on its own pipe. A side that ends (or dies) closes its ends, so the
 * other reads end of file instead of hanging. */
#ifndef PAGELAB_DUET_H
#define PAGELAB_DUET_H

#include <errno.h>
#include <stdio.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pagelab/check.h"

struct duet {
	int to_child[2], to_parent[2];
	pid_t pid; /* the child's pid in the parent, 0 in the child */
};

/* Fork; both sides return 0 with their own ends open (d->pid tells them apart), or errno. */
static inline int duet_fork(struct duet *d)
{
	int e;
	if (pipe(d->to_child) != 0)
		return errno;
	if (pipe(d->to_parent) != 0) {
		e = errno;
		close(d->to_child[0]);
		close(d->to_child[1]);
		return e;
	}
	fflush(NULL);
	d->pid = fork();
	if (d->pid < 0) {
		e = errno;
		for (int i = 0; i < 2; i++) {
			close(d->to_child[i]);
			close(d->to_parent[i]);
		}
		return e;
	}
	close(d->pid ? d->to_child[0] : d->to_child[1]);
	close(d->pid ? d->to_parent[1] : d->to_parent[0]);
	return 0;
}

/* Send the other side a token; 0 or EPIPE when it ended. */
static inline int duet_tell(const struct duet *d)
{
	return pc_token_send(d->pid ? d->to_child[1] : d->to_parent[1]);
}

/* Wait for the other side's token; EPIPE when it ended instead. */
static inline int duet_wait(const struct duet *d)
{
	return pc_token_await(d->pid ? d->to_parent[0] : d->to_child[0]);
}

/* In the parent: wait for the child; its exit status (0..255), 128+signal when killed, or -1. */
static inline int duet_end(struct duet *d)
{
	int st;
	close(d->to_child[1]);
	close(d->to_parent[0]);
	while (waitpid(d->pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
}

#endif
