/*
 * Tests of cpuid_build() (vmm/cpuid.c) on synthetic tables shaped like
 * what KVM_GET_SUPPORTED_CPUID returns on an Intel and an AMD host: the
 * topology every leaf reports for 1, 2, 3, 4 and 64 vCPUs (3: not a power
 * of two, so counts and APIC ID widths differ), the bits only a
 * VMM sets, the XSAVE rule, the CPU model, and which leaves are dropped.
 */
#include <check.h>
#include <errno.h>
#include <string.h>

#include "util/compiler.h"
#include "vmm/cpuid.h"
#include "tests/unit/suites.h"

#define SIG  KVM_CPUID_FLAG_SIGNIFCANT_INDEX
#define MAXE 64

/* Leaf 1 bits the tests look at. */
#define TSC_DEADLINE BIT(24)
#define XSAVE        BIT(26)
#define AVX          BIT(28)
#define HYPERVISOR   BIT(31)
#define HTT          BIT(28)
#define AVX2         BIT(5)
#define PKU          BIT(3)
#define CMP_LEGACY   BIT(1)
#define TOPOEXT      BIT(22)
#define BIT(n)       (1u << (n))

/* Fields of a leaf-4 style cache descriptor: type 1..3, level 1..3. */
#define CACHE(type, level) ((type) | (level) << 5)

/* An Intel host: host topology in leaves 1, 4, 0xB, 0x1F; AVX and PKRU. */
static const struct kvm_cpuid_entry2 intel[] = {
    {.function = 0,
     .eax = 0x1f,
     .ebx = 0x756e6547,
     .ecx = 0x6c65746e,
     .edx = 0x49656e69},
    {.function = 1,
     .eax = 0x000906ea,
     .ebx = 0x10100800,
     .ecx = 0x77fafbff & ~(HYPERVISOR | TSC_DEADLINE),
     .edx = 0xbfebfbff},
    {.function = 4, .index = 0, .flags = SIG, .eax = 0x1c004000 | CACHE(1, 1)},
    {.function = 4, .index = 1, .flags = SIG, .eax = 0x1c004000 | CACHE(2, 1)},
    {.function = 4, .index = 2, .flags = SIG, .eax = 0x1c004000 | CACHE(3, 2)},
    {.function = 4, .index = 3, .flags = SIG, .eax = 0x1c03c000 | CACHE(3, 3)},
    {.function = 4, .index = 4, .flags = SIG},
    {.function = 7,
     .index = 0,
     .flags = SIG,
     .ebx = 0x029c6fbf | AVX2,
     .ecx = PKU},
    {.function = 0xb,
     .index = 0,
     .flags = SIG,
     .eax = 1,
     .ebx = 2,
     .ecx = 0x100,
     .edx = 7},
    {.function = 0xb,
     .index = 1,
     .flags = SIG,
     .eax = 4,
     .ebx = 16,
     .ecx = 0x201,
     .edx = 7},
    {.function = 0xd,
     .index = 0,
     .flags = SIG,
     .eax = 0x207,
     .ebx = 0xa88,
     .ecx = 0xa88},
    {.function = 0xd, .index = 1, .flags = SIG, .eax = 0xf},
    {.function = 0xd, .index = 2, .flags = SIG, .eax = 256, .ebx = 576},
    {.function = 0xd, .index = 9, .flags = SIG, .eax = 8, .ebx = 2688},
    {.function = 0x1f,
     .index = 0,
     .flags = SIG,
     .eax = 1,
     .ebx = 2,
     .ecx = 0x100,
     .edx = 7},
    {.function = 0x40000000, .eax = 0x40000001},
    {.function = 0x40000001, .eax = 0x0100fefb},
    {.function = 0x40000010, .eax = 2500000}, /* not KVM's: dropped */
    {.function = 0x80000000, .eax = 0x80000008},
    {.function = 0x80000001, .ecx = 0x121, .edx = 0x2c100800},
    {.function = 0x80000008, .eax = 0x3027},
};

/* An AMD host (Zen 3): TOPOEXT with leaves 0x8000001D/E, host topology in
 * 0x80000008 ECX. Its basic leaves end at 0xD and it has no leaf 0xB: ours
 * is added. */
