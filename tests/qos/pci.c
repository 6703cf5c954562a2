#include "tests/qos/pci.h"

#define CONFIG_ADDRESS 0xcf8
#define CONFIG_DATA    0xcfc

static void latch(QPciDevice *d, uint8_t offset)
{
    qos_outl(d->q, CONFIG_ADDRESS,
             0x80000000u | (uint32_t)d->devfn << 8 | (offset & 0xfc));
}

uint32_t qpci_config_read(QPciDevice *d, uint8_t offset, unsigned size)
{
    latch(d, offset);
    return d->q->ops->pio_read(d->q->opaque, CONFIG_DATA + (offset & 3), size);
}

void qpci_config_write(QPciDevice *d, uint8_t offset, uint32_t value,
                       unsigned size)
{
    latch(d, offset);
    d->q->ops->pio_write(d->q->opaque, CONFIG_DATA + (offset & 3), value, size);
}

bool qpci_find(Qos *q, uint16_t vendor, uint16_t device, int index,
               QPciDevice *out)
{
    for (int devfn = 0; devfn < 256; devfn++) {
        QPciDevice d = {.q = q, .devfn = devfn};
        uint32_t id = qpci_config_read(&d, 0, 4);

        if (id == ((uint32_t)device << 16 | vendor) && index-- == 0) {
            *out = d;
            return true;
        }
    }
    return false;
}

uint8_t qpci_find_capability(QPciDevice *d, uint8_t id, uint8_t start)
{
    uint8_t cap = start ? qpci_config_read(d, start + 1, 1)
                        : qpci_config_read(d, 0x34, 1);

    for (int hops = 0; cap && hops < 48; hops++) {
        if (qpci_config_read(d, cap, 1) == id) {
            return cap;
        }
        cap = qpci_config_read(d, cap + 1, 1);
    }
    return 0;
}

bool qpci_bar_is_io(QPciDevice *d, int bar)
{
    return qpci_config_read(d, 0x10 + 4 * bar, 4) & 1;
}

uint64_t qpci_map_bar(QPciDevice *d, int bar, uint64_t *size_out)
{
    uint8_t reg = 0x10 + 4 * bar;
    uint32_t orig = qpci_config_read(d, reg, 4);
    bool is_io = orig & 1, is_64 = !is_io && (orig & 0x6) == 0x4;
    uint64_t mask, size, addr;

    qpci_config_write(d, reg, 0xffffffff, 4);
    mask = qpci_config_read(d, reg, 4) & (is_io ? ~0x3u : ~0xfu);
    if (is_64) {
        qpci_config_write(d, reg + 4, 0xffffffff, 4);
        mask |= (uint64_t)qpci_config_read(d, reg + 4, 4) << 32;
    } else {
        mask |= is_io ? 0xffffffffffff0000ULL : 0xffffffff00000000ULL;
    }
    size = ~mask + 1;
    if (is_io) {
        addr = (d->q->pio_next + size - 1) & ~(size - 1);
        d->q->pio_next = addr + size;
    } else {
        addr = (d->q->mmio_next + size - 1) & ~(size - 1);
        d->q->mmio_next = addr + size;
    }
    qpci_config_write(d, reg, (uint32_t)addr | (orig & (is_io ? 1 : 0xf)), 4);
    if (is_64) {
        qpci_config_write(d, reg + 4, addr >> 32, 4);
    }
    if (size_out) {
        *size_out = size;
    }
    return addr;
}

void qpci_enable(QPciDevice *d)
{
    uint16_t cmd = qpci_config_read(d, 0x04, 2);

    qpci_config_write(d, 0x04, cmd | 0x7, 2);
}
