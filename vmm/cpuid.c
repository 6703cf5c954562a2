/*
 * Building a vCPU's CPUID (see cpuid.h). The order of cpuid_build() is the
 * order of this file: copy what KVM supports minus the leaves we build
 * ourselves, then present the CPU model, the features only a VMM may set,
 * the topology, the XSAVE state and KVM's own leaves.
 *
 * References: the Intel SDM vol. 2A "CPUID", AMD's APM vol. 3 appendix E,
 * Documentation/virt/kvm/api.rst (KVM_GET_SUPPORTED_CPUID, KVM_SET_CPUID2),
 * and what QEMU (target/i386/cpu.c), kvmtool (x86/cpuid.c) and
 * cloud-hypervisor (arch/src/x86_64/mod.rs) do with the same table.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <asm/kvm_para.h>

#include "util/compiler.h"
#include "vmm/cpuid.h"

enum { R_EAX, R_EBX, R_ECX, R_EDX };

#define BIT(n) (1u << (n))

/* Leaf 1 */
#define L1_ECX_FMA          BIT(12)
#define L1_ECX_TSC_DEADLINE BIT(24)
#define L1_ECX_XSAVE        BIT(26)
#define L1_ECX_OSXSAVE      BIT(27)
#define L1_ECX_AVX          BIT(28)
#define L1_ECX_F16C         BIT(29)
#define L1_ECX_HYPERVISOR   BIT(31)
#define L1_EDX_HTT          BIT(28)

/* Leaf 7, subleaves 0 and 1 */
#define L7_EBX_AVX2 BIT(5)
#define L7_EBX_MPX  BIT(14)
#define L7_EBX_AVX512                                                          \
    (BIT(16) | BIT(17) | BIT(21) | BIT(26) | BIT(27) | BIT(28) | BIT(30) |     \
     BIT(31))
#define L7_ECX_AVX512        (BIT(1) | BIT(6) | BIT(11) | BIT(12) | BIT(14))
#define L7_ECX_PKU           (BIT(3) | BIT(4))  /* PKU and OSPKE */
#define L7_ECX_VAES          (BIT(9) | BIT(10)) /* VAES and VPCLMULQDQ */
#define L7_EDX_AVX512        (BIT(2) | BIT(3) | BIT(8) | BIT(23))
#define L7_EDX_AMX           (BIT(22) | BIT(24) | BIT(25))
#define L7_1_EAX_AVX_VNNI    BIT(4)
#define L7_1_EAX_AVX512_BF16 BIT(5)

/* AMD's leaf 0x80000001 */
#define X1_ECX_CMP_LEGACY BIT(1)
#define X1_ECX_XOP        BIT(11)
#define X1_ECX_FMA4       BIT(16)
#define X1_ECX_TOPOEXT    BIT(22)

/* XSAVE state components (bits of XCR0) */
#define XCR0_X87    (1ull << 0)
#define XCR0_SSE    (1ull << 1)
#define XCR0_YMM    (1ull << 2)
#define XCR0_MPX    (3ull << 3) /* BNDREGS, BNDCSR */
#define XCR0_AVX512 (7ull << 5) /* opmask, ZMM_Hi256, Hi16_ZMM */
#define XCR0_PKRU   (1ull << 9)
#define XCR0_AMX    (3ull << 17) /* XTILECFG, XTILEDATA */
/* The legacy FXSAVE area (512 bytes) and the XSAVE header (64). */
#define XSAVE_LEGACY_SIZE 576

/* Levels of leaves 0xB and 0x1F (ECX[15:8]) */
#define TOPO_LEVEL_INVALID 0
#define TOPO_LEVEL_SMT     1
#define TOPO_LEVEL_CORE    2

static uint32_t *reg(struct kvm_cpuid_entry2 *e, int r)
{
    switch (r) {
    case R_EAX:
        return &e->eax;
    case R_EBX:
        return &e->ebx;
    case R_ECX:
        return &e->ecx;
    default:
        return &e->edx;
    }
}

struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid_entry2 *t, int n,
                                    unsigned function, unsigned index)
{
    for (int i = 0; i < n; i++) {
        if (t[i].function == function &&
            (!(t[i].flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) ||
             t[i].index == index)) {
            return &t[i];
        }
    }
    return NULL;
}

/* A table under construction: the output array and how full it is. */
typedef struct Table {
    struct kvm_cpuid_entry2 *e;
    int n, max;
} Table;

static struct kvm_cpuid_entry2 *find(Table *t, unsigned function,
                                     unsigned index)
{
    return cpuid_find(t->e, t->n, function, index);
}

static int append(Table *t, const struct kvm_cpuid_entry2 *e)
{
    if (t->n == t->max) {
        return -ENOSPC;
    }
    t->e[t->n++] = *e;
    return 0;
}

/* Clear @bits of register @r in leaf @function.@index, if the leaf is there. */
static void clear_bits(Table *t, unsigned function, unsigned index, int r,
                       uint32_t bits)
{
    struct kvm_cpuid_entry2 *e = find(t, function, index);

    if (e) {
        *reg(e, r) &= ~bits;
    }
}

static bool is_amd(Table *t)
{
    struct kvm_cpuid_entry2 *e = find(t, 0, 0);

    /* "AuthenticAMD" and Hygon's "HygonGenuine" share AMD's topology leaves. */
    return e && (e->ebx == 0x68747541 || e->ebx == 0x6f677948);
}

/* Bits needed to number @n things: the smallest s with 2^s >= n. */
static unsigned order(unsigned n)
{
    unsigned s = 0;

    while ((1u << s) < n) {
        s++;
    }
    return s;
}

/* ---- The XSAVE state (leaf 0xD) ---------------------------------------- */

/*
 * Which XSAVE components (XCR0 bits) the guest is offered: those KVM
 * supports whose subleaf describes a real area, as whole architectural
 * groups, or none at all when KVM does not see the guest's XSETBV.
 *
 * Why the last case exists: nested under QEMU TCG (our test rig), QEMU's
 * model of AMD SVM never intercepts XSETBV. The guest's XSETBV then changes
 * the emulated CPU's XCR0 without L1's KVM knowing: KVM's copy of the
 * guest's XCR0 stays at its reset value 1 (x87). Two things follow
 * (measured, see docs/machine.md): KVM computes CPUID 0xD.0 EBX, "bytes
 * for the current XCR0", for XCR0 = 1, so Linux's check of it against the
 * sum of the subleaves fails ("XSAVE consistency problem: size 2696 !=
 * kernel_size 576", a WARNING); and KVM loads XCR0 = 1 on every VM entry,
 * so the guest's XSAVE silently stops saving its SSE and AVX registers
 * after the first exit. No CPUID can make XSAVE correct there; without
 * XSAVE, Linux uses FXSAVE, which saves x87 and SSE whatever XCR0 holds.
 */
static uint64_t offered_xcr0(Table *t, const CpuidConfig *cfg)
{
    struct kvm_cpuid_entry2 *l1 = find(t, 1, 0), *d0 = find(t, 0xd, 0);
    uint64_t xcr0;

    if (!cfg->xsetbv_tracked || !l1 || !(l1->ecx & L1_ECX_XSAVE) || !d0) {
        return 0;
    }
    xcr0 = d0->eax | (uint64_t)d0->edx << 32;
    if ((xcr0 & (XCR0_X87 | XCR0_SSE)) != (XCR0_X87 | XCR0_SSE)) {
        return 0;
    }
    for (unsigned i = 2; i < 64; i++) {
        struct kvm_cpuid_entry2 *e = find(t, 0xd, i);

        /* EAX size, EBX offset in the standard layout; ECX bit 0 says the
         * component belongs to IA32_XSS, not XCR0. */
        if ((xcr0 & (1ull << i)) &&
            (!e || e->eax == 0 || e->ebx < XSAVE_LEGACY_SIZE || (e->ecx & 1))) {
            xcr0 &= ~(1ull << i);
        }
    }
    /* XCR0 accepts these groups only whole, and AVX-512 only with AVX. */
    if (!(xcr0 & XCR0_YMM) || (xcr0 & XCR0_AVX512) != XCR0_AVX512) {
        xcr0 &= ~XCR0_AVX512;
    }
    if ((xcr0 & XCR0_MPX) != XCR0_MPX) {
        xcr0 &= ~XCR0_MPX;
    }
    if ((xcr0 & XCR0_AMX) != XCR0_AMX) {
        xcr0 &= ~XCR0_AMX;
    }
    return xcr0;
}

