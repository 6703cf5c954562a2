#include <string.h>

#include "devices/fw-cfg.h"

/* The selected item's bytes, or 0 bytes for an unknown key. */
static unsigned fw_cfg_item(const FwCfg *f, uint8_t *buf)
{
    uint64_t v;

    switch (f->key) {
    case FW_CFG_SIGNATURE:
        memcpy(buf, "QEMU", 4);
        return 4;
    case FW_CFG_ID:
        v = 1; /* the traditional interface; no DMA */
        memcpy(buf, &v, 4);
        return 4;
    case FW_CFG_RAM_SIZE:
        memcpy(buf, &f->ram_size, 8);
        return 8;
    case FW_CFG_NB_CPUS:
        memcpy(buf, &f->nb_cpus, 2);
        return 2;
    case FW_CFG_FILE_DIR:
        memset(buf, 0, 4); /* no files (a big-endian count of 0) */
        return 4;
    default:
        return 0;
    }
}

static uint64_t fw_cfg_read(void *opaque, uint64_t offset, unsigned size)
{
    FwCfg *f = opaque;
    uint8_t item[8];
    unsigned len;

    if (offset != 1 || size != 1) {
        return 0; /* only byte reads of the data port carry data */
    }
    len = fw_cfg_item(f, item);
    return f->offset < len ? item[f->offset++] : 0;
}

static void fw_cfg_write(void *opaque, uint64_t offset, uint64_t value,
                         unsigned size)
{
    FwCfg *f = opaque;

    if (offset == 0 && size == 2) {
        f->key = value;
        f->offset = 0;
    }
}

static const RegionOps fw_cfg_ops = {
    .read = fw_cfg_read,
    .write = fw_cfg_write,
};

int fw_cfg_init(FwCfg *f, AddressSpace *as, uint64_t ram_size, uint16_t nb_cpus)
{
    *f = (FwCfg){.ram_size = ram_size, .nb_cpus = nb_cpus};
    return as_add(as, AS_PIO, FW_CFG_PORT_SEL, 2, &fw_cfg_ops, f, "fw_cfg");
}
