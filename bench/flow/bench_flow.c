/*
 * bench_flow.c — what storing costs: the same greedy generation run bare on
 * the service's engine context and through gf_process_prompt (prompt stored
 * before, answer after, in the encrypted database), interleaved in
 * alternating order so both see the same machine state. Prints the medians,
 * the median per-run difference, and the time the call was blocked on the
 * database (measured by the service; the prompt's commit overlaps the
 * generation on the writer thread).
 *
 * The floor, measured in the same runs: whatever stores each exchange before
 * answering pays at least one commit after the generation, and overlapping
 * the prompt's commit with the generation costs one thread wake-up. After
 * every other bare generation the bench wakes an idle thread and commits a
 * row of the same size to a plain (unencrypted) database through stock
 * SQLite, with the same journal settings; the service's blocked time is
 * printed as a multiple of that. Both are kernel-bound (locks on the -shm
 * file, a write, an inter-processor interrupt), so the floor differs a lot
 * between machines: on one virtual machine a wake-up cost 6 us, on another
 * 20 us.
 *
 *   bench_flow [MODEL] [RUNS] [TOKENS]
 *   (defaults: ../shared/models/stories260K.gguf, 50, 64; run from the repo root)
 *
 * The default configuration is measured twice. With a fresh WAL — the first
 * exchanges after opening: SQLite deletes the WAL at close — every commit
 * appends to the file, which the file system must extend. Past the first
 * checkpoint (1000 WAL pages, about four per exchange) SQLite writes the WAL
 * from its start again, over blocks and cached pages that already exist: a
 * service that has stored a few hundred exchanges commits a little faster.
 *
 * Target (issue 7): < 1 ms and < 2 % of a 64-token generation on stories260K.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "flow/flow_internal.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

typedef struct figures {
    double bare, logged, store, store_max;
    double extra;        /* per-run differences logged - bare: the mean of the two
                            orders' medians */
    double wake, commit; /* the floor's parts */
    int tokens;
} figures;

/* ---- the floor: one thread wake-up and one stock-SQLite commit ------------ */

/* A thread that sleeps until signalled, as the service's writer does. */
typedef struct sleeper {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int pending; /* wake-ups not yet taken; -1: quit */
    pthread_t thread;
} sleeper;

static void *sleeper_main(void *arg)
{
    sleeper *z = arg;
    pthread_mutex_lock(&z->mu);
    for (;;) {
        while (z->pending == 0)
            pthread_cond_wait(&z->cv, &z->mu);
        if (z->pending < 0)
            break;
        z->pending = 0;
    }
    pthread_mutex_unlock(&z->mu);
    return NULL;
}

/* The same steps as flow_writer_submit: enqueue under the mutex, signal after. */
static double sleeper_wake(sleeper *z)
{
    double t0 = now_ms();
    pthread_mutex_lock(&z->mu);
    z->pending++;
    pthread_mutex_unlock(&z->mu);
    pthread_cond_signal(&z->cv);
    return now_ms() - t0;
}

static void sleeper_stop(sleeper *z)
{
    pthread_mutex_lock(&z->mu);
    z->pending = -1;
    pthread_mutex_unlock(&z->mu);
    pthread_cond_signal(&z->cv);
    pthread_join(z->thread, NULL);
}

/* A plain database with the answers table's shape, and its three statements. */
typedef struct plain_log {
    zqlite_db *db;
    zqlite_stmt *begin, *insert, *commit;
    int64_t next_id;
} plain_log;

