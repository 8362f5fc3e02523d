/*
 * vfs.c — the encryption VFS of libzqlite: a shim over the default unix VFS
 * (after SQLite's ext/misc/cksumvfs.c) that seals every database page with
 * AES-256-GCM on its way to disk and opens it on its way back.
 *
 * On-disk contract (full byte layout in docs/zqlite-format.md):
 *
 *   main database   [4096-byte plaintext header][page 1][page 2]...
 *                   The header (magic "ZQLITEDB", format version, KDF id and
 *                   costs, salt, db id, key check value, page-size hint) sits
 *                   in front of SQLite's page 1, so SQLite's own 100-byte
 *                   header is encrypted like everything else; offsets SQLite
 *                   asks for are shifted by 4096 here.
 *   every page      bytes [0, P-28) ciphertext, [P-28, P-16) random 96-bit
 *                   nonce, [P-16, P) GCM tag. The 28 bytes are SQLite's page
 *                   "reserve" (byte 20 of its header, set through
 *                   SQLITE_FCNTL_RESERVE_BYTES), which SQLite never touches.
 *                   Associated data: db id (16) || page number (4, BE) ||
 *                   file kind (1: 0 database, 1 journal, 2 WAL), so a page
 *                   moved to another position, file kind or database fails.
 *   rollback journal SQLite writes a record as three calls: page number (4),
 *                   page image (P bytes at an offset = 4 mod 8), checksum (4).
 *                   The image is sealed as above; the checksum (a sum of
 *                   plaintext bytes) is XORed with a BLAKE2b mask keyed by the
 *                   file and bound to the record's nonce. Headers and
 *                   super-journal names pass through.
 *   WAL             frame = 24-byte header + P-byte image at 32 + k*(P+24).
 *                   Images are sealed; the two checksum words of each frame
 *                   header (computed by SQLite over plaintext) are masked with
 *                   BLAKE2b(mask key, offset, salts). A write that would touch
 *                   page bytes in any other shape is refused (fail closed).
 *   temp files      never reach this VFS: zqlite sets temp_store=MEMORY, and
 *                   xOpen refuses temporary files outright.
 *   mmap            xFetch always declines, so SQLite reads through xRead.
 *
 * Page 1 is read in pieces (bytes 24..39 at the start of each read
 * transaction in rollback mode, 100 bytes at open): the last full page 1 is
 * cached with its ciphertext, and a piece is served from the cache when the
 * ciphertext on disk is unchanged, so page 1 is not decrypted once per
 * transaction.
 *
 * Each file keeps its own EVP contexts (key schedule done once at open) and
 * a scratch buffer for sealed output; decryption is in place in SQLite's
 * buffer. Nonces come from OpenSSL's DRBG in batches of 64, discarded after
 * fork().
 */
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "vfs.h"

enum { VFS_MAIN = 0, VFS_JOURNAL = 1, VFS_WAL = 2, VFS_PASS = 3 };

#define VFS_NONCE_BATCH  64
#define VFS_AAD_BYTES    (VFS_DBID_BYTES + 5)
#define VFS_WAL_HDR      32
#define VFS_FRAME_HDR    24
#define VFS_PENDING_BYTE 0x40000000u /* SQLite's lock-byte offset */

typedef struct vfs_instance {
    sqlite3_vfs base;
    sqlite3_vfs *orig;
    key_ring *ring;
    char name[32];
} vfs_instance;

typedef struct vfs_file vfs_file;
struct vfs_file {
    sqlite3_file base;
    vfs_instance *vfs;
    int kind;
    key_file_keys *keys;
    uint8_t *pending_hdr; /* main: header of a new file, written with page 1 */
    uint32_t page_size;   /* main: hint (0 = none); journal/WAL: from their own header */
    uint32_t hint;        /* main: the page-size hint as it is on disk */
    EVP_CIPHER_CTX *enc, *dec;
    uint8_t *scratch;
    size_t scratch_cap;
    uint8_t nonces[VFS_NONCE_BATCH * VFS_NONCE_BYTES];
    int nonce_left;
    unsigned nonce_gen;
    uint8_t *p1_ct, *p1_pt; /* main: last page 1, sealed and open */
    uint32_t p1_size, p1_cap;
    sqlite3_int64 rec_off;               /* journal/WAL: offset and page number of the */
    uint32_t rec_pgno;                   /* last record/frame header seen */
    sqlite3_int64 page_end;              /* journal: end of the last page record seen, */
    uint8_t page_nonce[VFS_NONCE_BYTES]; /* and its nonce (checksum mask) */
    uint8_t wal_hdr[VFS_FRAME_HDR];      /* WAL: a masked frame header held back */
    sqlite3_int64 wal_hdr_off;           /* to go out with its page in one write */
    bool wal_hdr_held;
    lock_entry *lock; /* main: the rekey lock (lock.c) */
    const char *path; /* main: SQLite's full path name, valid while open */
    sqlite3_file *real;
};

static const sqlite3_io_methods vfs_io_methods;

/* ---- errors and statistics ----------------------------------------------- */

static _Thread_local int vfs_err_status;
static _Thread_local char vfs_err_msg[256];
static _Thread_local vfs_stats vfs_counters;

void vfs_clear_error(void)
{
    vfs_err_status = ZQLITE_OK;
    vfs_err_msg[0] = '\0';
}
int vfs_last_status(void)
{
    return vfs_err_status;
}
const char *vfs_last_error(void)
{
    return vfs_err_msg;
}
void vfs_get_stats(vfs_stats *out)
{
    *out = vfs_counters;
}

void vfs_set_error(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(vfs_err_msg, sizeof vfs_err_msg, fmt, ap);
    va_end(ap);
    vfs_err_status = status;
}

/* ---- small helpers ------------------------------------------------------- */

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static void put_be32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (24 - 8 * i));
}
static int vfs_is_page_size(int n)
{
    return n >= 512 && n <= 65536 && (n & (n - 1)) == 0;
}

static const char *vfs_kind_name(int kind)
{
    return kind == VFS_JOURNAL ? "journal" : kind == VFS_WAL ? "WAL" : "database";
}

static atomic_uint vfs_fork_gen;
static pthread_once_t vfs_fork_once = PTHREAD_ONCE_INIT;
static void vfs_after_fork(void)
{
    atomic_fetch_add(&vfs_fork_gen, 1);
}
static void vfs_register_fork(void)
{
    pthread_atfork(NULL, NULL, vfs_after_fork);
}

/* A fresh random 96-bit nonce. Batches are dropped in a forked child so
 * parent and child never use the same nonces. */
