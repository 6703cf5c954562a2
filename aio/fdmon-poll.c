/*
 * fdmon-poll: the portable fd monitor, ppoll() over the handlers' fds.
 *
 * Used where io_uring cannot be set up (kernel.io_uring_disabled, a seccomp
 * filter, an old kernel) or when asked for. It has no aio_add_sqe(): the
 * block layer falls back to its thread-pool engine.
 *
 * The pollfd array belongs to the wait (AioWait), not to the context, and
 * readiness is matched back to handlers by fd under the lock: a handler
 * removed while the main loop sleeps is simply not found.
 */
#include <errno.h>
#include <stdlib.h>

#include "aio/aio-internal.h"
#include "util/clock.h"

static int fdmon_poll_init(AioContext *ctx, const AioContextOptions *opts)
{
    (void)ctx;
    (void)opts;
    return 0;
}

static void fdmon_poll_cleanup(AioContext *ctx)
{
    (void)ctx;
}

static void fdmon_poll_update(AioContext *ctx, AioHandler *old_node,
                              AioHandler *new_node)
{
    /* The array is rebuilt before each wait. */
    (void)ctx;
    (void)old_node;
    (void)new_node;
}

static bool fdmon_poll_prepare(AioContext *ctx, AioWait *w, AioReady *ready,
                               bool submit)
{
    unsigned n = 0, i = 0;
    AioHandler *node;

    (void)ready;
    (void)submit;
    LIST_FOREACH(node, &ctx->handlers, node)
    {
        n++;
    }
    w->pfds = w->inline_pfds;
    if (n > AIO_WAIT_INLINE_FDS) {
        w->pfds = calloc(n, sizeof(*w->pfds));
        if (!w->pfds) {
            abort();
        }
    }
    LIST_FOREACH(node, &ctx->handlers, node)
    {
        w->pfds[i].fd = node->fd;
        w->pfds[i].events =
            (node->io_read ? POLLIN : 0) | (node->io_write ? POLLOUT : 0);
        w->pfds[i].revents = 0;
        i++;
    }
    w->npfds = n;
    return false;
}

static int fdmon_poll_wait(AioContext *ctx, AioWait *w, int64_t timeout_ns,
                           bool may_submit)
{
    struct timespec ts, *tsp = NULL;
    int ret;

    (void)may_submit;
    if (timeout_ns >= 0) {
        ts.tv_sec = timeout_ns / NS_PER_S;
        ts.tv_nsec = timeout_ns % NS_PER_S;
        tsp = &ts;
    }
    stat_inc(&ctx->stats.ppolls);
    ret = ppoll(w->pfds, w->npfds, tsp, NULL);
    if (ret == 0) {
        return -ETIME;
    }
    return ret < 0 ? (errno == EINTR ? 0 : -errno) : ret;
}

static void fdmon_poll_collect(AioContext *ctx, AioWait *w, AioReady *ready)
{
    AioHandler *node;

    for (unsigned i = 0; i < w->npfds; i++) {
        if (!w->pfds[i].revents) {
            continue;
        }
        LIST_FOREACH(node, &ctx->handlers, node)
        {
            if (node->fd == w->pfds[i].fd) {
                aio_ready_add(ready, node, w->pfds[i].revents);
                break;
            }
        }
    }
    if (w->pfds != w->inline_pfds) {
        free(w->pfds);
    }
    w->pfds = NULL;
    w->npfds = 0;
}

static bool fdmon_poll_need_wait(AioContext *ctx)
{
    (void)ctx;
    return true; /* only ppoll() tells which fds are ready */
}

static bool fdmon_poll_can_free(AioHandler *node)
{
    (void)node;
    return true;
}

const FDMonOps fdmon_poll_ops = {
    .name = "poll",
    .init = fdmon_poll_init,
    .cleanup = fdmon_poll_cleanup,
    .update = fdmon_poll_update,
    .prepare = fdmon_poll_prepare,
    .wait = fdmon_poll_wait,
    .collect = fdmon_poll_collect,
    .need_wait = fdmon_poll_need_wait,
    .can_free = fdmon_poll_can_free,
};
