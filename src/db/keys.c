/*
 * keys.c — key material of libzqlite: the keyring of one connection, the
 * file header that tells how a database's key is derived, and the per-file
 * keys the VFS encrypts with.
 *
 * Key hierarchy (all secrets in sodium_malloc memory, wiped before free):
 *
 *   secret      the passphrase, or the 32 bytes of a raw "x'<64 hex>'" key
 *   master      Argon2id(secret, salt, opslimit, memlimit)   (raw: = secret)
 *   page_key    BLAKE2b-256(key = master, "zqlite page key\0" || db_id)
 *   mask_key    BLAKE2b-256(key = master, "zqlite mask key\0" || db_id)
 *   kcv         BLAKE2b-256(key = master, "zqlite key check" || header[0..64))
 *
 * Deriving page keys from the per-file db id means two files never share an
 * AES key even when a user reuses a raw key or a salt, so the random-nonce
 * budget (docs/zqlite-format.md) is per file. The key check value lets an
 * open fail with ZQLITE_WRONG_KEY before a single page is read, and covers
 * the KDF parameters, salt and db id: editing any of them reads as a wrong key.
 *
 * A ring caches a few master keys by (kdf, salt, costs) because Argon2id is
 * deliberately slow and one connection may touch several files with the same
 * salt (a database, a VACUUM INTO copy, the temporary file of an import).
 */
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vfs.h"

#define KEY_CACHE_SLOTS 4

typedef struct key_cache_entry {
    int used;
    uint8_t kdf;
    uint64_t opslimit, memlimit;
    uint8_t salt[VFS_SALT_BYTES];
    uint8_t *master; /* sodium memory, VFS_KEY_BYTES */
} key_cache_entry;

struct key_ring {
    pthread_mutex_t lock;
    int raw;
    uint8_t *secret; /* sodium memory */
    size_t secret_len;
    /* Parameters for databases this ring creates; the salt is drawn once. */
    uint64_t new_opslimit, new_memlimit;
    uint8_t new_salt[VFS_SALT_BYTES];
    key_cache_entry cache[KEY_CACHE_SLOTS];
    int next_victim;
};

static const uint8_t key_magic[8] = {'Z', 'Q', 'L', 'I', 'T', 'E', 'D', 'B'};
static const char sqlite_magic[16] = "SQLite format 3";

static key_wipe_observer wipe_observer;
static void *wipe_observer_ctx;

void key_set_wipe_observer(key_wipe_observer fn, void *ctx)
{
    wipe_observer = fn;
    wipe_observer_ctx = ctx;
}

void key_secret_free(void *buf, size_t len)
{
    if (!buf)
        return;
    sodium_memzero(buf, len);
    if (wipe_observer)
        wipe_observer(buf, len, wipe_observer_ctx);
    sodium_free(buf);
}

static int key_init_sodium(char *msg, size_t cap)
{
    if (sodium_init() < 0) {
        snprintf(msg, cap, "libsodium initialisation failed");
        return ZQLITE_ERROR;
    }
    return ZQLITE_OK;
}

/* A raw key is exactly x'<64 hex digits>' (as SQLCipher spells it). */
static int key_parse_raw(const char *key, size_t len, uint8_t *out, char *msg, size_t cap)
{
    if (len != 67 || key[66] != '\'') {
        snprintf(msg, cap, "raw key must be x'<64 hex digits>' (got %zu characters)", len);
        return ZQLITE_MISUSE;
    }
    size_t bin_len = 0;
    const char *end = NULL;
    if (sodium_hex2bin(out, VFS_KEY_BYTES, key + 2, 64, NULL, &bin_len, &end) != 0 ||
        bin_len != VFS_KEY_BYTES || end != key + 66) {
        snprintf(msg, cap, "raw key must be x'<64 hex digits>': non-hex digit at position %td",
                 end ? end - key : 2);
        return ZQLITE_MISUSE;
    }
    return ZQLITE_OK;
}