static int vfs_next_nonce(vfs_file *f, uint8_t *out)
{
    unsigned gen = atomic_load(&vfs_fork_gen);
    if (f->nonce_left == 0 || f->nonce_gen != gen) {
        if (RAND_bytes(f->nonces, sizeof f->nonces) != 1)
            return -1;
        f->nonce_left = VFS_NONCE_BATCH;
        f->nonce_gen = gen;
    }
    f->nonce_left--;
    memcpy(out, f->nonces + (size_t)f->nonce_left * VFS_NONCE_BYTES, VFS_NONCE_BYTES);
    return 0;
}

static int vfs_scratch(vfs_file *f, size_t n)
{
    if (f->scratch_cap >= n)
        return 0;
    uint8_t *p = realloc(f->scratch, n);
    if (!p)
        return -1;
    f->scratch = p;
    f->scratch_cap = n;
    return 0;
}

static void vfs_aad(const vfs_file *f, uint32_t pgno, int kind, uint8_t *aad)
{
    memcpy(aad, f->keys->dbid, VFS_DBID_BYTES);
    put_be32(aad + VFS_DBID_BYTES, pgno);
    aad[VFS_DBID_BYTES + 4] = (uint8_t)kind;
}

/* Seals the page in (size ps) into out; out may not alias in. */
static int vfs_seal(vfs_file *f, const uint8_t *in, uint8_t *out, uint32_t ps, uint32_t pgno,
                    int kind)
{
    int n = (int)ps - (int)VFS_RESERVE, len = 0;
    uint8_t aad[VFS_AAD_BYTES];
    uint8_t *nonce = out + n;
    vfs_aad(f, pgno, kind, aad);
    if (vfs_next_nonce(f, nonce) != 0 || EVP_EncryptInit_ex(f->enc, NULL, NULL, NULL, nonce) != 1 ||
        EVP_EncryptUpdate(f->enc, NULL, &len, aad, sizeof aad) != 1 ||
        EVP_EncryptUpdate(f->enc, out, &len, in, n) != 1 ||
        EVP_EncryptFinal_ex(f->enc, out + len, &len) != 1 ||
        EVP_CIPHER_CTX_ctrl(f->enc, EVP_CTRL_GCM_GET_TAG, VFS_TAG_BYTES,
                            out + n + VFS_NONCE_BYTES) != 1) {
        vfs_set_error(ZQLITE_ERROR, "%s page %u: encryption failed", vfs_kind_name(kind), pgno);
        return -1;
    }
    vfs_counters.pages_encrypted++;
    return 0;
}

/* Opens a sealed page in place. On failure the buffer is zeroed so no
 * unauthenticated plaintext leaves this function. */
static int vfs_unseal(vfs_file *f, uint8_t *buf, uint32_t ps, uint32_t pgno, int kind)
{
    int n = (int)ps - (int)VFS_RESERVE, len = 0;
    uint8_t aad[VFS_AAD_BYTES];
    vfs_aad(f, pgno, kind, aad);
    int ok = EVP_DecryptInit_ex(f->dec, NULL, NULL, NULL, buf + n) == 1 &&
             EVP_DecryptUpdate(f->dec, NULL, &len, aad, sizeof aad) == 1 &&
             EVP_DecryptUpdate(f->dec, buf, &len, buf, n) == 1 &&
             EVP_CIPHER_CTX_ctrl(f->dec, EVP_CTRL_GCM_SET_TAG, VFS_TAG_BYTES,
                                 buf + n + VFS_NONCE_BYTES) == 1 &&
             EVP_DecryptFinal_ex(f->dec, buf + len, &len) == 1;
    if (!ok) {
        memset(buf, 0, ps);
        return -1;
    }
    /* SQLite's WAL frame checksum covers the reserve bytes too: hand pages
     * back with a zero reserve, so every page SQLite writes has one. */
    memset(buf + n, 0, VFS_RESERVE);
    vfs_counters.pages_decrypted++;
    return 0;
}

static int vfs_auth_error(int kind, uint32_t pgno)
{
    vfs_set_error(ZQLITE_CORRUPT, "%s page %u: authentication failed (wrong key or modified file)",
                  vfs_kind_name(kind), pgno);
    return SQLITE_IOERR_DATA;
}

static void vfs_free_ctx(vfs_file *f)
{
    EVP_CIPHER_CTX_free(f->enc); /* OpenSSL cleanses the key schedule */
    EVP_CIPHER_CTX_free(f->dec);
    f->enc = f->dec = NULL;
}

static int vfs_init_ctx(vfs_file *f)
{
    vfs_free_ctx(f);
    f->enc = EVP_CIPHER_CTX_new();
    f->dec = EVP_CIPHER_CTX_new();
    if (!f->enc || !f->dec ||
        EVP_EncryptInit_ex(f->enc, EVP_aes_256_gcm(), NULL, f->keys->page_key, NULL) != 1 ||
        EVP_DecryptInit_ex(f->dec, EVP_aes_256_gcm(), NULL, f->keys->page_key, NULL) != 1) {
        vfs_free_ctx(f);
        vfs_set_error(ZQLITE_NOMEM, "cannot create the AES-256-GCM context");
        return SQLITE_NOMEM;
    }
    return SQLITE_OK;
}

static void vfs_set_keys(vfs_file *f, key_file_keys *k)
{
    key_file_keys_release(f->keys);
    f->keys = k;
}

/* ---- main database file -------------------------------------------------- */

static int vfs_real_size(vfs_file *f, sqlite3_int64 *sz)
{
    return f->real->pMethods->xFileSize(f->real, sz);
}

/* Reads and checks the header on disk, replacing whatever keys f had. */
static int vfs_main_load(vfs_file *f)
{
    uint8_t hdr[VFS_HEADER_SIZE];
    char msg[200];
    key_header h;
    int rc = f->real->pMethods->xRead(f->real, hdr, sizeof hdr, 0);
    if (rc == SQLITE_IOERR_SHORT_READ) {
        int plain = memcmp(hdr, "SQLite format 3", 16) == 0;
        vfs_set_error(plain ? ZQLITE_NOT_ENCRYPTED : ZQLITE_CORRUPT, "%s",
                      plain ? "a plain SQLite database, not encrypted"
                            : "file truncated inside the 4096-byte zqlite header");
        return SQLITE_NOTADB;
    }
    if (rc != SQLITE_OK)
        return rc;
    int st = key_header_parse(hdr, &h, msg, sizeof msg);
    key_file_keys *k = NULL;
    if (st == ZQLITE_OK)
        st = key_file_open(f->vfs->ring, &h, &k, msg, sizeof msg);
    if (st != ZQLITE_OK) {
        vfs_set_error(st, "%s", msg);
        return st == ZQLITE_NOMEM ? SQLITE_NOMEM : SQLITE_NOTADB;
    }
    vfs_set_keys(f, k);
    free(f->pending_hdr);
    f->pending_hdr = NULL;
    f->page_size = h.page_size;
    f->hint = be32(hdr + 96);
    f->p1_size = 0;
    return vfs_init_ctx(f);
}

