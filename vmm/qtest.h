/*
 * The qtest accelerator: run no guest code; let a test client act as the
 * guest's CPU over QEMU's qtest line protocol.
 *
 * A dedicated thread reads commands from a unix socket and executes each one
 * like a KVM exit: take the big lock, one address-space access, drop the
 * lock. The main loop never watches the socket. If it did, every command
 * would wake it, and an SQE queued by the command would always be submitted
 * at once: the 500 ms stall could never show (which is why QEMU's own qtest
 * cannot show it).
 *
 * Interrupts: after "irq_intercept_in X", level changes of interrupt lines
 * are reported as asynchronous "IRQ raise N" / "IRQ lower N" lines. MSI
 * writes land in guest RAM at the message address, as on real hardware,
 * where a client can poll for them.
 */
#ifndef MINIVMM_VMM_QTEST_H
#define MINIVMM_VMM_QTEST_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "devices/address-space.h"

#define QTEST_MAX_IRQ 256

typedef struct QtestServer {
    AddressSpace *as;
    int fd;        /* the connection */
    int listen_fd; /* unix:PATH,server only */
    char *listen_path;
    pthread_t thread;
    bool thread_started;
    void (*on_eof)(void *opaque); /* end of input: the machine should stop */
    void *on_eof_opaque;

    pthread_mutex_t send_lock; /* replies and IRQ lines from any thread */
    bool irq_intercept;
    int irq_level[QTEST_MAX_IRQ];
    uint64_t commands;
} QtestServer;

/*
 * Connect to (or, with ",server", listen on and accept from) the unix
 * socket in @spec ("unix:PATH[,server]"). Returns 0 or -errno with a
 * message in @err.
 */
int qtest_server_open(QtestServer *s, const char *spec, AddressSpace *as,
                      char *err, size_t errlen);

/* Start serving on the vCPU-like thread. @on_eof runs on it at end of input. */
int qtest_server_start(QtestServer *s, void (*on_eof)(void *), void *opaque);

/* Unblock and join the thread, close the sockets. */
void qtest_server_stop(QtestServer *s);

/* Interrupt plumbing for the board: an IRQ line level, an MSI write. */
void qtest_server_set_irq(void *opaque, int gsi, int level);
void qtest_server_send_msi(void *opaque, uint64_t addr, uint32_t data);

/*
 * Execute one command line (without the newline, modified in place) and
 * return the reply line (with its newline) in *reply, malloc'ed. Takes the
 * big lock for guest accesses. Used by the thread above and by tests.
 */
void qtest_server_execute(QtestServer *s, char *line, char **reply);

#endif
