/* file.c — see file.h. */
#include "base/file.h"
#include "base/err.h"
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int mfile_open(mfile *f, const char *path, dc_err *err) {
    f->data = NULL;
    f->size = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return err_set(err, DC_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return err_set(err, DC_EIO, "%s: cannot stat: %s", path, strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return err_set(err, DC_EIO, "%s: not a regular file", path);
    }
    if (st.st_size > 0) {
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            close(fd);
            return err_set(err, DC_EIO, "%s: cannot mmap %lld bytes: %s", path,
                           (long long)st.st_size, strerror(errno));
        }
        f->data = p;
        f->size = (size_t)st.st_size;
    }
    close(fd);
    return DC_OK;
}

void mfile_close(mfile *f) {
    if (f && f->data) munmap((void *)f->data, f->size);
    if (f) {
        f->data = NULL;
        f->size = 0;
    }
}

int file_read_all(const char *path, char **out, size_t *size, dc_err *err) {
    *out = NULL;
    if (dir_exists(path)) return err_set(err, DC_EIO, "%s: is a directory, not a file", path);
    FILE *fp = fopen(path, "rb");
    if (!fp) return err_set(err, DC_EIO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    if (!buf) {
        fclose(fp);
        return err_set(err, DC_ENOMEM, "%s: out of memory", path);
    }
    for (;;) {
        if (n + 1 >= cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                fclose(fp);
                return err_set(err, DC_ENOMEM, "%s: out of memory at %zu bytes", path, n);
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, fp);
        n += got;
        if (got == 0) break;
    }
    int bad = ferror(fp);
    fclose(fp);
    if (bad) {
        free(buf);
        return err_set(err, DC_EIO, "%s: read error", path);
    }
    buf[n] = 0;
    *out = buf;
    if (size) *size = n;
    return DC_OK;
}

int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int dir_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int dir_make(const char *path, dc_err *err) {
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return err_set(err, DC_EARG, "%s: path too long", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return err_set(err, DC_EIO, "%s: cannot create: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return err_set(err, DC_EIO, "%s: cannot create: %s", buf, strerror(errno));
    if (!dir_exists(buf)) return err_set(err, DC_EIO, "%s: exists and is not a directory", buf);
    return DC_OK;
}

int path_join(char *out, size_t cap, const char *dir, const char *name, dc_err *err) {
    int n = snprintf(out, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap) return err_set(err, DC_EARG, "path too long: %s/%s", dir, name);
    return DC_OK;
}

int afile_open(afile *a, const char *path, dc_err *err) {
    a->f = NULL;
    if (snprintf(a->path, sizeof a->path, "%s", path) >= (int)sizeof a->path ||
        snprintf(a->tmp, sizeof a->tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof a->tmp)
        return err_set(err, DC_EARG, "%s: path too long", path);
    a->f = fopen(a->tmp, "wb");
    if (!a->f) return err_set(err, DC_EIO, "%s: cannot create: %s", a->tmp, strerror(errno));
    return DC_OK;
}

int afile_write(afile *a, const void *data, size_t n, dc_err *err) {
    if (n && fwrite(data, 1, n, a->f) != n)
        return err_set(err, DC_EIO, "%s: write failed: %s", a->tmp, strerror(errno));
    return DC_OK;
}

static void fsync_dir_of(const char *path) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    int fd = open(dirname(buf), O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

int afile_commit(afile *a, dc_err *err) {
    int bad = fflush(a->f) != 0 || fsync(fileno(a->f)) != 0;
    int e = errno;
    if (fclose(a->f) != 0) bad = 1;
    a->f = NULL;
    if (bad) {
        unlink(a->tmp);
        return err_set(err, DC_EIO, "%s: cannot flush: %s", a->tmp, strerror(e));
    }
    if (rename(a->tmp, a->path) != 0) {
        e = errno;
        unlink(a->tmp);
        return err_set(err, DC_EIO, "%s: cannot rename into place: %s", a->path, strerror(e));
    }
    fsync_dir_of(a->path);
    return DC_OK;
}

void afile_abort(afile *a) {
    if (a->f) {
        fclose(a->f);
        a->f = NULL;
        unlink(a->tmp);
    }
}

int file_write_atomic(const char *path, const void *data, size_t n, dc_err *err) {
    afile a;
    int rc = afile_open(&a, path, err);
    if (rc) return rc;
    if ((rc = afile_write(&a, data, n, err))) {
        afile_abort(&a);
        return rc;
    }
    return afile_commit(&a, err);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(p);
}

int dir_remove_tree(const char *path, dc_err *err) {
    struct stat st;
    if (lstat(path, &st) != 0) return DC_OK;
    if (nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
        return err_set(err, DC_EIO, "%s: cannot remove: %s", path, strerror(errno));
    return DC_OK;
}

void fsync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

int file_copy(const char *src, const char *dst, dc_err *err) {
    char *buf;
    size_t n;
    int rc = file_read_all(src, &buf, &n, err);
    if (rc) return rc;
    rc = file_write_atomic(dst, buf, n, err);
    free(buf);
    return rc;
}
