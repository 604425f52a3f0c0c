/* `ballast check-config FILE`: validate a config and print its route table,
 * like `nginx -t`. Exit 0 when valid, 1 when not, 2 on bad usage. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "config/config.h"

static const char USAGE[] = "usage: ballast check-config [-c] FILE\n"
                            "\n"
                            "Load FILE the way `ballast serve` would (expanding ${VAR} from the\n"
                            "environment), check it, and print the route table. Secrets are never\n"
                            "printed. Exits 0 when the configuration is valid; otherwise prints\n"
                            "FILE:LINE:COLUMN: what is wrong, to stderr, and exits 1.\n"
                            "\n"
                            "  -c, --config FILE   the configuration file\n"
                            "  -h, --help          this text\n";

int bl_cli_check_config(int argc, char **argv)
{
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(USAGE, stdout);
            return 0;
        }
        const char *val = NULL;
        if (!strcmp(a, "-c") || !strcmp(a, "--config")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "ballast check-config: %s needs a file\n\n%s", a, USAGE);
                return 2;
            }
            val = argv[++i];
        } else if (!strncmp(a, "--config=", 9)) {
            val = a + 9;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "ballast check-config: unknown option '%s'\n\n%s", a, USAGE);
            return 2;
        } else {
            val = a;
        }
        if (path) {
            fprintf(stderr, "ballast check-config: give one file\n\n%s", USAGE);
            return 2;
        }
        path = val;
    }
    if (!path) {
        fprintf(stderr, "ballast check-config: no file given\n\n%s", USAGE);
        return 2;
    }
    char err[BL_CONFIG_ERR_MAX];
    bl_config_t *c = NULL;
    if (bl_config_load(path, &c, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    bl_config_print(c, stdout);
    bl_config_unref(c);
    return fflush(stdout) == 0 ? 0 : 1;
}
