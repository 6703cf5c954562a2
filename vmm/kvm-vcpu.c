/*
 * vCPU threads: each one loops on KVM_RUN and hands every exit to the
 * devices through the address space, holding the big lock only while a
 * device runs. This is where DATAPATH 1 begins for AHCI: the guest's write
 * to PxCI arrives here as a KVM_EXIT_MMIO.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "aio/main-loop.h"
#include "util/compiler.h"
#include "util/exit-status.h"
#include "util/log.h"
#include "util/sandbox.h"
#include "util/trace.h"
#include "vmm/cpuid.h"
#include "vmm/kvm.h"

#define CR0_PE   (1u << 0)
#define CR0_ET   (1u << 4)
#define CR0_PG   (1u << 31)
#define CR4_PAE  (1u << 5)
#define EFER_LME (1u << 8)
#define EFER_LMA (1u << 10)

/* Local APIC LVT registers and delivery modes (for LINT0/LINT1). */
#define APIC_LVT_LINT0   0x350
#define APIC_LVT_LINT1   0x360
#define APIC_MODE_NMI    0x4
#define APIC_MODE_EXTINT 0x7

/* ---- Setup ------------------------------------------------------------ */

/* Each vCPU gets its own CPUID, built from KVM's (vmm/cpuid.c). */
static int set_cpuid(KvmVcpu *cpu, int nvcpus)
{
    KvmVm *vm = cpu->vm;
    int max = (int)vm->cpuid->nent + CPUID_EXTRA_ENTRIES;
    struct kvm_cpuid2 *mine =
        calloc(1, sizeof(*mine) + max * sizeof(mine->entries[0]));
    CpuidConfig cfg = {.nvcpus = nvcpus,
                       .index = cpu->index,
                       .tsc_deadline = vm->tsc_deadline,
                       .xsetbv_tracked = vm->xsetbv_tracked};
    int ret;

    if (!mine) {
        return -ENOMEM;
    }
    ret = cpuid_build(vm->cpuid->entries, (int)vm->cpuid->nent, &cfg,
                      mine->entries, max);
    if (ret >= 0) {
        mine->nent = (unsigned)ret;
        ret = ioctl(cpu->fd, KVM_SET_CPUID2, mine) < 0 ? -errno : 0;
    }
    free(mine);
    return ret;
}

/* ---- MSRs at reset ------------------------------------------------------ */

#define MSR_IA32_TSC            0x00000010
#define MSR_IA32_SYSENTER_CS    0x00000174
#define MSR_IA32_SYSENTER_ESP   0x00000175
#define MSR_IA32_SYSENTER_EIP   0x00000176
#define MSR_IA32_MISC_ENABLE    0x000001a0
#define MSR_STAR                0xc0000081
#define MSR_LSTAR               0xc0000082
#define MSR_CSTAR               0xc0000083
#define MSR_SYSCALL_MASK        0xc0000084
#define MSR_KERNEL_GS_BASE      0xc0000102
#define MISC_ENABLE_FAST_STRING (1ull << 0)

/*
 * What a guest finds in the MSRs at power-on, as firmware leaves them
 * (kvmtool's kvm_cpu__setup_msrs() writes the same set): the SYSENTER and
 * SYSCALL MSRs zero, so no stale entry point exists before the kernel sets
 * its own; the TSC zero, which KVM also takes as "keep the vCPUs' TSCs in
 * step"; and IA32_MISC_ENABLE with fast strings on (rep movs/stos by
 * cache lines), which every BIOS enables. MISC_ENABLE is read first and
 * only that bit added: KVM's reset value marks BTS and PEBS unavailable.
 */
static const uint32_t reset_msrs[] = {
    MSR_IA32_SYSENTER_CS,
    MSR_IA32_SYSENTER_ESP,
    MSR_IA32_SYSENTER_EIP,
    MSR_STAR,
    MSR_CSTAR,
    MSR_KERNEL_GS_BASE,
    MSR_SYSCALL_MASK,
    MSR_LSTAR,
    MSR_IA32_TSC,
    MSR_IA32_MISC_ENABLE,
};

