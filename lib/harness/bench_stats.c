/* Statistics over the repetitions of one benchmark: the aggregates Google
 * Benchmark reports, and the shape of the sample (modes and outliers), so a
 * bimodal or outlier-ridden sample is reported as such and not as one median.
 *
 * Shape: times are compared on a log scale (a cost is a ratio quantity).
 * Sorted, a sample splits at its widest gap when that gap is at least
 * PB_MODE_SEPARATION wide and PB_GAP_FACTOR times the typical gap of the
 * rest (the median of the other gaps); both sides are split again the same
 * way. Groups of two or more repetitions are modes; a lone repetition is an
 * outlier. Spread-out noise has no gap that stands out, so it stays one mode. */
#include "config.h"
#include "bench_impl.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

void pb_stats(const double *v, int n, double *mean, double *median, double *stddev, double *cv)
{
	*mean = *median = *stddev = *cv = NAN;
	if (n <= 0)
		return;
	double *s = malloc((size_t)n * sizeof(*s));
	if (!s)
		return;
	double sum = 0;
	for (int i = 0; i < n; i++)
		sum += s[i] = v[i];
	qsort(s, (size_t)n, sizeof(*s), cmp_double);
	*mean = sum / n;
	*median = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
	double sq = 0;
	for (int i = 0; i < n; i++)
		sq += (v[i] - *mean) * (v[i] - *mean);
	*stddev = n > 1 ? sqrt(sq / (n - 1)) : 0;
	*cv = *mean != 0 ? *stddev / *mean : 0;
	free(s);
}

struct sorted {
	double y;  /* log of the value */
	int index; /* repetition */
};

static int cmp_sorted(const void *a, const void *b)
{
	return cmp_double(&((const struct sorted *)a)->y, &((const struct sorted *)b)->y);
}

/* Median of the gaps of s[lo..hi] other than the one after position skip. */
static double typical_gap(const struct sorted *s, int lo, int hi, int skip)
{
	int n = 0;
	double g[PB_SHAPE_MAX];
	for (int i = lo; i < hi; i++)
		if (i != skip)
			g[n++] = s[i + 1].y - s[i].y;
	if (n == 0)
		return 0;
	qsort(g, (size_t)n, sizeof(*g), cmp_double);
	return n % 2 ? g[n / 2] : (g[n / 2 - 1] + g[n / 2]) / 2;
}

/* Mark a break after every position of s[lo..hi] where the sample splits. */
static void split(const struct sorted *s, int lo, int hi, bool *brk)
{
	if (hi - lo < 1)
		return;
	int widest = lo;
	for (int i = lo; i < hi; i++)
		if (s[i + 1].y - s[i].y > s[widest + 1].y - s[widest].y)
			widest = i;
	double gap = s[widest + 1].y - s[widest].y;
	if (gap < log1p(PB_MODE_SEPARATION) || gap < PB_GAP_FACTOR * typical_gap(s, lo, hi, widest))
		return;
	brk[widest] = true;
	split(s, lo, widest, brk);
	split(s, widest + 1, hi, brk);
}

static void add_group(struct pb_shape *sh, const struct sorted *s, int lo, int hi, const double *v)
{
	int n = hi - lo + 1;
	if (n == 1) {
		sh->outlier[sh->noutliers++] = s[lo].index;
		return;
	}
	struct pb_mode *m = &sh->mode[sh->nmodes++];
	m->count = n;
	m->lo = v[s[lo].index];
	m->hi = v[s[hi].index];
	int a = s[lo + (n - 1) / 2].index, b = s[lo + n / 2].index;
	m->center = (v[a] + v[b]) / 2;
	for (int i = lo; i <= hi; i++)
		sh->mode_of[s[i].index] = sh->nmodes - 1;
}

int pb_shape(const double *v, int n, struct pb_shape *sh)
{
	memset(sh, 0, sizeof(*sh));
	sh->n = n;
	if (n < 1 || n > PB_SHAPE_MAX)
		return n < 1 ? 0 : E2BIG;
	struct sorted s[PB_SHAPE_MAX];
	bool brk[PB_SHAPE_MAX] = {false};
	for (int i = 0; i < n; i++) {
		if (!(v[i] > 0) || !isfinite(v[i]))
			return EDOM;
		s[i] = (struct sorted){log(v[i]), i};
		sh->mode_of[i] = -1;
	}
	qsort(s, (size_t)n, sizeof(*s), cmp_sorted);
	split(s, 0, n - 1, brk);
	for (int lo = 0, i = 0; i < n; i++)
		if (brk[i] || i == n - 1) {
			add_group(sh, s, lo, i, v);
			lo = i + 1;
		}
	/* Every repetition on its own: no mode to be an outlier of. */
	if (sh->nmodes == 0 && n > 1) {
		sh->noutliers = 0;
		sh->scattered = true;
	}
	if (n == 1) {
		sh->noutliers = 0;
		sh->nmodes = 1;
		sh->mode[0] = (struct pb_mode){v[0], v[0], v[0], 1};
		sh->mode_of[0] = 0;
	}
	return 0;
}

const char *pb_shape_name(const struct pb_shape *sh)
{
	if (sh->scattered)
		return "scattered";
	if (sh->nmodes > 2)
		return "multimodal";
	if (sh->nmodes == 2)
		return "bimodal";
	return sh->noutliers ? "outliers" : "unimodal";
}
