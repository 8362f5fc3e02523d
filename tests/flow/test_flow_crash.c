/*
 * test_flow_crash.c — a process killed with SIGKILL in the middle of a
 * generation: the prompt it was answering is in the history (without an
 * answer), the database passes the integrity and consistency checks, and
 * the next run stores exchanges as usual.
 */
#include <signal.h>
#include <sys/wait.h>

#include "flow_test.h"

static const char crash_prompt[] = "Once upon a time there was a crash";

static int signal_then_hang(const char *piece, size_t len, void *ud)
{
    int fd = *(int *)ud;
    /* The first piece proves generation is under way: tell the parent, then
     * stay in the middle of it until killed. */
    if (write(fd, "g", 1) != 1)
        _exit(3);
    for (;;)
        pause();
    return 0;
}

static void test_sigkill_mid_generation_keeps_prompt_and_db_consistent(void **state)
{
    const char *db = tu_path("crash.db");
    gf_close(ft_open(db, true)); /* create it (and hash the model) before forking */
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        gf_config c = ft_config(db, true);
        gf_service *svc = gf_open(&c);
        if (!svc)
            _exit(2);
        ghost_gen_params p = ghost_default_gen_params();
        p.max_tokens = 200;
        gf_result *res = NULL;
        gf_process_prompt(svc, GF_NEW_CONVERSATION, crash_prompt, &p, signal_then_hang, &fds[1],
                          &res);
        _exit(4); /* not reached */
    }
    close(fds[1]);
    char ch = 0;
    ssize_t n = read(fds[0], &ch, 1);
    close(fds[0]);
    assert_int_equal(n, 1);
    assert_int_equal(ch, 'g');
    assert_int_equal(kill(pid, SIGKILL), 0);
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);

    gf_service *svc = ft_open(db, true);
    assert_int_equal(gf_check(svc), GF_OK);
    ft_rows rows = {0};
    assert_int_equal(gf_history(svc, 0, 0, ft_collect, &rows), GF_OK);
    assert_int_equal(rows.n, 1);
    assert_string_equal(rows.row[0].prompt, crash_prompt);
    assert_false(rows.row[0].answered); /* pending: the process died during it */

    /* the next run works, in the same conversation too */
    gf_result *res = NULL;
    assert_int_equal(
        gf_process_prompt(svc, rows.row[0].conversation_id, "The next day", NULL, NULL, NULL, &res),
        GF_OK);
    assert_true(res->response_id > 0);
    gf_free_result(res);
    memset(&rows, 0, sizeof rows);
    assert_int_equal(gf_history(svc, 0, 0, ft_collect, &rows), GF_OK);
    assert_int_equal(rows.n, 2);
    assert_false(rows.row[0].answered);
    assert_true(rows.row[1].answered);
    assert_int_equal(gf_check(svc), GF_OK);
    gf_close(svc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigkill_mid_generation_keeps_prompt_and_db_consistent),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tu_tmpdir_cleanup();
    return rc;
}
