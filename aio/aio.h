/*
 * AioContext: minivmm's event loop.
 *
 * An AioContext gathers the things a thread waits for:
 *   - fd handlers: callbacks run when a file descriptor becomes readable or
 *     writable, with an optional io_poll() busy-poll callback;
 *   - bottom halves (BHs): callbacks scheduled from any thread, run soon on
 *     the context's home thread;
 *   - timers: callbacks at a CLOCK_MONOTONIC deadline;
 *   - custom io_uring requests: aio_add_sqe() queues an SQE and the
 *     completion is handed to a CqeHandler on the home thread.
 *
 * aio_poll() waits for any of them and runs the callbacks. How the waiting is
 * done is the job of a pluggable fd monitor (aio/fdmon.h): io_uring, or ppoll
 * where io_uring is unavailable.
 *
 * Each context has a home thread: the IOThread that created it, or, for the
 * main context, whichever thread holds the big lock (aio/main-loop.h). Only
 * the home thread polls and dispatches. Other threads may schedule BHs, arm
 * timers and call aio_notify().
 *
 * The model is QEMU's util/async.c and util/aio-posix.c, rewritten without
 * glib.
 */
#ifndef MINIVMM_AIO_AIO_H
#define MINIVMM_AIO_AIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include <liburing.h>

typedef struct AioContext AioContext;
typedef struct AioBH AioBH;
typedef struct AioTimer AioTimer;

typedef void IOHandler(void *opaque);
typedef bool AioPollFn(void *opaque);
typedef void AioBHFunc(void *opaque);
typedef void AioTimerFunc(void *opaque);

/* ---- Creating a context ------------------------------------------------ */

typedef enum AioFdmonKind {
    AIO_FDMON_AUTO,     /* io_uring, falling back to ppoll if unavailable */
    AIO_FDMON_IO_URING, /* io_uring or fail */
    AIO_FDMON_POLL,     /* ppoll, no aio_add_sqe() */
} AioFdmonKind;

/*
 * Adaptive polling parameters (see aio_poll()); times in nanoseconds.
 *
 * weight 0 is the classic policy: grow while sleeps are short, shrink when
 * one is long. weight w > 0 decides the same on a moving average of the
 * recent block times (each new sample counts 1/2^w), kept apart for waits
 * with and without I/O in flight, and polls for at most twice that average:
 * it stops polling when twice the average is past max_ns, where the classic
 * policy grows on every short sleep and wastes the next poll on a long one.
 */
typedef struct AioPollParams {
    int64_t max_ns;  /* 0 disables polling */
    int64_t grow;    /* multiply on grow; 0 means 2 */
    int64_t shrink;  /* divide on shrink; 0 means reset to 0 */
    unsigned weight; /* 0: grow/shrink; 1..63: weighted average shift */
} AioPollParams;

/* The IOThread default: poll for up to 32 us before sleeping. */
#define AIO_POLL_MAX_NS_DEFAULT 32768
/* Where polling starts when it first grows from zero. */
#define AIO_POLL_START_NS 4000
/* The largest poll weight (the shift of a 64-bit average). */
#define AIO_POLL_WEIGHT_MAX 63
/*
 * The IOThread default poll weight (0 would be grow/shrink). make
 * bench-uring, file, QD1, default flags: weights 1-4 all poll for the
 * guest's requests and sleep through the reads, for 0.69-0.74x the CPU per
 * I/O of grow/shrink at 1.24-1.35x its IOPS; QD64 and the null driver are
 * within the noise. 2 had the best mean over four runs.
 */
#define AIO_POLL_WEIGHT_DEFAULT 2

/*
 * io_uring setup flags (IORING_SETUP_*) by name, for settings. "coop" is
 * COOP_TASKRUN | TASKRUN_FLAG: the flag is how the loop learns, without a
 * system call, that completions wait for it in the kernel. "defer" is
 * DEFER_TASKRUN with what it needs: SINGLE_ISSUER, and TASKRUN_FLAG for the
 * same reason. Returns 0 with the flags in *flags, or -EINVAL for an
 * unknown name; @list is "none" or a comma-separated list of single-issuer,
 * coop, defer and (where the headers define it) no-sqarray.
 */
int aio_uring_flags_parse(const char *list, unsigned *flags);
/* The inverse, for logs and benchmarks: "none" or "single-issuer,coop". */
void aio_uring_flags_name(unsigned flags, char *buf, size_t len);
/*
 * Flags that are legal only when one thread alone enters the ring; the main
 * context never gets them (vCPU threads holding the big lock use it too).
 */
#define AIO_URING_SINGLE_THREAD_FLAGS                                          \
    (IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN)
