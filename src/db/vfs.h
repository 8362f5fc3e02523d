/*
 * vfs.h — the map of libzqlite's internals.
 *
 *   keys.c     the keyring of one connection: the secret (passphrase or raw
 *              key) in sodium memory, Argon2id derivation with a small cache
 *              of master keys, the 4096-byte file header (parse, build, key
 *              check value) and the per-file page and mask keys.
 *   vfs.c      the encryption VFS shim over the default unix VFS: page I/O of
 *              the main database, rollback journal and WAL goes through
 *              AES-256-GCM; everything else is forwarded.
 *   lock.c     the rekey lock: a shared OFD lock on one header byte held by
 *              every connection, made exclusive by rekey; one descriptor per
 *              file per process (SQLite's close() trap, see the file).
 *   zqlite.c   the public C API (open/close, execute, statements, errors).
 *   convert.c  rekey (new file + atomic rename) and plain <-> encrypted copies.
 *
 * The on-disk format is documented in docs/zqlite-format.md and at the top
 * of vfs.c. Nothing here prints; failures inside the VFS leave a status and a
 * message in thread-local storage (vfs_last_status / vfs_last_error), because
 * SQLite only passes integer codes up from a VFS.
 */
#ifndef ZQLITE_VFS_H
#define ZQLITE_VFS_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "zqlite.h"

/* ---- format constants ---------------------------------------------------- */

#define VFS_HEADER_SIZE    4096u /* plaintext header in front of page 1 */
#define VFS_FORMAT_VERSION 1u
#define VFS_NONCE_BYTES    12u
#define VFS_TAG_BYTES      16u
#define VFS_RESERVE        (VFS_NONCE_BYTES + VFS_TAG_BYTES) /* page reserve bytes we need */
#define VFS_KEY_BYTES      32u
#define VFS_SALT_BYTES     16u
#define VFS_DBID_BYTES     16u
#define VFS_KCV_BYTES      32u
#define VFS_MIN_PAGE       512u
#define VFS_MAX_PAGE       65536u

enum { KEY_KDF_RAW = 0, KEY_KDF_ARGON2ID = 1 };
enum { VFS_CIPHER_AES256GCM = 1 };

/* Default Argon2id cost for new databases: ~0.2 s and 64 MiB on a 2020s CPU. */
#define KEY_DEFAULT_OPSLIMIT 3u
#define KEY_DEFAULT_MEMLIMIT (64u * 1024u * 1024u)
/* Limits accepted from a file header, so a crafted header cannot ask for
 * more than a few seconds and 256 MiB before the key check; creation refuses
 * the same costs, so every database zqlite makes stays openable. */
#define KEY_MAX_OPSLIMIT ZQLITE_KDF_MAX_OPSLIMIT
#define KEY_MAX_MEMLIMIT ((uint64_t)ZQLITE_KDF_MAX_MEMLIMIT)

/* The decoded header (bytes 0..99 of the file; see vfs.c). */
typedef struct key_header {
    uint16_t version;
    uint8_t cipher;
    uint8_t kdf;
    uint8_t reserve;
    uint64_t opslimit;
    uint64_t memlimit;
    uint8_t salt[VFS_SALT_BYTES];
    uint8_t dbid[VFS_DBID_BYTES];
    uint8_t kcv[VFS_KCV_BYTES];
    uint32_t page_size; /* hint only: not authenticated (see docs); 0 when the
                           header's is not a valid page size */
} key_header;

/* Per-file secrets, in one sodium_malloc block, shared by reference between
 * a main database file and its journal/WAL (refs counts the holders). */
typedef struct key_file_keys {
    uint8_t page_key[VFS_KEY_BYTES]; /* AES-256-GCM key for this file's pages */
    uint8_t mask_key[VFS_KEY_BYTES]; /* BLAKE2b key masking SQLite's checksums */
    uint8_t dbid[VFS_DBID_BYTES];
    int refs;
} key_file_keys;

typedef struct key_ring key_ring;

/* ---- keys.c -------------------------------------------------------------- */

/* Copies key (passphrase, or "x'<64 hex>'") into sodium memory. opslimit /
 * memlimit are the Argon2id costs for databases created through this ring
 * (0 = default). Returns a zqlite_status; *msg explains a failure. */
int key_ring_new(const char *key, size_t key_len, uint64_t opslimit, size_t memlimit,
                 key_ring **out, char *msg, size_t msg_cap);
