/*
 * What the files of aio/ share and nobody else should see: the AioContext
 * layout, fd handler nodes, and the fd monitor interface.
 */
#ifndef MINIVMM_AIO_AIO_INTERNAL_H
#define MINIVMM_AIO_AIO_INTERNAL_H

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include "aio/aio.h"
#include "util/compiler.h"

/* One watched file descriptor. Replaced, never edited, when callbacks change.
 */
typedef struct AioHandler {
    int fd;
    IOHandler *io_read;
    IOHandler *io_write;
    AioPollFn *io_poll;
    IOHandler *io_poll_ready;
    IOHandler *io_poll_begin; /* polling starts/ends: aio_set_poll_begin_end */
    IOHandler *io_poll_end;
    void *opaque;
    bool deleted; /* removed; freed once no fd monitor refers to it */
    bool is_notifier;

    int revents;     /* POLLIN/POLLOUT/... found by the fd monitor */
    bool poll_ready; /* io_poll() reported work while busy-polling */
    bool in_ready;
    LIST_ENTRY(AioHandler) node;       /* ctx->handlers or ->deleted_handlers */
    LIST_ENTRY(AioHandler) node_ready; /* an AioReady list */

    /*
     * fdmon-io_uring: the POLL_ADD currently armed, one-shot or multishot.
     * poll_armed stays true until the kernel's last CQE for it, the one
     * without IORING_CQE_F_MORE: until then the kernel holds poll_cqe.
     */
    CqeHandler poll_cqe;
    bool poll_armed;
    bool poll_armed_before; /* a later arm is a re-arm (for the stats) */
    /*
     * fdmon-io_uring: a POLL_ADD (or, once deleted, a POLL_REMOVE) still to
     * be queued, on ctx->polls_to_queue until the next prepare: the poll
     * fired and is re-armed then, or the SQ ring had no room for it.
     */
    bool poll_to_queue;
    LIST_ENTRY(AioHandler) node_to_queue;
} AioHandler;

typedef LIST_HEAD(, AioHandler) AioHandlerList;

/* What one aio_poll() found to dispatch. Local to each call, so nests. */
typedef struct AioReady {
    AioHandlerList nodes;
    STAILQ_HEAD(, CqeHandler) cqes;
} AioReady;

/*
 * State of one wait, owned by the caller's stack frame: two threads may wait
 * on the main context at once (the main loop without the big lock, and a
 * lock holder draining), so nothing about a wait may live in the context.
 */
#define AIO_WAIT_INLINE_FDS 16
typedef struct AioWait {
    struct pollfd *pfds; /* fdmon-poll: the ppoll() array */
    unsigned npfds;
    struct pollfd inline_pfds[AIO_WAIT_INLINE_FDS];
} AioWait;

/*
 * The fd monitor: how a context waits. prepare/wait/collect run on the home
 * thread; for the main context, wait() runs without the big lock, so it must
 * not touch anything a lock holder may change (handler lists, the SQ ring).
 */
typedef struct FDMonOps {
    const char *name;
    int (*init)(AioContext *ctx, const AioContextOptions *opts);
    void (*cleanup)(AioContext *ctx);
    /* A handler was added (new_node), removed (old_node) or replaced. */
    void (*update)(AioContext *ctx, AioHandler *old_node, AioHandler *new_node);
    /*
     * Before waiting; submit queued SQEs now if @submit. Completions it had
     * to reap to make the kernel take them go to @ready. Returns true if the
     * wait must not sleep: work is in @ready, or the kernel refused SQEs
     * that a sleep would leave unsubmitted.
     */
    bool (*prepare)(AioContext *ctx, AioWait *w, AioReady *ready, bool submit);
    /*
     * Sleep until an event or @timeout_ns (-1: forever). @may_submit allows
     * submitting queued SQEs in the same system call. Returns -ETIME on
     * timeout, >= 0 otherwise.
     */
    int (*wait)(AioContext *ctx, AioWait *w, int64_t timeout_ns,
                bool may_submit);
    /* Move what the wait found into @ready. */
    void (*collect)(AioContext *ctx, AioWait *w, AioReady *ready);
    /* True if only a wait() can make progress (unsubmitted SQEs, ...). */
    bool (*need_wait)(AioContext *ctx);
    /* Busy-poll hook: are completions ready without a system call? */
    bool (*poll_ready)(AioContext *ctx);
    int (*add_sqe)(AioContext *ctx, AioPrepSqeFunc *prep, void *opaque,
                   CqeHandler *handler);
    /* Ask the kernel to cancel the request of @handler (aio_cancel_sqe()). */
    int (*cancel_sqe)(AioContext *ctx, CqeHandler *handler);
    /* May @node be freed now (no armed request refers to it)? */
    bool (*can_free)(AioHandler *node);
} FDMonOps;

extern const FDMonOps fdmon_io_uring_ops;
extern const FDMonOps fdmon_poll_ops;

/*
 * What a blocking aio_poll() waits for, as far as the context can tell. The
 * weighted polling policy learns each kind apart: on a QD1 disk the loop
 * alternates between waiting for the guest's next request (nothing in
 * flight; it comes within a microsecond or two) and waiting for the read
 * it submitted (in flight; tens of microseconds). One average of both sits
 * in between and polls in vain for the read; two averages poll for the
 * first and sleep through the second.
 */
typedef enum AioWaitKind {
    AIO_WAIT_IDLE, /* no aio_add_sqe() or block request in flight */
    AIO_WAIT_IO,   /* at least one is: its completion may end the wait */
    AIO_WAIT_KINDS
} AioWaitKind;

