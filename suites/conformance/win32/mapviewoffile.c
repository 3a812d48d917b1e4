/* Views of sections (MapViewOfFile): a FILE_MAP_COPY view is private (its
 * writes reach neither the file nor other views); FILE_MAP_WRITE views of one
 * section share their writes, and the file gets them; a section backed by
 * the page file reads zero; a written copy-on-write page becomes
 * PAGE_READWRITE. The oracles are the MapViewOfFile, CreateFileMapping and
 * memory-protection-constants documentation's. */
#include "config.h"
#include "probe_win32.h"

#include <stdio.h>
#include <string.h>

#define LEN ((size_t)64 << 10)
#define OFFSET 4100

struct file_section {
	HANDLE file, mapping;
};

/* A file of LEN zero bytes in the probe's directory and a read-write section of it. */
static struct file_section file_section(struct pc_ctx *ctx)
{
	struct file_section s;
	char path[1024];
	wchar_t w[1024];
	LARGE_INTEGER size = {.QuadPart = (LONGLONG)LEN};
	snprintf(path, sizeof(path), "%s\\section", pc_tmpdir(ctx));
	PC_SETUP(ctx, pl_win_widen(path, w, 1024));
	s.file = CreateFileW(w, GENERIC_READ | GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE, NULL, CREATE_NEW, 0, NULL);
	PC_SETUP(ctx, s.file != INVALID_HANDLE_VALUE ? 0 : pl_win_last_errno());
	PC_SETUP(ctx, SetFilePointerEx(s.file, size, NULL, FILE_BEGIN) && SetEndOfFile(s.file) ? 0 : pl_win_last_errno());
	s.mapping = CreateFileMappingW(s.file, NULL, PAGE_READWRITE, 0, 0, NULL);
	PC_SETUP(ctx, s.mapping ? 0 : pl_win_last_errno());
	return s;
}

static char *view(struct pc_ctx *ctx, HANDLE mapping, DWORD access)
{
	char *p = MapViewOfFile(mapping, access, 0, 0, LEN);
	if (!p)
		pc_fail_refused(ctx, "MapViewOfFile(0x%lx) of a read-write section: %s", (unsigned long)access,
				pc_strerror(pl_win_last_errno()));
	return p;
}

/* The byte at OFFSET of the file, read with ReadFile (not through a view). */
static int file_byte(struct pc_ctx *ctx, HANDLE file)
{
	unsigned char b = 0;
	DWORD n = 0;
	OVERLAPPED at = {.Offset = OFFSET};
	PC_SETUP(ctx, ReadFile(file, &b, 1, &n, &at) && n == 1 ? 0 : pl_win_last_errno());
	return b;
}

PC_PROBE(copy_private, "mapviewoffile.file_map_copy.private",
	 "a write to a FILE_MAP_COPY view stays in it: another view and the file still read the old byte")
{
	struct file_section s = file_section(ctx);
	char *copy = view(ctx, s.mapping, FILE_MAP_COPY), *other = view(ctx, s.mapping, FILE_MAP_READ);
	copy[OFFSET] = 0x5a;
	pc_observe(ctx, "copy_view", "%s", copy[OFFSET] == 0x5a ? "written" : "lost");
	pc_observe(ctx, "other_view", "%s", other[OFFSET] ? "sees the write" : "old");
	PC_SETUP(ctx, FlushViewOfFile(copy, LEN) ? 0 : pl_win_last_errno());
	int in_file = file_byte(ctx, s.file);
	pc_observe(ctx, "file", "%s", in_file ? "sees the write" : "old");
	PC_CHECK(ctx, copy[OFFSET] == 0x5a, "the copy view lost its own write");
	PC_CHECK(ctx, other[OFFSET] == 0, "the write to the FILE_MAP_COPY view shows in another view");
	PC_CHECK(ctx, in_file == 0, "the write to the FILE_MAP_COPY view reached the file");
	UnmapViewOfFile(copy);
	UnmapViewOfFile(other);
	CloseHandle(s.mapping);
	CloseHandle(s.file);
	pc_pass(ctx);
}

