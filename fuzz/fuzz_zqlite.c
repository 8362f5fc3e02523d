/*
 * fuzz_zqlite.c — libFuzzer harness for the encryption VFS on hostile files.
 *
 * At start-up it builds, with a raw key (no Argon2 cost) and 1 KiB pages,
 * three genuine on-disk states of one small database:
 *
 *   0  the database alone (rollback journal mode, clean close);
 *   1  a WAL-mode database with committed frames still in its -wal;
 *   2  a database caught in the middle of a transaction with its hot
 *      -journal (pages spilled to the file, the originals in the journal).
 *
 * Each input picks a state (first byte) and is then read as a list of edits
 * to the main file or its -wal/-journal: overwrite bytes, flip bits, cut or
 * extend the file, copy a block within the file or from the clean database
 * (sealed pages moved to another place or replayed from another version).
 * The files are written to a directory under /dev/shm, opened with the
 * right key, and put through integrity_check, a few SELECTs and a write.
 * Errors are the expected outcome; a crash, an over-read, a leak or a hang
 * is a bug.
 *
 * The images carry fresh random salts and nonces in every process, so a
 * saved crash input reproduces the same edits on equivalent (not
 * byte-identical) files.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zqlite.h"

#define KEY "x'000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f'"

typedef struct image {
    unsigned char *p;
    size_t len;
} image;

/* [state][0] main file, [state][1] -wal or -journal (empty for state 0) */
static image images[3][2];
static const char *const side_suffix[3] = {"-journal", "-wal", "-journal"};
static char dir[256], db_path[300];

static void die(const char *what)
{
    fprintf(stderr, "fuzz_zqlite: %s: %s\n", what, zqlite_errmsg(NULL));
    abort();
}

static void exec_or_die(zqlite_db *db, const char *sql)
{
    zqlite_result *r = zqlite_execute(db, sql);
    if (!r || r->status != ZQLITE_OK) {
        fprintf(stderr, "fuzz_zqlite: %s: %s\n", sql, r ? r->error_message : "out of memory");
        abort();
    }
    zqlite_free_result(r);
}

static image read_image(const char *path)
{
    image im = {NULL, 0};
    FILE *f = fopen(path, "rb");
    if (!f)
        return im;
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && st.st_size > 0 && (im.p = malloc((size_t)st.st_size))) {
        im.len = fread(im.p, 1, (size_t)st.st_size, f);
    }
    fclose(f);
    return im;
}

static void remove_files(void)
{
    static const char *const suffix[] = {"", "-journal", "-wal", "-shm"};
    char name[320];
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "%s%s", db_path, suffix[i]);
        unlink(name);
    }
}

static void capture(int state)
{
    char side[320];
    snprintf(side, sizeof side, "%s%s", db_path, side_suffix[state]);
    images[state][0] = read_image(db_path);
    images[state][1] = read_image(side);
    if (!images[state][0].len || (state > 0 && !images[state][1].len)) {
        fprintf(stderr, "fuzz_zqlite: state %d: no %s to capture\n", state, side);
        abort();
    }
}

static zqlite_db *open_db(int create, int cache_kib)
{
    zqlite_open_options o = zqlite_default_open_options();
    o.create = create;
    o.page_size = 1024;
    o.cache_kib = cache_kib;
    return zqlite_open_v2(db_path, KEY, strlen(KEY), &o);
}

static void build_images(void)
{
    remove_files();
    zqlite_db *db = open_db(1, 0);
    if (!db)
        die("create");
    exec_or_die(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, body BLOB);"
                    "CREATE INDEX t_name ON t(name);"
                    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 60)"
                    " INSERT INTO t(name, body) SELECT printf('row %03d', i), randomblob(i * 7)"
                    " FROM n;"
                    "CREATE TABLE big(x TEXT); INSERT INTO big VALUES (printf('%.3000c', 'z'));");
    zqlite_close(db);
    capture(0);

    /* WAL with frames left in it: no automatic checkpoint while open */
    if (!(db = open_db(0, 0)))
        die("reopen for WAL");
    exec_or_die(db, "PRAGMA journal_mode=WAL");
    zqlite_wal_hook(db, NULL, NULL);
    exec_or_die(db, "UPDATE t SET name = name || ' w' WHERE id % 3 = 0;"
                    "INSERT INTO t(name, body) VALUES ('wal row', randomblob(900));"
                    "DELETE FROM t WHERE id % 5 = 0;");
    capture(1);
    exec_or_die(db, "PRAGMA journal_mode=DELETE");
    zqlite_close(db);

    /* A transaction larger than a tiny cache spills pages to the file while
     * the journal holds the originals: copied then, the pair is a crash. */
    if (!(db = open_db(0, 1)))
        die("reopen for the journal");
    exec_or_die(db, "BEGIN; UPDATE t SET body = randomblob(700), name = 'j' || name;"
                    "INSERT INTO big SELECT printf('%.2000c', 'y') FROM t;");
    capture(2);
    exec_or_die(db, "ROLLBACK");
    zqlite_close(db);
    remove_files();
}

static void cleanup(void)
{
    remove_files();
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    const char *base = getenv("GF_FUZZ_TMP");
    if (!base)
        base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(dir, sizeof dir, "%s/gf-fuzz-zqlite-%ld", base, (long)getpid());
    if (mkdir(dir, 0700) != 0) {
        perror(dir);
        abort();
    }
    snprintf(db_path, sizeof db_path, "%s/db", dir);
    atexit(cleanup);
    build_images();
    return 0;
}

