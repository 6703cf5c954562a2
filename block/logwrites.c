/*
 * The write log: a filter over a raw image's engine that records what the
 * host did, and a replay that cuts power anywhere in the record (see
 * logwrites.h for the interface, docs/datapath.md for the rules).
 *
 * Where each event is recorded matters, and every choice errs towards
 * claiming less durability than the kernel gives, never more:
 *
 *   REQ_SUBMIT     in blk_submit(), the block layer's own definition
 *   ENGINE_SUBMIT  before the engine is called: the kernel sees the I/O
 *                  later still (an SQE is queued, submitted by the loop)
 *   ENGINE_DONE    in blk_io_done() on the home thread: after the kernel's
 *                  completion (a CQE reaped, a worker's BH run)
 *   REQ_DONE       just before the device's callback, so before the device
 *                  can tell the guest
 *
 * A flush then covers fewer writes in the record than in the kernel, and
 * durability starts later: if the replay finds a promise broken, the host
 * really could have broken it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block/block-int.h"
#include "block/iov.h"
#include "block/logwrites.h"

/* What the replay needs of one engine operation, worked out once. */
typedef struct EngineOp {
    size_t submit; /* index of its ENGINE_SUBMIT */
    uint64_t done; /* tick of its ENGINE_DONE; UINT64_MAX while running */
    int ret;
} EngineOp;

struct BlockLog {
    atomic_int refs;
    pthread_mutex_t lock; /* the clock and the entries */
    uint64_t clock;
    uint64_t next_req;
    BlockLogEntry *entries;
    size_t count, cap;

    const BlockDriver *inner; /* the engine underneath */
    atomic_int bug;           /* BlockLogBug */

    /* The replay's index; rebuilt after the log grows. */
    EngineOp *ops;
    size_t nops, indexed;
};

/* ---- The record ---------------------------------------------------------- */

BlockLog *blk_log_new(void)
{
    BlockLog *log = calloc(1, sizeof(*log));

    if (!log) {
        return NULL;
    }
    atomic_init(&log->refs, 1);
    pthread_mutex_init(&log->lock, NULL);
    log->clock = 1; /* tick 0 is "before anything": a cut there keeps nothing */
    return log;
}

void blk_log_unref(BlockLog *log)
{
    if (!log || atomic_fetch_sub(&log->refs, 1) != 1) {
        return;
    }
    for (size_t i = 0; i < log->count; i++) {
        free(log->entries[i].data);
    }
    free(log->entries);
    free(log->ops);
    pthread_mutex_destroy(&log->lock);
    free(log);
}

BlockLog *blk_log_get(BlockBackend *blk)
{
    if (!blk->log) {
        return NULL;
    }
    atomic_fetch_add(&blk->log->refs, 1);
    return blk->log;
}

uint64_t blk_log_tick(BlockLog *log)
{
    uint64_t tick;

    pthread_mutex_lock(&log->lock);
    tick = log->clock++;
    pthread_mutex_unlock(&log->lock);
    return tick;
}

/*
 * Append @e, taking ownership of @data (NULL or e->bytes long). Running out
 * of memory aborts, as aio does: a log with holes would prove nothing.
 */
static uint64_t log_append(BlockLog *log, const BlockLogEntry *e, uint8_t *data)
{
    BlockLogEntry *slot;
    uint64_t tick;

    pthread_mutex_lock(&log->lock);
    if (log->count == log->cap) {
        size_t cap = log->cap ? 2 * log->cap : 256;
        BlockLogEntry *grown = realloc(log->entries, cap * sizeof(*grown));

        if (!grown) {
            abort();
        }
        log->entries = grown;
        log->cap = cap;
    }
    slot = &log->entries[log->count++];
    *slot = *e;
    slot->data = data;
    slot->tick = tick = log->clock++;
    pthread_mutex_unlock(&log->lock);
    return tick;
}

uint64_t blk_log_add(BlockLog *log, const BlockLogEntry *e)
{
    uint8_t *data = NULL;

    if (e->data) {
        data = malloc(e->bytes ? e->bytes : 1);
        if (!data) {
            abort();
        }
        memcpy(data, e->data, e->bytes);
    }
    return log_append(log, e, data);
}

size_t blk_log_count(BlockLog *log)
{
    return log->count;
}

const BlockLogEntry *blk_log_entry(BlockLog *log, size_t i)
{
    return i < log->count ? &log->entries[i] : NULL;
}

void blk_log_inject_bug(BlockLog *log, BlockLogBug bug)
{
    atomic_store(&log->bug, bug);
}

