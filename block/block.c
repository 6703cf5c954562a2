/*
 * Requests: checking, per-context state, completion on the submitting
 * context, deferral (latency, injected delays) and drain.
 */
#include <assert.h>
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "block/block-int.h"
#include "block/iov.h"
#include "util/clock.h"
#include "util/trace.h"

const char *blk_op_name(BlockOp op)
{
    static const char *const names[BLOCK_OP__MAX] = {
        [BLOCK_OP_READ] = "read",
        [BLOCK_OP_WRITE] = "write",
        [BLOCK_OP_FLUSH] = "flush",
        [BLOCK_OP_DISCARD] = "discard",
        [BLOCK_OP_WRITE_ZEROES] = "write-zeroes",
    };

    return (unsigned)op < BLOCK_OP__MAX ? names[op] : "?";
}

unsigned blk_in_flight(BlockBackend *blk)
{
    return atomic_load(&blk->in_flight);
}

/* ---- Per-context state --------------------------------------------------- */

/*
 * Lock-free on the fast path: the list only grows, and each entry is fully
 * built before it is published.
 */
static BlockCtx *blk_ctx_find(BlockBackend *blk, AioContext *ctx)
{
    BlockCtx *bctx = atomic_load_explicit(&blk->ctxs, memory_order_acquire);

    while (bctx && bctx->ctx != ctx) {
        bctx = bctx->next;
    }
    return bctx;
}

static BlockCtx *blk_ctx_get(BlockBackend *blk, AioContext *ctx)
{
    BlockCtx *bctx = blk_ctx_find(blk, ctx);

    if (bctx) {
        return bctx;
    }
    pthread_mutex_lock(&blk->lock);
    bctx = blk_ctx_find(blk, ctx);
    if (!bctx) {
        bctx = calloc(1, sizeof(*bctx));
        if (!bctx) {
            abort(); /* as aio does: no way to report it to the caller */
        }
        bctx->ctx = ctx;
        bctx->blk = blk;
        STAILQ_INIT(&bctx->retry);
        TAILQ_INIT(&bctx->deferred);
        bctx->next = atomic_load_explicit(&blk->ctxs, memory_order_relaxed);
        atomic_store_explicit(&blk->ctxs, bctx, memory_order_release);
    }
    pthread_mutex_unlock(&blk->lock);
    return bctx;
}

/* ---- Completion ---------------------------------------------------------- */

static void blk_finish(BlockRequest *req, int ret)
{
    BlockBackend *blk = req->state.blk;
    AioContext *ctx = req->state.bctx->ctx;
    BlockCompletionFunc *cb = req->cb;
    void *opaque = req->opaque;

    blk_account(req, ret, clock_ns());
    if (blk->log) {
        blk_log_finish(req, ret); /* before the device can tell the guest */
    }
    trace_set_current_id(req->trace_id); /* the device's interrupt is next */
    cb(opaque, ret);
    trace_set_current_id(0);
    aio_context_io_end(ctx);

    /*
     * req may be gone now. Decrement after the callback, so that a drain
     * also waits for callbacks; and inside 'completing', so that a drainer
     * on another thread that sees in_flight reach zero does not free blk
     * while we still read drain_ctx.
     */
    atomic_fetch_add(&blk->completing, 1);
    if (atomic_fetch_sub(&blk->in_flight, 1) == 1) {
        AioContext *drainer = atomic_load(&blk->drain_ctx);

        if (drainer) {
            aio_notify(drainer);
        }
    }
    atomic_fetch_sub(&blk->completing, 1);
}

/* The engine is done with req->state's I/O; we are on the home thread. */
void blk_io_done(BlockRequest *req, int ret)
{
    if (req->state.log_engine) {
        blk_log_engine_done(req, ret);
    }
    if (blk_bounce_done(req, ret)) {
        return; /* the bounce buffer needs another round of I/O */
    }
    blk_serialise_end(req);
    blk_finish(req, ret);
}