int key_ring_new(const char *key, size_t key_len, uint64_t opslimit, size_t memlimit,
                 key_ring **out, char *msg, size_t msg_cap)
{
    *out = NULL;
    int rc = key_init_sodium(msg, msg_cap);
    if (rc != ZQLITE_OK)
        return rc;
    if (!key || key_len == 0) {
        snprintf(msg, msg_cap, "empty key");
        return ZQLITE_MISUSE;
    }
    if (opslimit == 0)
        opslimit = KEY_DEFAULT_OPSLIMIT;
    if (memlimit == 0)
        memlimit = KEY_DEFAULT_MEMLIMIT;
    if (opslimit < crypto_pwhash_OPSLIMIT_MIN || opslimit > KEY_MAX_OPSLIMIT ||
        memlimit < crypto_pwhash_MEMLIMIT_MIN || memlimit > KEY_MAX_MEMLIMIT) {
        snprintf(msg, msg_cap,
                 "Argon2id cost out of range: opslimit %llu (allowed %u..%u), memlimit %zu "
                 "(allowed %u..%llu bytes)",
                 (unsigned long long)opslimit, (unsigned)crypto_pwhash_OPSLIMIT_MIN,
                 KEY_MAX_OPSLIMIT, memlimit, (unsigned)crypto_pwhash_MEMLIMIT_MIN,
                 (unsigned long long)KEY_MAX_MEMLIMIT);
        return ZQLITE_MISUSE;
    }
    key_ring *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(msg, msg_cap, "out of memory");
        return ZQLITE_NOMEM;
    }
    pthread_mutex_init(&r->lock, NULL);
    r->new_opslimit = opslimit;
    r->new_memlimit = memlimit;
    randombytes_buf(r->new_salt, sizeof r->new_salt);
    r->raw = key_len >= 2 && (key[0] == 'x' || key[0] == 'X') && key[1] == '\'';
    r->secret_len = r->raw ? VFS_KEY_BYTES : key_len;
    r->secret = sodium_malloc(r->secret_len);
    if (!r->secret) {
        key_ring_free(r);
        snprintf(msg, msg_cap, "out of locked memory for the key");
        return ZQLITE_NOMEM;
    }
    if (r->raw) {
        rc = key_parse_raw(key, key_len, r->secret, msg, msg_cap);
        if (rc != ZQLITE_OK) {
            key_ring_free(r);
            return rc;
        }
    } else {
        memcpy(r->secret, key, key_len);
    }
    *out = r;
    return ZQLITE_OK;
}

void key_ring_free(key_ring *r)
{
    if (!r)
        return;
    for (int i = 0; i < KEY_CACHE_SLOTS; i++)
        key_secret_free(r->cache[i].master, VFS_KEY_BYTES);
    key_secret_free(r->secret, r->secret_len);
    sodium_memzero(r->new_salt, sizeof r->new_salt);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

int key_ring_is_raw(const key_ring *r)
{
    return r->raw;
}

/* ---- header -------------------------------------------------------------- */

static void put16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 8), p[1] = (uint8_t)v;
}
static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (24 - 8 * i));
}
static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}
static uint32_t get16(const uint8_t *p)
{
    return (uint32_t)p[0] << 8 | p[1];
}
static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) << 32 | get32(p + 4);
}

/* Byte offsets of the header fields (docs/zqlite-format.md). */
enum {
    HDR_MAGIC = 0,
    HDR_VERSION = 8,
    HDR_SIZE = 10,
    HDR_CIPHER = 12,
    HDR_KDF = 13,
    HDR_RESERVE = 14,
    HDR_FLAGS = 15,
    HDR_OPSLIMIT = 16,
    HDR_MEMLIMIT = 24,
    HDR_SALT = 32,
    HDR_DBID = 48,
    HDR_AUTH_END = 64, /* bytes [0, 64) are covered by the key check value */
    HDR_KCV = 64,
    HDR_PAGE_SIZE = 96,
    HDR_USED = 100
};

