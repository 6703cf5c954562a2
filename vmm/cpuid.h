/*
 * The CPUID a vCPU sees, built on purpose from what KVM supports.
 *
 * KVM_GET_SUPPORTED_CPUID says what KVM *can* show a guest; it is not a
 * machine. Its topology fields describe the host, leaf 1 lacks bits only
 * the VMM may set (TSC-deadline, the hypervisor bit), and its XSAVE leaf
 * assumes a host that tracks the guest's XCR0. cpuid_build() turns it into
 * one vCPU's table for a machine of one socket with N cores, one thread
 * per core, APIC ID = vCPU index. It is a pure function (no ioctls) so that
 * the unit tests can feed it Intel- and AMD-like tables.
 */
#ifndef MINIVMM_VMM_CPUID_H
#define MINIVMM_VMM_CPUID_H

#include <stdbool.h>

#include <linux/kvm.h>

/* The most entries cpuid_build() adds to its input (leaves 0xB and 0x1F,
 * three subleaves each, and 0x8000001E). */
#define CPUID_EXTRA_ENTRIES 7

typedef struct CpuidConfig {
    int nvcpus; /* cores in the one socket, 1..64 (leaf 4's limit) */
    int index;  /* this vCPU: its APIC ID */
    /* KVM_CAP_TSC_DEADLINE_TIMER: the bit is never in the supported list. */
    bool tsc_deadline;
    /*
     * KVM sees the guest's XSETBV (kvm_probe_xsetbv()). When it does not,
     * XSAVE cannot work (see cpuid.c) and is not offered at all.
     */
    bool xsetbv_tracked;
} CpuidConfig;

/*
 * Build vCPU @cfg->index's CPUID from KVM's @nin supported entries @in into
 * @out, which has room for @max entries (@nin + CPUID_EXTRA_ENTRIES is
 * always enough). Returns the number of entries written, -ENOSPC when they
 * do not fit, or -EINVAL for a bad @cfg.
 */
int cpuid_build(const struct kvm_cpuid_entry2 *in, int nin,
                const CpuidConfig *cfg, struct kvm_cpuid_entry2 *out, int max);

/* The entry for @function / @index in @t, or NULL (for tests and callers). */
struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid_entry2 *t, int n,
                                    unsigned function, unsigned index);

#endif
