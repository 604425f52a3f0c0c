/*
 * Token sampling, in llama.cpp's default chain order:
 *
 *   penalties -> top_k -> top_p -> min_p -> temperature -> draw
 *
 * temperature <= 0 is greedy (after the penalties): the highest logit, ties
 * to the lowest id. Every step works on buffers owned by the sampler (no
 * allocation per call) and none sorts the whole vocabulary: top_k keeps a
 * k-element heap (quickselect for large k), top_p buckets the probability
 * mass by logit and sorts only the bucket where the cut falls, min_p is a
 * linear filter. Candidates are ordered by (logit desc, id asc), a total
 * order, so results do not depend on the selection algorithm. The RNG is
 * xoshiro256** seeded with splitmix64: the same seed and inputs give the same
 * tokens.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/sampler.h"

typedef struct {
    float logit;
    int32_t id;
} cand_t;

struct bl_sampler {
    uint32_t n_vocab;
    bl_sampling_t p;
    uint64_t rng[4];
    cand_t *cand;        /* n_vocab */
    float *weight;       /* n_vocab, softmax numerators of the survivors */
    uint32_t *count;     /* n_vocab, all zero between calls */
    double *bucket_mass; /* N_BUCKETS, for top_p */
};

/* top_p buckets: logits within BUCKET_RANGE nats of the max spread over
 * N_BUCKETS; anything lower shares the last one (weight < e^-30). */
#define N_BUCKETS 4096
#define BUCKET_RANGE 30.0f

void bl_sampling_default(bl_sampling_t *s)
{
    /* llama.cpp's defaults; seed 0 is an ordinary seed (callers wanting
     * variety pass their own) */
    s->temperature = 0.8f;
    s->top_k = 40;
    s->top_p = 0.95f;
    s->min_p = 0.05f;
    s->repeat_penalty = 1.0f;
    s->repeat_last_n = 64;
    s->presence_penalty = 0.0f;
    s->frequency_penalty = 0.0f;
    s->seed = 0;
}

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(uint64_t s[4])
{
    uint64_t r = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

static double rng_uniform(uint64_t s[4]) /* [0, 1) */
{
    return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
}

int bl_sampler_new_n(uint32_t n_vocab, const bl_sampling_t *s, bl_sampler_t **out)
{
    if (!out)
        return BL_EINVAL;
    *out = NULL;
    if (!s || n_vocab == 0 || n_vocab > INT32_MAX)
        return BL_EINVAL;
    if (isnan(s->temperature) || isnan(s->top_p) || isnan(s->min_p) || isnan(s->presence_penalty) ||
        isnan(s->frequency_penalty) || !(s->repeat_penalty > 0.0f) || isinf(s->repeat_penalty))
        return BL_EINVAL;
    bl_sampler_t *sp = calloc(1, sizeof(*sp));
    if (!sp)
        return BL_ENOMEM;
    sp->n_vocab = n_vocab;
    sp->p = *s;
    sp->cand = malloc((size_t)n_vocab * sizeof(*sp->cand));
    sp->weight = malloc((size_t)n_vocab * sizeof(*sp->weight));
    sp->count = calloc(n_vocab, sizeof(*sp->count));
    sp->bucket_mass = malloc(N_BUCKETS * sizeof(*sp->bucket_mass));
    if (!sp->cand || !sp->weight || !sp->count || !sp->bucket_mass) {
        bl_sampler_free(sp);
        return BL_ENOMEM;
    }
    uint64_t x = s->seed;
    for (int i = 0; i < 4; i++)
        sp->rng[i] = splitmix64(&x);
    *out = sp;
    return 0;
}

void bl_sampler_free(bl_sampler_t *s)
{
    if (!s)
        return;
    free(s->cand);
    free(s->weight);
    free(s->count);
    free(s->bucket_mass);
    free(s);
}

/* a ranks before b */
static bool better(const cand_t *a, const cand_t *b)
{
    return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

static int cmp_cand(const void *x, const void *y)
{
    const cand_t *a = x, *b = y;
    return better(a, b) ? -1 : better(b, a) ? 1 : 0;
}

static void swap(cand_t *a, cand_t *b)
{
    cand_t t = *a;
    *a = *b;
    *b = t;
}

/* Rearrange a[0..n) so that a[0..k) are the k best (in no particular order).
 * Quickselect with a median-of-three pivot: expected O(n). */
static void select_top(cand_t *a, size_t n, size_t k)
{
    size_t lo = 0, hi = n;
    if (k == 0 || k >= n)
        return;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2, last = hi - 1;
        if (better(&a[mid], &a[lo]))
            swap(&a[mid], &a[lo]);
        if (better(&a[last], &a[lo]))
            swap(&a[last], &a[lo]);
        if (better(&a[mid], &a[last]))
            swap(&a[mid], &a[last]); /* a[last] is now the median */
        cand_t piv = a[last];
        size_t store = lo;
        for (size_t i = lo; i < last; i++)
            if (better(&a[i], &piv))
                swap(&a[i], &a[store++]);
        swap(&a[store], &a[last]);
        if (store == k)
            return;
        if (k < store)
            hi = store;
        else
            lo = store + 1;
    }
}

static float max_logit(const cand_t *c, size_t n)
{
    float m = -INFINITY;
    for (size_t i = 0; i < n; i++)
        if (c[i].logit > m)
            m = c[i].logit;
    return m;
}

static void apply_penalties(bl_sampler_t *s, const bl_token_t *history, size_t n_history)
{
    const bl_sampling_t *p = &s->p;
    if (!history || n_history == 0 || p->repeat_last_n == 0)
        return;
    if (p->repeat_penalty == 1.0f && p->frequency_penalty == 0.0f && p->presence_penalty == 0.0f)
        return;
    size_t window = n_history;
    if (p->repeat_last_n > 0 && (size_t)p->repeat_last_n < window)
        window = (size_t)p->repeat_last_n;
    const bl_token_t *h = history + (n_history - window);
    for (size_t i = 0; i < window; i++)
        if (h[i] >= 0 && (uint32_t)h[i] < s->n_vocab)
            s->count[h[i]]++;
    /* each distinct token once; candidates are still indexed by id here */
    for (size_t i = 0; i < window; i++) {
        bl_token_t id = h[i];
        if (id < 0 || (uint32_t)id >= s->n_vocab || s->count[id] == 0)
            continue;
        uint32_t c = s->count[id];
        float *l = &s->cand[id].logit;
        /* as llama.cpp: dividing a negative logit would raise it, so multiply */
        if (*l <= 0.0f)
            *l *= p->repeat_penalty;
        else
            *l /= p->repeat_penalty;
        *l -= (float)c * p->frequency_penalty + p->presence_penalty;
        s->count[id] = 0;
    }
}

/* Heap of the k best seen so far, worst at the root. */
static void sift_down(cand_t *h, size_t k, size_t i)
{
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= k)
            return;
        if (c + 1 < k && better(&h[c], &h[c + 1]))
            c++;
        if (!better(&h[i], &h[c]))
            return;
        swap(&h[i], &h[c]);
        i = c;
    }
}

