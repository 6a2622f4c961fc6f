/*
 * test_file.c — src/base/file.c against what a hostile or unlucky
 * filesystem holds (issue 14): reads take regular files only, within a size
 * (a FIFO hung, a symlink to /dev/zero grew to 12 GB: defect 6); temporaries
 * are fresh names created exclusively (a planted symlink at the old
 * PATH.tmp.<pid> was followed: defect 7) and removed by a signal handler or,
 * when a process died, by the next sweep (defect 13); messages name the
 * file, not the temporary, and no doubled slash (defect 12); the run lock
 * (defect 3), in the library and as `deepc train` uses it.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "base/file.h"
#include "harness.h"
#include "io/json.h"

#define BIN DC_BUILD "/deepc"

static char *tmp(const char *name) {
    static char b[8][700];
    static int k;
    char *p = b[k++ % 8];
    snprintf(p, 700, "%s/%s", harness_tmpdir(), name);
    return p;
}

/* special files: an error naming what they are, at once (alarm: a hang fails the binary) */
/* RssFile of this process in kB (/proc/self/status), -1 when unknown */
static long rss_file_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "RssFile:", 8)) kb = atol(line + 8);
    if (f) fclose(f);
    return kb;
}

/* mfile_release drops the mapped pages it is given from the resident set
 * (the GGUF loader copies a tensor out, then releases its source), and a
 * later read still sees the file's bytes */
static void mapping_release(void) {
    char path[700];
    snprintf(path, sizeof path, "%s/big.bin", harness_tmpdir());
    size_t n = (size_t)32 << 20;
    unsigned char *buf = malloc(n);
    for (size_t i = 0; buf && i < n; i++) buf[i] = (unsigned char)(i * 131 + (i >> 12));
    dc_err e = {0};
    CHECK(buf && file_write_atomic(path, (char *)buf, n, &e) == 0, "write: %s", e.msg);
    mfile f;
    if (mfile_open(&f, path, &e)) { CHECK(0, "%s", e.msg); free(buf); return; }
    unsigned sum = 0;
    for (size_t i = 0; i < n; i += 4096) sum += f.data[i]; /* fault every page in */
    long before = rss_file_kb();
    mfile_release(&f, f.data + 4096 + 7, n - 8192); /* whole pages inside only */
    long after = rss_file_kb();
    printf("    RssFile %ld kB with 32 MB mapped and read, %ld kB after mfile_release (sum %u)\n", before, after, sum);
    if (before >= 0) CHECK(before - after > 28 * 1024, "released %ld kB of 32 MB", before - after);
    CHECK(memcmp(f.data, buf, n) == 0, "the mapping reads the file's bytes after the release");
    mfile_close(&f);
    free(buf);
}

static void special_files(void) {
    char *buf = NULL;
    size_t n;
    dc_err e = {0};
    const char *fifo = tmp("fifo"), *zero = tmp("zero.json"), *dir = tmp("cfgdir");
    CHECK(mkfifo(fifo, 0600) == 0, "mkfifo");
    CHECK(symlink("/dev/zero", zero) == 0, "symlink");
    alarm(20);
    int rc = file_read_all(fifo, &buf, &n, &e);
    CHECK(rc == DC_EIO && strstr(e.msg, "FIFO") && strstr(e.msg, fifo), "FIFO: rc %d %s", rc, e.msg);
    free(buf), buf = NULL;
    rc = file_read_all(zero, &buf, &n, &e);
    CHECK(rc == DC_EIO && strstr(e.msg, "character device"), "/dev/zero: rc %d %s", rc, e.msg);
    free(buf), buf = NULL;
    mfile f;
    rc = mfile_open(&f, fifo, &e);
    CHECK(rc == DC_EIO && strstr(e.msg, "FIFO"), "mfile_open FIFO: rc %d %s", rc, e.msg);
    cJSON *j = NULL;
    rc = json_read_file(zero, &j, &e);
    CHECK(rc == DC_EIO && !j, "json /dev/zero: rc %d %s", rc, e.msg);
    /* through the public loaders: config.json and tokenizer.json as a device or FIFO */
    CHECK(mkdir(dir, 0755) == 0, "mkdir");
    char p[800];
    snprintf(p, sizeof p, "%s/config.json", dir);
    CHECK(symlink("/dev/zero", p) == 0, "symlink config");
    dc_config c;
    rc = dc_config_load(dir, &c, &e);
    CHECK(rc == DC_EIO && strstr(e.msg, "config.json") && strstr(e.msg, "not a regular file"), "config: rc %d %s", rc,
          e.msg);
    snprintf(p, sizeof p, "%s/tokenizer.json", dir);
    CHECK(mkfifo(p, 0600) == 0, "mkfifo tokenizer");
    dc_tokenizer *t = NULL;
    rc = dc_tokenizer_load(p, &t, &e);
    CHECK(rc == DC_EIO && strstr(e.msg, "FIFO"), "tokenizer FIFO: rc %d %s", rc, e.msg);
    dc_tokenizer_free(t);
    alarm(0);
}