static bool kvm_lists_msr(const struct kvm_msr_list *list, uint32_t index)
{
    for (unsigned i = 0; i < list->nmsrs; i++) {
        if (list->indices[i] == index) {
            return true;
        }
    }
    return false;
}

/*
 * Only MSRs in KVM_GET_MSR_INDEX_LIST are written: the list names the MSRs
 * KVM keeps for a guest on this host, which differ by vendor and kernel.
 * KVM_SET_MSRS stops at the first MSR it refuses and returns how many it
 * set, so a short count names the culprit. @step says which step failed,
 * for the error.
 */
static int set_msrs(KvmVcpu *cpu, char *step, size_t steplen)
{
    struct {
        struct kvm_msrs header;
        struct kvm_msr_entry entries[ARRAY_SIZE(reset_msrs)];
    } msrs = {0};
    struct {
        struct kvm_msrs header;
        struct kvm_msr_entry misc;
    } get = {.header.nmsrs = 1, .misc.index = MSR_IA32_MISC_ENABLE};
    unsigned n = 0;
    int ret;

    for (size_t i = 0; i < ARRAY_SIZE(reset_msrs); i++) {
        uint32_t index = reset_msrs[i];

        if (!kvm_lists_msr(cpu->vm->msrs, index)) {
            continue;
        }
        msrs.entries[n] = (struct kvm_msr_entry){.index = index, .data = 0};
        if (index == MSR_IA32_MISC_ENABLE) {
            snprintf(step, steplen, "KVM_GET_MSRS of IA32_MISC_ENABLE");
            ret = ioctl(cpu->fd, KVM_GET_MSRS, &get);
            if (ret != 1) {
                return ret < 0 ? -errno : -EIO;
            }
            msrs.entries[n].data = get.misc.data | MISC_ENABLE_FAST_STRING;
        }
        n++;
    }
    msrs.header.nmsrs = n;
    snprintf(step, steplen, "KVM_SET_MSRS");
    ret = ioctl(cpu->fd, KVM_SET_MSRS, &msrs);
    if (ret < 0) {
        return -errno;
    }
    if ((unsigned)ret < n) {
        snprintf(step, steplen, "KVM_SET_MSRS of MSR 0x%x",
                 msrs.entries[ret].index);
        return -EINVAL;
    }
    return 0;
}

/* LINT0 as ExtINT (the PIC) and LINT1 as NMI, as a PC BIOS leaves them. */
static int set_lint(KvmVcpu *cpu)
{
    struct kvm_lapic_state lapic;
    uint32_t *lint0 = (uint32_t *)&lapic.regs[APIC_LVT_LINT0];
    uint32_t *lint1 = (uint32_t *)&lapic.regs[APIC_LVT_LINT1];

    if (ioctl(cpu->fd, KVM_GET_LAPIC, &lapic) < 0) {
        return -errno;
    }
    *lint0 = (*lint0 & ~0x700u) | (APIC_MODE_EXTINT << 8);
    *lint1 = (*lint1 & ~0x700u) | (APIC_MODE_NMI << 8);
    return ioctl(cpu->fd, KVM_SET_LAPIC, &lapic) < 0 ? -errno : 0;
}

