/*
 * What the user asked for: the machine's configuration, filled in from the
 * command line by vmm/options.c and turned into a machine by vmm/board.c.
 */
#ifndef MINIVMM_VMM_CONFIG_H
#define MINIVMM_VMM_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "aio/aio.h"

#define MAX_DISKS         12
#define MAX_IOTHREADS     8
#define MAX_SATA_PORTS    6
#define MAX_VIRTIO_QUEUES 8

typedef enum DiskKind { DISK_SATA, DISK_VIRTIO } DiskKind;

typedef struct DiskConfig {
    DiskKind kind;
    char *path;
    char *block_opts; /* "aio=...,cache=...,readonly=..." for block/ */
    char *serial;     /* NULL: the device's default */
    char *model;      /* SATA only */
    char *fwrev;      /* SATA only */
    int iothread;     /* virtio: -1 = main loop */
    int queues;       /* virtio */
    /* virtio iothreads=A+B+...: queue q is served by map[q % nmap]. */
    int iothread_map[MAX_VIRTIO_QUEUES];
    int nmap; /* 0: every queue on iothread */
} DiskConfig;

typedef enum Accel { ACCEL_KVM, ACCEL_QTEST } Accel;

typedef struct MachineConfig {
    Accel accel;
    char *qtest_spec; /* "unix:PATH[,server]" */
    uint64_t ram_size;
    int cpus;
    char *kernel, *initrd, *append;
    bool auto_console; /* add console=ttyS0 if --append names no console */
    int timeout_s;     /* --timeout: 0 = none */
    DiskConfig disks[MAX_DISKS];
    int ndisks;
    int iothreads;
    AioPollParams iothread_poll;
    unsigned iothread_uring_flags; /* IORING_SETUP_* for IOThread rings */
    unsigned main_uring_flags;     /* ... for the main loop's ring */
    char *serial;                  /* "stdio", "file:PATH" or "none" */
    AioFdmonKind fdmon;
    bool notify_on_sqe;
    bool main_loop_defer_kick;
    int64_t main_loop_timeout_ms;
    bool stats;
    char *dump_dtb;
    bool acpi;       /* ACPI tables, ECAM and the power registers */
    char *dump_acpi; /* a directory for each table as NAME.dat */
    char *trace;     /* "FILE[,events=GLOB][,size=N]" for util/trace.c */
    bool seccomp;    /* util/sandbox.h: an allowlist per thread role */
} MachineConfig;

/*
 * Parse argv into @cfg. Returns 0 to run, 1 when the work is done (--help,
 * --version), or -EINVAL after printing one line of error to stderr.
 */
int config_parse(MachineConfig *cfg, int argc, char **argv);
void config_free(MachineConfig *cfg);

/* The IOThread that serves @queue of virtio disk @d, or -1: the main loop. */
int disk_queue_iothread(const DiskConfig *d, int queue);

#endif