/* A new file's header is written just before its first page. Another process
 * may have created the file since we opened it empty: SQLite holds the write
 * lock here, so the size check is race-free. */
static int vfs_main_prepare_write(vfs_file *f)
{
    if (!f->pending_hdr)
        return SQLITE_OK;
    sqlite3_int64 sz = 0;
    int rc = vfs_real_size(f, &sz);
    if (rc != SQLITE_OK)
        return rc;
    if (sz > 0)
        return vfs_main_load(f);
    put_be32(f->pending_hdr + 96, f->page_size);
    rc = f->real->pMethods->xWrite(f->real, f->pending_hdr, VFS_HEADER_SIZE, 0);
    if (rc == SQLITE_OK) {
        f->hint = f->page_size;
        free(f->pending_hdr);
        f->pending_hdr = NULL;
    }
    return rc;
}

/* For reads: a file we opened empty may have been created by someone else. */
static int vfs_main_prepare_read(vfs_file *f, sqlite3_int64 *sz)
{
    int rc = vfs_real_size(f, sz);
    if (rc == SQLITE_OK && f->pending_hdr && *sz > 0)
        rc = vfs_main_load(f);
    return rc;
}

static int vfs_p1_reserve(uint32_t size, vfs_file *f)
{
    if (f->p1_cap >= size)
        return 0;
    uint8_t *ct = realloc(f->p1_ct, size);
    if (!ct)
        return -1;
    f->p1_ct = ct;
    uint8_t *pt = realloc(f->p1_pt, size);
    if (!pt)
        return -1;
    f->p1_pt = pt;
    f->p1_cap = size;
    return 0;
}

static void vfs_p1_store(vfs_file *f, const uint8_t *ct, const uint8_t *pt, uint32_t size)
{
    if (vfs_p1_reserve(size, f) != 0) {
        f->p1_size = 0;
        return;
    }
    memcpy(f->p1_ct, ct, size);
    memcpy(f->p1_pt, pt, size);
    f->p1_size = size;
}

/* Makes f->p1_pt the current page 1, reading it at the hinted size first and
 * then at every other size (the hint is not authenticated and may be stale
 * after a crash during a page-size change). */
static int vfs_main_page1(vfs_file *f, sqlite3_int64 sz)
{
    uint32_t sizes[9], n = 0;
    if (f->page_size)
        sizes[n++] = f->page_size;
    for (uint32_t s = VFS_MIN_PAGE; s <= VFS_MAX_PAGE; s *= 2)
        if (s != f->page_size)
            sizes[n++] = s;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t ps = sizes[i];
        if ((sqlite3_int64)(VFS_HEADER_SIZE + ps) > sz)
            continue;
        if (vfs_scratch(f, ps) != 0 || vfs_p1_reserve(ps, f) != 0)
            return SQLITE_NOMEM;
        int rc = f->real->pMethods->xRead(f->real, f->scratch, (int)ps, VFS_HEADER_SIZE);
        if (rc != SQLITE_OK)
            return rc;
        if (f->p1_size == ps && memcmp(f->scratch, f->p1_ct, ps) == 0) {
            vfs_counters.page1_cache_hits++;
            return SQLITE_OK;
        }
        memcpy(f->p1_pt, f->scratch, ps);
        if (vfs_unseal(f, f->p1_pt, ps, 1, VFS_MAIN) == 0) {
            memcpy(f->p1_ct, f->scratch, ps);
            f->p1_size = ps;
            f->page_size = ps;
            return SQLITE_OK;
        }
        f->p1_size = 0;
    }
    if (sz < (sqlite3_int64)(VFS_HEADER_SIZE + VFS_MIN_PAGE)) {
        vfs_set_error(ZQLITE_CORRUPT, "database page 1: truncated (file is %lld bytes)",
                      (long long)sz);
        return SQLITE_IOERR_DATA;
    }
    return vfs_auth_error(VFS_MAIN, 1);
}

/* Serves a piece of page 1 (SQLite's header fields): from the cache when the
 * sealed page on disk is unchanged, else through vfs_main_page1. */
static int vfs_main_read_piece(vfs_file *f, uint8_t *buf, int amt, sqlite3_int64 off)
{
    uint32_t ps = f->p1_size;
    if (ps && off + amt <= ps && vfs_scratch(f, ps) == 0 &&
        f->real->pMethods->xRead(f->real, f->scratch, (int)ps, VFS_HEADER_SIZE) == SQLITE_OK &&
        memcmp(f->scratch, f->p1_ct, ps) == 0) {
        vfs_counters.page1_cache_hits++;
        memcpy(buf, f->p1_pt + off, (size_t)amt);
        return SQLITE_OK;
    }
    sqlite3_int64 sz = 0;
    int rc = vfs_real_size(f, &sz);
    if (rc != SQLITE_OK)
        return rc;
    if (sz <= (sqlite3_int64)VFS_HEADER_SIZE) {
        memset(buf, 0, (size_t)amt);
        return SQLITE_IOERR_SHORT_READ; /* an empty database */
    }
    if ((rc = vfs_main_page1(f, sz)) != SQLITE_OK)
        return rc;
    if (off + amt > f->p1_size) {
        vfs_set_error(ZQLITE_CORRUPT, "database: read of %d bytes at %lld beyond page 1", amt,
                      (long long)off);
        return SQLITE_IOERR_READ;
    }
    memcpy(buf, f->p1_pt + off, (size_t)amt);
    return SQLITE_OK;
}

static int vfs_main_read(vfs_file *f, uint8_t *buf, int amt, sqlite3_int64 off)
{
    sqlite3_int64 sz = 0;
    int rc;
    if (f->pending_hdr) { /* opened empty: created by another process since? */
        if ((rc = vfs_main_prepare_read(f, &sz)) != SQLITE_OK)
            return rc;
        if (f->pending_hdr) {
            memset(buf, 0, (size_t)amt);
            return SQLITE_IOERR_SHORT_READ;
        }
    }
    if (!vfs_is_page_size(amt) || off % amt != 0) {
        if (off >= 0 && amt > 0 && off + amt <= VFS_MAX_PAGE)
            return vfs_main_read_piece(f, buf, amt, off);
        vfs_set_error(ZQLITE_IO, "database: unexpected read of %d bytes at offset %lld", amt,
                      (long long)off);
        return SQLITE_IOERR_READ;
    }
    uint32_t pgno = (uint32_t)(off / amt) + 1;
    rc = f->real->pMethods->xRead(f->real, buf, amt, off + VFS_HEADER_SIZE);
    if (rc == SQLITE_IOERR_SHORT_READ) {
        /* Past the end SQLite expects zeros; a partial page is damage. */
        if ((rc = vfs_real_size(f, &sz)) != SQLITE_OK)
            return rc;
        if (sz <= off + (sqlite3_int64)VFS_HEADER_SIZE)
            return SQLITE_IOERR_SHORT_READ;
        vfs_set_error(ZQLITE_CORRUPT, "database page %u: truncated (file is %lld bytes)", pgno,
                      (long long)sz);
        return SQLITE_IOERR_DATA;
    }
    if (rc != SQLITE_OK)
        return rc;
    if (pgno == 1) {
        if (vfs_scratch(f, (size_t)amt) != 0)
            return SQLITE_NOMEM;
        memcpy(f->scratch, buf, (size_t)amt);
    }
    if (vfs_unseal(f, buf, (uint32_t)amt, pgno, VFS_MAIN) != 0)
        return vfs_auth_error(VFS_MAIN, pgno);
    if (pgno == 1) {
        vfs_p1_store(f, f->scratch, buf, (uint32_t)amt);
        f->page_size = (uint32_t)amt;
    }
    return SQLITE_OK;
}