/* 64-bit mode, paging on, flat segments: the state firmware/ prepared. */
static int set_boot_state(KvmVcpu *cpu, const BootCpuState *b)
{
    struct kvm_segment code = {.base = 0,
                               .limit = 0xffffffff,
                               .selector = b->code_sel,
                               .type = 11, /* execute/read, accessed */
                               .present = 1,
                               .s = 1,
                               .l = 1,
                               .g = 1};
    struct kvm_segment data = code;
    struct kvm_sregs sregs;
    struct kvm_regs regs = {.rflags = 2, /* bit 1 is always set */
                            .rip = b->rip,
                            .rsp = b->rsp,
                            .rsi = b->rsi,
                            .rdi = b->rdi};

    if (ioctl(cpu->fd, KVM_GET_SREGS, &sregs) < 0) {
        return -errno;
    }
    data.selector = b->data_sel;
    data.type = 3; /* read/write, accessed */
    data.l = 0;
    data.db = 1;
    sregs.cs = code;
    sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
    sregs.gdt.base = b->gdt_base;
    sregs.gdt.limit = b->gdt_limit;
    sregs.cr3 = b->cr3;
    sregs.cr4 = CR4_PAE;
    sregs.cr0 = CR0_PE | CR0_ET | CR0_PG;
    sregs.efer = EFER_LME | EFER_LMA;
    if (ioctl(cpu->fd, KVM_SET_SREGS, &sregs) < 0 ||
        ioctl(cpu->fd, KVM_SET_REGS, &regs) < 0) {
        return -errno;
    }
    return 0;
}

int kvm_vcpus_create(KvmVm *vm, int n, const BootCpuState *boot, char *err,
                     size_t errlen)
{
    if (n < 1 || n > KVM_MAX_VCPUS) {
        snprintf(err, errlen, "cannot create %d vCPUs (1..%d)", n,
                 KVM_MAX_VCPUS);
        return -EINVAL;
    }
    for (int i = 0; i < n; i++) {
        KvmVcpu *cpu = &vm->vcpus[i];
        const char *step = "KVM_CREATE_VCPU";
        char msr_step[48];
        int ret;

        *cpu = (KvmVcpu){.vm = vm, .index = i, .fd = -1};
        cpu->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, i);
        ret = cpu->fd < 0 ? -errno : 0;
        if (ret == 0) {
            step = "mapping kvm_run";
            cpu->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE,
                            MAP_SHARED, cpu->fd, 0);
            ret = cpu->run == MAP_FAILED ? -errno : 0;
            if (ret < 0) {
                cpu->run = NULL;
            }
        }
        if (ret == 0) {
            vm->nvcpus = i + 1; /* from here on, cleanup unmaps it */
            step = "KVM_SET_CPUID2";
            ret = set_cpuid(cpu, n);
        }
        if (ret == 0) {
            step = msr_step;
            ret = set_msrs(cpu, msr_step, sizeof(msr_step));
        }
        if (ret == 0) {
            step = "setting LINT0/LINT1";
            ret = set_lint(cpu);
        }
        if (ret == 0 && i == 0) {
            step = "setting the boot registers";
            ret = set_boot_state(cpu, boot);
        }
        if (ret < 0) {
            snprintf(err, errlen, "vCPU %d: %s failed: %s", i, step,
                     strerror(-ret));
            if (cpu->fd >= 0 && !cpu->run) {
                close(cpu->fd);
            }
            return ret;
        }
    }
    return 0;
}

/* ---- Exits ------------------------------------------------------------ */

static void dump_registers(KvmVcpu *cpu, const char *why)
{
    struct kvm_regs r;
    struct kvm_sregs s;

    fprintf(stderr, "minivmm: vCPU %d: %s\n", cpu->index, why);
    if (ioctl(cpu->fd, KVM_GET_REGS, &r) < 0 ||
        ioctl(cpu->fd, KVM_GET_SREGS, &s) < 0) {
        fprintf(stderr, "  (registers unavailable: %s)\n", strerror(errno));
        return;
    }
    fprintf(stderr,
            "  rip %016llx rsp %016llx rflags %08llx\n"
            "  rax %016llx rbx %016llx rcx %016llx rdx %016llx\n"
            "  rsi %016llx rdi %016llx rbp %016llx\n"
            "  cr0 %08llx cr3 %016llx cr4 %08llx efer %08llx\n"
            "  cs %04x (l=%d) ss %04x gdt %016llx/%04x\n",
            r.rip, r.rsp, r.rflags, r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi,
            r.rbp, s.cr0, s.cr3, s.cr4, s.efer, s.cs.selector, s.cs.l,
            s.ss.selector, s.gdt.base, s.gdt.limit);
}

