/*
 * libFuzzer target: the command line, config_parse(). The input, split on
 * NUL bytes, is argv after "minivmm"; every run ends with config_free(),
 * so a parse that allocates and then fails must not leak.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm/config.h"

#define FUZZ_OPTIONS_MAX_ARGS 64

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

    (void)argc;
    (void)argv;
    /* --help and --version print to stdout; libFuzzer reports on stderr. */
    if (null >= 0) {
        dup2(null, STDOUT_FILENO);
        close(null);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *args = malloc(size + 1), *argv[FUZZ_OPTIONS_MAX_ARGS + 2];
    int argc = 0;
    MachineConfig cfg;

    memcpy(args, data, size);
    args[size] = '\0';
    argv[argc++] = "minivmm";
    for (size_t off = 0; off <= size && argc <= FUZZ_OPTIONS_MAX_ARGS;
         off += strlen(args + off) + 1) {
        argv[argc++] = args + off;
    }
    argv[argc] = NULL;
    config_parse(&cfg, argc, argv);
    config_free(&cfg);
    free(args);
    return 0;
}