/* zqlite needs the page reserve for nonce and tag; SQLite's page 1 says how
 * much it leaves (byte 20). Checked on every page 1 that is written. */
static int vfs_check_reserve(const uint8_t *page1)
{
    if (page1[20] >= VFS_RESERVE)
        return SQLITE_OK;
    vfs_set_error(ZQLITE_ERROR,
                  "database reserves %u bytes per page but encryption needs %u "
                  "(copy plain databases in with zqlite_import_plain)",
                  page1[20], VFS_RESERVE);
    return SQLITE_IOERR_WRITE;
}

static int vfs_main_write(vfs_file *f, const uint8_t *buf, int amt, sqlite3_int64 off)
{
    if (!vfs_is_page_size(amt) || off % amt != 0) {
        vfs_set_error(ZQLITE_IO,
                      "database: refusing a write of %d bytes at offset %lld (not a page)", amt,
                      (long long)off);
        return SQLITE_IOERR_WRITE;
    }
    uint32_t pgno = (uint32_t)(off / amt) + 1;
    int rc;
    if (pgno == 1) {
        if ((rc = vfs_check_reserve(buf)) != SQLITE_OK)
            return rc;
        f->page_size = (uint32_t)amt;
        if (f->hint != (uint32_t)amt && !f->pending_hdr) {
            /* keep the hint current (or repair it); see vfs_main_page1 */
            uint8_t hint[4];
            put_be32(hint, (uint32_t)amt);
            if ((rc = f->real->pMethods->xWrite(f->real, hint, 4, 96)) != SQLITE_OK)
                return rc;
            f->hint = (uint32_t)amt;
        }
    }
    if ((rc = vfs_main_prepare_write(f)) != SQLITE_OK)
        return rc;
    if (vfs_scratch(f, (size_t)amt) != 0)
        return SQLITE_NOMEM;
    if (vfs_seal(f, buf, f->scratch, (uint32_t)amt, pgno, VFS_MAIN) != 0)
        return SQLITE_IOERR_WRITE;
    rc = f->real->pMethods->xWrite(f->real, f->scratch, amt, off + VFS_HEADER_SIZE);
    if (rc == SQLITE_OK && pgno == 1)
        vfs_p1_store(f, f->scratch, buf, (uint32_t)amt);
    return rc;
}

/* ---- journal and WAL ----------------------------------------------------- */

/* Page number of a journal record / WAL frame whose header is at hdr_off:
 * remembered from the call that just wrote or read it, else read back. */
static int vfs_record_pgno(vfs_file *f, sqlite3_int64 hdr_off, uint32_t *pgno)
{
    if (f->rec_off == hdr_off) {
        *pgno = f->rec_pgno;
        return SQLITE_OK;
    }
    uint8_t b[4];
    int rc = f->real->pMethods->xRead(f->real, b, 4, hdr_off);
    if (rc != SQLITE_OK)
        return rc == SQLITE_IOERR_SHORT_READ ? SQLITE_IOERR_READ : rc;
    *pgno = be32(b);
    return SQLITE_OK;
}

static const uint8_t journal_magic[8] = {0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7};

static void vfs_journal_cksum_mask(vfs_file *f, sqlite3_int64 off, uint8_t *v)
{
    uint8_t m[8];
    key_mask(f->keys, 'j', (uint64_t)off, f->page_nonce, VFS_NONCE_BYTES, m);
    for (int i = 0; i < 4; i++)
        v[i] ^= m[i];
}

static int vfs_journal_is_page(vfs_file *f, int amt, sqlite3_int64 off)
{
    return f->page_size && (uint32_t)amt == f->page_size && off % 8 == 4;
}

static void vfs_journal_note_header(vfs_file *f, const uint8_t *buf, int amt, sqlite3_int64 off)
{
    if (off % 512 == 0 && amt >= 28 && memcmp(buf, journal_magic, 8) == 0 &&
        vfs_is_page_size((int)be32(buf + 24)))
        f->page_size = be32(buf + 24);
}

static int vfs_journal_write(vfs_file *f, const uint8_t *buf, int amt, sqlite3_int64 off)
{
    vfs_journal_note_header(f, buf, amt, off);
    if (amt == 4) {
        uint8_t v[4];
        memcpy(v, buf, 4);
        if (off == f->page_end)
            vfs_journal_cksum_mask(f, off, v);
        else
            f->rec_off = off, f->rec_pgno = be32(buf);
        return f->real->pMethods->xWrite(f->real, v, 4, off);
    }
    if (vfs_journal_is_page(f, amt, off)) {
        uint32_t pgno;
        int rc = vfs_record_pgno(f, off - 4, &pgno);
        if (rc != SQLITE_OK)
            return rc;
        if (pgno != VFS_PENDING_BYTE / f->page_size + 1) { /* else a super-journal name */
            if (vfs_scratch(f, (size_t)amt) != 0)
                return SQLITE_NOMEM;
            if (vfs_seal(f, buf, f->scratch, (uint32_t)amt, pgno, VFS_JOURNAL) != 0)
                return SQLITE_IOERR_WRITE;
            f->page_end = off + amt;
            memcpy(f->page_nonce, f->scratch + amt - VFS_RESERVE, VFS_NONCE_BYTES);
            return f->real->pMethods->xWrite(f->real, f->scratch, amt, off);
        }
    }
    return f->real->pMethods->xWrite(f->real, buf, amt, off);
}