/* Run the completions queued so far, oldest first. */
static void blk_ctx_done_bh(void *opaque)
{
    BlockCtx *bctx = opaque;
    BlockRequest *req =
        atomic_exchange_explicit(&bctx->done, NULL, memory_order_acquire);
    BlockRequest *fifo = NULL, *next;

    while (req) {
        next = req->state.done_next;
        req->state.done_next = fifo;
        fifo = req;
        req = next;
    }
    /* Not bctx from here on: the last completion may let blk be closed. */
    for (req = fifo; req; req = next) {
        next = req->state.done_next;
        blk_io_done(req, req->state.ret);
    }
}

/*
 * Complete @req on its context's home thread, from any thread. The queue is
 * a lock-free stack; whoever makes it non-empty schedules the one BH that
 * will empty it, so a burst of completions costs one BH.
 */
void blk_complete_later(BlockRequest *req, int ret)
{
    BlockCtx *bctx = req->state.bctx;
    BlockRequest *head =
        atomic_load_explicit(&bctx->done, memory_order_relaxed);

    req->state.ret = ret;
    do {
        req->state.done_next = head;
    } while (!atomic_compare_exchange_weak_explicit(
        &bctx->done, &head, req, memory_order_release, memory_order_relaxed));
    if (!head) {
        aio_bh_schedule_oneshot(bctx->ctx, blk_ctx_done_bh, bctx);
    }
}

/* ---- Deferral: a per-context queue sorted by resume time, one timer ------ */

static void blk_ctx_timer_cb(void *opaque)
{
    BlockCtx *bctx = opaque;
    int64_t now = clock_ns();
    BlockRequest *req;

    while ((req = TAILQ_FIRST(&bctx->deferred)) &&
           req->state.resume_ns <= now) {
        TAILQ_REMOVE(&bctx->deferred, req, state.timer_link);
        req->state.resume(req); /* may defer again */
    }
    req = TAILQ_FIRST(&bctx->deferred);
    if (req) {
        aio_timer_mod(bctx->timer, req->state.resume_ns);
    } else {
        /* An idle context keeps no timer (see struct BlockCtx). */
        aio_timer_free(bctx->timer);
        bctx->timer = NULL;
    }
}

/* Call resume(req) on the home thread after @delay_ns. Home thread only. */
void blk_defer(BlockRequest *req, int64_t delay_ns,
               void (*resume)(BlockRequest *req))
{
    BlockCtx *bctx = req->state.bctx;
    BlockRequest *pos;

    req->state.resume_ns = clock_ns() + delay_ns;
    req->state.resume = resume;
    /* Delays are mostly equal, so a new request usually goes last. */
    TAILQ_FOREACH_REVERSE(pos, &bctx->deferred, BlockDeferredList,
                          state.timer_link)
    {
        if (pos->state.resume_ns <= req->state.resume_ns) {
            break;
        }
    }
    if (pos) {
        TAILQ_INSERT_AFTER(&bctx->deferred, pos, req, state.timer_link);
    } else {
        TAILQ_INSERT_HEAD(&bctx->deferred, req, state.timer_link);
    }
    if (!bctx->timer) {
        bctx->timer = aio_timer_new(bctx->ctx, blk_ctx_timer_cb, bctx);
    }
    if (TAILQ_FIRST(&bctx->deferred) == req) {
        aio_timer_mod(bctx->timer, req->state.resume_ns);
    }
}

/* ---- Submission ---------------------------------------------------------- */

/*
 * Everything the caller controls is checked here, once: op, flags, the
 * iovec array, and offset + length against the size without overflow.
 */
static int blk_check_request(BlockBackend *blk, BlockRequest *req,
                             uint64_t *bytes)
{
    int64_t len;

    switch (req->op) {
    case BLOCK_OP_READ:
    case BLOCK_OP_WRITE:
        if (!req->iov || req->iovcnt < 1 || req->iovcnt > BLK_MAX_IOV) {
            return -EINVAL;
        }
        len = iov_size_max(req->iov, req->iovcnt, BLK_MAX_REQUEST_BYTES);
        if (len < 0) {
            return -EINVAL;
        }
        *bytes = (uint64_t)len;
        break;
    case BLOCK_OP_FLUSH:
        *bytes = 0;
        return req->flags ? -EINVAL : 0;
    case BLOCK_OP_DISCARD:
    case BLOCK_OP_WRITE_ZEROES:
        *bytes = req->len;
        break;
    default:
        return -EINVAL;
    }
    if (req->flags & ~BLK_REQ_FUA) {
        return -EINVAL;
    }
    if ((req->flags & BLK_REQ_FUA) && req->op != BLOCK_OP_WRITE) {
        return -EINVAL;
    }
    if (*bytes > blk->size || req->offset > blk->size - *bytes) {
        return -EINVAL;
    }
    if (blk->readonly && req->op != BLOCK_OP_READ) {
        return -EROFS;
    }
    return 0;
}

