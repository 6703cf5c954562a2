/*
 * The unit test runner: every suite in one process tree (Check forks each
 * test), one summary line at the end.
 *
 * Environment: CK_RUN_SUITE / CK_RUN_CASE select a suite or test case, as
 * in any Check program. MINIVMM_TEST_URING_FLAGS (a --iothread-uring-flags
 * list) adds io_uring setup flags to every context the tests create.
 */
#include <stdio.h>
#include <stdlib.h>

#include "aio/aio.h"
#include "tests/unit/suites.h"

int main(void)
{
    const char *flags_env = getenv("MINIVMM_TEST_URING_FLAGS");
    unsigned flags;

    if (flags_env && *flags_env) {
        if (aio_uring_flags_parse(flags_env, &flags) < 0) {
            fprintf(stderr,
                    "unit-tests: MINIVMM_TEST_URING_FLAGS: '%s' is "
                    "not a list of io_uring flag names\n",
                    flags_env);
            return 2;
        }
        aio_set_extra_uring_flags(flags);
    }
    SRunner *sr = srunner_create(aio_suite());
    srunner_add_suite(sr, block_suite());
    srunner_add_suite(sr, pci_suite());
    srunner_add_suite(sr, ahci_suite());
    srunner_add_suite(sr, virtio_blk_suite());
    srunner_add_suite(sr, uring_flags_suite());
    srunner_add_suite(sr, boot_suite());
    srunner_add_suite(sr, fdt_suite());
    srunner_add_suite(sr, cpuid_suite());
    srunner_add_suite(sr, acpi_suite());
    srunner_add_suite(sr, trace_suite());
    srunner_add_suite(sr, exit_suite());
    srunner_add_suite(sr, msi_routes_suite());
    srunner_add_suite(sr, stress_suite());
    srunner_add_suite(sr, crash_suite());
    srunner_add_suite(sr, sandbox_suite());
    srunner_add_suite(sr, ahci_pio_suite());
    srunner_add_suite(sr, vq_mapping_suite());
    srunner_add_suite(sr, aio_uring_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