/* Wipes every secret and frees the ring. NULL is a no-op. */
void key_ring_free(key_ring *ring);
int key_ring_is_raw(const key_ring *ring);

/* Parses a 4096-byte header. Returns ZQLITE_OK, ZQLITE_NOT_ENCRYPTED (a plain
 * SQLite file), ZQLITE_WRONG_KEY (not a zqlite file) or ZQLITE_CORRUPT. */
int key_header_parse(const uint8_t *buf, key_header *h, char *msg, size_t msg_cap);
/* Fills a header for a new database (fresh db id; salt and costs shared by
 * every file this ring creates, so one Argon2id run covers them), derives
 * its keys and writes the 4096 header bytes to out. */
int key_header_new(key_ring *ring, uint32_t page_size, uint8_t out[VFS_HEADER_SIZE],
                   key_file_keys **keys, char *msg, size_t msg_cap);
/* Derives (or takes from the cache) the master key for h, checks the key
 * check value and returns the file's keys (refs = 1). ZQLITE_WRONG_KEY when
 * the secret does not open this header. */
int key_file_open(key_ring *ring, const key_header *h, key_file_keys **keys, char *msg,
                  size_t msg_cap);
void key_file_keys_release(key_file_keys *k);
/* 8 bytes of BLAKE2b(mask_key, tag || a || b) used to hide SQLite's
 * plaintext checksums in journal and WAL files. */
void key_mask(const key_file_keys *k, char tag, uint64_t a, const uint8_t *b, size_t b_len,
              uint8_t out[8]);

/* Test hook: when set, called with every secret buffer right after it was
 * wiped and before it is freed (never with live key bytes). */
typedef void (*key_wipe_observer)(const void *buf, size_t len, void *ctx);
void key_set_wipe_observer(key_wipe_observer fn, void *ctx);
/* sodium_memzero + observer + sodium_free. */
void key_secret_free(void *buf, size_t len);

/* ---- lock.c -------------------------------------------------------------- */

/* The rekey lock byte: inside the plaintext header, which SQLite never locks. */
#define LOCK_BYTE    128
#define LOCK_WAIT_MS 10000 /* how long an open waits for a running rekey */
/* LOCK_WAIT_MS, shortened by tests that wait for the give-up. */
extern int lock_wait_ms;

typedef struct lock_entry lock_entry;

/* Takes this process's shared hold on the file at path (one more reference
 * when it already has one), waiting up to lock_wait_ms while a rekey holds
 * it. Returns a zqlite_status; a failure leaves the VFS error set
 * (ZQLITE_BUSY "being rekeyed" after the wait). */
int lock_acquire(const char *path, lock_entry **out);
/* Drops one reference; the last closes the descriptor and its lock. */
void lock_release(lock_entry *e);
/* For rekey: turns the lock exclusive without waiting, and takes a reference
 * of its own that keeps it over the connection's close. ZQLITE_BUSY (msg
 * says who) when another connection of this process or any other process
 * has the file open. */
int lock_begin_exclusive(lock_entry *e, const char *path, char *msg, size_t cap);
/* Back to shared (rekey failed: the old file is reopened). The reference
 * taken by lock_begin_exclusive stays: lock_release drops it. */
void lock_end_exclusive(lock_entry *e);

/* ---- vfs.c --------------------------------------------------------------- */

/* Creates and registers a VFS named "zqlite-<n>" that encrypts with ring
 * (borrowed: it must outlive the VFS) over the registered VFS named base.
 * NULL when out of memory or base is not registered. */
sqlite3_vfs *vfs_create(key_ring *ring, const char *base);
/* Unregisters and frees; every connection using it must be closed. */
void vfs_destroy(sqlite3_vfs *vfs);
/* The rekey lock held by sq's main database file (NULL when sq is not on an
 * encryption VFS). */
lock_entry *vfs_main_lock(sqlite3 *sq);

/* Thread-local record of the last VFS failure on this thread. */
void vfs_clear_error(void);
int vfs_last_status(void); /* ZQLITE_OK when none */
const char *vfs_last_error(void);
void vfs_set_error(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Statistics for tests and the benchmark (this thread's counters). */
typedef struct vfs_stats {
    uint64_t pages_encrypted;
    uint64_t pages_decrypted;
    uint64_t page1_cache_hits;
} vfs_stats;
void vfs_get_stats(vfs_stats *out);

#endif