static void key_header_encode(const key_header *h, uint8_t *out)
{
    memset(out, 0, VFS_HEADER_SIZE);
    memcpy(out + HDR_MAGIC, key_magic, sizeof key_magic);
    put16(out + HDR_VERSION, h->version);
    put16(out + HDR_SIZE, 0); /* 0 means 4096 (the field cannot hold 65536 sizes) */
    out[HDR_CIPHER] = h->cipher;
    out[HDR_KDF] = h->kdf;
    out[HDR_RESERVE] = h->reserve;
    put64(out + HDR_OPSLIMIT, h->opslimit);
    put64(out + HDR_MEMLIMIT, h->memlimit);
    memcpy(out + HDR_SALT, h->salt, VFS_SALT_BYTES);
    memcpy(out + HDR_DBID, h->dbid, VFS_DBID_BYTES);
    memcpy(out + HDR_KCV, h->kcv, VFS_KCV_BYTES);
    put32(out + HDR_PAGE_SIZE, h->page_size);
}

int key_header_parse(const uint8_t *buf, key_header *h, char *msg, size_t cap)
{
    if (memcmp(buf, sqlite_magic, sizeof sqlite_magic) == 0) {
        snprintf(msg, cap, "a plain SQLite database, not encrypted");
        return ZQLITE_NOT_ENCRYPTED;
    }
    if (memcmp(buf, key_magic, sizeof key_magic) != 0) {
        snprintf(msg, cap, "wrong key or not a zqlite database");
        return ZQLITE_WRONG_KEY;
    }
    memset(h, 0, sizeof *h);
    h->version = (uint16_t)get16(buf + HDR_VERSION);
    if (h->version != VFS_FORMAT_VERSION) {
        snprintf(msg, cap, "header: format version %u is not supported (this build reads %u)",
                 h->version, VFS_FORMAT_VERSION);
        return ZQLITE_CORRUPT;
    }
    h->cipher = buf[HDR_CIPHER];
    h->kdf = buf[HDR_KDF];
    h->reserve = buf[HDR_RESERVE];
    h->opslimit = get64(buf + HDR_OPSLIMIT);
    h->memlimit = get64(buf + HDR_MEMLIMIT);
    memcpy(h->salt, buf + HDR_SALT, VFS_SALT_BYTES);
    memcpy(h->dbid, buf + HDR_DBID, VFS_DBID_BYTES);
    memcpy(h->kcv, buf + HDR_KCV, VFS_KCV_BYTES);
    h->page_size = get32(buf + HDR_PAGE_SIZE);
    const char *bad = NULL;
    if (get16(buf + HDR_SIZE) != 0)
        bad = "header size";
    else if (h->cipher != VFS_CIPHER_AES256GCM)
        bad = "cipher id";
    else if (h->kdf != KEY_KDF_RAW && h->kdf != KEY_KDF_ARGON2ID)
        bad = "kdf id";
    else if (h->reserve != VFS_RESERVE)
        bad = "reserve bytes";
    else if (buf[HDR_FLAGS] != 0)
        bad = "flags";
    else if (h->kdf == KEY_KDF_ARGON2ID &&
             (h->opslimit < crypto_pwhash_OPSLIMIT_MIN || h->opslimit > KEY_MAX_OPSLIMIT)) {
        /* Checked before any derivation: a forged cost costs nothing. */
        snprintf(msg, cap, "header: Argon2id opslimit %llu is outside %u..%u",
                 (unsigned long long)h->opslimit, (unsigned)crypto_pwhash_OPSLIMIT_MIN,
                 KEY_MAX_OPSLIMIT);
        return ZQLITE_CORRUPT;
    } else if (h->kdf == KEY_KDF_ARGON2ID &&
               (h->memlimit < crypto_pwhash_MEMLIMIT_MIN || h->memlimit > KEY_MAX_MEMLIMIT)) {
        snprintf(msg, cap, "header: Argon2id memlimit %llu bytes is outside %u..%llu",
                 (unsigned long long)h->memlimit, (unsigned)crypto_pwhash_MEMLIMIT_MIN,
                 (unsigned long long)KEY_MAX_MEMLIMIT);
        return ZQLITE_CORRUPT;
    }
    if (h->page_size < VFS_MIN_PAGE || h->page_size > VFS_MAX_PAGE ||
        (h->page_size & (h->page_size - 1)) != 0)
        h->page_size = 0; /* an unauthenticated hint: ignored, every size is tried */
    if (bad) {
        snprintf(msg, cap, "header: invalid %s", bad);
        return ZQLITE_CORRUPT;
    }
    for (size_t i = HDR_USED; i < VFS_HEADER_SIZE; i++) {
        if (buf[i] != 0) {
            snprintf(msg, cap, "header: byte %zu of the reserved area is not zero", i);
            return ZQLITE_CORRUPT;
        }
    }
    return ZQLITE_OK;
}