/* Move the k best of c[0..n) to c[0..k), sorted best first. */
static void keep_top_k(cand_t *c, size_t n, size_t k)
{
    if (k >= n) {
        qsort(c, n, sizeof(*c), cmp_cand);
        return;
    }
    if (k <= 4096) {
        /* one pass; after the first few thousand elements almost every
         * candidate loses to the root at the first comparison */
        for (size_t i = k / 2; i-- > 0;)
            sift_down(c, k, i);
        for (size_t i = k; i < n; i++) {
            if (better(&c[i], &c[0])) {
                c[0] = c[i];
                sift_down(c, k, 0);
            }
        }
    } else {
        select_top(c, n, k);
    }
    qsort(c, k, sizeof(*c), cmp_cand);
}

/* e^x for x <= 0; below the float range it is 0 without calling expf,
 * whose underflow path (errno) is many times slower */
static inline float exp_neg(float x)
{
    return x < -87.0f ? 0.0f : expf(x);
}

static size_t bucket_of(float logit, float mx)
{
    float d = (mx - logit) * ((float)N_BUCKETS / BUCKET_RANGE);
    if (!(d < (float)(N_BUCKETS - 1))) /* also -inf logits */
        return N_BUCKETS - 1;
    return d <= 0.0f ? 0 : (size_t)d;
}

/* Keep the smallest best-first prefix holding at least top_p of the mass.
 * Sorted input: walk it. Otherwise bucket the mass by logit, find the
 * bucket where the cumulative mass reaches top_p, and sort only that one:
 * every token in a better bucket is kept, none in a worse one. */
