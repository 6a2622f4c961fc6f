/*
 * file.h — files: whole-file reads, read-only maps, and atomic writes.
 *
 * mfile maps a file read-only (MAP_PRIVATE); the mapping is borrowed by
 * whoever reads it until mfile_close. afile writes PATH through a temporary
 * PATH.tmp.<pid>.<8 random hex digits> in the same directory, created with
 * O_CREAT|O_EXCL|O_NOFOLLOW (a planted file or symlink is never followed);
 * afile_commit fsyncs it, renames it over PATH and fsyncs the directory, so
 * a reader sees the old file or the whole new one, never a part.
 * afile_abort removes the temporary. Messages name PATH, not the temporary.
 *
 * Reads (mfile_open, file_read_*) take regular files only: a FIFO, a device
 * (a symlink to /dev/zero) or a directory is an error naming what it is,
 * never a hang or an endless read.
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
/* mfile_release: drop the whole pages inside [p, p + n) of f's mapping from
 * the process's resident set (madvise MADV_DONTNEED; a later read faults
 * them in from the file again): a loader that has copied a tensor out of the
 * mapping calls it so the copy and the mapping are not resident together. */
void mfile_release(const mfile *f, const void *p, size_t n);
/* mfile_copy_out: n bytes of f's mapping at src into dst, 4 MB at a time,
 * each piece's pages released once copied, so the copy and the mapping are
 * never resident together (issue 15: a q4_0 mini peaked 93 MB above its
 * weights, the 86 MB q6_K head twice over) */
void mfile_copy_out(const mfile *f, void *dst, const void *src, size_t n);

/* file_read_all: whole file into a malloc'd, NUL-terminated buffer (owned by
 * the caller). file_read_max: the same, refusing a file over max bytes. */
int file_read_all(const char *path, char **out, size_t *size, dc_err *err);
int file_read_max(const char *path, size_t max, char **out, size_t *size, dc_err *err);
/* file_kind: "a directory", "a FIFO", ... for a stat mode (for messages). */
const char *file_kind(unsigned mode);
int file_exists(const char *path);
int dir_exists(const char *path);
/* dir_make: mkdir -p. */
int dir_make(const char *path, dc_err *err);
/* dir_remove_tree: rm -rf path (absent is fine). */
int dir_remove_tree(const char *path, dc_err *err);
/* fsync_dir: flush a directory's entries (after a rename into it). */
void fsync_dir(const char *dir);
/* path_join: dir + "/" + name into out (no doubled slash when dir ends in
 * one); DC_EARG when it does not fit. */
int path_join(char *out, size_t cap, const char *dir, const char *name, dc_err *err);

typedef struct afile {
    FILE *f;
    char tmp[4096];
    char path[4096];
    int slot;            /* its place in the list afile_unlink_all walks, or -1 */
} afile;

int afile_open(afile *a, const char *path, dc_err *err);
int afile_write(afile *a, const void *data, size_t n, dc_err *err);
int afile_commit(afile *a, dc_err *err);
void afile_abort(afile *a);
/* afile_unlink_all: remove the temporaries of every afile open now. Only
 * unlink(2): a SIGINT/SIGTERM handler may call it (the CLI's does, then
 * dies of the signal). The list is the one piece of process state here. */
void afile_unlink_all(void);
/* file_sweep_stale: remove the NAME.tmp.<pid>[.<hex>] files in dir left by
 * processes that no longer run (killed with SIGKILL, a crash); the number
 * removed. */
int file_sweep_stale(const char *dir);
/* dir_lock: an exclusive flock on dir/.lock for as long as *fd is open; a
 * second holder (another process) gets DC_EARG naming who holds it (`who`,
 * e.g. "deepc train", and its pid). dir_unlock(-1) does nothing. */
int dir_lock(const char *dir, const char *who, int *fd, dc_err *err);
void dir_unlock(int fd);
/* Whole directories written beside their target and renamed into place
 * (deepc init, convert --to hf): dir_check_target says whether out may be
 * written (absent, an empty directory, or any directory with force: DC_EARG
 * otherwise, before any work); dir_make_beside creates a fresh
 * OUT.tmp.<pid>.<hex> directory into tmp (sweeping stale ones of dead
 * processes first); dir_commit renames it to out, with force swapping it
 * with a non-empty out atomically (renameat2 RENAME_EXCHANGE) and removing
 * the old one; on failure tmp is removed. */
int dir_check_target(const char *out, int force, dc_err *err);
int dir_make_beside(const char *out, char *tmp, size_t cap, dc_err *err);
int dir_commit(const char *tmp, const char *out, int force, dc_err *err);
/* file_write_atomic: one call for a small file. */
int file_write_atomic(const char *path, const void *data, size_t n, dc_err *err);
/* file_copy: src to dst, atomically. */
int file_copy(const char *src, const char *dst, dc_err *err);
#endif
