/*
 * test_flow_cli.c — the history commands of the ghostflow program, run as a
 * user would: history (text and JSON) shows exchanges with answers in order,
 * search and export find and write them, a wrong key exits with code 3 and
 * the agreed message, rekey switches keys, --key warns, output that cannot
 * be written (stdout on /dev/full) fails with the reason, and `chat` driven
 * through a pseudo-terminal answers two turns, survives Ctrl-C at the prompt
 * and leaves on /quit with both exchanges stored in one conversation.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include "flow_test.h"

/* Runs "ghostflow ARGS" through the shell with GHOSTFLOW_KEY=key (unset when
 * NULL) and no stdin; stdout into out, stderr into err; returns the exit status. */
static int run_gf(const char *key, const char *args, char *out, size_t out_cap, char *err,
                  size_t err_cap)
{
    char cmd[2048];
    if (key)
        setenv("GHOSTFLOW_KEY", key, 1);
    else
        unsetenv("GHOSTFLOW_KEY");
    snprintf(cmd, sizeof cmd, "%s %s </dev/null", tu_program("ghostflow"), args);
    int st = tu_run(cmd, out, out_cap, err, err_cap);
    unsetenv("GHOSTFLOW_KEY");
    return st;
}

static const char *const prompts[3] = {"Once upon a time", "The cat sat", "A big red ball"};
static char answers[3][2048];
static char db_path[512];

/* One database with three exchanges, made through the library (cheap KDF). */
static int setup_db(void **state)
{
    snprintf(db_path, sizeof db_path, "%s", tu_path("cli.db"));
    gf_service *svc = ft_open(db_path, true);
    int64_t conv = GF_NEW_CONVERSATION;
    for (int i = 0; i < 3; i++) {
        gf_result *res = NULL;
        if (gf_process_prompt(svc, conv, prompts[i], NULL, NULL, NULL, &res) != GF_OK)
            fail_msg("prompt %d: %s", i, gf_errmsg(svc));
        conv = res->conversation_id;
        snprintf(answers[i], sizeof answers[i], "%s", res->text);
        gf_free_result(res);
    }
    gf_close(svc);
    return 0;
}

static void test_history_json_lists_three_prompts_with_answers_in_order(void **state)
{
    static char out[1 << 16], err[4096];
    char args[1024];
    snprintf(args, sizeof args, "history --json --db '%s'", db_path);
    assert_int_equal(run_gf(FT_KEY, args, out, sizeof out, err, sizeof err), 0);
    cJSON *arr = cJSON_Parse(out);
    assert_non_null(arr);
    assert_int_equal(cJSON_GetArraySize(arr), 3);
    for (int i = 0; i < 3; i++) {
        cJSON *e = cJSON_GetArrayItem(arr, i);
        assert_string_equal(cJSON_GetObjectItem(e, "prompt")->valuestring, prompts[i]);
        assert_string_equal(cJSON_GetObjectItem(e, "status")->valuestring, "answered");
        cJSON *r = cJSON_GetObjectItem(e, "response");
        assert_string_equal(cJSON_GetObjectItem(r, "text")->valuestring, answers[i]);
        assert_true(cJSON_GetObjectItem(r, "completion_tokens")->valuedouble > 0);
        assert_int_equal(strlen(cJSON_GetObjectItem(e, "model_hash")->valuestring), 64);
    }
    cJSON_Delete(arr);
    /* the text form shows the same, in the same order */
    snprintf(args, sizeof args, "history --db '%s'", db_path);
    assert_int_equal(run_gf(FT_KEY, args, out, sizeof out, err, sizeof err), 0);
    const char *a = strstr(out, "> Once upon a time");
    const char *b = strstr(out, "> The cat sat");
    const char *c = strstr(out, "> A big red ball");
    assert_true(a && b && c && a < b && b < c);
    /* --limit keeps the last ones */
    snprintf(args, sizeof args, "history --limit 1 --db '%s'", db_path);
    assert_int_equal(run_gf(FT_KEY, args, out, sizeof out, err, sizeof err), 0);
    assert_null(strstr(out, "> Once upon a time"));
    assert_non_null(strstr(out, "> A big red ball"));
}

static void test_wrong_key_exits_3_with_message(void **state)
{
    char out[4096], err[4096], args[1024];
    snprintf(args, sizeof args, "history --db '%s'", db_path);
    assert_int_equal(run_gf("definitely wrong", args, out, sizeof out, err, sizeof err), 3);
    assert_non_null(strstr(err, "wrong key or not a ghostflow database"));
    assert_null(strstr(err, "definitely wrong"));
    assert_string_equal(out, "");
}

