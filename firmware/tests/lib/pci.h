/*
 * PCI configuration mechanism #1 (ports 0xcf8/0xcfc), bus 0 only: the
 * machine has one bus. Functions are named by devfn (device << 3 | fn).
 */
#ifndef FWTEST_PCI_H
#define FWTEST_PCI_H

#include <stdint.h>

#define PCI_DEVFN(dev, fn) (((dev) << 3) | (fn))
#define PCI_SLOT(devfn)    ((devfn) >> 3)
#define PCI_FUNC(devfn)    ((devfn)&7)

#define PCI_VENDOR_ID           0x00
#define PCI_DEVICE_ID           0x02
#define PCI_COMMAND             0x04
#define PCI_STATUS              0x06
#define PCI_REVISION_ID         0x08
#define PCI_CLASS_PROG          0x09
#define PCI_HEADER_TYPE         0x0e
#define PCI_BAR0                0x10
#define PCI_SUBSYSTEM_VENDOR_ID 0x2c
#define PCI_SUBSYSTEM_ID        0x2e
#define PCI_CAPABILITY_LIST     0x34
#define PCI_INTERRUPT_LINE      0x3c
#define PCI_INTERRUPT_PIN       0x3d

#define PCI_COMMAND_IO           0x1
#define PCI_COMMAND_MEMORY       0x2
#define PCI_COMMAND_MASTER       0x4
#define PCI_COMMAND_INTX_DISABLE 0x400
#define PCI_STATUS_CAP_LIST      0x10
#define PCI_BAR_IO               0x1
#define PCI_BAR_MEM64            0x4
#define PCI_BAR_PREFETCH         0x8

#define PCI_CAP_ID_MSI  0x05
#define PCI_CAP_ID_VNDR 0x09
#define PCI_CAP_ID_MSIX 0x11

#define PCI_MSI_FLAGS        2
#define PCI_MSI_FLAGS_ENABLE 0x1
#define PCI_MSI_FLAGS_64BIT  0x80
#define PCI_MSI_ADDRESS_LO   4
#define PCI_MSI_ADDRESS_HI   8
#define PCI_MSI_DATA_32      8
#define PCI_MSI_DATA_64      12

#define PCI_MSIX_FLAGS         2
#define PCI_MSIX_TABLE         4
#define PCI_MSIX_PBA           8
#define PCI_MSIX_FLAGS_QSIZE   0x7ff
#define PCI_MSIX_FLAGS_MASKALL 0x4000
#define PCI_MSIX_FLAGS_ENABLE  0x8000

uint32_t pci_read32(unsigned devfn, unsigned off);
uint16_t pci_read16(unsigned devfn, unsigned off);
uint8_t pci_read8(unsigned devfn, unsigned off);
void pci_write32(unsigned devfn, unsigned off, uint32_t v);
void pci_write16(unsigned devfn, unsigned off, uint16_t v);
void pci_write8(unsigned devfn, unsigned off, uint8_t v);

/* Offset of the capability @id after @start (0: from the list head), or 0. */
uint8_t pci_find_cap(unsigned devfn, uint8_t id, uint8_t start);

#endif
