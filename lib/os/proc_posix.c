/* Child processes on POSIX: posix_spawn or fork into a process group of
 * their own (so a kill reaches everything they started), pipes for the
 * result and output channels, poll and waitpid without blocking. */
#include "config.h"
#include "pagelab/os.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* The descriptor a re-executed child finds its result channel on. */
#define CHILD_RESULT_FD 100

static int set_flag(int fd, int get, int set, int flag)
{
	int v = fcntl(fd, get);
	if (v < 0 || fcntl(fd, set, v | flag) < 0)
		return errno;
	return 0;
}

static int close_fd(intptr_t *fd)
{
	int e = 0;
	if (*fd >= 0 && close((int)*fd) != 0)
		e = errno;
	*fd = -1;
	return e;
}

/* A pipe whose ends are close-on-exec (the child gets its end by dup2). */
static int cloexec_pipe(intptr_t *rd, intptr_t *wr)
{
	int p[2];
	if (pipe(p) != 0)
		return errno;
	int e = set_flag(p[0], F_GETFD, F_SETFD, FD_CLOEXEC);
	if (!e)
		e = set_flag(p[1], F_GETFD, F_SETFD, FD_CLOEXEC);
	*rd = p[0];
	*wr = p[1];
	if (e) {
		close_fd(rd);
		close_fd(wr);
	}
	return e;
}

int pl_child_open(struct pl_child *c)
{
	memset(c, 0, sizeof(*c));
	c->id = c->group = -1;
	c->result_rd = c->output_rd = c->result_wr = c->output_wr = -1;
	int e = cloexec_pipe(&c->result_rd, &c->result_wr);
	if (!e && (e = cloexec_pipe(&c->output_rd, &c->output_wr)) != 0) {
		close_fd(&c->result_rd);
		close_fd(&c->result_wr);
	}
	snprintf(c->result_arg, sizeof(c->result_arg), "%d", CHILD_RESULT_FD);
	return e;
}

/* The parent no longer needs the child's ends; its own ends stop blocking. */
static int started(struct pl_child *c)
{
	close_fd(&c->result_wr);
	close_fd(&c->output_wr);
	c->running = true;
	int e = set_flag((int)c->result_rd, F_GETFL, F_SETFL, O_NONBLOCK);
	return e ? e : set_flag((int)c->output_rd, F_GETFL, F_SETFL, O_NONBLOCK);
}

int pl_limit_memory(long mib)
{
	if (mib <= 0)
		return 0;
	struct rlimit rl = {.rlim_cur = (rlim_t)mib << 20, .rlim_max = (rlim_t)mib << 20};
	return setrlimit(RLIMIT_AS, &rl) == 0 ? 0 : errno;
}

static int spawn_actions(posix_spawn_file_actions_t *fa, posix_spawnattr_t *at, const struct pl_child *c)
{
	sigset_t none;
	sigemptyset(&none);
	int e;
	if ((e = posix_spawn_file_actions_addopen(fa, 0, "/dev/null", O_RDONLY, 0)) ||
	    (e = posix_spawn_file_actions_adddup2(fa, (int)c->result_wr, CHILD_RESULT_FD)) ||
	    (e = posix_spawn_file_actions_adddup2(fa, (int)c->output_wr, 1)) ||
	    (e = posix_spawn_file_actions_adddup2(fa, (int)c->output_wr, 2)) ||
	    (e = posix_spawnattr_setflags(at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK)) ||
	    (e = posix_spawnattr_setpgroup(at, 0)))
		return e;
	return posix_spawnattr_setsigmask(at, &none);
}

int pl_child_exec(struct pl_child *c, const char *path, char *const argv[], long mem_limit_mib)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	pid_t pid;
	int e = posix_spawn_file_actions_init(&fa);
	if (e)
		return e;
	if ((e = posix_spawnattr_init(&at)) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		return e;
	}
	/* The limit is set in the child itself (--mem-limit): spawn has no rlimit attribute. */
	(void)mem_limit_mib;
	if ((e = spawn_actions(&fa, &at, c)) == 0)
		e = posix_spawn(&pid, path, &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	if (e)
		return e;
	c->id = c->group = pid;
	return started(c);
}

