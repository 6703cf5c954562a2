/*
 * libFuzzer target: the qtest command parser, qtest_server_execute(), one
 * line at a time, as the server thread hands it lines from the socket.
 *
 * The input is split on '\n' (a trailing '\r' dropped, as the server does)
 * and every line runs against 1 MiB of RAM and a PCI host, so that port and
 * memory commands reach a real address space. Replies are freed unread:
 * the sanitizers judge the parser, not the text.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/pci.h"
#include "vmm/qtest.h"

#define FUZZ_QTEST_RAM_SIZE (1u << 20)

static GuestMemory ram;
static AddressSpace as;
static PciHost host;
static QtestServer server;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (gm_init(&ram, FUZZ_QTEST_RAM_SIZE) < 0) {
        fprintf(stderr, "fuzz-qtest: no RAM\n");
        exit(1);
    }
    as_init(&as, &ram);
    pci_host_init(&host, &as);
    /* A server with no connection: what qtest_server_open() sets up. */
    server.as = &as;
    server.fd = -1;
    server.listen_fd = -1;
    pthread_mutex_init(&server.send_lock, NULL);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1), *line = text, *nl;

    memcpy(text, data, size);
    text[size] = '\0';
    memset(ram.host, 0, ram.size);
    host.config_address = 0;
    server.irq_intercept = false;
    for (;;) {
        char *reply;

        nl = strchr(line, '\n');
        if (nl) {
            *nl = '\0';
        }
        if (nl && nl > line && nl[-1] == '\r') {
            nl[-1] = '\0';
        }
        qtest_server_execute(&server, line, &reply);
        free(reply);
        if (!nl) {
            break;
        }
        line = nl + 1;
    }
    free(text);
    return 0;
}
