/*
 * O_DIRECT alignment. The kernel rejects direct I/O whose offset, length or
 * buffers are not multiples of the device's block size with EINVAL, which a
 * guest must never see. Such requests go through an aligned bounce buffer
 * covering whole blocks:
 *
 *   read          read the blocks, copy the requested part out
 *   write         blocks whole, buffers misaligned: copy in, write
 *   write (RMW)   read the blocks, copy the new bytes over them, write back
 *
 * Two read-modify-write cycles on overlapping blocks would lose one's update
 * (both read the old block, the later write wins), so they take turns.
 */
#include <errno.h>
#include <stdlib.h>

#include "block/block-int.h"
#include "block/iov.h"

enum {
    BOUNCE_NONE,
    BOUNCE_READ,
    BOUNCE_WRITE,
    BOUNCE_RMW_READ,
    BOUNCE_RMW_WRITE,
};

bool blk_needs_bounce(BlockRequest *req)
{
    BlockRequestState *s = &req->state;
    uint32_t align = s->blk->align;

    if (!s->blk->o_direct ||
        (s->op != BLOCK_OP_READ && s->op != BLOCK_OP_WRITE)) {
        return false;
    }
    return ((s->offset | s->bytes) & (align - 1)) ||
           !iov_aligned(s->iov, s->iovcnt, align);
}

/* ---- Taking turns between read-modify-write cycles ----------------------- */

static bool overlap(BlockRequest *a, BlockRequest *b)
{
    return a->state.offset < b->state.offset + b->state.bytes &&
           b->state.offset < a->state.offset + a->state.bytes;
}

/* Overlaps an active cycle, or one waiting in front of @stop. */
static bool rmw_blocked_locked(BlockBackend *blk, BlockRequest *req,
                               BlockRequest *stop)
{
    BlockRequest *other;

    LIST_FOREACH(other, &blk->rmw_active, state.rmw_link)
    {
        if (overlap(req, other)) {
            return true;
        }
    }
    STAILQ_FOREACH(other, &blk->rmw_waiting, state.link)
    {
        if (other == stop) {
            break;
        }
        if (overlap(req, other)) {
            return true;
        }
    }
    return false;
}

/* Start the cycle now (true) or queue it behind the one it overlaps. */
static bool rmw_acquire(BlockRequest *req)
{
    BlockBackend *blk = req->state.blk;
    bool go;

    pthread_mutex_lock(&blk->lock);
    go = !rmw_blocked_locked(blk, req, NULL);
    if (go) {
        LIST_INSERT_HEAD(&blk->rmw_active, req, state.rmw_link);
    } else {
        STAILQ_INSERT_TAIL(&blk->rmw_waiting, req, state.link);
    }
    pthread_mutex_unlock(&blk->lock);
    return go;
}

static void rmw_resume_bh(void *opaque)
{
    BlockRequest *req = opaque;

    req->state.blk->drv->submit(req);
}

static void rmw_release(BlockRequest *req)
{
    BlockBackend *blk = req->state.blk;
    BlockRequest *w, *next, *ready = NULL;

    pthread_mutex_lock(&blk->lock);
    LIST_REMOVE(req, state.rmw_link);
    for (w = STAILQ_FIRST(&blk->rmw_waiting); w; w = next) {
        next = STAILQ_NEXT(w, state.link);
        if (!rmw_blocked_locked(blk, w, w)) {
            STAILQ_REMOVE(&blk->rmw_waiting, w, BlockRequest, state.link);
            LIST_INSERT_HEAD(&blk->rmw_active, w, state.rmw_link);
            w->state.done_next = ready; /* unused while waiting */
            ready = w;
        }
    }
    pthread_mutex_unlock(&blk->lock);

    /* Each resumes on its own context's thread, which may not be ours. */
    for (w = ready; w; w = next) {
        next = w->state.done_next;
        w->state.done_next = NULL;
        aio_bh_schedule_oneshot(w->state.bctx->ctx, rmw_resume_bh, w);
    }
}

/* ---- The bounce cycle ---------------------------------------------------- */

void blk_bounce_start(BlockRequest *req)
{
    BlockRequestState *s = &req->state;
    BlockBackend *blk = s->blk;
    uint64_t mask = blk->align - 1;
    /* Cannot overflow: offset + len <= size, a multiple of align. */
    uint64_t start = req->offset & ~mask;
    uint64_t end = (req->offset + s->len + mask) & ~mask;
    size_t size = end - start;

    if (posix_memalign(&s->bounce, blk->align, size)) {
        s->bounce = NULL;
        blk_complete_later(req, -ENOMEM);
        return;
    }
    counter_add(&blk->counters.bounced, 1);
    s->bounce_iov.iov_base = s->bounce;
    s->bounce_iov.iov_len = size;
    s->iov = &s->bounce_iov;
    s->iovcnt = 1;
    s->offset = start;
    s->bytes = size;

    if (req->op == BLOCK_OP_READ) {
        s->bounce_phase = BOUNCE_READ;
    } else if (start == req->offset && size == s->len) {
        iov_to_buf(req->iov, req->iovcnt, 0, s->bounce, size);
        s->bounce_phase = BOUNCE_WRITE;
    } else {
        counter_add(&blk->counters.rmw, 1);
        s->bounce_phase = BOUNCE_RMW_READ;
        s->op = BLOCK_OP_READ;
        if (!rmw_acquire(req)) {
            return; /* rmw_release() of the cycle in the way resumes us */
        }
    }
    blk->drv->submit(req);
}

/*
 * The engine finished a round of bounced I/O. Returns true if the request
 * goes on (the write half of a read-modify-write), false when it is done:
 * the caller completes it with @ret.
 */
bool blk_bounce_done(BlockRequest *req, int ret)
{
    BlockRequestState *s = &req->state;
    char *part;

    if (s->bounce_phase == BOUNCE_NONE) {
        return false;
    }
    /* Where the request's own bytes sit in the bounce buffer. */
    part = (char *)s->bounce + (req->offset - s->offset);
    switch (s->bounce_phase) {
    case BOUNCE_READ:
        if (ret == 0) {
            iov_from_buf(req->iov, req->iovcnt, 0, part, s->len);
        }
        break;
    case BOUNCE_RMW_READ:
        if (ret < 0) {
            rmw_release(req);
            break;
        }
        iov_to_buf(req->iov, req->iovcnt, 0, part, s->len);
        s->bounce_phase = BOUNCE_RMW_WRITE;
        s->op = BLOCK_OP_WRITE;
        s->done = 0;
        s->blk->drv->submit(req);
        return true;
    case BOUNCE_RMW_WRITE:
        rmw_release(req);
        break;
    default: /* BOUNCE_WRITE: nothing to copy back */
        break;
    }
    free(s->bounce);
    s->bounce = NULL;
    s->bounce_phase = BOUNCE_NONE;
    return false;
}
