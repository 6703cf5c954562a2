#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "aio/iothread.h"
#include "util/clock.h"
#include "util/sandbox.h"
#include "util/trace.h"

struct IOThread {
    char name[32];
    pthread_t thread;
    AioContextOptions opts;
    AioContext *ctx;
    atomic_bool stopping;

    /* Start-up handshake: the creator waits until ctx exists. */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool started;
    int start_error;
};

static void *iothread_run(void *opaque)
{
    IOThread *iothread = opaque;
    AioContext *ctx;

    /* The trace names this thread's track after its context. */
    trace_set_thread_name(iothread->opts.name ? iothread->opts.name
                                              : "iothread");
    ctx = aio_context_new(&iothread->opts);

    pthread_mutex_lock(&iothread->lock);
    iothread->ctx = ctx;
    iothread->start_error = ctx ? 0 : errno;
    iothread->started = true;
    pthread_cond_signal(&iothread->cond);
    pthread_mutex_unlock(&iothread->lock);
    if (!ctx) {
        return NULL;
    }

    /* Its ring and eventfd exist: from here on, only its allowlist. */
    sandbox_enter(SANDBOX_IOTHREAD);
    aio_set_thread_context(ctx);
    while (!atomic_load(&iothread->stopping)) {
        aio_poll(ctx, true);
    }
    /* Run what was scheduled before the stop, then go. */
    while (aio_poll(ctx, false)) {
    }
    aio_set_thread_context(NULL);
    return NULL;
}

IOThread *iothread_new(const char *name, const AioContextOptions *opts)
{
    IOThread *iothread = calloc(1, sizeof(*iothread));
    int err;

    if (!iothread) {
        errno = ENOMEM;
        return NULL;
    }
    snprintf(iothread->name, sizeof(iothread->name), "%s",
             name ? name : "iothread");
    if (opts) {
        iothread->opts = *opts;
    } else {
        iothread->opts.poll.max_ns = AIO_POLL_MAX_NS_DEFAULT;
        iothread->opts.poll.weight = AIO_POLL_WEIGHT_DEFAULT;
        iothread->opts.uring_flags = AIO_IOTHREAD_URING_FLAGS_DEFAULT;
    }
    iothread->opts.name = iothread->name;
    pthread_mutex_init(&iothread->lock, NULL);
    pthread_cond_init(&iothread->cond, NULL);

    err = pthread_create(&iothread->thread, NULL, iothread_run, iothread);
    if (err) {
        goto fail;
    }
    pthread_mutex_lock(&iothread->lock);
    while (!iothread->started) {
        pthread_cond_wait(&iothread->cond, &iothread->lock);
    }
    pthread_mutex_unlock(&iothread->lock);
    if (!iothread->ctx) {
        err = iothread->start_error;
        pthread_join(iothread->thread, NULL);
        goto fail;
    }
    return iothread;

fail:
    pthread_mutex_destroy(&iothread->lock);
    pthread_cond_destroy(&iothread->cond);
    free(iothread);
    errno = err;
    return NULL;
}

int64_t iothread_cpu_ns(IOThread *iothread)
{
    struct timespec ts;
    clockid_t clock;

    if (pthread_getcpuclockid(iothread->thread, &clock) != 0 ||
        clock_gettime(clock, &ts) != 0) {
        return -1;
    }
    return ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

AioContext *iothread_get_context(IOThread *iothread)
{
    return iothread->ctx;
}

void iothread_free(IOThread *iothread)
{
    if (!iothread) {
        return;
    }
    atomic_store(&iothread->stopping, true);
    aio_notify(iothread->ctx);
    pthread_join(iothread->thread, NULL);
    /*
     * Freed here, after the join: the thread may see 'stopping' and leave
     * before aio_notify() above has returned.
     */
    aio_context_free(iothread->ctx);
    pthread_mutex_destroy(&iothread->lock);
    pthread_cond_destroy(&iothread->cond);
    free(iothread);
}
