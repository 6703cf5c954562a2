/*
 * virtio-blk requests: parse the chain a queue popped, check it, hand it to
 * the block layer, and complete it on the same thread.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/virtio_blk.h>
#include <linux/virtio_ids.h>

#include "block/iov.h"
#include "devices/virtio-blk.h"
#include "util/compiler.h"
#include "util/log.h"
#include "util/trace.h"

#define SECTOR_SIZE 512

struct VirtioBlk {
    VirtioPciDevice vpci;
    BlockBackend *blk;
    uint64_t sectors;
    bool readonly;
    char serial[VIRTIO_BLK_SERIAL_BYTES]; /* NUL-padded, not terminated */
};

typedef struct VirtioBlkReq {
    VirtqElement elem; /* first: virtq_pop() allocates the whole request */
    VirtioBlk *s;
    unsigned queue;
    uint8_t *status;
    uint32_t written; /* to the writable buffers, status byte excluded */
    BlockRequest breq;
} VirtioBlkReq;

/* ---- Completion ---------------------------------------------------------- */

/*
 * DATAPATH 6-7 (virtio half): on the thread that owns the queue, the status
 * byte goes in last, then the used ring entry is published and the driver
 * interrupted (MSI-X from this thread).
 */
static void req_complete(VirtioBlkReq *req, uint8_t status)
{
    VirtioBlk *s = req->s;
    unsigned queue = req->queue;
    uint64_t id = req->breq.trace_id;

    if (status != VIRTIO_BLK_S_OK) {
        req->written = 0;
    }
    *req->status = status;
    TRACE(VIRTIO_DONE, id,
          .a = {queue, req->elem.head, status, req->written + 1},
          .s = {s->vpci.trace_name});
    virtq_push(virtio_pci_vq(&s->vpci, queue), &req->elem, req->written + 1);
    free(req);
    trace_set_current_id(id); /* for the interrupt */
    virtio_pci_queue_interrupt(&s->vpci, queue);
    trace_set_current_id(0);
}

/* The one mapping from a block layer error to what the guest sees. */
static uint8_t status_from_errno(int ret)
{
    if (ret == 0) {
        return VIRTIO_BLK_S_OK;
    }
    return ret == -ENOTSUP || ret == -EOPNOTSUPP ? VIRTIO_BLK_S_UNSUPP
                                                 : VIRTIO_BLK_S_IOERR;
}

static void req_done(void *opaque, int ret)
{
    req_complete(opaque, status_from_errno(ret));
}

/* DATAPATH 4: into the block layer, from the queue's owning thread. */
static void req_submit(VirtioBlkReq *req)
{
    req->breq.cb = req_done;
    req->breq.opaque = req;
    if (blk_submit(req->s->blk, &req->breq) < 0) {
        req_complete(req, VIRTIO_BLK_S_IOERR);
    }
}

/* ---- Request types ------------------------------------------------------- */

static bool sectors_ok(VirtioBlk *s, uint64_t sector, uint64_t bytes)
{
    return bytes % SECTOR_SIZE == 0 && sector <= s->sectors &&
           bytes / SECTOR_SIZE <= s->sectors - sector;
}

static void req_rw(VirtioBlkReq *req, BlockOp op, uint64_t sector,
                   struct iovec *iov, unsigned cnt)
{
    VirtioBlk *s = req->s;
    int64_t bytes = iov_size_max(iov, cnt, BLK_MAX_REQUEST_BYTES);

    if (op == BLOCK_OP_WRITE && s->readonly) {
        req_complete(req, VIRTIO_BLK_S_IOERR);
        return;
    }
    if (bytes < 0 || cnt > BLK_MAX_IOV || !sectors_ok(s, sector, bytes)) {
        log_guest_error("%s: bad %s: sector %llu, %lld bytes in %u buffers",
                        s->vpci.name, blk_op_name(op),
                        (unsigned long long)sector, (long long)bytes, cnt);
        req_complete(req, VIRTIO_BLK_S_IOERR);
        return;
    }
    if (bytes == 0) {
        req_complete(req, VIRTIO_BLK_S_OK);
        return;
    }
    if (op == BLOCK_OP_READ) {
        req->written = bytes;
    }
    req->breq.op = op;
    req->breq.offset = sector * SECTOR_SIZE;
    req->breq.iov = iov;
    req->breq.iovcnt = cnt;
    req_submit(req);
}

static void req_get_id(VirtioBlkReq *req)
{
    VirtqElement *e = &req->elem;
    int64_t room = iov_size_max(e->in, e->in_num, VIRTIO_BLK_SERIAL_BYTES);
    size_t n = room < 0 ? VIRTIO_BLK_SERIAL_BYTES : (size_t)room;

    iov_from_buf(e->in, e->in_num, 0, req->s->serial, n);
    req->written = n;
    req_complete(req, VIRTIO_BLK_S_OK);
}