/* A feature whose state lives in XSAVE components the guest cannot enable
 * is not offered either: software that sees the bit would use it. */
static const struct {
    uint64_t needs; /* every one of these components */
    unsigned function, index;
    int r;
    uint32_t bits;
} xsave_features[] = {
    {XCR0_X87 | XCR0_SSE, 1, 0, R_ECX, L1_ECX_XSAVE | L1_ECX_OSXSAVE},
    {XCR0_YMM, 1, 0, R_ECX, L1_ECX_AVX | L1_ECX_FMA | L1_ECX_F16C},
    {XCR0_YMM, 7, 0, R_EBX, L7_EBX_AVX2},
    {XCR0_YMM, 7, 0, R_ECX, L7_ECX_VAES},
    {XCR0_YMM, 7, 1, R_EAX, L7_1_EAX_AVX_VNNI},
    {XCR0_YMM, 0x80000001, 0, R_ECX, X1_ECX_XOP | X1_ECX_FMA4},
    {XCR0_MPX, 7, 0, R_EBX, L7_EBX_MPX},
    {XCR0_AVX512, 7, 0, R_EBX, L7_EBX_AVX512},
    {XCR0_AVX512, 7, 0, R_ECX, L7_ECX_AVX512},
    {XCR0_AVX512, 7, 0, R_EDX, L7_EDX_AVX512},
    {XCR0_AVX512, 7, 1, R_EAX, L7_1_EAX_AVX512_BF16},
    {XCR0_PKRU, 7, 0, R_ECX, L7_ECX_PKU},
    {XCR0_AMX, 7, 0, R_EDX, L7_EDX_AMX},
};

/* Does KVM's entry @e belong in a table that offers @xcr0? */
static bool keep_xsave_leaf(const struct kvm_cpuid_entry2 *e, uint64_t xcr0)
{
    if (xcr0 == 0) {
        return false; /* no XSAVE: no leaf 0xD */
    }
    if (e->index < 2 || (e->ecx & 1)) {
        return true; /* 0xD.0, 0xD.1, and IA32_XSS components as listed */
    }
    return e->index < 64 && (xcr0 & (1ull << e->index));
}

static void set_xsave(Table *t, uint64_t xcr0)
{
    struct kvm_cpuid_entry2 *d0 = find(t, 0xd, 0);
    uint32_t max_size = XSAVE_LEGACY_SIZE;

    for (size_t i = 0; i < ARRAY_SIZE(xsave_features); i++) {
        if ((xcr0 & xsave_features[i].needs) != xsave_features[i].needs) {
            clear_bits(t, xsave_features[i].function, xsave_features[i].index,
                       xsave_features[i].r, xsave_features[i].bits);
        }
    }
    if (!d0) {
        return;
    }
    for (unsigned i = 2; i < 64; i++) {
        struct kvm_cpuid_entry2 *e = find(t, 0xd, i);

        if ((xcr0 & (1ull << i)) && e && e->ebx + e->eax > max_size) {
            max_size = e->ebx + e->eax;
        }
    }
    d0->eax = (uint32_t)xcr0;
    d0->edx = (uint32_t)(xcr0 >> 32);
    /* EBX: bytes for the XCR0 in force, x87 only at reset. KVM recomputes
     * it from the host's subleaves whenever the guest writes XCR0. */
    d0->ebx = XSAVE_LEGACY_SIZE;
    d0->ecx = max_size; /* bytes for every offered component */
}

/* ---- The CPU model (leaf 1 EAX) ---------------------------------------- */

