/* Gateway subcommands; replaced by serve.c as the gateway lands. */
#include <stdio.h>

#include "cli/cli.h"

int bl_cli_serve(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fputs("ballast serve: not built yet\n", stderr);
    return 1;
}

int bl_cli_check_config(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fputs("ballast check-config: not built yet\n", stderr);
    return 1;
}
