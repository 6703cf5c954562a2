#include "devices/exit-ports.h"
#include "util/exit-status.h"

static uint64_t test_exit_read(void *opaque, uint64_t offset, unsigned size)
{
    (void)opaque, (void)offset, (void)size;
    return 0;
}

static void test_exit_write(void *opaque, uint64_t offset, uint64_t value,
                            unsigned size)
{
    ExitPorts *e = opaque;

    /*
     * The whole value counts, not its low byte: a test that counts 256
     * failures must not pass.
     */
    (void)size;
    if (offset == 0) {
        e->exit(e->opaque, exit_status_from_test_port(value));
    }
}

static const RegionOps test_exit_ops = {
    .read = test_exit_read,
    .write = test_exit_write,
};

static uint64_t i8042_read(void *opaque, uint64_t offset, unsigned size)
{
    (void)opaque, (void)offset, (void)size;
    return 0xff; /* no controller, as Linux's probe concludes at once */
}

static void i8042_write(void *opaque, uint64_t offset, uint64_t value,
                        unsigned size)
{
    ExitPorts *e = opaque;

    (void)offset, (void)size;
    if ((value & 0xff) == I8042_CMD_RESET) {
        e->exit(e->opaque, EXIT_STATUS_OK);
    }
}

static const RegionOps i8042_ops = {
    .read = i8042_read,
    .write = i8042_write,
};

int exit_ports_init(ExitPorts *e, AddressSpace *as, MachineExitFn *exit,
                    void *opaque)
{
    int ret;

    e->exit = exit;
    e->opaque = opaque;
    ret = as_add(as, AS_PIO, EXIT_PORT_TEST, 4, &test_exit_ops, e, "test-exit");
    if (ret == 0) {
        ret = as_add(as, AS_PIO, EXIT_PORT_I8042, 1, &i8042_ops, e, "i8042");
    }
    return ret;
}