static void test_missing_database_is_an_error_not_created(void **state)
{
    char out[4096], err[4096], args[1024];
    snprintf(args, sizeof args, "history --db '%s'", tu_path("nothing-here.db"));
    assert_int_equal(run_gf(FT_KEY, args, out, sizeof out, err, sizeof err), 1);
    assert_non_null(strstr(err, "no history database"));
    struct stat st;
    assert_int_not_equal(stat(tu_path("nothing-here.db"), &st), 0);
}

static void test_search_finds_an_exchange(void **state)
{
    static char out[1 << 16];
    char err[4096], args[1024];
    snprintf(args, sizeof args, "search --json --db '%s' red ball", db_path);
    assert_int_equal(run_gf(FT_KEY, args, out, sizeof out, err, sizeof err), 0);
    cJSON *arr = cJSON_Parse(out);
    assert_non_null(arr);
    assert_int_equal(cJSON_GetArraySize(arr), 1);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(arr, 0), "prompt")->valuestring,
                        "A big red ball");
    cJSON_Delete(arr);
    snprintf(args, sizeof args, "search --db '%s'", db_path);
    assert_int_equal(run_gf(FT_KEY, args, out, sizeof out, err, sizeof err), 2);
    /* No match: nothing on stdout, a note on stderr, success. */
    snprintf(args, sizeof args, "search --db '%s' zebraquokka", db_path);
    assert_int_equal(run_gf(FT_KEY, args, out, sizeof out, err, sizeof err), 0);
    assert_string_equal(out, "");
    assert_non_null(strstr(err, "no exchanges found"));
}

