/*
 * The VM: /dev/kvm, guest RAM, the in-kernel irqchip and PIT, interrupt
 * delivery (IOAPIC lines, MSI routes with irqfds) and virtio ioeventfds.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "devices/virtio-pci.h"
#include "util/compiler.h"
#include "util/log.h"
#include "util/trace.h"
#include "vmm/cpuid.h"
#include "vmm/kvm.h"

/* Where KVM (on Intel) keeps its real-mode TSS and identity page. */
#define KVM_TSS_ADDR          0xfffbd000
#define KVM_IDENTITY_MAP_ADDR 0xfffbc000
#define KVM_FIRST_MSI_GSI     KVM_IOAPIC_PINS
/* KVM_GET_SUPPORTED_CPUID: the first guess, and the most we ever try. */
#define CPUID_ENTRIES_FIRST 128
#define CPUID_ENTRIES_MAX   4096
#define CPUID_LEAF1_XSAVE   (1u << 26)

static const struct {
    int cap;
    const char *name;
} required_caps[] = {
    {KVM_CAP_IRQCHIP, "IRQCHIP (in-kernel interrupt controllers)"},
    {KVM_CAP_IOEVENTFD, "IOEVENTFD"},
    {KVM_CAP_IRQFD, "IRQFD"},
    {KVM_CAP_IRQ_ROUTING, "IRQ_ROUTING"},
    {KVM_CAP_USER_MEMORY, "USER_MEMORY"},
    {KVM_CAP_PIT2, "PIT2 (in-kernel PIT)"},
    {KVM_CAP_SIGNAL_MSI, "SIGNAL_MSI"},
    {KVM_CAP_EXT_CPUID, "EXT_CPUID"},
    {KVM_CAP_IMMEDIATE_EXIT, "IMMEDIATE_EXIT (kvm_run.immediate_exit)"},
    {KVM_CAP_SET_TSS_ADDR, "SET_TSS_ADDR"},
    {KVM_CAP_SET_IDENTITY_MAP_ADDR, "SET_IDENTITY_MAP_ADDR"},
};

/*
 * kvm_pvm is KVM without hardware virtualisation: it runs guest kernels
 * built for it, and emulates any other guest one instruction at a time (a
 * stock kernel does not get past decompressing itself). Worth a warning,
 * not a refusal: the user may have such a kernel.
 */
static void warn_if_software_kvm(void)
{
    if (access("/sys/module/kvm_pvm", F_OK) == 0 &&
        access("/sys/module/kvm_intel", F_OK) != 0 &&
        access("/sys/module/kvm_amd", F_OK) != 0) {
        log_warn("/dev/kvm is kvm_pvm, not kvm_intel or kvm_amd: a guest "
                 "kernel built without PVM support runs emulated, one "
                 "instruction at a time, if at all");
    }
}

static int check_kvm(KvmVm *vm, char *err, size_t errlen)
{
    int version;

    vm->sys_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (vm->sys_fd < 0) {
        int ret = -errno;

        snprintf(err, errlen, "cannot open /dev/kvm: %s%s", strerror(errno),
                 errno == ENOENT ? " (no KVM here: load kvm-intel or kvm-amd, "
                                   "or use the nested harness)"
                                 : "");
        return ret;
    }
    version = ioctl(vm->sys_fd, KVM_GET_API_VERSION, 0);
    if (version != KVM_API_VERSION) {
        snprintf(err, errlen, "/dev/kvm speaks KVM API version %d, not %d",
                 version, KVM_API_VERSION);
        return -EINVAL;
    }
    for (size_t i = 0; i < ARRAY_SIZE(required_caps); i++) {
        if (ioctl(vm->sys_fd, KVM_CHECK_EXTENSION, required_caps[i].cap) <= 0) {
            snprintf(err, errlen, "KVM lacks the capability %s",
                     required_caps[i].name);
            return -ENOTSUP;
        }
    }
    /* Optional: without it the guest gets no TSC-deadline bit. */
    vm->tsc_deadline =
        ioctl(vm->sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) > 0;
    warn_if_software_kvm();
    return 0;
}

