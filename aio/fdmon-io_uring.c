/*
 * fdmon-io_uring: wait for fds and for custom requests with one io_uring.
 *
 * Each fd handler is an IORING_OP_POLL_ADD whose completions mark the
 * handler ready. Multishot (aio_set_uring_multishot()), one SQE serves every
 * event: the kernel posts a CQE with IORING_CQE_F_MORE for each wake-up of
 * the fd. One-shot, or when the kernel ends a multishot poll (a CQE without
 * F_MORE), it is re-armed at the next prepare, after the handler ran.
 * A removed handler gets an IORING_OP_POLL_REMOVE and is freed once its
 * poll's last completion has come back, since until then the kernel holds
 * its address.
 *
 * The context's own eventfd is not polled but read, by an IORING_OP_READ
 * (aio_set_uring_notifier_read()): the completion that wakes the loop has
 * consumed the wake-up already, where a poll would wake it only for its
 * handler to call read(2). The READ is re-armed at the next prepare and
 * goes to the kernel with the next io_uring_enter, so it costs no system
 * call of its own.
 *
 * Nothing is lost when the kernel refuses a submit: a poll SQE that finds
 * the ring full waits on a list for the next prepare, and prepare tells
 * aio_poll() not to sleep while SQEs or polls are left over, since a sleep
 * would hold them until its timeout.
 *
 * Custom requests (aio_add_sqe()) carry a CqeHandler pointer as user_data.
 * The thread that waits without the big lock (the main loop) only waits for
 * the completion ring to become non-empty: it neither submits nor reaps, so
 * vCPU threads may queue SQEs under the lock meanwhile.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <string.h>

#include "aio/aio-internal.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/trace.h"

#define FDMON_IO_URING_ENTRIES 256

static void poll_cqe_cb(CqeHandler *handler);

static atomic_bool multishot_on = true;
static atomic_bool notifier_read_on = true;

void aio_set_uring_multishot(bool on)
{
    atomic_store(&multishot_on, on);
}

bool aio_get_uring_multishot(void)
{
    return atomic_load(&multishot_on);
}

void aio_set_uring_notifier_read(bool on)
{
    atomic_store(&notifier_read_on, on);
}

bool aio_get_uring_notifier_read(void)
{
    return atomic_load(&notifier_read_on);
}

/*
 * The system call counter (AioContextStats.uring_enters) follows liburing's
 * own rules, since liburing decides whether a call enters the kernel:
 * io_uring_submit() enters when it has SQEs to hand over or when the kernel
 * asked for it (completions overflowed, or task work waits: COOP_TASKRUN);
 * a wait for one CQE enters when it has SQEs to submit or no CQE is there.
 */
static bool submit_enters(AioContext *ctx)
{
    unsigned sq_flags = IO_URING_READ_ONCE(*ctx->ring.sq.kflags);

    return io_uring_sq_ready(&ctx->ring) > 0 ||
           (sq_flags & (IORING_SQ_CQ_OVERFLOW | IORING_SQ_TASKRUN));
}

/*
 * The main loop's ring is waited on without the big lock while a thread that
 * holds it may reap (blk_drain() from a vCPU): the CQ head is read
 * atomically here, where liburing's io_uring_cq_ready() reads it plainly.
 * A stale answer only miscounts one call.
 */
static bool wait_enters(AioContext *ctx, bool may_submit)
{
    unsigned tail = io_uring_smp_load_acquire(ctx->ring.cq.ktail);
    unsigned head = atomic_load_explicit((_Atomic unsigned *)ctx->ring.cq.khead,
                                         memory_order_relaxed);

    return (may_submit && io_uring_sq_ready(&ctx->ring) > 0) || tail == head;
}

/*
 * For the trace, before a submit: the SQEs the kernel has not taken yet
 * (from its head to our tail), and for each request among them (polls and
 * removals carry no request id) one sqe_submit event. Their aio_add_sqe
 * events say when they were queued; the gap is how long each waited.
 */
