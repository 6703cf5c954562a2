/*
 * The io_uring engine: each request becomes one SQE in the ring of the
 * context that submitted it (aio_add_sqe()), and its completion runs there.
 *
 * A transfer the kernel cut short is continued for the rest (a read that
 * hits end of file is zero-filled); -EINTR and -EAGAIN are tried again; a
 * full SQ ring parks the request on a per-context retry list. A context
 * without io_uring (the ppoll fd monitor) hands its requests to the thread
 * pool instead.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdlib.h>

#include "block/block-int.h"
#include "block/iov.h"
#include "util/compiler.h"
#include "util/log.h"

static void uring_complete(CqeHandler *handler);

static void uring_prep(struct io_uring_sqe *sqe, void *opaque)
{
    BlockRequest *req = opaque;
    BlockRequestState *s = &req->state;
    int fd = s->blk->fd;
    uint64_t offset = s->offset + s->done;
    const struct iovec *iov = s->iov_rest ? s->iov_rest : s->iov;
    int iovcnt = s->iov_rest ? s->iovcnt_rest : s->iovcnt;

    switch (s->op) {
    case BLOCK_OP_READ:
        if (iovcnt == 1) {
            io_uring_prep_read(sqe, fd, iov[0].iov_base, iov[0].iov_len,
                               offset);
        } else {
            io_uring_prep_readv(sqe, fd, iov, iovcnt, offset);
        }
        break;
    case BLOCK_OP_WRITE:
        if (iovcnt == 1) {
            io_uring_prep_write(sqe, fd, iov[0].iov_base, iov[0].iov_len,
                                offset);
        } else {
            io_uring_prep_writev(sqe, fd, iov, iovcnt, offset);
        }
        if (req->flags & BLK_REQ_FUA) {
            sqe->rw_flags = RWF_DSYNC;
        }
        break;
    case BLOCK_OP_FLUSH:
        io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
        break;
    case BLOCK_OP_DISCARD:
        io_uring_prep_fallocate(sqe, fd,
                                FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                                offset, s->bytes);
        break;
    case BLOCK_OP_WRITE_ZEROES:
        io_uring_prep_fallocate(sqe, fd,
                                FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
                                offset, s->bytes);
        break;
    default:
        io_uring_prep_nop(sqe); /* blk_submit() let no other op through */
        break;
    }
}

/* Queue one SQE for @req: the first time on the current context. */
static int uring_queue(BlockRequest *req, bool first)
{
    BlockRequestState *s = &req->state;
    int ret;

    s->cqe.cb = uring_complete;
    s->cqe.trace_id = req->trace_id;
    if (blk_injected_queue_full(s->blk)) {
        ret = -EAGAIN;
    } else if (first) {
        ret = aio_add_sqe(uring_prep, req, &s->cqe);
    } else {
        /* Continuations run on the home thread, so this is its ring too. */
        ret = aio_context_add_sqe(s->bctx->ctx, uring_prep, req, &s->cqe);
    }
    if (ret == -EAGAIN) {
        counter_add(&s->blk->counters.queue_full, 1);
    } else if (ret == 0 && s->op == BLOCK_OP_FLUSH) {
        counter_add(&s->blk->counters.syncs, 1);
    }
    return ret;
}

/* ---- A full SQ ring: park the request, try again from a BH --------------- */

static void uring_retry_bh(void *opaque)
{
    BlockCtx *bctx = opaque;
    BlockRequest *req;

    bctx->retry_scheduled = false;
    while ((req = STAILQ_FIRST(&bctx->retry))) {
        int ret = uring_queue(req, false);

        if (ret == -EAGAIN) {
            /* Still full: the next iteration reaps CQEs and makes room. */
            bctx->retry_scheduled = true;
            aio_bh_schedule_oneshot(bctx->ctx, uring_retry_bh, bctx);
            return;
        }
        STAILQ_REMOVE_HEAD(&bctx->retry, state.link);
        if (ret < 0) {
            blk_complete_later(req, ret);
        }
    }
}

