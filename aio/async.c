/*
 * AioContext lifetime, aio_notify() and bottom halves.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "aio/aio-internal.h"
#include "aio/main-loop.h"
#include "util/log.h"
#include "util/trace.h"

/* ---- The current context --------------------------------------------------
 */

static __thread AioContext *thread_ctx;

void aio_set_thread_context(AioContext *ctx)
{
    thread_ctx = ctx;
}

AioContext *aio_current_context(void)
{
    if (thread_ctx) {
        return thread_ctx;
    }
    return bql_locked() ? main_loop_context() : NULL;
}

bool aio_context_in_home_thread(AioContext *ctx)
{
    if (ctx == main_loop_context()) {
        return bql_locked();
    }
    return ctx == thread_ctx;
}

/*
 * True on the thread that runs @ctx's loop (the IOThread, the main loop
 * thread): narrower than the home thread, which for the main context is
 * any big-lock holder, vCPU threads included.
 */
bool aio_context_on_loop_thread(AioContext *ctx)
{
    return ctx == thread_ctx;
}

/* ---- aio_notify()
 * ------------------------------------------------------------ */

/*
 * aio_notify(), saying what it did: AIO_KICK_NONE (nobody was asleep),
 * AIO_KICK_WRITTEN (the eventfd was written) or AIO_KICK_DEFERRED (to
 * bql_unlock(), aio/main-loop.c).
 */
static AioKick notify(AioContext *ctx)
{
    /*
     * Publish the work (a BH, a queued SQE) before 'notified'; the sleeper
     * clears 'notified' and then looks for work (aio_notify_accept()).
     */
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&ctx->notified, true, memory_order_relaxed);

    /*
     * Store 'notified', then load 'notify_me'; the sleeper stores
     * 'notify_me', then loads 'notified'. With a full fence on both sides at
     * least one of us sees the other's store: no wake-up is lost.
     */
    atomic_thread_fence(memory_order_seq_cst);
    if (!atomic_load_explicit(&ctx->notify_me, memory_order_relaxed)) {
        return AIO_KICK_NONE;
    }
    if (main_loop_defer_kick(ctx)) {
        return AIO_KICK_DEFERRED;
    }
    aio_context_kick(ctx);
    return AIO_KICK_WRITTEN;
}

void aio_notify(AioContext *ctx)
{
    notify(ctx);
}

/* Wake a sleeping home thread: the eventfd it watches becomes readable. */
void aio_context_kick(AioContext *ctx)
{
    uint64_t one = 1;
    ssize_t r = write(ctx->notify_fd, &one, sizeof(one));

    (void)r; /* EAGAIN means the counter is already non-zero: fine */
    stat_inc(&ctx->stats.notify_writes);
}

void aio_notify_accept(AioContext *ctx)
{
    atomic_store_explicit(&ctx->notified, false, memory_order_relaxed);
    /* Clear 'notified' before looking at BHs, timers and completions. */
    atomic_thread_fence(memory_order_seq_cst);
}

/* The eventfd handler: consume the wake-up. */
void aio_context_notifier_read(void *opaque)
{
    AioContext *ctx = opaque;
    uint64_t value;
    ssize_t r = read(ctx->notify_fd, &value, sizeof(value));

    stat_inc(&ctx->stats.notifier_reads);
    if (r > 0) {
        stat_inc(&ctx->stats.notifier_wakes);
    }
    /* EAGAIN: another waiter of the main context consumed it */
}

/* While busy-polling, a notification is seen without touching the eventfd. */
bool aio_context_notifier_poll(void *opaque)
{
    AioContext *ctx = opaque;

    return atomic_load_explicit(&ctx->notified, memory_order_relaxed);
}

/*
 * What busy-polling found was 'notified', which aio_poll() clears itself:
 * the eventfd is not read, and was not written unless somebody slept.
 */
void aio_context_notifier_poll_ready(void *opaque)
{
    (void)opaque;
}

/* ---- Bottom halves
 * ------------------------------------------------------------ */

enum {
    BH_PENDING = 1 << 0,   /* on ctx->bh_list (or on a list being run) */
    BH_SCHEDULED = 1 << 1, /* should run */
    BH_DELETED = 1 << 2,   /* free instead of running */
    BH_ONESHOT = 1 << 3,   /* free after running */
};

struct AioBH {
    AioContext *ctx;
    AioBHFunc *cb;
    void *opaque;
    atomic_uint flags;
    AioBH *next; /* ctx->bh_list link, valid while BH_PENDING */
};

/*
 * Put @bh on its context's list unless it is already there, then wake the
 * home thread. The list is a lock-free stack: a compare-and-swap on the head.
 */