struct AioContext {
    char name[32];
    const char *trace_name; /* the name, as long as a trace lives */
    const FDMonOps *fdmon;

    /* fd handlers; touched on the home thread only. */
    AioHandlerList handlers;
    AioHandlerList deleted_handlers;
    unsigned dispatch_depth; /* nested aio_poll() calls dispatching */

    /*
     * The wake-up protocol. notify_me is non-zero while the home thread is
     * in (or about to enter) a blocking wait: aio_notify() writes the eventfd
     * only then. notified records that aio_notify() was called, so that a
     * wait about to start returns at once even when no write was needed.
     */
    int notify_fd;
    atomic_uint notify_me;
    atomic_bool notified;

    /* Scheduled BHs, newest first; pushed lock-free from any thread. */
    _Atomic(AioBH *) bh_list;

    /* Timers, sorted by deadline; may be armed from any thread. */
    pthread_mutex_t timer_lock;
    TAILQ_HEAD(, AioTimer) timers;

    /*
     * Adaptive polling: the polling time and, for the weighted policy, the
     * moving average of block times, per kind of wait (AioWaitKind). The
     * grow/shrink policy uses the AIO_WAIT_IDLE entry for every wait.
     */
    AioPollParams poll_params;
    int64_t poll_ns[AIO_WAIT_KINDS];
    int64_t poll_avg_ns[AIO_WAIT_KINDS];

    /* fdmon-io_uring */
    struct io_uring ring;
    bool ring_ready;
    unsigned ring_flags;
    unsigned sqes_in_flight;  /* aio_add_sqe() requests not completed yet */
    atomic_uint io_in_flight; /* block requests (aio_context_io_begin()) */
    AioHandlerList polls_to_queue; /* see AioHandler.poll_to_queue */
    /*
     * aio_set_uring_multishot(): fd handlers get multishot polls. Cleared
     * for good when the kernel refuses one (it predates them).
     */
    bool multishot;
    /*
     * aio_set_uring_notifier_read(): notify_fd is read by an io_uring READ
     * into notifier_buf rather than polled. notifier_armed: the READ is in
     * the kernel; notifier_to_arm: it is to be queued at the next prepare.
     * Cleared for good when the kernel refuses the READ.
     */
    bool notifier_read;
    bool notifier_blocking; /* notify_fd had to lose O_NONBLOCK for it */
    bool notifier_armed;
    bool notifier_to_arm;
    uint64_t notifier_buf;
    CqeHandler notifier_cqe;
    /* aio_uring_inject_submit_error(): fail this many submits so. */
    int inject_submit_errno;
    unsigned inject_submit_count;

    /* Counters; updated with relaxed atomics since any thread may notify. */
    struct {
        atomic_ullong iterations, waits, wait_timeouts, wait_notified, wait_io,
            notify_writes, poll_successes, sqes_queued, cqes_dispatched,
            poll_time_ns, uring_enters, notifier_reads, notifier_wakes, ppolls,
            poll_rearms;
        /* poll_ns[] as last set, for readers on other threads */
        atomic_llong poll_ns[AIO_WAIT_KINDS];
    } stats;
};

/* What aio_notify() did (async.c); the trace records it per SQE. */
typedef enum AioKick {
    AIO_KICK_NONE,     /* the home thread was not waiting */
    AIO_KICK_WRITTEN,  /* the eventfd was written */
    AIO_KICK_DEFERRED, /* the main loop's eventfd, at bql_unlock() */
} AioKick;

/* aio-posix.c */
void aio_free_deleted_handlers(AioContext *ctx);
void aio_handler_list_free_all(AioContext *ctx);
void aio_ready_add(AioReady *ready, AioHandler *node, int revents);

/*
 * The adaptive polling policy, apart from the clock so tests can feed it:
 * after a poll + wait that took @block_ns (until the event arrived), update
 * the polling time *poll_ns and, for the weighted policy, the average
 * *avg_ns.
 */
void aio_poll_adjust(const AioPollParams *p, int64_t *poll_ns, int64_t *avg_ns,
                     int64_t block_ns);

/* Optional hooks used by the main loop around the wait (aio/main-loop.c). */
typedef struct AioWaitHooks {
    int64_t timeout_cap_ns;    /* upper bound of one wait, -1 for none */
    void (*before_wait)(void); /* e.g. release the big lock */
    void (*after_wait)(bool timed_out); /* e.g. take it back */
} AioWaitHooks;

bool aio_poll_with_hooks(AioContext *ctx, bool blocking,
                         const AioWaitHooks *hooks);

/* async.c */
void aio_context_kick(AioContext *ctx);
bool aio_bh_poll(AioContext *ctx);
bool aio_bh_pending(AioContext *ctx);
void aio_notify_accept(AioContext *ctx);
void aio_context_notifier_read(void *opaque);
bool aio_context_notifier_poll(void *opaque);
void aio_context_notifier_poll_ready(void *opaque);
bool aio_context_on_loop_thread(AioContext *ctx);

/* timer.c */
bool aio_timers_run(AioContext *ctx);
void aio_timers_init(AioContext *ctx);
void aio_timers_cleanup(AioContext *ctx);

/* main-loop.c */
AioContext *main_loop_context(void);
bool main_loop_defer_kick(AioContext *ctx);

static inline void stat_inc(atomic_ullong *counter)
{
    atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
}

#endif