static void trace_submit(AioContext *ctx)
{
    struct io_uring_sq *sq = &ctx->ring.sq;
    unsigned head = IO_URING_READ_ONCE(*sq->khead);

    TRACE(URING_SUBMIT, 0, .a = {sq->sqe_tail - head}, .s = {ctx->trace_name});
    if (!TRACE_ON(TRACE_SQE_SUBMIT)) {
        return;
    }
    for (unsigned i = head; i != sq->sqe_tail; i++) {
        struct io_uring_sqe *sqe = &sq->sqes[i & sq->ring_mask];
        CqeHandler *handler = (CqeHandler *)(uintptr_t)sqe->user_data;

        if (handler && handler->trace_id) {
            TRACE(SQE_SUBMIT, handler->trace_id, .s = {ctx->trace_name});
        }
    }
}

static void reap(AioContext *ctx, AioReady *ready);

/*
 * The failure aio_uring_inject_submit_error() asked for, if any is left:
 * the kernel refused the SQEs and took none.
 */
static int injected_submit_error(AioContext *ctx)
{
    if (!ctx->inject_submit_count || !io_uring_sq_ready(&ctx->ring)) {
        return 0;
    }
    ctx->inject_submit_count--;
    return -ctx->inject_submit_errno;
}

void aio_uring_inject_submit_error(AioContext *ctx, int err, unsigned count)
{
    ctx->inject_submit_errno = err;
    ctx->inject_submit_count = count;
}

/*
 * DATAPATH 5: the SQEs queued so far go to the kernel (traced at each
 * attempt, so a retried submit shows up twice).
 *
 * A signal (-EINTR) only interrupted the call: try again. -EBUSY (the
 * completion ring overflowed) and -EAGAIN (the kernel is short of memory
 * for requests) ask us to reap completions first; with @ready to hand them
 * to, do so and try once more. Without it, as for a vCPU thread that will
 * not dispatch them, return the error: the SQEs stay queued, and the home
 * thread submits them before it next sleeps (prepare, or the wait itself).
 */
static int submit(AioContext *ctx, AioReady *ready)
{
    bool reaped = false;
    int ret;

    for (;;) {
        if (TRACE_ANY()) {
            trace_submit(ctx);
        }
        ret = injected_submit_error(ctx);
        if (!ret) {
            if (submit_enters(ctx)) {
                stat_inc(&ctx->stats.uring_enters);
            }
            ret = io_uring_submit(&ctx->ring);
        }
        if (ret == -EINTR) {
            continue;
        }
        if ((ret == -EBUSY || ret == -EAGAIN) && ready && !reaped) {
            reap(ctx, ready);
            reaped = true;
            continue;
        }
        return ret;
    }
}

static struct io_uring_sqe *get_sqe(AioContext *ctx)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ctx->ring);

    if (!sqe && submit(ctx, NULL) >= 0) {
        /* The SQ ring was full: the kernel took it, so there is room now. */
        sqe = io_uring_get_sqe(&ctx->ring);
    }
    return sqe;
}

/* Queue @node's poll SQE at the next prepare (see AioHandler). */
static void queue_poll_later(AioContext *ctx, AioHandler *node)
{
    if (!node->poll_to_queue) {
        node->poll_to_queue = true;
        LIST_INSERT_HEAD(&ctx->polls_to_queue, node, node_to_queue);
    }
}

static void forget_poll_later(AioHandler *node)
{
    if (node->poll_to_queue) {
        node->poll_to_queue = false;
        LIST_REMOVE(node, node_to_queue);
    }
}

/* With notifier reads, the eventfd is read (arm_notifier()), not polled. */
static bool is_read_notifier(AioContext *ctx, AioHandler *node)
{
    return ctx->notifier_read && node->fd == ctx->notify_fd;
}

static void arm_poll(AioContext *ctx, AioHandler *node)
{
    unsigned mask = 0;
    struct io_uring_sqe *sqe;

    if (is_read_notifier(ctx, node)) {
        return;
    }
    if (node->io_read) {
        mask |= POLLIN | POLLHUP | POLLERR;
    }
    if (node->io_write) {
        mask |= POLLOUT | POLLERR;
    }
    sqe = get_sqe(ctx);
    if (!sqe) {
        /* The ring is full and the kernel refused it: never leave it so. */
        queue_poll_later(ctx, node);
        return;
    }
    if (ctx->multishot) {
        io_uring_prep_poll_multishot(sqe, node->fd, mask);
    } else {
        io_uring_prep_poll_add(sqe, node->fd, mask);
    }
    node->poll_cqe.cb = poll_cqe_cb;
    io_uring_sqe_set_data(sqe, &node->poll_cqe);
    node->poll_armed = true;
    if (node->poll_armed_before) {
        stat_inc(&ctx->stats.poll_rearms);
    }
    node->poll_armed_before = true;
}

