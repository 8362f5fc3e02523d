/*
 * fault_vfs.c — the "zqfault" test VFS (see fault_vfs.h): a shim over
 * "unix" whose file methods count calls and fail the chosen one. Everything
 * not counted is forwarded unchanged, so SQLite (and zqlite's encryption VFS
 * above it) sees a unix VFS whose disk fails once, or for good, at a chosen
 * point.
 */
#include "fault_vfs.h"

#include <sqlite3.h>
#include <string.h>

typedef struct fault_file {
    sqlite3_file base;
    sqlite3_file *real; /* the unix file, right after this struct */
} fault_file;

static sqlite3_vfs fault_vfs;
static sqlite3_vfs *fault_orig;
static long fault_count, fault_at, fault_failed;
static int fault_sticky;

void fault_vfs_arm(long fail_at, int sticky)
{
    fault_count = 0;
    fault_failed = 0;
    fault_at = fail_at;
    fault_sticky = sticky;
}

long fault_vfs_calls(void)
{
    return fault_count;
}

long fault_vfs_failures(void)
{
    return fault_failed;
}

/* Counts one call; nonzero when it must fail. */
static int fault_hit(void)
{
    long n = ++fault_count;
    int fail = fault_at > 0 && (n == fault_at || (fault_sticky && n > fault_at));
    fault_failed += fail;
    return fail;
}

#define REAL(pf) (((fault_file *)(pf))->real)

static int fault_close(sqlite3_file *pf)
{
    return REAL(pf)->pMethods->xClose(REAL(pf));
}
static int fault_read(sqlite3_file *pf, void *buf, int amt, sqlite3_int64 off)
{
    if (fault_hit())
        return SQLITE_IOERR_READ;
    return REAL(pf)->pMethods->xRead(REAL(pf), buf, amt, off);
}
static int fault_write(sqlite3_file *pf, const void *buf, int amt, sqlite3_int64 off)
{
    if (fault_hit())
        return SQLITE_IOERR_WRITE;
    return REAL(pf)->pMethods->xWrite(REAL(pf), buf, amt, off);
}
static int fault_truncate(sqlite3_file *pf, sqlite3_int64 size)
{
    if (fault_hit())
        return SQLITE_IOERR_TRUNCATE;
    return REAL(pf)->pMethods->xTruncate(REAL(pf), size);
}
static int fault_sync(sqlite3_file *pf, int flags)
{
    if (fault_hit())
        return SQLITE_IOERR_FSYNC;
    return REAL(pf)->pMethods->xSync(REAL(pf), flags);
}
static int fault_file_size(sqlite3_file *pf, sqlite3_int64 *size)
{
    return REAL(pf)->pMethods->xFileSize(REAL(pf), size);
}
static int fault_lock(sqlite3_file *pf, int level)
{
    if (fault_hit())
        return SQLITE_IOERR_LOCK;
    return REAL(pf)->pMethods->xLock(REAL(pf), level);
}
static int fault_unlock(sqlite3_file *pf, int level)
{
    return REAL(pf)->pMethods->xUnlock(REAL(pf), level);
}
static int fault_check_reserved(sqlite3_file *pf, int *out)
{
    return REAL(pf)->pMethods->xCheckReservedLock(REAL(pf), out);
}
static int fault_file_control(sqlite3_file *pf, int op, void *arg)
{
    return REAL(pf)->pMethods->xFileControl(REAL(pf), op, arg);
}
static int fault_sector_size(sqlite3_file *pf)
{
    return REAL(pf)->pMethods->xSectorSize(REAL(pf));
}
static int fault_device_characteristics(sqlite3_file *pf)
{
    return REAL(pf)->pMethods->xDeviceCharacteristics(REAL(pf));
}
static int fault_shm_map(sqlite3_file *pf, int pg, int pgsz, int extend, void volatile **pp)
{
    return REAL(pf)->pMethods->xShmMap(REAL(pf), pg, pgsz, extend, pp);
}
static int fault_shm_lock(sqlite3_file *pf, int ofst, int n, int flags)
{
    return REAL(pf)->pMethods->xShmLock(REAL(pf), ofst, n, flags);
}
static void fault_shm_barrier(sqlite3_file *pf)
{
    REAL(pf)->pMethods->xShmBarrier(REAL(pf));
}
static int fault_shm_unmap(sqlite3_file *pf, int del)
{
    return REAL(pf)->pMethods->xShmUnmap(REAL(pf), del);
}
static int fault_fetch(sqlite3_file *pf, sqlite3_int64 off, int amt, void **pp)
{
    *pp = NULL; /* reads go through fault_read, where they are counted */
    return SQLITE_OK;
}
static int fault_unfetch(sqlite3_file *pf, sqlite3_int64 off, void *p)
{
    return SQLITE_OK;
}

