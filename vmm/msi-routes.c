/*
 * The MSI route table's policy: lookup, insert, least-recently-used
 * eviction. Linear scans: the table is small and a lookup is rarer than
 * the eventfd write it saves.
 */
#include "vmm/msi-routes.h"

void msi_routes_init(MsiRouteTable *t, unsigned capacity)
{
    if (capacity < 1) {
        capacity = 1;
    }
    if (capacity > MSI_ROUTES_MAX) {
        capacity = MSI_ROUTES_MAX;
    }
    *t = (MsiRouteTable){.capacity = capacity};
}

static unsigned least_recently_used(const MsiRouteTable *t)
{
    unsigned lru = 0;

    for (unsigned i = 1; i < t->n; i++) {
        if (t->slot[i].last_use < t->slot[lru].last_use) {
            lru = i;
        }
    }
    return lru;
}

unsigned msi_routes_get(MsiRouteTable *t, uint64_t addr, uint32_t data,
                        MsiRouteHow *how, MsiRouteSlot *old)
{
    unsigned i;

    t->uses++;
    for (i = 0; i < t->n; i++) {
        if (t->slot[i].addr == addr && t->slot[i].data == data) {
            t->slot[i].last_use = t->uses;
            *how = MSI_ROUTE_FOUND;
            return i;
        }
    }
    if (t->n < t->capacity) {
        i = t->n++;
        *how = MSI_ROUTE_ADDED;
    } else {
        i = least_recently_used(t);
        *old = t->slot[i];
        *how = MSI_ROUTE_REPLACED;
    }
    t->slot[i] =
        (MsiRouteSlot){.addr = addr, .data = data, .last_use = t->uses};
    return i;
}

void msi_routes_undo(MsiRouteTable *t, unsigned slot, MsiRouteHow how,
                     const MsiRouteSlot *old)
{
    if (how == MSI_ROUTE_ADDED && slot + 1 == t->n) {
        t->n--;
    } else if (how == MSI_ROUTE_REPLACED) {
        t->slot[slot] = *old;
    }
}