/* ---- edits ------------------------------------------------------------------- */

typedef struct reader {
    const uint8_t *p;
    size_t left;
} reader;

static unsigned take(reader *r, int bytes)
{
    unsigned v = 0;
    for (int i = 0; i < bytes; i++) {
        v <<= 8;
        if (r->left) {
            v |= *r->p++;
            r->left--;
        }
    }
    return v;
}

typedef struct buf {
    unsigned char *p;
    size_t len, cap;
} buf;

static void resize(buf *b, size_t len)
{
    if (len > b->cap) {
        unsigned char *q = realloc(b->p, len);
        if (!q)
            abort();
        b->p = q;
        b->cap = len;
    }
    if (len > b->len)
        memset(b->p + b->len, 0, len - b->len);
    b->len = len;
}

/* Files may grow by at most this much per edit, so an input stays cheap. */
#define MAX_GROWTH 65536

/* One edit: op byte (low 2 bits the kind, bit 2 the file, bit 3 for copies:
 * take the source from the clean database of state 0), then its operands. */
static void apply_edit(reader *r, buf files[2])
{
    unsigned op = take(r, 1);
    buf *b = &files[(op >> 2) & 1];
    switch (op & 3) {
    case 0: { /* overwrite */
        size_t off = take(r, 3) % (b->len + 1), n = take(r, 1);
        n = n < r->left ? n : r->left;
        if (off + n > b->len)
            resize(b, off + n);
        memcpy(b->p + off, r->p, n);
        r->p += n, r->left -= n;
        break;
    }
    case 1: { /* cut or extend */
        size_t len = take(r, 3) % (b->len + MAX_GROWTH);
        resize(b, len);
        break;
    }
    case 2: { /* copy a block (a page moved, or replayed from another version) */
        const unsigned char *src = b->p;
        size_t src_len = b->len;
        if (op & 8)
            src = images[0][0].p, src_len = images[0][0].len;
        size_t from = take(r, 3) % (src_len + 1), to = take(r, 3) % (b->len + 1);
        size_t n = take(r, 2) % (src_len - from + 1);
        unsigned char *tmp = malloc(n + 1);
        if (!tmp)
            abort();
        memcpy(tmp, src + from, n); /* src may be b itself, and resize may move it */
        if (to + n > b->len)
            resize(b, to + n);
        memcpy(b->p + to, tmp, n);
        free(tmp);
        break;
    }
    default: { /* flip bits */
        size_t off = take(r, 3);
        unsigned char x = (unsigned char)take(r, 1);
        if (b->len)
            b->p[off % b->len] ^= x ? x : 1;
        break;
    }
    }
}

static void write_file(const char *path, const buf *b)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b->p, 1, b->len, f) != b->len || fclose(f) != 0) {
        perror(path);
        abort();
    }
}

/* Runs sql; errors are expected, only their reporting is checked. */
static void try_sql(zqlite_db *db, const char *sql)
{
    zqlite_result *r = zqlite_execute(db, sql);
    if (!r)
        abort();
    if (r->status != ZQLITE_OK && (!r->error_message || !r->error_message[0]))
        __builtin_trap(); /* every failure says what failed */
    for (size_t i = 0; i < r->row_count * r->column_count; i++) {
        const zqlite_value *v = &r->cells[i];
        if ((v->type == ZQLITE_TEXT || v->type == ZQLITE_BLOB) && v->len)
            (void)*(volatile const char *)&v->text[v->len - 1];
    }
    zqlite_free_result(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4096)
        return 0;
    int state = data[0] % 3;
    reader r = {data + 1, size - 1};
    buf files[2] = {{NULL, 0, 0}, {NULL, 0, 0}};
    for (int i = 0; i < 2; i++) {
        resize(&files[i], images[state][i].len + 1); /* +1: never a NULL pointer */
        files[i].len = images[state][i].len;
        if (files[i].len)
            memcpy(files[i].p, images[state][i].p, files[i].len);
    }
    for (int n = 0; r.left && n < 64; n++)
        apply_edit(&r, files);

    remove_files();
    write_file(db_path, &files[0]);
    if (state > 0 || files[1].len) {
        char side[320];
        snprintf(side, sizeof side, "%s%s", db_path, side_suffix[state]);
        write_file(side, &files[1]);
    }
    free(files[0].p);
    free(files[1].p);

    zqlite_db *db = open_db(0, 0);
    if (!db) {
        if (!zqlite_errmsg(NULL)[0] || zqlite_errcode(NULL) == ZQLITE_OK)
            __builtin_trap();
        return 0;
    }
    try_sql(db, "PRAGMA integrity_check");
    try_sql(db, "SELECT count(*), sum(length(body)), max(name) FROM t");
    try_sql(db, "SELECT id, name, body FROM t WHERE name >= 'row 030' ORDER BY name");
    try_sql(db, "SELECT length(x) FROM big");
    try_sql(db, "INSERT INTO t(name, body) VALUES ('fuzz', zeroblob(1500)); DELETE FROM t WHERE "
                "id % 7 = 1");
    zqlite_close(db);
    return 0;
}
