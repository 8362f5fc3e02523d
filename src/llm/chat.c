/*
 * chat.c — chat prompts: recognise a model's chat template family and lay a
 * conversation out the way that family does (see chat.h), plus the public
 * ghost_chat_format.
 *
 * No Jinja is evaluated. Real templates differ in details a fixed layout
 * cannot follow (default system prompts, dates, tool blocks); the layouts
 * here are the turn structure every template of a family shares, the same
 * ones llama.cpp's built-in formatter produces, so a model sees the special
 * tokens it was tuned on.
 *
 * A model whose template matches no family is formatted as chatml by
 * ghost_chat_format (what llama.cpp's server falls back to as well): many
 * fine-tunes with custom templates are chatml underneath, and refusing
 * would leave such a model with no chat at all. chat_format itself reports
 * the template as unsupported, so a caller can choose differently.
 */
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "llm_internal.h"
#include "model.h"

static const char *const family_names[CHAT_FAMILY_COUNT] = {
    [CHAT_UNKNOWN] = "unknown",
    [CHAT_PLAIN] = "plain",
    [CHAT_CHATML] = "chatml",
    [CHAT_PHI4] = "phi4",
    [CHAT_LLAMA2] = "llama2",
    [CHAT_LLAMA2_SYS] = "llama2-sys",
    [CHAT_LLAMA2_SYS_BOS] = "llama2-sys-bos",
    [CHAT_LLAMA2_SYS_STRIP] = "llama2-sys-strip",
    [CHAT_MISTRAL_V1] = "mistral-v1",
    [CHAT_MISTRAL_V3] = "mistral-v3",
    [CHAT_MISTRAL_V3_TEKKEN] = "mistral-v3-tekken",
    [CHAT_MISTRAL_V7] = "mistral-v7",
    [CHAT_LLAMA3] = "llama3",
    [CHAT_PHI3] = "phi3",
    [CHAT_ZEPHYR] = "zephyr",
    [CHAT_GEMMA] = "gemma",
    [CHAT_DEEPSEEK] = "deepseek",
    [CHAT_DEEPSEEK2] = "deepseek2",
    [CHAT_DEEPSEEK3] = "deepseek3",
    [CHAT_COMMAND_R] = "command-r",
};

const char *chat_family_name(chat_family f)
{
    return (unsigned)f < CHAT_FAMILY_COUNT ? family_names[f] : "unknown";
}

const char *chat_family_list(void)
{
    return "chatml, phi4, llama2, llama2-sys, llama2-sys-bos, llama2-sys-strip, mistral-v1, "
           "mistral-v3, mistral-v3-tekken, mistral-v7, llama3, phi3, zephyr, gemma, deepseek, "
           "deepseek2, deepseek3, command-r";
}

/* ---- detection --------------------------------------------------------------- */

static bool has(const char *tmpl, const char *s)
{
    return strstr(tmpl, s) != NULL;
}

/* [INST]-style templates: the official Mistral ones are told apart by their
 * tool blocks and spacing, the rest are llama2 and its variants. */
static chat_family detect_inst(const char *t)
{
    if (has(t, "[SYSTEM_PROMPT]"))
        return CHAT_MISTRAL_V7;
    if (has(t, "' [INST] ' + system_message") || has(t, "[AVAILABLE_TOOLS]")) {
        if (has(t, " [INST]"))
            return CHAT_MISTRAL_V1;
        if (has(t, "\"[INST]\""))
            return CHAT_MISTRAL_V3_TEKKEN;
        return CHAT_MISTRAL_V3;
    }
    if (has(t, "content.strip()"))
        return CHAT_LLAMA2_SYS_STRIP;
    if (has(t, "bos_token + '[INST]"))
        return CHAT_LLAMA2_SYS_BOS;
    if (has(t, "<<SYS>>"))
        return CHAT_LLAMA2_SYS;
    return CHAT_LLAMA2;
}

