/* Engine subcommands; replaced by run.c / models.c / bench.c as the engine lands. */
#include <stdio.h>

#include "cli/cli.h"

int bl_cli_run(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fputs("ballast run: the local engine is not built yet\n", stderr);
    return 1;
}

int bl_cli_models(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fputs("ballast models: the local engine is not built yet\n", stderr);
    return 1;
}

int bl_cli_bench_engine(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fputs("ballast bench-engine: the local engine is not built yet\n", stderr);
    return 1;
}
