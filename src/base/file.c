/* file.c — see file.h. */
#include "base/file.h"
#include "base/err.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

void mfile_release(const mfile *f, const void *p, size_t n) {
    long pg = sysconf(_SC_PAGESIZE);
    if (pg <= 0 || !f->data || !n) return;
    uintptr_t a = (uintptr_t)p, b = a + n, lo = (uintptr_t)f->data, hi = lo + f->size;
    if (a < lo) a = lo;
    if (b > hi) b = hi;
    a = (a + pg - 1) / pg * pg, b = b / pg * pg; /* whole pages only: neighbours may still be read */
    if (b > a) madvise((void *)a, b - a, MADV_DONTNEED);
}

void mfile_copy_out(const mfile *f, void *dst, const void *src, size_t n) {
    const size_t piece = (size_t)4 << 20;
    for (size_t o = 0; o < n; o += piece) {
        size_t k = n - o < piece ? n - o : piece;
        memcpy((char *)dst + o, (const char *)src + o, k);
        mfile_release(f, (const char *)src + o, k);
    }
}

int mfile_open(mfile *f, const char *path, dc_err *err) {
    f->data = NULL;
    f->size = 0;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC); /* a FIFO must not block the open */
    if (fd < 0) return err_set(err, DC_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return err_set(err, DC_EIO, "%s: cannot stat: %s", path, strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return err_set(err, DC_EIO, "%s: not a regular file (%s)", path, file_kind(st.st_mode));
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

const char *file_kind(unsigned mode) {
    return S_ISDIR(mode) ? "a directory" : S_ISFIFO(mode) ? "a FIFO" : S_ISCHR(mode) ? "a character device"
           : S_ISBLK(mode) ? "a block device" : S_ISSOCK(mode) ? "a socket" : S_ISREG(mode) ? "a regular file"
                                                                            : "not a regular file";
}

int file_read_max(const char *path, size_t max, char **out, size_t *size, dc_err *err) {
    *out = NULL;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return err_set(err, DC_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return err_set(err, DC_EIO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return err_set(err, DC_EIO, "%s: is %s, not a regular file", path, file_kind(st.st_mode));
    }
    if ((uint64_t)st.st_size > max) {
        close(fd);
        return err_set(err, DC_EFORMAT, "%s: %lld bytes, more than the %zu this file may have", path,
                       (long long)st.st_size, max);
    }
    size_t cap = (size_t)st.st_size + 1, n = 0;
    char *buf = malloc(cap);
    if (!buf) {
        close(fd);
        return err_set(err, DC_ENOMEM, "%s: out of memory for %zu bytes", path, cap);
    }
    /* read what fstat promised; a file that grows meanwhile is cut there */
    while (n + 1 < cap) {
        ssize_t got = read(fd, buf + n, cap - 1 - n);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            int e = errno;
            free(buf);
            close(fd);
            return err_set(err, DC_EIO, "%s: read error: %s", path, strerror(e));
        }
        if (got == 0) break;
        n += (size_t)got;
    }
    close(fd);
    buf[n] = 0;
    *out = buf;
    if (size) *size = n;
    return DC_OK;
}

int file_read_all(const char *path, char **out, size_t *size, dc_err *err) {
    return file_read_max(path, SIZE_MAX - 1, out, size, err);
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
    size_t dl = strlen(dir);
    while (dl > 1 && dir[dl - 1] == '/') dl--; /* "run/" + "x" is run/x, not run//x */
    int n = dl == 1 && dir[0] == '/' ? snprintf(out, cap, "/%s", name) : snprintf(out, cap, "%.*s/%s", (int)dl, dir, name);
    if (n < 0 || (size_t)n >= cap) return err_set(err, DC_EARG, "path too long: %s/%s", dir, name);
    return DC_OK;
}

/* ---------------------------------------------------------------- temporaries
 * The temporaries of open afiles are listed here so that a signal handler
 * can remove them (afile_unlink_all: only unlink(2), async-signal-safe).
 * A slot is claimed 0 -> 2 (being written) -> 1 (visible to the handler). */
#define AFILE_SLOTS 64
static char g_tmp[AFILE_SLOTS][4096];
static int g_used[AFILE_SLOTS];

static int tmp_register(const char *p) {
    for (int i = 0; i < AFILE_SLOTS; i++) {
        int z = 0;
        if (__atomic_compare_exchange_n(&g_used[i], &z, 2, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
            snprintf(g_tmp[i], sizeof g_tmp[i], "%s", p);
            __atomic_store_n(&g_used[i], 1, __ATOMIC_RELEASE);
            return i;
        }
    }
    return -1; /* more than AFILE_SLOTS at once: still correct, only not removed on a signal */
}

static void tmp_unregister(int slot) {
    if (slot >= 0) __atomic_store_n(&g_used[slot], 0, __ATOMIC_RELEASE);
}

void afile_unlink_all(void) {
    for (int i = 0; i < AFILE_SLOTS; i++)
        if (__atomic_load_n(&g_used[i], __ATOMIC_ACQUIRE) == 1) unlink(g_tmp[i]);
}

/* rand_suffix: 8 hex digits from the kernel's entropy (the pid and a
 * counter when that fails) */
static void rand_suffix(char out[9]) {
    static unsigned counter;
    uint32_t r;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r)
        r = (uint32_t)getpid() * 2654435761u ^ __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
    snprintf(out, 9, "%08x", r);
}

int afile_open(afile *a, const char *path, dc_err *err) {
    a->f = NULL;
    a->slot = -1;
    if (snprintf(a->path, sizeof a->path, "%s", path) >= (int)sizeof a->path || strlen(path) + 40 >= sizeof a->tmp)
        return err_set(err, DC_EARG, "%s: path too long", path);
    /* a fresh name, created exclusively: a file or symlink planted at a
     * predictable name is never followed or reused */
    int fd = -1, e = 0;
    for (int tries = 0; fd < 0 && tries < 16; tries++) {
        char r[9];
        rand_suffix(r);
        snprintf(a->tmp, sizeof a->tmp, "%s.tmp.%ld.%s", path, (long)getpid(), r);
        /* listed before it exists, so a signal in between cannot leave it behind */
        a->slot = tmp_register(a->tmp);
        fd = open(a->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
        e = errno;
        if (fd < 0) tmp_unregister(a->slot), a->slot = -1;
        if (fd < 0 && e != EEXIST) break;
    }
    if (fd < 0) return err_set(err, DC_EIO, "%s: cannot create a temporary file beside it: %s", path, strerror(e));
    a->f = fdopen(fd, "wb");
    if (!a->f) {
        e = errno;
        close(fd);
        unlink(a->tmp);
        tmp_unregister(a->slot);
        return err_set(err, DC_EIO, "%s: %s", path, strerror(e));
    }
    return DC_OK;
}

int afile_write(afile *a, const void *data, size_t n, dc_err *err) {
    if (n && fwrite(data, 1, n, a->f) != n)
        return err_set(err, DC_EIO, "%s: write failed: %s", a->path, strerror(errno));
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
    if (fclose(a->f) != 0) bad = 1, e = e ? e : errno;
    a->f = NULL;
    if (bad) {
        unlink(a->tmp);
        tmp_unregister(a->slot);
        return err_set(err, DC_EIO, "%s: write failed: %s", a->path, strerror(e));
    }
    if (rename(a->tmp, a->path) != 0) {
        e = errno;
        unlink(a->tmp);
        tmp_unregister(a->slot);
        return err_set(err, DC_EIO, "%s: cannot rename into place: %s", a->path, strerror(e));
    }
    tmp_unregister(a->slot);
    fsync_dir_of(a->path);
    return DC_OK;
}

void afile_abort(afile *a) {
    if (a->f) {
        fclose(a->f);
        a->f = NULL;
        unlink(a->tmp);
        tmp_unregister(a->slot);
    }
}

/* stale_tmp: name is NAME.tmp.<pid>[.<8 hex>] of a process that is gone */
static int stale_tmp(const char *name) {
    const char *t = NULL;
    for (const char *p = strstr(name, ".tmp."); p; p = strstr(p + 1, ".tmp.")) t = p;
    if (!t || t == name) return 0;
    char *end;
    long pid = strtol(t + 5, &end, 10);
    if (end == t + 5 || pid <= 0) return 0;
    if (*end == '.') {
        size_t k = strspn(end + 1, "0123456789abcdef");
        if (k != 8 || end[9]) return 0;
    } else if (*end) {
        return 0;
    }
    return pid != (long)getpid() && kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

int file_sweep_stale(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!stale_tmp(de->d_name)) continue;
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
        if (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)) {
            n += unlinkat(dirfd(d), de->d_name, 0) == 0;
        } else if (S_ISDIR(st.st_mode)) { /* a model directory being written beside its target */
            char p[4096];
            dc_err ignore;
            n += !path_join(p, sizeof p, dir, de->d_name, NULL) && !dir_remove_tree(p, &ignore);
        }
    }
    closedir(d);
    return n;
}

/* ---------------------------------------------------------------- whole directories */

static int dir_is_empty(const char *path) {
    DIR *d = opendir(path);
    if (!d) return 0;
    struct dirent *de;
    int empty = 1;
    while (empty && (de = readdir(d)))
        empty = strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0;
    closedir(d);
    return empty;
}

int dir_check_target(const char *out, int force, dc_err *err) {
    struct stat st;
    if (lstat(out, &st) != 0)
        return errno == ENOENT ? DC_OK : err_set(err, DC_EIO, "%s: cannot stat: %s", out, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return err_set(err, DC_EARG, "%s exists and is not a directory", out);
    if (force || dir_is_empty(out)) return DC_OK;
    return err_set(err, DC_EARG, "%s exists and is not empty: give --force to replace it", out);
}

int dir_make_beside(const char *out, char *tmp, size_t cap, dc_err *err) {
    size_t n = strlen(out);
    while (n > 1 && out[n - 1] == '/') n--;
    tmp[0] = 0;
    char parent[4096];
    snprintf(parent, sizeof parent, "%.*s", (int)n, out);
    char *sl = strrchr(parent, '/');
    if (sl) sl == parent ? (void)(sl[1] = 0) : (void)(*sl = 0);
    int rc = sl ? dir_make(parent, err) : DC_OK; /* the parent, as dir_make(out) made it before */
    if (rc) return rc;
    file_sweep_stale(sl ? parent : "."); /* what a killed writer left here */
    for (int tries = 0; tries < 16; tries++) {
        char r[9];
        rand_suffix(r);
        if (snprintf(tmp, cap, "%.*s.tmp.%ld.%s", (int)n, out, (long)getpid(), r) >= (int)cap)
            return tmp[0] = 0, err_set(err, DC_EARG, "%s: path too long", out);
        if (mkdir(tmp, 0755) == 0) return DC_OK;
        if (errno != EEXIST) break;
    }
    int e = errno;
    tmp[0] = 0;
    return err_set(err, DC_EIO, "%s: cannot create a directory beside it: %s", out, strerror(e));
}

int dir_commit(const char *tmp, const char *out, int force, dc_err *err) {
    dc_err ignore;
    char parent[4096];
    snprintf(parent, sizeof parent, "%s", out);
    if (rename(tmp, out) == 0) { /* out absent or an empty directory */
        fsync_dir(dirname(parent));
        return DC_OK;
    }
    int e = errno;
    if ((e == ENOTEMPTY || e == EEXIST) && force) {
        /* swap the new directory and the old one in one step, then drop the old */
        if (renameat2(AT_FDCWD, tmp, AT_FDCWD, out, RENAME_EXCHANGE) == 0) {
            fsync_dir(dirname(parent));
            dir_remove_tree(tmp, &ignore);
            return DC_OK;
        }
        e = errno;
    }
    dir_remove_tree(tmp, &ignore);
    if (e == ENOTEMPTY || e == EEXIST) return err_set(err, DC_EARG, "%s exists and is not empty: give --force to replace it", out);
    return err_set(err, DC_EIO, "%s: cannot move the new directory into place: %s", out, strerror(e));
}

int dir_lock(const char *dir, const char *who, int *fd_out, dc_err *err) {
    char p[4096];
    *fd_out = -1;
    int rc = path_join(p, sizeof p, dir, ".lock", err);
    if (rc) return rc;
    int fd = open(p, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) return err_set(err, DC_EIO, "%s: cannot open: %s", p, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char b[32] = "";
        ssize_t k = pread(fd, b, sizeof b - 1, 0);
        b[k > 0 ? k : 0] = 0;
        long pid = strtol(b, NULL, 10);
        close(fd);
        if (e != EWOULDBLOCK) return err_set(err, DC_EIO, "%s: cannot lock: %s", p, strerror(e));
        char holder[48] = "";
        if (pid > 0) snprintf(holder, sizeof holder, " (pid %ld)", pid);
        return err_set(err, DC_EARG, "%s is in use by another %s%s: wait for it to finish, or use another directory",
                       dir, who, holder);
    }
    /* the holder's pid, for the message above (the lock itself is the flock) */
    char b[32];
    int k = snprintf(b, sizeof b, "%ld\n", (long)getpid());
    int wrote = ftruncate(fd, 0) == 0 && pwrite(fd, b, (size_t)k, 0) == k;
    (void)wrote;
    *fd_out = fd;
    return DC_OK;
}

void dir_unlock(int fd) {
    if (fd >= 0) close(fd);
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