/* DATAPATH 1: port I/O; string instructions bring @count items at once. */
static void handle_io(KvmVcpu *cpu)
{
    struct kvm_run *run = cpu->run;
    uint8_t *data = (uint8_t *)run + run->io.data_offset;
    unsigned size = run->io.size;
    uint64_t id = trace_begin_exit();

    TRACE(VCPU_EXIT, id,
          .a = {1, run->io.port, size * run->io.count,
                run->io.direction == KVM_EXIT_IO_OUT});
    bql_lock();
    for (uint32_t i = 0; i < run->io.count; i++, data += size) {
        uint64_t v = 0;

        if (run->io.direction == KVM_EXIT_IO_OUT) {
            memcpy(&v, data, size);
            as_write(cpu->vm->as, AS_PIO, run->io.port, size, v);
        } else {
            /* Unclaimed ports read as all-ones; Linux probes many. */
            as_read(cpu->vm->as, AS_PIO, run->io.port, size, &v);
            memcpy(data, &v, size);
        }
    }
    bql_unlock();
}

/* DATAPATH 1: an MMIO access outside RAM, e.g. an AHCI register. */
static void handle_mmio(KvmVcpu *cpu)
{
    struct kvm_run *run = cpu->run;
    uint64_t addr = run->mmio.phys_addr;
    unsigned len = run->mmio.len;
    uint64_t v = 0;
    uint64_t id = trace_begin_exit();
    bool claimed;

    TRACE(VCPU_EXIT, id, .a = {0, addr, len, run->mmio.is_write});
    if (len != 1 && len != 2 && len != 4 && len != 8) {
        log_guest_error("kvm: %u-byte MMIO access at 0x%llx ignored", len,
                        (unsigned long long)addr);
        if (!run->mmio.is_write) {
            memset(run->mmio.data, 0xff, sizeof(run->mmio.data));
        }
        return;
    }
    bql_lock();
    if (run->mmio.is_write) {
        memcpy(&v, run->mmio.data, len);
        claimed = as_write(cpu->vm->as, AS_MMIO, addr, len, v);
    } else {
        claimed = as_read(cpu->vm->as, AS_MMIO, addr, len, &v);
        memcpy(run->mmio.data, &v, len);
    }
    bql_unlock();
    if (!claimed) {
        log_guest_error("kvm: MMIO %s of %u bytes at 0x%llx: nothing there",
                        run->mmio.is_write ? "write" : "read", len,
                        (unsigned long long)addr);
    }
}

/*
 * Handle one exit. Returns -1 to keep running, or the exit status the
 * machine should end with (util/exit-status.h).
 */
