/*
 * cli_key.c — reading a passphrase for the command-line programs without it
 * ever appearing in argv, on the terminal, or in ordinary heap memory: every
 * buffer that holds key bytes is sodium_malloc'd and wiped before it is freed.
 */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli.h"
#include "cli_key.h"

#define CLI_KEY_MAX 4096 /* longest accepted passphrase, in bytes */

/* Copies len bytes into a fresh sodium buffer of exactly len + 1 bytes. */
static int key_dup(const char *prog, const char *src, size_t len, char **key, size_t *key_len)
{
    char *k = sodium_malloc(len + 1);
    if (!k) {
        cli_error(prog, "out of locked memory for the key");
        return -1;
    }
    memcpy(k, src, len);
    k[len] = '\0';
    *key = k;
    *key_len = len;
    return 0;
}

enum { KEY_LINE_TOO_LONG = -1, KEY_LINE_UNREADABLE = -2 };

/* Reads one line from fd into buf (cap bytes, sodium memory); returns its
 * length without the newline, KEY_LINE_TOO_LONG when it does not fit, or
 * KEY_LINE_UNREADABLE when read fails (errno says why: a directory gives
 * EISDIR, which must not pass for an empty first line). */
static ssize_t read_line(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    for (;;) {
        char c;
        ssize_t r = read(fd, &c, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return KEY_LINE_UNREADABLE;
        if (r == 0 || c == '\n')
            break;
        if (n + 1 >= cap)
            return KEY_LINE_TOO_LONG;
        buf[n++] = c;
    }
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    buf[n] = '\0';
    return (ssize_t)n;
}

static int key_from_file(const char *prog, const char *path, char **key, size_t *key_len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        cli_error(prog, "key file %s: %s", path, strerror(errno));
        return -1;
    }
    char *buf = sodium_malloc(CLI_KEY_MAX);
    if (!buf) {
        close(fd);
        cli_error(prog, "out of locked memory for the key");
        return -1;
    }
    ssize_t n = read_line(fd, buf, CLI_KEY_MAX);
    int read_errno = errno;
    close(fd);
    int rc = -1;
    if (n == KEY_LINE_UNREADABLE)
        cli_error(prog, "key file %s: cannot be read: %s", path, strerror(read_errno));
    else if (n < 0)
        cli_error(prog, "key file %s: first line is longer than %d bytes", path, CLI_KEY_MAX - 1);
    else if (n == 0)
        cli_error(prog, "key file %s: first line is empty", path);
    else
        rc = key_dup(prog, buf, (size_t)n, key, key_len);
    sodium_memzero(buf, CLI_KEY_MAX);
    sodium_free(buf);
    return rc;
}

/* Prompts on the terminal with echo off; restores the terminal on every path. */
static ssize_t prompt_tty(int tty, const char *prompt, char *buf, size_t cap)
{
    struct termios old, quiet;
    int have_termios = tcgetattr(tty, &old) == 0;
    if (have_termios) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
        quiet.c_lflag |= ICANON;
        tcsetattr(tty, TCSAFLUSH, &quiet);
    }
    if (write(tty, prompt, strlen(prompt)) < 0) { /* best effort */
    }
    ssize_t n = read_line(tty, buf, cap);
    int read_errno = errno;
    if (have_termios)
        tcsetattr(tty, TCSAFLUSH, &old);
    if (write(tty, "\n", 1) < 0) {
    }
    errno = read_errno; /* for KEY_LINE_UNREADABLE */
    return n;
}

static int key_from_tty(const char *prog, const char *env_var, const char *prompt, bool confirm,
                        char **key, size_t *key_len)
{
    int tty = open("/dev/tty", O_RDWR | O_CLOEXEC);
    if (tty < 0) {
        cli_error(prog, "no key given: set %s, pass --key-file, or run on a terminal",
                  env_var ? env_var : "the key variable");
        return -1;
    }
    char *a = sodium_malloc(CLI_KEY_MAX), *b = sodium_malloc(CLI_KEY_MAX);
    int rc = -1;
    if (!a || !b) {
        cli_error(prog, "out of locked memory for the key");
        goto out;
    }
    ssize_t n = prompt_tty(tty, prompt ? prompt : "Passphrase: ", a, CLI_KEY_MAX);
    if (n == KEY_LINE_UNREADABLE) {
        cli_error(prog, "reading the passphrase from the terminal: %s", strerror(errno));
        goto out;
    }
    if (n <= 0) {
        cli_error(prog, n < 0 ? "passphrase too long (at most %d bytes)" : "empty passphrase",
                  CLI_KEY_MAX - 1);
        goto out;
    }
    if (confirm) {
        ssize_t m = prompt_tty(tty, "Repeat passphrase: ", b, CLI_KEY_MAX);
        if (m == KEY_LINE_UNREADABLE) {
            cli_error(prog, "reading the passphrase from the terminal: %s", strerror(errno));
            goto out;
        }
        if (m != n || sodium_memcmp(a, b, (size_t)n) != 0) {
            cli_error(prog, "passphrases do not match");
            goto out;
        }
    }
    rc = key_dup(prog, a, (size_t)n, key, key_len);
out:
    if (a) {
        sodium_memzero(a, CLI_KEY_MAX);
        sodium_free(a);
    }
    if (b) {
        sodium_memzero(b, CLI_KEY_MAX);
        sodium_free(b);
    }
    close(tty);
    return rc;
}

int cli_key_read(const char *prog, const char *env_var, const char *key_file, const char *prompt,
                 bool confirm, char **key, size_t *key_len)
{
    *key = NULL;
    *key_len = 0;
    if (sodium_init() < 0) {
        cli_error(prog, "libsodium initialisation failed");
        return -1;
    }
    const char *env = env_var ? getenv(env_var) : NULL;
    if (env && *env) {
        if (strlen(env) >= CLI_KEY_MAX) {
            cli_error(prog, "%s is longer than %d bytes", env_var, CLI_KEY_MAX - 1);
            return -1;
        }
        return key_dup(prog, env, strlen(env), key, key_len);
    }
    if (key_file)
        return key_from_file(prog, key_file, key, key_len);
    return key_from_tty(prog, env_var, prompt, confirm, key, key_len);
}

void cli_key_free(char *key, size_t key_len)
{
    if (!key)
        return;
    sodium_memzero(key, key_len + 1);
    sodium_free(key);
}
