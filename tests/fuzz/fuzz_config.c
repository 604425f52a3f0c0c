/* libFuzzer target: the YAML config parser, validator and printer. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    char err[BL_CONFIG_ERR_MAX];
    bl_config_t *c = NULL;
    setenv("FZ", "val", 1);
    if (bl_config_parse((const char *)d, n, "f.yaml", &c, err, sizeof err) == 0) {
        FILE *f = fopen("/dev/null", "w");
        if (f) {
            bl_config_print(c, f);
            fclose(f);
        }
        bl_config_route(c, "m", 1);
        bl_config_unref(c);
    }
    return 0;
}