/*
 * The IOThread default flags: single-issuer,coop. make bench-uring: with
 * them QD1 on the null driver runs 3.7-4.2x the IOPS of no flags at a
 * quarter of the CPU per I/O (COOP_TASKRUN stops the IPIs that interrupt
 * the busy-polling IOThread for every eventfd poll completion); QD64 and
 * the file are within the run-to-run noise. DEFER_TASKRUN stays an opt-in
 * experiment: it wins at QD1 too, but swings more between runs.
 */
#define AIO_IOTHREAD_URING_FLAGS_DEFAULT                                       \
    (IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN |                  \
     IORING_SETUP_TASKRUN_FLAG)

/*
 * Process-wide io_uring setup flags added to those of every context created
 * afterwards (shared rings still drop AIO_URING_SINGLE_THREAD_FLAGS). It
 * exists to run whole test suites under one flag set: make
 * check-uring-flags.
 */
void aio_set_extra_uring_flags(unsigned flags);

/*
 * The main loop's default flags (--main-loop-uring-flags): none. make
 * bench-uring's main-loop rows put coop within the noise of none
 * (0.95-1.15x the IOPS), and one path argues against it: a vCPU thread that
 * finds the SQ ring full submits it itself, and with COOP_TASKRUN those
 * completions wait, without an IPI, for that vCPU's next exit from the
 * guest.
 */
#define AIO_MAIN_URING_FLAGS_DEFAULT 0u

typedef struct AioContextOptions {
    const char *name;      /* for logs and stats; may be NULL */
    AioFdmonKind fdmon;    /* AIO_FDMON_AUTO by default */
    AioPollParams poll;    /* zero: no polling */
    unsigned uring_flags;  /* extra IORING_SETUP_* flags to try */
    unsigned ring_entries; /* 0: default */
    /*
     * Threads other than the creator enter the ring (the main context):
     * AIO_URING_SINGLE_THREAD_FLAGS are dropped from uring_flags.
     */
    bool shared_ring;
} AioContextOptions;

/*
 * How the io_uring fd monitor watches fds, process-wide, for contexts
 * created afterwards (each context keeps what it was created with):
 *
 * multishot (default on): one IORING_POLL_ADD_MULTI per fd handler, which
 * posts a CQE each time the fd is woken, instead of a one-shot POLL_ADD
 * re-armed after every event. Falls back to one-shot where the kernel
 * refuses it (Linux < 5.13) or ends it. A multishot poll reports wake-ups,
 * not a level: a handler must consume what made its fd ready (eventfd
 * handlers read the counter), or re-register to be told again.
 *
 * notifier read (default on): the context's own eventfd is read by an
 * io_uring READ, re-armed after each wake-up, instead of a poll whose
 * handler calls read(2): a wake-up then costs no system call of its own.
 * Falls back to the poll where the kernel refuses the read.
 */
void aio_set_uring_multishot(bool on);
bool aio_get_uring_multishot(void);
void aio_set_uring_notifier_read(bool on);
bool aio_get_uring_notifier_read(void);

/*
 * The notify protocol, process-wide (default on). On: a blocking aio_poll()
 * raises notify_me only once busy-polling has found nothing and it is about
 * to sleep, as QEMU does; an aio_notify() while it polls sets 'notified',
 * which the poll sees, and writes no eventfd. Off: notify_me goes up before
 * polling, so every aio_notify() to a polling thread writes the eventfd.
 * Also on: aio_add_sqe() by the thread that runs the context's loop
 * notifies nobody, since that thread submits before it next sleeps.
 */
void aio_set_notify_after_poll(bool on);
bool aio_get_notify_after_poll(void);

/*
 * Create a context whose home thread is the calling thread. Returns NULL and
 * sets errno on failure (with AIO_FDMON_IO_URING, when io_uring cannot be set
 * up).
 */
AioContext *aio_context_new(const AioContextOptions *opts);

/*
 * Destroy a context on its home thread. Pending BHs that were deleted are
 * freed; remaining fd handlers are dropped. In-flight aio_add_sqe() requests
 * must have completed (drain first).
 */
void aio_context_free(AioContext *ctx);

/* "io_uring" or "poll": which fd monitor the context ended up with. */
const char *aio_context_fdmon_name(AioContext *ctx);
const char *aio_context_name(AioContext *ctx);
/* The same, in a copy that outlives @ctx while a trace is on (util/trace.h). */
const char *aio_context_trace_name(AioContext *ctx);
bool aio_context_has_io_uring(AioContext *ctx);
/* The IORING_SETUP_* flags the ring was set up with (0 without io_uring). */
unsigned aio_context_uring_flags(AioContext *ctx);

/* Change adaptive polling; call on the home thread. */
void aio_context_set_poll_params(AioContext *ctx, const AioPollParams *p);

/* ---- The current context ------------------------------------------------ */

/*
 * The context that work started by the calling thread belongs to: the
 * thread's own context for an IOThread (or the main loop thread), and the
 * main context for any thread holding the big lock. NULL otherwise.
 */
