#include "firmware/tests/lib/fw.h"
#include "firmware/tests/lib/pci.h"

#define PCI_CONF_ADDR   0xcf8
#define PCI_CONF_DATA   0xcfc
#define PCI_CONF_ENABLE 0x80000000u
#define MAX_CAPS        48 /* a loop in the list must not hang us */

static void select_reg(unsigned devfn, unsigned off)
{
    outl(PCI_CONF_ADDR, PCI_CONF_ENABLE | (devfn & 0xff) << 8 | (off & 0xfc));
}

uint32_t pci_read32(unsigned devfn, unsigned off)
{
    select_reg(devfn, off);
    return inl(PCI_CONF_DATA);
}

uint16_t pci_read16(unsigned devfn, unsigned off)
{
    select_reg(devfn, off);
    return inw(PCI_CONF_DATA + (off & 2));
}

uint8_t pci_read8(unsigned devfn, unsigned off)
{
    select_reg(devfn, off);
    return inb(PCI_CONF_DATA + (off & 3));
}

void pci_write32(unsigned devfn, unsigned off, uint32_t v)
{
    select_reg(devfn, off);
    outl(PCI_CONF_DATA, v);
}

void pci_write16(unsigned devfn, unsigned off, uint16_t v)
{
    select_reg(devfn, off);
    outw(PCI_CONF_DATA + (off & 2), v);
}

void pci_write8(unsigned devfn, unsigned off, uint8_t v)
{
    select_reg(devfn, off);
    outb(PCI_CONF_DATA + (off & 3), v);
}

uint8_t pci_find_cap(unsigned devfn, uint8_t id, uint8_t start)
{
    uint8_t pos;

    if (!(pci_read16(devfn, PCI_STATUS) & PCI_STATUS_CAP_LIST)) {
        return 0;
    }
    pos = start ? pci_read8(devfn, start + 1)
                : pci_read8(devfn, PCI_CAPABILITY_LIST);
    for (int i = 0; i < MAX_CAPS && pos >= 0x40; i++) {
        pos &= ~3;
        if (pci_read8(devfn, pos) == id) {
            return pos;
        }
        pos = pci_read8(devfn, pos + 1);
    }
    return 0;
}