static const struct kvm_cpuid_entry2 amd[] = {
    {.function = 0,
     .eax = 0xd,
     .ebx = 0x68747541,
     .ecx = 0x444d4163,
     .edx = 0x69746e65},
    {.function = 1,
     .eax = 0x00a00f11,
     .ebx = 0x3f200800,
     .ecx = 0x7ed8320b & ~HYPERVISOR,
     .edx = 0x178bfbff},
    {.function = 7,
     .index = 0,
     .flags = SIG,
     .ebx = 0x219c97a9 | AVX2,
     .ecx = PKU},
    {.function = 0xd,
     .index = 0,
     .flags = SIG,
     .eax = 0x207,
     .ebx = 0xa88,
     .ecx = 0xa88},
    {.function = 0xd, .index = 1, .flags = SIG, .eax = 0xf},
    {.function = 0xd, .index = 2, .flags = SIG, .eax = 256, .ebx = 576},
    {.function = 0xd, .index = 9, .flags = SIG, .eax = 8, .ebx = 2688},
    {.function = 0x40000000, .eax = 0x40000001},
    {.function = 0x40000001, .eax = 0x0100fefb},
    {.function = 0x80000000, .eax = 0x80000023},
    {.function = 0x80000001,
     .eax = 0x00a00f11,
     .ecx = 0x75c237ff | CMP_LEGACY | TOPOEXT,
     .edx = 0x2fd3fbff},
    {.function = 0x80000008, .eax = 0x3030, .ecx = 0x0000703f},
    {.function = 0x8000001d,
     .index = 0,
     .flags = SIG,
     .eax = 0x00004000 | CACHE(1, 1)},
    {.function = 0x8000001d,
     .index = 1,
     .flags = SIG,
     .eax = 0x00004000 | CACHE(2, 1)},
    {.function = 0x8000001d,
     .index = 2,
     .flags = SIG,
     .eax = 0x00004000 | CACHE(3, 2)},
    {.function = 0x8000001d,
     .index = 3,
     .flags = SIG,
     .eax = 0x0003c000 | CACHE(3, 3)},
    {.function = 0x8000001d, .index = 4, .flags = SIG},
    {.function = 0x8000001e, .eax = 0xe, .ebx = 0x107, .ecx = 0x100},
};

static struct kvm_cpuid_entry2 out[MAXE];
static int nout;

static void build(const struct kvm_cpuid_entry2 *in, int nin,
                  const CpuidConfig *cfg)
{
    memset(out, 0xa5, sizeof(out));
    nout = cpuid_build(in, nin, cfg, out, MAXE);
    ck_assert_int_gt(nout, 0);
}

#define BUILD(table, ...)                                                      \
    build(table, ARRAY_SIZE(table), &(CpuidConfig){__VA_ARGS__})

static struct kvm_cpuid_entry2 *get(unsigned function, unsigned index)
{
    struct kvm_cpuid_entry2 *e = cpuid_find(out, nout, function, index);

    ck_assert_msg(e, "no leaf 0x%x.%u", function, index);
    return e;
}

static bool has(unsigned function, unsigned index)
{
    return cpuid_find(out, nout, function, index) != NULL;
}

static unsigned order(unsigned n)
{
    unsigned s = 0;

    while ((1u << s) < n) {
        s++;
    }
    return s;
}

static const int vcpu_counts[] = {1, 2, 3, 4, 64};

/* What every vendor's leaves 1 and 0xB must say for N vCPUs, vCPU i. */
static void check_common_topology(int n, int i)
{
    unsigned shift = order(n);
    struct kvm_cpuid_entry2 *l1 = get(1, 0);

    ck_assert_uint_eq(l1->ebx >> 24, (unsigned)i);
    ck_assert_uint_eq((l1->ebx >> 16) & 0xff, 1u << shift);
    ck_assert_uint_eq(!!(l1->edx & HTT), n > 1);
    ck_assert_uint_ge(get(0, 0)->eax, 0xb);

    /* 0xB: SMT level of one thread, core level of N, then the end. */
    ck_assert_uint_eq(get(0xb, 0)->eax & 0x1f, 0);
    ck_assert_uint_eq(get(0xb, 0)->ebx & 0xffff, 1);
    ck_assert_uint_eq(get(0xb, 0)->ecx, 0x100);
    ck_assert_uint_eq(get(0xb, 1)->eax & 0x1f, shift);
    ck_assert_uint_eq(get(0xb, 1)->ebx & 0xffff, (unsigned)n);
    ck_assert_uint_eq(get(0xb, 1)->ecx, 0x201);
    ck_assert_uint_eq(get(0xb, 2)->ecx, 2);
    ck_assert_uint_eq(get(0xb, 2)->ebx, 0);
    for (unsigned s = 0; s < 3; s++) {
        ck_assert_uint_eq(get(0xb, s)->edx, (unsigned)i);
    }
    /* The APIC ID fits the bits the topology reserves for it. */
    ck_assert_uint_lt((unsigned)i, 1u << shift);
}