static void test_export_writes_jsonl_and_markdown(void **state)
{
    static char out[1 << 16];
    char err[4096], args[1024];
    snprintf(args, sizeof args, "export --format jsonl --db '%s'", db_path);
    assert_int_equal(run_gf(FT_KEY, args, out, sizeof out, err, sizeof err), 0);
    int lines = 0;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n"), lines++) {
        cJSON *o = cJSON_Parse(line);
        assert_non_null(o);
        assert_string_equal(cJSON_GetObjectItem(o, "prompt")->valuestring, prompts[lines]);
        cJSON_Delete(o);
    }
    assert_int_equal(lines, 3);
    const char *md = tu_path("export.md");
    snprintf(args, sizeof args, "export --format markdown -o '%s' --db '%s'", md, db_path);
    assert_int_equal(run_gf(FT_KEY, args, out, sizeof out, err, sizeof err), 0);
    size_t len;
    char *text = tu_read_file(md, &len);
    assert_non_null(text);
    assert_non_null(strstr(text, "## Conversation 1: Once upon a time"));
    assert_non_null(strstr(text, "A big red ball"));
    struct stat st;
    assert_int_equal(stat(md, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    free(text);
    snprintf(args, sizeof args, "export --format pdf --db '%s'", db_path);
    assert_int_equal(run_gf(FT_KEY, args, out, sizeof out, err, sizeof err), 2);
}

static void test_rekey_switches_keys_and_key_flag_warns(void **state)
{
    char out[8192], err[4096], args[1400];
    const char *copy = tu_path("rekey.db");
    snprintf(args, sizeof args, "cp '%s' '%s'", db_path, copy);
    assert_int_equal(system(args), 0);
    const char *keyfile = tu_path("new.key");
    FILE *f = fopen(keyfile, "w");
    assert_non_null(f);
    fputs("brand new passphrase\n", f);
    fclose(f);
    snprintf(args, sizeof args, "rekey --db '%s' --new-key-file '%s'", copy, keyfile);
    int rc = run_gf(FT_KEY, args, out, sizeof out, err, sizeof err);
    if (rc != 0)
        fail_msg("rekey exited %d: %s", rc, err);
    snprintf(args, sizeof args, "history --db '%s'", copy);
    assert_int_equal(run_gf(FT_KEY, args, out, sizeof out, err, sizeof err), 3);
    snprintf(args, sizeof args, "history --db '%s' --key-file '%s'", copy, keyfile);
    assert_int_equal(run_gf(NULL, args, out, sizeof out, err, sizeof err), 0);
    assert_non_null(strstr(out, "> The cat sat"));
    snprintf(args, sizeof args, "history --db '%s' --key 'brand new passphrase'", copy);
    assert_int_equal(run_gf(NULL, args, out, sizeof out, err, sizeof err), 0);
    assert_non_null(strstr(err, "warning"));
    assert_null(strstr(err, "brand new passphrase"));
}

/* --conversations lists conversations without calling the listing empty,
 * and says "no conversations found" (not "exchanges") when there are none. */
static void test_conversation_list_is_reported_as_conversations(void **state)
{
    char out[8192], err[4096], args[1024];
    snprintf(args, sizeof args, "history --conversations --db '%s'", db_path);
    assert_int_equal(run_gf(FT_KEY, args, out, sizeof out, err, sizeof err), 0);
    assert_non_null(strstr(out, "3 exchanges"));
    if (strstr(err, "found"))
        fail_msg("a listing of one conversation says: %s", err);
    const char *empty = tu_path("empty.db");
    gf_close(ft_open(empty, false));
    snprintf(args, sizeof args, "history --conversations --db '%s'", empty);
    assert_int_equal(run_gf(FT_KEY, args, out, sizeof out, err, sizeof err), 0);
    assert_string_equal(out, "");
    assert_non_null(strstr(err, "ghostflow history: no conversations found"));
}

/* A --key-file that cannot be read says so with the path and the reason,
 * not that its first line is empty. */
static void test_key_file_that_is_a_directory_is_named_with_the_reason(void **state)
{
    char out[4096], err[4096], args[1024];
    snprintf(args, sizeof args, "history --db '%s' --key-file '%s'", db_path, tu_tmpdir());
    assert_int_equal(run_gf(NULL, args, out, sizeof out, err, sizeof err), 1);
    char want[600];
    snprintf(want, sizeof want, "key file %s: cannot be read: Is a directory", tu_tmpdir());
    if (!strstr(err, want))
        fail_msg("stderr: %s", err);
}

/* ---- read-only media ---------------------------------------------------------- */

/* Runs the shell command cmd ($0 = dir, $1 = the ghostflow program) with
 * dir mounted read-only over itself, in a mount namespace of its own (the
 * tests run as root, for whom permissions are no obstacle: only a read-only
 * file system is), and GHOSTFLOW_KEY set; as tu_run otherwise. */
static int run_read_only(const char *dir, const char *cmd, char *out, size_t out_cap, char *err,
                         size_t err_cap)
{
    char line[2048];
    setenv("GHOSTFLOW_KEY", FT_KEY, 1);
    snprintf(line, sizeof line,
             "unshare -m sh -c 'mount --bind \"$0\" \"$0\" && mount -o remount,bind,ro \"$0\""
             " && %s' '%s' '%s'",
             cmd, dir, tu_program("ghostflow"));
    int st = tu_run(line, out, out_cap, err, err_cap);
    unsetenv("GHOSTFLOW_KEY");
    return st;
}

/* "ghostflow ARGS" through run_read_only. */
static int run_gf_read_only(const char *dir, const char *args, char *out, size_t out_cap, char *err,
                            size_t err_cap)
{
    char cmd[1100];
    if (snprintf(cmd, sizeof cmd, "exec \"$1\" %s </dev/null", args) >= (int)sizeof cmd)
        fail_msg("command too long: %s", args);
    return run_read_only(dir, cmd, out, out_cap, err, err_cap);
}

/* A directory that holds copy.db, a copy of the test history. */
static const char *read_only_dir(const char *name)
{
    const char *dir = tu_path(name);
    char db[600];
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(db, sizeof db, "%s/copy.db", dir);
    tu_copy_file(db_path, db);
    /* the simulation must hold, or the test proves nothing: fail, never skip */
    char err[4096];
    if (run_read_only(dir, "echo x >> \"$0/copy.db\"", NULL, 0, err, sizeof err) == 0 ||
        !strstr(err, "Read-only file system"))
        fail_msg("cannot simulate read-only media (unshare -m and a read-only bind mount, as"
                 " root): %s",
                 err);
    return dir;
}

/* history, search and export read a history on a read-only file system (a
 * WAL database with no -shm beside it, which SQLite cannot create there);
 * run --db says why it cannot store there; a -wal file that holds changes
 * makes the file unreadable there, and the error says so, naming the file
 * once. */
static void test_reading_commands_work_on_read_only_media(void **state)
{
    ft_require_model();
    static char out[1 << 16];
    char err[4096], args[1024];
    const char *dir = read_only_dir("ro");
    static const struct {
        const char *args, *want;
    } reads[] = {
        {"history", "> The cat sat"},
        {"history --json", "\"A big red ball\""},
        {"history --conversations", "3 exchanges"},
        {"search red ball", "> A big red ball"},
        {"export", "\"prompt\":\"Once upon a time\""},
        {"export --format markdown", "## Conversation 1"},
    };
    for (size_t i = 0; i < sizeof reads / sizeof reads[0]; i++) {
        snprintf(args, sizeof args, "%s --db \"$0/copy.db\"", reads[i].args);
        int rc = run_gf_read_only(dir, args, out, sizeof out, err, sizeof err);
        if (rc != 0 || !strstr(out, reads[i].want))
            fail_msg("%s on read-only media: exit %d, stderr: %s\nstdout: %.300s", reads[i].args,
                     rc, err, out);
    }
    snprintf(args, sizeof args, "run -m %s/%s -n 4 --db \"$0/copy.db\" Once",
             getenv("GF_SOURCE_DIR"), FT_MODEL);
    assert_int_equal(run_gf_read_only(dir, args, out, sizeof out, err, sizeof err), 1);
    if (!strstr(err, "copy.db: cannot open for writing: Read-only file system"))
        fail_msg("run --db on read-only media: %s", err);

    /* a live database's file and -wal, copied without the -shm */
    const char *live = tu_path("live.db"), *walled = tu_path("walled");
    assert_int_equal(mkdir(walled, 0700), 0);
    gf_service *svc = ft_open(live, false);
    int64_t conv, pid;
    assert_int_equal(gf_log_prompt(svc, 0, "still in the wal", NULL, &conv, &pid), GF_OK);
    char from[600], to[600];
    snprintf(to, sizeof to, "%s/copy.db", walled);
    tu_copy_file(live, to);
    snprintf(from, sizeof from, "%s-wal", live);
    snprintf(to, sizeof to, "%s/copy.db-wal", walled);
    tu_copy_file(from, to);
    gf_close(svc);
    assert_int_equal(
        run_gf_read_only(walled, "history --db \"$0/copy.db\"", out, sizeof out, err, sizeof err),
        1);
    const char *at = strstr(err, "copy.db: cannot open read-only: its -wal file");
    if (!at || !strstr(err, "Read-only file system") || strstr(at + 1, "copy.db:"))
        fail_msg("history with a -wal on read-only media: %s", err);
}

/* Every history command with stdout (or -o) on /dev/full exits 1 and says
 * why, instead of exiting 0 with the output lost. */
static void test_output_to_a_full_device_exits_1_with_the_reason(void **state)
{
    ft_require_model();
    static const struct {
        const char *args, *prog, *name;
    } cases[] = {
        {"history", "history", "output"},
        {"history --json", "history", "output"},
        {"history --conversations", "history", "output"},
        {"history --conversations --json", "history", "output"},
        {"search red ball", "search", "output"},
        {"search --json red ball", "search", "output"},
        {"export", "export", "output"},
        {"export --format markdown", "export", "output"},
        {"export --format markdown -o /dev/full", "export", "/dev/full"},
        {"export -o /dev/full", "export", "/dev/full"},
    };
    char args[1024], err[8192], want[128];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(args, sizeof args, "%s --db '%s' >/dev/full", cases[i].args, db_path);
        int rc = run_gf(FT_KEY, args, NULL, 0, err, sizeof err);
        snprintf(want, sizeof want, "ghostflow %s: writing %s: No space left on device",
                 cases[i].prog, cases[i].name);
        if (rc != 1 || !strstr(err, want))
            fail_msg("%s >/dev/full: exit %d (want 1), stderr:\n%s", cases[i].args, rc, err);
    }
    /* chat: the greeting, the answer and /history all go nowhere */
    const char *db = tu_path("chat-full.db");
    gf_close(ft_open(db, false));
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "printf 'Once upon a time\\n/history\\n' | GHOSTFLOW_KEY='%s' %s chat -m %s"
             " --db '%s' -n 8 --temp 0 -t 1 >/dev/full",
             FT_KEY, tu_program("ghostflow"), FT_MODEL, db);
    int rc = tu_run(cmd, NULL, 0, err, sizeof err);
    if (rc != 1 || !strstr(err, "ghostflow chat: writing output: No space left on device"))
        fail_msg("chat >/dev/full: exit %d (want 1), stderr:\n%s", rc, err);
}

