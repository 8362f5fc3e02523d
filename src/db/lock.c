/*
 * lock.c — the rekey lock of libzqlite. Every connection to an encrypted
 * file holds a shared open-file-description lock (fcntl F_OFD_SETLK) on byte
 * LOCK_BYTE of the file, inside the plaintext zqlite header where SQLite
 * never locks (its lock bytes sit at 0x40000000). zqlite_rekey turns that
 * lock exclusive without waiting: it fails while any other connection, in
 * any process, has the file open — rekey replaces the file with rename(), and
 * such a connection would go on writing into the unlinked old one. An opener
 * that finds the lock held exclusively (a rekey running) waits for it.
 *
 * OFD locks belong to an open file description, not to the process, so two
 * connections of one process conflict like two processes do, and closing
 * another descriptor does not drop them. But closing ANY descriptor of a file
 * drops every traditional POSIX lock the process holds on it — SQLite's own
 * locks. So, like SQLite's unixInodeInfo, this keeps one lock descriptor per
 * (device, inode) per process, shared by reference count and closed only
 * when the last zqlite connection to that file is gone (after SQLite closed
 * its own descriptor). A descriptor is opened and closed here only while no
 * entry exists for its inode, i.e. while no zqlite connection of this
 * process holds SQLite locks on it.
 *
 * Entries carry the pid that made them: a child after fork() shares its
 * parent's descriptions (and so their locks), so it never reuses them and
 * takes locks of its own.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vfs.h"

struct lock_entry {
    dev_t dev;
    ino_t ino;
    pid_t pid;
    int fd;
    int refs;
    int exclusive; /* a rekey of this process holds the file */
    lock_entry *next;
};

int lock_wait_ms = LOCK_WAIT_MS;

static pthread_mutex_t lock_mu = PTHREAD_MUTEX_INITIALIZER;
static lock_entry *lock_list;

enum { LOCK_TRY_OK = 0, LOCK_TRY_AGAIN = 1, LOCK_TRY_FAIL = -1 };

static int lock_set(int fd, short type)
{
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = LOCK_BYTE, .l_len = 1};
    return fcntl(fd, F_OFD_SETLK, &fl);
}

static int lock_same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* One attempt, under lock_mu: the entry for path's file with one more
 * reference, or LOCK_TRY_AGAIN while a rekey holds the file. */
static int lock_try(const char *path, lock_entry **out)
{
    struct stat st, fst;
    if (stat(path, &st) != 0) {
        vfs_set_error(ZQLITE_IO, "%s: %s", path, strerror(errno));
        return LOCK_TRY_FAIL;
    }
    pid_t pid = getpid();
    for (lock_entry *e = lock_list; e; e = e->next) {
        if (e->pid == pid && e->dev == st.st_dev && e->ino == st.st_ino) {
            if (e->exclusive)
                return LOCK_TRY_AGAIN;
            e->refs++;
            *out = e;
            return LOCK_TRY_OK;
        }
    }
    /* Read-write when allowed, so that a rekey may turn the lock exclusive. */
    int fd = open(path, O_RDWR | O_CLOEXEC | O_NOCTTY);
    if (fd < 0 && (errno == EACCES || errno == EROFS || errno == EPERM))
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        vfs_set_error(ZQLITE_IO, "%s: opening for the rekey lock: %s", path, strerror(errno));
        return LOCK_TRY_FAIL;
    }
    int rc = LOCK_TRY_AGAIN;
    if (fstat(fd, &fst) != 0 || !lock_same_file(&st, &fst)) {
        /* replaced between stat and open: look again */
    } else if (lock_set(fd, F_RDLCK) != 0) {
        if (errno != EAGAIN && errno != EACCES) {
            vfs_set_error(ZQLITE_IO, "%s: taking the shared rekey lock: %s", path, strerror(errno));
            rc = LOCK_TRY_FAIL;
        }
    } else if (stat(path, &st) == 0 && lock_same_file(&st, &fst)) {
        /* Locked, and path still names the file: a rekey that renamed a
         * new file over it before we locked would have shown here. */
        lock_entry *e = calloc(1, sizeof *e);
        if (!e) {
            vfs_set_error(ZQLITE_NOMEM, "out of memory");
            rc = LOCK_TRY_FAIL;
        } else {
            *e = (lock_entry){st.st_dev, st.st_ino, pid, fd, 1, 0, lock_list};
            lock_list = e;
            *out = e;
            return LOCK_TRY_OK;
        }
    }
    close(fd); /* no entry for this inode: no SQLite lock of ours to lose */
    return rc;
}

int lock_acquire(const char *path, lock_entry **out)
{
    struct timespec start, now, nap = {0, 5 * 1000 * 1000};
    clock_gettime(CLOCK_MONOTONIC, &start);
    *out = NULL;
    for (;;) {
        pthread_mutex_lock(&lock_mu);
        int rc = lock_try(path, out);
        pthread_mutex_unlock(&lock_mu);
        if (rc == LOCK_TRY_OK)
            return ZQLITE_OK;
        if (rc == LOCK_TRY_FAIL)
            return vfs_last_status();
        clock_gettime(CLOCK_MONOTONIC, &now);
        long ms = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (ms >= lock_wait_ms) {
            vfs_set_error(ZQLITE_BUSY, "%s is being rekeyed (waited %.1f s for it)", path,
                          lock_wait_ms / 1000.0);
            return ZQLITE_BUSY;
        }
        nanosleep(&nap, NULL);
    }
}

void lock_release(lock_entry *e)
{
    if (!e)
        return;
    pthread_mutex_lock(&lock_mu);
    if (--e->refs == 0) {
        for (lock_entry **p = &lock_list; *p; p = &(*p)->next) {
            if (*p == e) {
                *p = e->next;
                break;
            }
        }
        close(e->fd); /* drops the OFD lock with the last descriptor */
        free(e);
    }
    pthread_mutex_unlock(&lock_mu);
}

int lock_begin_exclusive(lock_entry *e, const char *path, char *msg, size_t cap)
{
    int code = ZQLITE_OK;
    pthread_mutex_lock(&lock_mu);
    if (e->refs != 1) {
        snprintf(msg, cap, "%s is open in %d other connection%s of this process; close them first",
                 path, e->refs - 1, e->refs == 2 ? "" : "s");
        code = ZQLITE_BUSY;
    } else if (lock_set(e->fd, F_WRLCK) != 0) {
        if (errno == EAGAIN || errno == EACCES)
            snprintf(msg, cap, "%s is open in another process; close it there first", path);
        else
            snprintf(msg, cap, "%s: taking the exclusive rekey lock: %s", path, strerror(errno));
        code = errno == EAGAIN || errno == EACCES ? ZQLITE_BUSY : ZQLITE_IO;
    } else {
        e->exclusive = 1;
        e->refs++; /* kept over the close and reopen of the rekeyed connection */
    }
    pthread_mutex_unlock(&lock_mu);
    return code;
}

void lock_end_exclusive(lock_entry *e)
{
    pthread_mutex_lock(&lock_mu);
    if (e->exclusive) {
        /* Converting our own exclusive lock to shared cannot conflict. */
        (void)lock_set(e->fd, F_RDLCK);
        e->exclusive = 0;
    }
    pthread_mutex_unlock(&lock_mu);
}