/* The I/O itself: through a bounce buffer if O_DIRECT needs one. */
void blk_issue(BlockRequest *req)
{
    if (blk_needs_bounce(req)) {
        blk_bounce_start(req);
        return;
    }
    req->state.blk->drv->submit(req);
}

void blk_start_io(BlockRequest *req)
{
    if (blk_serialise_begin(req)) {
        blk_issue(req);
    } /* else blk_serialise_end() of the request in the way issues it */
}

int blk_submit(BlockBackend *blk, BlockRequest *req)
{
    BlockRequestState *s;
    AioContext *ctx = aio_current_context();
    uint64_t bytes = 0;
    int64_t delay_ns;
    int ret;

    if (!blk || !req || !req->cb) {
        return -EINVAL;
    }
    if (!ctx) {
        return -EPERM; /* nobody could run the completion */
    }

    /*
     * DATAPATH 4: a device's request enters the block layer. It is tied to
     * the current context (the main one for a big-lock holder, an
     * IOThread's own otherwise) and will complete on that context's thread.
     */
    s = &req->state;
    memset(s, 0, sizeof(*s));
    s->blk = blk;
    s->bctx = blk_ctx_get(blk, ctx);
    s->start_ns = clock_ns();
    atomic_fetch_add(&blk->in_flight, 1);
    aio_context_io_begin(ctx);

    ret = blk_check_request(blk, req, &bytes);
    if (blk->log) {
        blk_log_submit(req, bytes, ret);
    }
    TRACE(BLK_SUBMIT, req->trace_id, .a = {req->offset, bytes},
          .s = {blk_op_name(req->op), aio_context_trace_name(ctx)});
    if (ret == 0) {
        ret = blk_injected_error(blk, req->op);
    }
    /*
     * Errors, empty requests and flushes of a read-only image need no I/O,
     * but still complete later: callers never see a completion re-enter
     * them from inside blk_submit().
     */
    if (ret < 0 || (bytes == 0 && req->op != BLOCK_OP_FLUSH) ||
        (req->op == BLOCK_OP_FLUSH && blk->readonly)) {
        blk_complete_later(req, ret);
        return 0;
    }

    s->len = bytes;
    s->op = req->op;
    s->offset = req->offset;
    s->bytes = bytes;
    s->iov = req->iov;
    s->iovcnt = req->iovcnt;
    s->cut_short = blk_injected_short(blk, req->op);

    delay_ns = atomic_load_explicit(&blk->delay_ns, memory_order_relaxed);
    if (delay_ns > 0) {
        blk_defer(req, delay_ns, blk_start_io);
        return 0;
    }
    blk_start_io(req);
    return 0;
}

/* ---- Drain --------------------------------------------------------------- */

void blk_drain(BlockBackend *blk)
{
    AioContext *ctx = aio_current_context();

    /* A thread without a context has no loop to wait in. */
    assert(ctx || atomic_load(&blk->in_flight) == 0);
    if (ctx) {
        atomic_store(&blk->drain_ctx, ctx);
        /*
         * Our own completions run inside aio_poll(); those of other
         * contexts run on their threads, and the last one notifies us.
         */
        while (atomic_load(&blk->in_flight) > 0) {
            aio_poll(ctx, true);
        }
        atomic_store(&blk->drain_ctx, NULL);
    }
    /* The last completer is at most a few instructions from done. */
    while (atomic_load(&blk->completing) > 0) {
        sched_yield();
    }
}
