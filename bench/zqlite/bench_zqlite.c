/*
 * bench_zqlite.c — libzqlite (encrypted) against plain stock SQLite, in one
 * run, through the same zqlite API, with the same page size and page cache:
 *
 *   insert   200,000 rows in one transaction (rollback journal)
 *   small    2,000 autocommit transactions, WAL, synchronous=NORMAL
 *   scan     a full-table LIKE scan
 *   point    100,000 random primary-key lookups
 *
 * Each workload runs --rounds times per engine, alternating engines and
 * which of them goes first in each round (so neither always meets a cold or
 * a warm machine), and the best time counts. Prints a ratio table (encrypted / plain) and the file
 * sizes. The page cache is the same for both: zqlite's default (64 MiB)
 * unless --cache-kib says otherwise (2000 = SQLite's own default).
 * Usage: bench_zqlite [--dir DIR] [--rounds N] [--cache-kib N]
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "db/vfs.h"
#include "zqlite.h"

#define ROWS     200000
#define SMALL_TX 2000
#define LOOKUPS  100000
#define RAW_KEY  "x'3f0d8e1c22a7b5469c0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e'"

enum { W_INSERT, W_SMALL, W_SCAN, W_POINT, W_COUNT };
static const char *const w_name[W_COUNT] = {"insert 200k rows (1 tx)", "2000 small tx (WAL)",
                                            "full-table LIKE scan", "100k point lookups"};
static const double w_target[W_COUNT] = {1.10, 0, 1.25, 1.15};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void die(zqlite_db *db, const char *what)
{
    fprintf(stderr, "bench_zqlite: %s: %s\n", what, db ? zqlite_errmsg(db) : zqlite_errmsg(NULL));
    exit(1);
}

static void exec(zqlite_db *db, const char *sql)
{
    zqlite_result *r = zqlite_execute(db, sql);
    if (!r || r->status != ZQLITE_OK)
        die(db, sql);
    zqlite_free_result(r);
}

static zqlite_stmt *prepare(zqlite_db *db, const char *sql)
{
    zqlite_stmt *st = zqlite_prepare_statement(db, sql);
    if (!st)
        die(db, sql);
    return st;
}

static void remove_db(const char *path)
{
    static const char *const suffix[] = {"", "-journal", "-wal", "-shm"};
    char name[1100];
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "%s%s", path, suffix[i]);
        unlink(name);
    }
}

static zqlite_db *open_db(const char *path, int encrypted, int cache_kib)
{
    zqlite_db *db = encrypted ? zqlite_open_encrypted(path, RAW_KEY, strlen(RAW_KEY))
                              : zqlite_open_encrypted(path, NULL, 0);
    if (!db)
        die(NULL, path);
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA cache_size=-%d", cache_kib);
    exec(db, sql);
    return db;
}

/* Deterministic text of 60..160 bytes; every 97th row holds the needle. */
static int make_body(char *buf, unsigned *seed, int i)
{
    static const char *const words[] = {"alpha", "bravo", "charlie", "delta",  "echo", "foxtrot",
                                        "golf",  "hotel", "india",   "juliet", "kilo", "lima"};
    int n = 0, want = 60 + (int)(rand_r(seed) % 100);
    while (n < want)
        n += sprintf(buf + n, "%s ", words[rand_r(seed) % 12]);
    if (i % 97 == 0)
        n += sprintf(buf + n, "needle");
    return n;
}

static double run_insert(zqlite_db *db)
{
    char body[256];
    unsigned seed = 7;
    exec(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, body TEXT)");
    zqlite_stmt *st = prepare(db, "INSERT INTO t VALUES(?1, ?2, ?3)");
    double t0 = now();
    exec(db, "BEGIN");
    for (int i = 1; i <= ROWS; i++) {
        char name[32];
        int n = make_body(body, &seed, i);
        snprintf(name, sizeof name, "user-%d", i);
        zqlite_bind_int64(st, 1, i);
        zqlite_bind_text(st, 2, name, -1);
        zqlite_bind_text(st, 3, body, n);
        if (zqlite_step(st) != ZQLITE_DONE)
            die(db, "insert");
        zqlite_reset(st);
    }
    exec(db, "COMMIT");
    double t = now() - t0;
    zqlite_finalize(st);
    return t;
}

static double run_small(zqlite_db *db)
{
    exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL");
    zqlite_stmt *st = prepare(db, "UPDATE t SET name = ?2 WHERE id = ?1");
    unsigned seed = 11;
    double t0 = now();
    for (int i = 0; i < SMALL_TX; i++) {
        zqlite_bind_int64(st, 1, 1 + rand_r(&seed) % ROWS);
        zqlite_bind_text(st, 2, "updated", -1);
        if (zqlite_step(st) != ZQLITE_DONE)
            die(db, "update");
        zqlite_reset(st);
    }
    double t = now() - t0;
    zqlite_finalize(st);
    exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");
    return t;
}