static uint8_t *copy_iov(const struct iovec *iov, int iovcnt, uint64_t bytes)
{
    uint8_t *data = malloc(bytes ? bytes : 1);

    if (!data) {
        abort();
    }
    iov_to_buf(iov, iovcnt, 0, data, bytes);
    return data;
}

/* ---- Hooks the block layer calls (block-int.h) --------------------------- */

void blk_log_submit(BlockRequest *req, uint64_t bytes, int ret)
{
    BlockLog *log = req->state.blk->log;
    BlockLogEntry e = {
        .event = BLOG_REQ_SUBMIT,
        .op = req->op,
        .fua = req->flags & BLK_REQ_FUA,
        .offset = req->op == BLOCK_OP_FLUSH ? 0 : req->offset,
        .bytes = bytes,
        .ret = ret,
    };
    uint8_t *data = NULL;

    if (ret == 0 && req->op == BLOCK_OP_WRITE) {
        data = copy_iov(req->iov, req->iovcnt, bytes);
    }
    pthread_mutex_lock(&log->lock);
    e.req = req->state.log_req = ++log->next_req;
    pthread_mutex_unlock(&log->lock);
    log_append(log, &e, data);
}

void blk_log_engine_done(BlockRequest *req, int ret)
{
    BlockRequestState *s = &req->state;

    s->log_engine = false;
    log_append(s->blk->log,
               &(BlockLogEntry){.event = BLOG_ENGINE_DONE,
                                .op = s->op,
                                .req = s->log_req,
                                .offset = s->offset,
                                .bytes = s->bytes,
                                .ret = ret},
               NULL);
}

void blk_log_finish(BlockRequest *req, int ret)
{
    log_append(req->state.blk->log,
               &(BlockLogEntry){.event = BLOG_REQ_DONE,
                                .op = req->op,
                                .req = req->state.log_req,
                                .ret = ret},
               NULL);
}

/* ---- The filter ---------------------------------------------------------- */

static void logwrites_submit(BlockRequest *req)
{
    BlockRequestState *s = &req->state;
    BlockLog *log = s->blk->log;
    BlockLogBug bug = atomic_load(&log->bug);
    uint8_t *data = NULL;

    if (bug == BLOG_BUG_FLUSH_NOOP && s->op == BLOCK_OP_FLUSH) {
        blk_complete_later(req, 0); /* the lie: nothing reached the disk */
        return;
    }
    if (bug == BLOG_BUG_FUA_IGNORED) {
        req->flags &= ~BLK_REQ_FUA; /* the engine reads the caller's flag */
    }
    if (s->op == BLOCK_OP_WRITE) {
        data = copy_iov(s->iov, s->iovcnt, s->bytes);
    }
    log_append(log,
               &(BlockLogEntry){
                   .event = BLOG_ENGINE_SUBMIT,
                   .op = s->op,
                   .fua = s->op == BLOCK_OP_WRITE && (req->flags & BLK_REQ_FUA),
                   .req = s->log_req,
                   .offset = s->op == BLOCK_OP_FLUSH ? 0 : s->offset,
                   .bytes = s->bytes},
               data);
    s->log_engine = true;
    log->inner->submit(req);
}

const BlockDriver blk_logwrites_driver = {
    .name = "logwrites",
    .submit = logwrites_submit,
};

int blk_open_logwrites(BlockBackend *blk, const char *path,
                       const BlockOptions *o, char *err, size_t errlen)
{
    int ret = blk_open_file(blk, path + strlen(BLK_LOG_PREFIX), o, err, errlen);

    if (ret < 0) {
        return ret;
    }
    blk->log = blk_log_new();
    if (!blk->log) {
        close(blk->fd);
        blk->fd = -1;
        if (err && errlen) {
            strncpy(err, "logwrites: out of memory", errlen - 1);
            err[errlen - 1] = '\0';
        }
        return -ENOMEM;
    }
    blk->log->inner = blk->drv;
    blk->drv = &blk_logwrites_driver;
    return 0;
}

/* ---- Replay -------------------------------------------------------------- */

/*
 * Pair each ENGINE_SUBMIT with its ENGINE_DONE. One request's engine
 * operations never overlap (a bounced write reads, then writes), so the
 * open operation of a request is the one its next ENGINE_DONE ends.
 */