/*
 * The GSI routing table as a PC wires it (GSIs 0-15 to both the PIC and
 * the IOAPIC, 16-23 to the IOAPIC), plus one MSI route per cached message.
 * KVM_SET_GSI_ROUTING replaces the whole table, so the default part is
 * written every time.
 */
static int set_gsi_routing(KvmVm *vm)
{
    struct kvm_irq_routing *table;
    unsigned n = 0;
    int ret;

    table =
        calloc(1, sizeof(*table) + (2 * KVM_IOAPIC_PINS + vm->msi_routes.n) *
                                       sizeof(table->entries[0]));
    if (!table) {
        return -ENOMEM;
    }
    for (int gsi = 0; gsi < KVM_IOAPIC_PINS; gsi++) {
        if (gsi < 16 && gsi != 2) { /* PIC pin 2 is the cascade */
            table->entries[n++] = (struct kvm_irq_routing_entry){
                .gsi = gsi,
                .type = KVM_IRQ_ROUTING_IRQCHIP,
                .u.irqchip = {.irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER
                                                 : KVM_IRQCHIP_PIC_SLAVE,
                              .pin = gsi % 8}};
        }
        table->entries[n++] = (struct kvm_irq_routing_entry){
            .gsi = gsi,
            .type = KVM_IRQ_ROUTING_IRQCHIP,
            .u.irqchip = {.irqchip = KVM_IRQCHIP_IOAPIC, .pin = gsi}};
    }
    for (unsigned i = 0; i < vm->msi_routes.n; i++) {
        const MsiRouteSlot *r = &vm->msi_routes.slot[i];

        table->entries[n++] = (struct kvm_irq_routing_entry){
            .gsi = KVM_FIRST_MSI_GSI + i,
            .type = KVM_IRQ_ROUTING_MSI,
            .u.msi = {.address_lo = (uint32_t)r->addr,
                      .address_hi = (uint32_t)(r->addr >> 32),
                      .data = r->data}};
    }
    table->nr = n;
    ret = ioctl(vm->vm_fd, KVM_SET_GSI_ROUTING, table) < 0 ? -errno : 0;
    free(table);
    return ret;
}

static int create_vm(KvmVm *vm, char *err, size_t errlen)
{
    /*
     * KVM_PIT_SPEAKER_DUMMY makes KVM emulate port 0x61 (PIT channel 2's
     * gate and output), which Linux and the bare-metal tests read to
     * calibrate the TSC; without it the port reads as all-ones.
     */
    struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
    uint64_t map_addr = KVM_IDENTITY_MAP_ADDR;
    const char *step;

    vm->vm_fd = ioctl(vm->sys_fd, KVM_CREATE_VM, 0);
    if (vm->vm_fd < 0) {
        step = "KVM_CREATE_VM";
        goto fail;
    }
    if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, KVM_TSS_ADDR) < 0) {
        step = "KVM_SET_TSS_ADDR";
        goto fail;
    }
    if (ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &map_addr) < 0) {
        step = "KVM_SET_IDENTITY_MAP_ADDR";
        goto fail;
    }
    if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) {
        step = "KVM_CREATE_IRQCHIP";
        goto fail;
    }
    if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0) {
        step = "KVM_CREATE_PIT2";
        goto fail;
    }
    return 0;

fail:
    snprintf(err, errlen, "%s failed: %s", step, strerror(errno));
    return -errno;
}

/*
 * KVM's supported CPUID. The number of entries is not known in advance:
 * KVM fails with E2BIG when the buffer is too small, so grow it and ask
 * again, up to a bound.
 */