AioContext *aio_current_context(void);

/* Declare the calling thread's own context (NULL to clear). */
void aio_set_thread_context(AioContext *ctx);

/* True if the calling thread may poll and dispatch @ctx. */
bool aio_context_in_home_thread(AioContext *ctx);

/* ---- Waiting and dispatching -------------------------------------------- */

/*
 * Run one iteration of the event loop: poll adaptively if enabled, wait (only
 * if @blocking) until something happens, then dispatch completions, fd
 * handlers, BHs and expired timers. Returns true if any callback other than
 * the internal wake-up notifier ran. Must run on the home thread.
 */
bool aio_poll(AioContext *ctx, bool blocking);

/*
 * Wake the home thread if it is sleeping in aio_poll(), or make its next
 * wait return at once. Callable from any thread. Writes the context's eventfd
 * only when somebody is (about to be) asleep; a big-lock holder's write to
 * the main context waits for its bql_unlock() unless the deferred kick is off
 * (main_loop_set_defer_kick()).
 */
void aio_notify(AioContext *ctx);

/* ---- File descriptor handlers ------------------------------------------ */

/*
 * Watch @fd: io_read/io_write run when it is readable/writable. io_poll, if
 * given, is called while busy-polling and returns true when there is work;
 * io_poll_ready (io_read if NULL) then handles it. Passing NULL for both
 * io_read and io_write removes the handler. Call on the home thread.
 *
 * With multishot polls (io_uring's default, aio_set_uring_multishot()) a
 * handler runs once per wake-up of the fd, not while it stays ready: it
 * must consume what made the fd ready (an eventfd's counter), or remove
 * itself and register again when it wants to hear of the rest (the
 * console's stdin does, when the guest's receive FIFO is full): a new
 * registration arms a new poll, which sees the fd as it is.
 */
void aio_set_fd_handler(AioContext *ctx, int fd, IOHandler *io_read,
                        IOHandler *io_write, AioPollFn *io_poll,
                        IOHandler *io_poll_ready, void *opaque);

/*
 * Tell @fd's handler when a busy-poll of its io_poll() starts and ends, so
 * that it can ask its source not to signal the fd meanwhile (a virtqueue
 * asks the guest not to kick: the kick would cost the guest an exit and the
 * loop a wake-up, for work polling finds anyway). After io_poll_end, the
 * loop calls io_poll() once more: work that came while signals were off is
 * not lost. Call after aio_set_fd_handler(), on the home thread.
 */
void aio_set_poll_begin_end(AioContext *ctx, int fd, IOHandler *io_poll_begin,
                            IOHandler *io_poll_end);

/* ---- Bottom halves ------------------------------------------------------ */

/* A re-usable BH. Free it with aio_bh_delete(). */
AioBH *aio_bh_new(AioContext *ctx, AioBHFunc *cb, void *opaque);

/*
 * Schedule @bh to run once on its context's home thread. Lock-free; callable
 * from any thread. Scheduling an already scheduled BH does nothing. BHs run
 * in the order they were scheduled.
 */
void aio_bh_schedule(AioBH *bh);

/* Unschedule @bh if it has not run yet. */
void aio_bh_cancel(AioBH *bh);

/* Delete @bh; if it is scheduled, it will not run. Callable from any thread. */
void aio_bh_delete(AioBH *bh);

/* Run cb(opaque) once on @ctx's home thread, then free the BH. */
void aio_bh_schedule_oneshot(AioContext *ctx, AioBHFunc *cb, void *opaque);

/*
 * Run cb(opaque) on @ctx's home thread and wait until it returned. Runs it
 * directly when called on the home thread. The caller must not hold the big
 * lock if @ctx is the main context's (it would deadlock with the main loop).
 */
void aio_run_in_context(AioContext *ctx, AioBHFunc *cb, void *opaque);

/* ---- Timers ------------------------------------------------------------- */

AioTimer *aio_timer_new(AioContext *ctx, AioTimerFunc *cb, void *opaque);

/* Fire at absolute CLOCK_MONOTONIC time @expire_ns (see clock_ns()). */
void aio_timer_mod(AioTimer *t, int64_t expire_ns);
void aio_timer_del(AioTimer *t);
bool aio_timer_pending(AioTimer *t);
/* Delete (if pending) and free. */
void aio_timer_free(AioTimer *t);

/*
 * Nanoseconds until the earliest timer of @ctx fires: 0 if one is due, -1 if
 * none is armed.
 */
int64_t aio_timers_deadline_ns(AioContext *ctx);

/* ---- Custom io_uring requests -------------------------------------------- */

typedef struct CqeHandler CqeHandler;
typedef void CqeHandlerFunc(CqeHandler *handler);