static void req_discard_write_zeroes(VirtioBlkReq *req, uint32_t type,
                                     struct iovec *iov, unsigned cnt)
{
    VirtioBlk *s = req->s;
    bool discard = type == VIRTIO_BLK_T_DISCARD;
    int64_t size = iov_size_max(iov, cnt, UINT32_MAX);
    struct virtio_blk_discard_write_zeroes seg;
    uint32_t flags;

    if (!virtio_pci_has_feature(&s->vpci, discard
                                              ? VIRTIO_BLK_F_DISCARD
                                              : VIRTIO_BLK_F_WRITE_ZEROES)) {
        req_complete(req, VIRTIO_BLK_S_UNSUPP);
        return;
    }
    if (s->readonly) {
        req_complete(req, VIRTIO_BLK_S_IOERR);
        return;
    }
    /* max_discard_seg and max_write_zeroes_seg are 1. */
    if (size < 0 || size > (int64_t)sizeof(seg)) {
        req_complete(req, VIRTIO_BLK_S_UNSUPP);
        return;
    }
    if (size < (int64_t)sizeof(seg)) {
        req_complete(req, VIRTIO_BLK_S_IOERR);
        return;
    }
    iov_to_buf(iov, cnt, 0, &seg, sizeof(seg));
    flags = seg.flags;
    if ((flags & ~VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP) ||
        (discard && (flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP))) {
        req_complete(req, VIRTIO_BLK_S_UNSUPP);
        return;
    }
    if (seg.num_sectors > VIRTIO_BLK_MAX_DWZ_SECTORS ||
        !sectors_ok(s, seg.sector, (uint64_t)seg.num_sectors * SECTOR_SIZE)) {
        log_guest_error("%s: bad %s: sector %llu, %u sectors", s->vpci.name,
                        discard ? "discard" : "write-zeroes",
                        (unsigned long long)seg.sector, seg.num_sectors);
        req_complete(req, VIRTIO_BLK_S_IOERR);
        return;
    }
    /* Unmapping is only a permission for write-zeroes: zeros it is. */
    req->breq.op = discard ? BLOCK_OP_DISCARD : BLOCK_OP_WRITE_ZEROES;
    req->breq.offset = seg.sector * SECTOR_SIZE;
    req->breq.len = (uint64_t)seg.num_sectors * SECTOR_SIZE;
    req_submit(req);
}

/*
 * DATAPATH 3 (virtio-blk): header, data buffers, status byte. Anything the
 * request itself gets wrong completes with a status; only a chain with no
 * writable byte at all cannot, and goes back unanswered (used length 0).
 */
static void req_start(VirtioBlk *s, unsigned queue, VirtioBlkReq *req)
{
    VirtqElement *e = &req->elem;
    struct virtio_blk_outhdr hdr;
    struct iovec *last;
    unsigned out_cnt;
    int64_t out_len;

    req->s = s;
    req->queue = queue;
    if (e->in_num == 0) {
        log_guest_error("%s: queue %u: request %u has no status byte",
                        s->vpci.name, queue, e->head);
        virtq_push(virtio_pci_vq(&s->vpci, queue), e, 0);
        free(req);
        virtio_pci_queue_interrupt(&s->vpci, queue);
        return;
    }
    last = &e->in[e->in_num - 1];
    req->status = (uint8_t *)last->iov_base + last->iov_len - 1;
    if (--last->iov_len == 0) {
        e->in_num--;
    }

    out_len = iov_size_max(e->out, e->out_num, UINT64_MAX);
    if (out_len < (int64_t)sizeof(hdr)) {
        log_guest_error("%s: queue %u: request %u header too short",
                        s->vpci.name, queue, e->head);
        req_complete(req, VIRTIO_BLK_S_IOERR);
        return;
    }
    iov_to_buf(e->out, e->out_num, 0, &hdr, sizeof(hdr));
    out_cnt = iov_tail(e->out, e->out, e->out_num, sizeof(hdr));

    switch (hdr.type) {
    case VIRTIO_BLK_T_IN:
        req_rw(req, BLOCK_OP_READ, hdr.sector, e->in, e->in_num);
        break;
    case VIRTIO_BLK_T_OUT:
        req_rw(req, BLOCK_OP_WRITE, hdr.sector, e->out, out_cnt);
        break;
    case VIRTIO_BLK_T_FLUSH:
        req->breq.op = BLOCK_OP_FLUSH;
        req_submit(req);
        break;
    case VIRTIO_BLK_T_GET_ID:
        req_get_id(req);
        break;
    case VIRTIO_BLK_T_DISCARD:
    case VIRTIO_BLK_T_WRITE_ZEROES:
        req_discard_write_zeroes(req, hdr.type, e->out, out_cnt);
        break;
    default:
        req_complete(req, VIRTIO_BLK_S_UNSUPP);
        break;
    }
}

