/*
 * Which MSI messages have a GSI route (and an irqfd) of their own: the
 * policy of vmm/kvm.c's route table, apart from KVM so that tests can
 * drive it.
 *
 * A guest programs a few messages, one per vector, and reuses them. But
 * Linux rewrites a vector's message whenever it moves the interrupt to
 * another CPU, so over a long run the distinct messages outnumber the
 * slots. A full table therefore gives the slot of its least recently used
 * message to the new one, rather than leaving every new message to the
 * slow KVM_SIGNAL_MSI path for good.
 */
#ifndef MINIVMM_VMM_MSI_ROUTES_H
#define MINIVMM_VMM_MSI_ROUTES_H

#include <stdint.h>

#define MSI_ROUTES_MAX 256

typedef struct MsiRouteSlot {
    uint64_t addr;
    uint32_t data;
    uint64_t last_use; /* the table's use count when it was last looked up */
} MsiRouteSlot;

/* Slots 0..n-1 are in use; no locking here, the caller has its own. */
typedef struct MsiRouteTable {
    unsigned capacity; /* 1..MSI_ROUTES_MAX */
    unsigned n;
    uint64_t uses;
    MsiRouteSlot slot[MSI_ROUTES_MAX];
} MsiRouteTable;

/* What msi_routes_get() did, and so what the caller must set up. */
typedef enum MsiRouteHow {
    MSI_ROUTE_FOUND,    /* the message had its slot: nothing */
    MSI_ROUTE_ADDED,    /* a new slot (the last): a route and an irqfd */
    MSI_ROUTE_REPLACED, /* the least recently used slot: re-point its route */
} MsiRouteHow;

/* An empty table of @capacity slots (clamped to 1..MSI_ROUTES_MAX). */
void msi_routes_init(MsiRouteTable *t, unsigned capacity);

/*
 * The slot of the message (@addr, @data), marked most recently used; a new
 * message takes a free slot or, in a full table, the least recently used
 * one, whose message goes to *@old. *@how says which.
 */
unsigned msi_routes_get(MsiRouteTable *t, uint64_t addr, uint32_t data,
                        MsiRouteHow *how, MsiRouteSlot *old);

/*
 * The caller could not set up what msi_routes_get() asked for: give @slot
 * back (ADDED) or its old message (REPLACED, with @old from that call).
 */
void msi_routes_undo(MsiRouteTable *t, unsigned slot, MsiRouteHow how,
                     const MsiRouteSlot *old);

#endif