static int vfs_journal_read(vfs_file *f, uint8_t *buf, int amt, sqlite3_int64 off)
{
    int rc = f->real->pMethods->xRead(f->real, buf, amt, off);
    if (rc != SQLITE_OK)
        return rc; /* a short read is a truncated journal: SQLite stops there */
    vfs_journal_note_header(f, buf, amt, off);
    if (amt == 4) {
        if (off == f->page_end)
            vfs_journal_cksum_mask(f, off, buf);
        else
            f->rec_off = off, f->rec_pgno = be32(buf);
        return SQLITE_OK;
    }
    if (vfs_journal_is_page(f, amt, off)) {
        uint32_t pgno;
        if ((rc = vfs_record_pgno(f, off - 4, &pgno)) != SQLITE_OK)
            return rc;
        if (pgno == VFS_PENDING_BYTE / f->page_size + 1)
            return SQLITE_OK;
        memcpy(f->page_nonce, buf + amt - VFS_RESERVE, VFS_NONCE_BYTES);
        if (vfs_unseal(f, buf, (uint32_t)amt, pgno, VFS_JOURNAL) != 0)
            return vfs_auth_error(VFS_JOURNAL, pgno);
        f->page_end = off + amt;
    }
    return SQLITE_OK;
}

static void vfs_wal_mask(vfs_file *f, sqlite3_int64 off, uint8_t *hdr)
{
    uint8_t m[8];
    key_mask(f->keys, 'w', (uint64_t)off, hdr + 8, 8, m); /* salts are bytes 8..15 */
    for (int i = 0; i < 8; i++)
        hdr[16 + i] ^= m[i];
}

/* A read inside one frame header that covers some checksum bytes (SQLite's
 * walRewriteChecksums reads the previous frame's 8 checksum bytes alone):
 * the salts that key the mask are read from the header on disk. */
static int vfs_wal_unmask_piece(vfs_file *f, uint8_t *buf, int amt, sqlite3_int64 off)
{
    sqlite3_int64 in = (off - VFS_WAL_HDR) % ((sqlite3_int64)f->page_size + VFS_FRAME_HDR);
    if (in + amt <= 16)
        return SQLITE_OK;
    uint8_t hdr[VFS_FRAME_HDR];
    int rc = f->real->pMethods->xRead(f->real, hdr, VFS_FRAME_HDR, off - in);
    if (rc != SQLITE_OK)
        return rc == SQLITE_IOERR_SHORT_READ ? SQLITE_IOERR_READ : rc;
    uint8_t plain[VFS_FRAME_HDR];
    memcpy(plain, hdr, sizeof hdr);
    vfs_wal_mask(f, off - in, plain);
    for (sqlite3_int64 i = in > 16 ? in : 16; i < in + amt; i++)
        buf[i - in] = plain[i];
    return SQLITE_OK;
}

/* Where a WAL access falls: 0 the WAL header or inside one frame header,
 * 1 exactly one frame header, 2 exactly one page image, 3 exactly one whole
 * frame, -1 anything else touching page bytes. */
static int vfs_wal_shape(const vfs_file *f, int amt, sqlite3_int64 off)
{
    if (off + amt <= VFS_WAL_HDR)
        return 0;
    sqlite3_int64 frame = (sqlite3_int64)f->page_size + VFS_FRAME_HDR;
    if (!f->page_size || off < VFS_WAL_HDR)
        return -1;
    sqlite3_int64 in = (off - VFS_WAL_HDR) % frame;
    if (in == 0 && amt == VFS_FRAME_HDR)
        return 1;
    if (in == VFS_FRAME_HDR && amt == (int)f->page_size)
        return 2;
    if (in == 0 && amt == frame)
        return 3;
    if (in + amt <= VFS_FRAME_HDR)
        return 0;
    return -1;
}

static int vfs_wal_refuse(int amt, sqlite3_int64 off, const char *what)
{
    vfs_set_error(ZQLITE_IO,
                  "WAL: refusing a %s of %d bytes at offset %lld (not a whole frame part)", what,
                  amt, (long long)off);
    return what[0] == 'r' ? SQLITE_IOERR_READ : SQLITE_IOERR_WRITE;
}

/* SQLite writes a frame as its 24-byte header, then its page: two system
 * calls, a fifth of a small commit's cost. The header is held back and goes
 * out with the page; anything else that touches the file first writes it. */
static int vfs_wal_flush(vfs_file *f)
{
    if (!f->wal_hdr_held)
        return SQLITE_OK;
    f->wal_hdr_held = false;
    return f->real->pMethods->xWrite(f->real, f->wal_hdr, VFS_FRAME_HDR, f->wal_hdr_off);
}

static int vfs_wal_write(vfs_file *f, const uint8_t *buf, int amt, sqlite3_int64 off)
{
    if (off == 0 && amt >= 12 && vfs_is_page_size((int)be32(buf + 8)))
        f->page_size = be32(buf + 8);
    int shape = vfs_wal_shape(f, amt, off);
    bool joined = shape == 2 && f->wal_hdr_held && off == f->wal_hdr_off + VFS_FRAME_HDR;
    int rc;
    if (!joined && (rc = vfs_wal_flush(f)) != SQLITE_OK)
        return rc;
    if (shape == 0)
        return f->real->pMethods->xWrite(f->real, buf, amt, off);
    if (shape < 0)
        return vfs_wal_refuse(amt, off, "write");
    uint32_t ps = f->page_size;
    if (shape == 1) {
        memcpy(f->wal_hdr, buf, VFS_FRAME_HDR);
        f->rec_off = off;
        f->rec_pgno = be32(buf);
        vfs_wal_mask(f, off, f->wal_hdr);
        f->wal_hdr_off = off;
        f->wal_hdr_held = true;
        return SQLITE_OK;
    }
    if (vfs_scratch(f, ps + VFS_FRAME_HDR) != 0)
        return SQLITE_NOMEM;
    uint8_t *out = f->scratch;
    if (shape == 3) {
        memcpy(out, buf, VFS_FRAME_HDR);
        f->rec_off = off;
        f->rec_pgno = be32(buf);
        vfs_wal_mask(f, off, out);
    }
    if (joined) {
        memcpy(out, f->wal_hdr, VFS_FRAME_HDR);
        f->wal_hdr_held = false;
    }
    const uint8_t *page = shape == 3 ? buf + VFS_FRAME_HDR : buf;
    uint8_t *dst = shape == 2 && !joined ? out : out + VFS_FRAME_HDR;
    uint32_t pgno;
    if ((rc = vfs_record_pgno(f, shape == 3 ? off : off - VFS_FRAME_HDR, &pgno)) != SQLITE_OK)
        return rc;
    if (pgno == 1 && (rc = vfs_check_reserve(page)) != SQLITE_OK)
        return rc;
    static const uint8_t zero[VFS_RESERVE];
    if (memcmp(page + ps - VFS_RESERVE, zero, VFS_RESERVE) != 0) {
        /* The frame checksum SQLite computed covers these bytes and a
         * read returns zeros there: recovery would drop the frame. */
        vfs_set_error(ZQLITE_ERROR, "WAL page %u: reserve bytes are not zero", pgno);
        return SQLITE_IOERR_WRITE;
    }
    if (vfs_seal(f, page, dst, ps, pgno, VFS_WAL) != 0)
        return SQLITE_IOERR_WRITE;
    if (joined)
        return f->real->pMethods->xWrite(f->real, out, amt + VFS_FRAME_HDR, off - VFS_FRAME_HDR);
    return f->real->pMethods->xWrite(f->real, out, amt, off);
}

