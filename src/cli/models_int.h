/*
 * Internals of `ballast models` shared by its files (models.c, models_pull.c,
 * models_list.c): the model store's location and a streaming file hash.
 */
#ifndef BL_CLI_MODELS_INT_H
#define BL_CLI_MODELS_INT_H

#include <stddef.h>

/* sha256 of a file as 64 lowercase hex digits, streamed in 1 MiB chunks. */
int bl_cli_file_sha256(const char *path, char hex[65], char *err, size_t errlen);

/* The store directory: $BALLAST_MODELS, else ~/.local/share/ballast/models.
 * With create, made like `mkdir -p` (0755). */
int bl_cli_models_dir(char *out, size_t outlen, int create, char *err, size_t errlen);

int bl_cli_models_pull(int argc, char **argv);
int bl_cli_models_list(int argc, char **argv);

#endif
