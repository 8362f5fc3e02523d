/*
 * fuzz_chat_template.c — libFuzzer harness for chat template detection and
 * formatting (src/llm/chat.c).
 *
 * Input: NUL-separated fields. The first is the template; "@N" instead picks
 * the N-th real template of ../shared/models/chat-templates (read once, at
 * start-up), so mutated conversations also meet the detector's real inputs.
 * The fields after it are role, content, role, content, ... The last byte's
 * low bit is add_assistant. Checked beyond "no crash, no over-read":
 *
 *   - chat_format fails exactly when chat_detect says CHAT_UNKNOWN, and then
 *     with GHOST_ERR_UNSUPPORTED and a message;
 *   - every family's name is detected as that family;
 *   - every user and assistant content appears in the output (trimmed, for
 *     the families that trim), and so does a system content except in gemma,
 *     which folds it into the next user turn.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm/chat.h"
#include "llm/llm_internal.h"

#ifndef GF_SOURCE_DIR
#define GF_SOURCE_DIR "."
#endif

#define MAX_TEMPLATES 64
#define MAX_MESSAGES  16

static char *templates[MAX_TEMPLATES];
static size_t n_templates;

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *s = NULL;
    size_t len = 0;
    if (fseek(f, 0, SEEK_END) == 0) {
        long n = ftell(f);
        if (n >= 0 && fseek(f, 0, SEEK_SET) == 0 && (s = malloc((size_t)n + 1)) != NULL) {
            len = fread(s, 1, (size_t)n, f);
            s[len] = '\0';
        }
    }
    fclose(f);
    return s;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    const char *dir = getenv("GF_FUZZ_TEMPLATE_DIR");
    if (!dir)
        dir = GF_SOURCE_DIR "/../shared/models/chat-templates";
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "fuzz_chat_template: cannot open %s\n", dir);
        abort();
    }
    char *names[MAX_TEMPLATES];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < MAX_TEMPLATES) {
        size_t l = strlen(e->d_name);
        if (l > 6 && strcmp(e->d_name + l - 6, ".jinja") == 0)
            names[n++] = strdup(e->d_name);
    }
    closedir(d);
    /* sorted, so "@N" means the same template on every machine */
    qsort(names, n, sizeof *names, by_name);
    for (size_t i = 0; i < n; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if ((templates[n_templates] = read_text(path)) == NULL) {
            fprintf(stderr, "fuzz_chat_template: cannot read %s\n", path);
            abort();
        }
        n_templates++;
        free(names[i]);
    }
    if (n_templates == 0) {
        fprintf(stderr, "fuzz_chat_template: no *.jinja in %s\n", dir);
        abort();
    }
    for (int f = CHAT_PLAIN; f < CHAT_FAMILY_COUNT; f++)
        if (chat_detect(chat_family_name((chat_family)f)) != (chat_family)f)
            __builtin_trap();
    return 0;
}

static bool is_space(char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

/* 1 when s, without its leading and trailing ASCII whitespace, occurs in out. */
static bool contains_trimmed(const char *out, const char *s)
{
    size_t n = strlen(s);
    while (n && is_space(*s))
        s++, n--;
    while (n && is_space(s[n - 1]))
        n--;
    return n == 0 || memmem(out, strlen(out), s, n) != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || size > 65536)
        return 0;
    bool add_assistant = data[size - 1] & 1;
    /* a NUL-terminated copy whose fields are the NUL-separated pieces */
    char *buf = malloc(size + 1);
    if (!buf)
        abort();
    memcpy(buf, data, size);
    buf[size] = '\0';
    char *field[1 + 2 * MAX_MESSAGES];
    size_t n_fields = 0;
    for (char *p = buf; p <= buf + size && n_fields < 1 + 2 * MAX_MESSAGES; p += strlen(p) + 1)
        field[n_fields++] = p;

    const char *tmpl = field[0];
    if (tmpl[0] == '@')
        tmpl = templates[strtoul(tmpl + 1, NULL, 10) % n_templates];
    ghost_chat_message msgs[MAX_MESSAGES];
    size_t n = (n_fields - 1) / 2;
    for (size_t i = 0; i < n; i++)
        msgs[i] = (ghost_chat_message){field[1 + 2 * i], field[2 + 2 * i]};

    chat_family fam = chat_detect(tmpl);
    char *out = NULL;
    ghost_status st = chat_format(tmpl, msgs, n, add_assistant, &out);
    if (fam == CHAT_UNKNOWN) {
        if (st != GHOST_ERR_UNSUPPORTED || out != NULL || !ghost_thread_errmsg()[0])
            __builtin_trap();
    } else {
        if (st != GHOST_OK || out == NULL)
            __builtin_trap();
        for (size_t i = 0; i < n; i++) {
            bool shown = strcmp(msgs[i].role, "user") == 0 ||
                         strcmp(msgs[i].role, "assistant") == 0 ||
                         (strcmp(msgs[i].role, "system") == 0 && fam != CHAT_GEMMA);
            if (shown && !contains_trimmed(out, msgs[i].content))
                __builtin_trap(); /* a turn went missing */
        }
    }
    free(out);
    free(buf);
    return 0;
}