/* ---- chat through a pseudo-terminal ---------------------------------------- */

typedef struct pty_session {
    int fd;
    pid_t pid;
    char buf[1 << 16];
    size_t len;
} pty_session;

/* Reads until needle appears after position from; returns its offset or -1
 * after timeout_ms. */
static long pty_wait_for(pty_session *s, size_t from, const char *needle, int timeout_ms)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        s->buf[s->len] = '\0';
        if (s->len > from) {
            char *hit = strstr(s->buf + from, needle);
            if (hit)
                return hit - s->buf;
        }
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        long elapsed = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
        if (elapsed > timeout_ms || s->len + 1 >= sizeof s->buf)
            return -1;
        struct pollfd p = {s->fd, POLLIN, 0};
        if (poll(&p, 1, 200) > 0) {
            ssize_t n = read(s->fd, s->buf + s->len, sizeof s->buf - 1 - s->len);
            if (n <= 0)
                return -1; /* the child closed the terminal */
            s->len += (size_t)n;
        }
    }
}

static void pty_send(pty_session *s, const char *text)
{
    size_t n = strlen(text);
    assert_int_equal(write(s->fd, text, n), (ssize_t)n);
}

static void test_chat_over_pty_answers_two_turns_and_quits(void **state)
{
    ft_require_model();
    const char *db = tu_path("chat.db"), *prog = tu_program("ghostflow");
    gf_close(ft_open(db, false)); /* created with the cheap KDF */
    pty_session *s = calloc(1, sizeof *s);
    assert_non_null(s);
    fflush(NULL);
    s->pid = forkpty(&s->fd, NULL, NULL, NULL);
    assert_true(s->pid >= 0);
    if (s->pid == 0) {
        setenv("GHOSTFLOW_KEY", FT_KEY, 1);
        setenv("TERM", "dumb", 1);
        execl(prog, "ghostflow", "chat", "-m", FT_MODEL, "--db", db, "-n", "8", "--temp", "0", "-t",
              "1", (char *)NULL);
        _exit(127);
    }
    int timeout = 60000; /* generous: the suite also runs under sanitizers */
    long at = pty_wait_for(s, 0, "> ", timeout);
    assert_true(at >= 0);
    pty_send(s, "Once upon a time\r");
    long echo = pty_wait_for(s, (size_t)at + 2, "Once upon a time", timeout);
    assert_true(echo >= 0);
    at = pty_wait_for(s, (size_t)echo + 16, "> ", timeout);
    assert_true(at >= 0);
    /* Ctrl-C at the prompt must not end the program */
    pty_send(s, "\x03");
    usleep(200000);
    pty_send(s, "The little dog\r");
    echo = pty_wait_for(s, (size_t)at + 2, "The little dog", timeout);
    assert_true(echo >= 0);
    at = pty_wait_for(s, (size_t)echo + 14, "> ", timeout);
    assert_true(at >= 0);
    pty_send(s, "/quit\r");
    int st = 0;
    size_t quit_at = s->len;
    pid_t done = 0;
    /* Drain the output while waiting; once the child has closed the
     * terminal (read fails at once) it may still take a moment to exit. */
    for (int i = 0; i < 600 && (done = waitpid(s->pid, &st, WNOHANG)) == 0; i++)
        if (pty_wait_for(s, quit_at, "\x01never\x01", 100) < 0)
            usleep(100000);
    if (done == 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, &st, 0);
        fail_msg("chat did not leave on /quit; output:\n%s", s->buf);
    }
    close(s->fd);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    free(s);

    gf_service *svc = ft_open(db, false);
    ft_rows rows = {0};
    assert_int_equal(gf_history(svc, 0, 0, ft_collect, &rows), GF_OK);
    assert_int_equal(rows.n, 2);
    assert_string_equal(rows.row[0].prompt, "Once upon a time");
    assert_string_equal(rows.row[1].prompt, "The little dog");
    assert_true(rows.row[0].answered && rows.row[1].answered);
    assert_int_equal(rows.row[0].conversation_id, rows.row[1].conversation_id);
    gf_close(svc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_history_json_lists_three_prompts_with_answers_in_order),
        cmocka_unit_test(test_wrong_key_exits_3_with_message),
        cmocka_unit_test(test_missing_database_is_an_error_not_created),
        cmocka_unit_test(test_search_finds_an_exchange),
        cmocka_unit_test(test_export_writes_jsonl_and_markdown),
        cmocka_unit_test(test_rekey_switches_keys_and_key_flag_warns),
        cmocka_unit_test(test_output_to_a_full_device_exits_1_with_the_reason),
        cmocka_unit_test(test_conversation_list_is_reported_as_conversations),
        cmocka_unit_test(test_key_file_that_is_a_directory_is_named_with_the_reason),
        cmocka_unit_test(test_reading_commands_work_on_read_only_media),
        cmocka_unit_test(test_chat_over_pty_answers_two_turns_and_quits),
    };
    int rc = cmocka_run_group_tests(tests, setup_db, NULL);
    tu_tmpdir_cleanup();
    return rc;
}