static const sqlite3_io_methods fault_io = {
    3,
    fault_close,
    fault_read,
    fault_write,
    fault_truncate,
    fault_sync,
    fault_file_size,
    fault_lock,
    fault_unlock,
    fault_check_reserved,
    fault_file_control,
    fault_sector_size,
    fault_device_characteristics,
    fault_shm_map,
    fault_shm_lock,
    fault_shm_barrier,
    fault_shm_unmap,
    fault_fetch,
    fault_unfetch,
};

static int fault_open(sqlite3_vfs *pv, sqlite3_filename name, sqlite3_file *pf, int flags,
                      int *out_flags)
{
    fault_file *f = (fault_file *)pf;
    memset(f, 0, sizeof *f);
    f->real = (sqlite3_file *)&f[1];
    int rc = fault_orig->xOpen(fault_orig, name, f->real, flags, out_flags);
    if (rc == SQLITE_OK)
        f->base.pMethods = &fault_io;
    return rc;
}

static int fault_delete(sqlite3_vfs *pv, const char *name, int sync)
{
    return fault_orig->xDelete(fault_orig, name, sync);
}
static int fault_access(sqlite3_vfs *pv, const char *name, int flags, int *out)
{
    return fault_orig->xAccess(fault_orig, name, flags, out);
}
static int fault_full_pathname(sqlite3_vfs *pv, const char *name, int n, char *out)
{
    return fault_orig->xFullPathname(fault_orig, name, n, out);
}
static int fault_randomness(sqlite3_vfs *pv, int n, char *out)
{
    return fault_orig->xRandomness(fault_orig, n, out);
}
static int fault_sleep(sqlite3_vfs *pv, int us)
{
    return fault_orig->xSleep(fault_orig, us);
}
static int fault_current_time(sqlite3_vfs *pv, double *t)
{
    return fault_orig->xCurrentTime(fault_orig, t);
}
static int fault_get_last_error(sqlite3_vfs *pv, int n, char *msg)
{
    return fault_orig->xGetLastError(fault_orig, n, msg);
}
static int fault_current_time64(sqlite3_vfs *pv, sqlite3_int64 *t)
{
    return fault_orig->xCurrentTimeInt64(fault_orig, t);
}

int fault_vfs_register(void)
{
    if (fault_orig)
        return 0;
    sqlite3_initialize();
    sqlite3_vfs *orig = sqlite3_vfs_find("unix");
    if (!orig)
        return -1;
    fault_vfs = (sqlite3_vfs){
        .iVersion = 2,
        .szOsFile = (int)sizeof(fault_file) + orig->szOsFile,
        .mxPathname = orig->mxPathname,
        .zName = FAULT_VFS_NAME,
        .xOpen = fault_open,
        .xDelete = fault_delete,
        .xAccess = fault_access,
        .xFullPathname = fault_full_pathname,
        .xRandomness = fault_randomness,
        .xSleep = fault_sleep,
        .xCurrentTime = fault_current_time,
        .xGetLastError = fault_get_last_error,
        .xCurrentTimeInt64 = fault_current_time64,
    };
    fault_orig = orig;
    if (sqlite3_vfs_register(&fault_vfs, 0) != SQLITE_OK) {
        fault_orig = NULL;
        return -1;
    }
    return 0;
}
