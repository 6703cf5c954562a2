/*
 * Finding out what KVM really does, where no capability says it.
 *
 * One question so far: does KVM see the guest's XSETBV? On hardware it
 * always does (SVM and VMX both intercept the instruction). Nested under
 * QEMU TCG, whose SVM model never intercepts it, it does not, and XSAVE
 * cannot work in the guest (vmm/cpuid.c, offered_xcr0()). The only way to
 * know is to run one: a scratch VM with one vCPU in real mode executes
 *     xor %ecx,%ecx; xor %edx,%edx; mov $3,%eax; xsetbv; hlt
 * and KVM_GET_XCRS tells whether KVM's XCR0 became 3 (x87 | SSE).
 */
#include <errno.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmm/kvm.h"

#define PROBE_ADDR  0x1000
#define PROBE_SIZE  0x1000
#define CR4_OSXSAVE (1u << 18)

static const unsigned char xsetbv_code[] = {
    0x66, 0x31, 0xc9,                   /* xor %ecx, %ecx: XCR0 */
    0x66, 0x31, 0xd2,                   /* xor %edx, %edx */
    0x66, 0xb8, 0x03, 0x00, 0x00, 0x00, /* mov $3, %eax: x87 | SSE */
    0x0f, 0x01, 0xd1,                   /* xsetbv */
    0xf4,                               /* hlt */
};

/* Run the probe on @vcpu (fd) whose RAM holds the code. 1, 0 or -errno. */
static int run_probe(int sys_fd, int vcpu, const struct kvm_cpuid2 *cpuid)
{
    struct kvm_sregs sregs;
    struct kvm_regs regs = {.rip = PROBE_ADDR, .rflags = 2};
    struct kvm_xcrs xcrs;
    struct kvm_run *run;
    int run_size = ioctl(sys_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    int ret;

    if (run_size <= 0) {
        return -errno;
    }
    run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
    if (run == MAP_FAILED) {
        return -errno;
    }
    /* CR4.OSXSAVE needs XSAVE in the guest's CPUID: KVM's list has it. */
    ret = ioctl(vcpu, KVM_SET_CPUID2, cpuid) < 0 ? -errno : 0;
    if (ret == 0 && ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0) {
        ret = -errno;
    }
    if (ret == 0) {
        sregs.cs.base = 0;
        sregs.cs.selector = 0;
        sregs.cr4 |= CR4_OSXSAVE;
        if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0 ||
            ioctl(vcpu, KVM_SET_REGS, &regs) < 0) {
            ret = -errno;
        }
    }
    while (ret == 0 && ioctl(vcpu, KVM_RUN, 0) < 0) {
        if (errno != EINTR) {
            ret = -errno;
        }
    }
    /* Without an in-kernel irqchip, HLT comes back to us. */
    if (ret == 0 && run->exit_reason != KVM_EXIT_HLT) {
        ret = -EIO;
    }
    if (ret == 0 && ioctl(vcpu, KVM_GET_XCRS, &xcrs) < 0) {
        ret = -errno;
    }
    for (unsigned i = 0; ret == 0 && i < xcrs.nr_xcrs; i++) {
        if (xcrs.xcrs[i].xcr == 0 && xcrs.xcrs[i].value == 3) {
            ret = 1; /* KVM saw the XSETBV */
        }
    }
    munmap(run, run_size);
    return ret;
}

int kvm_probe_xsetbv(int sys_fd, const struct kvm_cpuid2 *supported)
{
    struct kvm_userspace_memory_region slot;
    void *ram;
    int vm, vcpu = -1, ret;

    vm = ioctl(sys_fd, KVM_CREATE_VM, 0);
    if (vm < 0) {
        return -errno;
    }
    ram = mmap(NULL, PROBE_SIZE, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (ram == MAP_FAILED) {
        ret = -errno;
        close(vm);
        return ret;
    }
    memcpy(ram, xsetbv_code, sizeof(xsetbv_code));
    slot =
        (struct kvm_userspace_memory_region){.guest_phys_addr = PROBE_ADDR,
                                             .memory_size = PROBE_SIZE,
                                             .userspace_addr = (uintptr_t)ram};
    ret = ioctl(vm, KVM_SET_USER_MEMORY_REGION, &slot) < 0 ? -errno : 0;
    if (ret == 0) {
        vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
        ret = vcpu < 0 ? -errno : run_probe(sys_fd, vcpu, supported);
    }
    if (vcpu >= 0) {
        close(vcpu);
    }
    close(vm);
    munmap(ram, PROBE_SIZE);
    return ret;
}
