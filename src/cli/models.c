/* `ballast models`: look at GGUF model files. `inspect` describes one; `pull`
 * (models_pull.c) and `list` (models_list.c) manage the local store. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>

#include <ballast/errors.h>

#include "cli/cli.h"
#include "cli/models_int.h"
#include "engine/gguf/gguf.h"
#include "engine/types.h"

static const char USAGE[] =
    "usage: ballast models <subcommand> [args]\n"
    "\n"
    "subcommands:\n"
    "  inspect FILE.gguf   describe a GGUF model: architecture, hyper-parameters,\n"
    "                      tensor types, parameter count, chat template, sha256\n"
    "  pull NAME|URL       download a GGUF into the store ($BALLAST_MODELS, default\n"
    "                      ~/.local/share/ballast/models), resumable, sha256-checked\n"
    "  list                the models in the store\n";

/* sha256 of a file, streamed in 1 MiB chunks. */
int bl_cli_file_sha256(const char *path, char hex[65], char *err, size_t errlen)
{
    int rc = BL_EIO;
    unsigned char *buf = malloc(1 << 20);
    FILE *f = fopen(path, "rb");
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    snprintf(err, errlen, "%s: cannot hash the file", path); /* unless a later error says more */
    if (!buf || !f || !md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL))
        goto done;
    size_t n;
    while ((n = fread(buf, 1, 1 << 20, f)) > 0)
        if (!EVP_DigestUpdate(md, buf, n))
            goto done;
    if (ferror(f)) {
        snprintf(err, errlen, "%s: read error while hashing", path);
        goto done;
    }
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int dl = 0;
    if (!EVP_DigestFinal_ex(md, d, &dl) || dl != 32)
        goto done;
    for (unsigned i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
    rc = 0;
done:
    EVP_MD_CTX_free(md);
    if (f)
        fclose(f);
    free(buf);
    return rc;
}

int bl_cli_models_dir(char *out, size_t outlen, int create, char *err, size_t errlen)
{
    const char *env = getenv("BALLAST_MODELS");
    const char *home = getenv("HOME");
    int n;
    if (env && *env)
        n = snprintf(out, outlen, "%s", env);
    else if (home && *home)
        n = snprintf(out, outlen, "%s/.local/share/ballast/models", home);
    else {
        snprintf(err, errlen, "neither BALLAST_MODELS nor HOME is set");
        return BL_EINVAL;
    }
    if (n < 0 || (size_t)n >= outlen) {
        snprintf(err, errlen, "model store path too long");
        return BL_EINVAL;
    }
    if (!create)
        return 0;
    /* mkdir -p: create each missing component in turn */
    for (char *p = out + 1;; p++) {
        if (*p != '/' && *p)
            continue;
        char c = *p;
        *p = 0;
        int bad = mkdir(out, 0755) && errno != EEXIST;
        if (bad)
            snprintf(err, errlen, "%s: cannot create directory: %s", out, strerror(errno));
        *p = c;
        if (bad)
            return BL_EIO;
        if (!c)
            break;
    }
    struct stat st;
    if (stat(out, &st) || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s: not a directory", out);
        return BL_EIO;
    }
    return 0;
}

/* "<arch>.<suffix>" as a u32, or 0 when absent. */
static uint32_t arch_u32(const bl_gguf_t *g, const char *arch, const char *suffix)
{
    char key[160];
    uint32_t v = 0;
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    if (bl_gguf_get_u32(g, key, &v))
        return 0;
    return v;
}

static void print_u32(const char *label, uint32_t v)
{
    if (v)
        printf("%-16s %" PRIu32 "\n", label, v);
    else
        printf("%-16s -\n", label);
}

static void print_str(const char *label, bl_gguf_str_t s)
{
    printf("%-16s ", label);
    for (uint64_t i = 0; i < s.n; i++) {
        unsigned char c = (unsigned char)s.p[i];
        putchar(c < 0x20 || c == 0x7f ? '?' : c);
    }
    putchar('\n');
}

static void human_count(uint64_t n, char *out, size_t len)
{
    if (n >= 1000000000ull)
        snprintf(out, len, "%.2fB", (double)n / 1e9);
    else if (n >= 1000000ull)
        snprintf(out, len, "%.1fM", (double)n / 1e6);
    else if (n >= 1000ull)
        snprintf(out, len, "%.1fK", (double)n / 1e3);
    else
        snprintf(out, len, "%" PRIu64, n);
}