/* ---- derivation ---------------------------------------------------------- */

static void key_prf(uint8_t *out, size_t out_len, const uint8_t *master, const char *label,
                    const uint8_t *data, size_t data_len)
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, master, VFS_KEY_BYTES, out_len);
    crypto_generichash_update(&st, (const uint8_t *)label, 16);
    crypto_generichash_update(&st, data, data_len);
    crypto_generichash_final(&st, out, out_len);
    sodium_memzero(&st, sizeof st);
}

static void key_compute_kcv(const uint8_t *master, const key_header *h, uint8_t *kcv)
{
    uint8_t buf[VFS_HEADER_SIZE];
    key_header tmp = *h;
    memset(tmp.kcv, 0, sizeof tmp.kcv);
    key_header_encode(&tmp, buf);
    key_prf(kcv, VFS_KCV_BYTES, master, "zqlite key check", buf, HDR_AUTH_END);
}

/* Returns the cached master key for h (owned by the ring), deriving it when
 * missing. Called with r->lock held. */
static int key_master_locked(key_ring *r, const key_header *h, const uint8_t **master, char *msg,
                             size_t cap)
{
    if ((h->kdf == KEY_KDF_RAW) != (r->raw != 0)) {
        snprintf(msg, cap, "wrong key or not a zqlite database");
        return ZQLITE_WRONG_KEY;
    }
    if (r->raw) {
        *master = r->secret;
        return ZQLITE_OK;
    }
    for (int i = 0; i < KEY_CACHE_SLOTS; i++) {
        key_cache_entry *e = &r->cache[i];
        if (e->used && e->kdf == h->kdf && e->opslimit == h->opslimit &&
            e->memlimit == h->memlimit && memcmp(e->salt, h->salt, VFS_SALT_BYTES) == 0) {
            *master = e->master;
            return ZQLITE_OK;
        }
    }
    key_cache_entry *e = &r->cache[r->next_victim];
    r->next_victim = (r->next_victim + 1) % KEY_CACHE_SLOTS;
    if (!e->master) {
        e->master = sodium_malloc(VFS_KEY_BYTES);
        if (!e->master) {
            snprintf(msg, cap, "out of locked memory for the key");
            return ZQLITE_NOMEM;
        }
    }
    e->used = 0;
    if (crypto_pwhash(e->master, VFS_KEY_BYTES, (const char *)r->secret, r->secret_len, h->salt,
                      h->opslimit, (size_t)h->memlimit, crypto_pwhash_ALG_ARGON2ID13) != 0) {
        sodium_memzero(e->master, VFS_KEY_BYTES);
        snprintf(msg, cap, "Argon2id failed (out of memory for memlimit %llu bytes?)",
                 (unsigned long long)h->memlimit);
        return ZQLITE_NOMEM;
    }
    e->used = 1;
    e->kdf = h->kdf;
    e->opslimit = h->opslimit;
    e->memlimit = h->memlimit;
    memcpy(e->salt, h->salt, VFS_SALT_BYTES);
    *master = e->master;
    return ZQLITE_OK;
}

