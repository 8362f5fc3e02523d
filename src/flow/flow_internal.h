/*
 * flow_internal.h — the map of libghostflow: the service struct and the
 * prototypes of its modules.
 *
 *   errors.c    status strings, version, per-thread error messages
 *   paths.c     default database path, private directory creation
 *   store.c     the encrypted database: schema and migrations, FTS, the
 *               serialised write path (prompt, answer) with retries
 *   query.c     reading it back: history, search, conversations, checks
 *   model.c     model hashing (cached in the database), loading, the
 *               context pool with conversation affinity
 *   service.c   gf_open / gf_close and the small accessors
 *   exchange.c  gf_process_prompt: store prompt → format → generate → store answer
 *   writer.c    the writer thread that commits prompts while generation starts
 *
 * Locks: db_mu guards the connection and every cached statement (one
 * connection: a per-connection Argon2id derivation makes more too costly);
 * pool_mu guards the slot table; wr_mu the writer's queue. The only nesting
 * is wr_mu taken under db_mu (the WAL hook asking for a checkpoint, inside a
 * commit); nothing takes db_mu while holding wr_mu.
 */
#ifndef GF_FLOW_INTERNAL_H
#define GF_FLOW_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>

#include "ghostflow.h"

/* Latest schema version (PRAGMA user_version); store.c holds the migrations. */
#define FLOW_SCHEMA_VERSION 2
/* Bytes of a conversation title taken from its first prompt. */
#define FLOW_TITLE_MAX 80
#define FLOW_LABEL_MAX 256
/* Most recent exchanges of a conversation considered for a new turn. */
#define FLOW_HISTORY_TURNS 256

/* Cached statements, prepared once at open (the hot path allocates no SQL). */
enum flow_stmt_id {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_CONV_INSERT,
    ST_CONV_EXISTS,
    ST_CONV_TITLE,
    ST_CONV_BY_LABEL,
    ST_PROMPT_INSERT,
    ST_STOP_INSERT,
    ST_TURNS,
    ST_RESPONSE_INSERT,
    ST_COUNT
};

/* A database job for the writer thread (writer.c); lives in the submitter's
 * stack frame until flow_writer_wait returns. */
typedef struct flow_write {
    gf_status (*run)(gf_service *svc, void *arg);
    void *arg;
    gf_status status;
    char msg[512];    /* the job's error message, carried to the waiter */
    atomic_bool done; /* set last, after status and msg */
    struct flow_write *next;
} flow_write;

typedef struct flow_slot {
    ghost_context *ctx;
    int64_t conversation_id; /* last served: its prefix is in the KV cache */
    uint64_t last_used;      /* pool tick, for least-recently-used choice */
    bool busy;
} flow_slot;

struct gf_service {
    /* store */
    zqlite_db *db;
    pthread_mutex_t db_mu;
    zqlite_stmt *st[ST_COUNT];
    bool has_fts;
    bool read_only; /* gf_config.read_only: no catch-up of the search index */
    uint64_t kdf_opslimit;
    size_t kdf_memlimit;

    /* model */
    ghost_model *owned_model;
    const ghost_model *model;
    char *model_name;
    char model_hash[65];
    int64_t model_id; /* row in models, 0 without a model */
    bool has_template;
    int32_t n_ctx; /* window of every pooled context */

    /* pool */
    flow_slot *slots;
    int32_t n_slots;
    uint64_t tick;
    pthread_mutex_t pool_mu;
    pthread_cond_t pool_cv;

    /* writer (writer.c) */
    pthread_t wr_thread;
    pthread_mutex_t wr_mu;
    pthread_cond_t wr_cv;      /* a job was queued, a checkpoint is due, or quit */
    pthread_cond_t wr_done_cv; /* a job finished */
    flow_write *wr_head, *wr_tail;
    bool wr_init, wr_running, wr_quit;
    bool wr_checkpoint; /* the WAL has grown past FLOW_CHECKPOINT_PAGES */
    /* The checkpoints' own connection (NULL: they run on db under db_mu),
     * and the lock that keeps gf_rekey from closing it under a checkpoint.
     * Lock order: db_mu before ckpt_mu. */
    zqlite_db *ckpt_db;
    pthread_mutex_t ckpt_mu;

    ghost_gen_params gen; /* gen.stop points at stop_copy */
    char **stop_copy;     /* the config's stop strings, owned */
};

/* ---- errors.c ------------------------------------------------------------ */

