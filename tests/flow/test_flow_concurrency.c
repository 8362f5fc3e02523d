/*
 * test_flow_concurrency.c — many sessions on one model: 8 threads × 20
 * prompts through one service with a pool of 4 contexts. Every prompt and
 * every answer must be stored, each answer paired with its own prompt (the
 * text a thread received is the text stored for that thread's prompt), no
 * call may fail, and the database must pass the consistency check.
 */
#include <pthread.h>

#include "flow_test.h"

#define N_THREADS 8
#define N_PROMPTS 20

typedef struct worker {
    gf_service *svc;
    int index;
    int failures;
    int64_t prompt_id[N_PROMPTS], response_id[N_PROMPTS], conversation_id[N_PROMPTS];
    char prompt[N_PROMPTS][64];
    char streamed[N_PROMPTS][512];
} worker;

typedef struct stream_buf {
    char *buf;
    size_t cap;
} stream_buf;

static int collect_piece(const char *piece, size_t len, void *ud)
{
    stream_buf *b = ud;
    size_t cur = strlen(b->buf);
    if (cur + len < b->cap) {
        memcpy(b->buf + cur, piece, len);
        b->buf[cur + len] = '\0';
    }
    return 0;
}

static void *run_worker(void *arg)
{
    worker *w = arg;
    int64_t conversation = GF_NEW_CONVERSATION;
    ghost_gen_params p = ghost_default_gen_params();
    p.max_tokens = 6;
    p.temperature = 0.8f;
    for (int i = 0; i < N_PROMPTS; i++) {
        snprintf(w->prompt[i], sizeof w->prompt[i], "Thread %d asks %d: once upon a time", w->index,
                 i);
        stream_buf b = {w->streamed[i], sizeof w->streamed[i]};
        gf_result *res = NULL;
        /* Half the threads keep one conversation (context affinity, growing
         * history); the others start a new one every time. */
        gf_status rc = gf_process_prompt(w->svc, w->index % 2 ? conversation : GF_NEW_CONVERSATION,
                                         w->prompt[i], &p, collect_piece, &b, &res);
        if (rc != GF_OK || !res || strcmp(res->text, w->streamed[i]) != 0) {
            fprintf(stderr, "thread %d prompt %d: %s\n", w->index, i,
                    rc != GF_OK ? gf_errmsg(w->svc) : "streamed text differs from the result");
            w->failures++;
        }
        if (res) {
            w->prompt_id[i] = res->prompt_id;
            w->response_id[i] = res->response_id;
            w->conversation_id[i] = res->conversation_id;
            conversation = res->conversation_id;
        }
        gf_free_result(res);
    }
    return NULL;
}

typedef struct pairing {
    worker *workers;
    int matched, mismatched, unanswered;
} pairing;

static int check_pair(const gf_exchange *e, void *ud)
{
    pairing *pr = ud;
    if (!e->answered) {
        pr->unanswered++;
        return 0;
    }
    for (int t = 0; t < N_THREADS; t++)
        for (int i = 0; i < N_PROMPTS; i++)
            if (pr->workers[t].prompt_id[i] == e->prompt_id) {
                /* The ids the caller got are the rows' own, whatever
                 * the other threads inserted meanwhile. */
                if (strcmp(e->prompt, pr->workers[t].prompt[i]) == 0 &&
                    strcmp(e->response, pr->workers[t].streamed[i]) == 0 &&
                    e->response_id == pr->workers[t].response_id[i] &&
                    e->conversation_id == pr->workers[t].conversation_id[i])
                    pr->matched++;
                else
                    pr->mismatched++;
                return 0;
            }
    pr->mismatched++;
    return 0;
}

static void test_eight_threads_store_every_exchange_correctly_paired(void **state)
{
    const char *db = tu_path("concurrent.db");
    gf_config c = ft_config(db, true);
    c.n_contexts = 4;
    c.context_params.n_ctx = 256; /* the growing conversations must be trimmed */
    gf_service *svc = gf_open(&c);
    if (!svc)
        fail_msg("gf_open: %s", gf_errmsg(NULL));
    static worker workers[N_THREADS];
    pthread_t th[N_THREADS];
    for (int t = 0; t < N_THREADS; t++) {
        memset(&workers[t], 0, sizeof workers[t]);
        workers[t].svc = svc;
        workers[t].index = t;
        assert_int_equal(pthread_create(&th[t], NULL, run_worker, &workers[t]), 0);
    }
    for (int t = 0; t < N_THREADS; t++)
        pthread_join(th[t], NULL);
    for (int t = 0; t < N_THREADS; t++)
        assert_int_equal(workers[t].failures, 0);
    assert_int_equal(gf_check(svc), GF_OK);
    gf_close(svc);

    /* Count rows with a separate, raw connection: what is on disk. */
    zqlite_db *z = zqlite_open_encrypted(db, FT_KEY, strlen(FT_KEY));
    assert_non_null(z);
    zqlite_result *r = zqlite_execute(
        z, "SELECT (SELECT count(*) FROM prompts), (SELECT count(*) FROM responses),"
           " (SELECT count(*) FROM responses r JOIN prompts p ON p.id = r.prompt_id),"
           " (SELECT count(DISTINCT prompt_id) FROM responses)");
    assert_int_equal(r->status, ZQLITE_OK);
    assert_int_equal(zqlite_result_cell(r, 0, 0)->i, N_THREADS * N_PROMPTS);
    assert_int_equal(zqlite_result_cell(r, 0, 1)->i, N_THREADS * N_PROMPTS);
    assert_int_equal(zqlite_result_cell(r, 0, 2)->i, N_THREADS * N_PROMPTS);
    assert_int_equal(zqlite_result_cell(r, 0, 3)->i, N_THREADS * N_PROMPTS);
    zqlite_free_result(r);
    zqlite_close(z);

    svc = ft_open(db, false);
    pairing pr = {workers, 0, 0, 0};
    assert_int_equal(gf_history(svc, 0, 0, check_pair, &pr), GF_OK);
    assert_int_equal(pr.matched, N_THREADS * N_PROMPTS);
    assert_int_equal(pr.mismatched, 0);
    assert_int_equal(pr.unanswered, 0);
    gf_close(svc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eight_threads_store_every_exchange_correctly_paired),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tu_tmpdir_cleanup();
    return rc;
}