static int get_cpuid(KvmVm *vm, char *err, size_t errlen)
{
    for (int n = CPUID_ENTRIES_FIRST; n <= CPUID_ENTRIES_MAX; n *= 2) {
        vm->cpuid =
            calloc(1, sizeof(*vm->cpuid) + n * sizeof(vm->cpuid->entries[0]));
        if (!vm->cpuid) {
            return -ENOMEM;
        }
        vm->cpuid->nent = n;
        if (ioctl(vm->sys_fd, KVM_GET_SUPPORTED_CPUID, vm->cpuid) == 0) {
            return 0;
        }
        free(vm->cpuid);
        vm->cpuid = NULL;
        if (errno != E2BIG) {
            break;
        }
    }
    int ret = -errno;

    snprintf(err, errlen, "KVM_GET_SUPPORTED_CPUID failed: %s",
             ret == -E2BIG ? "more than 4096 entries" : strerror(-ret));
    return ret;
}

/*
 * Whether KVM sees the guest's XSETBV (vmm/kvm-probe.c); only asked when
 * KVM offers XSAVE at all. A probe that cannot run is not fatal: hardware
 * always intercepts XSETBV, so assume it does.
 */
static void probe_xsetbv(KvmVm *vm)
{
    struct kvm_cpuid_entry2 *l1 =
        cpuid_find(vm->cpuid->entries, (int)vm->cpuid->nent, 1, 0);
    int ret;

    if (!l1 || !(l1->ecx & CPUID_LEAF1_XSAVE)) {
        return;
    }
    ret = kvm_probe_xsetbv(vm->sys_fd, vm->cpuid);
    if (ret < 0) {
        log_warn("kvm: cannot tell whether KVM sees XSETBV (%s); offering "
                 "XSAVE",
                 strerror(-ret));
    } else if (ret == 0) {
        log_info("kvm: KVM does not see the guest's XSETBV (nested under "
                 "QEMU TCG?): XSAVE is not offered to the guest");
    }
    vm->xsetbv_tracked = ret != 0;
}

/* The MSRs KVM saves and restores: the ones vCPU setup may write. */
static int get_msr_list(KvmVm *vm, char *err, size_t errlen)
{
    struct kvm_msr_list probe = {.nmsrs = 0};

    int ret = 0;

    /* With nmsrs = 0, KVM fails with E2BIG and says how many there are. */
    if (ioctl(vm->sys_fd, KVM_GET_MSR_INDEX_LIST, &probe) < 0 &&
        errno != E2BIG) {
        ret = -errno;
    }
    if (ret == 0) {
        vm->msrs = calloc(1, sizeof(*vm->msrs) +
                                 probe.nmsrs * sizeof(vm->msrs->indices[0]));
        if (!vm->msrs) {
            return -ENOMEM;
        }
        vm->msrs->nmsrs = probe.nmsrs;
        if (ioctl(vm->sys_fd, KVM_GET_MSR_INDEX_LIST, vm->msrs) < 0) {
            ret = -errno;
        }
    }
    if (ret < 0) {
        snprintf(err, errlen, "KVM_GET_MSR_INDEX_LIST failed: %s",
                 strerror(-ret));
    }
    return ret;
}

int kvm_vm_init(KvmVm *vm, char *err, size_t errlen)
{
    int ret;

    memset(vm, 0, sizeof(*vm));
    vm->sys_fd = vm->vm_fd = -1;
    pthread_mutex_init(&vm->msi_lock, NULL);
    msi_routes_init(&vm->msi_routes, KVM_MAX_MSI_ROUTES);

    ret = check_kvm(vm, err, errlen);
    if (ret == 0) {
        ret = create_vm(vm, err, errlen);
    }
    if (ret == 0) {
        ret = get_cpuid(vm, err, errlen);
    }
    if (ret == 0) {
        probe_xsetbv(vm);
        ret = get_msr_list(vm, err, errlen);
    }
    if (ret == 0) {
        vm->run_size = ioctl(vm->sys_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
        if (vm->run_size <= 0) {
            snprintf(err, errlen, "KVM_GET_VCPU_MMAP_SIZE failed: %s",
                     strerror(errno));
            ret = -errno;
        }
    }
    if (ret == 0) {
        ret = set_gsi_routing(vm);
        if (ret < 0) {
            snprintf(err, errlen, "KVM_SET_GSI_ROUTING failed: %s",
                     strerror(-ret));
        }
    }
    if (ret < 0) {
        kvm_vm_cleanup(vm);
    }
    return ret;
}

int kvm_vm_map_ram(KvmVm *vm, GuestMemory *ram, AddressSpace *as, char *err,
                   size_t errlen)
{
    struct kvm_userspace_memory_region slot = {.slot = 0,
                                               .guest_phys_addr = 0,
                                               .memory_size = ram->size,
                                               .userspace_addr =
                                                   (uintptr_t)ram->host};

    vm->as = as;
    if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0) {
        snprintf(err, errlen,
                 "KVM_SET_USER_MEMORY_REGION (%llu MiB of RAM) "
                 "failed: %s",
                 (unsigned long long)(ram->size >> 20), strerror(errno));
        return -errno;
    }
    return 0;
}

