/*
 * The unit test runner: every suite in one process tree (Check forks each
 * test), one summary line at the end.
 *
 * Environment: CK_RUN_SUITE / CK_RUN_CASE select a suite or test case, as
 * in any Check program.
 */
#include <stdlib.h>

#include "tests/unit/suites.h"

int main(void)
{
    SRunner *sr = srunner_create(aio_suite());
    srunner_add_suite(sr, block_suite());
    srunner_add_suite(sr, pci_suite());
    srunner_add_suite(sr, ahci_suite());
    srunner_add_suite(sr, virtio_blk_suite());
    srunner_add_suite(sr, uring_flags_suite());
    srunner_add_suite(sr, boot_suite());
    srunner_add_suite(sr, fdt_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