static void notifier_cqe_cb(CqeHandler *handler)
{
    (void)handler; /* the READ's completions are handled in reap() */
}

/*
 * Queue the READ of the eventfd. Without room it waits for the next
 * prepare, which keeps the loop from sleeping meanwhile: asleep without
 * it, nothing could wake the loop.
 */
static void arm_notifier(AioContext *ctx)
{
    struct io_uring_sqe *sqe = get_sqe(ctx);

    if (!sqe) {
        ctx->notifier_to_arm = true;
        return;
    }
    /* An eventfd has no position: read from the current one. */
    io_uring_prep_read(sqe, ctx->notify_fd, &ctx->notifier_buf,
                       sizeof(ctx->notifier_buf), (__u64)-1);
    ctx->notifier_cqe.cb = notifier_cqe_cb;
    io_uring_sqe_set_data(sqe, &ctx->notifier_cqe);
    ctx->notifier_to_arm = false;
    ctx->notifier_armed = true;
}

/* Make the eventfd blocking (@blocking) or not; see notifier_read_init(). */
static int notifier_set_blocking(AioContext *ctx, bool blocking)
{
    int fl = fcntl(ctx->notify_fd, F_GETFL);

    if (fl < 0) {
        return -errno;
    }
    fl = blocking ? fl & ~O_NONBLOCK : fl | O_NONBLOCK;
    return fcntl(ctx->notify_fd, F_SETFL, fl) < 0 ? -errno : 0;
}

/*
 * The kernel failed the READ after set-up accepted it: poll the eventfd
 * as before, its handler reading it. That read must not block (another
 * waiter of the main context may have consumed the wake-up), so only a
 * non-blocking eventfd can go back to it. One made blocking at set-up
 * keeps its READ, re-armed at each prepare: fcntl() is not for now, since
 * the threads that may reap this completion run sandboxed without it.
 */
static void notifier_read_give_up(AioContext *ctx, int err)
{
    AioHandler *node;

    if (ctx->notifier_blocking) {
        log_once("io_uring failed to read the event loop's eventfd (%s): "
                 "reading it again",
                 strerror(-err));
        ctx->notifier_to_arm = true;
        return;
    }
    log_once("io_uring failed to read the event loop's eventfd (%s): "
             "polling it instead",
             strerror(-err));
    ctx->notifier_read = false;
    ctx->notifier_to_arm = false;
    LIST_FOREACH(node, &ctx->handlers, node)
    {
        if (node->fd == ctx->notify_fd) {
            queue_poll_later(ctx, node);
        }
    }
}

/*
 * The READ came back. Having it complete was the wake-up; the value read
 * (the count of aio_notify() writes) does not matter. Re-armed at the next
 * prepare, so it goes to the kernel with the next io_uring_enter.
 */
static void notifier_read_done(AioContext *ctx, int res)
{
    ctx->notifier_armed = false;
    if (res > 0) {
        stat_inc(&ctx->stats.notifier_wakes);
    } else if (res != -EINTR && res != -EAGAIN && res != -ECANCELED) {
        notifier_read_give_up(ctx, res);
        return;
    }
    ctx->notifier_to_arm = true;
}

/*
 * Submit the READ now and say what became of it: 1 pending, as it should
 * be with nothing to read, else its result.
 */
static int notifier_try_read(AioContext *ctx)
{
    struct __kernel_timespec now = {0};
    struct io_uring_cqe *cqe;
    int res;

    arm_notifier(ctx);
    io_uring_submit(&ctx->ring);
    /* Entering with GETEVENTS runs the task work an inline result may be. */
    if (io_uring_wait_cqe_timeout(&ctx->ring, &cqe, &now) < 0) {
        return 1;
    }
    res = cqe->res;
    io_uring_cqe_seen(&ctx->ring, cqe);
    ctx->notifier_armed = false;
    return res;
}