static int plain_open(plain_log *p, const char *path, bool durable)
{
    memset(p, 0, sizeof *p);
    p->db = zqlite_open_encrypted(path, NULL, 0);
    if (!p->db)
        return -1;
    static const char *const setup[] = {
        "PRAGMA journal_mode = WAL",
        "CREATE TABLE answers(id INTEGER PRIMARY KEY, created_at INTEGER, content TEXT,"
        " finish_reason TEXT, error TEXT, prompt_tokens INTEGER, completion_tokens INTEGER,"
        " cached_tokens INTEGER, prompt_ms REAL, generation_ms REAL)",
    };
    int rc = 0;
    for (size_t i = 0; i < sizeof setup / sizeof setup[0] && rc == 0; i++) {
        zqlite_result *r = zqlite_execute(p->db, setup[i]);
        rc = r && r->status == ZQLITE_OK ? 0 : -1;
        zqlite_free_result(r);
    }
    zqlite_result *r = zqlite_execute(p->db, durable ? "PRAGMA synchronous = FULL"
                                                     : "PRAGMA synchronous = NORMAL");
    rc |= r && r->status == ZQLITE_OK ? 0 : -1;
    zqlite_free_result(r);
    p->begin = zqlite_prepare_statement(p->db, "BEGIN");
    p->insert = zqlite_prepare_statement(p->db, "INSERT INTO answers VALUES (?1, ?2, ?3, ?4, NULL,"
                                                " ?5, ?6, ?7, ?8, ?9)");
    p->commit = zqlite_prepare_statement(p->db, "COMMIT");
    return rc == 0 && p->begin && p->insert && p->commit ? 0 : -1;
}

static void plain_close(plain_log *p)
{
    zqlite_finalize(p->begin);
    zqlite_finalize(p->insert);
    zqlite_finalize(p->commit);
    zqlite_close(p->db);
}

/* Commits one answer; the time it took, or -1 on failure. */
static double plain_commit(plain_log *p, const ghost_response *r)
{
    double t0 = now_ms();
    int ok = zqlite_step(p->begin) == ZQLITE_DONE;
    zqlite_reset(p->begin);
    int b = zqlite_bind_int64(p->insert, 1, ++p->next_id) |
            zqlite_bind_int64(p->insert, 2, (int64_t)t0) |
            zqlite_bind_text(p->insert, 3, r->text, -1) |
            zqlite_bind_text(p->insert, 4, "length", -1) |
            zqlite_bind_int64(p->insert, 5, r->prompt_tokens) |
            zqlite_bind_int64(p->insert, 6, r->completion_tokens) |
            zqlite_bind_int64(p->insert, 7, r->cached_tokens) |
            zqlite_bind_double(p->insert, 8, r->prompt_ms) |
            zqlite_bind_double(p->insert, 9, r->generation_ms);
    ok = ok && b == 0 && zqlite_step(p->insert) == ZQLITE_DONE;
    zqlite_reset(p->insert);
    ok = ok && zqlite_step(p->commit) == ZQLITE_DONE;
    zqlite_reset(p->commit);
    return ok ? now_ms() - t0 : -1;
}

/* Logged exchanges stored before measuring: past the first checkpoint. */
#define WARM_EXCHANGES 400
/* Measured runs with a fresh WAL: it must not reach the first checkpoint. */
#define FRESH_RUNS_MAX 200

/* One configuration of the service and the caller. */
typedef struct phase {
    const char *name, *title;
    bool durable; /* synchronous=FULL */
    int warm;     /* exchanges stored before measuring */
    bool stream;  /* both sides stream the answer to a callback */
} phase;

/* What a streaming caller does with a piece: take it, cheaply. */
static int take_piece(const char *piece, size_t len, void *user_data)
{
    (void)piece;
    *(size_t *)user_data += len;
    return 0;
}

/* One configuration: after ph->warm unmeasured exchanges, runs bare and
 * logged generations alternately; the databases go in dir. */
