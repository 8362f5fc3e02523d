/*
 * ghostflow.h — public API of libghostflow, the service that joins the
 * inference engine (ghostllm.h) and the encrypted store (zqlite.h): every
 * prompt and every answer is stored atomically in an encrypted database.
 *
 * One object: gf_service. gf_open() opens (or creates) the encrypted history
 * database, hashes and loads the model once and builds a pool of engine
 * contexts; gf_process_prompt() runs one exchange:
 *
 *   1. the prompt is stored (conversation, time, model name and file hash,
 *      sampling parameters) in its own committed transaction, BEFORE any
 *      piece of the answer reaches the callback: a crash afterwards leaves it
 *      in the history with no answer ("pending"). The service's writer
 *      thread commits it while the engine processes the prompt, so storing
 *      it costs the exchange no time;
 *   2. a context is taken from the pool (the one that served the same
 *      conversation last when it is free, so the engine can reuse the KV
 *      cache for the conversation's shared prefix); the conversation so far
 *      is formatted with the model's chat template (plain continuation when
 *      the model has none) and generated, streaming to the caller;
 *   3. the answer is stored linked to the prompt's row id, with token
 *      counts, timings and finish reason — also when the generation was
 *      cancelled or failed (the partial text is kept).
 *
 * Threads: a gf_service may be shared by any number of threads; each call is
 * safe to make concurrently except gf_close (call it once, after every other
 * call has returned). Concurrent gf_process_prompt calls
 * run in parallel up to the pool size and queue beyond it; database writes
 * are serialised inside the service (one connection, WAL, busy timeout and
 * retries for other processes using the same file).
 *
 * Errors follow docs/conventions.md: every function returns a gf_status (0 on
 * success) and keeps a message saying what failed and where. Because a
 * service is shared between threads, the message is kept per thread and per
 * service: gf_errmsg(svc) is the calling thread's last failure on svc. A
 * failed gf_open leaves it in gf_errmsg(NULL). Messages never contain key
 * material; prompt text never appears in them. The library never prints and
 * never exits.
 *
 * Ownership: memory a gf_ function hands over names its release function
 * (gf_free_result, gf_free); everything passed to a callback is borrowed for
 * the duration of the callback. Every release function accepts NULL.
 */
#ifndef GHOSTFLOW_H
#define GHOSTFLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ghostllm.h"
#include "zqlite.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(GF_BUILDING_LIBRARY)
#define GF_API __attribute__((visibility("default")))
#else
#define GF_API
#endif

#define GF_VERSION "0.1.0"

typedef struct gf_service gf_service;

/* ---- errors -------------------------------------------------------------- */

typedef enum gf_status {
    GF_OK = 0,
    GF_ERR_INVALID_ARGUMENT = 1,
    GF_ERR_MODEL = 2,     /* the engine failed: see the message */
    GF_ERR_DATABASE = 3,  /* the store failed: see the message */
    GF_ERR_WRONG_KEY = 4, /* "wrong key or not a ghostflow database" */
    GF_ERR_NOMEM = 5,
    GF_ERR_CANCELLED = 6, /* the generation was cancelled (answer stored) */
    GF_ERR_NOT_FOUND = 7, /* no such conversation / prompt */
    GF_ERR_BUSY = 8,      /* the database stayed locked by another process */
    GF_ERR_INTERNAL = 9
} gf_status;

/* Static description of a code. Never NULL. */
GF_API const char *gf_strerror(int code);
/* The calling thread's last failure message on svc (NULL: of the last failed
 * gf_open). Never NULL; "" when none. Valid until the thread's next failure. */
GF_API const char *gf_errmsg(const gf_service *svc);
/* The code that goes with gf_errmsg(svc). */
GF_API gf_status gf_errcode(const gf_service *svc);
GF_API const char *gf_version(void);

/* ---- configuration and lifetime ------------------------------------------ */

