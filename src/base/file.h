/*
 * file.h — files: whole-file reads, read-only maps, and atomic writes.
 *
 * mfile maps a file read-only (MAP_PRIVATE); the mapping is borrowed by
 * whoever reads it until mfile_close. afile writes PATH through a temporary
 * PATH.tmp.<pid> in the same directory; afile_commit fsyncs it, renames it over
 * PATH and fsyncs the directory, so a reader sees the old file or the whole
 * new one, never a part. afile_abort removes the temporary.
 */
#ifndef DC_FILE_H
#define DC_FILE_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "deepc.h"

typedef struct mfile {
    const uint8_t *data; /* borrowed mapping, NULL for an empty file */
    size_t size;
} mfile;

int mfile_open(mfile *f, const char *path, dc_err *err);
void mfile_close(mfile *f);

/* file_read_all: whole file into a malloc'd, NUL-terminated buffer (owned by
 * the caller). */
int file_read_all(const char *path, char **out, size_t *size, dc_err *err);
int file_exists(const char *path);
int dir_exists(const char *path);
/* dir_make: mkdir -p. */
int dir_make(const char *path, dc_err *err);
/* dir_remove_tree: rm -rf path (absent is fine). */
int dir_remove_tree(const char *path, dc_err *err);
/* fsync_dir: flush a directory's entries (after a rename into it). */
void fsync_dir(const char *dir);
/* path_join: dir + "/" + name into out; DC_EARG when it does not fit. */
int path_join(char *out, size_t cap, const char *dir, const char *name, dc_err *err);

typedef struct afile {
    FILE *f;
    char tmp[4096];
    char path[4096];
} afile;

int afile_open(afile *a, const char *path, dc_err *err);
int afile_write(afile *a, const void *data, size_t n, dc_err *err);
int afile_commit(afile *a, dc_err *err);
void afile_abort(afile *a);
/* file_write_atomic: one call for a small file. */
int file_write_atomic(const char *path, const void *data, size_t n, dc_err *err);
/* file_copy: src to dst, atomically. */
int file_copy(const char *src, const char *dst, dc_err *err);
#endif