static int measure(ghost_model *model, const char *model_path, const char *dir, const phase *ph,
                   int runs, const ghost_gen_params *gen, figures *out)
{
    char db[64], plain_db[64];
    snprintf(db, sizeof db, "%s/%s.db", dir, ph->name);
    snprintf(plain_db, sizeof plain_db, "%s/%s-plain.db", dir, ph->name);
    gf_stream_fn cb = ph->stream ? take_piece : NULL;
    size_t streamed = 0;
    const char *prompt = "Once upon a time, there was a little girl named Lily.";
    ghost_params cp = ghost_default_params();
    cp.n_threads = 1;
    gf_config cfg = gf_default_config();
    cfg.db_path = db;
    cfg.key = "bench passphrase";
    cfg.key_len = strlen(cfg.key);
    cfg.kdf_opslimit = 1; /* the KDF runs once at open: it is not what is measured */
    cfg.kdf_memlimit = 8192;
    cfg.durable = ph->durable;
    cfg.model_path = model_path;
    cfg.model = model;
    cfg.context_params = cp;
    cfg.n_contexts = 1;
    gf_service *svc = gf_open(&cfg);
    if (!svc) {
        fprintf(stderr, "bench_flow: %s\n", gf_errmsg(NULL));
        return -1;
    }
    /* The bare runs use the service's own (only) context. Two contexts of
     * the same model generate up to 5 % apart, one way or the other from one
     * process to the next, depending on where their buffers land: more than
     * what is measured here. */
    ghost_context *ctx = svc->slots[0].ctx;
    double *bare = calloc((size_t)runs, sizeof *bare),
           *logged = calloc((size_t)runs, sizeof *logged),
           *store = calloc((size_t)runs, sizeof *store),
           *extra = calloc((size_t)runs, sizeof *extra), *wake = calloc((size_t)runs, sizeof *wake),
           *commit = calloc((size_t)runs, sizeof *commit);
    int n_floor = 0;
    sleeper z = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    bool z_running = pthread_create(&z.thread, NULL, sleeper_main, &z) == 0;
    plain_log plain = {0};
    int rc = bare && logged && store && extra && wake && commit && z_running &&
                     plain_open(&plain, plain_db, ph->durable) == 0
                 ? 0
                 : -1;
    if (rc != 0)
        fprintf(stderr, "bench_flow: setting up the floor measurement: %s\n",
                z_running ? zqlite_errmsg(plain.db) : "pthread_create failed");
    for (int i = 0; rc == 0 && i < ph->warm; i++) {
        gf_result *res = NULL;
        if (gf_process_prompt(svc, GF_NEW_CONVERSATION, prompt, gen, NULL, NULL, &res) != GF_OK) {
            fprintf(stderr, "bench_flow: warm-up exchange %d: %s\n", i, gf_errmsg(svc));
            rc = -1;
        }
        gf_free_result(res);
    }
    for (int i = -2; rc == 0 && i < runs; i++) { /* two warm-up rounds */
        /* Whichever runs second is slower by tens of microseconds (the
         * first one's context leaves the caches cold for the other's), so
         * the order alternates and the effect cancels out of the medians. */
        ghost_response *r = NULL;
        gf_result *res = NULL;
        gf_status st = GF_OK;
        double t_bare = 0, t_logged = 0;
        for (int k = 0; k < 2; k++) {
            double t0 = now_ms();
            if ((k == 0) == (i % 2 == 0)) {
                r = ghost_generate_ex(ctx, prompt, gen, cb, &streamed);
                t_bare = now_ms() - t0;
            } else {
                st = gf_process_prompt(svc, GF_NEW_CONVERSATION, prompt, gen, cb, &streamed, &res);
                t_logged = now_ms() - t0;
            }
        }
        bool same =
            r && r->error_code == GHOST_OK && st == GF_OK && strcmp(r->text, res->text) == 0;
        if (!same) {
            fprintf(stderr, "bench_flow: run %d failed or differs: %s\n", i,
                    st != GF_OK ? gf_errmsg(svc)
                    : r         ? r->error_message
                                : "out of memory");
            rc = -1;
        }
        /* The floor, after a bare generation only (the service's answer
         * commit also follows a generation, not SQLite's own last commit). */
        double w = -1, c = -1;
        if (same && i % 2 != 0) {
            w = sleeper_wake(&z);
            c = plain_commit(&plain, r);
            if (c < 0) {
                fprintf(stderr, "bench_flow: plain commit: %s\n", zqlite_errmsg(plain.db));
                rc = -1;
            }
        }
        if (rc == 0 && i >= 0) {
            bare[i] = t_bare;
            logged[i] = t_logged;
            store[i] = res->store_ms;
            if (c >= 0) {
                wake[n_floor] = w;
                commit[n_floor++] = c;
            }
            /* bare-first runs in the first half, service-first in the second */
            extra[i % 2 ? runs - 1 - i / 2 : i / 2] = logged[i] - bare[i];
            out->tokens = res->completion_tokens;
        }
        ghost_free_response(r);
        gf_free_result(res);
    }
    if (rc == 0) {
        out->bare = median(bare, runs);
        out->logged = median(logged, runs);
        out->store = median(store, runs);
        out->store_max = store[runs - 1]; /* sorted by median() */
        out->wake = n_floor ? median(wake, n_floor) : 0;
        out->commit = n_floor ? median(commit, n_floor) : 0;
        const int n_first = (runs + 1) / 2; /* runs with the bare generation first */
        out->extra = runs > 1
                         ? (median(extra, n_first) + median(extra + n_first, runs - n_first)) / 2
                         : extra[0];
    }
    if (z_running)
        sleeper_stop(&z);
    if (plain.db)
        plain_close(&plain);
    free(wake);
    free(commit);
    free(extra);
    free(bare);
    free(logged);
    free(store);
    gf_close(svc);
    return rc;
}