/*
 * Read the eventfd through the ring where the kernel does it properly,
 * decided now, at set-up: the sandbox that may come later has no fcntl()
 * for IOThreads and vCPUs. A READ of a pollable file waits for data in the
 * kernel; but a kernel whose eventfds do not support non-blocking reads
 * inside io_uring (older ones) completes a READ of a non-blocking one at
 * once with -EAGAIN. Then the eventfd is made blocking, which is safe: only
 * this READ reads it from now on, and aio_notify()'s write would block only
 * at a count of 2^64 - 2. Any other error: poll it as before.
 */
static void notifier_read_init(AioContext *ctx)
{
    int res;

    ctx->notifier_read = atomic_load(&notifier_read_on);
    if (!ctx->notifier_read) {
        return;
    }
    res = notifier_try_read(ctx);
    if (res == -EAGAIN && notifier_set_blocking(ctx, true) == 0) {
        ctx->notifier_blocking = true;
        res = notifier_try_read(ctx);
    }
    if (res >= 0) {
        /* Pending; or a wake-up already, consumed: the next READ waits. */
        ctx->notifier_to_arm = !ctx->notifier_armed;
        return;
    }
    if (ctx->notifier_blocking) {
        notifier_set_blocking(ctx, false);
        ctx->notifier_blocking = false;
    }
    log_once("io_uring cannot read the event loop's eventfd (%s): polling "
             "it instead",
             strerror(-res));
    ctx->notifier_read = false;
}

static void disarm_poll(AioContext *ctx, AioHandler *node)
{
    struct io_uring_sqe *sqe = get_sqe(ctx);

    if (!sqe) {
        /* Until the removal is queued the poll holds the node (can_free). */
        queue_poll_later(ctx, node);
        return;
    }
    io_uring_prep_poll_remove(sqe, (__u64)(uintptr_t)&node->poll_cqe);
    io_uring_sqe_set_data(sqe, NULL); /* nobody wants this CQE */
}

/*
 * Queue the polls that wait for it: re-arms of polls that fired, and any
 * that found the ring full. Stop at the first that still finds no room.
 */
static void queue_polls(AioContext *ctx)
{
    AioHandler *node;

    while ((node = LIST_FIRST(&ctx->polls_to_queue))) {
        forget_poll_later(node);
        if (!node->deleted) {
            arm_poll(ctx, node);
        } else if (node->poll_armed) {
            disarm_poll(ctx, node);
        }
        if (node->poll_to_queue) {
            break;
        }
    }
}

/*
 * What to give up, in order, when the kernel says EINVAL: the most recent
 * and most experimental first. TASKRUN_FLAG goes with whichever of COOP or
 * DEFER it was paired with, since the kernel wants one of them beside it.
 */
static const unsigned fallback_order[] = {
    IORING_SETUP_DEFER_TASKRUN,
#ifdef IORING_SETUP_NO_SQARRAY
    IORING_SETUP_NO_SQARRAY,
#endif
    IORING_SETUP_COOP_TASKRUN,
    IORING_SETUP_SINGLE_ISSUER,
};

/* Drop @flag from @flags; TASKRUN_FLAG alone is invalid, so it goes too. */
static unsigned drop_flag(unsigned flags, unsigned flag)
{
    flags &= ~flag;
    if (!(flags & (IORING_SETUP_COOP_TASKRUN | IORING_SETUP_DEFER_TASKRUN))) {
        flags &= ~IORING_SETUP_TASKRUN_FLAG;
    }
    return flags;
}

static atomic_uint extra_uring_flags;

void aio_set_extra_uring_flags(unsigned flags)
{
    atomic_store(&extra_uring_flags, flags);
}

/* One log line per flag the kernel refused, however many contexts try. */
static void log_dropped(unsigned flag)
{
    static atomic_uint logged;
    char name[64];

    if (atomic_fetch_or(&logged, flag) & flag) {
        return;
    }
    aio_uring_flags_name(flag, name, sizeof(name));
    log_msg(NULL,
            "io_uring rejected setup flag %s (0x%x); continuing "
            "without it",
            name, flag);
}

