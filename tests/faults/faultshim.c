/* A fault-injection shim for tests/test_store_faults.py, loaded with LD_PRELOAD.
 *
 * It wraps libc's write family and fsync family. Once armed (faultshim_arm, called through
 * ctypes), it counts the calls made on files under one directory and fails the Nth:
 *   mode 1: that write fails with the given errno (ENOSPC, EIO, ...);
 *   mode 2: that write is short (half its bytes really written), and the next one there
 *           fails with ENOSPC -- what a disk that fills up mid-write does;
 *   mode 3: that fsync/fdatasync fails with the given errno.
 * SQLite reaches these functions through the dynamic linker, so its own I/O is what fails:
 * no code of the store under test is replaced. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

static char prefix[1024];
static size_t prefix_len = 0;
static long target = -1, count = 0, fired = 0;
static int mode = 0, err_no = 0, short_pending = 0;

void faultshim_arm(const char *dir, int m, long n, int e) {
    strncpy(prefix, dir, sizeof prefix - 1);
    prefix_len = strlen(prefix);
    mode = m; target = n; err_no = e; count = 0; fired = 0; short_pending = 0;
}
void faultshim_disarm(void) { target = -1; short_pending = 0; }
long faultshim_count(void) { return count; }
long faultshim_fired(void) { return fired; }

static int watched(int fd) {
    if (!prefix_len || target < 0) return 0;
    char link[64], path[2048];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n < 0) return 0;
    path[n] = 0;
    return strncmp(path, prefix, prefix_len) == 0;
}

/* 0: go on; -1: fail with errno set; >0: write only this many bytes */
static ssize_t decide_write(int fd, size_t len) {
    if (mode == 3 || !watched(fd)) return 0;
    if (short_pending) { short_pending = 0; fired++; errno = ENOSPC; return -1; }
    if (++count != target) return 0;
    fired++;
    if (mode == 2 && len > 1) { short_pending = 1; return (ssize_t)(len / 2); }
    errno = err_no;
    return -1;
}

static int decide_sync(int fd) {
    if (mode != 3 || !watched(fd)) return 0;
    if (++count != target) return 0;
    fired++;
    errno = err_no;
    return -1;
}

typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);
typedef int (*sync_fn)(int);
#define REAL(name, type) static type real_##name; if (!real_##name) real_##name = (type)dlsym(RTLD_NEXT, #name)

ssize_t write(int fd, const void *buf, size_t len) {
    REAL(write, write_fn);
    ssize_t d = decide_write(fd, len);
    if (d < 0) return -1;
    return real_write(fd, buf, d > 0 ? (size_t)d : len);
}
ssize_t pwrite(int fd, const void *buf, size_t len, off_t off) {
    REAL(pwrite, pwrite_fn);
    ssize_t d = decide_write(fd, len);
    if (d < 0) return -1;
    return real_pwrite(fd, buf, d > 0 ? (size_t)d : len, off);
}
ssize_t pwrite64(int fd, const void *buf, size_t len, off_t off) {
    REAL(pwrite64, pwrite_fn);
    ssize_t d = decide_write(fd, len);
    if (d < 0) return -1;
    return real_pwrite64(fd, buf, d > 0 ? (size_t)d : len, off);
}
int fsync(int fd) {
    REAL(fsync, sync_fn);
    if (decide_sync(fd)) return -1;
    return real_fsync(fd);
}
int fdatasync(int fd) {
    REAL(fdatasync, sync_fn);
    if (decide_sync(fd)) return -1;
    return real_fdatasync(fd);
}
