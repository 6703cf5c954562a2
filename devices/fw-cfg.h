/*
 * fw_cfg, QEMU's firmware configuration interface, in its port I/O form:
 * write a 16-bit key to 0x510, read the item's bytes from 0x511. minivmm
 * offers just what test clients and firmware-less guests ask for: the
 * signature, the interface ID, the RAM size and the CPU count.
 */
#ifndef MINIVMM_DEVICES_FW_CFG_H
#define MINIVMM_DEVICES_FW_CFG_H

#include <stdint.h>

#include "devices/address-space.h"

#define FW_CFG_PORT_SEL  0x510
#define FW_CFG_PORT_DATA 0x511

#define FW_CFG_SIGNATURE 0x00
#define FW_CFG_ID        0x01
#define FW_CFG_RAM_SIZE  0x03
#define FW_CFG_NB_CPUS   0x05
#define FW_CFG_FILE_DIR  0x19

typedef struct FwCfg {
    uint16_t key;
    uint32_t offset; /* next byte of the selected item */
    uint64_t ram_size;
    uint16_t nb_cpus;
} FwCfg;

int fw_cfg_init(FwCfg *f, AddressSpace *as, uint64_t ram_size,
                uint16_t nb_cpus);

#endif
