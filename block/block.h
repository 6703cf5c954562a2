/*
 * The block layer: what devices call to read and write a disk image.
 *
 * A BlockBackend is an open image: a raw file or block device, or the null
 * driver ("null://SIZE") for benchmarks. Devices fill in a BlockRequest and
 * hand it to blk_submit(); the request completes by calling
 * cb(opaque, ret) with ret = 0 or -errno, always later (never inside
 * blk_submit()) and always on the home thread of the context that was
 * current when the request was submitted (aio_current_context()): the main
 * loop for a vCPU thread holding the big lock, the IOThread for its own
 * requests.
 *
 * Engines for raw images:
 *   io_uring  requests become SQEs in the submitting context's ring
 *             (aio_add_sqe()); a context without io_uring falls back to
 *             the thread pool, request by request.
 *   threads   a small worker pool doing preadv/pwritev/fdatasync/fallocate.
 *             The reference every engine must match.
 *
 * With cache=none (O_DIRECT) a request whose offset, length or buffers are
 * not aligned for direct I/O goes through an aligned bounce buffer
 * (read-modify-write for writes): the caller never sees EINVAL for that.
 */
#ifndef MINIVMM_BLOCK_BLOCK_H
#define MINIVMM_BLOCK_BLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/queue.h>
#include <sys/uio.h>

#include "aio/aio.h"

typedef struct BlockBackend BlockBackend;
typedef struct BlockRequest BlockRequest;
typedef struct BlockCtx BlockCtx;

typedef void BlockCompletionFunc(void *opaque, int ret);

/* ---- Opening ------------------------------------------------------------ */

typedef enum BlockAio {
    BLOCK_AIO_IO_URING, /* the default */
    BLOCK_AIO_THREADS,
} BlockAio;

typedef struct BlockOptions {
    BlockAio aio;
    bool cache_none; /* O_DIRECT; the default is cache=writeback */
    bool readonly;
    uint64_t latency_ns; /* null driver only: fixed completion latency */
} BlockOptions;

/*
 * Parse "aio=threads,cache=none,readonly=on,latency_ns=N" into @opts, which
 * the caller initialises (zero = defaults). Returns 0 or -EINVAL with a
 * message in @err.
 */
int blk_parse_options(const char *optstring, BlockOptions *opts, char *err,
                      size_t errlen);

/*
 * Open @path ("null://SIZE" with an optional K, M or G suffix for the null
 * driver). A missing or unopenable file, an empty image or a size that is
 * not a multiple of 512 fails: returns -errno and a message naming @path in
 * @err. Any thread; no context needed.
 */
int blk_open(const char *path, const BlockOptions *opts, BlockBackend **pblk,
             char *err, size_t errlen);

/* blk_parse_options() + blk_open(); @optstring may be NULL. */
int blk_open_string(const char *path, const char *optstring,
                    BlockBackend **pblk, char *err, size_t errlen);

/*
 * Drain (see blk_drain()), then close. Requests from other contexts must
 * have been submitted already; none may be submitted after this starts. Not
 * from a completion callback.
 */
void blk_close(BlockBackend *blk);

uint64_t blk_size(BlockBackend *blk);
bool blk_is_readonly(BlockBackend *blk);
const char *blk_path(BlockBackend *blk);
/* "io_uring", "threads" or "null": the engine chosen at open. */
const char *blk_engine_name(BlockBackend *blk);
/* Offset/length/buffer alignment that avoids bouncing; 1 without O_DIRECT. */
uint32_t blk_alignment(BlockBackend *blk);

/* ---- Requests ----------------------------------------------------------- */

typedef enum BlockOp {
    BLOCK_OP_READ,
    BLOCK_OP_WRITE,
    BLOCK_OP_FLUSH,
    BLOCK_OP_DISCARD,      /* punch a hole: reads back as zeros */
    BLOCK_OP_WRITE_ZEROES, /* zero a range, keeping it allocated if we can */
    BLOCK_OP__MAX,
} BlockOp;

/* Write through to stable storage before completing (RWF_DSYNC). */
#define BLK_REQ_FUA (1u << 0)

/* Limits blk_submit() enforces (-EINVAL otherwise). */
#define BLK_MAX_IOV           1024
#define BLK_MAX_REQUEST_BYTES (64u << 20)
/* Longest latency_ns or injected delay: a minute. */
#define BLK_MAX_DELAY_NS (60ull * 1000000000ull)

