/*
 * test_chat.c — chat template families: every real template in
 * ../shared/models/chat-templates is recognised as the right family, each
 * family lays out a conversation exactly as its templates do (expected
 * strings written from reading the Jinja), models without a template get
 * plain continuation, and unknown templates are reported (chat_format) or
 * fall back to chatml (ghost_chat_format).
 */
#include <dirent.h>

#include "test_util.h"

#include "ghostllm.h"
#include "llm/chat.h"
#include "llm/gguf.h"
#include "llm/gguf_write.h"
#include "llm/llm_internal.h"

#define TEMPLATES "../shared/models/chat-templates"
#define STORIES   "../shared/models/stories260K.gguf"

#define DS_USER                                                                                    \
    "<\xef\xbd\x9c"                                                                                \
    "User\xef\xbd\x9c>"
#define DS_ASSISTANT                                                                               \
    "<\xef\xbd\x9c"                                                                                \
    "Assistant\xef\xbd\x9c>"
#define DS_EOS                                                                                     \
    "<\xef\xbd\x9c"                                                                                \
    "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>"

static const ghost_chat_message conv[] = {
    {"system", "You are helpful."},
    {"user", "Hi"},
    {"assistant", "Hello!"},
    {"user", "How are you?"},
};
#define N_CONV (sizeof conv / sizeof conv[0])

static void expect_format(const char *tmpl, const ghost_chat_message *m, size_t n, bool add_ass,
                          const char *want)
{
    char *out = NULL;
    if (chat_format(tmpl, m, n, add_ass, &out) != GHOST_OK)
        fail_msg("chat_format: %s", ghost_thread_errmsg());
    if (strcmp(out, want) != 0)
        fail_msg("template family %s\n got: [%s]\nwant: [%s]", chat_family_name(chat_detect(tmpl)),
                 out, want);
    free(out);
}

/* ---- detection on the real templates ---------------------------------------- */

static const struct {
    const char *file;
    chat_family family;
} real_templates[] = {
    {"CohereForAI-c4ai-command-r-plus-tool_use.jinja", CHAT_COMMAND_R},
    {"CohereForAI-c4ai-command-r7b-12-2024-tool_use.jinja", CHAT_COMMAND_R},
    {"NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja", CHAT_CHATML},
    {"NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja", CHAT_CHATML},
    {"Qwen-Qwen2.5-7B-Instruct.jinja", CHAT_CHATML},
    {"deepseek-ai-DeepSeek-R1-Distill-Llama-8B.jinja", CHAT_DEEPSEEK3},
    {"deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja", CHAT_DEEPSEEK3},
    {"fireworks-ai-llama-3-firefunction-v2.jinja", CHAT_LLAMA3},
    {"google-gemma-2-2b-it.jinja", CHAT_GEMMA},
    {"llama-cpp-deepseek-r1.jinja", CHAT_DEEPSEEK3},
    {"meetkai-functionary-medium-v3.1.jinja", CHAT_LLAMA3},
    {"meetkai-functionary-medium-v3.2.jinja", CHAT_LLAMA3},
    {"meta-llama-Llama-3.1-8B-Instruct.jinja", CHAT_LLAMA3},
    {"meta-llama-Llama-3.2-3B-Instruct.jinja", CHAT_LLAMA3},
    {"meta-llama-Llama-3.3-70B-Instruct.jinja", CHAT_LLAMA3},
    {"microsoft-Phi-3.5-mini-instruct.jinja", CHAT_PHI3},
    {"mistralai-Mistral-Nemo-Instruct-2407.jinja", CHAT_MISTRAL_V3_TEKKEN},
};
#define N_REAL (sizeof real_templates / sizeof real_templates[0])

static const char *expected_family(const char *file)
{
    for (size_t i = 0; i < N_REAL; i++)
        if (strcmp(real_templates[i].file, file) == 0)
            return chat_family_name(real_templates[i].family);
    return NULL;
}

static void test_every_shared_template_is_detected_as_its_family(void **state)
{
    DIR *d = opendir(TEMPLATES);
    if (!d)
        fail_msg("cannot open %s (is ../shared present?)", TEMPLATES);
    size_t seen = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 6, ".jinja") != 0)
            continue;
        const char *want = expected_family(e->d_name);
        if (!want)
            fail_msg("%s is not in the expected-family table: add it", e->d_name);
        char path[512];
        snprintf(path, sizeof path, "%s/%s", TEMPLATES, e->d_name);
        char *tmpl = tu_read_required(path, NULL);
        const char *got = chat_family_name(chat_detect(tmpl));
        if (strcmp(got, want) != 0)
            fail_msg("%s: detected %s, expected %s", e->d_name, got, want);
        free(tmpl);
        seen++;
    }
    closedir(d);
    assert_int_equal(seen, N_REAL);
}

