/*
 * qos virtio-blk: the guest side of a virtio-blk disk (modern virtio-pci),
 * on top of qos virtio. Requests are header + data + status descriptors
 * (or one indirect descriptor for all three); header and status live in a
 * per-queue area indexed by the chain's head, data wherever the caller says.
 */
#ifndef MINIVMM_TESTS_QOS_VIRTIO_BLK_H
#define MINIVMM_TESTS_QOS_VIRTIO_BLK_H

#include <stdbool.h>
#include <stdint.h>

#include "tests/qos/virtio.h"

#define QVIRTIO_BLK_MAX_QUEUES 8
#define QVIRTIO_BLK_TIMEOUT_MS 10000

typedef struct QVirtioBlkOptions {
    uint64_t features;   /* wanted besides VERSION_1, if offered */
    unsigned num_queues; /* 0: one */
    uint16_t queue_size; /* 0: the device's maximum (capped) */
    bool msix;           /* MSI-X into guest RAM; otherwise INTx and ISR */
} QVirtioBlkOptions;

typedef struct QVirtioBlk {
    QVirtioDevice dev;
    QVirtQueue vq[QVIRTIO_BLK_MAX_QUEUES];
    unsigned num_queues;
    uint64_t capacity; /* sectors */
    uint32_t blk_size;
    uint32_t seg_max;
    uint16_t max_queues; /* num_queues in the config */
    uint64_t slots[QVIRTIO_BLK_MAX_QUEUES];
} QVirtioBlk;

typedef struct QVirtioBlkReq {
    uint32_t type; /* VIRTIO_BLK_T_* */
    uint64_t sector;
    uint64_t data; /* guest address of the data buffer; 0: none */
    uint32_t len;
    /* DISCARD / WRITE_ZEROES: one segment. */
    uint32_t num_sectors;
    uint32_t dwz_flags;
    bool indirect; /* all descriptors in one indirect table */

    /* Filled in. */
    uint16_t head;
    uint8_t status;
    uint32_t used_len;
} QVirtioBlkReq;

/*
 * Find the @index-th virtio-blk device, reset it, negotiate VERSION_1 plus
 * @o->features, set up @o->num_queues queues (vector i + 1 for queue i with
 * MSI-X, the config vector 0) and set DRIVER_OK. False (and a message) on
 * any failure, FEATURES_OK refused included.
 */
bool qvirtio_blk_init(QVirtioBlk *b, Qos *q, int index,
                      const QVirtioBlkOptions *o);

/* Guest address of the status byte of the request whose chain is @head. */
uint64_t qvirtio_blk_status_addr(QVirtioBlk *b, unsigned qi, uint16_t head);

/* Make @r available on queue @qi (no kick). */
void qvirtio_blk_submit(QVirtioBlk *b, unsigned qi, QVirtioBlkReq *r);
void qvirtio_blk_kick(QVirtioBlk *b, unsigned qi);
/* Wait for @r to come back; fills in status and used_len. */
bool qvirtio_blk_wait(QVirtioBlk *b, unsigned qi, QVirtioBlkReq *r,
                      int timeout_ms);
/* submit + kick + wait: the status byte, or -1 on timeout. */
int qvirtio_blk_request(QVirtioBlk *b, unsigned qi, QVirtioBlkReq *r);
/* A read or write of @len bytes at guest address @data. */
int qvirtio_blk_rw(QVirtioBlk *b, unsigned qi, uint32_t type, uint64_t sector,
                   uint64_t data, uint32_t len);

/*
 * The iotest step: @count reads of @chunk bytes each, sector-contiguous from
 * @sector, into @data + i * @chunk, made available together with one kick,
 * then waited for. Returns how many failed, or -1 on timeout.
 */
int qvirtio_blk_read_batch(QVirtioBlk *b, unsigned qi, uint64_t sector,
                           uint64_t data, unsigned count, uint32_t chunk);

#endif