/* On the queue's owning thread, with the driver's kicks suppressed. */
static void virtio_blk_handle_queue(VirtioPciDevice *d, unsigned queue)
{
    VirtioBlk *s = container_of(d, VirtioBlk, vpci);
    VirtQueue *vq = virtio_pci_vq(d, queue);
    VirtqElement *e;

    while (virtq_pop(vq, sizeof(VirtioBlkReq), &e) > 0) {
        VirtioBlkReq *req = container_of(e, VirtioBlkReq, elem);

        /* A request is born: the id its trace events share. */
        req->breq.trace_id = TRACE_ANY() ? trace_new_id() : 0;
        TRACE(VIRTQ_POP, req->breq.trace_id, .a = {queue, e->head},
              .s = {d->trace_name});
        req_start(s, queue, req);
    }
}

/* ---- Set-up -------------------------------------------------------------- */

static const VirtioDeviceInfo virtio_blk_info = {
    .name = "virtio-blk",
    .device_id = VIRTIO_ID_BLOCK,
    .class_code = 0x018000, /* mass storage, other */
    .handle_queue = virtio_blk_handle_queue,
};

static void fill_config(VirtioBlk *s, uint16_t num_queues, uint16_t qsize)
{
    struct virtio_blk_config cfg;

    memset(&cfg, 0, sizeof(cfg));
    cfg.capacity = s->sectors;
    cfg.size_max = BLK_MAX_REQUEST_BYTES;
    cfg.seg_max = qsize - 2; /* room for the header and the status */
    cfg.blk_size = SECTOR_SIZE;
    cfg.num_queues = num_queues;
    cfg.max_discard_sectors = VIRTIO_BLK_MAX_DWZ_SECTORS;
    cfg.max_discard_seg = 1;
    cfg.discard_sector_alignment = 1;
    cfg.max_write_zeroes_sectors = VIRTIO_BLK_MAX_DWZ_SECTORS;
    cfg.max_write_zeroes_seg = 1;
    cfg.write_zeroes_may_unmap = 1;
    s->vpci.config_size =
        offsetof(struct virtio_blk_config, max_secure_erase_sectors);
    memcpy(s->vpci.config, &cfg, s->vpci.config_size);
}

int virtio_blk_create(VirtioBlk **out, PciHost *host, uint8_t devfn,
                      GuestMemory *ram, const MsiSink *msi, IrqLine intx,
                      BlockBackend *blk, const VirtioBlkOptions *opts)
{
    unsigned nq = opts && opts->num_queues ? opts->num_queues : 1;
    uint16_t qsize =
        opts && opts->queue_size ? opts->queue_size : VIRTIO_BLK_QUEUE_SIZE;
    const char *serial = opts && opts->serial ? opts->serial : "";
    char name[32];
    VirtioBlk *s;
    int ret;

    *out = NULL;
    if (!blk || nq > VIRTIO_BLK_MAX_QUEUES || qsize < 4 ||
        strlen(serial) > VIRTIO_BLK_SERIAL_BYTES) {
        return -EINVAL;
    }
    s = calloc(1, sizeof(*s));
    if (!s) {
        return -ENOMEM;
    }
    s->blk = blk;
    s->sectors = blk_size(blk) / SECTOR_SIZE;
    s->readonly = blk_is_readonly(blk);
    memcpy(s->serial, serial, strlen(serial)); /* the rest stays NUL */
    snprintf(name, sizeof(name), "virtio-blk@%02x.%x", devfn >> 3, devfn & 7);

    VirtioPciParams p = {
        .host = host,
        .devfn = devfn,
        .ram = ram,
        .msi = msi,
        .intx = intx,
        .features = 1ull << VIRTIO_BLK_F_SIZE_MAX |
                    1ull << VIRTIO_BLK_F_SEG_MAX |
                    1ull << VIRTIO_BLK_F_BLK_SIZE | 1ull << VIRTIO_BLK_F_FLUSH |
                    1ull << VIRTIO_BLK_F_MQ | 1ull << VIRTIO_BLK_F_DISCARD |
                    1ull << VIRTIO_BLK_F_WRITE_ZEROES |
                    (s->readonly ? 1ull << VIRTIO_BLK_F_RO : 0),
        .num_queues = nq,
        .queue_size = qsize,
        .ctx = opts ? opts->ctx : NULL,
        .name = name,
    };
    ret = virtio_pci_init(&s->vpci, &virtio_blk_info, &p);
    if (ret < 0) {
        free(s);
        return ret;
    }
    fill_config(s, nq, qsize);
    *out = s;
    return 0;
}

void virtio_blk_quiesce(VirtioBlk *s)
{
    virtio_pci_quiesce(&s->vpci);
}

void virtio_blk_destroy(VirtioBlk *s)
{
    if (!s) {
        return;
    }
    virtio_pci_cleanup(&s->vpci);
    free(s);
}

VirtioPciDevice *virtio_blk_pci(VirtioBlk *s)
{
    return &s->vpci;
}