static void log_index(BlockLog *log)
{
    size_t *open = NULL, nopen = 0;

    if (log->ops && log->indexed == log->count) {
        return;
    }
    free(log->ops);
    log->ops = calloc(log->count + 1, sizeof(*log->ops));
    open = calloc(log->count + 1, sizeof(*open));
    if (!log->ops || !open) {
        abort();
    }
    log->nops = 0;
    for (size_t i = 0; i < log->count; i++) {
        const BlockLogEntry *e = &log->entries[i];

        if (e->event == BLOG_ENGINE_SUBMIT) {
            log->ops[log->nops] =
                (EngineOp){.submit = i, .done = UINT64_MAX, .ret = 0};
            open[nopen++] = log->nops++;
        } else if (e->event == BLOG_ENGINE_DONE) {
            for (size_t j = 0; j < nopen; j++) {
                EngineOp *op = &log->ops[open[j]];

                if (log->entries[op->submit].req == e->req) {
                    op->done = e->tick;
                    op->ret = e->ret;
                    open[j] = open[--nopen];
                    break;
                }
            }
        }
    }
    free(open);
    log->indexed = log->count;
}

/* splitmix64: the replay's choices, reproducible from the seed. */
static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Copy @e's sectors inside the window; if @torn, each one by a coin toss. */
static void apply_write(const BlockLogEntry *e, uint8_t *image, uint64_t base,
                        uint64_t len, bool torn, uint64_t *rng)
{
    for (uint64_t at = 0; at < e->bytes; at += BLK_LOG_SECTOR) {
        uint64_t off = e->offset + at;
        uint64_t n =
            e->bytes - at < BLK_LOG_SECTOR ? e->bytes - at : BLK_LOG_SECTOR;

        if (torn && (next_random(rng) & 1)) {
            continue;
        }
        if (off >= base && off + n <= base + len) {
            memcpy(image + (off - base), e->data + at, n);
        }
    }
}

/* A write that lands in the replay, whole or torn. */
typedef struct Landing {
    const EngineOp *op;
    bool torn;
} Landing;

/*
 * Landings in the order the writes completed (those still running last, in
 * the order they were issued): of two writes to a sector, the one issued
 * after the other completed holds the newer data, and a disk that keeps both
 * keeps that one. Concurrent writes to one sector have no order to keep.
 */
static int by_completion(const void *a, const void *b)
{
    const EngineOp *x = ((const Landing *)a)->op;
    const EngineOp *y = ((const Landing *)b)->op;

    if (x->done != y->done) {
        return x->done < y->done ? -1 : 1;
    }
    return x->submit < y->submit ? -1 : x->submit > y->submit;
}

/* Flushed (completed before @covered, a flush's submission) or FUA. */
static bool is_durable(const EngineOp *op, const BlockLogEntry *e,
                       uint64_t covered, uint64_t cut)
{
    return e->op == BLOCK_OP_WRITE && op->ret == 0 &&
           (op->done < covered || (e->fua && op->done < cut));
}

void blk_log_replay(BlockLog *log, uint64_t cut, BlockLogKeep keep,
                    uint64_t seed, const uint8_t *initial, uint8_t *image,
                    uint64_t base, uint64_t len)
{
    uint64_t covered = 0, rng = seed ^ (cut * 0x2545f4914f6cdd1dULL);
    Landing *land;
    size_t nland = 0;

    log_index(log);
    memcpy(image, initial, len);

    /* The latest flush that completed before the cut covers the most. */
    for (size_t i = 0; i < log->nops; i++) {
        EngineOp *op = &log->ops[i];
        const BlockLogEntry *e = &log->entries[op->submit];

        if (e->op == BLOCK_OP_FLUSH && op->done < cut && op->ret == 0 &&
            e->tick > covered) {
            covered = e->tick;
        }
    }

    /* Every durable write lands whole; @keep chooses among the others. */
    land = calloc(log->nops + 1, sizeof(*land));
    if (!land) {
        abort();
    }
    for (size_t i = 0; i < log->nops; i++) {
        const EngineOp *op = &log->ops[i];
        const BlockLogEntry *e = &log->entries[op->submit];
        uint64_t choice = 0; /* 0: absent, 1: whole, 2: torn */

        if (e->op != BLOCK_OP_WRITE || e->tick >= cut) {
            continue;
        }
        if (is_durable(op, e, covered, cut)) {
            choice = 1;
        } else if (keep == BLOG_KEEP_ALL) {
            choice = 1;
        } else if (keep == BLOG_KEEP_TORN) {
            choice = 2;
        } else if (keep == BLOG_KEEP_RANDOM) {
            choice = next_random(&rng) % 3;
        }
        if (choice) {
            land[nland++] = (Landing){.op = op, .torn = choice == 2};
        }
    }
    qsort(land, nland, sizeof(*land), by_completion);
    for (size_t i = 0; i < nland; i++) {
        apply_write(&log->entries[land[i].op->submit], image, base, len,
                    land[i].torn, &rng);
    }
    free(land);
}