int pl_child_fork(struct pl_child *c, void (*fn)(void *arg, intptr_t result), void *arg, long mem_limit_mib)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		return errno;
	if (pid == 0) {
		if (setpgid(0, 0) != 0 || dup2((int)c->output_wr, 1) < 0 || dup2((int)c->output_wr, 2) < 0)
			_exit(127);
		close((int)c->result_rd);
		close((int)c->output_rd);
		if (pl_limit_memory(mem_limit_mib) != 0)
			_exit(127);
		fn(arg, c->result_wr);
		_exit(127);
	}
	/* Also in the parent, so a kill of the group never races the child's own setpgid. */
	if (setpgid(pid, pid) != 0 && errno != EACCES && errno != ESRCH)
		fprintf(stderr, "pagelab: setpgid(%d): %s\n", (int)pid, strerror(errno));
	c->id = c->group = pid;
	return started(c);
}

int pl_child_read(struct pl_child *c, bool result_channel, char *buf, size_t size, size_t *got, bool *eof)
{
	intptr_t *fd = result_channel ? &c->result_rd : &c->output_rd;
	*got = 0;
	*eof = *fd < 0;
	if (*eof)
		return 0;
	ssize_t n = read((int)*fd, buf, size);
	if (n > 0) {
		*got = (size_t)n;
		return 0;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	int e = n < 0 ? errno : 0;
	close_fd(fd);
	*eof = true;
	return e;
}

void pl_children_wait(struct pl_child *const *cs, size_t n, int timeout_ms)
{
	struct pollfd pfd[128];
	nfds_t k = 0;
	for (size_t i = 0; i < n && k + 2 <= sizeof(pfd) / sizeof(pfd[0]); i++) {
		if (cs[i]->result_rd >= 0)
			pfd[k++] = (struct pollfd){.fd = (int)cs[i]->result_rd, .events = POLLIN};
		if (cs[i]->output_rd >= 0)
			pfd[k++] = (struct pollfd){.fd = (int)cs[i]->output_rd, .events = POLLIN};
	}
	if (poll(pfd, k, timeout_ms) < 0 && errno != EINTR)
		fprintf(stderr, "pagelab: poll: %s\n", strerror(errno));
}

static void describe_exit(int st, struct pl_exit *x)
{
	if (WIFSIGNALED(st)) {
		int sig = WTERMSIG(st);
		x->how = sig == SIGKILL ? PL_KILLED : PL_CRASHED;
		x->code = sig;
		snprintf(x->desc, sizeof(x->desc), "signal %d (%s)", sig, strsignal(sig));
	} else {
		x->how = PL_EXITED;
		x->code = WEXITSTATUS(st);
		snprintf(x->desc, sizeof(x->desc), "status %d", x->code);
	}
}

bool pl_child_ended(struct pl_child *c, struct pl_exit *x)
{
	int st;
	if (!c->running)
		return true;
	pid_t w = waitpid((pid_t)c->id, &st, WNOHANG);
	if (w != (pid_t)c->id)
		return false;
	describe_exit(st, x);
	c->running = false;
	return true;
}

void pl_child_kill(struct pl_child *c, struct pl_exit *x)
{
	if (c->group > 0 && kill(-(pid_t)c->group, SIGKILL) != 0 && errno != ESRCH)
		fprintf(stderr, "pagelab: kill(-%d): %s\n", (int)c->group, strerror(errno));
	if (!c->running)
		return;
	int st;
	while (waitpid((pid_t)c->id, &st, 0) < 0)
		if (errno != EINTR)
			return;
	describe_exit(st, x);
	c->running = false;
}

void pl_child_close(struct pl_child *c)
{
	close_fd(&c->result_rd);
	close_fd(&c->output_rd);
	close_fd(&c->result_wr);
	close_fd(&c->output_wr);
}

int pl_result_channel(const char *arg, intptr_t *channel)
{
	char *end;
	errno = 0;
	long fd = strtol(arg, &end, 10);
	if (errno || *end || end == arg || fd < 0 || fd > INT_MAX)
		return EINVAL;
	if (fcntl((int)fd, F_GETFD) < 0)
		return errno;
	*channel = fd;
	return 0;
}

int pl_channel_write(intptr_t channel, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write((int)channel, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? errno : EIO;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

long pl_pid(void)
{
	return (long)getpid();
}

double pl_now(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		return 0;
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void (*stop_fn)(int sig);

static void on_stop(int sig)
{
	stop_fn(sig);
}

int pl_on_stop(void (*fn)(int sig))
{
	struct sigaction sa = {.sa_handler = on_stop};
	stop_fn = fn;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGINT, &sa, NULL) != 0 || sigaction(SIGTERM, &sa, NULL) != 0)
		return errno;
	/* A reader that went away (| head) must not kill the runner mid-write. */
	return signal(SIGPIPE, SIG_IGN) == SIG_ERR ? errno : 0;
}
