/*
 * qos virtio: a guest-side driver for modern (virtio 1.x) virtio-pci
 * devices and their split virtqueues, written only against qos.h and pci.h
 * so that it drives minivmm's devices and QEMU's alike.
 *
 * Interrupts are observed the way a guest without an interrupt controller
 * would: MSI-X table entries point at words of guest RAM, so a vector shows
 * up as a memory write the driver polls (under qtest as on real hardware,
 * an MSI is a DMA write); without MSI-X the ISR register tells.
 */
#ifndef MINIVMM_TESTS_QOS_VIRTIO_H
#define MINIVMM_TESTS_QOS_VIRTIO_H

#include <stdbool.h>
#include <stdint.h>

#include "tests/qos/pci.h"

#define QVIRTIO_VENDOR_ID   0x1af4
#define QVIRTIO_DEVICE_BASE 0x1040 /* + virtio device type, modern only */
#define QVIRTQ_MAX_SIZE     256
#define QVIRTIO_NO_VECTOR   0xffff
#define QVIRTIO_MSI_DATA(v) (0x100u + (v)) /* never 0: 0 means "not yet" */

typedef struct QVirtioDevice {
    QPciDevice pci;
    uint64_t bar_addr[6];
    /* Guest-physical addresses of the four register regions. */
    uint64_t common, isr, device, notify;
    uint32_t notify_mult;
    uint8_t msix_cap;
    uint16_t msix_entries;
    uint64_t msix_table;
    bool msix;             /* MSI-X enabled by qvirtio_enable_msix() */
    uint64_t msix_landing; /* one 32-bit word of guest RAM per vector */
    uint64_t features;     /* what FEATURES_OK settled on */
} QVirtioDevice;

typedef struct QVirtQueue {
    QVirtioDevice *dev;
    uint16_t index, size;
    uint64_t desc, avail, used; /* guest-physical */
    uint64_t notify_addr;
    uint16_t vector;
    bool event_idx, indirect;
    bool hold_used_event; /* tests: leave used_event alone when polling */
    uint16_t avail_idx;   /* published so far */
    uint16_t kicked_idx;  /* avail_idx when we last decided about a kick */
    unsigned kicks;       /* notifies qvirtqueue_kick() found needed */
    uint16_t last_used;   /* consumed so far */
    uint16_t free_head, num_free;
    uint16_t chain_tail; /* of the chain being built, or size */
    uint16_t chain_head;
    uint16_t next[QVIRTQ_MAX_SIZE]; /* our copy of the links */
    uint16_t chain_len[QVIRTQ_MAX_SIZE];
    bool done[QVIRTQ_MAX_SIZE];
    uint32_t used_len[QVIRTQ_MAX_SIZE];
} QVirtQueue;

/* ---- Device ------------------------------------------------------------- */

/*
 * Find the @index-th modern device of virtio type @type (or, if there is
 * none, the @index-th transitional one, through its modern interface),
 * locate its common,
 * notify, ISR and device regions through the vendor capabilities, map the
 * BARs they (and MSI-X) use and enable the function.
 */
bool qvirtio_pci_find(Qos *q, uint16_t type, int index, QVirtioDevice *d);

uint8_t qvirtio_get_status(QVirtioDevice *d);
void qvirtio_set_status(QVirtioDevice *d, uint8_t status);
/* Write 0 and wait for the device to read back 0. */
bool qvirtio_reset(QVirtioDevice *d);

uint64_t qvirtio_device_features(QVirtioDevice *d);
/*
 * ACKNOWLEDGE, DRIVER, write exactly @features, FEATURES_OK, and read the
 * status back: true if the device kept FEATURES_OK.
 */
bool qvirtio_negotiate_raw(QVirtioDevice *d, uint64_t features);
/* The same with @wanted limited to what the device offers. */
bool qvirtio_negotiate(QVirtioDevice *d, uint64_t wanted);
void qvirtio_driver_ok(QVirtioDevice *d);

uint8_t qvirtio_config_readb(QVirtioDevice *d, uint32_t off);
uint16_t qvirtio_config_readw(QVirtioDevice *d, uint32_t off);
uint32_t qvirtio_config_readl(QVirtioDevice *d, uint32_t off);
uint64_t qvirtio_config_readq(QVirtioDevice *d, uint32_t off);

/* Common config registers by offset (linux/virtio_pci.h names them). */
uint32_t qvirtio_common_read(QVirtioDevice *d, uint32_t off, unsigned size);
void qvirtio_common_write(QVirtioDevice *d, uint32_t off, uint32_t v,
                          unsigned size);

/* ---- Interrupts -----------------------------------------------------------
 */

/* Point every MSI-X vector at its landing word, unmask, enable MSI-X. */
void qvirtio_enable_msix(QVirtioDevice *d);
void qvirtio_msix_mask(QVirtioDevice *d, uint16_t vector, bool masked);
/* Returns the config vector the device accepted (NO_VECTOR if refused). */
uint16_t qvirtio_set_config_vector(QVirtioDevice *d, uint16_t vector);
uint64_t qvirtio_msix_landing(QVirtioDevice *d, uint16_t vector);
/* True (and the word cleared) if @vector fired since the last call. */
bool qvirtio_msix_take(QVirtioDevice *d, uint16_t vector);
/* Read (and so acknowledge) the ISR. */
uint8_t qvirtio_isr(QVirtioDevice *d);

/* ---- Split virtqueues --------------------------------------------------- */

/*
 * Allocate rings of @size entries (0: the device's maximum, capped at
 * QVIRTQ_MAX_SIZE) in guest RAM, program queue @index with @vector and
 * enable it. False if the queue does not exist.
 */
bool qvirtqueue_setup(QVirtioDevice *d, QVirtQueue *vq, uint16_t index,
                      uint16_t size, uint16_t vector);

/*
 * Append a buffer to the chain being built (a new chain if none); @more
 * links it to the next qvirtqueue_add(). Returns the chain's head.
 */
uint16_t qvirtqueue_add(QVirtQueue *vq, uint64_t gpa, uint32_t len, bool write,
                        bool more);
/* One descriptor pointing at an indirect table of @n entries. */
uint16_t qvirtqueue_add_indirect(QVirtQueue *vq, uint64_t table, uint16_t n);
/* Write entry @i of a descriptor table at @table (indirect, or raw tests). */
void qvirtqueue_write_desc(Qos *q, uint64_t table, uint16_t i, uint64_t addr,
                           uint32_t len, uint16_t flags, uint16_t next);

/* Make @head available (no kick). */
void qvirtqueue_publish(QVirtQueue *vq, uint16_t head);
/* Notify the device, unless it said (EVENT_IDX / NO_NOTIFY) not to. */
void qvirtqueue_kick(QVirtQueue *vq);
/* Notify unconditionally. */
void qvirtqueue_notify(QVirtQueue *vq);

/* Collect used entries (frees their chains); true if any. */
bool qvirtqueue_poll_used(QVirtQueue *vq);
/* Wait until @head is used; its used length in *len. Clears its mark. */
bool qvirtqueue_wait(QVirtQueue *vq, uint16_t head, uint32_t *len,
                     int timeout_ms);

uint16_t qvirtqueue_used_idx(QVirtQueue *vq);
/* EVENT_IDX: the device's avail_event, and our used_event. */
uint16_t qvirtqueue_avail_event(QVirtQueue *vq);
void qvirtqueue_set_used_event(QVirtQueue *vq, uint16_t idx);
/* Without EVENT_IDX: VRING_AVAIL_F_NO_INTERRUPT. */
void qvirtqueue_set_no_interrupt(QVirtQueue *vq, bool on);

#endif