chat_family chat_detect(const char *t)
{
    if (!t || !*t)
        return CHAT_PLAIN;
    for (int f = CHAT_PLAIN; f < CHAT_FAMILY_COUNT; f++)
        if (strcmp(t, family_names[f]) == 0)
            return (chat_family)f;
    /* Order matters: a template may quote another family's tokens (tool
     * templates mention several), so the most distinctive markers go first. */
    if (has(t, "<|im_start|>"))
        return has(t, "<|im_sep|>") ? CHAT_PHI4 : CHAT_CHATML;
    if (strncmp(t, "mistral", 7) == 0 || has(t, "[INST]"))
        return detect_inst(t);
    if (has(t, "<|assistant|>") && has(t, "<|end|>"))
        return CHAT_PHI3;
    if (has(t, "<|user|>"))
        return CHAT_ZEPHYR;
    if (has(t, "<start_of_turn>"))
        return CHAT_GEMMA;
    if (has(t, "### Instruction:") && has(t, "<|EOT|>"))
        return CHAT_DEEPSEEK;
    if (has(t, "<|START_OF_TURN_TOKEN|>") && has(t, "<|USER_TOKEN|>"))
        return CHAT_COMMAND_R;
    if (has(t, "<|start_header_id|>") && has(t, "<|end_header_id|>"))
        return CHAT_LLAMA3;
    if (has(t, "'Assistant: ' + message['content'] + eos_token"))
        return CHAT_DEEPSEEK2;
    if (has(t, "<\xef\xbd\x9c"
               "Assistant\xef\xbd\x9c>") &&
        has(t, "<\xef\xbd\x9c"
               "User\xef\xbd\x9c>"))
        return CHAT_DEEPSEEK3;
    return CHAT_UNKNOWN;
}

/* ---- output buffer ----------------------------------------------------------- */

typedef struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
} sbuf;

static void sb_addn(sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (n > SIZE_MAX - b->len - 1) {
        b->oom = true;
        return;
    }
    size_t need = b->len + n + 1;
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < need)
            cap = cap > SIZE_MAX / 2 ? need : 2 * cap;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_add(sbuf *b, const char *s)
{
    sb_addn(b, s, strlen(s));
}

static bool is_space(char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

/* s without leading and trailing ASCII whitespace (Jinja's trim / strip). */
static void sb_add_trimmed(sbuf *b, const char *s)
{
    size_t n = strlen(s);
    while (n && is_space(*s))
        s++, n--;
    while (n && is_space(s[n - 1]))
        n--;
    sb_addn(b, s, n);
}

/* ---- layouts ----------------------------------------------------------------- */

#define DS_USER                                                                                    \
    "<\xef\xbd\x9c"                                                                                \
    "User\xef\xbd\x9c>" /* <｜User｜> */
#define DS_ASSISTANT                                                                               \
    "<\xef\xbd\x9c"                                                                                \
    "Assistant\xef\xbd\x9c>" /* <｜Assistant｜> */
#define DS_EOS                                                                                     \
    "<\xef\xbd\x9c"                                                                                \
    "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>"

static bool role_is(const ghost_chat_message *m, const char *r)
{
    return strcmp(m->role, r) == 0;
}

static void fmt_plain(sbuf *b, const ghost_chat_message *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (i)
            sb_add(b, "\n");
        sb_add(b, m[i].content);
    }
}

/* "<open>role<mid>content<close>" per message, "<open>gen" at the end: the
 * layout of chatml, phi3, phi4, zephyr and llama3. */
static void fmt_tagged(sbuf *b, const ghost_chat_message *m, size_t n, bool add_ass,
                       const char *open, const char *mid, const char *close, bool trim,
                       bool skip_empty_system, const char *gen)
{
    for (size_t i = 0; i < n; i++) {
        if (skip_empty_system && role_is(&m[i], "system") && !m[i].content[0])
            continue;
        sb_add(b, open);
        sb_add(b, m[i].role);
        sb_add(b, mid);
        if (trim)
            sb_add_trimmed(b, m[i].content);
        else
            sb_add(b, m[i].content);
        sb_add(b, close);
    }
    if (add_ass)
        sb_add(b, gen);
}

static void fmt_mistral(sbuf *b, const ghost_chat_message *m, size_t n, chat_family f)
{
    if (f == CHAT_MISTRAL_V7) {
        for (size_t i = 0; i < n; i++) {
            if (role_is(&m[i], "system")) {
                sb_add(b, "[SYSTEM_PROMPT] ");
                sb_add(b, m[i].content);
                sb_add(b, "[/SYSTEM_PROMPT]");
            } else if (role_is(&m[i], "user")) {
                sb_add(b, "[INST] ");
                sb_add(b, m[i].content);
                sb_add(b, "[/INST]");
            } else {
                sb_add(b, " ");
                sb_add(b, m[i].content);
                sb_add(b, "</s>");
            }
        }
        return;
    }
    const char *lead = f == CHAT_MISTRAL_V1 ? " " : "";
    const char *trail = f == CHAT_MISTRAL_V3_TEKKEN ? "" : " ";
    bool in_turn = false;
    for (size_t i = 0; i < n; i++) {
        if (!in_turn) {
            sb_add(b, lead);
            sb_add(b, "[INST]");
            sb_add(b, trail);
            in_turn = true;
        }
        if (role_is(&m[i], "system")) {
            sb_add(b, m[i].content);
            sb_add(b, "\n\n");
        } else if (role_is(&m[i], "user")) {
            sb_add(b, m[i].content);
            sb_add(b, lead);
            sb_add(b, "[/INST]");
        } else {
            sb_add(b, trail);
            if (f == CHAT_MISTRAL_V3)
                sb_add_trimmed(b, m[i].content);
            else
                sb_add(b, m[i].content);
            sb_add(b, "</s>");
            in_turn = false;
        }
    }
}

