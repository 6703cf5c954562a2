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
 * A read-modify-write cycle must not overlap another request that changes
 * the same blocks: they take turns (blk_serialise_begin()).
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

/* ---- Writes take turns with read-modify-write cycles --------------------
 *
 * A cycle reads whole blocks, and writes them back a while later with the
 * bytes it did not mean to change as they were when it read them. Any write
 * to those blocks that lands in between is undone: two cycles would lose
 * one's update, and an aligned write (or a write-zeroes or discard) to the
 * same block would lose the sectors the cycle did not cover, after the guest
 * was told they were written. So on an O_DIRECT backend every request that
 * changes data is tracked from its start to its completion, with its range
 * rounded out to whole blocks, and a cycle and anything overlapping it run
 * in turn, in the order they came. Plain writes do not wait for each other
 * (what overlapping writes leave is the guest's business), and with no
 * cycle about a plain write only takes the lock to be seen.
 */

static bool changes_data(BlockOp op)
{
    return op == BLOCK_OP_WRITE || op == BLOCK_OP_WRITE_ZEROES ||
           op == BLOCK_OP_DISCARD;
}

static bool conflict(BlockRequest *a, BlockRequest *b)
{
    return (a->state.rmw || b->state.rmw) &&
           a->state.serial_start < b->state.serial_end &&
           b->state.serial_start < a->state.serial_end;
}

/* Conflicts with an active request, or one waiting in front of @stop. */
static bool serial_blocked_locked(BlockBackend *blk, BlockRequest *req,
                                  BlockRequest *stop)
{
    BlockRequest *other;

    if (!req->state.rmw && !blk->rmw_tracked) {
        return false; /* only a cycle can be in a plain write's way */
    }
    LIST_FOREACH(other, &blk->serial_active, state.serial_link)
    {
        if (conflict(req, other)) {
            return true;
        }
    }
    STAILQ_FOREACH(other, &blk->serial_waiting, state.link)
    {
        if (other == stop) {
            break;
        }
        if (conflict(req, other)) {
            return true;
        }
    }
    return false;
}

bool blk_serialise_begin(BlockRequest *req)
{
    BlockRequestState *s = &req->state;
    BlockBackend *blk = s->blk;
    uint64_t mask = blk->align - 1;
    bool go;

    if (!blk->o_direct || !changes_data(req->op)) {
        return true;
    }
    /* Cannot overflow: offset + len <= size, a multiple of align. */
    s->serial_start = req->offset & ~mask;
    s->serial_end = (req->offset + s->len + mask) & ~mask;
    s->rmw = req->op == BLOCK_OP_WRITE && ((req->offset | s->len) & mask);
    s->serial = true;

    pthread_mutex_lock(&blk->lock);
    go = !serial_blocked_locked(blk, req, NULL);
    if (go) {
        LIST_INSERT_HEAD(&blk->serial_active, req, state.serial_link);
    } else {
        STAILQ_INSERT_TAIL(&blk->serial_waiting, req, state.link);
    }
    blk->rmw_tracked += s->rmw;
    pthread_mutex_unlock(&blk->lock);
    return go;
}

static void serial_resume_bh(void *opaque)
{
    blk_issue(opaque);
}

void blk_serialise_end(BlockRequest *req)
{
    BlockBackend *blk = req->state.blk;
    BlockRequest *w, *next, *ready = NULL;

    if (!req->state.serial) {
        return;
    }
    req->state.serial = false;
    pthread_mutex_lock(&blk->lock);
    LIST_REMOVE(req, state.serial_link);
    blk->rmw_tracked -= req->state.rmw;
    for (w = STAILQ_FIRST(&blk->serial_waiting); w; w = next) {
        next = STAILQ_NEXT(w, state.link);
        if (!serial_blocked_locked(blk, w, w)) {
            STAILQ_REMOVE(&blk->serial_waiting, w, BlockRequest, state.link);
            LIST_INSERT_HEAD(&blk->serial_active, w, state.serial_link);
            w->state.done_next = ready; /* unused while waiting */
            ready = w;
        }
    }
    pthread_mutex_unlock(&blk->lock);

    /* Each resumes on its own context's thread, which may not be ours. */
    for (w = ready; w; w = next) {
        next = w->state.done_next;
        w->state.done_next = NULL;
        aio_bh_schedule_oneshot(w->state.bctx->ctx, serial_resume_bh, w);
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
            break;
        }
        iov_to_buf(req->iov, req->iovcnt, 0, part, s->len);
        s->bounce_phase = BOUNCE_RMW_WRITE;
        s->op = BLOCK_OP_WRITE;
        s->done = 0;
        s->blk->drv->submit(req);
        return true;
    default: /* BOUNCE_WRITE, BOUNCE_RMW_WRITE: nothing to copy back */
        break;
    }
    free(s->bounce);
    s->bounce = NULL;
    s->bounce_phase = BOUNCE_NONE;
    return false;
}
