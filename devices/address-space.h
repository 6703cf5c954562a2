/*
 * The address space: where a guest access goes.
 *
 * Two buses, port I/O and MMIO, each a sorted array of non-overlapping
 * regions, plus RAM. Every access a vCPU makes (a KVM exit, a qtest command)
 * is resolved here, in one place: as_read()/as_write() find the region with a
 * binary search and call its ops. Devices add and move regions (PCI BARs)
 * when the guest programs them. All of this happens with the big lock held.
 */
#ifndef MINIVMM_DEVICES_ADDRESS_SPACE_H
#define MINIVMM_DEVICES_ADDRESS_SPACE_H

#include <stdbool.h>
#include <stdint.h>

#include "devices/memory.h"

/* A device's register window. Offsets are relative to the region base. */
typedef struct RegionOps {
    uint64_t (*read)(void *opaque, uint64_t offset, unsigned size);
    void (*write)(void *opaque, uint64_t offset, uint64_t value, unsigned size);
    /*
     * The widest access a bulk transfer (as_rw_bytes()) makes: 1, 2, 4 or
     * 8; 0 means 4, as QEMU's memory core assumes when a device says
     * nothing (MemoryRegionOps.valid.max_access_size).
     */
    unsigned max_access;
} RegionOps;

typedef struct Region {
    uint64_t base;
    uint64_t size;
    const RegionOps *ops;
    void *opaque;
    const char *name;
} Region;

typedef struct Bus {
    Region *regions; /* sorted by base, non-overlapping */
    unsigned count;
    unsigned capacity;
} Bus;

typedef enum AsSpace { AS_PIO, AS_MMIO } AsSpace;

typedef struct AddressSpace {
    Bus pio;
    Bus mmio;
    GuestMemory *ram;
} AddressSpace;

void as_init(AddressSpace *as, GuestMemory *ram);
void as_cleanup(AddressSpace *as);

/*
 * Map @ops at [base, base + size) of @space. Returns 0, -EINVAL for an empty
 * or wrapping range, -EEXIST if it overlaps a region or RAM (MMIO).
 */
int as_add(AddressSpace *as, AsSpace space, uint64_t base, uint64_t size,
           const RegionOps *ops, void *opaque, const char *name);

/* Unmap the region of @opaque that starts at @base. */
int as_remove(AddressSpace *as, AsSpace space, uint64_t base, void *opaque);

/* The region containing @addr, or NULL. */
const Region *as_find(const AddressSpace *as, AsSpace space, uint64_t addr);

/*
 * One guest access of 1, 2, 4 or 8 bytes (DATAPATH 2). MMIO that hits RAM
 * reads/writes RAM. Unclaimed reads return all-ones and unclaimed writes are
 * dropped, as on a PC; both return false so callers can log them.
 */
bool as_read(AddressSpace *as, AsSpace space, uint64_t addr, unsigned size,
             uint64_t *value);
bool as_write(AddressSpace *as, AsSpace space, uint64_t addr, unsigned size,
              uint64_t value);

/*
 * Byte-range access for bulk transfers (qtest read/write/memset). RAM is
 * copied; device registers get what QEMU's memory core would give them:
 * the range cut into the widest naturally aligned accesses the region takes
 * (RegionOps.max_access), little-endian, so a bulk write of a dword
 * register is one dword write. Unclaimed bytes read as 0xff.
 */
void as_rw_bytes(AddressSpace *as, uint64_t addr, void *buf, uint64_t len,
                 bool is_write);

#endif