static double run_scan(zqlite_db *db, long long *hits)
{
    zqlite_stmt *st = prepare(db, "SELECT count(*) FROM t WHERE body LIKE '%needle%'");
    double t0 = now();
    if (zqlite_step(st) != ZQLITE_ROW)
        die(db, "scan");
    *hits = zqlite_column_int64(st, 0);
    double t = now() - t0;
    zqlite_finalize(st);
    return t;
}

static double run_point(zqlite_db *db, long long *sum)
{
    zqlite_stmt *st = prepare(db, "SELECT length(body) FROM t WHERE id = ?1");
    unsigned seed = 13;
    *sum = 0;
    double t0 = now();
    for (int i = 0; i < LOOKUPS; i++) {
        zqlite_bind_int64(st, 1, 1 + rand_r(&seed) % ROWS);
        if (zqlite_step(st) != ZQLITE_ROW)
            die(db, "lookup");
        *sum += zqlite_column_int64(st, 0);
        zqlite_reset(st);
    }
    double t = now() - t0;
    zqlite_finalize(st);
    return t;
}

static long long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

int main(int argc, char **argv)
{
    const char *dir = "/tmp";
    int rounds = 3, cache_kib = 65536; /* zqlite's default page cache */
    static const struct option opts[] = {{"dir", required_argument, NULL, 'd'},
                                         {"rounds", required_argument, NULL, 'r'},
                                         {"cache-kib", required_argument, NULL, 'c'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "d:r:c:h", opts, NULL)) != -1) {
        if (c == 'd')
            dir = optarg;
        else if (c == 'r')
            rounds = atoi(optarg);
        else if (c == 'c')
            cache_kib = atoi(optarg);
        else {
            fprintf(c == 'h' ? stdout : stderr,
                    "usage: bench_zqlite [--dir DIR] [--rounds N] [--cache-kib N]\n");
            return c == 'h' ? 0 : 2;
        }
    }
    if (rounds < 1 || cache_kib < 100) {
        fprintf(stderr, "bench_zqlite: --rounds must be >= 1 and --cache-kib >= 100\n");
        return 2;
    }
    double best[2][W_COUNT];
    long long size[2] = {0, 0}, check[2][2] = {{0}};
    for (int e = 0; e < 2; e++)
        for (int w = 0; w < W_COUNT; w++)
            best[e][w] = 1e30;
    char path[2][1024];
    snprintf(path[0], sizeof path[0], "%s/bench-zqlite-plain.db", dir);
    snprintf(path[1], sizeof path[1], "%s/bench-zqlite-enc.db", dir);
    for (int r = 0; r < rounds; r++) {
        for (int k = 0; k < 2; k++) {
            int e = (r + k) % 2; /* plain first in even rounds, encrypted in odd ones */
            remove_db(path[e]);
            zqlite_db *db = open_db(path[e], e, cache_kib);
            double t[W_COUNT];
            t[W_INSERT] = run_insert(db);
            t[W_SMALL] = run_small(db);
            zqlite_close(db);
            db = open_db(path[e], e, cache_kib); /* cold page cache for the reads */
            t[W_SCAN] = run_scan(db, &check[e][0]);
            t[W_POINT] = run_point(db, &check[e][1]);
            zqlite_close(db);
            for (int w = 0; w < W_COUNT; w++)
                if (t[w] < best[e][w])
                    best[e][w] = t[w];
            size[e] = file_size(path[e]);
        }
    }
    if (check[0][0] != check[1][0] || check[0][1] != check[1][1]) {
        fprintf(stderr, "bench_zqlite: encrypted and plain results differ\n");
        return 1;
    }
    printf("zqlite %s vs plain SQLite %s: page size 4096, cache %d KiB for both, best of %d\n\n",
           zqlite_version(), sqlite3_libversion(), cache_kib, rounds);
    printf("| workload                  | plain (ms) | encrypted (ms) | ratio | target |\n");
    printf("|---------------------------|-----------:|---------------:|------:|-------:|\n");
    for (int w = 0; w < W_COUNT; w++) {
        char target[16] = "-";
        if (w_target[w] > 0)
            snprintf(target, sizeof target, "<= %.2f", w_target[w]);
        printf("| %-25s | %10.1f | %14.1f | %5.2f | %6s |\n", w_name[w], best[0][w] * 1e3,
               best[1][w] * 1e3, best[1][w] / best[0][w], target);
    }
    long long overhead = size[1] - size[0];
    printf(
        "\n| file | plain (bytes) | encrypted (bytes) | difference | minus 4096-byte header |\n");
    printf("|------|--------------:|------------------:|-----------:|-----------------------:|\n");
    printf("| db   | %13lld | %17lld | %+9.2f%% | %+21.2f%% |\n", size[0], size[1],
           100.0 * overhead / size[0], 100.0 * (overhead - VFS_HEADER_SIZE) / size[0]);
    remove_db(path[0]);
    remove_db(path[1]);
    return 0;
}
