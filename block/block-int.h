/*
 * What the files of block/ share: the backend layout, the engine interface,
 * per-context state, and the steps a request goes through.
 *
 *   blk_submit()  check, account, maybe delay (block.c)
 *     -> blk_start_io()  wait for a read-modify-write in the way (bounce.c)
 *       -> blk_issue()  bounce if O_DIRECT needs it (bounce.c)
 *       -> drv->submit()  the engine does req->state's I/O (raw-*.c, null.c)
 *         -> blk_io_done()  on the submitting context's home thread
 *           -> bounce continuation, or blk_finish(): stats, cb, in-flight--
 */
#ifndef MINIVMM_BLOCK_BLOCK_INT_H
#define MINIVMM_BLOCK_BLOCK_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "block/block.h"
#include "block/logwrites.h"

/* An engine: performs the I/O described by req->state, then blk_io_done(). */
typedef struct BlockDriver {
    const char *name;
    void (*submit)(BlockRequest *req);
} BlockDriver;

extern const BlockDriver blk_uring_driver;
extern const BlockDriver blk_threads_driver;
extern const BlockDriver blk_null_driver;
extern const BlockDriver blk_logwrites_driver;

/*
 * A backend's state for one AioContext that submitted to it. Created on
 * first use and kept until blk_close(); it owns no aio object while idle (the
 * retry BH is one-shot, the timer exists only while something waits), so a
 * context may come and go between requests.
 */
struct BlockCtx {
    AioContext *ctx;
    BlockBackend *blk;
    BlockCtx *next; /* blk->ctxs; never changes once published */

    /* Completions from any thread, newest first (blk_complete_later()). */
    BlockRequest *_Atomic done;

    /* Home thread only. */
    STAILQ_HEAD(, BlockRequest) retry; /* io_uring: waiting for SQ space */
    bool retry_scheduled;
    TAILQ_HEAD(BlockDeferredList, BlockRequest) deferred; /* by resume_ns */
    AioTimer *timer;
};

typedef struct ThreadPool ThreadPool;

/* Counters behind BlockStats; relaxed atomics, any context updates them. */
typedef struct BlockOpCounters {
    atomic_ullong ops, errors, bytes, lat_total_ns;
    atomic_ullong lat_hist[BLK_LAT_BUCKETS];
} BlockOpCounters;

typedef struct BlockCounters {
    BlockOpCounters op[BLOCK_OP__MAX];
    atomic_ullong syncs, bounced, rmw, resubmits, queue_full, thread_reqs,
        fallbacks;
} BlockCounters;

struct BlockBackend {
    char *path;
    const BlockDriver *drv;
    int fd;
    uint64_t size;
    uint32_t align; /* O_DIRECT alignment of offsets, lengths, buffers */
    bool o_direct;
    bool readonly;
    uint64_t latency_ns; /* null driver */
    BlockLog *log;       /* "logwrites:": the record, and the real engine */

    /*
     * A completion decrements in_flight inside a 'completing' section, so
     * that blk_close() can wait for the last completer to let go of blk.
     */
    atomic_uint in_flight;
    atomic_uint completing;
    _Atomic(AioContext *) drain_ctx; /* woken when in_flight reaches 0 */

    pthread_mutex_t lock; /* ctxs insertion, pool start-up, serial lists */
    BlockCtx *_Atomic ctxs;
    ThreadPool *_Atomic pool;

    /*
     * O_DIRECT: requests that change data, from start to completion, and
     * those waiting for a read-modify-write cycle in their way (bounce.c).
     */
    LIST_HEAD(, BlockRequest) serial_active;
    STAILQ_HEAD(, BlockRequest) serial_waiting;
    unsigned rmw_tracked; /* cycles among them */

    /* Error injection; a countdown of 0 is off. */
    atomic_uint fail_countdown[BLOCK_OP__MAX];
    int fail_errno[BLOCK_OP__MAX];
    atomic_uint short_countdown[BLOCK_OP__MAX];
    atomic_uint queue_full_count;
    atomic_llong delay_ns;

    BlockCounters counters;
};

static inline void counter_add(atomic_ullong *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* block.c */
void blk_start_io(BlockRequest *req);
void blk_issue(BlockRequest *req);
void blk_io_done(BlockRequest *req, int ret);
void blk_complete_later(BlockRequest *req, int ret);
void blk_defer(BlockRequest *req, int64_t delay_ns,
               void (*resume)(BlockRequest *req));

/* open.c */
int blk_open_file(BlockBackend *blk, const char *path, const BlockOptions *o,
                  char *err, size_t errlen);
int blk_open_null(BlockBackend *blk, const char *spec, char *err,
                  size_t errlen);

/* logwrites.c: the record's hooks, called only when blk->log is set. */
int blk_open_logwrites(BlockBackend *blk, const char *path,
                       const BlockOptions *o, char *err, size_t errlen);
void blk_log_submit(BlockRequest *req, uint64_t bytes, int ret);
void blk_log_engine_done(BlockRequest *req, int ret);
void blk_log_finish(BlockRequest *req, int ret);

/* bounce.c */
bool blk_serialise_begin(BlockRequest *req);
void blk_serialise_end(BlockRequest *req);
bool blk_needs_bounce(BlockRequest *req);
void blk_bounce_start(BlockRequest *req);
bool blk_bounce_done(BlockRequest *req, int ret);

/* raw-threads.c */
void blk_pool_free(BlockBackend *blk);

/* stats.c */
void blk_account(BlockRequest *req, int ret, int64_t now_ns);

/* inject.c */
int blk_injected_error(BlockBackend *blk, BlockOp op);
bool blk_injected_short(BlockBackend *blk, BlockOp op);
bool blk_injected_queue_full(BlockBackend *blk);
uint64_t blk_cut_short(BlockBackend *blk, uint64_t transferred);

#endif