static int key_file_keys_new(const uint8_t *master, const uint8_t *dbid, key_file_keys **out,
                             char *msg, size_t cap)
{
    key_file_keys *k = sodium_malloc(sizeof *k);
    if (!k) {
        snprintf(msg, cap, "out of locked memory for the key");
        return ZQLITE_NOMEM;
    }
    key_prf(k->page_key, VFS_KEY_BYTES, master, "zqlite page key", dbid, VFS_DBID_BYTES);
    key_prf(k->mask_key, VFS_KEY_BYTES, master, "zqlite mask key", dbid, VFS_DBID_BYTES);
    memcpy(k->dbid, dbid, VFS_DBID_BYTES);
    k->refs = 1;
    *out = k;
    return ZQLITE_OK;
}

int key_file_open(key_ring *r, const key_header *h, key_file_keys **keys, char *msg, size_t cap)
{
    const uint8_t *master = NULL;
    uint8_t kcv[VFS_KCV_BYTES];
    pthread_mutex_lock(&r->lock);
    int rc = key_master_locked(r, h, &master, msg, cap);
    if (rc == ZQLITE_OK) {
        key_compute_kcv(master, h, kcv);
        if (sodium_memcmp(kcv, h->kcv, VFS_KCV_BYTES) != 0) {
            snprintf(msg, cap, "wrong key or not a zqlite database");
            rc = ZQLITE_WRONG_KEY;
        } else {
            rc = key_file_keys_new(master, h->dbid, keys, msg, cap);
        }
    }
    pthread_mutex_unlock(&r->lock);
    return rc;
}

int key_header_new(key_ring *r, uint32_t page_size, uint8_t out[VFS_HEADER_SIZE],
                   key_file_keys **keys, char *msg, size_t cap)
{
    key_header h = {.version = VFS_FORMAT_VERSION,
                    .cipher = VFS_CIPHER_AES256GCM,
                    .kdf = r->raw ? KEY_KDF_RAW : KEY_KDF_ARGON2ID,
                    .reserve = VFS_RESERVE,
                    .opslimit = r->raw ? 0 : r->new_opslimit,
                    .memlimit = r->raw ? 0 : r->new_memlimit,
                    .page_size = page_size};
    memcpy(h.salt, r->new_salt, VFS_SALT_BYTES);
    randombytes_buf(h.dbid, VFS_DBID_BYTES);
    const uint8_t *master = NULL;
    pthread_mutex_lock(&r->lock);
    int rc = key_master_locked(r, &h, &master, msg, cap);
    if (rc == ZQLITE_OK) {
        key_compute_kcv(master, &h, h.kcv);
        rc = key_file_keys_new(master, h.dbid, keys, msg, cap);
    }
    pthread_mutex_unlock(&r->lock);
    if (rc == ZQLITE_OK)
        key_header_encode(&h, out);
    return rc;
}

void key_file_keys_release(key_file_keys *k)
{
    if (k && --k->refs == 0)
        key_secret_free(k, sizeof *k);
}

void key_mask(const key_file_keys *k, char tag, uint64_t a, const uint8_t *b, size_t b_len,
              uint8_t out[8])
{
    uint8_t msg[1 + 8 + 16];
    msg[0] = (uint8_t)tag;
    put64(msg + 1, a);
    if (b_len > 16)
        b_len = 16;
    memcpy(msg + 9, b, b_len);
    crypto_generichash(out, 8, msg, 9 + b_len, k->mask_key, VFS_KEY_BYTES);
}