static unsigned sig_family(uint32_t sig)
{
    unsigned family = (sig >> 8) & 0xf;

    return family == 0xf ? family + ((sig >> 20) & 0xff) : family;
}

static unsigned sig_model(uint32_t sig)
{
    unsigned family = (sig >> 8) & 0xf, model = (sig >> 4) & 0xf;

    if (family == 0x6 || family == 0xf) {
        model |= ((sig >> 16) & 0xf) << 4;
    }
    return model;
}

/* A signature for @family >= 0xf and @model, keeping @sig's stepping,
 * type and reserved bits. */
static uint32_t sig_make(uint32_t sig, unsigned family, unsigned model)
{
    return (sig & 0xf000300f) | (model & 0xf) << 4 | 0xf << 8 |
           (model >> 4) << 16 | (family - 0xf) << 20;
}

/*
 * The guest sees the host's family, model and stepping, so that Linux's
 * errata and MSR code matches the silicon that really runs it, with one
 * exception. For AMD families 0xf (K8) and 0x10 (K10), and family 0x15
 * models 0x00-0x0f, Linux looks for the northbridge's GART at boot
 * (arch/x86/kernel/aperture_64.c, amd_gart_present()): it reads every PCI
 * bus/device/function's config space through ports 0xCF8/0xCFC, two vCPU
 * exits per access, for a device a VM never has. QEMU's TCG `-cpu max`,
 * our rig's L1, is family 0xf model 0x6b.
 *
 * Those parts are presented as family 0x14 (Bobcat) model 2. Linux has no
 * family-specific setup for 0x14 (init_amd() has no case for it, no errata
 * or speculation-bug table lists it, no early MSR writes), so nothing it
 * would do depends on hardware the host lacks. The nearer choice, family
 * 0x15 model 0x10, hangs a guest on TCG: bsp_init_amd() divides by the
 * L1 I-cache associativity from leaf 0x80000005, which TCG reports as 0.
 * And family 0x17 (Zen) would add Zen's speculation mitigations to every
 * kernel return. Intel's signature is never changed: its errata and
 * mitigation tables are keyed by model. The vendor string is always the
 * host's: KVM emulates vendor-specific instructions and MSRs to match the
 * host, not the guest.
 */
#define PRESENTED_FAMILY 0x14
#define PRESENTED_MODEL  0x02

static uint32_t presented_signature(uint32_t sig, bool amd)
{
    unsigned family = sig_family(sig), model = sig_model(sig);

    if (amd &&
        (family == 0xf || family == 0x10 || (family == 0x15 && model < 0x10))) {
        return sig_make(sig, PRESENTED_FAMILY, PRESENTED_MODEL);
    }
    return sig;
}

/* ---- Topology: one socket, N cores, one thread each -------------------- */

/*
 * Threads sharing a cache of @level, minus one (leaf 4 and 0x8000001D
 * EAX[25:14]): L1 and L2 belong to one core (= one thread), L3 to the
 * socket.
 */
static uint32_t cache_sharing(uint32_t eax, unsigned addressable)
{
    unsigned level = (eax >> 5) & 7;

    return level >= 3 ? addressable - 1 : 0;
}

/* Leaf 0xB or 0x1F: an SMT level of one thread, a core level of N. */
static int put_extended_topology(Table *t, unsigned function,
                                 const CpuidConfig *cfg, unsigned core_shift)
{
    const struct kvm_cpuid_entry2 levels[] = {
        {.index = 0,
         .eax = 0, /* no bits of the APIC ID number threads */
         .ebx = 1,
         .ecx = 0 | TOPO_LEVEL_SMT << 8},
        {.index = 1,
         .eax = core_shift,
         .ebx = (uint32_t)cfg->nvcpus,
         .ecx = 1 | TOPO_LEVEL_CORE << 8},
        {.index = 2, .ecx = 2 | TOPO_LEVEL_INVALID << 8},
    };

    for (size_t i = 0; i < ARRAY_SIZE(levels); i++) {
        struct kvm_cpuid_entry2 e = levels[i];
        int ret;

        e.function = function;
        e.flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
        e.edx = (uint32_t)cfg->index; /* the x2APIC ID */
        ret = append(t, &e);
        if (ret < 0) {
            return ret;
        }
    }
    return 0;
}