static void fmt_llama2(sbuf *b, const ghost_chat_message *m, size_t n, chat_family f)
{
    bool sys_block = f != CHAT_LLAMA2;
    bool in_turn = true; /* the first [INST] follows the tokenizer's BOS */
    sb_add(b, "[INST] ");
    for (size_t i = 0; i < n; i++) {
        if (!in_turn) {
            sb_add(b, f == CHAT_LLAMA2_SYS_BOS ? "<s>[INST] " : "[INST] ");
            in_turn = true;
        }
        if (role_is(&m[i], "system") && sys_block)
            sb_add(b, "<<SYS>>\n");
        if (f == CHAT_LLAMA2_SYS_STRIP)
            sb_add_trimmed(b, m[i].content);
        else
            sb_add(b, m[i].content);
        if (role_is(&m[i], "system")) {
            sb_add(b, sys_block ? "\n<</SYS>>\n\n" : "\n");
        } else if (role_is(&m[i], "user")) {
            sb_add(b, " [/INST]");
        } else {
            sb_add(b, "</s>");
            in_turn = false;
        }
    }
}

/* Gemma has no system role: the system text opens the first user turn. */
static void fmt_gemma(sbuf *b, const ghost_chat_message *m, size_t n, bool add_ass)
{
    const char *sys = NULL;
    for (size_t i = 0; i < n; i++) {
        if (role_is(&m[i], "system")) {
            sys = m[i].content;
            continue;
        }
        bool model = role_is(&m[i], "assistant");
        sb_add(b, "<start_of_turn>");
        sb_add(b, model ? "model" : m[i].role);
        sb_add(b, "\n");
        if (sys && !model) {
            sbuf t = {0};
            sb_add_trimmed(&t, sys);
            if (t.len) {
                sb_addn(b, t.p, t.len);
                sb_add(b, "\n\n");
            }
            b->oom |= t.oom;
            free(t.p);
            sys = NULL;
        }
        sb_add_trimmed(b, m[i].content);
        sb_add(b, "<end_of_turn>\n");
    }
    if (add_ass)
        sb_add(b, "<start_of_turn>model\n");
}

/* Families that put each role's content between a fixed prefix and suffix
 * (the system text bare); gen opens the assistant's turn. */
typedef struct role_layout {
    const char *sys_pre, *sys_post, *user_pre, *user_post, *ass_pre, *ass_post, *gen;
    bool trim;
} role_layout;

static const role_layout layout_deepseek = {
    "", "", "### Instruction:\n", "\n", "### Response:\n", "\n<|EOT|>\n", "### Response:\n", false};
static const role_layout layout_deepseek2 = {
    "", "\n\n", "User: ", "\n\n", "Assistant: ", DS_EOS, "Assistant:", false};
static const role_layout layout_deepseek3 = {"",           "\n\n", DS_USER,      "",
                                             DS_ASSISTANT, DS_EOS, DS_ASSISTANT, false};
static const role_layout layout_command_r = {
    "<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>",  "<|END_OF_TURN_TOKEN|>",
    "<|START_OF_TURN_TOKEN|><|USER_TOKEN|>",    "<|END_OF_TURN_TOKEN|>",
    "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>", "<|END_OF_TURN_TOKEN|>",
    "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>", true};

static void fmt_roles(sbuf *b, const ghost_chat_message *m, size_t n, bool add_ass,
                      const role_layout *l)
{
    for (size_t i = 0; i < n; i++) {
        const char *pre, *post;
        if (role_is(&m[i], "system"))
            pre = l->sys_pre, post = l->sys_post;
        else if (role_is(&m[i], "user"))
            pre = l->user_pre, post = l->user_post;
        else if (role_is(&m[i], "assistant"))
            pre = l->ass_pre, post = l->ass_post;
        else
            continue; /* these layouts have no other roles */
        sb_add(b, pre);
        if (l->trim)
            sb_add_trimmed(b, m[i].content);
        else
            sb_add(b, m[i].content);
        sb_add(b, post);
    }
    if (add_ass)
        sb_add(b, l->gen);
}

