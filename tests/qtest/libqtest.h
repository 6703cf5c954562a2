/*
 * A qtest client: start minivmm or QEMU on a unix socket we listen on, send
 * protocol commands, read replies. It implements QosOps, so the drivers in
 * tests/qos/ run over it unchanged, against either machine.
 */
#ifndef MINIVMM_TESTS_QTEST_LIBQTEST_H
#define MINIVMM_TESTS_QTEST_LIBQTEST_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "tests/qos/qos.h"

typedef enum QTestTarget { QTEST_MINIVMM, QTEST_QEMU } QTestTarget;

typedef struct QTest {
    QTestTarget target;
    int fd;
    int listen_fd;
    pid_t pid;
    char sock_path[108];
    char *rx;
    size_t rx_len, rx_cap;
    bool irq_level[256];
    unsigned pending_ok; /* replies owed to pipelined writes */
    uint64_t round_trips;
    uint64_t commands;
    Qos qos;
} QTest;

/*
 * Start a machine with @ram_mb MiB of RAM and @args (space-separated, in
 * the target's own syntax, appended). For minivmm the binary is $MINIVMM or
 * build/minivmm; for QEMU, qemu-system-x86_64 with q35, TCG and stopped
 * vCPUs. Returns NULL (and prints why) if it did not connect within 20 s.
 */
QTest *qtest_start(QTestTarget target, unsigned ram_mb, const char *args);

/* The same, with the machine's standard input read from @stdin_path. */
QTest *qtest_start_stdin(QTestTarget target, unsigned ram_mb, const char *args,
                         const char *stdin_path);

/*
 * The same, with the terminal @tty_path (a pty's slave) as the machine's
 * controlling terminal, stdin and stdout, as when a person runs it.
 */
QTest *qtest_start_tty(QTestTarget target, unsigned ram_mb, const char *args,
                       const char *tty_path);

/* Which target the environment asks for: QTEST_TARGET=qemu or minivmm. */
QTestTarget qtest_target_from_env(void);
const char *qtest_target_name(QTestTarget target);

/*
 * Hang up (the machine should then exit by itself), wait up to 10 s, and
 * return its exit status (or -1 if it had to be killed). Frees @t.
 */
int qtest_quit(QTest *t);

/* Send SIGTERM instead of hanging up; otherwise like qtest_quit(). */
int qtest_kill_term(QTest *t);

/*
 * Send @sig (0: none, for a machine that is ending by itself) without
 * hanging up, then wait as qtest_quit() does. -1 also means "killed by a
 * signal".
 */
int qtest_kill(QTest *t, int sig);

/* Send one command line (no newline) and return the reply (malloc'ed, no
 * newline), skipping asynchronous IRQ lines. */
char *qtest_command(QTest *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Send a command whose only reply is "OK" without waiting for it: writes
 * are pipelined, and the next qtest_command() first collects (and checks)
 * the replies owed. The machine still executes everything in order, one
 * command at a time, so a guest sees no difference; a driver's burst of
 * writes just stops costing a round trip each, as it costs a real guest
 * nothing but the MMIO exits themselves.
 */
void qtest_write_async(QTest *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The latest "IRQ raise/lower N" seen for @irq. */
bool qtest_irq_level(QTest *t, int irq);

#endif
