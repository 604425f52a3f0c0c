#include "obs/obs.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LABELS 6
#define MAX_BUCKETS 24

typedef struct {
    char *labels;        /* rendered: a="x",b="y" (escaped) */
    char *key;           /* the raw values, each ended by 0x1f: what lookups compare */
    size_t key_len;
    uint64_t hash;
    double value;        /* counter / gauge */
    uint64_t *counts;    /* histogram: per bucket (not cumulative) + the +Inf one */
    double sum;
    uint64_t count;
} series_t;

struct bl_metric {
    char *name;
    char *help;
    bl_metric_kind_t kind;
    char *label_names[MAX_LABELS];
    size_t n_labels;
    double bounds[MAX_BUCKETS];
    size_t n_bounds;
    series_t *slots;     /* open addressing, power-of-two size */
    size_t n_slots, n_used;
};

struct bl_metrics {
    bl_metric_t **fams;
    size_t n, cap;
};

static const double DEFAULT_SECONDS_BUCKETS[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                 0.25,  0.5,    1,     2.5,  5,     10,   30, 60};

int bl_metrics_new(bl_metrics_t **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? BL_OK : BL_ENOMEM;
}

static void family_free(bl_metric_t *f)
{
    for (size_t i = 0; i < f->n_slots; i++) {
        free(f->slots[i].labels);
        free(f->slots[i].key);
        free(f->slots[i].counts);
    }
    free(f->slots);
    for (size_t i = 0; i < f->n_labels; i++)
        free(f->label_names[i]);
    free(f->name);
    free(f->help);
    free(f);
}

void bl_metrics_free(bl_metrics_t *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++)
        family_free(m->fams[i]);
    free(m->fams);
    free(m);
}

bl_metric_t *bl_metric_family(bl_metrics_t *m, const char *name, bl_metric_kind_t kind,
                              const char *help, const char *labels)
{
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 16;
        bl_metric_t **p = realloc(m->fams, cap * sizeof *p);
        if (!p)
            return NULL;
        m->fams = p;
        m->cap = cap;
    }
    bl_metric_t *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->name = strdup(name);
    f->help = strdup(help);
    f->kind = kind;
    const char *p = labels;
    while (p && *p && f->n_labels < MAX_LABELS) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        f->label_names[f->n_labels++] = strndup(p, n);
        p = e ? e + 1 : NULL;
    }
    if (kind == BL_METRIC_HISTOGRAM)
        bl_metric_set_buckets(f, DEFAULT_SECONDS_BUCKETS, BL_ARRAY_LEN(DEFAULT_SECONDS_BUCKETS));
    m->fams[m->n++] = f;
    return f;
}

void bl_metric_set_buckets(bl_metric_t *f, const double *bounds, size_t n)
{
    f->n_bounds = BL_MIN(n, (size_t)MAX_BUCKETS);
    memcpy(f->bounds, bounds, f->n_bounds * sizeof *bounds);
}

/* Label values are escaped as the exposition format requires: \\, \", \n. */
static void render_labels(const bl_metric_t *f, const char *const *values, bl_buf_t *out)
{
    for (size_t i = 0; i < f->n_labels; i++) {
        bl_buf_printf(out, "%s%s=\"", i ? "," : "", f->label_names[i]);
        for (const char *v = values && values[i] ? values[i] : ""; *v; v++) {
            if (*v == '\\' || *v == '"')
                bl_buf_printf(out, "\\%c", *v);
            else if (*v == '\n')
                bl_buf_append_str(out, "\\n");
            else
                bl_buf_append(out, v, 1);
        }
        bl_buf_append(out, "\"", 1);
    }
}

