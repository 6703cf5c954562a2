/*
 * IOThread: a thread that does nothing but run aio_poll() on its own
 * AioContext. virtio-blk queues mapped to it do all their I/O there, without
 * the big lock.
 */
#ifndef MINIVMM_AIO_IOTHREAD_H
#define MINIVMM_AIO_IOTHREAD_H

#include "aio/aio.h"

typedef struct IOThread IOThread;

/*
 * Start an IOThread. Its context is created on the new thread (so that it
 * is the context's home, which io_uring's SINGLE_ISSUER needs). @opts may be
 * NULL for the defaults (io_uring with fallback, polling up to 32 us,
 * AIO_IOTHREAD_URING_FLAGS_DEFAULT and AIO_POLL_WEIGHT_DEFAULT).
 * Returns NULL and sets errno on failure.
 */
IOThread *iothread_new(const char *name, const AioContextOptions *opts);

AioContext *iothread_get_context(IOThread *iothread);

/* The CPU time the thread has used so far (CLOCK_THREAD_CPUTIME_ID's). */
int64_t iothread_cpu_ns(IOThread *iothread);

/* Stop the thread (it runs what was already scheduled), join it, free. */
void iothread_free(IOThread *iothread);

#endif
