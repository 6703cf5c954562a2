/*
 * virtio-blk (virtio 1.x section 5.2) on the modern virtio-pci transport.
 *
 * Requests IN, OUT, FLUSH, GET_ID, DISCARD and WRITE_ZEROES go to the block
 * layer from the thread that owns the queue they came on, so they complete
 * there too: an IOThread's queues never touch the big lock or the main loop.
 */
#ifndef MINIVMM_DEVICES_VIRTIO_BLK_H
#define MINIVMM_DEVICES_VIRTIO_BLK_H

#include <stdint.h>

#include "aio/aio.h"
#include "block/block.h"
#include "devices/pci.h"
#include "devices/virtio-pci.h"

#define VIRTIO_BLK_MAX_QUEUES      16
#define VIRTIO_BLK_QUEUE_SIZE      256
#define VIRTIO_BLK_SERIAL_BYTES    20
#define VIRTIO_BLK_MAX_DWZ_SECTORS 0x3fffff /* per discard/write-zeroes */

typedef struct VirtioBlk VirtioBlk;

typedef struct VirtioBlkOptions {
    unsigned num_queues; /* 0: one */
    /* The context that serves each queue: an IOThread's, or NULL: main. */
    AioContext *ctx[VIRTIO_BLK_MAX_QUEUES];
    const char *serial;  /* GET_ID answer, up to 20 bytes; NULL: empty */
    uint16_t queue_size; /* 0: VIRTIO_BLK_QUEUE_SIZE; a power of two */
} VirtioBlkOptions;

/*
 * Create a virtio-blk function at @devfn of @host serving @blk (which must
 * outlive the device). Call with the big lock held, after main_loop_init().
 * Returns 0, -EINVAL (bad options), -EBUSY (devfn taken) or -errno.
 */
int virtio_blk_create(VirtioBlk **out, PciHost *host, uint8_t devfn,
                      GuestMemory *ram, const MsiSink *msi, IrqLine intx,
                      BlockBackend *blk, const VirtioBlkOptions *opts);

/*
 * Stop every queue taking requests, on its own thread, and wait for the
 * requests in flight (virtio_pci_quiesce()). Call with the big lock held.
 */
void virtio_blk_quiesce(VirtioBlk *vblk);

/*
 * Quiesce every queue on its own thread (in-flight requests complete first),
 * unplug and free. Call with the big lock held.
 */
void virtio_blk_destroy(VirtioBlk *vblk);

/* The transport, for the board's ioeventfd wiring and for tests. */
VirtioPciDevice *virtio_blk_pci(VirtioBlk *vblk);

#endif
