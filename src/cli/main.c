#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const char USAGE[] =
    "usage: ballast <command> [options]\n"
    "\n"
    "An OpenAI-compatible gateway that fails over across LLM providers and,\n"
    "when every cloud is down, answers from a model running on this CPU.\n"
    "\n"
    "commands:\n"
    "  serve [-c FILE]          run the gateway (no config: built from env keys and models)\n"
    "  check-config FILE        validate a config and print its route table\n"
    "  run -m MODEL.gguf -p P   generate text with a local model\n"
    "  models inspect FILE      describe a GGUF model file\n"
    "  models pull NAME|URL     download a GGUF model (resumable, sha256-checked)\n"
    "  models list              the models in $BALLAST_MODELS\n"
    "  bench-engine -m MODEL    measure local model load, prefill and decode speed\n"
    "\n"
    "  --version                print the version\n"
    "  --help                   this text; `ballast <command> --help` for a command\n";

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(USAGE, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V") || !strcmp(cmd, "version")) {
        printf("ballast %s\n", BL_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        fputs(USAGE, stdout);
        return 0;
    }
    struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {
        {"serve", bl_cli_serve},
        {"check-config", bl_cli_check_config},
        {"run", bl_cli_run},
        {"models", bl_cli_models},
        {"bench-engine", bl_cli_bench_engine},
    };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (!strcmp(cmd, cmds[i].name))
            return cmds[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "ballast: unknown command '%s'\n\n%s", cmd, USAGE);
    return 2;
}
