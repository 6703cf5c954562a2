/*
 * Accounting: per-op counts, bytes and a log2 latency histogram, updated by
 * whichever context completes a request, read by benchmarks and --stats.
 */
#include <inttypes.h>

#include "block/block-int.h"

static unsigned lat_bucket(uint64_t ns)
{
    unsigned b = ns ? 63 - (unsigned)__builtin_clzll(ns) : 0;

    return b < BLK_LAT_BUCKETS ? b : BLK_LAT_BUCKETS - 1;
}

void blk_account(BlockRequest *req, int ret, int64_t now_ns)
{
    BlockCounters *c = &req->state.blk->counters;
    BlockOpCounters *op;
    int64_t lat = now_ns - req->state.start_ns;

    if ((unsigned)req->op >= BLOCK_OP__MAX) {
        return; /* rejected as malformed: nothing to file it under */
    }
    op = &c->op[req->op];
    if (lat < 0) {
        lat = 0;
    }
    counter_add(&op->ops, 1);
    if (ret < 0) {
        counter_add(&op->errors, 1);
    } else {
        counter_add(&op->bytes, req->state.len);
    }
    counter_add(&op->lat_total_ns, (uint64_t)lat);
    counter_add(&op->lat_hist[lat_bucket((uint64_t)lat)], 1);
}

static uint64_t load(atomic_ullong *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

void blk_get_stats(BlockBackend *blk, BlockStats *st)
{
    BlockCounters *c = &blk->counters;

    for (int i = 0; i < BLOCK_OP__MAX; i++) {
        st->op[i].ops = load(&c->op[i].ops);
        st->op[i].errors = load(&c->op[i].errors);
        st->op[i].bytes = load(&c->op[i].bytes);
        st->op[i].lat_total_ns = load(&c->op[i].lat_total_ns);
        for (int b = 0; b < BLK_LAT_BUCKETS; b++) {
            st->op[i].lat_hist[b] = load(&c->op[i].lat_hist[b]);
        }
    }
    st->syncs = load(&c->syncs);
    st->bounced = load(&c->bounced);
    st->rmw = load(&c->rmw);
    st->resubmits = load(&c->resubmits);
    st->queue_full = load(&c->queue_full);
    st->thread_reqs = load(&c->thread_reqs);
    st->fallbacks = load(&c->fallbacks);
    st->in_flight = atomic_load(&blk->in_flight);
}

uint64_t blk_stats_percentile_ns(const BlockOpStats *op, double pct)
{
    uint64_t total = 0, seen = 0;

    for (int b = 0; b < BLK_LAT_BUCKETS; b++) {
        total += op->lat_hist[b];
    }
    if (!total) {
        return 0;
    }
    for (int b = 0; b < BLK_LAT_BUCKETS; b++) {
        seen += op->lat_hist[b];
        if ((double)seen * 100.0 >= pct * (double)total) {
            return 2ull << b; /* the bucket's upper bound */
        }
    }
    return 2ull << (BLK_LAT_BUCKETS - 1);
}

void blk_stats_print(BlockBackend *blk, FILE *out)
{
    BlockStats st;

    blk_get_stats(blk, &st);
    fprintf(out, "block %s: engine %s%s%s, %u in flight\n", blk->path,
            blk->drv->name, blk->o_direct ? ", cache=none" : "",
            blk->readonly ? ", read-only" : "", st.in_flight);
    for (int i = 0; i < BLOCK_OP__MAX; i++) {
        const BlockOpStats *op = &st.op[i];

        if (!op->ops) {
            continue;
        }
        fprintf(out,
                "  %-12s ops=%" PRIu64 " errors=%" PRIu64 " bytes=%" PRIu64
                " avg=%.1fus p50<=%.1fus p99<=%.1fus\n",
                blk_op_name(i), op->ops, op->errors, op->bytes,
                op->lat_total_ns / 1e3 / op->ops,
                blk_stats_percentile_ns(op, 50) / 1e3,
                blk_stats_percentile_ns(op, 99) / 1e3);
    }
    fprintf(out,
            "  syncs=%" PRIu64 " bounced=%" PRIu64 " rmw=%" PRIu64
            " resubmits=%" PRIu64 " queue_full=%" PRIu64 " thread_reqs=%" PRIu64
            " fallbacks=%" PRIu64 "\n",
            st.syncs, st.bounced, st.rmw, st.resubmits, st.queue_full,
            st.thread_reqs, st.fallbacks);
}