static void aio_bh_enqueue(AioBH *bh, unsigned new_flags)
{
    AioContext *ctx = bh->ctx;
    unsigned old_flags = atomic_fetch_or(&bh->flags, BH_PENDING | new_flags);

    if (!(old_flags & BH_PENDING)) {
        AioBH *head = atomic_load_explicit(&ctx->bh_list, memory_order_relaxed);

        do {
            bh->next = head;
        } while (!atomic_compare_exchange_weak_explicit(
            &ctx->bh_list, &head, bh, memory_order_release,
            memory_order_relaxed));
    }
    aio_notify(ctx);
}

AioBH *aio_bh_new(AioContext *ctx, AioBHFunc *cb, void *opaque)
{
    AioBH *bh = calloc(1, sizeof(*bh));

    if (!bh) {
        abort();
    }
    bh->ctx = ctx;
    bh->cb = cb;
    bh->opaque = opaque;
    return bh;
}

void aio_bh_schedule(AioBH *bh)
{
    aio_bh_enqueue(bh, BH_SCHEDULED);
}

void aio_bh_cancel(AioBH *bh)
{
    atomic_fetch_and(&bh->flags, ~(unsigned)BH_SCHEDULED);
}

void aio_bh_delete(AioBH *bh)
{
    /* The home thread frees it: it may be on a list right now. */
    aio_bh_enqueue(bh, BH_DELETED);
}

void aio_bh_schedule_oneshot(AioContext *ctx, AioBHFunc *cb, void *opaque)
{
    AioBH *bh = aio_bh_new(ctx, cb, opaque);

    atomic_store_explicit(&bh->flags, BH_ONESHOT, memory_order_relaxed);
    aio_bh_enqueue(bh, BH_SCHEDULED);
}

bool aio_bh_pending(AioContext *ctx)
{
    return atomic_load_explicit(&ctx->bh_list, memory_order_acquire) != NULL;
}

/* Take the whole list at once and return it oldest first. */
static AioBH *aio_bh_take_all(AioContext *ctx)
{
    AioBH *bh =
        atomic_exchange_explicit(&ctx->bh_list, NULL, memory_order_acquire);
    AioBH *fifo = NULL;

    while (bh) {
        AioBH *next = bh->next;

        bh->next = fifo;
        fifo = bh;
        bh = next;
    }
    return fifo;
}

/* Run the BHs scheduled so far; returns true if one ran. */
bool aio_bh_poll(AioContext *ctx)
{
    AioBH *bh = aio_bh_take_all(ctx);
    bool progress = false;

    while (bh) {
        AioBH *next = bh->next;
        /*
         * Clearing PENDING lets the BH be scheduled again, even by its own
         * callback; that schedule goes to the next batch.
         */
        unsigned flags = atomic_fetch_and(
            &bh->flags, ~(unsigned)(BH_PENDING | BH_SCHEDULED));

        if (flags & BH_DELETED) {
            free(bh);
        } else if (flags & BH_SCHEDULED) {
            bh->cb(bh->opaque);
            progress = true;
            if (flags & BH_ONESHOT) {
                free(bh);
            }
        } else if (flags & BH_ONESHOT) {
            free(bh); /* a cancelled one-shot BH */
        }
        bh = next;
    }
    return progress;
}

/* Free what is still queued when the context goes away. */
static void aio_bh_cleanup(AioContext *ctx)
{
    AioBH *bh = aio_bh_take_all(ctx);

    while (bh) {
        AioBH *next = bh->next;
        unsigned flags = atomic_load(&bh->flags);

        if (flags & (BH_DELETED | BH_ONESHOT)) {
            free(bh);
        } else {
            /* Its owner still holds a pointer and must delete it. */
            atomic_store(&bh->flags, flags & ~(unsigned)BH_PENDING);
        }
        bh = next;
    }
}

/* ---- Running a function on another context's thread -----------------------
 */

typedef struct RunInContext {
    AioBHFunc *cb;
    void *opaque;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
} RunInContext;

static void run_in_context_bh(void *opaque)
{
    RunInContext *r = opaque;

    r->cb(r->opaque);
    pthread_mutex_lock(&r->lock);
    r->done = true;
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->lock);
}

void aio_run_in_context(AioContext *ctx, AioBHFunc *cb, void *opaque)
{
    RunInContext r = {.cb = cb, .opaque = opaque};

    if (aio_context_in_home_thread(ctx)) {
        cb(opaque);
        return;
    }
    pthread_mutex_init(&r.lock, NULL);
    pthread_cond_init(&r.cond, NULL);
    aio_bh_schedule_oneshot(ctx, run_in_context_bh, &r);
    pthread_mutex_lock(&r.lock);
    while (!r.done) {
        pthread_cond_wait(&r.cond, &r.lock);
    }
    pthread_mutex_unlock(&r.lock);
    pthread_mutex_destroy(&r.lock);
    pthread_cond_destroy(&r.cond);
}