static int vfs_wal_read(vfs_file *f, uint8_t *buf, int amt, sqlite3_int64 off)
{
    int rc = vfs_wal_flush(f);
    if (rc != SQLITE_OK)
        return rc;
    int shape = vfs_wal_shape(f, amt, off);
    if (shape < 0 && !(off == 0 && amt >= VFS_WAL_HDR))
        return vfs_wal_refuse(amt, off, "read");
    rc = f->real->pMethods->xRead(f->real, buf, amt, off);
    if (rc != SQLITE_OK)
        return rc;
    if (off == 0) {
        if (amt >= 12 && vfs_is_page_size((int)be32(buf + 8)))
            f->page_size = be32(buf + 8);
        return SQLITE_OK;
    }
    if (shape == 0 && off >= VFS_WAL_HDR)
        return vfs_wal_unmask_piece(f, buf, amt, off);
    if (shape == 1 || shape == 3) {
        vfs_wal_mask(f, off, buf);
        f->rec_off = off;
        f->rec_pgno = be32(buf);
    }
    if (shape == 3) {
        /* Recovery scans frames and stops at the first invalid one; a frame
         * that does not authenticate (torn by a crash) must read as invalid,
         * not as an error. Zeros fail SQLite's frame checksum. */
        (void)vfs_unseal(f, buf + VFS_FRAME_HDR, f->page_size, f->rec_pgno, VFS_WAL);
    } else if (shape == 2) {
        uint32_t pgno;
        if ((rc = vfs_record_pgno(f, off - VFS_FRAME_HDR, &pgno)) != SQLITE_OK)
            return rc;
        if (vfs_unseal(f, buf, f->page_size, pgno, VFS_WAL) != 0)
            return vfs_auth_error(VFS_WAL, pgno);
    }
    return SQLITE_OK;
}

/* ---- io methods ---------------------------------------------------------- */

static int vfs_close(sqlite3_file *pf)
{
    vfs_file *f = (vfs_file *)pf;
    int frc = f->real->pMethods ? vfs_wal_flush(f) : SQLITE_OK;
    int rc = f->real->pMethods ? f->real->pMethods->xClose(f->real) : SQLITE_OK;
    if (rc == SQLITE_OK)
        rc = frc;
    lock_release(f->lock); /* after SQLite's descriptor: see lock.c */
    f->lock = NULL;
    vfs_free_ctx(f);
    vfs_set_keys(f, NULL);
    free(f->pending_hdr);
    free(f->scratch);
    free(f->p1_ct);
    if (f->p1_pt)
        OPENSSL_cleanse(f->p1_pt, f->p1_cap);
    free(f->p1_pt);
    OPENSSL_cleanse(f->nonces, sizeof f->nonces);
    return rc;
}

static int vfs_read(sqlite3_file *pf, void *buf, int amt, sqlite3_int64 off)
{
    vfs_file *f = (vfs_file *)pf;
    switch (f->kind) {
    case VFS_MAIN: return vfs_main_read(f, buf, amt, off);
    case VFS_JOURNAL: return vfs_journal_read(f, buf, amt, off);
    case VFS_WAL: return vfs_wal_read(f, buf, amt, off);
    default: return f->real->pMethods->xRead(f->real, buf, amt, off);
    }
}

static int vfs_write(sqlite3_file *pf, const void *buf, int amt, sqlite3_int64 off)
{
    vfs_file *f = (vfs_file *)pf;
    switch (f->kind) {
    case VFS_MAIN: return vfs_main_write(f, buf, amt, off);
    case VFS_JOURNAL: return vfs_journal_write(f, buf, amt, off);
    case VFS_WAL: return vfs_wal_write(f, buf, amt, off);
    default: return f->real->pMethods->xWrite(f->real, buf, amt, off);
    }
}

static int vfs_truncate(sqlite3_file *pf, sqlite3_int64 size)
{
    vfs_file *f = (vfs_file *)pf;
    if (f->kind == VFS_MAIN) {
        if (f->pending_hdr && size == 0)
            return f->real->pMethods->xTruncate(f->real, 0);
        int rc = vfs_main_prepare_write(f);
        if (rc != SQLITE_OK)
            return rc;
        f->p1_size = 0;
        size += VFS_HEADER_SIZE;
    }
    int rc = vfs_wal_flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xTruncate(f->real, size);
}

static int vfs_sync(sqlite3_file *pf, int flags)
{
    vfs_file *f = (vfs_file *)pf;
    int rc = vfs_wal_flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xSync(f->real, flags);
}

static int vfs_file_size(sqlite3_file *pf, sqlite3_int64 *size)
{
    vfs_file *f = (vfs_file *)pf;
    int rc = vfs_wal_flush(f);
    if (rc == SQLITE_OK)
        rc = f->real->pMethods->xFileSize(f->real, size);
    if (rc == SQLITE_OK && f->kind == VFS_MAIN)
        *size = *size > (sqlite3_int64)VFS_HEADER_SIZE ? *size - VFS_HEADER_SIZE : 0;
    return rc;
}

static int vfs_lock(sqlite3_file *pf, int l)
{
    vfs_file *f = (vfs_file *)pf;
    return f->real->pMethods->xLock(f->real, l);
}
static int vfs_unlock(sqlite3_file *pf, int l)
{
    vfs_file *f = (vfs_file *)pf;
    return f->real->pMethods->xUnlock(f->real, l);
}
static int vfs_check_reserved(sqlite3_file *pf, int *out)
{
    vfs_file *f = (vfs_file *)pf;
    return f->real->pMethods->xCheckReservedLock(f->real, out);
}

/* The file at the path is no longer the one this connection has open
 * (renamed over, moved or deleted): writing would go to a file nobody
 * reads again. */
static int vfs_moved_error(const vfs_file *f)
{
    vfs_set_error(ZQLITE_IO,
                  "%s was replaced or moved since it was opened (rekeyed or restored by another "
                  "program?): nothing was written; reopen the database",
                  f->path);
    return SQLITE_READONLY_DBMOVED;
}

static int vfs_has_moved(vfs_file *f)
{
    int moved = 0;
    if (f->real->pMethods->xFileControl(f->real, SQLITE_FCNTL_HAS_MOVED, &moved) != SQLITE_OK)
        moved = 0; /* a base VFS that cannot tell */
    return moved;
}

