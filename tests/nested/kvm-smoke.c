/*
 * kvm-smoke: the smallest proof that /dev/kvm works where we run.
 *
 * One VM, one vCPU in real mode, one 4 KiB page of RAM holding
 *     mov $0x2a, %al; out %al, $0xf4; hlt
 * The run must exit with KVM_EXIT_IO (a 1-byte OUT of 0x2a to port 0xf4),
 * then KVM_EXIT_HLT. Built static so that it runs in the nested harness's L1
 * (scripts/nested.sh), whose initramfs has no libraries.
 *
 * Prints "kvm-smoke: ok" and exits 0, or one line saying what went wrong and
 * exits 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <linux/kvm.h>

#define GUEST_ADDR 0x1000
#define GUEST_SIZE 0x1000
#define EXIT_PORT  0xf4
#define EXIT_VALUE 0x2a

static const uint8_t guest_code[] = {
    0xb0, EXIT_VALUE, /* mov $0x2a, %al */
    0xe6, EXIT_PORT,  /* out %al, $0xf4 */
    0xf4,             /* hlt */
};

static int fail(const char *what)
{
    fprintf(stderr, "kvm-smoke: FAIL %s: %s\n", what, strerror(errno));
    return 1;
}

static int fail_exit(const char *expected, const struct kvm_run *run)
{
    fprintf(stderr, "kvm-smoke: FAIL expected %s, got exit reason %u\n",
            expected, run->exit_reason);
    if (run->exit_reason == KVM_EXIT_FAIL_ENTRY) {
        fprintf(
            stderr, "kvm-smoke: hardware entry failure reason 0x%llx\n",
            (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
    }
    return 1;
}

static double now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* KVM_RUN, retried when a signal interrupts it. */
static int run_vcpu(int vcpu)
{
    int r;

    do {
        r = ioctl(vcpu, KVM_RUN, 0);
    } while (r < 0 && errno == EINTR);
    return r;
}

static int smoke(void)
{
    struct kvm_userspace_memory_region region;
    struct kvm_sregs sregs;
    struct kvm_regs regs;
    struct kvm_run *run;
    uint8_t *mem, *data;
    int kvm, vm, vcpu, api, run_size;
    double t0 = now_ms();

    /* The fds and mappings live until exit: the kernel reclaims them. */
    kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0) {
        return fail("open /dev/kvm");
    }
    api = ioctl(kvm, KVM_GET_API_VERSION, 0);
    if (api != KVM_API_VERSION) {
        fprintf(stderr, "kvm-smoke: FAIL KVM_GET_API_VERSION = %d, want %d\n",
                api, KVM_API_VERSION);
        return 1;
    }
    vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm < 0) {
        return fail("KVM_CREATE_VM");
    }

    mem = mmap(NULL, GUEST_SIZE, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        return fail("mmap guest RAM");
    }
    memcpy(mem, guest_code, sizeof(guest_code));
    region = (struct kvm_userspace_memory_region){
        .slot = 0,
        .guest_phys_addr = GUEST_ADDR,
        .memory_size = GUEST_SIZE,
        .userspace_addr = (uintptr_t)mem,
    };
    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
        return fail("KVM_SET_USER_MEMORY_REGION");
    }

    vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
    if (vcpu < 0) {
        return fail("KVM_CREATE_VCPU");
    }
    run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (run_size < (int)sizeof(*run)) {
        return fail("KVM_GET_VCPU_MMAP_SIZE");
    }
    run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
    if (run == MAP_FAILED) {
        return fail("mmap kvm_run");
    }

    /* Real mode, flat: CS base 0 so that IP is the guest address. */
    if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0) {
        return fail("KVM_GET_SREGS");
    }
    sregs.cs.base = 0;
    sregs.cs.selector = 0;
    if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0) {
        return fail("KVM_SET_SREGS");
    }
    regs = (struct kvm_regs){.rip = GUEST_ADDR, .rflags = 0x2};
    if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0) {
        return fail("KVM_SET_REGS");
    }

    if (run_vcpu(vcpu) < 0) {
        return fail("KVM_RUN (first)");
    }
    if (run->exit_reason != KVM_EXIT_IO) {
        return fail_exit("KVM_EXIT_IO", run);
    }
    data = (uint8_t *)run + run->io.data_offset;
    if (run->io.direction != KVM_EXIT_IO_OUT || run->io.port != EXIT_PORT ||
        run->io.size != 1 || run->io.count != 1 || *data != EXIT_VALUE) {
        fprintf(stderr,
                "kvm-smoke: FAIL expected OUT 0x%x to port 0x%x, got "
                "direction %u port 0x%x size %u count %u value 0x%x\n",
                EXIT_VALUE, EXIT_PORT, run->io.direction, run->io.port,
                run->io.size, run->io.count, *data);
        return 1;
    }

    if (run_vcpu(vcpu) < 0) {
        return fail("KVM_RUN (second)");
    }
    if (run->exit_reason != KVM_EXIT_HLT) {
        return fail_exit("KVM_EXIT_HLT", run);
    }

    printf("kvm-smoke: api %d, OUT 0x%x to port 0x%x then HLT, %.1f ms\n", api,
           EXIT_VALUE, EXIT_PORT, now_ms() - t0);
    printf("kvm-smoke: ok\n");
    return 0;
}

int main(void)
{
    return smoke();
}
