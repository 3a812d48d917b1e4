/* Streaming JSON writer and atomic result files. */
#include "pagelab/json.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pagelab/os.h"

void pl_json_init(struct pl_json *j, FILE *f, int indent)
{
	memset(j, 0, sizeof(*j));
	j->f = f;
	j->indent = indent;
	j->first[0] = true;
}

static void newline(struct pl_json *j)
{
	if (j->indent <= 0)
		return;
	fputc('\n', j->f);
	for (int i = 0; i < j->depth * j->indent; i++)
		fputc(' ', j->f);
}

/* Separator and indentation before a value or a key. */
static void before_item(struct pl_json *j)
{
	if (j->after_key) {
		j->after_key = false;
		return;
	}
	if (!j->first[j->depth])
		fputc(',', j->f);
	if (j->depth > 0)
		newline(j);
	j->first[j->depth] = false;
}

static void open_scope(struct pl_json *j, char c)
{
	before_item(j);
	fputc(c, j->f);
	if (j->depth + 1 < PL_JSON_MAX_DEPTH)
		j->depth++;
	j->first[j->depth] = true;
}

static void close_scope(struct pl_json *j, char c)
{
	bool empty = j->first[j->depth];
	if (j->depth > 0)
		j->depth--;
	if (!empty)
		newline(j);
	fputc(c, j->f);
}

void pl_json_begin_object(struct pl_json *j) { open_scope(j, '{'); }
void pl_json_end_object(struct pl_json *j) { close_scope(j, '}'); }
void pl_json_begin_array(struct pl_json *j) { open_scope(j, '['); }
void pl_json_end_array(struct pl_json *j) { close_scope(j, ']'); }

static void write_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"': fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\n': fputs("\\n", f); break;
		case '\r': fputs("\\r", f); break;
		case '\t': fputs("\\t", f); break;
		default:
			if (*p < 0x20)
				fprintf(f, "\\u%04x", *p);
			else
				fputc(*p, f);
		}
	}
	fputc('"', f);
}

void pl_json_key(struct pl_json *j, const char *key)
{
	before_item(j);
	write_string(j->f, key);
	fputs(j->indent > 0 ? ": " : ":", j->f);
	j->after_key = true;
}

void pl_json_str(struct pl_json *j, const char *s)
{
	before_item(j);
	if (s)
		write_string(j->f, s);
	else
		fputs("null", j->f);
}

void pl_json_int(struct pl_json *j, long long v)
{
	before_item(j);
	fprintf(j->f, "%lld", v);
}

void pl_json_uint(struct pl_json *j, unsigned long long v)
{
	before_item(j);
	fprintf(j->f, "%llu", v);
}

void pl_json_double(struct pl_json *j, double v)
{
	before_item(j);
	if (isfinite(v))
		fprintf(j->f, "%.17g", v);
	else
		fputs("null", j->f);
}

void pl_json_bool(struct pl_json *j, bool v)
{
	before_item(j);
	fputs(v ? "true" : "false", j->f);
}

void pl_json_null(struct pl_json *j)
{
	before_item(j);
	fputs("null", j->f);
}

void pl_json_kv_str(struct pl_json *j, const char *k, const char *v) { pl_json_key(j, k); pl_json_str(j, v); }
void pl_json_kv_int(struct pl_json *j, const char *k, long long v) { pl_json_key(j, k); pl_json_int(j, v); }
void pl_json_kv_uint(struct pl_json *j, const char *k, unsigned long long v) { pl_json_key(j, k); pl_json_uint(j, v); }
void pl_json_kv_double(struct pl_json *j, const char *k, double v) { pl_json_key(j, k); pl_json_double(j, v); }
void pl_json_kv_bool(struct pl_json *j, const char *k, bool v) { pl_json_key(j, k); pl_json_bool(j, v); }

int pl_atomic_open(struct pl_atomic *a, const char *path)
{
	memset(a, 0, sizeof(*a));
	if (strlen(path) >= sizeof(a->path))
		return ENAMETOOLONG;
	strcpy(a->path, path);
	snprintf(a->tmp, sizeof(a->tmp), "%s.tmp.%ld", path, pl_pid());
	a->f = fopen(a->tmp, "w");
	return a->f ? 0 : errno;
}

int pl_atomic_commit(struct pl_atomic *a)
{
	int e = 0;
	if (fflush(a->f) != 0 || ferror(a->f))
		e = errno ? errno : EIO;
	if (e == 0)
		e = pl_sync_file(a->f);
	if (fclose(a->f) != 0 && e == 0)
		e = errno;
	a->f = NULL;
	if (e == 0)
		e = pl_replace_file(a->tmp, a->path);
	if (e != 0)
		remove(a->tmp);
	return e;
}

void pl_atomic_abort(struct pl_atomic *a)
{
	if (a->f)
		fclose(a->f);
	a->f = NULL;
	remove(a->tmp);
}
