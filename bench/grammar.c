/*
 * Grammar mask benchmark: milliseconds per bl_gmatch_mask call over a real
 * vocabulary (default: the 151k-token Qwen2 one), at several points of a
 * JSON value, cold (fresh matcher: the transition memo is built during the
 * call) and warm (same state again), plus a random walk through the
 * language (each step masks, then takes a random allowed token: what a
 * generation pays per token). The peer measured in the same run is the
 * plain loop that asks the matcher about every token's bytes
 * (bl_gmatch_accepts, memoised too) instead of walking the trie.
 * Usage: grammar [VOCAB.gguf] [walk steps, default 200]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ballast/engine.h>

#include "engine/gguf/gguf.h"
#include "engine/grammar/grammar.h"
#include "engine/tokenizer/tokenizer.h"

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

static void print_cpu(void)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f)) {
        if (!strncmp(line, "model name", 10)) {
            printf("cpu: %s", strchr(line, ':') + 2);
            break;
        }
    }
    if (f)
        fclose(f);
}

static const char *schema =
    "{\"type\":\"object\",\"properties\":{\"location\":{\"type\":\"string\"},"
    "\"unit\":{\"enum\":[\"celsius\",\"fahrenheit\"]},\"days\":{\"type\":\"integer\","
    "\"minimum\":0},\"detail\":{\"type\":\"object\",\"properties\":{\"hourly\":{\"type\":"
    "\"boolean\"},\"fields\":{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"maxItems\":"
    "8}}}},\"required\":[\"location\",\"unit\"]}";

typedef struct {
    const char *name;
    bool any_object; /* json_object grammar instead of the schema */
    const char *prefix;
} point_t;

static const point_t points[] = {
    {"start of value", false, ""},
    {"in a free string", false, "{\"location\": \"San Fr"},
    {"at an enum", false, "{\"location\": \"Paris\", \"unit\": \""},
    {"at a key (optional props)", false, "{\"location\": \"Paris\", \"unit\": \"celsius\", "},
    {"in an integer", false, "{\"location\": \"Paris\", \"unit\": \"celsius\", \"days\": 1"},
    {"json_object, deep string", true, "{\"a\": {\"b\": [1, {\"c\": \"x"},
    {"json_object, key", true, "{\"a\": {\"b\": [1, {"},
};

static bl_grammar_t *grammar_for(bool any_object)
{
    bl_grammar_t *g = NULL;
    char err[256];
    int rc = any_object ? bl_grammar_json_object(&g)
                        : bl_grammar_from_schema(schema, strlen(schema), &g, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "grammar: %s\n", err);
        exit(1);
    }
    return g;
}

static int naive_mask(bl_gmatch_t *m, const bl_vtrie_t *t, float *logits, uint32_t nv)
{
    int n = 0;
    for (uint32_t i = 0; i < nv; i++) {
        const char *p;
        size_t pn;
        bl_vtrie_piece(t, (bl_token_t)i, &p, &pn);
        bool ok = bl_vtrie_is_eog(t, (bl_token_t)i) ? bl_gmatch_complete(m)
                                                    : pn && bl_gmatch_accepts(m, p, pn);
        if (ok)
            n++;
        else
            logits[i] = -INFINITY;
    }
    return n;
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "../shared/models/vocab/ggml-vocab-qwen2.gguf";
    int steps = argc > 2 ? atoi(argv[2]) : 200;
    char err[256];
    bl_gguf_t *gg = NULL;
    bl_tok_t *tok = NULL;
    if (bl_gguf_open(path, &gg, err, sizeof err) < 0 ||
        bl_tok_from_gguf(gg, &tok, err, sizeof err) < 0) {
        fprintf(stderr, "%s: %s\n", path, err);
        return 1;
    }
    uint32_t nv = bl_tok_n_vocab(tok);
    const char **piece = calloc(nv, sizeof *piece);
    uint32_t *len = calloc(nv, sizeof *len);
    uint8_t *eog = calloc(nv, 1);
    float *logits = malloc(nv * sizeof *logits);
    for (uint32_t i = 0; i < nv; i++) {
        size_t pn = 0;
        bl_tok_piece_ref(tok, (bl_token_t)i, false, &piece[i], &pn);
        len[i] = (uint32_t)pn;
        eog[i] = bl_tok_is_eog(tok, (bl_token_t)i);
    }
    print_cpu();
    double t0 = now_ms();
    bl_vtrie_t *t = NULL;
    if (bl_vtrie_new(nv, piece, len, eog, &t) < 0)
        return 1;
    printf("vocab: %s, %u tokens, trie %zu nodes, built in %.1f ms (once per model)\n", path, nv,
           bl_vtrie_n_nodes(t), now_ms() - t0);
    printf("%-28s %8s %10s %10s %12s %8s\n", "point", "allowed", "cold ms", "warm ms",
           "per-token ms", "ratio");
    for (size_t k = 0; k < sizeof points / sizeof points[0]; k++) {
        const point_t *pt = &points[k];
        bl_grammar_t *g = grammar_for(pt->any_object);
        bl_gmatch_t *m = NULL;
        bl_gmatch_new(g, &m);
        bl_gmatch_advance(m, pt->prefix, strlen(pt->prefix));
        memset(logits, 0, nv * sizeof *logits);
        double a = now_ms();
        int n = bl_gmatch_mask(m, t, logits, nv);
        double cold = now_ms() - a;
        const int reps = 20;
        a = now_ms();
        for (int r = 0; r < reps; r++)
            bl_gmatch_mask(m, t, logits, nv);
        double warm = (now_ms() - a) / reps;
        a = now_ms();
        for (int r = 0; r < 3; r++)
            naive_mask(m, t, logits, nv);
        double naive = (now_ms() - a) / 3;
        printf("%-28s %8d %10.2f %10.2f %12.2f %7.1fx\n", pt->name, n, cold, warm, naive,
               naive / warm);
        bl_gmatch_free(m);
        bl_grammar_free(g);
    }

    /* a random walk: what a generation pays per token */
    for (int any = 0; any < 2; any++) {
        bl_grammar_t *g = grammar_for(any);
        bl_gmatch_t *m = NULL;
        bl_gmatch_new(g, &m);
        uint32_t x = 42;
        double total = 0, worst = 0;
        int done = 0, values = 0;
        for (int s = 0; s < steps; s++) {
            memset(logits, 0, nv * sizeof *logits);
            double a = now_ms();
            int n = bl_gmatch_mask(m, t, logits, nv);
            double d = now_ms() - a;
            total += d;
            worst = d > worst ? d : worst;
            done++;
            if (n <= 0)
                break;
            /* a random allowed non-EOG token; restart after a whole value */
            uint32_t pick = 0, cnt = 0;
            x = x * 1103515245u + 12345u;
            for (uint32_t i = 0; i < nv; i++)
                if (logits[i] != -INFINITY && !eog[i] && (x >> 4) % ++cnt == 0)
                    pick = i;
            if (cnt == 0 || bl_gmatch_done(m)) {
                bl_gmatch_free(m);
                bl_gmatch_new(g, &m);
                values++;
                continue;
            }
            bl_gmatch_advance(m, piece[pick], len[pick]);
        }
        printf("random walk (%s): %d steps, %d values, mean %.2f ms, worst %.2f ms per mask\n",
               any ? "json_object" : "schema", done, values, total / done, worst);
        bl_gmatch_free(m);
        bl_grammar_free(g);
    }
    bl_vtrie_free(t);
    free(piece);
    free(len);
    free(eog);
    free(logits);
    bl_tok_free(tok);
    bl_gguf_close(gg);
    return 0;
}