static int set_topology(Table *t, const CpuidConfig *cfg, bool amd,
                        bool topoext, unsigned max_basic)
{
    unsigned core_shift = order((unsigned)cfg->nvcpus);
    unsigned addressable = 1u << core_shift; /* APIC IDs per socket */
    uint32_t id = (uint32_t)cfg->index;
    struct kvm_cpuid_entry2 *e;
    int ret;

    e = find(t, 1, 0);
    if (e) {
        e->ebx = (e->ebx & 0xffff) | addressable << 16 | id << 24;
        if (cfg->nvcpus > 1) {
            e->edx |= L1_EDX_HTT; /* EBX[23:16] counts more than one */
        } else {
            e->edx &= ~L1_EDX_HTT;
        }
    }
    for (int i = 0; i < t->n; i++) {
        e = &t->e[i];
        if (e->function == 4 && (e->eax & 0x1f) != 0) {
            e->eax = (e->eax & 0x3fff) |
                     cache_sharing(e->eax, addressable) << 14 |
                     (addressable - 1) << 26;
        } else if (e->function == 0x8000001d && (e->eax & 0x1f) != 0) {
            e->eax = (e->eax & ~(0xfffu << 14)) |
                     cache_sharing(e->eax, addressable) << 14;
        }
    }
    ret = put_extended_topology(t, 0xb, cfg, core_shift);
    if (ret == 0 && max_basic >= 0x1f) {
        ret = put_extended_topology(t, 0x1f, cfg, core_shift);
    }
    if (ret < 0 || !amd) {
        return ret;
    }

    e = find(t, 0x80000001, 0);
    if (e) {
        /* CmpLegacy: leaf 1's logical processors are cores, not threads. */
        e->ecx &= ~(X1_ECX_CMP_LEGACY | X1_ECX_TOPOEXT);
        e->ecx |= (cfg->nvcpus > 1 ? X1_ECX_CMP_LEGACY : 0) |
                  (topoext ? X1_ECX_TOPOEXT : 0);
    }
    e = find(t, 0x80000008, 0);
    if (e) {
        /* NC: cores - 1; ApicIdSize: APIC ID bits that number cores. */
        e->ecx = (e->ecx & ~0xffffu) | core_shift << 12 |
                 (uint32_t)(cfg->nvcpus - 1);
    }
    e = find(t, 0x8000001e, 0);
    if (e) {
        e->eax = id; /* extended APIC ID */
        e->ebx = id; /* core (compute unit) ID; one thread per core */
        e->ecx = 0;  /* node 0, one node per socket */
        e->edx = 0;
    }
    return 0;
}

/* ---- Building the table ------------------------------------------------ */

/* Leaves copied from KVM's list, or dropped because we build them, or
 * because we cannot make them consistent with our machine. */
static bool keep_leaf(const struct kvm_cpuid_entry2 *e, uint64_t xcr0,
                      bool topoext)
{
    switch (e->function) {
    case 0xb:
    case 0x1f:
        return false; /* built by set_topology() */
    case 0xd:
        return keep_xsave_leaf(e, xcr0);
    case 0x8000001d:
    case 0x8000001e:
        return topoext;
    case KVM_CPUID_SIGNATURE:
    case KVM_CPUID_FEATURES:
        return true;
    default:
        /* Any other hypervisor leaf (0x40000010's TSC frequency, say)
         * describes a hypervisor we are not. */
        return e->function < 0x40000000 || e->function > 0x4fffffff;
    }
}

/*
 * AMD's TOPOEXT promises leaves 0x8000001D (caches) and 0x8000001E (IDs);
 * keep it only where KVM lists both, since set_topology() rewrites them.
 */
