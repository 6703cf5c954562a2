/*
 * Split virtqueues (virtio 1.x, section 2.6), the device side.
 *
 * A VirtQueue is owned by one thread: the home thread of the AioContext its
 * notify eventfd is watched by. Everything here runs on that thread, except
 * setup and reset, which the transport does while the queue is quiesced.
 *
 * The rings live in guest RAM and the guest writes them concurrently from a
 * vCPU. Indices are read with acquire and published with release; the
 * descriptors and ring entries are copied once before being looked at, so a
 * guest changing them under our feet can confuse its own request but never
 * the device. Anything structurally wrong (a ring outside RAM, a chain that
 * loops or is too long, an index out of range, an indirect table inside an
 * indirect table) is a device error: the queue stops and the transport sets
 * DEVICE_NEEDS_RESET.
 */
#ifndef MINIVMM_DEVICES_VIRTQUEUE_H
#define MINIVMM_DEVICES_VIRTQUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "devices/memory.h"

/* Largest queue the spec allows for split rings is 32768; we stop at this. */
#define VIRTQ_MAX_SIZE 1024

/*
 * One popped request: the chain's buffers as host iovecs into guest RAM
 * (zero-copy), device-readable ones first. Devices embed it at offset 0 of
 * their own request structure (virtq_pop()'s @elem_size).
 */
typedef struct VirtqElement {
    uint16_t head;
    unsigned out_num; /* device-readable */
    unsigned in_num;  /* device-writable */
    struct iovec *out;
    struct iovec *in;
} VirtqElement;

typedef struct VirtQueue VirtQueue;
typedef void VirtqErrorFunc(void *opaque, VirtQueue *vq);

struct VirtQueue {
    /* Configuration: set by the transport before virtq_start(). */
    const GuestMemory *ram;
    const char *name; /* for logs */
    unsigned index;
    uint16_t num;
    uint64_t desc_gpa, avail_gpa, used_gpa;
    bool event_idx;
    bool indirect;
    VirtqErrorFunc *on_error; /* a device error happened (owner thread) */
    void *opaque;

    /* State: owner thread only while started. */
    bool started;
    bool broken;
    uint8_t *desc;  /* host view of the descriptor table */
    uint8_t *avail; /* ... of the driver area */
    uint8_t *used;  /* ... of the device area */
    uint16_t last_avail_idx;
    uint16_t used_idx;
    uint16_t signalled_used;
    bool signalled_used_valid;
    unsigned inuse; /* popped and not pushed yet */
    struct iovec *scratch;
};

/* Forget all state; the queue must not be started (or be quiesced). */
void virtq_reset(VirtQueue *vq);

/*
 * Map the rings the driver configured. A ring that is not in RAM or is
 * misaligned is a device error (returns -EFAULT, on_error() called).
 */
int virtq_start(VirtQueue *vq);
void virtq_stop(VirtQueue *vq);

/* True if the driver made buffers available that we have not popped. */
bool virtq_has_work(VirtQueue *vq);

/*
 * Take the next available chain. Returns 1 and *elem (malloc'ed, @elem_size
 * bytes followed by its iovecs; free() it after virtq_push()), 0 if the
 * ring is empty, or -EIO after a device error (the queue is broken).
 */
int virtq_pop(VirtQueue *vq, size_t elem_size, VirtqElement **elem);

/*
 * Return @elem to the driver with @len bytes written to its writable buffers.
 * Everything written to the buffers before this call is visible to the
 * driver once it sees the used index move.
 */
void virtq_push(VirtQueue *vq, const VirtqElement *elem, uint32_t len);

/* Should the driver be interrupted for what was pushed since last time? */
bool virtq_should_notify(VirtQueue *vq);

/*
 * Ask the driver not to kick while we are draining the ring anyway, and to
 * kick again afterwards. virtq_enable_notify() returns true if buffers
 * arrived in between (the caller must go round again).
 */
void virtq_disable_notify(VirtQueue *vq);
bool virtq_enable_notify(VirtQueue *vq);

/* Stop the queue and report: the guest broke the ring protocol. */
void virtq_error(VirtQueue *vq, const char *what, uint64_t detail);

#endif
