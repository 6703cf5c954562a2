/* The Check suites that tests/unit/main.c runs, one per layer. */
#ifndef MINIVMM_TESTS_UNIT_SUITES_H
#define MINIVMM_TESTS_UNIT_SUITES_H

#include <check.h>

Suite *aio_suite(void);
Suite *block_suite(void);
Suite *pci_suite(void);
Suite *ahci_suite(void);
Suite *virtio_blk_suite(void);
Suite *uring_flags_suite(void);
Suite *boot_suite(void);
Suite *fdt_suite(void);
Suite *cpuid_suite(void);
Suite *acpi_suite(void);
Suite *trace_suite(void);
Suite *exit_suite(void);
Suite *msi_routes_suite(void);
Suite *stress_suite(void);
Suite *crash_suite(void);
Suite *sandbox_suite(void);
Suite *ahci_pio_suite(void);
Suite *vq_mapping_suite(void);
Suite *aio_uring_suite(void);

#endif
