/* `ballast models list`: the GGUF files in the model store, one line each:
 * name, size, architecture, quantization; unreadable files are marked with
 * the reason, unfinished downloads (.part) are shown as such. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <ballast/errors.h>

#include "cli/models_int.h"
#include "engine/gguf/gguf.h"
#include "engine/types.h"

/* llama.cpp's llama_ftype values as stored in general.file_type. */
static const char *ftype_name(uint32_t ft)
{
    static const char *const names[] = {
        [0] = "F32",     [1] = "F16",     [2] = "Q4_0",     [3] = "Q4_1",    [7] = "Q8_0",
        [8] = "Q5_0",    [9] = "Q5_1",    [10] = "Q2_K",    [11] = "Q3_K_S", [12] = "Q3_K_M",
        [13] = "Q3_K_L", [14] = "Q4_K_S", [15] = "Q4_K_M",  [16] = "Q5_K_S", [17] = "Q5_K_M",
        [18] = "Q6_K",   [19] = "IQ2_XXS", [20] = "IQ2_XS", [21] = "Q2_K_S", [22] = "IQ3_XS",
        [23] = "IQ3_XXS", [24] = "IQ1_S", [25] = "IQ4_NL", [26] = "IQ3_S",  [27] = "IQ3_M",
        [28] = "IQ2_S",  [29] = "IQ2_M",  [30] = "IQ4_XS", [31] = "IQ1_M",  [32] = "BF16",
    };
    if (ft < sizeof names / sizeof names[0])
        return names[ft];
    return NULL;
}

/* The type holding the most elements, for files without general.file_type. */
static const char *dominant_type(const bl_gguf_t *g)
{
    uint64_t elems[BL_TYPE_COUNT] = {0};
    for (size_t i = 0; i < bl_gguf_n_tensors(g); i++) {
        const bl_gguf_tensor_t *t = bl_gguf_tensor_at(g, i);
        elems[t->type] += t->n_elems; /* type < BL_TYPE_COUNT: validated at open */
    }
    int best = -1;
    for (int t = 0; t < BL_TYPE_COUNT; t++)
        if (elems[t] && (best < 0 || elems[t] > elems[best]))
            best = t;
    return best >= 0 ? bl_type_info((uint32_t)best)->name : NULL;
}

static void human_size(uint64_t n, char *out, size_t len)
{
    if (n >= (1ull << 30))
        snprintf(out, len, "%.2f GiB", (double)n / (double)(1ull << 30));
    else if (n >= (1ull << 20))
        snprintf(out, len, "%.1f MiB", (double)n / (double)(1ull << 20));
    else if (n >= 1024)
        snprintf(out, len, "%.1f KiB", (double)n / 1024.0);
    else
        snprintf(out, len, "%llu B", (unsigned long long)n);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void describe(const char *dir, const char *name)
{
    char path[4400], size[32], err[512];
    int pl = snprintf(path, sizeof path, "%s/%s", dir, name);
    if (pl < 0 || (size_t)pl >= sizeof path)
        return;
    struct stat st;
    if (stat(path, &st) || !S_ISREG(st.st_mode))
        return;
    human_size((uint64_t)st.st_size, size, sizeof size);
    if (ends_with(name, ".part")) {
        printf("  %-44s %10s  (partial download; `ballast models pull` resumes it)\n", name,
               size);
        return;
    }
    bl_gguf_t *g = NULL;
    if (bl_gguf_open(path, &g, err, sizeof err)) {
        /* the reader's message starts with the path; the name is already shown */
        const char *why = err;
        size_t n = (size_t)pl;
        if (!strncmp(err, path, n) && err[n] == ':')
            why = err + n + 1 + (err[n + 1] == ' ');
        printf("! %-44s %10s  cannot open: %s\n", name, size, why);
        return;
    }
    char arch[64] = "-";
    bl_gguf_str_t s;
    if (!bl_gguf_get_str(g, "general.architecture", &s) && s.n && s.n < sizeof arch) {
        memcpy(arch, s.p, s.n);
        arch[s.n] = 0;
        for (char *c = arch; *c; c++)
            if ((unsigned char)*c < 0x20 || *c == 0x7f)
                *c = '?';
    }
    uint32_t ft;
    const char *quant = NULL;
    if (!bl_gguf_get_u32(g, "general.file_type", &ft))
        quant = ftype_name(ft);
    if (!quant)
        quant = dominant_type(g);
    printf("  %-44s %10s  %-10s %s\n", name, size, arch, quant ? quant : "-");
    bl_gguf_close(g);
}

int bl_cli_models_list(int argc, char **argv)
{
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        fputs("usage: ballast models list\n\nThe GGUF files in $BALLAST_MODELS (default "
              "~/.local/share/ballast/models).\nA leading '!' marks a file that does not "
              "open, with the reason.\n",
              stdout);
        return 0;
    }
    if (argc != 1) {
        fputs("usage: ballast models list\n", stderr);
        return 2;
    }
    char dir[4096], err[512];
    if (bl_cli_models_dir(dir, sizeof dir, 0, err, sizeof err)) {
        fprintf(stderr, "ballast: %s\n", err);
        return 1;
    }
    DIR *d = opendir(dir);
    if (!d) {
        printf("no models: %s does not exist (use `ballast models pull`)\n", dir);
        return 0;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 1;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' ||
            !(ends_with(e->d_name, ".gguf") || ends_with(e->d_name, ".gguf.part")))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **nn = realloc(names, cap * sizeof *nn);
            if (!nn)
                goto done;
            names = nn;
        }
        if (!(names[n] = strdup(e->d_name)))
            goto done;
        n++;
    }
    qsort(names, n, sizeof *names, by_name);
    printf("models in %s\n", dir);
    if (!n)
        printf("  (none; use `ballast models pull`)\n");
    for (size_t i = 0; i < n; i++)
        describe(dir, names[i]);
    rc = 0;
done:
    if (rc)
        fprintf(stderr, "ballast: out of memory listing %s\n", dir);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    closedir(d);
    return rc;
}