static const char *protection_name(DWORD prot)
{
	return prot == PAGE_READWRITE ? "PAGE_READWRITE" : prot == PAGE_WRITECOPY ? "PAGE_WRITECOPY"
	     : prot == PAGE_READONLY ? "PAGE_READONLY" : "other";
}

PC_PROBE(copy_protection, "mapviewoffile.file_map_copy.written_page_readwrite",
	 "a FILE_MAP_COPY view's pages are PAGE_WRITECOPY; the one written becomes a private PAGE_READWRITE page")
{
	struct file_section s = file_section(ctx);
	char *copy = view(ctx, s.mapping, FILE_MAP_COPY);
	DWORD before = pw_query(ctx, copy + OFFSET).Protect;
	copy[OFFSET] = 0x5a;
	DWORD written = pw_query(ctx, copy + OFFSET).Protect, untouched = pw_query(ctx, copy + 2 * OFFSET).Protect;
	pc_observe(ctx, "before_write", "%s", protection_name(before));
	pc_observe(ctx, "written_page", "%s", protection_name(written));
	pc_observe(ctx, "untouched_page", "%s", protection_name(untouched));
	PC_CHECK(ctx, before == PAGE_WRITECOPY && untouched == PAGE_WRITECOPY, "the view's pages are %s, not PAGE_WRITECOPY",
		 protection_name(untouched));
	PC_CHECK(ctx, written == PAGE_READWRITE, "the written page is %s: the private copy should be PAGE_READWRITE",
		 protection_name(written));
	UnmapViewOfFile(copy);
	CloseHandle(s.mapping);
	CloseHandle(s.file);
	pc_pass(ctx);
}

PC_PROBE(write_shared, "mapviewoffile.file_map_write.shared",
	 "FILE_MAP_WRITE views of one section share a write at once; after FlushViewOfFile the file has it")
{
	struct file_section s = file_section(ctx);
	char *a = view(ctx, s.mapping, FILE_MAP_WRITE), *b = view(ctx, s.mapping, FILE_MAP_READ);
	a[OFFSET] = 0x6b;
	pc_observe(ctx, "other_view", "%s", b[OFFSET] == 0x6b ? "sees the write" : "old");
	PC_SETUP(ctx, FlushViewOfFile(a, LEN) ? 0 : pl_win_last_errno());
	int in_file = file_byte(ctx, s.file);
	pc_observe(ctx, "file", "%s", in_file == 0x6b ? "sees the write" : "old");
	PC_CHECK(ctx, b[OFFSET] == 0x6b, "another view of the section does not see the write");
	PC_CHECK(ctx, in_file == 0x6b, "the file does not have the flushed write");
	UnmapViewOfFile(a);
	UnmapViewOfFile(b);
	CloseHandle(s.mapping);
	CloseHandle(s.file);
	pc_pass(ctx);
}

PC_PROBE(pagefile, "mapviewoffile.pagefile_section.zero_shared",
	 "a section backed by the page file reads zero, and two views of it share writes")
{
	HANDLE m = CreateFileMappingW(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE, 0, (DWORD)LEN, NULL);
	PC_SETUP(ctx, m ? 0 : pl_win_last_errno());
	char *a = view(ctx, m, FILE_MAP_WRITE), *b = view(ctx, m, FILE_MAP_WRITE);
	PC_CHECK(ctx, pc_all_bytes(a, LEN, 0), "a new page-file section does not read zero");
	a[OFFSET] = 0x11;
	pc_observe(ctx, "other_view", "%s", b[OFFSET] == 0x11 ? "sees the write" : "old");
	PC_CHECK(ctx, b[OFFSET] == 0x11, "another view of the section does not see the write");
	UnmapViewOfFile(a);
	UnmapViewOfFile(b);
	CloseHandle(m);
	pc_pass(ctx);
}