static int fdmon_io_uring_init(AioContext *ctx, const AioContextOptions *opts)
{
    struct io_uring_params params;
    unsigned entries =
        opts->ring_entries ? opts->ring_entries : FDMON_IO_URING_ENTRIES;
    unsigned flags = opts->uring_flags | atomic_load(&extra_uring_flags);
    size_t next = 0;
    int ret;

    if (opts->shared_ring) {
        flags &= ~AIO_URING_SINGLE_THREAD_FLAGS;
        flags = drop_flag(flags, 0);
    }
    for (;;) {
        memset(&params, 0, sizeof(params));
        params.flags = flags;
        ret = io_uring_queue_init_params(entries, &ctx->ring, &params);
        if (ret != -EINVAL || !flags) {
            break;
        }
        /* Retry without the next flag we asked for, one at a time. */
        while (next < sizeof(fallback_order) / sizeof(fallback_order[0]) &&
               !(flags & fallback_order[next])) {
            next++;
        }
        if (next == sizeof(fallback_order) / sizeof(fallback_order[0])) {
            log_dropped(flags);
            flags = 0; /* something we do not know: try the plain ring */
            continue;
        }
        log_dropped(fallback_order[next]);
        flags = drop_flag(flags, fallback_order[next]);
        if (flags & IORING_SETUP_DEFER_TASKRUN &&
            !(flags & IORING_SETUP_SINGLE_ISSUER)) {
            flags = drop_flag(flags, IORING_SETUP_DEFER_TASKRUN);
        }
    }
    if (ret < 0) {
        return ret;
    }
    if (!(params.features & IORING_FEAT_EXT_ARG)) {
        /* Waiting with a timeout needs it (Linux 5.11). */
        io_uring_queue_exit(&ctx->ring);
        return -ENOSYS;
    }
    ctx->ring_flags = params.flags;
    ctx->ring_ready = true;
    LIST_INIT(&ctx->polls_to_queue);
    ctx->multishot = atomic_load(&multishot_on);
    notifier_read_init(ctx);
    return 0;
}

static void fdmon_io_uring_cleanup(AioContext *ctx)
{
    if (ctx->ring_ready) {
        io_uring_queue_exit(&ctx->ring);
        ctx->ring_ready = false;
    }
    /* The kernel has let go of every poll: any node may be freed now. */
    AioHandler *node;
    LIST_FOREACH(node, &ctx->handlers, node)
    {
        node->poll_armed = false;
        node->poll_to_queue = false;
    }
    LIST_FOREACH(node, &ctx->deleted_handlers, node)
    {
        node->poll_armed = false;
        node->poll_to_queue = false;
    }
    LIST_INIT(&ctx->polls_to_queue);
    ctx->notifier_armed = false;
    ctx->notifier_to_arm = false;
}

static void fdmon_io_uring_update(AioContext *ctx, AioHandler *old_node,
                                  AioHandler *new_node)
{
    if (new_node) {
        arm_poll(ctx, new_node);
    }
    if (old_node) {
        forget_poll_later(old_node); /* a POLL_ADD never queued needs no undo */
        if (old_node->poll_armed) {
            disarm_poll(ctx, old_node);
        }
    }
}

/*
 * The last chance before a sleep: submit (when @do_submit; otherwise the
 * wait does it), queue the polls left over, and submit what that queued.
 * Sleeping now would leave unsubmitted SQEs or unwatched fds until the
 * timeout, so when the kernel still refuses, the wait must not sleep.
 */
static bool fdmon_io_uring_prepare(AioContext *ctx, AioWait *w, AioReady *ready,
                                   bool do_submit)
{
    (void)w;
    if (do_submit && io_uring_sq_ready(&ctx->ring)) {
        submit(ctx, ready); /* room for the polls, too */
    }
    if (!LIST_EMPTY(&ctx->polls_to_queue) || ctx->notifier_to_arm) {
        queue_polls(ctx);
        if (ctx->notifier_to_arm) {
            arm_notifier(ctx);
        }
        if (do_submit && io_uring_sq_ready(&ctx->ring)) {
            submit(ctx, ready);
        }
    }
    return !LIST_EMPTY(&ctx->polls_to_queue) || ctx->notifier_to_arm ||
           (do_submit && io_uring_sq_ready(&ctx->ring)) ||
           !STAILQ_EMPTY(&ready->cqes) || !LIST_EMPTY(&ready->nodes);
}

