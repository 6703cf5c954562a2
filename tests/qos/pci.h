/* qos PCI: enumerate, size and place BARs, walk capabilities (mechanism #1). */
#ifndef MINIVMM_TESTS_QOS_PCI_H
#define MINIVMM_TESTS_QOS_PCI_H

#include "tests/qos/qos.h"

typedef struct QPciDevice {
    Qos *q;
    uint8_t devfn;
} QPciDevice;

uint32_t qpci_config_read(QPciDevice *d, uint8_t offset, unsigned size);
void qpci_config_write(QPciDevice *d, uint8_t offset, uint32_t value,
                       unsigned size);

/* The @index-th function (0-based) with these IDs on bus 0. */
bool qpci_find(Qos *q, uint16_t vendor, uint16_t device, int index,
               QPciDevice *out);

/* Offset of the first capability @id at or after list entry @start (0). */
uint8_t qpci_find_capability(QPciDevice *d, uint8_t id, uint8_t start);

/*
 * Size @bar, place it in the next free MMIO or port window, and return its
 * address (and size in *size if non-NULL). Does not enable decoding.
 */
uint64_t qpci_map_bar(QPciDevice *d, int bar, uint64_t *size);
bool qpci_bar_is_io(QPciDevice *d, int bar);

/* Enable I/O, memory decoding and bus mastering. */
void qpci_enable(QPciDevice *d);

#endif