static bool keep_topoext(Table *kvm, bool amd)
{
    struct kvm_cpuid_entry2 *x0 = find(kvm, 0x80000000, 0);
    struct kvm_cpuid_entry2 *x1 = find(kvm, 0x80000001, 0);

    return amd && x0 && x1 && (x1->ecx & X1_ECX_TOPOEXT) &&
           x0->eax >= 0x8000001e && find(kvm, 0x8000001d, 0) &&
           find(kvm, 0x8000001e, 0);
}

static void set_kvm_leaves(Table *t)
{
    struct kvm_cpuid_entry2 *sig = find(t, KVM_CPUID_SIGNATURE, 0);
    struct kvm_cpuid_entry2 *features = find(t, KVM_CPUID_FEATURES, 0);

    if (sig) {
        /* "KVMKVMKVM\0\0\0": Linux looks for it to use kvm-clock. */
        sig->eax = features ? KVM_CPUID_FEATURES : KVM_CPUID_SIGNATURE;
        sig->ebx = 0x4b4d564b;
        sig->ecx = 0x564b4d56;
        sig->edx = 0x0000004d;
    }
    if (features) {
        /*
         * Extended destination IDs put APIC ID bits 8-14 in MSI address
         * bits 11-5, for guests with more than 255 CPUs. Our at most 64
         * vCPUs never need them, and minivmm's interrupt routing was not
         * written for them: do not invite the guest to use them.
         */
        features->eax &= ~BIT(KVM_FEATURE_MSI_EXT_DEST_ID);
    }
}

int cpuid_build(const struct kvm_cpuid_entry2 *in, int nin,
                const CpuidConfig *cfg, struct kvm_cpuid_entry2 *out, int max)
{
    Table t = {.e = out, .n = 0, .max = max}, kvm;
    struct kvm_cpuid_entry2 *e;
    uint64_t xcr0;
    unsigned max_basic = 0;
    bool amd, topoext;
    int ret;

    /* Leaf 4 EAX[31:26] numbers at most 64 cores per socket. */
    if (cfg->nvcpus < 1 || cfg->nvcpus > 64 || cfg->index < 0 ||
        cfg->index >= cfg->nvcpus || nin < 0) {
        return -EINVAL;
    }

    /* The decisions that need KVM's whole list, made on it. A Table only
     * reads through find(), so the const input can be one. */
    kvm = (Table){.e = (struct kvm_cpuid_entry2 *)in, .n = nin, .max = nin};
    amd = is_amd(&kvm);
    topoext = keep_topoext(&kvm, amd);
    xcr0 = offered_xcr0(&kvm, cfg);

    /* Copy, leaving out what we build or cannot make consistent. */
    for (int i = 0; i < nin; i++) {
        if (keep_leaf(&in[i], xcr0, topoext)) {
            ret = append(&t, &in[i]);
            if (ret < 0) {
                return ret;
            }
        }
    }

    e = find(&t, 0, 0);
    if (e) {
        max_basic = e->eax;
        if (e->eax < 0xb) {
            e->eax = 0xb; /* leaf 0xB is always there: we build it */
        }
    }
    e = find(&t, 1, 0);
    if (e) {
        struct kvm_cpuid_entry2 *x1 = find(&t, 0x80000001, 0);

        e->eax = presented_signature(e->eax, amd);
        if (amd && x1) {
            x1->eax = e->eax; /* AMD repeats the signature there */
        }
        /* The hypervisor bit: without it Linux never looks for KVM's
         * leaves, so no kvm-clock and a TSC it must calibrate. */
        e->ecx |= L1_ECX_HYPERVISOR;
        /* KVM emulates the TSC-deadline timer but leaves the bit to us. */
        if (cfg->tsc_deadline) {
            e->ecx |= L1_ECX_TSC_DEADLINE;
        } else {
            e->ecx &= ~L1_ECX_TSC_DEADLINE;
        }
    }
    set_xsave(&t, xcr0);
    ret = set_topology(&t, cfg, amd, topoext, max_basic);
    if (ret < 0) {
        return ret;
    }
    set_kvm_leaves(&t);
    return t.n;
}
