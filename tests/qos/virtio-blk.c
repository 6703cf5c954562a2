#include <stdio.h>
#include <string.h>

#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_ring.h>

#include "tests/qos/virtio-blk.h"

/*
 * Per head: the 16-byte header, the status byte, a discard/write-zeroes
 * segment, and room for a 3-entry indirect table.
 */
#define SLOT_SIZE     128
#define SLOT_HDR      0
#define SLOT_STATUS   16
#define SLOT_SEG      32
#define SLOT_INDIRECT 64

static uint64_t slot(QVirtioBlk *b, unsigned qi, uint16_t head)
{
    return b->slots[qi] + (uint64_t)head * SLOT_SIZE;
}

uint64_t qvirtio_blk_status_addr(QVirtioBlk *b, unsigned qi, uint16_t head)
{
    return slot(b, qi, head) + SLOT_STATUS;
}

bool qvirtio_blk_init(QVirtioBlk *b, Qos *q, int index,
                      const QVirtioBlkOptions *o)
{
    QVirtioBlkOptions none = {0};
    QVirtioDevice *d = &b->dev;

    if (!o) {
        o = &none;
    }
    memset(b, 0, sizeof(*b));
    b->num_queues = o->num_queues ? o->num_queues : 1;
    if (b->num_queues > QVIRTIO_BLK_MAX_QUEUES ||
        !qvirtio_pci_find(q, VIRTIO_ID_BLOCK, index, d)) {
        fprintf(stderr, "qvirtio-blk: device %d not found\n", index);
        return false;
    }
    if (!qvirtio_reset(d)) {
        fprintf(stderr, "qvirtio-blk: reset did not complete\n");
        return false;
    }
    if (!qvirtio_negotiate(d, o->features | 1ull << VIRTIO_F_VERSION_1)) {
        fprintf(stderr, "qvirtio-blk: FEATURES_OK refused\n");
        return false;
    }
    b->capacity =
        qvirtio_config_readq(d, offsetof(struct virtio_blk_config, capacity));
    b->blk_size =
        qvirtio_config_readl(d, offsetof(struct virtio_blk_config, blk_size));
    b->seg_max =
        qvirtio_config_readl(d, offsetof(struct virtio_blk_config, seg_max));
    b->max_queues = d->features & (1ull << VIRTIO_BLK_F_MQ)
                        ? qvirtio_config_readw(
                              d, offsetof(struct virtio_blk_config, num_queues))
                        : 1;
    if (b->num_queues > b->max_queues) {
        fprintf(stderr, "qvirtio-blk: %u queues wanted, %u offered\n",
                b->num_queues, b->max_queues);
        return false;
    }
    if (o->msix) {
        qvirtio_enable_msix(d);
        qvirtio_set_config_vector(d, 0);
    }
    for (unsigned i = 0; i < b->num_queues; i++) {
        if (!qvirtqueue_setup(d, &b->vq[i], i, o->queue_size, i + 1)) {
            fprintf(stderr, "qvirtio-blk: queue %u missing\n", i);
            return false;
        }
        b->slots[i] = qos_alloc(q, (uint64_t)b->vq[i].size * SLOT_SIZE, 64);
    }
    qvirtio_driver_ok(d);
    return true;
}

static bool data_is_written(uint32_t type)
{
    return type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID;
}

