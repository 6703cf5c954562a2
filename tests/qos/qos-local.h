/*
 * The in-process qos transport: the calling thread plays a vCPU. Each port or
 * MMIO access takes the big lock, goes through the address space and drops
 * the lock, exactly as a KVM exit is handled. Guest RAM is accessed directly.
 * A main loop must be running on another thread for completions to arrive.
 */
#ifndef MINIVMM_TESTS_QOS_QOS_LOCAL_H
#define MINIVMM_TESTS_QOS_QOS_LOCAL_H

#include "devices/address-space.h"
#include "tests/qos/qos.h"

void qos_local_init(Qos *q, AddressSpace *as);

#endif