/* Start from gf_default_config() and set what you need. */
typedef struct gf_config {
    /* The database. NULL = the default path (gf_default_db_path). Missing
     * parent directories are created with mode 0700. */
    const char *db_path;
    /* Passphrase (or "x'<64 hex>'" raw key) of key_len bytes. Required and
     * non-empty. Copied by the store; wipe your copy after gf_open returns. */
    const char *key;
    size_t key_len;
    bool create; /* create the database when missing (default true) */
    /* Open for reading only (history, search, export): nothing is written, so
     * the file may sit on read-only media or belong to another user; no
     * model, and storing fails. A database on a read-only file system with
     * no -shm file beside it opens immutable (SQLite's immutable=1), as
     * nothing can change it there; one with an unmerged -wal file there
     * cannot be read (the error says so). A schema older than this
     * ghostflow's needs one read-write open first. Default false. */
    bool read_only;
    /* Argon2id cost for a NEW database (and gf_rekey); 0 = zqlite's strong
     * defaults. Tests lower these; users should not. */
    uint64_t kdf_opslimit;
    size_t kdf_memlimit;
    /* true: every commit is fsynced (survives power loss). false (default):
     * WAL with synchronous=NORMAL — survives any process crash, and a power
     * loss may drop the last commits but never corrupts the file. */
    bool durable;
    /* Page cache of the database in KiB; 0 = zqlite's default (64 MiB). The
     * cache grows with the pages used, so a long-running process that keeps
     * adding history (a server) holds up to this much: lower it to bound
     * memory. */
    int32_t db_cache_kib;

    /* The model. NULL = no model: history, search, export and rekey only. */
    const char *model_path;
    /* An already-loaded model for model_path, borrowed (the caller frees it
     * after gf_close). NULL = gf_open loads model_path itself. */
    const ghost_model *model;
    /* Engine contexts in the pool = exchanges generated in parallel. 0 = none
     * (the service then only records exchanges generated elsewhere, with
     * gf_log_prompt / gf_log_response). Default 1. */
    int32_t n_contexts;
    ghost_params context_params; /* for every pooled context (n_ctx, n_threads, ...) */
    ghost_gen_params gen;        /* defaults when gf_process_prompt gets params NULL */
} gf_config;

GF_API gf_config gf_default_config(void);

/* Writes the default database path to *path: $XDG_DATA_HOME/ghostflow/history.db,
 * or ~/.local/share/ghostflow/history.db when XDG_DATA_HOME is unset or not
 * absolute. Free with gf_free. */
GF_API gf_status gf_default_db_path(char **path);

/* Opens the service. NULL on failure: gf_errcode(NULL) / gf_errmsg(NULL) say
 * why — GF_ERR_WRONG_KEY when the key does not open the file or the file is
 * not a ghostflow database. A newer schema than this library knows is refused
 * (GF_ERR_DATABASE); an older one is migrated forward. Close with gf_close. */
GF_API gf_service *gf_open(const gf_config *config);
/* Waits for nothing: call it after every other call on svc has returned.
 * Frees the pool (and the model when gf_open loaded it), closes the database
 * and wipes the key. NULL is a no-op. */
GF_API void gf_close(gf_service *svc);

/* Borrowed model of the service (NULL when it has none); valid until gf_close. */
GF_API const ghost_model *gf_service_model(const gf_service *svc);
/* Hex BLAKE2b-256 of the model file (64 digits) or NULL; valid until gf_close. */
GF_API const char *gf_service_model_hash(const gf_service *svc);
/* true when search uses SQLite FTS5; false means the LIKE fallback (slower,
 * plain substring match). */
GF_API bool gf_service_has_fts(const gf_service *svc);

/* Frees memory returned by gf_default_db_path. */
GF_API void gf_free(void *ptr);

/* ---- conversations ------------------------------------------------------- */

/* Pass as conversation_id to start a new conversation. */
#define GF_NEW_CONVERSATION INT64_C(0)

/* Creates an empty conversation and writes its id (> 0) to *id. */
GF_API gf_status gf_conversation_new(gf_service *svc, int64_t *id);
/* The conversation named label (an external name: an API user, a header
 * value; at most 256 bytes of UTF-8), created when missing. */
GF_API gf_status gf_conversation_for_label(gf_service *svc, const char *label, int64_t *id);

/* ---- exchanges ----------------------------------------------------------- */

typedef struct gf_result {
    int64_t conversation_id;
    int64_t prompt_id;   /* row id of the stored prompt */
    int64_t response_id; /* row id of the stored answer (= prompt_id); 0 if storing it failed */
    char *text;          /* the answer (partial when cancelled or failed) */
    ghost_finish_reason finish_reason;
    int32_t prompt_tokens; /* whole formatted conversation, in tokens */
    int32_t completion_tokens;
    int32_t cached_tokens; /* prompt tokens reused from the KV cache */
    double prompt_ms, generation_ms;
    double queue_ms;     /* waiting for a free context */
    double store_ms;     /* this call's time blocked on the database */
    char *error_message; /* why generation failed, or NULL */
} gf_result;

/* Receives the answer piece by piece, each piece whole UTF-8 characters;
 * piece is borrowed. Return 0 to go on, non-zero to cancel. Pieces that the
 * engine makes before the prompt is committed (a few, on a very small model)
 * come joined into one piece once it is. */
typedef int (*gf_stream_fn)(const char *piece, size_t len, void *user_data);

/* Runs one exchange in conversation_id (or GF_NEW_CONVERSATION), see the top
 * of this file. prompt: NUL-terminated UTF-8. params: NULL = config.gen; a
 * random seed (GHOST_SEED_RANDOM) is replaced by a drawn one, which is stored,
 * so every stored exchange can be replayed. callback may be NULL.
 *
 * *result is always written: NULL when nothing was stored (bad argument,
 * unknown conversation, database failure before the prompt was stored),
 * otherwise a result to free with gf_free_result — also when the status is
 * not GF_OK. Returns GF_OK (finish stop or length), GF_ERR_CANCELLED (the
 * callback or gf_cancel_all stopped it; partial answer stored),
 * GF_ERR_MODEL (the engine failed; partial answer stored with finish
 * "error"), GF_ERR_DATABASE, GF_ERR_NOT_FOUND, GF_ERR_INVALID_ARGUMENT. */