/* ---- layouts of the real templates ------------------------------------------ */

static void expect_file_format(const char *file, const char *want)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", TEMPLATES, file);
    char *tmpl = tu_read_required(path, NULL);
    expect_format(tmpl, conv, N_CONV, true, want);
    free(tmpl);
}

static void test_chatml_layout_matches_qwen(void **state)
{
    expect_file_format("Qwen-Qwen2.5-7B-Instruct.jinja",
                       "<|im_start|>system\nYou are helpful.<|im_end|>\n"
                       "<|im_start|>user\nHi<|im_end|>\n"
                       "<|im_start|>assistant\nHello!<|im_end|>\n"
                       "<|im_start|>user\nHow are you?<|im_end|>\n"
                       "<|im_start|>assistant\n");
}

static void test_llama3_layout_matches_llama_3_1(void **state)
{
    expect_file_format("meta-llama-Llama-3.1-8B-Instruct.jinja",
                       "<|start_header_id|>system<|end_header_id|>\n\nYou are helpful.<|eot_id|>"
                       "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
                       "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
                       "<|start_header_id|>user<|end_header_id|>\n\nHow are you?<|eot_id|>"
                       "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

static void test_phi3_layout_matches_phi_3_5(void **state)
{
    expect_file_format("microsoft-Phi-3.5-mini-instruct.jinja",
                       "<|system|>\nYou are helpful.<|end|>\n"
                       "<|user|>\nHi<|end|>\n"
                       "<|assistant|>\nHello!<|end|>\n"
                       "<|user|>\nHow are you?<|end|>\n"
                       "<|assistant|>\n");
}

static void test_gemma_folds_the_system_prompt_into_the_first_user_turn(void **state)
{
    expect_file_format("google-gemma-2-2b-it.jinja",
                       "<start_of_turn>user\nYou are helpful.\n\nHi<end_of_turn>\n"
                       "<start_of_turn>model\nHello!<end_of_turn>\n"
                       "<start_of_turn>user\nHow are you?<end_of_turn>\n"
                       "<start_of_turn>model\n");
}

static void test_deepseek_r1_layout(void **state)
{
    expect_file_format("deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja",
                       "You are helpful.\n\n" DS_USER "Hi" DS_ASSISTANT "Hello!" DS_EOS DS_USER
                       "How are you?" DS_ASSISTANT);
}

static void test_mistral_nemo_layout(void **state)
{
    expect_file_format("mistralai-Mistral-Nemo-Instruct-2407.jinja",
                       "[INST]You are helpful.\n\nHi[/INST]Hello!</s>[INST]How are you?[/INST]");
}

static void test_command_r_layout(void **state)
{
    expect_file_format(
        "CohereForAI-c4ai-command-r-plus-tool_use.jinja",
        "<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>You are helpful.<|END_OF_TURN_TOKEN|>"
        "<|START_OF_TURN_TOKEN|><|USER_TOKEN|>Hi<|END_OF_TURN_TOKEN|>"
        "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>Hello!<|END_OF_TURN_TOKEN|>"
        "<|START_OF_TURN_TOKEN|><|USER_TOKEN|>How are you?<|END_OF_TURN_TOKEN|>"
        "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>");
}

/* ---- families recognised by their markers ------------------------------------ */

static void test_llama2_variants(void **state)
{
    expect_format("{% if loop.index0 == 0 %}<<SYS>>\\n{% endif %}[INST] {{ content }} [/INST]",
                  conv, N_CONV, true,
                  "[INST] <<SYS>>\nYou are helpful.\n<</SYS>>\n\nHi [/INST]Hello!</s>"
                  "[INST] How are you? [/INST]");
    expect_format("{{ '[INST] ' + content }}", conv, N_CONV, true,
                  "[INST] You are helpful.\nHi [/INST]Hello!</s>[INST] How are you? [/INST]");
    expect_format("{{ bos_token + '[INST] ' + content }}<<SYS>>", conv, N_CONV, false,
                  "[INST] <<SYS>>\nYou are helpful.\n<</SYS>>\n\nHi [/INST]Hello!</s>"
                  "<s>[INST] How are you? [/INST]");
    const ghost_chat_message padded[] = {{"user", "  Hi  "}, {"assistant", " Yo "}};
    expect_format("[INST] {{ content.strip() }} <<SYS>>", padded, 2, false,
                  "[INST] Hi [/INST]Yo</s>");
}

static void test_mistral_v1_v3_and_v7(void **state)
{
    const char *v1 = "{{ ' [INST] ' + system_message }}";
    assert_int_equal(chat_detect(v1), CHAT_MISTRAL_V1);
    expect_format(v1, conv + 1, 3, true,
                  " [INST] Hi [/INST] Hello!</s> [INST] How are you? [/INST]");
    const char *v3 = "[AVAILABLE_TOOLS] {{ '[INST] ' }}";
    assert_int_equal(chat_detect(v3), CHAT_MISTRAL_V3);
    const ghost_chat_message m[] = {{"user", "Hi"}, {"assistant", " Hello! "}};
    expect_format(v3, m, 2, true, "[INST] Hi[/INST] Hello!</s>");
    expect_format("[SYSTEM_PROMPT] [INST]", conv, N_CONV, true,
                  "[SYSTEM_PROMPT] You are helpful.[/SYSTEM_PROMPT][INST] Hi[/INST] Hello!</s>"
                  "[INST] How are you?[/INST]");
}

static void test_zephyr_uses_the_templates_end_of_sequence_token(void **state)
{
    const char *zephyr = "{{ '<|user|>\\n' + message['content'] + eos_token }}";
    assert_int_equal(chat_detect(zephyr), CHAT_ZEPHYR);
    expect_format(zephyr, conv, N_CONV, true,
                  "<|system|>\nYou are helpful.</s>\n<|user|>\nHi</s>\n<|assistant|>\nHello!</s>\n"
                  "<|user|>\nHow are you?</s>\n<|assistant|>\n");
    expect_format("<|user|>{{ content }}<|endoftext|>", conv + 1, 1, true,
                  "<|user|>\nHi<|endoftext|>\n<|assistant|>\n");
}

static void test_deepseek_coder_and_v2(void **state)
{
    expect_format("### Instruction:\\n{{ content }}<|EOT|>", conv, N_CONV, true,
                  "You are helpful.### Instruction:\nHi\n### Response:\nHello!\n<|EOT|>\n"
                  "### Instruction:\nHow are you?\n### Response:\n");
    expect_format("{{ 'Assistant: ' + message['content'] + eos_token }}", conv, N_CONV, true,
                  "You are helpful.\n\nUser: Hi\n\nAssistant: Hello!" DS_EOS
                  "User: How are you?\n\nAssistant:");
}

static void test_phi4_is_chatml_with_a_separator(void **state)
{
    expect_format("<|im_start|>{{ role }}<|im_sep|>", conv + 1, 1, true,
                  "<|im_start|>user<|im_sep|>Hi<|im_end|><|im_start|>assistant<|im_sep|>");
}

static void test_family_names_select_a_family(void **state)
{
    for (int f = CHAT_PLAIN; f < CHAT_FAMILY_COUNT; f++)
        assert_int_equal(chat_detect(chat_family_name((chat_family)f)), f);
    expect_format("chatml", conv + 1, 1, false, "<|im_start|>user\nHi<|im_end|>\n");
    assert_non_null(strstr(chat_family_list(), "llama3"));
}

static void test_llama3_and_gemma_trim_contents(void **state)
{
    const ghost_chat_message m[] = {{"user", " \n Hi \t\n"}};
    expect_format("llama3", m, 1, false,
                  "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>");
    expect_format("gemma", m, 1, false, "<start_of_turn>user\nHi<end_of_turn>\n");
}

/* ---- plain, empty, errors ------------------------------------------------------ */

static void test_no_template_means_plain_continuation(void **state)
{
    expect_format(NULL, conv, N_CONV, true, "You are helpful.\nHi\nHello!\nHow are you?");
    expect_format("", conv + 1, 1, true, "Hi");
    expect_format(NULL, conv, 0, true, "");
    expect_format("chatml", conv, 0, true, "<|im_start|>assistant\n");
}

static void test_unknown_template_is_reported_with_the_families(void **state)
{
    char *out = (char *)1;
    assert_int_equal(chat_format("{{ messages }}\n\x1b[2J", conv, N_CONV, true, &out),
                     GHOST_ERR_UNSUPPORTED);
    assert_null(out);
    const char *msg = ghost_thread_errmsg();
    assert_non_null(strstr(msg, "not recognised"));
    assert_non_null(strstr(msg, "chatml"));
    assert_non_null(strstr(msg, "gemma"));
    assert_null(strchr(msg, '\x1b'));
    assert_null(strchr(msg, '\n'));
}

static void test_missing_role_or_content_is_an_invalid_argument(void **state)
{
    char *out = NULL;
    const ghost_chat_message bad[] = {{"user", "Hi"}, {NULL, "x"}};
    assert_int_equal(chat_format("chatml", bad, 2, true, &out), GHOST_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(ghost_thread_errmsg(), "message 1 has no role"));
    const ghost_chat_message bad2[] = {{"user", NULL}};
    assert_int_equal(chat_format(NULL, bad2, 1, true, &out), GHOST_ERR_INVALID_ARGUMENT);
    assert_int_equal(chat_format(NULL, NULL, 1, true, &out), GHOST_ERR_INVALID_ARGUMENT);
    assert_int_equal(chat_format(NULL, conv, 1, true, NULL), GHOST_ERR_INVALID_ARGUMENT);
    assert_null(out);
}

/* ---- the public wrapper on real models ---------------------------------------- */

static ghost_model *load(const char *path)
{
    ghost_model *m = ghost_model_load(path);
    if (!m)
        fail_msg("%s: %s", path, ghost_errmsg(NULL));
    return m;
}

static void test_model_without_template_formats_plain_text(void **state)
{
    ghost_model *m = load(STORIES);
    char *out = NULL;
    assert_int_equal(ghost_chat_format(m, conv + 1, 3, true, &out), GHOST_OK);
    assert_string_equal(out, "Hi\nHello!\nHow are you?");
    ghost_free(out);
    ghost_model_free(m);
    assert_int_equal(ghost_chat_format(NULL, conv, 1, true, &out), GHOST_ERR_INVALID_ARGUMENT);
    assert_null(out);
}

/* stories260K with a tokenizer.chat_template added: path to a temp file. */
static void write_model_with_template(const char *tmpl, char *path)
{
    gguf_file *src = NULL;
    assert_int_equal(gguf_open(STORIES, &src), GHOST_OK);
    gguf_writer *w = gguf_writer_create();
    for (uint64_t i = 0; i < src->n_kv; i++)
        assert_int_equal(gguf_writer_copy_kv(w, &src->kv[i]), GHOST_OK);
    assert_int_equal(gguf_writer_add_str(w, "tokenizer.chat_template", tmpl), GHOST_OK);
    for (uint64_t i = 0; i < src->n_tensors; i++) {
        const gguf_tensor *t = &src->tensors[i];
        assert_int_equal(gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data),
                         GHOST_OK);
    }
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(gguf_writer_write_file(w, path), GHOST_OK);
    gguf_writer_destroy(w);
    gguf_close(src);
}

static void test_model_template_is_used_and_unknown_ones_fall_back_to_chatml(void **state)
{
    char path[] = "/tmp/ghost_chat_XXXXXX";
    write_model_with_template("{% for m in messages %}<start_of_turn>{% endfor %}", path);
    ghost_model *m = load(path);
    char *out = NULL;
    assert_int_equal(ghost_chat_format(m, conv + 1, 1, true, &out), GHOST_OK);
    assert_string_equal(out, "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n");
    ghost_free(out);
    ghost_model_free(m);
    unlink(path);

    char path2[] = "/tmp/ghost_chat_XXXXXX";
    write_model_with_template("{{ custom }}", path2);
    m = load(path2);
    assert_int_equal(ghost_chat_format(m, conv + 1, 1, true, &out), GHOST_OK);
    assert_string_equal(out, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    ghost_free(out);
    ghost_model_free(m);
    unlink(path2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_shared_template_is_detected_as_its_family),
        cmocka_unit_test(test_chatml_layout_matches_qwen),
        cmocka_unit_test(test_llama3_layout_matches_llama_3_1),
        cmocka_unit_test(test_phi3_layout_matches_phi_3_5),
        cmocka_unit_test(test_gemma_folds_the_system_prompt_into_the_first_user_turn),
        cmocka_unit_test(test_deepseek_r1_layout),
        cmocka_unit_test(test_mistral_nemo_layout),
        cmocka_unit_test(test_command_r_layout),
        cmocka_unit_test(test_llama2_variants),
        cmocka_unit_test(test_mistral_v1_v3_and_v7),
        cmocka_unit_test(test_zephyr_uses_the_templates_end_of_sequence_token),
        cmocka_unit_test(test_deepseek_coder_and_v2),
        cmocka_unit_test(test_phi4_is_chatml_with_a_separator),
        cmocka_unit_test(test_family_names_select_a_family),
        cmocka_unit_test(test_llama3_and_gemma_trim_contents),
        cmocka_unit_test(test_no_template_means_plain_continuation),
        cmocka_unit_test(test_unknown_template_is_reported_with_the_families),
        cmocka_unit_test(test_missing_role_or_content_is_an_invalid_argument),
        cmocka_unit_test(test_model_without_template_formats_plain_text),
        cmocka_unit_test(test_model_template_is_used_and_unknown_ones_fall_back_to_chatml),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