START_TEST(intel_topology)
{
    for (size_t k = 0; k < ARRAY_SIZE(vcpu_counts); k++) {
        int n = vcpu_counts[k];
        unsigned shift = order(n);

        for (int i = 0; i<n; i += n> 2 ? n - 1 : 1) {
            BUILD(intel, .nvcpus = n, .index = i);
            check_common_topology(n, i);
            /* Leaf 4: cores per socket; L1/L2 per core, L3 per socket. */
            for (unsigned s = 0; s < 4; s++) {
                uint32_t eax = get(4, s)->eax;
                unsigned sharing = ((eax >> 5) & 7) == 3 ? (1u << shift) : 1;

                ck_assert_uint_eq(eax >> 26, (1u << shift) - 1);
                ck_assert_uint_eq(((eax >> 14) & 0xfff) + 1, sharing);
                ck_assert_uint_eq(eax & 0x3fff, intel[2 + s].eax & 0x3fff);
            }
            ck_assert_uint_eq(get(4, 4)->eax, 0);
            /* 0x1F mirrors 0xB: KVM listed 0x1F, so Linux will read it. */
            for (unsigned s = 0; s < 3; s++) {
                ck_assert_mem_eq(&get(0x1f, s)->eax, &get(0xb, s)->eax,
                                 4 * sizeof(uint32_t));
            }
            ck_assert(!has(0x1f, 3) && !has(0xb, 3));
            /* Intel's 0x80000008 ECX is reserved: left alone. */
            ck_assert_uint_eq(get(0x80000008, 0)->ecx, 0);
        }
    }
}
END_TEST

START_TEST(amd_topology)
{
    for (size_t k = 0; k < ARRAY_SIZE(vcpu_counts); k++) {
        int n = vcpu_counts[k];
        unsigned shift = order(n);

        for (int i = 0; i<n; i += n> 2 ? n - 1 : 1) {
            struct kvm_cpuid_entry2 *x8, *x1e;

            BUILD(amd, .nvcpus = n, .index = i);
            check_common_topology(n, i);
            ck_assert(!has(0x1f, 0)); /* beyond AMD's max basic leaf */
            ck_assert_uint_eq(!!(get(0x80000001, 0)->ecx & CMP_LEGACY), n > 1);
            ck_assert(get(0x80000001, 0)->ecx & TOPOEXT);
            x8 = get(0x80000008, 0);
            ck_assert_uint_eq(x8->ecx & 0xff, (unsigned)n - 1);
            ck_assert_uint_eq((x8->ecx >> 12) & 0xf, shift);
            x1e = get(0x8000001e, 0);
            ck_assert_uint_eq(x1e->eax, (unsigned)i);
            ck_assert_uint_eq(x1e->ebx & 0xff, (unsigned)i);
            ck_assert_uint_eq((x1e->ebx >> 8) & 0xff, 0); /* 1 thread */
            ck_assert_uint_eq(x1e->ecx & 0x7ff, 0);       /* node 0 of 1 */
            for (unsigned s = 0; s < 4; s++) {
                uint32_t eax = get(0x8000001d, s)->eax;
                unsigned sharing = ((eax >> 5) & 7) == 3 ? (1u << shift) : 1;

                ck_assert_uint_eq(((eax >> 14) & 0xfff) + 1, sharing);
            }
        }
    }
}
END_TEST

/* Without leaves 0x8000001D/E, TOPOEXT would promise what is not there. */
START_TEST(amd_topoext_needs_its_leaves)
{
    struct kvm_cpuid_entry2 t[ARRAY_SIZE(amd)];
    int n = 0;

    for (size_t i = 0; i < ARRAY_SIZE(amd); i++) {
        if (amd[i].function != 0x8000001e) {
            t[n++] = amd[i];
        }
    }
    build(t, n, &(CpuidConfig){.nvcpus = 2, .index = 1});
    ck_assert(!(get(0x80000001, 0)->ecx & TOPOEXT));
    ck_assert(!has(0x8000001d, 0) && !has(0x8000001e, 0));
}
END_TEST

/* A host whose basic leaves end before 0xB: ours must still be reachable. */
START_TEST(leaf_0xb_reachable)
{
    struct kvm_cpuid_entry2 t[ARRAY_SIZE(amd)];

    memcpy(t, amd, sizeof(t));
    t[0].eax = 7;
    build(t, ARRAY_SIZE(t), &(CpuidConfig){.nvcpus = 2, .index = 1});
    ck_assert_uint_eq(get(0, 0)->eax, 0xb);
    ck_assert_uint_eq(get(0xb, 1)->edx, 1);
}
END_TEST

