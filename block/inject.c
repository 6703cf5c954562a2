/*
 * Error injection for tests, in the spirit of QEMU's blkdebug: fail the Nth
 * request of an op, cut a transfer short, fill the SQ ring, delay requests.
 * Rules are countdowns, so requests from any context may consume them.
 */
#include "block/block-int.h"

/* Count down to zero; true for the call that takes it from 1 to 0. */
static bool countdown_hit(atomic_uint *counter)
{
    unsigned n = atomic_load_explicit(counter, memory_order_relaxed);

    while (n) {
        if (atomic_compare_exchange_weak(counter, &n, n - 1)) {
            return n == 1;
        }
    }
    return false;
}

void blk_inject_error(BlockBackend *blk, BlockOp op, unsigned nth, int errnum)
{
    if ((unsigned)op >= BLOCK_OP__MAX) {
        return;
    }
    blk->fail_errno[op] = errnum > 0 ? errnum : -errnum;
    atomic_store(&blk->fail_countdown[op], nth); /* publishes fail_errno */
}

int blk_injected_error(BlockBackend *blk, BlockOp op)
{
    if (countdown_hit(&blk->fail_countdown[op])) {
        return -blk->fail_errno[op];
    }
    return 0;
}

void blk_inject_short(BlockBackend *blk, BlockOp op, unsigned nth)
{
    if (op == BLOCK_OP_READ || op == BLOCK_OP_WRITE) {
        atomic_store(&blk->short_countdown[op], nth);
    }
}

bool blk_injected_short(BlockBackend *blk, BlockOp op)
{
    return countdown_hit(&blk->short_countdown[op]);
}

/*
 * What the engine believes was transferred: half, rounded down to the
 * alignment so that the rest can still be done with O_DIRECT; all of it if
 * half would be nothing (0 would mean end of file).
 */
uint64_t blk_cut_short(BlockBackend *blk, uint64_t transferred)
{
    uint64_t half = (transferred / 2) & ~(uint64_t)(blk->align - 1);

    return half ? half : transferred;
}

void blk_inject_queue_full(BlockBackend *blk, unsigned count)
{
    atomic_store(&blk->queue_full_count, count);
}

bool blk_injected_queue_full(BlockBackend *blk)
{
    unsigned n =
        atomic_load_explicit(&blk->queue_full_count, memory_order_relaxed);

    while (n) {
        if (atomic_compare_exchange_weak(&blk->queue_full_count, &n, n - 1)) {
            return true;
        }
    }
    return false;
}

void blk_inject_delay_us(BlockBackend *blk, uint64_t us)
{
    uint64_t ns = us < BLK_MAX_DELAY_NS / 1000 ? us * 1000 : BLK_MAX_DELAY_NS;

    atomic_store(&blk->delay_ns, (long long)ns);
}
