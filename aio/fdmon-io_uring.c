/*
 * fdmon-io_uring: wait for fds and for custom requests with one io_uring.
 *
 * Each fd handler is a one-shot IORING_OP_POLL_ADD whose completion marks the
 * handler ready; it is re-armed when that completion is collected (the new
 * SQE is submitted only after the handler ran, at the next wait). A removed
 * handler gets an IORING_OP_POLL_REMOVE and is freed once its poll's
 * completion has come back, since until then the kernel holds its address.
 *
 * Custom requests (aio_add_sqe()) carry a CqeHandler pointer as user_data.
 * The thread that waits without the big lock (the main loop) only waits for
 * the completion ring to become non-empty: it neither submits nor reaps, so
 * vCPU threads may queue SQEs under the lock meanwhile.
 */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include "aio/aio-internal.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/trace.h"

#define FDMON_IO_URING_ENTRIES 256

static void poll_cqe_cb(CqeHandler *handler);

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

/* DATAPATH 5: the SQEs queued so far go to the kernel. */
static int submit(AioContext *ctx)
{
    if (TRACE_ANY()) {
        trace_submit(ctx);
    }
    return io_uring_submit(&ctx->ring);
}

static struct io_uring_sqe *get_sqe(AioContext *ctx)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ctx->ring);

    if (!sqe) {
        /* The SQ ring is full: hand it to the kernel and try again. */
        submit(ctx);
        sqe = io_uring_get_sqe(&ctx->ring);
    }
    return sqe;
}

static void arm_poll(AioContext *ctx, AioHandler *node)
{
    unsigned mask = 0;
    struct io_uring_sqe *sqe;

    if (node->io_read) {
        mask |= POLLIN | POLLHUP | POLLERR;
    }
    if (node->io_write) {
        mask |= POLLOUT | POLLERR;
    }
    sqe = get_sqe(ctx);
    if (!sqe) {
        log_error("%s: io_uring SQ ring full, fd %d not watched", ctx->name,
                  node->fd);
        return;
    }
    io_uring_prep_poll_add(sqe, node->fd, mask);
    node->poll_cqe.cb = poll_cqe_cb;
    io_uring_sqe_set_data(sqe, &node->poll_cqe);
    node->poll_armed = true;
}

static void disarm_poll(AioContext *ctx, AioHandler *node)
{
    struct io_uring_sqe *sqe = get_sqe(ctx);

    if (!sqe) {
        return; /* the node stays on the deleted list until its CQE arrives */
    }
    io_uring_prep_poll_remove(sqe, (__u64)(uintptr_t)&node->poll_cqe);
    io_uring_sqe_set_data(sqe, NULL); /* nobody wants this CQE */
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
    }
    LIST_FOREACH(node, &ctx->deleted_handlers, node)
    {
        node->poll_armed = false;
    }
}

static void fdmon_io_uring_update(AioContext *ctx, AioHandler *old_node,
                                  AioHandler *new_node)
{
    if (new_node) {
        arm_poll(ctx, new_node);
    }
    if (old_node && old_node->poll_armed) {
        disarm_poll(ctx, old_node);
    }
}

static void fdmon_io_uring_prepare(AioContext *ctx, AioWait *w, bool do_submit)
{
    (void)w;
    if (do_submit && io_uring_sq_ready(&ctx->ring)) {
        submit(ctx);
    }
}

static int fdmon_io_uring_wait(AioContext *ctx, AioWait *w, int64_t timeout_ns,
                               bool may_submit)
{
    struct __kernel_timespec ts, *tsp = NULL;
    struct io_uring_cqe *cqe;
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
        ret = io_uring_submit_and_wait_timeout(&ctx->ring, &cqe, 1, tsp, NULL);
    } else {
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

/* DATAPATH 6: reap the CQEs; requests' handlers run in dispatch_ready(). */
static void fdmon_io_uring_collect(AioContext *ctx, AioWait *w, AioReady *ready)
{
    struct io_uring_cqe *cqe;
    unsigned head, count = 0;

    (void)w;
    io_uring_for_each_cqe(&ctx->ring, head, cqe)
    {
        CqeHandler *handler = io_uring_cqe_get_data(cqe);

        count++;
        if (!handler) {
            continue; /* a POLL_REMOVE's own completion */
        }
        if (handler->cb == poll_cqe_cb) {
            AioHandler *node = container_of(handler, AioHandler, poll_cqe);

            node->poll_armed = false;
            if (node->deleted) {
                continue; /* now free-able */
            }
            /* res is the poll mask, or -errno: let the handler find out. */
            aio_ready_add(ready, node, cqe->res < 0 ? POLLERR : cqe->res);
            arm_poll(ctx, node);
            continue;
        }
        handler->cqe = *cqe;
        ctx->sqes_in_flight--;
        STAILQ_INSERT_TAIL(&ready->cqes, handler, ready);
    }
    io_uring_cq_advance(&ctx->ring, count);
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

static bool fdmon_io_uring_can_free(AioHandler *node)
{
    return !node->poll_armed;
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
    .can_free = fdmon_io_uring_can_free,
};
