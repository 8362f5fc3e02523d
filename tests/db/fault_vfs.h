/*
 * fault_vfs.h — an I/O fault-injection VFS for tests, in the manner of
 * SQLite's own test VFSes: "zqfault" wraps "unix" and counts every read,
 * write, sync, truncate and file lock call (xRead, xWrite, xSync, xTruncate,
 * xLock) on every file it opens; the call numbered fail_at (from 1) fails
 * with the matching SQLITE_IOERR_* code. In sticky mode that call and every
 * later counted call fail, like a disk that went away or a power cut after
 * that point (nothing is written any more).
 *
 * zqlite's encryption VFS sits on it through zqlite_open_options.base_vfs =
 * FAULT_VFS_NAME. One process-wide counter: use from one thread at a time.
 *
 *   fault_vfs_register();
 *   fault_vfs_arm(0, 0);            count only
 *   ... workload ...; long n = fault_vfs_calls();
 *   fault_vfs_arm(k, 0);            the k-th call fails once
 */
#ifndef FAULT_VFS_H
#define FAULT_VFS_H

#define FAULT_VFS_NAME "zqfault"

/* Registers "zqfault" (not as the default); idempotent. 0 on success. */
int fault_vfs_register(void);
/* Resets the call counter; fail_at 0 injects nothing. sticky: the fail_at-th
 * call and all later ones fail. */
void fault_vfs_arm(long fail_at, int sticky);
/* Counted calls since the last fault_vfs_arm. */
long fault_vfs_calls(void);
/* Calls that failed since the last fault_vfs_arm. */
long fault_vfs_failures(void);

#endif