START_TEST(tsc_deadline_only_with_the_cap)
{
    BUILD(intel, .nvcpus = 1, .index = 0);
    ck_assert(!(get(1, 0)->ecx & TSC_DEADLINE));
    BUILD(intel, .nvcpus = 1, .index = 0, .tsc_deadline = true);
    ck_assert(get(1, 0)->ecx & TSC_DEADLINE);
}
END_TEST

START_TEST(hypervisor_and_kvm_leaves)
{
    BUILD(amd, .nvcpus = 1, .index = 0);
    ck_assert(get(1, 0)->ecx & HYPERVISOR);
    ck_assert_uint_eq(get(0x40000000, 0)->eax, 0x40000001);
    ck_assert_mem_eq(&get(0x40000000, 0)->ebx, "KVMKVMKVM\0\0\0", 12);
    /* KVM's features, less extended destination IDs. */
    ck_assert_uint_eq(get(0x40000001, 0)->eax, 0x0100fefb & ~BIT(15));
}
END_TEST

START_TEST(leaves_kept_and_dropped)
{
    BUILD(intel, .nvcpus = 4, .index = 0, .xsetbv_tracked = true);
    ck_assert(!has(0x40000010, 0));
    /* KVM's other leaves are passed on as they were. */
    ck_assert_uint_eq(get(0x80000000, 0)->eax, 0x80000008);
    ck_assert_uint_eq(get(0x80000001, 0)->edx, 0x2c100800);
    /* ... less MPX (bit 14): KVM listed no subleaves for its state. */
    ck_assert_uint_eq(get(7, 0)->ebx, (0x029c6fbf | AVX2) & ~BIT(14));
    ck_assert_uint_eq(get(1, 0)->edx & ~HTT, 0xbfebfbff & ~HTT);
    /* Each leaf once: ours replaced the host's 0xB and 0x1F. */
    for (int i = 0; i < nout; i++) {
        for (int j = i + 1; j < nout; j++) {
            ck_assert(out[i].function != out[j].function ||
                      out[i].index != out[j].index);
        }
    }
}
END_TEST

START_TEST(xsave_when_kvm_tracks_xcr0)
{
    BUILD(intel, .nvcpus = 1, .index = 0, .xsetbv_tracked = true);
    ck_assert_uint_eq(get(0xd, 0)->eax, 0x207);
    ck_assert_uint_eq(get(0xd, 0)->ebx, 576);  /* for XCR0 = x87 */
    ck_assert_uint_eq(get(0xd, 0)->ecx, 2696); /* PKRU ends the area */
    ck_assert(has(0xd, 2) && has(0xd, 9));
    ck_assert(get(1, 0)->ecx & (XSAVE | AVX));
    ck_assert(get(7, 0)->ecx & PKU);
}
END_TEST

/* A component whose subleaf describes no area is not offered, nor its
 * feature: the guest's sum of the subleaves must match what KVM reports. */
START_TEST(xsave_drops_a_component_without_an_area)
{
    struct kvm_cpuid_entry2 t[ARRAY_SIZE(intel)];

    memcpy(t, intel, sizeof(t));
    for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
        if (t[i].function == 0xd && t[i].index == 9) {
            t[i].eax = 0; /* PKRU: size 0 */
        }
    }
    build(t, ARRAY_SIZE(t), &(CpuidConfig){.nvcpus = 1, .xsetbv_tracked = 1});
    ck_assert_uint_eq(get(0xd, 0)->eax, 0x7);
    ck_assert_uint_eq(get(0xd, 0)->ecx, 832);
    ck_assert(!has(0xd, 9));
    ck_assert(!(get(7, 0)->ecx & PKU));
    ck_assert(get(1, 0)->ecx & AVX);
}
END_TEST

/* Where KVM does not see XSETBV (nested under TCG), no XSAVE at all. */
START_TEST(no_xsave_when_kvm_misses_xsetbv)
{
    BUILD(amd, .nvcpus = 2, .index = 0, .xsetbv_tracked = false);
    ck_assert(!has(0xd, 0) && !has(0xd, 1) && !has(0xd, 2));
    ck_assert(!(get(1, 0)->ecx & (XSAVE | AVX)));
    ck_assert(!(get(7, 0)->ebx & AVX2));
    ck_assert(!(get(7, 0)->ecx & PKU));
}
END_TEST

static unsigned family(uint32_t sig)
{
    unsigned f = (sig >> 8) & 0xf;

    return f == 0xf ? f + ((sig >> 20) & 0xff) : f;
}

static unsigned model(uint32_t sig)
{
    return ((sig >> 4) & 0xf) | ((sig >> 16) & 0xf) << 4;
}

