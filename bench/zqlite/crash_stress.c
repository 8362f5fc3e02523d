/*
 * crash_stress.c — the long form of test_zqlite_crash: N SIGKILL trials per
 * journal mode (default 150 each, rollback journal and WAL) against one
 * encrypted database, each followed by integrity_check, a plaintext scan of
 * the files the crash left and a check that every acknowledged commit
 * survived. Usage: bench_zqlite_crash [TRIALS] [DIR]
 */
#include <stdlib.h>

#include "zq_crash.h"

int main(int argc, char **argv)
{
    int trials = argc > 1 ? atoi(argv[1]) : 150;
    const char *dir = argc > 2 ? argv[2] : "/tmp";
    if (trials < 1) {
        fprintf(stderr, "usage: bench_zqlite_crash [TRIALS] [DIR]\n");
        return 2;
    }
    static const char *const modes[] = {"delete", "wal"};
    unsigned seed = (unsigned)time(NULL);
    int failures = 0;
    for (int m = 0; m < 2; m++) {
        char path[1024], msg[300];
        snprintf(path, sizeof path, "%s/zqlite-crash-%s-%d.db", dir, modes[m], (int)getpid());
        long long acked = 0;
        int failed = 0;
        for (int t = 0; t < trials; t++) {
            if (zq_crash_trial(path, modes[m], &seed, 100000, msg, sizeof msg, &acked) != 0) {
                fprintf(stderr, "%s trial %d: %s\n", modes[m], t, msg);
                failed++;
            }
        }
        failures += failed;
        printf("%-6s %d SIGKILL trials, %d failed; %lld committed rows survived in the end\n",
               modes[m], trials, failed, acked);
        static const char *const suffix[] = {"", "-journal", "-wal", "-shm"};
        for (int i = 0; i < 4; i++) {
            char name[1100];
            snprintf(name, sizeof name, "%s%s", path, suffix[i]);
            unlink(name);
        }
    }
    return failures ? 1 : 0;
}
