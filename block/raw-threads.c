/*
 * The thread-pool engine: a few workers doing plain preadv/pwritev/
 * fdatasync/fallocate, each request completing through a BH in the context
 * that submitted it. Simple enough to trust: the reference the io_uring
 * engine is tested against, and its fallback on contexts without io_uring.
 *
 * Workers start with the first request and stop at blk_close(), after the
 * drain: a flag and a broadcast, no cancellation.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "block/block-int.h"
#include "block/iov.h"
#include "util/sandbox.h"

#define POOL_WORKERS 4

struct ThreadPool {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    STAILQ_HEAD(, BlockRequest) queue;
    bool stopping;
    int nworkers;
    pthread_t workers[POOL_WORKERS];
};

/* ---- The system calls ---------------------------------------------------- */

/* Read or write all of req->state, continuing after short transfers. */
static int pool_rw(BlockRequest *req)
{
    BlockRequestState *s = &req->state;
    BlockBackend *blk = s->blk;
    int rwf = (req->flags & BLK_REQ_FUA) ? RWF_DSYNC : 0;

    while (s->done < s->bytes) {
        const struct iovec *iov = s->iov;
        int iovcnt = s->iovcnt;
        off_t offset = (off_t)(s->offset + s->done);
        ssize_t n;

        if (s->done) {
            if (!s->iov_rest) {
                s->iov_rest = malloc(sizeof(*s->iov_rest) * s->iovcnt);
                if (!s->iov_rest) {
                    return -ENOMEM;
                }
            }
            iovcnt = iov_tail(s->iov_rest, s->iov, s->iovcnt, s->done);
            iov = s->iov_rest;
        }
        if (s->op == BLOCK_OP_READ) {
            n = preadv(blk->fd, iov, iovcnt, offset);
        } else {
            n = pwritev2(blk->fd, iov, iovcnt, offset, rwf);
        }
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                counter_add(&blk->counters.resubmits, 1);
                continue;
            }
            return -errno;
        }
        if (s->cut_short) {
            s->cut_short = false;
            n = (ssize_t)blk_cut_short(blk, (uint64_t)n);
        }
        if (n == 0) {
            if (s->op == BLOCK_OP_WRITE) {
                return -ENOSPC;
            }
            /* End of file: the image shrank under us. Reads see zeros. */
            iov_memset(s->iov, s->iovcnt, s->done, 0, s->bytes - s->done);
            return 0;
        }
        s->done += (uint64_t)n;
        if (s->done < s->bytes) {
            counter_add(&blk->counters.resubmits, 1);
        }
    }
    return 0;
}

static int retry_eintr(int ret)
{
    return ret < 0 && errno == EINTR;
}

static int pool_fallocate(BlockBackend *blk, int mode, uint64_t offset,
                          uint64_t len)
{
    int ret;

    do {
        ret = fallocate(blk->fd, mode, (off_t)offset, (off_t)len);
    } while (retry_eintr(ret));
    return ret < 0 ? -errno : 0;
}

static int pool_do_io(BlockRequest *req)
{
    BlockRequestState *s = &req->state;
    BlockBackend *blk = s->blk;
    int ret;

    switch (s->op) {
    case BLOCK_OP_READ:
    case BLOCK_OP_WRITE:
        return pool_rw(req);
    case BLOCK_OP_FLUSH:
        counter_add(&blk->counters.syncs, 1);
        do {
            ret = fdatasync(blk->fd);
        } while (retry_eintr(ret));
        return ret < 0 ? -errno : 0;
    case BLOCK_OP_DISCARD:
        return pool_fallocate(blk, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                              s->offset, s->bytes);
    case BLOCK_OP_WRITE_ZEROES:
        ret = pool_fallocate(blk, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
                             s->offset, s->bytes);
        if (ret == -EOPNOTSUPP) {
            /* Deallocates too, but reads back as zeros all the same. */
            ret =
                pool_fallocate(blk, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                               s->offset, s->bytes);
        }
        return ret;
    default:
        return -EINVAL;
    }
}

/* ---- The pool ------------------------------------------------------------ */

static void *pool_worker(void *opaque)
{
    ThreadPool *pool = opaque;
    BlockRequest *req;
    int ret;

    /*
     * Named by itself (prctl), not by its creator, which would write
     * /proc/self/task/TID/comm: a sandboxed creator may not open files.
     */
    pthread_setname_np(pthread_self(), "blk-worker");
    sandbox_enter(SANDBOX_BLK_WORKER);
    pthread_mutex_lock(&pool->lock);
    for (;;) {
        while (STAILQ_EMPTY(&pool->queue) && !pool->stopping) {
            pthread_cond_wait(&pool->cond, &pool->lock);
        }
        req = STAILQ_FIRST(&pool->queue);
        if (!req) {
            break; /* stopping, and nothing left to do */
        }
        STAILQ_REMOVE_HEAD(&pool->queue, state.link);
        pthread_mutex_unlock(&pool->lock);

        ret = pool_do_io(req);
        free(req->state.iov_rest);
        req->state.iov_rest = NULL;
        blk_complete_later(req, ret); /* req is not ours after this */

        pthread_mutex_lock(&pool->lock);
    }
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

static void pool_stop(ThreadPool *pool)
{
    pthread_mutex_lock(&pool->lock);
    pool->stopping = true;
    pthread_cond_broadcast(&pool->cond);
    pthread_mutex_unlock(&pool->lock);
    for (int i = 0; i < pool->nworkers; i++) {
        pthread_join(pool->workers[i], NULL);
    }
    pthread_mutex_destroy(&pool->lock);
    pthread_cond_destroy(&pool->cond);
    free(pool);
}

static ThreadPool *pool_start(void)
{
    ThreadPool *pool = calloc(1, sizeof(*pool));
    sigset_t all, old;

    if (!pool) {
        return NULL;
    }
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->cond, NULL);
    STAILQ_INIT(&pool->queue);
    /* Signals are for the threads that expect them (vCPUs, main loop). */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (int i = 0; i < POOL_WORKERS; i++) {
        if (pthread_create(&pool->workers[i], NULL, pool_worker, pool)) {
            break;
        }
        pool->nworkers++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!pool->nworkers) {
        pool_stop(pool);
        return NULL;
    }
    return pool;
}

static ThreadPool *pool_get(BlockBackend *blk)
{
    ThreadPool *pool = atomic_load_explicit(&blk->pool, memory_order_acquire);

    if (pool) {
        return pool;
    }
    pthread_mutex_lock(&blk->lock);
    pool = atomic_load_explicit(&blk->pool, memory_order_relaxed);
    if (!pool) {
        pool = pool_start();
        atomic_store_explicit(&blk->pool, pool, memory_order_release);
    }
    pthread_mutex_unlock(&blk->lock);
    return pool;
}

static void threads_submit(BlockRequest *req)
{
    ThreadPool *pool = pool_get(req->state.blk);

    if (!pool) {
        blk_complete_later(req, -EAGAIN); /* could not start a thread */
        return;
    }
    counter_add(&req->state.blk->counters.thread_reqs, 1);
    pthread_mutex_lock(&pool->lock);
    STAILQ_INSERT_TAIL(&pool->queue, req, state.link);
    pthread_cond_signal(&pool->cond);
    pthread_mutex_unlock(&pool->lock);
}

void blk_pool_free(BlockBackend *blk)
{
    ThreadPool *pool = atomic_exchange(&blk->pool, NULL);

    if (pool) {
        pool_stop(pool); /* drained: the queue is empty */
    }
}

const BlockDriver blk_threads_driver = {
    .name = "threads",
    .submit = threads_submit,
};
