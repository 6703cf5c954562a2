#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "devices/address-space.h"
#include "util/trace.h"

void as_init(AddressSpace *as, GuestMemory *ram)
{
    memset(as, 0, sizeof(*as));
    as->ram = ram;
}

void as_cleanup(AddressSpace *as)
{
    free(as->pio.regions);
    free(as->mmio.regions);
    memset(as, 0, sizeof(*as));
}

static Bus *bus_of(AddressSpace *as, AsSpace space)
{
    return space == AS_PIO ? &as->pio : &as->mmio;
}

/* Index of the first region whose end is above @addr. */
static unsigned bus_lower_bound(const Bus *bus, uint64_t addr)
{
    unsigned lo = 0, hi = bus->count;

    while (lo < hi) {
        unsigned mid = lo + (hi - lo) / 2;
        const Region *r = &bus->regions[mid];

        if (r->base + (r->size - 1) < addr) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

int as_add(AddressSpace *as, AsSpace space, uint64_t base, uint64_t size,
           const RegionOps *ops, void *opaque, const char *name)
{
    Bus *bus = bus_of(as, space);
    uint64_t last;
    unsigned i;

    if (size == 0 || __builtin_add_overflow(base, size - 1, &last)) {
        return -EINVAL;
    }
    if (space == AS_MMIO && as->ram && base < as->ram->size) {
        return -EEXIST;
    }
    i = bus_lower_bound(bus, base);
    if (i < bus->count && bus->regions[i].base <= last) {
        return -EEXIST;
    }
    if (bus->count == bus->capacity) {
        unsigned cap = bus->capacity ? bus->capacity * 2 : 16;
        Region *r = realloc(bus->regions, cap * sizeof(*r));

        if (!r) {
            return -ENOMEM;
        }
        bus->regions = r;
        bus->capacity = cap;
    }
    memmove(&bus->regions[i + 1], &bus->regions[i],
            (bus->count - i) * sizeof(Region));
    if (trace_active()) {
        /* The trace is written after the devices and their names are gone. */
        name = trace_intern(name);
    }
    bus->regions[i] = (Region){base, size, ops, opaque, name};
    bus->count++;
    return 0;
}

int as_remove(AddressSpace *as, AsSpace space, uint64_t base, void *opaque)
{
    Bus *bus = bus_of(as, space);
    unsigned i = bus_lower_bound(bus, base);

    if (i >= bus->count || bus->regions[i].base != base ||
        bus->regions[i].opaque != opaque) {
        return -ENOENT;
    }
    memmove(&bus->regions[i], &bus->regions[i + 1],
            (bus->count - i - 1) * sizeof(Region));
    bus->count--;
    return 0;
}

const Region *as_find(const AddressSpace *as, AsSpace space, uint64_t addr)
{
    const Bus *bus = space == AS_PIO ? &as->pio : &as->mmio;
    unsigned i = bus_lower_bound(bus, addr);

    if (i < bus->count && bus->regions[i].base <= addr) {
        return &bus->regions[i];
    }
    return NULL;
}

/*
 * An access that straddles the end of a region is cut to what fits: the
 * device sees only offsets inside its window.
 */
static bool region_fits(const Region *r, uint64_t addr, unsigned size)
{
    return size <= r->size && addr - r->base <= r->size - size;
}

static const char *space_name(AsSpace space)
{
    return space == AS_PIO ? "pio" : "mmio";
}

bool as_read(AddressSpace *as, AsSpace space, uint64_t addr, unsigned size,
             uint64_t *value)
{
    const Region *r;

    if (space == AS_MMIO && gm_range_ok(as->ram, addr, size)) {
        *value = 0;
        gm_read(as->ram, addr, value, size);
        return true;
    }
    r = as_find(as, space, addr);
    if (r && region_fits(r, addr, size) && r->ops->read) {
        TRACE(AS_DISPATCH, trace_current_id(), .a = {addr, size, 0},
              .s = {r->name, space_name(space)});
        *value = r->ops->read(r->opaque, addr - r->base, size);
        return true;
    }
    *value = size == 8 ? UINT64_MAX : (1ULL << (size * 8)) - 1;
    return false;
}

/*
 * DATAPATH 2: a guest write (a PxCI doorbell, say) finds its region with one
 * binary search and goes to the device's write callback.
 */
bool as_write(AddressSpace *as, AsSpace space, uint64_t addr, unsigned size,
              uint64_t value)
{
    const Region *r;

    if (space == AS_MMIO && gm_range_ok(as->ram, addr, size)) {
        gm_write(as->ram, addr, &value, size);
        return true;
    }
    r = as_find(as, space, addr);
    if (r && region_fits(r, addr, size) && r->ops->write) {
        TRACE(AS_DISPATCH, trace_current_id(), .a = {addr, size, 1},
              .s = {r->name, space_name(space)});
        r->ops->write(r->opaque, addr - r->base, value, size);
        return true;
    }
    return false;
}

/*
 * How many bytes of [@addr, @addr + @len) the next access covers: RAM up to
 * its end; in a region, the largest power of two that fits the region's
 * widest access, the alignment of @addr, what is left, and the region.
 */
static uint64_t bulk_chunk(AddressSpace *as, uint64_t addr, uint64_t len,
                           bool *is_ram)
{
    const Region *r;
    uint64_t max, room;
    unsigned size;

    *is_ram = as->ram && addr < as->ram->size;
    if (*is_ram) {
        return len < as->ram->size - addr ? len : as->ram->size - addr;
    }
    r = as_find(as, AS_MMIO, addr);
    if (!r) {
        return 1;
    }
    max = r->ops->max_access ? r->ops->max_access : 4;
    room = r->base + r->size - addr; /* >= 1: addr is inside r */
    if (room < max) {
        max = room;
    }
    if (len < max) {
        max = len;
    }
    size = 8;
    while (size > max || (addr & (size - 1))) {
        size /= 2;
    }
    return size;
}

void as_rw_bytes(AddressSpace *as, uint64_t addr, void *buf, uint64_t len,
                 bool is_write)
{
    uint8_t *p = buf;

    while (len > 0) {
        bool is_ram;
        uint64_t n = bulk_chunk(as, addr, len, &is_ram);
        uint64_t v = 0;

        if (is_ram) {
            if (is_write) {
                gm_write(as->ram, addr, p, n);
            } else {
                gm_read(as->ram, addr, p, n);
            }
        } else if (is_write) {
            memcpy(&v, p, n); /* x86: little-endian, as the bus is */
            as_write(as, AS_MMIO, addr, n, v);
        } else {
            as_read(as, AS_MMIO, addr, n, &v);
            memcpy(p, &v, n);
        }
        p += n;
        addr += n;
        len -= n;
    }
}