/* ---- Context lifetime
 * --------------------------------------------------------- */

static int aio_fdmon_init(AioContext *ctx, const AioContextOptions *opts)
{
    int ret;

    if (opts->fdmon != AIO_FDMON_POLL) {
        ctx->fdmon = &fdmon_io_uring_ops;
        ret = ctx->fdmon->init(ctx, opts);
        if (ret == 0) {
            return 0;
        }
        if (opts->fdmon == AIO_FDMON_IO_URING) {
            return ret;
        }
        log_once("io_uring unavailable (%s): using ppoll for the event loop",
                 strerror(-ret));
    }
    ctx->fdmon = &fdmon_poll_ops;
    return ctx->fdmon->init(ctx, opts);
}

AioContext *aio_context_new(const AioContextOptions *opts)
{
    static const AioContextOptions defaults;
    AioContext *ctx;
    int ret;

    if (!opts) {
        opts = &defaults;
    }
    ctx = calloc(1, sizeof(*ctx));
    if (!ctx) {
        errno = ENOMEM;
        return NULL;
    }
    snprintf(ctx->name, sizeof(ctx->name), "%s",
             opts->name ? opts->name : "aio");
    ctx->trace_name = trace_active() ? trace_intern(ctx->name) : ctx->name;
    LIST_INIT(&ctx->handlers);
    LIST_INIT(&ctx->deleted_handlers);
    aio_timers_init(ctx);
    ctx->poll_params = opts->poll;
    if (ctx->poll_params.weight > AIO_POLL_WEIGHT_MAX) {
        ctx->poll_params.weight = AIO_POLL_WEIGHT_MAX;
    }

    ctx->notify_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (ctx->notify_fd < 0) {
        ret = -errno;
        goto fail;
    }
    ret = aio_fdmon_init(ctx, opts);
    if (ret < 0) {
        goto fail_fd;
    }

    /*
     * The notifier is an ordinary fd handler, registered by the creating
     * thread, which is the home thread by definition.
     */
    AioContext *saved = thread_ctx;
    thread_ctx = ctx;
    aio_set_fd_handler(ctx, ctx->notify_fd, aio_context_notifier_read, NULL,
                       aio_context_notifier_poll,
                       aio_context_notifier_poll_ready, ctx);
    LIST_FIRST(&ctx->handlers)->is_notifier = true;
    thread_ctx = saved;
    return ctx;

fail_fd:
    close(ctx->notify_fd);
fail:
    aio_timers_cleanup(ctx);
    free(ctx);
    errno = -ret;
    return NULL;
}

void aio_context_free(AioContext *ctx)
{
    if (!ctx) {
        return;
    }
    if (ctx->sqes_in_flight) {
        log_error("%s: freed with %u io_uring requests in flight", ctx->name,
                  ctx->sqes_in_flight);
    }
    aio_bh_cleanup(ctx);
    ctx->fdmon->cleanup(ctx);
    aio_handler_list_free_all(ctx);
    aio_timers_cleanup(ctx);
    close(ctx->notify_fd);
    if (thread_ctx == ctx) {
        thread_ctx = NULL;
    }
    free(ctx);
}

const char *aio_context_fdmon_name(AioContext *ctx)
{
    return ctx->fdmon->name;
}

const char *aio_context_name(AioContext *ctx)
{
    return ctx->name;
}

const char *aio_context_trace_name(AioContext *ctx)
{
    return ctx->trace_name;
}

bool aio_context_has_io_uring(AioContext *ctx)
{
    return ctx->fdmon == &fdmon_io_uring_ops;
}

unsigned aio_context_uring_flags(AioContext *ctx)
{
    return aio_context_has_io_uring(ctx) ? ctx->ring_flags : 0;
}

void aio_context_io_begin(AioContext *ctx)
{
    atomic_fetch_add_explicit(&ctx->io_in_flight, 1, memory_order_relaxed);
}

void aio_context_io_end(AioContext *ctx)
{
    atomic_fetch_sub_explicit(&ctx->io_in_flight, 1, memory_order_relaxed);
}

