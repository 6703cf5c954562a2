/*
 * The null driver ("null://SIZE"): reads return zeros, everything else
 * succeeds without doing anything, after an optional fixed latency. It
 * measures the block layer's own cost.
 */
#include "block/block-int.h"
#include "block/iov.h"

static void null_fill(BlockRequest *req)
{
    BlockRequestState *s = &req->state;

    if (s->op == BLOCK_OP_READ) {
        iov_memset(s->iov, s->iovcnt, 0, 0, s->bytes);
    }
}

/* After the latency, from the context's timer: already "later". */
static void null_complete(BlockRequest *req)
{
    null_fill(req);
    blk_io_done(req, 0);
}

static void null_submit(BlockRequest *req)
{
    BlockBackend *blk = req->state.blk;

    if (blk->latency_ns) {
        blk_defer(req, (int64_t)blk->latency_ns, null_complete);
        return;
    }
    null_fill(req);
    blk_complete_later(req, 0); /* never inside blk_submit() */
}

const BlockDriver blk_null_driver = {
    .name = "null",
    .submit = null_submit,
};