GF_API gf_status gf_process_prompt(gf_service *svc, int64_t conversation_id, const char *prompt,
                                   const ghost_gen_params *params, gf_stream_fn callback,
                                   void *user_data, gf_result **result);
GF_API void gf_free_result(gf_result *result);

/* Asks every running generation of svc to stop at its next token.
 * Async-signal-safe (call it from a SIGINT handler) and thread-safe. */
GF_API void gf_cancel_all(gf_service *svc);

/* Recording exchanges generated outside the service (a program with its own
 * generation loop, a batching server). gf_log_prompt stores prompt like step 1
 * above (params NULL = config.gen; the model is the service's) and writes the
 * conversation id used and the prompt's row id. The seed is stored as given:
 * generate with a concrete seed to make the record replayable
 * (GHOST_SEED_RANDOM is kept and means "unknown"). gf_log_response stores the
 * answer of that prompt from an engine response; a prompt has at most one
 * answer (a second is GF_ERR_INVALID_ARGUMENT). */
GF_API gf_status gf_log_prompt(gf_service *svc, int64_t conversation_id, const char *prompt,
                               const ghost_gen_params *params, int64_t *conversation_out,
                               int64_t *prompt_id);
GF_API gf_status gf_log_response(gf_service *svc, int64_t prompt_id,
                                 const ghost_response *response);

/* ---- reading the history ------------------------------------------------- */

/* One stored exchange, as handed to a gf_exchange_fn. Every pointer is
 * borrowed for the duration of the callback only. */
typedef struct gf_exchange {
    int64_t prompt_id;
    int64_t conversation_id;
    int64_t created_at_ms; /* Unix time of the prompt, milliseconds */
    const char *prompt;
    const char *model_name;  /* "" when recorded without a model */
    const char *model_hash;  /* hex BLAKE2b-256, "" without a model */
    ghost_gen_params params; /* sampling parameters (stop strings not included) */
    /* Answer: answered false means no answer was stored — the generation is
     * still running, or the process died during it. */
    bool answered;
    int64_t response_id; /* = prompt_id: an answer's row id is its prompt's */
    int64_t answered_at_ms;
    const char *response; /* NULL when !answered */
    ghost_finish_reason finish_reason;
    const char *error; /* NULL unless finish_reason is ERROR */
    int32_t prompt_tokens, completion_tokens, cached_tokens;
    double prompt_ms, generation_ms;
} gf_exchange;

/* Return 0 to go on, non-zero to stop the listing (the call still returns GF_OK).
 * The callback must not call back into the same service. */
typedef int (*gf_exchange_fn)(const gf_exchange *exchange, void *user_data);

/* Exchanges in chronological order: of one conversation (conversation_id > 0)
 * or of all; limit > 0 keeps the most recent limit ones (still oldest first). */
GF_API gf_status gf_history(gf_service *svc, int64_t conversation_id, int64_t limit,
                            gf_exchange_fn fn, void *user_data);

/* Exchanges whose prompt or answer contains every word of text, best match
 * first with FTS5, newest first with the LIKE fallback; limit 0 = all. */
GF_API gf_status gf_search(gf_service *svc, const char *text, int64_t limit, gf_exchange_fn fn,
                           void *user_data);

typedef struct gf_conversation {
    int64_t id;
    const char *label; /* NULL unless created by gf_conversation_for_label */
    const char *title; /* start of the first prompt, or "" */
    int64_t created_at_ms, updated_at_ms;
    int64_t n_exchanges;
} gf_conversation;

typedef int (*gf_conversation_fn)(const gf_conversation *conversation, void *user_data);

/* Conversations, most recently updated first; limit 0 = all. */
GF_API gf_status gf_conversations(gf_service *svc, int64_t limit, gf_conversation_fn fn,
                                  void *user_data);

/* Name of a finish reason as stored: "stop", "length", "cancelled", "error". */
GF_API const char *gf_finish_reason_name(ghost_finish_reason reason);

/* ---- maintenance --------------------------------------------------------- */

/* Re-encrypts the database under new_key (crash-safe: either key works after
 * an interruption), with config's KDF cost. Holds the database meanwhile:
 * exchanges finishing during it wait to store their answers. */
GF_API gf_status gf_rekey(gf_service *svc, const char *new_key, size_t new_key_len);

/* Runs SQLite's integrity check and the service's own consistency checks
 * (every answer belongs to a prompt). GF_OK, or GF_ERR_DATABASE with the
 * first problem in the message. */
GF_API gf_status gf_check(gf_service *svc);

#ifdef __cplusplus
}
#endif
#endif /* GHOSTFLOW_H */
