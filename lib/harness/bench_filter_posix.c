/* --benchmark_filter on POSIX: the C library's extended regular expressions. */
#include "config.h"
#include "bench_impl.h"

#include <errno.h>
#include <regex.h>
#include <stdlib.h>

struct pb_filter {
	regex_t re;
};

int pb_filter_compile(const char *pattern, struct pb_filter **out)
{
	struct pb_filter *f = malloc(sizeof(*f));
	if (!f)
		return ENOMEM;
	if (regcomp(&f->re, pattern, REG_EXTENDED | REG_NOSUB) != 0) {
		free(f);
		return EINVAL;
	}
	*out = f;
	return 0;
}

bool pb_filter_match(const struct pb_filter *f, const char *name)
{
	return regexec(&f->re, name, 0, NULL, 0) == 0;
}

void pb_filter_free(struct pb_filter *f)
{
	if (!f)
		return;
	regfree(&f->re);
	free(f);
}