static int fdmon_io_uring_wait(AioContext *ctx, AioWait *w, int64_t timeout_ns,
                               bool may_submit)
{
    struct __kernel_timespec ts, *tsp = NULL;
    struct io_uring_cqe *cqe = NULL;
    int ret;

    (void)w;
    if (timeout_ns >= 0) {
        ts.tv_sec = timeout_ns / NS_PER_S;
        ts.tv_nsec = timeout_ns % NS_PER_S;
        tsp = &ts;
    }
    /*
     * Both calls return once a CQE is there, without consuming it:
     * collect() reaps, with the big lock held where that matters.
     */
    if (may_submit) {
        /* DATAPATH 5: an IOThread submits and sleeps in one system call. */
        if (TRACE_ANY() && io_uring_sq_ready(&ctx->ring)) {
            trace_submit(ctx);
        }
        ret = injected_submit_error(ctx);
        if (!ret) {
            if (wait_enters(ctx, true)) {
                stat_inc(&ctx->stats.uring_enters);
            }
            ret = io_uring_submit_and_wait_timeout(&ctx->ring, &cqe, 1, tsp,
                                                   NULL);
        }
        /*
         * A refused submit returns before the kernel sleeps, so nothing
         * waits unsubmitted: the next pass reaps (collect()) and tries again.
         */
    } else {
        if (wait_enters(ctx, false)) {
            stat_inc(&ctx->stats.uring_enters);
        }
        ret = io_uring_wait_cqes(&ctx->ring, &cqe, 1, tsp, NULL);
    }
    if (ret == -ETIME || (ret >= 0 && !cqe && tsp)) {
        return -ETIME;
    }
    return ret < 0 && ret != -EINTR ? ret : 0;
}

static void poll_cqe_cb(CqeHandler *handler)
{
    (void)handler; /* poll completions are handled in collect() */
}

/*
 * A completion of @node's poll. While it carries IORING_CQE_F_MORE the
 * multishot poll stays armed; the last one (every one-shot CQE) ends it,
 * and a handler still wanted gets a new poll at the next prepare: not from
 * here, which submit() calls when the ring is full. A kernel that does not
 * know multishot polls fails the first with -EINVAL: from then on this
 * context arms one-shot polls.
 */
static void poll_done(AioContext *ctx, AioReady *ready, AioHandler *node,
                      const struct io_uring_cqe *cqe)
{
    bool more = cqe->flags & IORING_CQE_F_MORE;

    if (!more) {
        node->poll_armed = false;
    }
    if (node->deleted) {
        if (!more) {
            forget_poll_later(node); /* no POLL_REMOVE needed any more */
        }
        return; /* free-able once the last CQE came */
    }
    if (!more && cqe->res == -EINVAL && ctx->multishot) {
        log_once("io_uring has no multishot poll: using one-shot polls");
        ctx->multishot = false;
        queue_poll_later(ctx, node);
        return;
    }
    /* res is the poll mask, or -errno: let the handler find out. */
    aio_ready_add(ready, node, cqe->res < 0 ? POLLERR : cqe->res);
    if (!more) {
        queue_poll_later(ctx, node);
    }
}

/*
 * DATAPATH 6: reap the CQEs into @ready; requests' handlers run in
 * dispatch_ready().
 */
static void reap(AioContext *ctx, AioReady *ready)
{
    struct io_uring_cqe *cqe;
    unsigned head, count = 0;

    io_uring_for_each_cqe(&ctx->ring, head, cqe)
    {
        CqeHandler *handler = io_uring_cqe_get_data(cqe);

        count++;
        if (!handler) {
            continue; /* a POLL_REMOVE's or a cancel's own completion */
        }
        if (handler == &ctx->notifier_cqe) {
            notifier_read_done(ctx, cqe->res);
            continue;
        }
        if (handler->cb == poll_cqe_cb) {
            poll_done(ctx, ready, container_of(handler, AioHandler, poll_cqe),
                      cqe);
            continue;
        }
        handler->cqe = *cqe;
        ctx->sqes_in_flight--;
        STAILQ_INSERT_TAIL(&ready->cqes, handler, ready);
    }
    io_uring_cq_advance(&ctx->ring, count);
}