int main(int argc, char **argv)
{
    const char *model_path = argc > 1 ? argv[1] : "../shared/models/stories260K.gguf";
    int runs = argc > 2 ? atoi(argv[2]) : 50;
    int tokens = argc > 3 ? atoi(argv[3]) : 64;
    if (runs < 1 || tokens < 1) {
        fprintf(stderr, "usage: bench_flow [MODEL] [RUNS >= 1] [TOKENS >= 1]\n");
        return 2;
    }
    ghost_model *model = ghost_model_load(model_path);
    if (!model) {
        fprintf(stderr, "bench_flow: %s\n", ghost_errmsg(NULL));
        return 1;
    }
    char dir[] = "/tmp/bench_flow-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("bench_flow: mkdtemp");
        ghost_model_free(model);
        return 1;
    }
    ghost_gen_params gen = ghost_default_gen_params();
    gen.temperature = 0; /* greedy: both sides generate the same text */
    gen.max_tokens = tokens;
    gen.seed = 1;
    ghost_model_info info;
    ghost_model_get_info(model, &info);
    printf("bench_flow: %s, greedy generation of up to %d tokens, %d runs each, medians\n",
           info.name, tokens, runs);
    static const phase phases[] = {
        {"fresh", "default (synchronous=NORMAL, WAL), fresh WAL: the first exchanges after opening",
         false, 0, false},
        {"reused", "default (synchronous=NORMAL, WAL), WAL reused: after the first checkpoint",
         false, WARM_EXCHANGES, false},
        {"stream",
         "default, WAL reused, the answer streamed to a callback (as `run`, `chat` and the"
         " server do)",
         false, WARM_EXCHANGES, true},
        {"durable", "durable = true (synchronous=FULL, fsync per commit)", true, 0, false},
    };
    int rc = 0;
    for (size_t k = 0; k < sizeof phases / sizeof phases[0] && rc == 0; k++) {
        const phase *ph = &phases[k];
        int n = ph->warm == 0 && !ph->durable && runs > FRESH_RUNS_MAX ? FRESH_RUNS_MAX : runs;
        figures f = {0};
        rc = measure(model, model_path, dir, ph, n, &gen, &f);
        if (rc != 0)
            break;
        double extra = f.extra;
        double pct = f.bare > 0 ? 100.0 * extra / f.bare : 0;
        printf("\n%s\n%d runs", ph->title, n);
        if (ph->warm)
            printf(" after %d stored exchanges", ph->warm);
        printf(", %d tokens per answer:\n", f.tokens);
        printf("  generation alone           %9.3f ms\n", f.bare);
        printf("  through the service        %9.3f ms   (paired difference %+.3f ms, %+.2f %%)\n",
               f.logged, extra, pct);
        double store_pct = f.bare > 0 ? 100.0 * f.store / f.bare : 0;
        printf("  blocked on the database    %9.3f ms   (%.2f %% of the generation; measured\n"
               "                                          inside gf_process_prompt; max %.3f ms)\n",
               f.store, store_pct, f.store_max);
        double floor = f.wake + f.commit;
        printf(
            "  floor: wake-up + commit    %9.3f ms   (%.3f + %.3f ms, stock SQLite, plain file;\n"
            "                                          blocked time = %.2f x the floor)\n",
            floor, f.wake, f.commit, floor > 0 ? f.store / floor : 0);
        /* Both must hold: the blocked time is what storing costs the caller;
         * the paired difference also catches the writer thread taking CPU
         * from the generation (on a busy machine it can). */
        if (!ph->durable)
            printf("  target < 1 ms and < 2 %%: %s\n",
                   f.store < 1.0 && store_pct < 2.0 && extra < 1.0 && pct < 2.0 ? "met"
                                                                                : "NOT met");
    }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "bench_flow: could not remove %s\n", dir);
    ghost_model_free(model);
    return rc == 0 ? 0 : 1;
}
