/*
 * paths.c — where the history lives: the default database path
 * ($XDG_DATA_HOME/ghostflow/history.db, else ~/.local/share/ghostflow/...)
 * and the creation of its private parent directories (mode 0700: the file is
 * encrypted, but its size and timing are still nobody else's business).
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flow_internal.h"

void gf_free(void *ptr)
{
    free(ptr);
}

gf_status gf_default_db_path(char **path)
{
    if (!path)
        return flow_error(NULL, GF_ERR_INVALID_ARGUMENT, "gf_default_db_path: path is NULL");
    *path = NULL;
    const char *xdg = getenv("XDG_DATA_HOME");
    const char *base = NULL, *sub = NULL;
    /* The XDG spec says relative values are invalid and must be ignored. */
    if (xdg && xdg[0] == '/') {
        base = xdg;
        sub = "ghostflow/history.db";
    } else {
        base = getenv("HOME");
        if (!base || base[0] != '/') {
            struct passwd *pw = getpwuid(getuid());
            base = pw ? pw->pw_dir : NULL;
        }
        if (!base || base[0] != '/')
            return flow_error(NULL, GF_ERR_NOT_FOUND,
                              "default database path: neither XDG_DATA_HOME nor HOME is set");
        sub = ".local/share/ghostflow/history.db";
    }
    size_t n = strlen(base) + 1 + strlen(sub) + 1;
    char *p = malloc(n);
    if (!p)
        return flow_error(NULL, GF_ERR_NOMEM, "default database path: out of memory");
    snprintf(p, n, "%s/%s", base, sub);
    *path = p;
    return GF_OK;
}

gf_status flow_make_parent_dirs(const char *path)
{
    char *dir = strdup(path);
    if (!dir)
        return flow_error(NULL, GF_ERR_NOMEM, "%s: out of memory", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir) {
        free(dir);
        return GF_OK; /* relative file in the working directory, or under / */
    }
    *slash = '\0';
    gf_status rc = GF_OK;
    /* Walk down from the top so each missing level is created in turn. */
    for (char *p = dir + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
            rc = flow_error(NULL, GF_ERR_DATABASE, "%s: cannot create directory: %s", dir,
                            strerror(errno));
            break;
        }
        *p = saved;
        if (saved == '\0')
            break;
    }
    if (rc == GF_OK) {
        struct stat st;
        if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
            rc = flow_error(NULL, GF_ERR_DATABASE, "%s: not a directory", dir);
    }
    free(dir);
    return rc;
}