static void fdmon_io_uring_collect(AioContext *ctx, AioWait *w, AioReady *ready)
{
    (void)w;
    reap(ctx, ready);
}

/*
 * Completions the kernel holds back until this thread enters it: with
 * COOP_TASKRUN or DEFER_TASKRUN they are task work, not CQEs yet, and
 * TASKRUN_FLAG makes the kernel say so in the SQ ring flags. Without it,
 * DEFER_TASKRUN gives no sign at all, so an empty CQ proves nothing.
 */
static bool completions_in_kernel(AioContext *ctx)
{
    unsigned sq_flags = IO_URING_READ_ONCE(*ctx->ring.sq.kflags);

    if (sq_flags & (IORING_SQ_CQ_OVERFLOW | IORING_SQ_TASKRUN)) {
        return true;
    }
    return (ctx->ring_flags & IORING_SETUP_DEFER_TASKRUN) &&
           !(ctx->ring_flags & IORING_SETUP_TASKRUN_FLAG) &&
           io_uring_cq_ready(&ctx->ring) == 0;
}

static bool fdmon_io_uring_need_wait(AioContext *ctx)
{
    /*
     * Unsubmitted SQEs, completions stuck in the overflow list, or task work
     * the kernel wants us to run: only entering the kernel (with GETEVENTS,
     * which wait() always passes) makes progress on any of them.
     */
    return io_uring_sq_ready(&ctx->ring) > 0 || completions_in_kernel(ctx);
}

/*
 * Busy-poll hook. Pending task work counts as ready: aio_poll() then stops
 * polling and, since need_wait() agrees, enters the kernel to run it.
 * Peeking at the CQ alone would spin past a completion that COOP_TASKRUN
 * keeps as task work until the poll time runs out.
 */
static bool fdmon_io_uring_poll_ready(AioContext *ctx)
{
    unsigned sq_flags = IO_URING_READ_ONCE(*ctx->ring.sq.kflags);

    return io_uring_cq_ready(&ctx->ring) > 0 ||
           (sq_flags & (IORING_SQ_CQ_OVERFLOW | IORING_SQ_TASKRUN));
}

static int fdmon_io_uring_add_sqe(AioContext *ctx, AioPrepSqeFunc *prep,
                                  void *opaque, CqeHandler *handler)
{
    struct io_uring_sqe *sqe = get_sqe(ctx);

    if (!sqe) {
        return -EAGAIN; /* the kernel took nothing: caller retries later */
    }
    prep(sqe, opaque);
    io_uring_sqe_set_data(sqe, handler);
    ctx->sqes_in_flight++;
    return 0;
}

/*
 * An IORING_OP_ASYNC_CANCEL keyed on the request's user_data. Its own CQE
 * says only whether the kernel found the request; the request's CQE comes
 * regardless (with -ECANCELED if it was stopped) and runs its handler as
 * any other, which is what aio_cancel_sqe() promises.
 */
static int fdmon_io_uring_cancel_sqe(AioContext *ctx, CqeHandler *handler)
{
    struct io_uring_sqe *sqe = get_sqe(ctx);

    if (!sqe) {
        return -EAGAIN;
    }
    io_uring_prep_cancel64(sqe, (__u64)(uintptr_t)handler, 0);
    io_uring_sqe_set_data(sqe, NULL); /* nobody wants this CQE */
    return 0;
}

static bool fdmon_io_uring_can_free(AioHandler *node)
{
    return !node->poll_armed && !node->poll_to_queue;
}

const FDMonOps fdmon_io_uring_ops = {
    .name = "io_uring",
    .init = fdmon_io_uring_init,
    .cleanup = fdmon_io_uring_cleanup,
    .update = fdmon_io_uring_update,
    .prepare = fdmon_io_uring_prepare,
    .wait = fdmon_io_uring_wait,
    .collect = fdmon_io_uring_collect,
    .need_wait = fdmon_io_uring_need_wait,
    .poll_ready = fdmon_io_uring_poll_ready,
    .add_sqe = fdmon_io_uring_add_sqe,
    .cancel_sqe = fdmon_io_uring_cancel_sqe,
    .can_free = fdmon_io_uring_can_free,
};
