/* virtio-pci internals shared by virtio-pci.c and virtio-pci-regs.c. */
#ifndef MINIVMM_DEVICES_VIRTIO_PCI_INT_H
#define MINIVMM_DEVICES_VIRTIO_PCI_INT_H

#include "devices/virtio-pci.h"

#define VIRTIO_PCI_ISR_QUEUE 0x1 /* the spec's "queue interrupt" bit */

/* The modern BAR's registers (virtio-pci-regs.c). */
extern const RegionOps virtio_pci_modern_ops;

/* Big lock held. Hand @q to its owning thread, which starts serving it. */
void virtio_pci_queue_start(VirtioPciDevice *d, VirtioPciQueue *q);
/* Big lock held. Quiesce every queue on its thread, then clear all state. */
void virtio_pci_reset(VirtioPciDevice *d);
void virtio_pci_call_notify_hook(VirtioPciDevice *d);

#endif