static int inspect(const char *path)
{
    char err[512];
    bl_gguf_t *g = NULL;
    int rc = bl_gguf_open(path, &g, err, sizeof err);
    if (rc) {
        fprintf(stderr, "ballast: %s\n", err);
        return 1;
    }
    char sha[65];
    if (bl_cli_file_sha256(path, sha, err, sizeof err)) {
        fprintf(stderr, "ballast: %s\n", err);
        bl_gguf_close(g);
        return 1;
    }

    bl_gguf_str_t s = {"", 0};
    char arch[64] = "";
    if (!bl_gguf_get_str(g, "general.architecture", &s) && s.n < sizeof arch) {
        memcpy(arch, s.p, s.n);
        arch[s.n] = 0;
    }
    printf("%-16s %s\n", "file", path);
    printf("%-16s %zu bytes (%.1f MiB)\n", "size", bl_gguf_file_size(g),
           (double)bl_gguf_file_size(g) / (1024.0 * 1024.0));
    printf("%-16s %" PRIu32 "\n", "gguf version", bl_gguf_version(g));
    printf("%-16s %s\n", "architecture", arch[0] ? arch : "-");
    if (!bl_gguf_get_str(g, "general.name", &s))
        print_str("name", s);

    uint32_t n_vocab = arch[0] ? arch_u32(g, arch, "vocab_size") : 0;
    const bl_gguf_kv_t *tok;
    if (!n_vocab && !bl_gguf_get_arr(g, "tokenizer.ggml.tokens", BL_GGUF_STRING, &tok) &&
        tok->arr_n <= UINT32_MAX)
        n_vocab = (uint32_t)tok->arr_n;
    if (arch[0]) {
        print_u32("context length", arch_u32(g, arch, "context_length"));
        print_u32("embedding", arch_u32(g, arch, "embedding_length"));
        print_u32("layers", arch_u32(g, arch, "block_count"));
        print_u32("heads", arch_u32(g, arch, "attention.head_count"));
        uint32_t kv = arch_u32(g, arch, "attention.head_count_kv");
        print_u32("kv heads", kv ? kv : arch_u32(g, arch, "attention.head_count"));
        print_u32("feed forward", arch_u32(g, arch, "feed_forward_length"));
    }
    print_u32("vocab size", n_vocab);
    if (arch[0]) {
        char key[128];
        float base;
        snprintf(key, sizeof key, "%s.rope.freq_base", arch);
        if (!bl_gguf_get_f32(g, key, &base)) {
            bool whole = base > -1e15f && base < 1e15f && base == (float)(int64_t)base;
            printf(whole ? "%-16s %.0f\n" : "%-16s %g\n", "rope base", (double)base);
        } else {
            printf("%-16s - (not set; llama.cpp uses 10000)\n", "rope base");
        }
    }

    /* per-type histogram, and which type holds the most elements */
    uint64_t count[BL_TYPE_COUNT] = {0}, elems[BL_TYPE_COUNT] = {0}, n_params = 0;
    for (size_t i = 0; i < bl_gguf_n_tensors(g); i++) {
        const bl_gguf_tensor_t *t = bl_gguf_tensor_at(g, i);
        count[t->type]++; /* type < BL_TYPE_COUNT: validated at open */
        elems[t->type] += t->n_elems;
        n_params += t->n_elems;
    }
    printf("%-16s %zu", "tensors", bl_gguf_n_tensors(g));
    int dominant = -1;
    const char *sep = " (";
    for (int t = 0; t < BL_TYPE_COUNT; t++) {
        if (!count[t])
            continue;
        printf("%s%s: %" PRIu64, sep, bl_type_info((uint32_t)t)->name, count[t]);
        sep = ", ";
        if (dominant < 0 || elems[t] > elems[dominant])
            dominant = t;
    }
    printf("%s\n", dominant >= 0 ? ")" : "");
    printf("%-16s %s\n", "dominant type",
           dominant >= 0 ? bl_type_info((uint32_t)dominant)->name : "-");
    char hc[32];
    human_count(n_params, hc, sizeof hc);
    printf("%-16s %s (%" PRIu64 ")\n", "parameters", hc, n_params);
    if (!bl_gguf_get_str(g, "tokenizer.chat_template", &s)) {
        /* the first line that is not blank */
        while (s.n && (s.p[0] == '\n' || s.p[0] == '\r' || s.p[0] == ' ')) {
            s.p++;
            s.n--;
        }
        const char *nl = memchr(s.p, '\n', s.n);
        bl_gguf_str_t first = {s.p, nl ? (uint64_t)(nl - s.p) : s.n};
        if (first.n > 200)
            first.n = 200;
        print_str("chat template", first);
    } else {
        printf("%-16s -\n", "chat template");
    }
    printf("%-16s %s\n", "sha256", sha);
    bl_gguf_close(g);
    return 0;
}

int bl_cli_models(int argc, char **argv)
{
    if (argc < 2) {
        fputs(USAGE, stderr);
        return 2;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) {
        fputs(USAGE, stdout);
        return 0;
    }
    if (!strcmp(sub, "inspect")) {
        if (argc == 3 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"))) {
            fputs("usage: ballast models inspect FILE.gguf\n", stdout);
            return 0;
        }
        if (argc != 3) {
            fputs("usage: ballast models inspect FILE.gguf\n", stderr);
            return 2;
        }
        return inspect(argv[2]);
    }
    if (!strcmp(sub, "pull"))
        return bl_cli_models_pull(argc - 1, argv + 1);
    if (!strcmp(sub, "list"))
        return bl_cli_models_list(argc - 1, argv + 1);
    fprintf(stderr, "ballast: unknown models subcommand '%s'\n\n%s", sub, USAGE);
    return 2;
}