/*
 * Embed this in the request; cb receives it back with cqe filled in. It runs
 * on the home thread of the context the SQE was queued on.
 */
struct CqeHandler {
    CqeHandlerFunc *cb;
    uint64_t trace_id;              /* the request's id in a trace, or 0 */
    struct io_uring_cqe cqe;        /* filled in before cb runs */
    STAILQ_ENTRY(CqeHandler) ready; /* private to aio */
};

typedef void AioPrepSqeFunc(struct io_uring_sqe *sqe, void *opaque);

/*
 * Queue one io_uring request on the CURRENT context (aio_current_context()).
 * prep_sqe(sqe, opaque) fills in the SQE; its user_data is then set to
 * @handler. The SQE is submitted by the home thread before it next waits.
 *
 * When the notify-on-SQE switch is on (the default), this also calls
 * aio_notify() so that a home thread already asleep wakes up and submits.
 * Switched off, an SQE queued into the main context by a vCPU thread waits
 * for the main loop's timeout: the "500 ms slumber".
 *
 * Returns 0, -ENOTSUP when the current context's fd monitor has no io_uring
 * (callers fall back to another engine), or -EPERM when the calling thread has
 * no current context.
 */
int aio_add_sqe(AioPrepSqeFunc *prep_sqe, void *opaque, CqeHandler *handler);

/* Same, on an explicit context; the caller must be its home thread. */
int aio_context_add_sqe(AioContext *ctx, AioPrepSqeFunc *prep_sqe, void *opaque,
                        CqeHandler *handler);

/*
 * Ask the kernel to cancel the request @handler was queued with on @ctx
 * (aio_context_add_sqe()/aio_add_sqe()), for a request that must go away
 * on reset or drain. Call on the home thread. The handler's callback still
 * runs exactly once, on the home thread as usual: with cqe.res ==
 * -ECANCELED if the kernel stopped the request, or with its own result if
 * it finished first (a read already in the device is not stopped). Until
 * then the kernel may still use the request's buffers; after it, the
 * context has no trace of the request, so a drain that waits for the
 * callback ends. Returns 0, -ENOTSUP without io_uring, or -EAGAIN when the
 * SQ ring is full and the kernel refused it (try again later).
 */
int aio_cancel_sqe(AioContext *ctx, CqeHandler *handler);

/* The process-wide notify-on-SQE switch (default on). */
void aio_set_notify_on_sqe(bool on);
bool aio_get_notify_on_sqe(void);

/*
 * Block requests in flight on @ctx, whatever engine serves them; the block
 * layer calls these (any thread). With aio_add_sqe() requests they tell
 * the weighted polling policy a wait for I/O from a wait for the guest.
 */
void aio_context_io_begin(AioContext *ctx);
void aio_context_io_end(AioContext *ctx);

/*
 * For tests: make the next @count submits of @ctx's ring (those that have
 * SQEs to submit) fail with -@err, as if the kernel had refused the SQEs
 * and taken none. Call on the home thread (for the main context, with the
 * big lock held). Does nothing to a context without io_uring.
 */
void aio_uring_inject_submit_error(AioContext *ctx, int err, unsigned count);

/* ---- Statistics ------------------------------------------------------------
 */

typedef struct AioContextStats {
    uint64_t iterations;    /* aio_poll() / main loop iterations */
    uint64_t waits;         /* times the thread went to sleep */
    uint64_t wait_timeouts; /* sleeps that ended by timeout, */
    uint64_t wait_notified; /* ... by aio_notify() (the eventfd), */
    uint64_t wait_io;       /* ... by a completion or another fd */
    uint64_t notify_writes; /* eventfd writes by aio_notify() */
    /*
     * System calls made by the loop itself, counted where it makes them:
     * io_uring_enter (liburing enters only when it must; the count follows
     * its rules), read(2) of the eventfd, ppoll(). Not counted: the
     * notifiers' writes (notify_writes), and handlers' own calls.
     */
    uint64_t syscalls;
    uint64_t uring_enters;    /* of which io_uring_enter */
    uint64_t notifier_reads;  /* of which read(2) of the eventfd */
    uint64_t notifier_wakes;  /* eventfd wake-ups consumed (read or READ) */
    uint64_t poll_rearms;     /* POLL_ADDs queued after the first */
    uint64_t poll_successes;  /* busy-poll loops that found work */
    uint64_t poll_time_ns;    /* time spent busy-polling, in all */
    uint64_t sqes_queued;     /* aio_add_sqe() calls */
    uint64_t cqes_dispatched; /* CqeHandler callbacks run */
    int64_t poll_ns;          /* current adaptive polling time */
    int64_t poll_io_ns;       /* weighted: the same, while I/O is in flight */
} AioContextStats;

void aio_context_get_stats(AioContext *ctx, AioContextStats *stats);

#endif