static int vfs_file_control(sqlite3_file *pf, int op, void *arg)
{
    vfs_file *f = (vfs_file *)pf;
    if (op == SQLITE_FCNTL_MMAP_SIZE) {
        /* Memory-mapped pages would bypass decryption. */
        sqlite3_int64 zero = 0;
        int rc = f->real->pMethods->xFileControl(f->real, op, &zero);
        *(sqlite3_int64 *)arg = 0;
        return rc;
    }
    if (op == SQLITE_FCNTL_SIZE_HINT && f->kind == VFS_MAIN) {
        sqlite3_int64 sz = *(sqlite3_int64 *)arg + VFS_HEADER_SIZE;
        return f->real->pMethods->xFileControl(f->real, op, &sz);
    }
    int rc = f->real->pMethods->xFileControl(f->real, op, arg);
    /* SQLite asks before it opens a rollback journal, and fails the write
     * with SQLITE_READONLY_DBMOVED: give that a message. */
    if (op == SQLITE_FCNTL_HAS_MOVED && rc == SQLITE_OK && f->kind == VFS_MAIN && *(int *)arg)
        (void)vfs_moved_error(f);
    if (op == SQLITE_FCNTL_VFSNAME && rc == SQLITE_OK) {
        char *inner = *(char **)arg;
        *(char **)arg = sqlite3_mprintf("%s/%z", f->vfs->name, inner);
    }
    return rc;
}

static int vfs_sector_size(sqlite3_file *pf)
{
    vfs_file *f = (vfs_file *)pf;
    return f->real->pMethods->xSectorSize(f->real);
}
static int vfs_device_characteristics(sqlite3_file *pf)
{
    vfs_file *f = (vfs_file *)pf;
    return f->real->pMethods->xDeviceCharacteristics(f->real);
}
static int vfs_shm_map(sqlite3_file *pf, int pg, int pgsz, int extend, void volatile **pp)
{
    vfs_file *f = (vfs_file *)pf;
    return f->real->pMethods->xShmMap(f->real, pg, pgsz, extend, pp);
}
/* In WAL mode SQLite never asks whether the file moved, so the check is made
 * when the WAL write lock (shm lock 0) is taken: before any frame of a
 * write transaction, checkpoint or recovery is written. One stat() per
 * write transaction (its cost: docs/zqlite-format.md). */
static int vfs_shm_lock(sqlite3_file *pf, int ofst, int n, int flags)
{
    vfs_file *f = (vfs_file *)pf;
    int rc = f->real->pMethods->xShmLock(f->real, ofst, n, flags);
    if (rc == SQLITE_OK && ofst == 0 && flags == (SQLITE_SHM_LOCK | SQLITE_SHM_EXCLUSIVE) &&
        f->kind == VFS_MAIN && vfs_has_moved(f)) {
        f->real->pMethods->xShmLock(f->real, ofst, n, SQLITE_SHM_UNLOCK | SQLITE_SHM_EXCLUSIVE);
        return vfs_moved_error(f);
    }
    return rc;
}
static void vfs_shm_barrier(sqlite3_file *pf)
{
    vfs_file *f = (vfs_file *)pf;
    f->real->pMethods->xShmBarrier(f->real);
}
static int vfs_shm_unmap(sqlite3_file *pf, int del)
{
    vfs_file *f = (vfs_file *)pf;
    return f->real->pMethods->xShmUnmap(f->real, del);
}
static int vfs_fetch(sqlite3_file *pf, sqlite3_int64 off, int amt, void **pp)
{
    *pp = NULL; /* no mmap: pages must pass through vfs_read */
    return SQLITE_OK;
}
static int vfs_unfetch(sqlite3_file *pf, sqlite3_int64 off, void *p)
{
    return SQLITE_OK;
}

static const sqlite3_io_methods vfs_io_methods = {3,
                                                  vfs_close,
                                                  vfs_read,
                                                  vfs_write,
                                                  vfs_truncate,
                                                  vfs_sync,
                                                  vfs_file_size,
                                                  vfs_lock,
                                                  vfs_unlock,
                                                  vfs_check_reserved,
                                                  vfs_file_control,
                                                  vfs_sector_size,
                                                  vfs_device_characteristics,
                                                  vfs_shm_map,
                                                  vfs_shm_lock,
                                                  vfs_shm_barrier,
                                                  vfs_shm_unmap,
                                                  vfs_fetch,
                                                  vfs_unfetch};

/* ---- vfs methods --------------------------------------------------------- */

static int vfs_open_main(vfs_file *f)
{
    sqlite3_int64 sz = 0;
    int rc = vfs_real_size(f, &sz);
    if (rc != SQLITE_OK)
        return rc;
    if (sz > 0)
        return vfs_main_load(f);
    /* The unix VFS reports a 1-byte file as empty (SQLite ticket #3260):
     * ask the file system, so that only a really empty file becomes a new
     * database (the path names the file we opened: vfs_open_real). */
    struct stat fs;
    if (stat(f->path, &fs) == 0 && fs.st_size > 0) {
        vfs_set_error(ZQLITE_CORRUPT,
                      "file truncated inside the 4096-byte zqlite header (%lld "
                      "byte%s)",
                      (long long)fs.st_size, fs.st_size == 1 ? "" : "s");
        return SQLITE_NOTADB;
    }
    /* New database: keys now, header on disk with the first page. */
    char msg[200];
    key_file_keys *k = NULL;
    f->pending_hdr = malloc(VFS_HEADER_SIZE);
    if (!f->pending_hdr)
        return SQLITE_NOMEM;
    f->page_size = 4096;
    int st = key_header_new(f->vfs->ring, f->page_size, f->pending_hdr, &k, msg, sizeof msg);
    if (st != ZQLITE_OK) {
        vfs_set_error(st, "%s", msg);
        return SQLITE_NOMEM;
    }
    vfs_set_keys(f, k);
    return vfs_init_ctx(f);
}

/* Opens the file on the base VFS; a main database also gets its rekey lock,
 * and is opened again when the path was renamed over in between (a rekey
 * that finished while we waited for its lock). */
static int vfs_open_real(vfs_instance *v, sqlite3_filename name, vfs_file *f, int flags,
                         int *out_flags)
{
    for (int attempt = 0;; attempt++) {
        int rc = v->orig->xOpen(v->orig, name, f->real, flags, out_flags);
        if (rc != SQLITE_OK || f->kind != VFS_MAIN)
            return rc;
        f->path = name;
        int st = lock_acquire(name, &f->lock);
        if (st == ZQLITE_OK && !vfs_has_moved(f))
            return SQLITE_OK;
        lock_release(f->lock);
        f->lock = NULL;
        f->real->pMethods->xClose(f->real);
        f->real->pMethods = NULL;
        if (st != ZQLITE_OK)
            return st == ZQLITE_BUSY ? SQLITE_BUSY : SQLITE_CANTOPEN;
        if (attempt == 3) {
            vfs_set_error(ZQLITE_BUSY, "%s was replaced while it was being opened", name);
            return SQLITE_BUSY;
        }
    }
}

