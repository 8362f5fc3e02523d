/*
 * chat.h — chat prompt formatting without a Jinja engine (internal).
 *
 * A model's tokenizer.chat_template is a Jinja program; we recognise which
 * well-known family it belongs to by distinctive substrings (the way
 * llama.cpp's llm_chat_detect_template does) and format the conversation
 * with that family's fixed layout. The template may also be a family name
 * ("chatml", "llama3", ...), so a caller can force one.
 *
 * The formatted text carries no BOS token: the tokenizer adds it (add_bos).
 */
#ifndef GHOST_CHAT_H
#define GHOST_CHAT_H

#include <stdbool.h>
#include <stddef.h>

#include "ghostllm.h"

typedef enum chat_family {
    CHAT_UNKNOWN = 0,
    CHAT_PLAIN,             /* no template: contents joined by "\n" */
    CHAT_CHATML,            /* <|im_start|>role\n...<|im_end|>\n */
    CHAT_PHI4,              /* <|im_start|>role<|im_sep|>...<|im_end|> */
    CHAT_LLAMA2,            /* [INST] ... [/INST] */
    CHAT_LLAMA2_SYS,        /* + <<SYS>> system block */
    CHAT_LLAMA2_SYS_BOS,    /* + <s> before every later [INST] */
    CHAT_LLAMA2_SYS_STRIP,  /* + contents trimmed */
    CHAT_MISTRAL_V1,        /* " [INST] ... [/INST]" */
    CHAT_MISTRAL_V3,        /* "[INST] ...[/INST]", answers trimmed */
    CHAT_MISTRAL_V3_TEKKEN, /* "[INST]...[/INST]" */
    CHAT_MISTRAL_V7,        /* [SYSTEM_PROMPT] ... [/SYSTEM_PROMPT][INST] ... */
    CHAT_LLAMA3,            /* <|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|> */
    CHAT_PHI3,              /* <|role|>\n...<|end|>\n */
    CHAT_ZEPHYR,            /* <|role|>\n...</s>\n (or <|endoftext|>) */
    CHAT_GEMMA,             /* <start_of_turn>role\n...<end_of_turn>\n */
    CHAT_DEEPSEEK,          /* deepseek-coder: ### Instruction: / ### Response: */
    CHAT_DEEPSEEK2,         /* User: ...\n\nAssistant: ... */
    CHAT_DEEPSEEK3,         /* <｜User｜>...<｜Assistant｜>... (V3, R1) */
    CHAT_COMMAND_R,         /* <|START_OF_TURN_TOKEN|><|USER_TOKEN|>... */
    CHAT_FAMILY_COUNT
} chat_family;

/* The family of a template string (NULL or "" = CHAT_PLAIN), or
 * CHAT_UNKNOWN when none of the known ones matches. */
chat_family chat_detect(const char *tmpl);
/* "chatml", "llama3", ... (the names chat_detect accepts as templates). */
const char *chat_family_name(chat_family f);
/* Comma-separated names of every family, for error messages. */
const char *chat_family_list(void);

/* Formats msgs[0..n) with template tmpl (a Jinja template or a family name;
 * NULL = plain continuation). add_assistant: end with the opening of the
 * assistant's turn. *out is malloc'ed, NUL-terminated (free with free() /
 * ghost_free). Errors (per-thread message): GHOST_ERR_INVALID_ARGUMENT for
 * NULL arguments, a message without role or content; GHOST_ERR_UNSUPPORTED
 * for a template of no known family (the message lists the families). */
ghost_status chat_format(const char *tmpl, const ghost_chat_message *msgs, size_t n,
                         bool add_assistant, char **out);

#endif
