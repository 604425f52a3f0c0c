/* Placeholder until the engine lands; replaced by its real implementation. */
#include <stdio.h>

#include "cli/cli.h"

int bl_cli_bench_engine(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fputs("ballast: the local engine is not built yet\n", stderr);
    return 1;
}