static uint64_t fnv1a(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static int grow(bl_metric_t *f)
{
    size_t n = f->n_slots ? f->n_slots * 2 : 8;
    series_t *slots = calloc(n, sizeof *slots);
    if (!slots)
        return BL_ENOMEM;
    for (size_t i = 0; i < f->n_slots; i++) {
        series_t *s = &f->slots[i];
        if (!s->labels)
            continue;
        size_t j = s->hash & (n - 1);
        while (slots[j].labels)
            j = (j + 1) & (n - 1);
        slots[j] = *s;
    }
    free(f->slots);
    f->slots = slots;
    f->n_slots = n;
    return BL_OK;
}

/* The series of these label values. Runs on every update, so the values
 * are hashed and compared as they are (joined by 0x1f, on the stack);
 * rendering and escaping happen once, when a series is first seen. */
static series_t *lookup(bl_metric_t *f, const char *const *values)
{
    char stack[512];
    bl_buf_t heap = {0};
    char *key = stack;
    size_t n = 0;
    for (size_t i = 0; i < f->n_labels; i++) {
        const char *v = values && values[i] ? values[i] : "";
        size_t vn = strlen(v);
        if (key == stack && n + vn + 1 > sizeof stack) {
            if (bl_buf_append(&heap, stack, n))
                return NULL;
            key = NULL;
        }
        if (key == stack) {
            memcpy(stack + n, v, vn);
            stack[n + vn] = '\x1f';
        } else if (bl_buf_append(&heap, v, vn) || bl_buf_append(&heap, "\x1f", 1)) {
            bl_buf_free(&heap);
            return NULL;
        }
        n += vn + 1;
    }
    if (key != stack)
        key = heap.data ? heap.data : stack;
    series_t *found = NULL;
    uint64_t h = fnv1a(key, n);
    if ((f->n_used + 1) * 4 > f->n_slots * 3 && grow(f))
        goto done;
    size_t j = h & (f->n_slots - 1);
    while (f->slots[j].labels) {
        if (f->slots[j].hash == h && f->slots[j].key_len == n && !memcmp(f->slots[j].key, key, n)) {
            found = &f->slots[j];
            goto done;
        }
        j = (j + 1) & (f->n_slots - 1);
    }
    series_t *sr = &f->slots[j];
    bl_buf_t rendered = {0};
    render_labels(f, values, &rendered);
    char *kcopy = malloc(n ? n : 1);
    char *labels = bl_buf_steal(&rendered, NULL);
    if (!kcopy || !labels) {
        free(kcopy);
        free(labels);
        goto done;
    }
    memcpy(kcopy, key, n);
    if (f->kind == BL_METRIC_HISTOGRAM) {
        sr->counts = calloc(f->n_bounds + 1, sizeof *sr->counts);
        if (!sr->counts) {
            free(kcopy);
            free(labels);
            goto done;
        }
    }
    sr->labels = labels;
    sr->key = kcopy;
    sr->key_len = n;
    sr->hash = h;
    f->n_used++;
    found = sr;
done:
    bl_buf_free(&heap);
    return found;
}

void bl_metric_add(bl_metric_t *f, double v, const char *const *label_values)
{
    series_t *s = f ? lookup(f, label_values) : NULL;
    if (s)
        s->value += v;
}

void bl_metric_set(bl_metric_t *f, double v, const char *const *label_values)
{
    series_t *s = f ? lookup(f, label_values) : NULL;
    if (s)
        s->value = v;
}

void bl_metric_observe(bl_metric_t *f, double v, const char *const *label_values)
{
    series_t *s = f ? lookup(f, label_values) : NULL;
    if (!s || !s->counts)
        return;
    size_t b = 0;
    while (b < f->n_bounds && v > f->bounds[b])
        b++;
    s->counts[b]++;
    s->sum += v;
    s->count++;
}

void bl_metric_clear(bl_metric_t *f)
{
    for (size_t i = 0; i < f->n_slots; i++) {
        free(f->slots[i].labels);
        free(f->slots[i].key);
        free(f->slots[i].counts);
    }
    if (f->slots)
        memset(f->slots, 0, f->n_slots * sizeof *f->slots);
    f->n_used = 0;
}

static void fmt_num(bl_buf_t *out, double v)
{
    if (isinf(v))
        bl_buf_append_str(out, v > 0 ? "+Inf" : "-Inf");
    else if (v == (double)(int64_t)v && fabs(v) < 1e15)
        bl_buf_printf(out, "%lld", (long long)v);
    else
        bl_buf_printf(out, "%.9g", v);
}

/* Series are rendered sorted by their label text so the output is stable. */
static int cmp_series(const void *a, const void *b)
{
    const series_t *x = *(series_t *const *)a, *y = *(series_t *const *)b;
    return strcmp(x->labels, y->labels);
}

int bl_metrics_render(const bl_metrics_t *m, bl_buf_t *out)
{
    static const char *const KIND[] = {"counter", "gauge", "histogram"};
    for (size_t i = 0; i < m->n; i++) {
        const bl_metric_t *f = m->fams[i];
        bl_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name,
                      KIND[f->kind]);
        if (!f->n_used)
            continue;
        series_t **order = malloc(f->n_used * sizeof *order);
        if (!order)
            return BL_ENOMEM;
        size_t k = 0;
        for (size_t j = 0; j < f->n_slots; j++)
            if (f->slots[j].labels)
                order[k++] = &f->slots[j];
        qsort(order, k, sizeof *order, cmp_series);
        for (size_t j = 0; j < k; j++) {
            const series_t *s = order[j];
            const char *sep = *s->labels ? "," : "";
            if (f->kind != BL_METRIC_HISTOGRAM) {
                bl_buf_printf(out, "%s%s%s%s ", f->name, *s->labels ? "{" : "", s->labels,
                              *s->labels ? "}" : "");
                fmt_num(out, s->value);
                bl_buf_append(out, "\n", 1);
                continue;
            }
            uint64_t cum = 0;
            for (size_t b = 0; b <= f->n_bounds; b++) {
                cum += s->counts[b];
                bl_buf_printf(out, "%s_bucket{%s%sle=\"", f->name, s->labels, sep);
                fmt_num(out, b < f->n_bounds ? f->bounds[b] : INFINITY);
                bl_buf_printf(out, "\"} %llu\n", (unsigned long long)cum);
            }
            bl_buf_printf(out, "%s_sum%s%s%s ", f->name, *s->labels ? "{" : "", s->labels,
                          *s->labels ? "}" : "");
            fmt_num(out, s->sum);
            bl_buf_printf(out, "\n%s_count%s%s%s %llu\n", f->name, *s->labels ? "{" : "",
                          s->labels, *s->labels ? "}" : "", (unsigned long long)s->count);
        }
        free(order);
    }
    return BL_OK;
}
