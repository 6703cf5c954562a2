/*
 * A modern virtio-blk driver (virtio 1.x over PCI) for the bare-metal
 * tests: capabilities found in configuration space, their BARs' addresses
 * taken from the device tree, VERSION_1 (+ FLUSH) negotiated, one split
 * queue whose rings live inside the VirtioBlk (declare it static), and
 * optional MSI-X. Completion is by polling the used ring, which is plain
 * memory: no exits while waiting.
 */
#ifndef FWTEST_VIRTIO_BLK_H
#define FWTEST_VIRTIO_BLK_H

#include <stdbool.h>
#include <stdint.h>

#include <linux/virtio_blk.h>
#include <linux/virtio_ring.h>

#include "firmware/tests/lib/io.h"

#define VBLK_VENDOR    0x1af4
#define VBLK_DEVICE    0x1042 /* 0x1040 + VIRTIO_ID_BLOCK */
#define VBLK_QSIZE     128    /* our ring; the device may offer more */
#define VBLK_NO_VECTOR 0xffff

typedef struct VblkReq {
    uint32_t type; /* VIRTIO_BLK_T_IN, _OUT, _FLUSH, _GET_ID */
    uint64_t sector;
    void *data; /* NULL for FLUSH */
    uint32_t len;
    /* Filled in on completion: */
    bool done;
    uint8_t status;
    uint32_t used_len;
    uint16_t head;
} VblkReq;

typedef struct VblkOptions {
    bool msix;          /* enable MSI-X, one table entry per vector */
    uint8_t config_irq; /* CPU vector for config changes (entry 0) */
    uint8_t queue_irq;  /* CPU vector for queue 0 (entry 1) */
} VblkOptions;

typedef struct VblkSlot {
    struct virtio_blk_outhdr hdr;
    uint8_t status;
} ALIGNED(32) VblkSlot;

typedef struct VirtioBlk {
    /* The rings first: their alignment matters (desc 16, used 4). */
    struct vring_desc desc[VBLK_QSIZE] ALIGNED(4096);
    struct {
        uint16_t flags, idx, ring[VBLK_QSIZE], used_event;
    } avail ALIGNED(64);
    struct {
        uint16_t flags, idx;
        struct vring_used_elem ring[VBLK_QSIZE];
        uint16_t avail_event;
    } used ALIGNED(4096);
    VblkSlot slot[VBLK_QSIZE];
    VblkReq *req[VBLK_QSIZE]; /* by head */
    uint16_t next[VBLK_QSIZE];

    int node;
    unsigned devfn;
    uint64_t common, notify, isr, device;
    uint32_t notify_mult;
    uint64_t notify_addr;
    uint8_t msix_cap;
    uint16_t msix_entries;
    uint64_t msix_table, msix_pba;
    uint64_t device_features, features;
    uint64_t capacity; /* 512-byte sectors */
    uint32_t seg_max, size_max, blk_size;
    uint16_t qsize, max_qsize;
    uint16_t config_vector, queue_vector; /* MSI-X entries, as read back */
    uint16_t avail_idx, last_used, free_head, num_free;
} VirtioBlk;

/*
 * Find the @index-th virtio-blk function in the device tree and bring it
 * to DRIVER_OK. Returns 0 or -1 with an INFO line saying why not.
 */
int vblk_init(VirtioBlk *b, int index, const VblkOptions *o);

uint8_t vblk_status(VirtioBlk *b);
/* Add @r's descriptor chain and publish it; no notification yet. */
void vblk_submit(VirtioBlk *b, VblkReq *r);
/* Tell the device (one MMIO write, the ioeventfd). */
void vblk_kick(VirtioBlk *b);
/* Take what the used ring has; returns how many requests completed. */
unsigned vblk_reap(VirtioBlk *b);
/* Reap until @r is done. Returns 0, or -1 after @timeout_ms. */
int vblk_wait(VirtioBlk *b, VblkReq *r, unsigned timeout_ms);
/* One request, submitted, kicked and waited for: its status, or -1. */
int vblk_rw(VirtioBlk *b, uint32_t type, uint64_t sector, void *data,
            uint32_t len);

/* MSI-X table entry @entry: address/data, and its mask bit. */
void vblk_msix_set(VirtioBlk *b, uint16_t entry, uint32_t addr, uint32_t data);
void vblk_msix_mask(VirtioBlk *b, uint16_t entry, bool masked);
bool vblk_msix_pending(VirtioBlk *b, uint16_t entry);

#endif
