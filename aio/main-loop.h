/*
 * The main loop and the big lock (BQL).
 *
 * The main context runs timers, BHs, device completions that belong to no
 * IOThread, and the control plane. Whoever holds the big lock may use it:
 * the main loop thread, except while it sleeps, and vCPU threads while they
 * handle an exit.
 *
 * One iteration of the main loop:
 *
 *   [BQL held]  prepare: submit the SQEs queued so far
 *   [released]  wait:    sleep until an event or min(next timer, the cap)
 *   [BQL held]  dispatch completions, fd handlers, BHs, timers
 *
 * An SQE queued by a vCPU thread while the main loop sleeps is seen only at
 * the next prepare. Unless aio_add_sqe() wakes the loop (the notify-on-SQE
 * switch), that is when the wait times out, at the cap if no timer is
 * due first: the "500 ms slumber" of docs/event-loop.md.
 */
#ifndef MINIVMM_AIO_MAIN_LOOP_H
#define MINIVMM_AIO_MAIN_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#include "aio/aio.h"

/*
 * The cap on one wait of the main loop: a model of QEMU, not a copy. QEMU's
 * main loop has no cap; it sleeps until an event or its next timer, and the
 * 499 ms the stalled requests waited was whichever slow timer happened to be
 * armed (with none, they waited for the next event of any kind). minivmm
 * caps the wait instead, by default at 499 ms so that the stall has the
 * length people know (--main-loop-timeout-ms; -1: no cap).
 */
#define MAIN_LOOP_TIMEOUT_MS_DEFAULT 499

typedef struct MainLoopOptions {
    AioFdmonKind fdmon;
    int64_t timeout_ms; /* the cap; 0 = default, < 0 = none */
    /*
     * IORING_SETUP_* flags for the main context. AIO_URING_SINGLE_THREAD_FLAGS
     * are dropped: vCPU threads holding the big lock enter this ring too.
     */
    unsigned uring_flags;
} MainLoopOptions;

/*
 * Create the main context. The calling thread becomes the main loop thread
 * and holds the big lock on return. Returns 0 or -errno.
 */
int main_loop_init(const MainLoopOptions *opts);

/* Destroy the main context; call with the big lock held, I/O drained. */
void main_loop_cleanup(void);

AioContext *main_loop_context(void);

/* One iteration (see above). Call with the big lock held. */
bool main_loop_wait(void);

/* Iterate until main_loop_quit(). Call with the big lock held. */
void main_loop_run(void);
void main_loop_quit(void); /* any thread */

void main_loop_set_timeout_ms(int64_t ms);
int64_t main_loop_get_timeout_ms(void);

/*
 * The deferred kick (default on). When a big-lock holder wakes the sleeping
 * main loop (aio_notify() on the main context), the eventfd write waits
 * until that thread's bql_unlock(): woken at once, the loop would only block
 * on the lock the notifier still holds, possibly on the notifier's own CPU,
 * and be woken a second time when it is released. Off, the write happens at
 * once, as in QEMU; notify-on-SQE on and this off is QEMU's fix alone. A
 * kick deferred before the switch goes off is still made at bql_unlock().
 */
void main_loop_set_defer_kick(bool on);
bool main_loop_get_defer_kick(void);

/* True while the main loop thread sleeps in its wait (for tests, benches). */
bool main_loop_sleeping(void);

/* The big lock. Not recursive. */
void bql_lock(void);
void bql_unlock(void);
bool bql_locked(void); /* by the calling thread */

#endif
