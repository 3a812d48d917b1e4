/* A small streaming JSON writer and atomic result files, shared by the
 * conformance runner and the benchmark back-ends. */
#ifndef PAGELAB_JSON_H
#define PAGELAB_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PL_JSON_MAX_DEPTH 32

struct pl_json {
	FILE *f;
	int depth;
	bool first[PL_JSON_MAX_DEPTH]; /* no member written yet at this depth */
	bool after_key;
	int indent; /* spaces per level; 0 writes one line */
};

void pl_json_init(struct pl_json *j, FILE *f, int indent);
void pl_json_begin_object(struct pl_json *j);
void pl_json_end_object(struct pl_json *j);
void pl_json_begin_array(struct pl_json *j);
void pl_json_end_array(struct pl_json *j);
void pl_json_key(struct pl_json *j, const char *key);
void pl_json_str(struct pl_json *j, const char *s); /* NULL writes null */
void pl_json_int(struct pl_json *j, long long v);
void pl_json_uint(struct pl_json *j, unsigned long long v);
void pl_json_double(struct pl_json *j, double v); /* NaN/inf write null */
void pl_json_bool(struct pl_json *j, bool v);
void pl_json_null(struct pl_json *j);
/* key + value in one call */
void pl_json_kv_str(struct pl_json *j, const char *k, const char *v);
void pl_json_kv_int(struct pl_json *j, const char *k, long long v);
void pl_json_kv_uint(struct pl_json *j, const char *k, unsigned long long v);
void pl_json_kv_double(struct pl_json *j, const char *k, double v);
void pl_json_kv_bool(struct pl_json *j, const char *k, bool v);

/* A result file written to PATH.tmp.PID and renamed into place on commit, so
 * no reader ever sees it half-written. */
struct pl_atomic {
	FILE *f;
	char path[4096];
	char tmp[4160];
};
/* Opens the temporary file; 0 or errno. */
int pl_atomic_open(struct pl_atomic *a, const char *path);
/* Flush, sync, close and rename into place; 0 or errno (the temp file is removed on error). */
int pl_atomic_commit(struct pl_atomic *a);
/* Close and remove the temporary file. */
void pl_atomic_abort(struct pl_atomic *a);

#ifdef __cplusplus
}
#endif
#endif