void kvm_vm_cleanup(KvmVm *vm)
{
    for (unsigned i = 0; i < vm->msi_routes.n; i++) {
        close(vm->msi_fd[i]);
    }
    vm->msi_routes.n = 0;
    free(vm->cpuid);
    vm->cpuid = NULL;
    free(vm->msrs);
    vm->msrs = NULL;
    if (vm->vm_fd >= 0) {
        close(vm->vm_fd);
    }
    if (vm->sys_fd >= 0) {
        close(vm->sys_fd);
    }
    vm->vm_fd = vm->sys_fd = -1;
    pthread_mutex_destroy(&vm->msi_lock);
}

/* ---- Interrupts ------------------------------------------------------- */

/* DATAPATH 7: a level-triggered line (serial, PCI INTx) into the IOAPIC. */
void kvm_set_irq(void *opaque, int gsi, int level)
{
    KvmVm *vm = opaque;
    struct kvm_irq_level irq = {.irq = gsi, .level = level};

    TRACE(IRQ, trace_current_id(), .a = {gsi, level}, .s = {"intx"});
    if (ioctl(vm->vm_fd, KVM_IRQ_LINE, &irq) < 0) {
        log_once("kvm: KVM_IRQ_LINE %d failed: %s", gsi, strerror(errno));
    }
}

/* Slot @slot is new: its route, and an irqfd bound to it. */
static int add_msi_route(KvmVm *vm, unsigned slot)
{
    struct kvm_irqfd irqfd = {.gsi = KVM_FIRST_MSI_GSI + slot};
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    int ret;

    if (fd < 0) {
        return -errno;
    }
    ret = set_gsi_routing(vm);
    if (ret == 0) {
        irqfd.fd = fd;
        ret = ioctl(vm->vm_fd, KVM_IRQFD, &irqfd) < 0 ? -errno : 0;
    }
    if (ret < 0) {
        close(fd);
        return ret;
    }
    vm->msi_fd[slot] = fd;
    return 0;
}

/*
 * The irqfd that delivers (@addr, @data), setting up or re-pointing a route
 * if the message has none; -errno if that failed. msi_lock held.
 */
static int msi_route_fd(KvmVm *vm, uint64_t addr, uint32_t data)
{
    MsiRouteSlot old;
    MsiRouteHow how;
    unsigned slot = msi_routes_get(&vm->msi_routes, addr, data, &how, &old);
    int ret = 0;

    if (how == MSI_ROUTE_ADDED) {
        ret = add_msi_route(vm, slot);
    } else if (how == MSI_ROUTE_REPLACED) {
        /* The slot keeps its GSI and irqfd; only the message changes. */
        ret = set_gsi_routing(vm);
    }
    if (ret < 0) {
        msi_routes_undo(&vm->msi_routes, slot, how, &old);
        set_gsi_routing(vm); /* KVM's table as ours is again */
        return ret;
    }
    return vm->msi_fd[slot];
}