/* a config.json over its cap is refused without reading it */
static void size_caps(void) {
    const char *dir = tmp("bigcfg");
    char p[800];
    snprintf(p, sizeof p, "%s/config.json", dir);
    CHECK(mkdir(dir, 0755) == 0, "mkdir");
    int fd = open(p, O_WRONLY | O_CREAT, 0644);
    CHECK(fd >= 0 && ftruncate(fd, (off_t)64 << 20) == 0, "sparse 64 MB config.json");
    if (fd >= 0) close(fd);
    dc_config c;
    dc_err e = {0};
    int rc = dc_config_load(dir, &c, &e);
    CHECK(rc == DC_EFORMAT && strstr(e.msg, "67108864") && strstr(e.msg, "more than"), "rc %d %s", rc, e.msg);
    const char *huge = tmp("huge.json");
    fd = open(huge, O_WRONLY | O_CREAT, 0644);
    CHECK(fd >= 0 && ftruncate(fd, (off_t)JSON_MAX_BYTES + 1) == 0, "sparse JSON");
    if (fd >= 0) close(fd);
    cJSON *j = NULL;
    rc = json_read_file(huge, &j, &e);
    CHECK(rc == DC_EFORMAT && !j, "json over the cap: rc %d %s", rc, e.msg);
}

/* a symlink planted where the temporary used to be (PATH.tmp.<pid>) must not be followed */
static void planted_symlink(void) {
    const char *victim = tmp("victim"), *out = tmp("out.json");
    dc_err e = {0};
    CHECK(file_write_atomic(victim, "precious", 8, &e) == 0, "victim");
    char planted[800];
    snprintf(planted, sizeof planted, "%s.tmp.%ld", out, (long)getpid());
    CHECK(symlink(victim, planted) == 0, "plant");
    CHECK(file_write_atomic(out, "{\"a\": 1}", 8, &e) == 0, "write: %s", e.msg);
    char *b = NULL;
    size_t n;
    CHECK(file_read_all(victim, &b, &n, &e) == 0 && n == 8 && memcmp(b, "precious", 8) == 0, "the victim was written");
    free(b), b = NULL;
    CHECK(file_read_all(out, &b, &n, &e) == 0 && n == 8 && memcmp(b, "{\"a\": 1}", 8) == 0, "out holds the data");
    free(b);
    struct stat st;
    CHECK(lstat(out, &st) == 0 && S_ISREG(st.st_mode), "out is a regular file, not the planted link");
    /* two writers of one path never share a temporary */
    afile a, b2;
    CHECK(afile_open(&a, out, &e) == 0 && afile_open(&b2, out, &e) == 0, "two afiles");
    CHECK(strcmp(a.tmp, b2.tmp) != 0, "the same temporary twice: %s", a.tmp);
    afile_abort(&a), afile_abort(&b2);
}

/* errors name the file, not its temporary; paths have no doubled slash */
static void messages(void) {
    dc_err e = {0};
    int rc = file_write_atomic("/nonexistent-dir/x.json", "x", 1, &e);
    CHECK(rc == DC_EIO && strstr(e.msg, "/nonexistent-dir/x.json") && !strstr(e.msg, ".tmp"), "message: %s", e.msg);
    char p[64];
    CHECK(path_join(p, sizeof p, "run/", "config.json", NULL) == 0 && strcmp(p, "run/config.json") == 0, "%s", p);
    CHECK(path_join(p, sizeof p, "run//", "x", NULL) == 0 && strcmp(p, "run/x") == 0, "%s", p);
    CHECK(path_join(p, sizeof p, "/", "x", NULL) == 0 && strcmp(p, "/x") == 0, "%s", p);
    CHECK(path_join(p, sizeof p, "a", "x", NULL) == 0 && strcmp(p, "a/x") == 0, "%s", p);
    dc_config c;
    char run[800], want[800];
    snprintf(run, sizeof run, "%s/", tmp("norun"));
    snprintf(want, sizeof want, "%s/config.json", tmp("norun"));
    CHECK(mkdir(run, 0755) == 0, "mkdir");
    rc = dc_config_load(run, &c, &e);
    CHECK(rc == DC_EIO && strstr(e.msg, want) && !strstr(e.msg, "//"), "config message: %s", e.msg);
}

static pid_t dead_pid(void) {
    pid_t p = fork();
    if (p == 0) _exit(0);
    waitpid(p, NULL, 0);
    return p;
}

/* temporaries of a killed process are swept; those of live ones, and other names, stay */
static void sweep(void) {
    const char *d = tmp("sweep");
    CHECK(mkdir(d, 0755) == 0, "mkdir");
    long dead = (long)dead_pid(), me = (long)getpid();
    char names[6][160];
    snprintf(names[0], 160, "m.gguf.tmp.%ld.0123abcd", dead);  /* stale: removed */
    snprintf(names[1], 160, "m.gguf.tmp.%ld", dead);           /* stale, the old form: removed */
    snprintf(names[2], 160, "m.gguf.tmp.%ld.deadbeef", me);    /* ours, in use: kept */
    snprintf(names[3], 160, "notes.tmp.txt");                  /* not a temporary: kept */
    snprintf(names[4], 160, "m.gguf.tmp.%ld.0123abcdX", dead); /* not our pattern: kept */
    snprintf(names[5], 160, "m.gguf");
    for (int i = 0; i < 6; i++) CHECK(harness_sh("touch '%s/%s'", d, names[i]) == 0, "touch");
    CHECK(file_sweep_stale(d) == 2, "two stale temporaries");
    for (int i = 0; i < 6; i++) {
        char p[900];
        snprintf(p, sizeof p, "%s/%s", d, names[i]);
        CHECK((access(p, F_OK) == 0) == (i >= 2), "%s %s", names[i], i >= 2 ? "was removed" : "is still there");
    }
}