ghost_status chat_format(const char *tmpl, const ghost_chat_message *msgs, size_t n,
                         bool add_assistant, char **out)
{
    if (!out)
        return ghost_set_error(GHOST_ERR_INVALID_ARGUMENT, "chat format: out is NULL");
    *out = NULL;
    if (!msgs && n)
        return ghost_set_error(GHOST_ERR_INVALID_ARGUMENT, "chat format: messages are NULL");
    for (size_t i = 0; i < n; i++)
        if (!msgs[i].role || !msgs[i].content)
            return ghost_set_error(GHOST_ERR_INVALID_ARGUMENT, "chat format: message %zu has no %s",
                                   i, msgs[i].role ? "content" : "role");
    chat_family f = chat_detect(tmpl);
    if (f == CHAT_UNKNOWN) {
        /* The template comes from the model file: show a bounded, printable start. */
        char head[41];
        size_t k = 0;
        for (; k < sizeof head - 1 && tmpl[k]; k++)
            head[k] = tmpl[k] >= 0x20 && tmpl[k] < 0x7f ? tmpl[k] : ' ';
        head[k] = '\0';
        return ghost_set_error(GHOST_ERR_UNSUPPORTED,
                               "chat template not recognised (%zu bytes, starting '%s'); "
                               "supported families: %s",
                               strlen(tmpl), head, chat_family_list());
    }
    sbuf b = {0};
    sb_addn(&b, "", 0);
    switch (f) {
    case CHAT_PLAIN: fmt_plain(&b, msgs, n); break;
    case CHAT_CHATML:
        fmt_tagged(&b, msgs, n, add_assistant, "<|im_start|>", "\n", "<|im_end|>\n", false, false,
                   "<|im_start|>assistant\n");
        break;
    case CHAT_PHI4:
        fmt_tagged(&b, msgs, n, add_assistant, "<|im_start|>", "<|im_sep|>", "<|im_end|>", false,
                   false, "<|im_start|>assistant<|im_sep|>");
        break;
    case CHAT_PHI3:
        fmt_tagged(&b, msgs, n, add_assistant, "<|", "|>\n", "<|end|>\n", false, true,
                   "<|assistant|>\n");
        break;
    case CHAT_ZEPHYR:
        fmt_tagged(&b, msgs, n, add_assistant, "<|", "|>\n",
                   tmpl && has(tmpl, "<|endoftext|>") ? "<|endoftext|>\n" : "</s>\n", false, false,
                   "<|assistant|>\n");
        break;
    case CHAT_LLAMA3:
        fmt_tagged(&b, msgs, n, add_assistant, "<|start_header_id|>", "<|end_header_id|>\n\n",
                   "<|eot_id|>", true, false, "<|start_header_id|>assistant<|end_header_id|>\n\n");
        break;
    case CHAT_MISTRAL_V1:
    case CHAT_MISTRAL_V3:
    case CHAT_MISTRAL_V3_TEKKEN:
    case CHAT_MISTRAL_V7: fmt_mistral(&b, msgs, n, f); break;
    case CHAT_LLAMA2:
    case CHAT_LLAMA2_SYS:
    case CHAT_LLAMA2_SYS_BOS:
    case CHAT_LLAMA2_SYS_STRIP: fmt_llama2(&b, msgs, n, f); break;
    case CHAT_GEMMA: fmt_gemma(&b, msgs, n, add_assistant); break;
    case CHAT_DEEPSEEK: fmt_roles(&b, msgs, n, add_assistant, &layout_deepseek); break;
    case CHAT_DEEPSEEK2: fmt_roles(&b, msgs, n, add_assistant, &layout_deepseek2); break;
    case CHAT_DEEPSEEK3: fmt_roles(&b, msgs, n, add_assistant, &layout_deepseek3); break;
    case CHAT_COMMAND_R: fmt_roles(&b, msgs, n, add_assistant, &layout_command_r); break;
    case CHAT_UNKNOWN:
    case CHAT_FAMILY_COUNT: break;
    }
    if (b.oom) {
        free(b.p);
        return ghost_set_error(GHOST_ERR_NOMEM, "chat format: out of memory");
    }
    *out = b.p;
    return GHOST_OK;
}

ghost_status ghost_chat_format(const ghost_model *model, const ghost_chat_message *msgs,
                               size_t n_msgs, bool add_assistant, char **out)
{
    if (out)
        *out = NULL;
    if (!model)
        return ghost_set_error(GHOST_ERR_INVALID_ARGUMENT, "ghost_chat_format: model is NULL");
    const char *tmpl = model_chat_template(model);
    if (chat_detect(tmpl) == CHAT_UNKNOWN)
        tmpl = "chatml";
    return chat_format(tmpl, msgs, n_msgs, add_assistant, out);
}