/*
 * DATAPATH 7: an MSI or MSI-X message. A guest programs a handful of
 * messages (one per vector) and then reuses them, so each distinct message
 * gets a GSI route and an irqfd once; after that, delivering it is a single
 * eventfd write from whichever thread completed the request. When the
 * table is full the least recently used message gives its route up.
 *
 * The write happens under msi_lock: once the lock is dropped, another
 * thread may re-point the slot to a new message, and our write would
 * deliver that one. (KVM injects an MSI from the write itself; should it
 * defer one to its workqueue, the injection reads the route then, so a
 * message re-pointed meanwhile can still be misdelivered. Eviction takes
 * the least recently used message, which makes that unlikely.)
 */
void kvm_send_msi(void *opaque, uint64_t addr, uint32_t data)
{
    KvmVm *vm = opaque;
    int fd;

    pthread_mutex_lock(&vm->msi_lock);
    fd = msi_route_fd(vm, addr, data);
    if (fd >= 0) {
        TRACE(IRQ, trace_current_id(), .a = {data & 0xff, 1}, .s = {"irqfd"});
        if (eventfd_write(fd, 1) < 0) {
            log_once("kvm: irqfd write failed: %s", strerror(errno));
        }
    }
    pthread_mutex_unlock(&vm->msi_lock);
    if (fd >= 0) {
        return;
    }
    /* No route to be had: deliver it the slow way rather than lose it. */
    struct kvm_msi msi = {.address_lo = (uint32_t)addr,
                          .address_hi = (uint32_t)(addr >> 32),
                          .data = data};
    TRACE(IRQ, trace_current_id(), .a = {data & 0xff, 1}, .s = {"msi-ioctl"});
    if (ioctl(vm->vm_fd, KVM_SIGNAL_MSI, &msi) < 0) {
        log_once("kvm: KVM_SIGNAL_MSI failed: %s", strerror(errno));
    }
}

/* ---- ioeventfds for virtio notify registers --------------------------- */

static int ioeventfd_assign(KvmVm *vm, uint64_t gpa, int fd, bool assign)
{
    struct kvm_ioeventfd ioe = {
        .addr = gpa,
        .len = 2, /* the guest writes the 16-bit queue index */
        .fd = fd,
        .flags = assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN};

    return ioctl(vm->vm_fd, KVM_IOEVENTFD, &ioe) < 0 ? -errno : 0;
}

/*
 * DATAPATH 1 (virtio): the device's notify addresses are registered with
 * KVM, so a guest kick writes the queue's eventfd in the kernel and wakes
 * the owning context without any vCPU exit. Called with the big lock
 * whenever the BAR moves or queues change: drop this device's old
 * registrations and make the current ones.
 */
void kvm_virtio_notify_hook(void *opaque, VirtioPciDevice *d)
{
    KvmVm *vm = opaque;
    int n = 0;

    for (int i = 0; i < vm->nioeventfds; i++) {
        KvmIoeventfd *e = &vm->ioeventfds[i];

        if (e->owner == d) {
            ioeventfd_assign(vm, e->gpa, e->fd, false);
        } else {
            vm->ioeventfds[n++] = *e;
        }
    }
    vm->nioeventfds = n;

    for (unsigned q = 0; q < d->num_queues; q++) {
        uint64_t gpa;
        int fd = virtio_pci_queue_notify_fd(d, q);
        int ret;

        if (fd < 0 || !virtio_pci_queue_notify_gpa(d, q, &gpa)) {
            continue;
        }
        if (vm->nioeventfds == KVM_MAX_IOEVENTFDS) {
            log_once("kvm: too many ioeventfds; %s queue %u kicks will exit",
                     d->name, q);
            continue;
        }
        ret = ioeventfd_assign(vm, gpa, fd, true);
        if (ret < 0) {
            /* Still correct: the write exits and the device handles it. */
            log_once("kvm: KVM_IOEVENTFD for %s failed: %s", d->name,
                     strerror(-ret));
            continue;
        }
        vm->ioeventfds[vm->nioeventfds++] =
            (KvmIoeventfd){.owner = d, .gpa = gpa, .fd = fd};
    }
}