/* a signal handler's afile_unlink_all removes the temporaries open now */
static void unlink_all(void) {
    afile a;
    dc_err e = {0};
    CHECK(afile_open(&a, tmp("sig.bin"), &e) == 0, "open");
    CHECK(afile_write(&a, "abc", 3, &e) == 0, "write");
    CHECK(access(a.tmp, F_OK) == 0, "the temporary exists");
    afile_unlink_all();
    CHECK(access(a.tmp, F_OK) != 0, "afile_unlink_all left %s", a.tmp);
    afile_abort(&a);
    /* committed and aborted files are no longer listed */
    CHECK(file_write_atomic(tmp("kept.bin"), "x", 1, &e) == 0, "commit");
    afile_unlink_all();
    CHECK(access(tmp("kept.bin"), F_OK) == 0, "a committed file was removed");
}

static void run_lock(void) {
    const char *d = tmp("run");
    CHECK(mkdir(d, 0755) == 0, "mkdir");
    int fd = -1, fd2 = -1;
    dc_err e = {0};
    CHECK(dir_lock(d, "deepc train", &fd, &e) == 0, "lock: %s", e.msg);
    /* another process is refused, naming us */
    pid_t p = fork();
    if (p == 0) {
        dc_err e2 = {0};
        int f2;
        int rc = dir_lock(d, "deepc train", &f2, &e2);
        char pid[32];
        snprintf(pid, sizeof pid, "pid %ld", (long)getppid());
        _exit(rc == DC_EARG && strstr(e2.msg, "in use by another deepc train") && strstr(e2.msg, pid) ? 0 : 1);
    }
    int st;
    waitpid(p, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "a second process got the lock or a bad message");
    dir_unlock(fd);
    CHECK(dir_lock(d, "deepc train", &fd2, &e) == 0, "after unlock: %s", e.msg);
    dir_unlock(fd2);
}

/* deepc train into a run another process holds: refused, its work left alone */
static void train_refuses_locked_run(void) {
    const char *w = harness_tmpdir();
    CHECK(harness_sh("for i in $(seq 300); do echo \"to be or not to be $i\"; done > %s/t.txt", w) == 0, "text");
    CHECK(harness_sh(BIN " tokenizer-train --data %s/t.txt --vocab-size 280 --out %s/tok.json > /dev/null 2>&1", w, w) == 0,
          "tokenizer");
    CHECK(harness_sh(BIN " prepare --tokenizer %s/tok.json --data %s/t.txt --out %s/data > /dev/null 2>&1", w, w, w) == 0,
          "prepare");
    char run[800], log[800];
    snprintf(run, sizeof run, "%s/locked", w);
    snprintf(log, sizeof log, "%s/train.log", w);
    CHECK(mkdir(run, 0755) == 0, "mkdir");
    int fd = -1;
    dc_err e = {0};
    CHECK(dir_lock(run, "deepc train", &fd, &e) == 0, "lock");
    const char *args = "--preset tiny --steps 2 --batch 2 --seq 16 --log-every 1 --eval-every 0";
    int rc = harness_sh(BIN " train --data %s/data --out %s %s > %s 2>&1", w, run, args, log);
    char *o = NULL;
    size_t n;
    if (file_read_all(log, &o, &n, NULL)) o = strdup("");
    CHECK(rc == 1 && strstr(o, "in use by another deepc train"), "train into a locked run: exit %d, %s", rc, o);
    free(o);
    CHECK(harness_sh("ls %s | grep -q step-", run) != 0, "the refused run wrote a checkpoint");
    dir_unlock(fd);
    rc = harness_sh(BIN " train --data %s/data --out %s %s > %s 2>&1", w, run, args, log);
    CHECK(rc == 0, "train after the lock is released: exit %d", rc);
    /* --resume while another resume holds the run */
    CHECK(dir_lock(run, "deepc train", &fd, &e) == 0, "lock again");
    rc = harness_sh(BIN " train --data %s/data --out %s --resume --steps 3 > %s 2>&1", w, run, log);
    CHECK(rc == 1, "a second --resume at once: exit %d", rc);
    dir_unlock(fd);
}

int main(void) {
    RUN(special_files);
    RUN(mapping_release);
    RUN(size_caps);
    RUN(planted_symlink);
    RUN(messages);
    RUN(sweep);
    RUN(unlink_all);
    RUN(run_lock);
    RUN(train_refuses_locked_run);
    return harness_done();
}