static int handle_exit(KvmVcpu *cpu)
{
    struct kvm_run *run = cpu->run;

    switch (run->exit_reason) {
    case KVM_EXIT_IO:
        handle_io(cpu);
        return -1;
    case KVM_EXIT_MMIO:
        handle_mmio(cpu);
        return -1;
    case KVM_EXIT_HLT:
        /* With the in-kernel LAPIC, HLT only exits if the guest is done. */
        return EXIT_STATUS_OK;
    case KVM_EXIT_SHUTDOWN:
        /*
         * A triple fault. Linux can reboot this way (reboot=t), but so
         * ends a guest that crashed too badly to say so, and the two
         * cannot be told apart: it counts as a crash. Guests end with
         * poweroff (ACPI) or the i8042 reset.
         */
        dump_registers(cpu, "triple fault (the guest crashed)");
        return EXIT_STATUS_GUEST_CRASH;
    case KVM_EXIT_SYSTEM_EVENT:
        switch (run->system_event.type) {
        case KVM_SYSTEM_EVENT_SHUTDOWN:
        case KVM_SYSTEM_EVENT_RESET:
            return EXIT_STATUS_OK;
        default:
            dump_registers(cpu, "unexpected system event");
            return EXIT_STATUS_KVM_ERROR;
        }
    case KVM_EXIT_INTERNAL_ERROR: {
        static const char *const suberrors[] = {
            [KVM_INTERNAL_ERROR_EMULATION] = " (instruction emulation failed)",
            [KVM_INTERNAL_ERROR_SIMUL_EX] = " (exception while delivering one)",
            [KVM_INTERNAL_ERROR_DELIVERY_EV] = " (event delivery failed)",
        };
        unsigned sub = run->internal.suberror;
        char why[96];

        snprintf(why, sizeof(why), "KVM internal error, suberror %u%s", sub,
                 sub < (unsigned)ARRAY_SIZE(suberrors) && suberrors[sub]
                     ? suberrors[sub]
                     : "");
        dump_registers(cpu, why);
        return EXIT_STATUS_KVM_ERROR;
    }
    case KVM_EXIT_FAIL_ENTRY: {
        char why[96];

        snprintf(
            why, sizeof(why), "VM entry failed, hardware reason 0x%llx",
            (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
        dump_registers(cpu, why);
        return EXIT_STATUS_KVM_ERROR;
    }
    case KVM_EXIT_INTR:
        return -1; /* a signal: the loop checks whether to stop */
    default: {
        char why[48];

        snprintf(why, sizeof(why), "unhandled exit reason %u",
                 run->exit_reason);
        dump_registers(cpu, why);
        return EXIT_STATUS_KVM_ERROR;
    }
    }
}

static void *vcpu_thread(void *opaque)
{
    KvmVcpu *cpu = opaque;
    KvmVm *vm = cpu->vm;
    int status = -1;
    char name[16];

    snprintf(name, sizeof(name), "vcpu%d", cpu->index);
    trace_set_thread_name(name);
    sandbox_enter(SANDBOX_VCPU); /* before the guest's first instruction */
    while (status < 0 && !atomic_load(&vm->stopping)) {
        if (ioctl(cpu->fd, KVM_RUN, 0) < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                continue;
            }
            fprintf(stderr, "minivmm: vCPU %d: KVM_RUN failed: %s\n",
                    cpu->index, strerror(errno));
            status = EXIT_STATUS_VMM_ERROR;
            break;
        }
        status = handle_exit(cpu);
    }
    if (status >= 0) {
        vm->exit_fn(vm->exit_opaque, status);
    }
    return NULL;
}

/* The kick that interrupts KVM_RUN; the handler has nothing to do. */
static void kick_handler(int sig)
{
    (void)sig;
}

int kvm_vcpus_start(KvmVm *vm, KvmExitFn *exit_fn, void *opaque)
{
    struct sigaction sa = {.sa_handler = kick_handler};

    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    vm->exit_fn = exit_fn;
    vm->exit_opaque = opaque;
    for (int i = 0; i < vm->nvcpus; i++) {
        KvmVcpu *cpu = &vm->vcpus[i];
        int ret = pthread_create(&cpu->thread, NULL, vcpu_thread, cpu);

        if (ret != 0) {
            return -ret;
        }
        cpu->started = true;
    }
    return 0;
}

void kvm_vcpus_stop(KvmVm *vm)
{
    atomic_store(&vm->stopping, true);
    for (int i = 0; i < vm->nvcpus; i++) {
        KvmVcpu *cpu = &vm->vcpus[i];

        if (cpu->started) {
            /* immediate_exit covers a kick that lands outside KVM_RUN. */
            cpu->run->immediate_exit = 1;
            pthread_kill(cpu->thread, SIGUSR1);
            pthread_join(cpu->thread, NULL);
            cpu->started = false;
        }
    }
    for (int i = 0; i < vm->nvcpus; i++) {
        munmap(vm->vcpus[i].run, vm->run_size);
        close(vm->vcpus[i].fd);
    }
    vm->nvcpus = 0;
}
