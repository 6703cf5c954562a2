/*
 * The KVM accelerator: a VM with its RAM, the in-kernel interrupt
 * controllers and PIT, vCPU threads, and the two KVM features that let I/O
 * skip the vCPU thread: ioeventfds (a guest write becomes an eventfd write)
 * and irqfds (an eventfd write becomes a guest interrupt).
 *
 * Threads: each vCPU runs KVM_RUN on its own thread and takes the big lock
 * only while it hands an exit to a device (DATAPATH 1). Interrupts may be
 * raised from any thread: the main loop, a vCPU, or an IOThread completing
 * virtio-blk requests without the lock.
 */
#ifndef MINIVMM_VMM_KVM_H
#define MINIVMM_VMM_KVM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devices/address-space.h"
#include "devices/memory.h"
#include "firmware/boot.h"
#include "vmm/msi-routes.h"

#define KVM_MAX_VCPUS      64
#define KVM_IOAPIC_PINS    24
#define KVM_MAX_MSI_ROUTES MSI_ROUTES_MAX
#define KVM_MAX_IOEVENTFDS 256

struct kvm_run;
struct kvm_cpuid2;
struct kvm_msr_list;
struct VirtioPciDevice;

typedef struct KvmVm KvmVm;

typedef struct KvmVcpu {
    KvmVm *vm;
    int index;
    int fd;
    struct kvm_run *run;
    pthread_t thread;
    bool started;
} KvmVcpu;

typedef struct KvmIoeventfd {
    const void *owner; /* the device that asked for it */
    uint64_t gpa;
    int fd;
} KvmIoeventfd;

/* How the machine wants to hear that the guest has ended. */
typedef void KvmExitFn(void *opaque, int status);

struct KvmVm {
    int sys_fd, vm_fd;
    int run_size;              /* of each vCPU's struct kvm_run mapping */
    struct kvm_cpuid2 *cpuid;  /* KVM_GET_SUPPORTED_CPUID, for cpuid_build() */
    bool tsc_deadline;         /* KVM_CAP_TSC_DEADLINE_TIMER */
    bool xsetbv_tracked;       /* kvm_probe_xsetbv() */
    struct kvm_msr_list *msrs; /* KVM_GET_MSR_INDEX_LIST */
    AddressSpace *as;

    KvmVcpu vcpus[KVM_MAX_VCPUS];
    int nvcpus;
    atomic_bool stopping;

    KvmExitFn *exit_fn;
    void *exit_opaque;

    /*
     * MSI routes are added on first use and recycled least recently used
     * first (vmm/msi-routes.h); slot i is GSI KVM_FIRST_MSI_GSI + i with
     * irqfd msi_fd[i]. KVM's table is replaced whole. msi_lock covers both.
     */
    pthread_mutex_t msi_lock;
    MsiRouteTable msi_routes;
    int msi_fd[KVM_MAX_MSI_ROUTES];

    KvmIoeventfd ioeventfds[KVM_MAX_IOEVENTFDS];
    int nioeventfds;
};

/*
 * Open /dev/kvm, check the API version and every capability we rely on,
 * and create the VM with its irqchip and PIT. Returns 0 or -errno with one
 * line in @err saying what is missing.
 */
int kvm_vm_init(KvmVm *vm, char *err, size_t errlen);

/*
 * Run a scratch VM that executes XSETBV and say whether KVM saw it: 1 yes,
 * 0 no (nested under QEMU TCG), -errno when the probe could not run.
 * @supported is KVM's CPUID list (vmm/kvm-probe.c).
 */
int kvm_probe_xsetbv(int sys_fd, const struct kvm_cpuid2 *supported);

/* Give the guest @ram at address 0; exits are dispatched through @as. */
int kvm_vm_map_ram(KvmVm *vm, GuestMemory *ram, AddressSpace *as, char *err,
                   size_t errlen);
void kvm_vm_cleanup(KvmVm *vm);

/* Interrupts, for MachineIrqOps: any thread. */
void kvm_set_irq(void *opaque, int gsi, int level);
void kvm_send_msi(void *opaque, uint64_t addr, uint32_t data);

/* Keep a virtio device's notify addresses registered as ioeventfds. */
void kvm_virtio_notify_hook(void *opaque, struct VirtioPciDevice *d);

/*
 * Create @n vCPUs; vCPU 0 starts in @boot, the others wait for the
 * guest's INIT/SIPI as on real hardware.
 */
int kvm_vcpus_create(KvmVm *vm, int n, const BootCpuState *boot, char *err,
                     size_t errlen);
int kvm_vcpus_start(KvmVm *vm, KvmExitFn *exit_fn, void *opaque);
/* Kick every vCPU out of KVM_RUN and join the threads. Without the BQL. */
void kvm_vcpus_stop(KvmVm *vm);

#endif
