/*
 * PCI configuration space: register offsets and bits, as a type-0 function
 * lays them out, with the MSI and MSI-X capabilities. Constants only, so
 * that the device model (devices/pci.h), the freestanding bare-metal tests
 * (firmware/tests/lib/pci.h) and the qtest drivers share one copy.
 */
#ifndef MINIVMM_DEVICES_PCI_REGS_H
#define MINIVMM_DEVICES_PCI_REGS_H

#include <stdint.h>

#define PCI_CONFIG_SIZE    256
#define PCI_NUM_BARS       6
#define PCI_DEVFN(dev, fn) ((uint8_t)(((dev) << 3) | (fn)))
#define PCI_SLOT(devfn)    ((devfn) >> 3)
#define PCI_FUNC(devfn)    ((devfn)&7)

/* Configuration space registers (type 0 header). */
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

#define PCI_COMMAND_IO           0x0001
#define PCI_COMMAND_MEMORY       0x0002
#define PCI_COMMAND_MASTER       0x0004
#define PCI_COMMAND_SERR         0x0100
#define PCI_COMMAND_INTX_DISABLE 0x0400

#define PCI_STATUS_INTERRUPT 0x0008
#define PCI_STATUS_CAP_LIST  0x0010

#define PCI_BAR_IO       0x1
#define PCI_BAR_MEM64    0x4
#define PCI_BAR_PREFETCH 0x8

#define PCI_CAP_ID_MSI    0x05
#define PCI_CAP_ID_VENDOR 0x09
#define PCI_CAP_ID_MSIX   0x11

/* MSI capability (offsets from the capability). */
#define PCI_MSI_FLAGS        2
#define PCI_MSI_FLAGS_ENABLE 0x0001
#define PCI_MSI_FLAGS_64BIT  0x0080
#define PCI_MSI_ADDRESS_LO   4
#define PCI_MSI_ADDRESS_HI   8
#define PCI_MSI_DATA_32      8
#define PCI_MSI_DATA_64      12

/* MSI-X capability and table. */
#define PCI_MSIX_FLAGS              2
#define PCI_MSIX_FLAGS_QSIZE        0x07ff
#define PCI_MSIX_FLAGS_MASKALL      0x4000
#define PCI_MSIX_FLAGS_ENABLE       0x8000
#define PCI_MSIX_TABLE              4
#define PCI_MSIX_PBA                8
#define PCI_MSIX_ENTRY_SIZE         16
#define PCI_MSIX_ENTRY_CTRL_MASKBIT 0x1

#endif