static void uring_retry_later(BlockRequest *req)
{
    BlockCtx *bctx = req->state.bctx;

    STAILQ_INSERT_TAIL(&bctx->retry, req, state.link);
    if (!bctx->retry_scheduled) {
        bctx->retry_scheduled = true;
        aio_bh_schedule_oneshot(bctx->ctx, uring_retry_bh, bctx);
    }
}

/* ---- Submission and completion ------------------------------------------- */

static void uring_submit(BlockRequest *req)
{
    BlockRequestState *s = &req->state;
    int ret;

    if (!STAILQ_EMPTY(&s->bctx->retry)) {
        uring_retry_later(req); /* keep the order of those already waiting */
        return;
    }
    ret = uring_queue(req, true);
    if (ret == -ENOTSUP) {
        counter_add(&s->blk->counters.fallbacks, 1);
        log_once("block: context '%s' has no io_uring: %s uses the thread "
                 "pool there",
                 aio_context_name(s->bctx->ctx), s->blk->path);
        blk_threads_driver.submit(req);
    } else if (ret == -EAGAIN) {
        uring_retry_later(req);
    } else if (ret < 0) {
        blk_complete_later(req, ret);
    }
}

static void uring_finish(BlockRequest *req, int ret)
{
    free(req->state.iov_rest);
    req->state.iov_rest = NULL;
    blk_io_done(req, ret);
}

static void uring_resubmit(BlockRequest *req)
{
    int ret = uring_queue(req, false);

    counter_add(&req->state.blk->counters.resubmits, 1);
    if (ret == -EAGAIN) {
        uring_retry_later(req);
    } else if (ret < 0) {
        uring_finish(req, ret);
    }
}

/* A read or write moved @got bytes; go on with the rest if there is any. */
static void uring_transferred(BlockRequest *req, uint64_t got)
{
    BlockRequestState *s = &req->state;

    if (s->cut_short) {
        s->cut_short = false;
        got = blk_cut_short(s->blk, got);
    }
    s->done += got;
    if (s->done >= s->bytes) {
        uring_finish(req, 0);
        return;
    }
    if (got == 0) {
        if (s->op == BLOCK_OP_READ) {
            /* End of file: the image shrank under us. Reads see zeros. */
            iov_memset(s->iov, s->iovcnt, s->done, 0, s->bytes - s->done);
            uring_finish(req, 0);
        } else {
            uring_finish(req, -ENOSPC);
        }
        return;
    }
    if (!s->iov_rest) {
        s->iov_rest = malloc(sizeof(*s->iov_rest) * s->iovcnt);
        if (!s->iov_rest) {
            uring_finish(req, -ENOMEM);
            return;
        }
    }
    s->iovcnt_rest = iov_tail(s->iov_rest, s->iov, s->iovcnt, s->done);
    uring_resubmit(req);
}

/* The CQE handler aio_poll() calls at DATAPATH 6, on the home thread. */
static void uring_complete(CqeHandler *handler)
{
    BlockRequest *req = container_of(handler, BlockRequest, state.cqe);
    BlockRequestState *s = &req->state;
    int res = handler->cqe.res;

    if (res == -EINTR || res == -EAGAIN) {
        uring_resubmit(req);
        return;
    }
    if (res == -EOPNOTSUPP && s->op == BLOCK_OP_WRITE_ZEROES) {
        /* The thread pool knows the fallbacks (punching a hole). */
        blk_threads_driver.submit(req);
        return;
    }
    if (res < 0) {
        uring_finish(req, res);
        return;
    }
    if (s->op == BLOCK_OP_READ || s->op == BLOCK_OP_WRITE) {
        uring_transferred(req, (uint64_t)res);
        return;
    }
    uring_finish(req, 0);
}

const BlockDriver blk_uring_driver = {
    .name = "io_uring",
    .submit = uring_submit,
};
