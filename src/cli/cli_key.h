/*
 * cli_key.h — passphrase input shared by the zqlite and ghostflow programs.
 * Keys are never taken from the command line (they would show in ps and
 * shell history): an environment variable, a key file, or a no-echo prompt.
 */
#ifndef GF_CLI_KEY_H
#define GF_CLI_KEY_H

#include <stdbool.h>
#include <stddef.h>

/* Reads a passphrase: from getenv(env_var) when set and non-empty, else from
 * key_file when non-NULL (first line, trailing newline stripped), else an
 * interactive prompt without echo on /dev/tty (asked twice and compared when
 * confirm is true, for a new database). Returns 0 and a sodium_malloc'd
 * NUL-terminated copy in *key (free with cli_key_free, which wipes it), or -1
 * after printing a clear error prefixed with prog. Never prints the key. */
int cli_key_read(const char *prog, const char *env_var, const char *key_file, const char *prompt,
                 bool confirm, char **key, size_t *key_len);
/* Wipes and frees a key from cli_key_read. NULL is a no-op. */
void cli_key_free(char *key, size_t key_len);

#endif