void aio_context_get_stats(AioContext *ctx, AioContextStats *s)
{
    s->iterations = atomic_load(&ctx->stats.iterations);
    s->waits = atomic_load(&ctx->stats.waits);
    s->wait_timeouts = atomic_load(&ctx->stats.wait_timeouts);
    s->wait_notified = atomic_load(&ctx->stats.wait_notified);
    s->wait_io = atomic_load(&ctx->stats.wait_io);
    s->notify_writes = atomic_load(&ctx->stats.notify_writes);
    s->uring_enters = atomic_load(&ctx->stats.uring_enters);
    s->notifier_reads = atomic_load(&ctx->stats.notifier_reads);
    s->notifier_wakes = atomic_load(&ctx->stats.notifier_wakes);
    s->poll_rearms = atomic_load(&ctx->stats.poll_rearms);
    s->syscalls =
        s->uring_enters + s->notifier_reads + atomic_load(&ctx->stats.ppolls);
    s->poll_successes = atomic_load(&ctx->stats.poll_successes);
    s->poll_time_ns = atomic_load(&ctx->stats.poll_time_ns);
    s->sqes_queued = atomic_load(&ctx->stats.sqes_queued);
    s->cqes_dispatched = atomic_load(&ctx->stats.cqes_dispatched);
    s->poll_ns = atomic_load(&ctx->stats.poll_ns[AIO_WAIT_IDLE]);
    s->poll_io_ns = atomic_load(&ctx->stats.poll_ns[AIO_WAIT_IO]);
}

/* ---- aio_add_sqe()
 * ------------------------------------------------------------ */

static atomic_bool notify_on_sqe = true;
static atomic_bool notify_after_poll = true;

void aio_set_notify_after_poll(bool on)
{
    atomic_store(&notify_after_poll, on);
}

bool aio_get_notify_after_poll(void)
{
    return atomic_load(&notify_after_poll);
}

void aio_set_notify_on_sqe(bool on)
{
    atomic_store(&notify_on_sqe, on);
}

bool aio_get_notify_on_sqe(void)
{
    return atomic_load(&notify_on_sqe);
}

/*
 * THE FIX. An SQE is queued, not submitted: only the thread that runs the
 * loop submits, just before it sleeps. If we are a vCPU thread holding the
 * big lock, the main loop may already be asleep and would not look at the
 * ring again until its timeout. Wake it (with the deferred kick, the
 * eventfd write waits for our bql_unlock(); aio/main-loop.c).
 *
 * The loop's own thread needs no wake-up: it submits before it next
 * sleeps. Notifying it anyway is not free even though nobody sleeps: it
 * sets 'notified' with a full fence, which makes the loop's next
 * aio_compute_timeout() return 0, so each batch of SQEs would cost one
 * extra pass of the loop that does not sleep. With the notify protocol
 * switched off (aio_set_notify_after_poll()) it still does, as before.
 */
static AioKick notify_for_sqe(AioContext *ctx)
{
    if (!atomic_load_explicit(&notify_on_sqe, memory_order_relaxed)) {
        return AIO_KICK_NONE;
    }
    if (aio_context_on_loop_thread(ctx) &&
        atomic_load_explicit(&notify_after_poll, memory_order_relaxed)) {
        return AIO_KICK_NONE;
    }
    return notify(ctx);
}

int aio_context_add_sqe(AioContext *ctx, AioPrepSqeFunc *prep_sqe, void *opaque,
                        CqeHandler *handler)
{
    AioKick kick = AIO_KICK_NONE;
    bool asleep;
    int ret;

    if (!ctx->fdmon->add_sqe) {
        return -ENOTSUP;
    }
    ret = ctx->fdmon->add_sqe(ctx, prep_sqe, opaque, handler);
    if (ret < 0) {
        return ret;
    }
    stat_inc(&ctx->stats.sqes_queued);
    /*
     * Asleep: the home thread is in its wait, or about to be (notify_me is
     * raised from the start of a blocking aio_poll() until it wakes; only a
     * big-lock holder can queue meanwhile, and only on the main context).
     */
    asleep = atomic_load_explicit(&ctx->notify_me, memory_order_relaxed) != 0;

    kick = notify_for_sqe(ctx);
    TRACE(AIO_ADD_SQE, handler->trace_id, .a = {asleep, kick},
          .s = {ctx->trace_name});
    return 0;
}

int aio_cancel_sqe(AioContext *ctx, CqeHandler *handler)
{
    int ret;

    if (!ctx->fdmon->cancel_sqe) {
        return -ENOTSUP;
    }
    ret = ctx->fdmon->cancel_sqe(ctx, handler);
    if (ret == 0) {
        notify_for_sqe(ctx); /* the cancel is an SQE: it must be submitted */
    }
    return ret;
}

/* DATAPATH 5: a request becomes an SQE in the current context's ring. */
int aio_add_sqe(AioPrepSqeFunc *prep_sqe, void *opaque, CqeHandler *handler)
{
    AioContext *ctx = aio_current_context();

    if (!ctx) {
        return -EPERM;
    }
    return aio_context_add_sqe(ctx, prep_sqe, opaque, handler);
}