static int vfs_open(sqlite3_vfs *pv, sqlite3_filename name, sqlite3_file *pf, int flags,
                    int *out_flags)
{
    vfs_instance *v = (vfs_instance *)pv;
    vfs_file *f = (vfs_file *)pf;
    memset(f, 0, sizeof *f);
    f->vfs = v;
    f->real = (sqlite3_file *)&f[1];
    f->rec_off = f->page_end = -1;
    if (!name || (flags & (SQLITE_OPEN_TEMP_DB | SQLITE_OPEN_TEMP_JOURNAL | SQLITE_OPEN_SUBJOURNAL |
                           SQLITE_OPEN_TRANSIENT_DB))) {
        vfs_set_error(ZQLITE_ERROR,
                      "temporary files are disabled for encrypted databases (temp_store must "
                      "stay MEMORY)");
        return SQLITE_CANTOPEN;
    }
    f->kind = (flags & SQLITE_OPEN_MAIN_DB)        ? VFS_MAIN
              : (flags & SQLITE_OPEN_MAIN_JOURNAL) ? VFS_JOURNAL
              : (flags & SQLITE_OPEN_WAL)          ? VFS_WAL
                                                   : VFS_PASS;
    vfs_file *main = NULL;
    if (f->kind == VFS_JOURNAL || f->kind == VFS_WAL) {
        main = (vfs_file *)sqlite3_database_file_object(name);
        if (!main || main->base.pMethods != &vfs_io_methods || !main->keys) {
            vfs_set_error(ZQLITE_ERROR, "%s opened without its encrypted database",
                          vfs_kind_name(f->kind));
            return SQLITE_CANTOPEN;
        }
    }
    int rc = vfs_open_real(v, name, f, flags, out_flags);
    if (rc != SQLITE_OK)
        return rc;
    if (f->kind == VFS_MAIN) {
        rc = vfs_open_main(f);
    } else if (main) {
        main->keys->refs++;
        f->keys = main->keys;
        f->page_size = main->page_size;
        rc = vfs_init_ctx(f);
    }
    if (rc != SQLITE_OK) {
        vfs_close(pf);
        return rc;
    }
    f->base.pMethods = &vfs_io_methods;
    return SQLITE_OK;
}

static int vfs_delete(sqlite3_vfs *pv, const char *name, int sync)
{
    sqlite3_vfs *o = ((vfs_instance *)pv)->orig;
    return o->xDelete(o, name, sync);
}
static int vfs_access(sqlite3_vfs *pv, const char *name, int flags, int *out)
{
    sqlite3_vfs *o = ((vfs_instance *)pv)->orig;
    return o->xAccess(o, name, flags, out);
}
static int vfs_full_pathname(sqlite3_vfs *pv, const char *name, int n, char *out)
{
    sqlite3_vfs *o = ((vfs_instance *)pv)->orig;
    return o->xFullPathname(o, name, n, out);
}
static void *vfs_dlopen(sqlite3_vfs *pv, const char *name)
{
    sqlite3_vfs *o = ((vfs_instance *)pv)->orig;
    return o->xDlOpen(o, name);
}
static void vfs_dlerror(sqlite3_vfs *pv, int n, char *msg)
{
    sqlite3_vfs *o = ((vfs_instance *)pv)->orig;
    o->xDlError(o, n, msg);
}
static void (*vfs_dlsym(sqlite3_vfs *pv, void *h, const char *sym))(void)
{
    sqlite3_vfs *o = ((vfs_instance *)pv)->orig;
    return o->xDlSym(o, h, sym);
}
static void vfs_dlclose(sqlite3_vfs *pv, void *h)
{
    sqlite3_vfs *o = ((vfs_instance *)pv)->orig;
    o->xDlClose(o, h);
}
static int vfs_randomness(sqlite3_vfs *pv, int n, char *out)
{
    sqlite3_vfs *o = ((vfs_instance *)pv)->orig;
    return o->xRandomness(o, n, out);
}
static int vfs_sleep(sqlite3_vfs *pv, int us)
{
    sqlite3_vfs *o = ((vfs_instance *)pv)->orig;
    return o->xSleep(o, us);
}
static int vfs_current_time(sqlite3_vfs *pv, double *t)
{
    sqlite3_vfs *o = ((vfs_instance *)pv)->orig;
    return o->xCurrentTime(o, t);
}
static int vfs_get_last_error(sqlite3_vfs *pv, int n, char *msg)
{
    sqlite3_vfs *o = ((vfs_instance *)pv)->orig;
    return o->xGetLastError(o, n, msg);
}
static int vfs_current_time64(sqlite3_vfs *pv, sqlite3_int64 *t)
{
    sqlite3_vfs *o = ((vfs_instance *)pv)->orig;
    return o->xCurrentTimeInt64(o, t);
}

static atomic_uint vfs_serial;

sqlite3_vfs *vfs_create(key_ring *ring, const char *base)
{
    pthread_once(&vfs_fork_once, vfs_register_fork);
    sqlite3_vfs *orig = sqlite3_vfs_find(base);
    vfs_instance *v = calloc(1, sizeof *v);
    if (!v || !orig) {
        free(v);
        return NULL;
    }
    snprintf(v->name, sizeof v->name, "zqlite-%u", atomic_fetch_add(&vfs_serial, 1));
    v->orig = orig;
    v->ring = ring;
    sqlite3_vfs *b = &v->base;
    b->iVersion = 2;
    b->szOsFile = (int)sizeof(vfs_file) + orig->szOsFile;
    b->mxPathname = orig->mxPathname;
    b->zName = v->name;
    b->pAppData = v;
    b->xOpen = vfs_open;
    b->xDelete = vfs_delete;
    b->xAccess = vfs_access;
    b->xFullPathname = vfs_full_pathname;
    b->xDlOpen = vfs_dlopen;
    b->xDlError = vfs_dlerror;
    b->xDlSym = vfs_dlsym;
    b->xDlClose = vfs_dlclose;
    b->xRandomness = vfs_randomness;
    b->xSleep = vfs_sleep;
    b->xCurrentTime = vfs_current_time;
    b->xGetLastError = vfs_get_last_error;
    b->xCurrentTimeInt64 = vfs_current_time64;
    if (sqlite3_vfs_register(b, 0) != SQLITE_OK) {
        free(v);
        return NULL;
    }
    return b;
}

lock_entry *vfs_main_lock(sqlite3 *sq)
{
    sqlite3_file *pf = NULL;
    if (sqlite3_file_control(sq, "main", SQLITE_FCNTL_FILE_POINTER, &pf) != SQLITE_OK || !pf ||
        pf->pMethods != &vfs_io_methods)
        return NULL;
    return ((vfs_file *)pf)->lock;
}

void vfs_destroy(sqlite3_vfs *vfs)
{
    if (!vfs)
        return;
    sqlite3_vfs_unregister(vfs);
    free(vfs);
}