/* Records the calling thread's failure on svc (NULL for gf_open) and returns code. */
gf_status flow_error(const gf_service *svc, gf_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Set while a listing callback runs: calls back into that service are refused
 * instead of deadlocking on db_mu. */
bool flow_in_callback(const gf_service *svc);
void flow_set_in_callback(const gf_service *svc);
double flow_now_ms(void);   /* monotonic */
int64_t flow_unix_ms(void); /* wall clock */
/* Byte offset of the first invalid UTF-8 sequence in s, or -1 if valid. */
long flow_utf8_invalid_at(const char *s, size_t len);

/* ---- paths.c ------------------------------------------------------------- */

/* Creates the missing parent directories of path with mode 0700. */
gf_status flow_make_parent_dirs(const char *path);

/* ---- store.c ------------------------------------------------------------- */

gf_status flow_store_open(gf_service *svc, const gf_config *cfg, const char *path);
void flow_store_close(gf_service *svc);
/* Maps the connection's last error to a gf_status with "what: message". */
gf_status flow_db_error(gf_service *svc, int zrc, const char *what);
/* Takes db_mu, refusing calls from inside a listing callback. */
gf_status flow_db_lock(gf_service *svc);
void flow_db_unlock(gf_service *svc);
/* One-statement helpers on the locked connection. */
gf_status flow_exec(gf_service *svc, const char *sql);
gf_status flow_query_int(gf_service *svc, const char *sql, int64_t *out);

/* Previous turns of a conversation, oldest first. */
typedef struct flow_turns {
    char **user, **assistant;
    size_t n;
} flow_turns;
void flow_turns_free(flow_turns *t);

/* Checks that the conversation exists and reads its earlier answered turns. */
gf_status flow_read_turns(gf_service *svc, int64_t conversation_id, flow_turns *turns);

/* Stores a prompt in its own transaction (creating the conversation when
 * conversation_id is GF_NEW_CONVERSATION). */
gf_status flow_store_prompt(gf_service *svc, int64_t conversation_id, const char *prompt,
                            const ghost_gen_params *gen, int64_t *conversation_out,
                            int64_t *prompt_id);

typedef struct flow_answer {
    const char *text;
    ghost_finish_reason finish;
    const char *error;
    int32_t prompt_tokens, completion_tokens, cached_tokens;
    double prompt_ms, generation_ms;
} flow_answer;
gf_status flow_store_answer(gf_service *svc, int64_t prompt_id, const flow_answer *a,
                            int64_t *response_id);

/* Indexes the exchanges stored since the last catch-up (db_mu held). */
gf_status flow_fts_catch_up(gf_service *svc);
/* Whether the index holds every exchange (false on failure too), for a
 * read-only service, which cannot catch it up (db_mu held). */
gf_status flow_fts_current(gf_service *svc, bool *current);

/* Model row for (name, hash), with the hash cache keyed by the file's
 * path, size, mtime and inode: sets svc->model_hash and svc->model_id. */
gf_status flow_store_model(gf_service *svc, const char *path);

/* ---- writer.c ------------------------------------------------------------ */

/* The WAL size (pages) past which the writer thread checkpoints: SQLite's
 * own automatic threshold, moved off the committing thread. */
#define FLOW_CHECKPOINT_PAGES 1000

/* Starts the writer thread; without one, jobs run inline and SQLite
 * checkpoints on the committing thread as usual. */
void flow_writer_start(gf_service *svc);
/* Runs the queued jobs to the end and joins the thread. */
void flow_writer_stop(gf_service *svc);
void flow_writer_submit(gf_service *svc, flow_write *job);
/* Around a rekey (db_mu held; ckpt_mu held from pause to resume): closes the
 * checkpoints' connection, which would keep the old file open, and opens it
 * again on the new one. */
void flow_writer_pause_checkpoints(gf_service *svc);
void flow_writer_resume_checkpoints(gf_service *svc);
/* True once job has run: a check that never blocks (flow_writer_wait still
 * has to be called, and returns at once). */
bool flow_writer_done(flow_write *job);
/* Waits for job; returns its status, its message re-raised on this thread. */
gf_status flow_writer_wait(gf_service *svc, flow_write *job);

/* ---- model.c ------------------------------------------------------------- */

/* Hex BLAKE2b-256 of the file at path into hex[65]. */
gf_status flow_hash_file(const char *path, char hex[65]);
gf_status flow_model_open(gf_service *svc, const gf_config *cfg);
void flow_model_close(gf_service *svc);
/* Takes a free context, preferring the one that served conversation_id last. */
int32_t flow_pool_acquire(gf_service *svc, int64_t conversation_id);
/* Returns the slot, remembering the conversation whose prefix its KV cache now holds. */
void flow_pool_release(gf_service *svc, int32_t slot, int64_t conversation_id);

#endif