void qvirtio_blk_submit(QVirtioBlk *b, unsigned qi, QVirtioBlkReq *r)
{
    QVirtQueue *vq = &b->vq[qi];
    Qos *q = b->dev.pci.q;
    struct virtio_blk_outhdr hdr = {.type = r->type, .sector = r->sector};
    struct virtio_blk_discard_write_zeroes seg = {
        .sector = r->sector,
        .num_sectors = r->num_sectors,
        .flags = r->dwz_flags,
    };
    bool dwz =
        r->type == VIRTIO_BLK_T_DISCARD || r->type == VIRTIO_BLK_T_WRITE_ZEROES;
    uint64_t data = dwz ? 0 : r->data;
    uint32_t len = dwz ? sizeof(seg) : r->len;
    uint16_t wflag = data_is_written(r->type) ? VRING_DESC_F_WRITE : 0;
    uint8_t unset = 0xff;
    uint64_t s;

    /* The head is the next free descriptor: its slot is known up front. */
    r->head = vq->free_head;
    s = slot(b, qi, r->head);
    if (dwz) {
        data = s + SLOT_SEG;
        qos_memwrite(q, data, &seg, sizeof(seg));
    }
    qos_memwrite(q, s + SLOT_HDR, &hdr, sizeof(hdr));
    qos_memwrite(q, s + SLOT_STATUS, &unset, 1);

    if (r->indirect) {
        uint64_t t = s + SLOT_INDIRECT;
        uint16_t n = 0;

        qvirtqueue_write_desc(q, t, n, s + SLOT_HDR, sizeof(hdr),
                              VRING_DESC_F_NEXT, n + 1);
        n++;
        if (data) {
            qvirtqueue_write_desc(q, t, n, data, len, wflag | VRING_DESC_F_NEXT,
                                  n + 1);
            n++;
        }
        qvirtqueue_write_desc(q, t, n, s + SLOT_STATUS, 1, VRING_DESC_F_WRITE,
                              0);
        n++;
        qvirtqueue_add_indirect(vq, t, n);
    } else {
        qvirtqueue_add(vq, s + SLOT_HDR, sizeof(hdr), false, true);
        if (data) {
            qvirtqueue_add(vq, data, len, wflag != 0, true);
        }
        qvirtqueue_add(vq, s + SLOT_STATUS, 1, true, false);
    }
    qvirtqueue_publish(vq, r->head);
}

void qvirtio_blk_kick(QVirtioBlk *b, unsigned qi)
{
    qvirtqueue_kick(&b->vq[qi]);
}

bool qvirtio_blk_wait(QVirtioBlk *b, unsigned qi, QVirtioBlkReq *r,
                      int timeout_ms)
{
    if (!qvirtqueue_wait(&b->vq[qi], r->head, &r->used_len, timeout_ms)) {
        return false;
    }
    qos_memread(b->dev.pci.q, slot(b, qi, r->head) + SLOT_STATUS, &r->status,
                1);
    return true;
}

int qvirtio_blk_request(QVirtioBlk *b, unsigned qi, QVirtioBlkReq *r)
{
    qvirtio_blk_submit(b, qi, r);
    qvirtio_blk_kick(b, qi);
    if (!qvirtio_blk_wait(b, qi, r, QVIRTIO_BLK_TIMEOUT_MS)) {
        return -1;
    }
    return r->status;
}

int qvirtio_blk_rw(QVirtioBlk *b, unsigned qi, uint32_t type, uint64_t sector,
                   uint64_t data, uint32_t len)
{
    QVirtioBlkReq r = {
        .type = type, .sector = sector, .data = data, .len = len};

    return qvirtio_blk_request(b, qi, &r);
}

int qvirtio_blk_read_batch(QVirtioBlk *b, unsigned qi, uint64_t sector,
                           uint64_t data, unsigned count, uint32_t chunk)
{
    QVirtioBlkReq r[QVIRTQ_MAX_SIZE / 3];
    int failed = 0;

    if (count > QVIRTQ_MAX_SIZE / 3 || count * 3 > b->vq[qi].num_free) {
        return -1;
    }
    for (unsigned i = 0; i < count; i++) {
        r[i] = (QVirtioBlkReq){
            .type = VIRTIO_BLK_T_IN,
            .sector = sector + (uint64_t)i * (chunk / 512),
            .data = data + (uint64_t)i * chunk,
            .len = chunk,
        };
        qvirtio_blk_submit(b, qi, &r[i]);
    }
    qvirtio_blk_kick(b, qi);
    for (unsigned i = 0; i < count; i++) {
        if (!qvirtio_blk_wait(b, qi, &r[i], QVIRTIO_BLK_TIMEOUT_MS)) {
            return -1;
        }
        failed += r[i].status != VIRTIO_BLK_S_OK;
    }
    return failed;
}
