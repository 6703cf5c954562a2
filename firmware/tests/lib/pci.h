/*
 * PCI configuration mechanism #1 (ports 0xcf8/0xcfc), bus 0 only: the
 * machine has one bus. Functions are named by devfn (device << 3 | fn).
 */
#ifndef FWTEST_PCI_H
#define FWTEST_PCI_H

#include <stdint.h>

#include "devices/pci-regs.h"

uint32_t pci_read32(unsigned devfn, unsigned off);
uint16_t pci_read16(unsigned devfn, unsigned off);
uint8_t pci_read8(unsigned devfn, unsigned off);
void pci_write32(unsigned devfn, unsigned off, uint32_t v);
void pci_write16(unsigned devfn, unsigned off, uint16_t v);
void pci_write8(unsigned devfn, unsigned off, uint8_t v);

/* Offset of the capability @id after @start (0: from the list head), or 0. */
uint8_t pci_find_cap(unsigned devfn, uint8_t id, uint8_t start);

#endif