/* Present @sig on an AMD table; return leaf 1 EAX. */
static uint32_t amd_presented(uint32_t sig)
{
    struct kvm_cpuid_entry2 t[ARRAY_SIZE(amd)];

    memcpy(t, amd, sizeof(t));
    t[1].eax = sig;
    build(t, ARRAY_SIZE(t), &(CpuidConfig){.nvcpus = 1});
    ck_assert_uint_eq(get(0x80000001, 0)->eax, get(1, 0)->eax);
    return get(1, 0)->eax;
}

/* The GART-era AMD parts (Linux's amd_gart_present()) are presented as
 * family 0x14 model 2 with their stepping; everything else unchanged. */
START_TEST(cpu_model)
{
    static const uint32_t gart_era[] = {
        0x00060fb1, /* QEMU TCG -cpu max: family 0xf model 0x6b */
        0x00100f42, /* family 0x10 */
        0x00600f12, /* family 0x15 model 0x01 */
        0x00600f81, /* family 0x15 model 0x08 */
    };
    static const uint32_t kept[] = {
        0x00610f01, /* family 0x15 model 0x10 */
        0x00a00f11, /* family 0x19 */
        0x00800f82, /* family 0x17 */
    };

    for (size_t i = 0; i < ARRAY_SIZE(gart_era); i++) {
        uint32_t sig = amd_presented(gart_era[i]);

        ck_assert_uint_eq(family(sig), 0x14);
        ck_assert_uint_eq(model(sig), 0x02);
        ck_assert_uint_eq(sig & 0xf, gart_era[i] & 0xf);
    }
    for (size_t i = 0; i < ARRAY_SIZE(kept); i++) {
        ck_assert_uint_eq(amd_presented(kept[i]), kept[i]);
    }
    /* Intel: never changed, even for a family-0xf signature. */
    BUILD(intel, .nvcpus = 1);
    ck_assert_uint_eq(get(1, 0)->eax, 0x000906ea);
}
END_TEST

START_TEST(output_too_small)
{
    CpuidConfig cfg = {.nvcpus = 2, .index = 1};

    ck_assert_int_eq(cpuid_build(intel, ARRAY_SIZE(intel), &cfg, out, 4),
                     -ENOSPC);
    /* Room for the input but not for the added 0xB/0x1F leaves. */
    ck_assert_int_eq(
        cpuid_build(intel, ARRAY_SIZE(intel), &cfg, out, ARRAY_SIZE(intel) - 4),
        -ENOSPC);
    /* The promised bound is enough. */
    ck_assert_int_gt(cpuid_build(intel, ARRAY_SIZE(intel), &cfg, out,
                                 ARRAY_SIZE(intel) + CPUID_EXTRA_ENTRIES),
                     0);
    ck_assert_int_gt(cpuid_build(amd, ARRAY_SIZE(amd), &cfg, out,
                                 ARRAY_SIZE(amd) + CPUID_EXTRA_ENTRIES),
                     0);
}
END_TEST

START_TEST(bad_config)
{
    ck_assert_int_eq(cpuid_build(intel, ARRAY_SIZE(intel),
                                 &(CpuidConfig){.nvcpus = 0}, out, MAXE),
                     -EINVAL);
    ck_assert_int_eq(cpuid_build(intel, ARRAY_SIZE(intel),
                                 &(CpuidConfig){.nvcpus = 65}, out, MAXE),
                     -EINVAL);
    ck_assert_int_eq(cpuid_build(intel, ARRAY_SIZE(intel),
                                 &(CpuidConfig){.nvcpus = 2, .index = 2}, out,
                                 MAXE),
                     -EINVAL);
}
END_TEST

Suite *cpuid_suite(void)
{
    Suite *s = suite_create("cpuid");
    TCase *tc = tcase_create("build");

    tcase_add_test(tc, intel_topology);
    tcase_add_test(tc, amd_topology);
    tcase_add_test(tc, amd_topoext_needs_its_leaves);
    tcase_add_test(tc, leaf_0xb_reachable);
    tcase_add_test(tc, tsc_deadline_only_with_the_cap);
    tcase_add_test(tc, hypervisor_and_kvm_leaves);
    tcase_add_test(tc, leaves_kept_and_dropped);
    tcase_add_test(tc, xsave_when_kvm_tracks_xcr0);
    tcase_add_test(tc, xsave_drops_a_component_without_an_area);
    tcase_add_test(tc, no_xsave_when_kvm_misses_xsetbv);
    tcase_add_test(tc, cpu_model);
    tcase_add_test(tc, output_too_small);
    tcase_add_test(tc, bad_config);
    suite_add_tcase(s, tc);
    return s;
}