/* Where a request stands; private to block/. */
typedef struct BlockRequestState {
    BlockBackend *blk;
    BlockCtx *bctx; /* per-context state of the submitting context */
    int64_t start_ns;
    uint64_t len; /* the request's byte count */
    int ret;      /* result carried to the completion */

    /* The I/O the engine performs: the caller's, or a bounce buffer's. */
    BlockOp op;
    uint64_t offset;
    uint64_t bytes;
    const struct iovec *iov;
    int iovcnt;
    uint64_t done;          /* bytes transferred so far (short results) */
    struct iovec *iov_rest; /* what is left after a short result */
    int iovcnt_rest;
    bool cut_short; /* error injection: report the first result halved */

    /* O_DIRECT alignment (block/bounce.c). */
    int bounce_phase;
    void *bounce;
    struct iovec bounce_iov;
    /* Taking turns with read-modify-write cycles (blk_serialise_begin()). */
    bool serial; /* tracked: in blk->serial_active or _waiting */
    bool rmw;    /* a read-modify-write cycle */
    uint64_t serial_start, serial_end; /* the whole blocks it touches */
    LIST_ENTRY(BlockRequest) serial_link;

    CqeHandler cqe;                  /* io_uring engine */
    STAILQ_ENTRY(BlockRequest) link; /* one queue at a time */
    BlockRequest *done_next;         /* per-context completion list */
    int64_t resume_ns;               /* deferred (latency, delay) */
    void (*resume)(BlockRequest *req);
    TAILQ_ENTRY(BlockRequest) timer_link;

    /* The write log (block/logwrites.c), when the backend keeps one. */
    uint64_t log_req;
    bool log_engine; /* an engine operation is running */
} BlockRequestState;

/*
 * One request. The caller owns the memory: it, the iovec array and the
 * buffers must stay valid until cb runs, and it must not be submitted again
 * before then; after cb block/ never touches them again, so cb may free or
 * reuse the request.
 */
struct BlockRequest {
    BlockOp op;
    uint64_t offset;         /* bytes; ignored by flush */
    const struct iovec *iov; /* read, write */
    int iovcnt;              /* 1..BLK_MAX_IOV */
    uint64_t len;            /* discard, write-zeroes */
    unsigned flags;          /* BLK_REQ_FUA (writes only) */
    BlockCompletionFunc *cb;
    void *opaque;
    uint64_t trace_id; /* the request id in a trace (util/trace.h), or 0 */

    BlockRequestState state; /* private to block/ */
};

/*
 * Submit @req from the calling thread's current context. Returns 0, and cb will
 * run exactly once. A bad request (beyond the end, too long, bad flags, a write
 * to a read-only image: -EROFS) still returns 0 and completes with the error,
 * before any I/O. Returns -EINVAL (no cb) or -EPERM (the thread has no current
 * context) only for misuse that leaves nobody to call back.
 */
int blk_submit(BlockBackend *blk, BlockRequest *req);

/* Requests submitted and not completed yet, over all contexts. */
unsigned blk_in_flight(BlockBackend *blk);

/*
 * Run aio_poll() on the current context until no request is in flight. It
 * sleeps until our own completions arrive or, for requests of other
 * contexts (they complete on their own threads), until the last one
 * notifies us. A big-lock holder (a vCPU thread resetting an AHCI port)
 * thus waits on I/O with the lock held, as QEMU's bdrv_drain() does. It
 * never sleeps for a set time to look again.
 */
void blk_drain(BlockBackend *blk);

/* ---- Statistics ---------------------------------------------------------- */

/* Bucket i counts latencies in [2^i, 2^(i+1)) ns; bucket 0 also holds 0. */
#define BLK_LAT_BUCKETS 40

typedef struct BlockOpStats {
    uint64_t ops;    /* completed, including failures */
    uint64_t errors; /* completed with ret < 0 */
    uint64_t bytes;  /* of successful requests */
    uint64_t lat_total_ns;
    uint64_t lat_hist[BLK_LAT_BUCKETS];
} BlockOpStats;

typedef struct BlockStats {
    BlockOpStats op[BLOCK_OP__MAX];
    uint64_t syncs;       /* fdatasync()s and IORING_OP_FSYNCs issued */
    uint64_t bounced;     /* requests through a bounce buffer */
    uint64_t rmw;         /* of those, writes needing read-modify-write */
    uint64_t resubmits;   /* short or interrupted transfers continued */
    uint64_t queue_full;  /* submissions retried because the SQ was full */
    uint64_t thread_reqs; /* requests served by the thread pool */
    uint64_t fallbacks;   /* of those, io_uring ones on a context without */
    unsigned in_flight;
} BlockStats;

/* A consistent-enough snapshot (each counter is read atomically). */
void blk_get_stats(BlockBackend *blk, BlockStats *stats);

/* Latency below which @pct percent of @op's requests completed (bucket top). */
uint64_t blk_stats_percentile_ns(const BlockOpStats *op, double pct);

const char *blk_op_name(BlockOp op);

/* A few human-readable lines: per-op counts, bytes, latency percentiles. */
void blk_stats_print(BlockBackend *blk, FILE *out);

/* ---- Error injection (tests) --------------------------------------------- */

/*
 * Fail the @nth (1 = next) request of @op submitted from now on with
 * -@errnum, without doing its I/O. @nth = 0 cancels. One rule per op.
 */
void blk_inject_error(BlockBackend *blk, BlockOp op, unsigned nth, int errnum);

/*
 * Make the first transfer of the @nth next read or write come back short (the
 * engine sees half of what the kernel did), so that the engine continues it.
 */
void blk_inject_short(BlockBackend *blk, BlockOp op, unsigned nth);

/* The next @count io_uring submissions find the SQ ring full. */
void blk_inject_queue_full(BlockBackend *blk, unsigned count);

/* Hold every request for @us microseconds before its I/O starts (0: off). */
void blk_inject_delay_us(BlockBackend *blk, uint64_t us);

#endif