static size_t apply_top_p(bl_sampler_t *s, size_t n, bool *sorted, float top_p)
{
    cand_t *c = s->cand;
    float mx = *sorted ? c[0].logit : max_logit(c, n);
    if (n <= 1 || isinf(mx))
        return n;
    double z = 0.0;
    double *mass = s->bucket_mass;
    if (!*sorted)
        memset(mass, 0, N_BUCKETS * sizeof(*mass));
    for (size_t i = 0; i < n; i++) {
        float w = exp_neg(c[i].logit - mx);
        z += w;
        if (!*sorted)
            mass[bucket_of(c[i].logit, mx)] += w;
    }
    double target = (double)top_p * z, cum = 0.0;
    if (*sorted) {
        for (size_t i = 0; i < n; i++) {
            cum += exp_neg(c[i].logit - mx);
            if (cum >= target)
                return i + 1;
        }
        return n;
    }

    size_t cut = 0;
    while (cut < N_BUCKETS - 1 && cum + mass[cut] < target)
        cum += mass[cut++];

    /* better buckets to the front, then the cut bucket */
    size_t front = 0;
    for (size_t i = 0; i < n; i++)
        if (bucket_of(c[i].logit, mx) < cut)
            swap(&c[i], &c[front++]);
    size_t end = front;
    for (size_t i = front; i < n; i++)
        if (bucket_of(c[i].logit, mx) == cut)
            swap(&c[i], &c[end++]);
    qsort(c + front, end - front, sizeof(*c), cmp_cand);
    for (size_t i = front; i < end; i++) {
        cum += exp_neg(c[i].logit - mx);
        if (cum >= target)
            return i + 1;
    }
    return end; /* rounding: the whole cut bucket */
}

bl_token_t bl_sampler_sample(bl_sampler_t *s, const float *logits, const bl_token_t *history,
                             size_t n_history)
{
    if (!s || !logits)
        return BL_EINVAL;
    const bl_sampling_t *p = &s->p;
    cand_t *c = s->cand;
    size_t n = s->n_vocab;
    for (size_t i = 0; i < n; i++) {
        float l = logits[i];
        c[i].logit = isnan(l) ? -INFINITY : l;
        c[i].id = (int32_t)i;
    }
    apply_penalties(s, history, n_history);

    if (p->temperature <= 0.0f) {
        size_t best = 0;
        for (size_t i = 1; i < n; i++)
            if (c[i].logit > c[best].logit)
                best = i;
        return c[best].id;
    }

    bool sorted = false;
    if (p->top_k > 0 && (size_t)p->top_k < n) {
        keep_top_k(c, n, (size_t)p->top_k);
        n = (size_t)p->top_k;
        sorted = true;
    }
    if (p->top_p < 1.0f)
        n = apply_top_p(s, n, &sorted, p->top_p);
    if (p->min_p > 0.0f && n > 1) {
        float mx = sorted ? c[0].logit : max_logit(c, n);
        if (isfinite(mx)) {
            /* prob >= min_p * max_prob  <=>  logit >= max + log(min_p) */
            float thr = mx + logf(p->min_p);
            size_t m = 0;
            for (size_t i = 0; i < n; i++)
                if (c[i].logit >= thr)
                    c[m++] = c[i];
            n = m;
        }
    }

    /* softmax at the temperature */
    float mx = sorted ? c[0].logit : max_logit(c, n);
    if (isinf(mx)) {
        size_t best = 0;
        for (size_t i = 1; i < n; i++)
            if (better(&c[i], &c[best]))
                best = i;
        return c[best].id;
    }
    double sum = 0.0;
    float inv_t = 1.0f / p->temperature;
    for (size_t i = 0; i < n; i++) {
        /* the best is exactly 1 even when inv_t overflows to inf */
        float w = c[i].logit == mx ? 1.0f : exp_neg((c[i].logit - mx) * inv_t);
        s->weight[i] = w;
        sum += w;
    }
    double u = rng_uniform(s->rng) * sum, acc = 0.0;
    size_t last = 0;
    for (size_t i = 0; i < n; i++) {
        if (s->weight[i] <= 0.0f)
            continue;
        acc += s->weight[i];
        last = i;
        if (u < acc)
            return c[i].id;
    }
    return c[last].id;
}
