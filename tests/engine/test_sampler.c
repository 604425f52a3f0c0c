/*
 * Sampler: greedy, seeds, top-k / top-p / min-p exclusion, penalties,
 * temperature, and the empirical distribution against the softmax.
 * Built through bl_sampler_new_n() so no model is needed.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "engine/sampler.h"

static bl_sampling_t plain(float temperature)
{
    bl_sampling_t s;
    bl_sampling_default(&s);
    s.temperature = temperature;
    s.top_k = 0;
    s.top_p = 1.0f;
    s.min_p = 0.0f;
    s.seed = 1234;
    return s;
}

static bl_sampler_t *make(uint32_t n_vocab, const bl_sampling_t *s)
{
    bl_sampler_t *sp = NULL;
    assert_int_equal(bl_sampler_new_n(n_vocab, s, &sp), 0);
    assert_non_null(sp);
    return sp;
}

/* deterministic pseudo-random logits for tests */
static void fill_logits(float *l, size_t n, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        l[i] = (float)(x % 20000) / 1000.0f - 10.0f;
    }
}

static void defaults_and_bad_arguments(void **state)
{
    bl_sampling_t s;
    bl_sampling_default(&s);
    assert_true(s.temperature > 0.0f);
    assert_int_equal(s.repeat_last_n, 64);
    assert_true(s.repeat_penalty == 1.0f);
    bl_sampler_t *sp = (bl_sampler_t *)&s;
    assert_int_equal(bl_sampler_new_n(0, &s, &sp), BL_EINVAL);
    assert_null(sp);
    s.repeat_penalty = 0.0f;
    assert_int_equal(bl_sampler_new_n(10, &s, &sp), BL_EINVAL);
    s.repeat_penalty = 1.0f;
    s.temperature = NAN;
    assert_int_equal(bl_sampler_new_n(10, &s, &sp), BL_EINVAL);
    s = plain(0.0f);
    sp = make(4, &s);
    assert_int_equal(bl_sampler_sample(sp, NULL, NULL, 0), BL_EINVAL);
    bl_sampler_free(sp);
    bl_sampler_free(NULL);
}

static void greedy_ties_go_to_lowest_id(void **state)
{
    bl_sampling_t s = plain(0.0f);
    bl_sampler_t *sp = make(6, &s);
    float l[6] = {1.0f, 3.0f, NAN, 3.0f, 2.0f, 3.0f};
    for (int i = 0; i < 10; i++)
        assert_int_equal(bl_sampler_sample(sp, l, NULL, 0), 1);
    float neg[6] = {-INFINITY, -5.0f, -5.0f, -6.0f, -INFINITY, -7.0f};
    assert_int_equal(bl_sampler_sample(sp, neg, NULL, 0), 1);
    bl_sampler_free(sp);

    /* negative temperature is greedy too */
    s = plain(-1.0f);
    sp = make(6, &s);
    assert_int_equal(bl_sampler_sample(sp, l, NULL, 0), 1);
    bl_sampler_free(sp);
}

static void seed_determinism(void **state)
{
    enum { N = 1000, DRAWS = 200 };
    float *l = malloc(N * sizeof(float));
    fill_logits(l, N, 7);
    for (size_t i = 0; i < N; i++)
        l[i] *= 0.3f; /* flatten so draws vary */
    bl_sampling_t s = plain(1.0f);
    s.top_k = 100;
    s.top_p = 0.9f;
    bl_sampler_t *a = make(N, &s), *b = make(N, &s);
    s.seed = 99;
    bl_sampler_t *c = make(N, &s);
    int differ = 0, distinct = 0;
    bl_token_t first = -1;
    for (int i = 0; i < DRAWS; i++) {
        bl_token_t ta = bl_sampler_sample(a, l, NULL, 0);
        bl_token_t tb = bl_sampler_sample(b, l, NULL, 0);
        bl_token_t tc = bl_sampler_sample(c, l, NULL, 0);
        assert_int_equal(ta, tb);
        differ += ta != tc;
        if (i == 0)
            first = ta;
        distinct += ta != first;
    }
    assert_true(differ > 0);
    assert_true(distinct > 0); /* it does sample, not always the top */
    bl_sampler_free(a);
    bl_sampler_free(b);
    bl_sampler_free(c);
    free(l);
}

static void top_k_one_is_greedy(void **state)
{
    enum { N = 151936 };
    float *l = malloc(N * sizeof(float));
    bl_sampling_t g = plain(0.0f), k1 = plain(1.5f);
    k1.top_k = 1;
    bl_sampler_t *sg = make(N, &g), *sk = make(N, &k1);
    for (uint32_t round = 0; round < 20; round++) {
        fill_logits(l, N, round + 1);
        if (round % 2)
            l[N - 1] = l[5] = 11.0f; /* a tie: lowest id wins in both */
        bl_token_t want = bl_sampler_sample(sg, l, NULL, 0);
        if (round % 2)
            assert_int_equal(want, 5);
        assert_int_equal(bl_sampler_sample(sk, l, NULL, 0), want);
    }
    bl_sampler_free(sg);
    bl_sampler_free(sk);
    free(l);
}

static int cmp_desc(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x > y ? -1 : x < y;
}

static void top_k_keeps_only_the_k_best(void **state)
{
    enum { N = 151936, K = 40 };
    float *l = malloc(N * sizeof(float)), *sorted = malloc(N * sizeof(float));
    fill_logits(l, N, 3);
    for (size_t i = 0; i < N; i++)
        l[i] *= 0.05f; /* nearly flat: without top_k almost anything could come */
    memcpy(sorted, l, N * sizeof(float));
    qsort(sorted, N, sizeof(float), cmp_desc);
    float kth = sorted[K - 1];
    bl_sampling_t s = plain(1.0f);
    s.top_k = K;
    bl_sampler_t *sp = make(N, &s);
    int seen_low = 0;
    for (int i = 0; i < 500; i++) {
        bl_token_t t = bl_sampler_sample(sp, l, NULL, 0);
        assert_true(t >= 0 && t < N);
        assert_true(l[t] >= kth);
        seen_low += l[t] < sorted[K / 2];
    }
    assert_true(seen_low > 0);
    bl_sampler_free(sp);
    free(l);
    free(sorted);
}

/* Sample `draws` times; counts[id] per id. */
static void histogram(bl_sampler_t *sp, const float *l, size_t n, int draws, int *counts)
{
    memset(counts, 0, n * sizeof(int));
    for (int i = 0; i < draws; i++) {
        bl_token_t t = bl_sampler_sample(sp, l, NULL, 0);
        assert_true(t >= 0 && (size_t)t < n);
        counts[t]++;
    }
}

static void top_p_excludes_the_tail(void **state)
{
    enum { N = 20000 };
    float *l = malloc(N * sizeof(float));
    int *counts = malloc(N * sizeof(int));
    for (size_t i = 0; i < N; i++)
        l[i] = -30.0f;
    /* probabilities 0.5, 0.3, 0.15, 0.05 on scattered ids */
    l[15000] = logf(0.5f);
    l[7] = logf(0.3f);
    l[123] = logf(0.15f);
    l[19999] = logf(0.05f);
    bl_sampling_t s = plain(1.0f);
    s.top_p = 0.75f; /* 0.5 + 0.3 reaches it */
    bl_sampler_t *sp = make(N, &s);
    histogram(sp, l, N, 1000, counts);
    assert_true(counts[15000] > 0 && counts[7] > 0);
    assert_int_equal(counts[15000] + counts[7], 1000);
    bl_sampler_free(sp);

    /* top_p 0.9 keeps the third */
    s.top_p = 0.9f;
    sp = make(N, &s);
    histogram(sp, l, N, 1000, counts);
    assert_true(counts[123] > 0);
    assert_int_equal(counts[15000] + counts[7] + counts[123], 1000);
    bl_sampler_free(sp);

    /* a flat-ish distribution needing hundreds of candidates (the growing
     * prefix path): every draw is inside the reference nucleus */
    for (size_t i = 0; i < N; i++)
        l[i] = -(float)i * 0.01f;
    double z = 0.0, cum = 0.0;
    for (size_t i = 0; i < N; i++)
        z += exp(l[i]);
    size_t nucleus = 0;
    while (cum < 0.9 * z)
        cum += exp(l[nucleus++]);
    assert_true(nucleus > 64);
    sp = make(N, &s);
    histogram(sp, l, N, 1500, counts);
    int inside = 0, near_edge = 0;
    for (size_t i = 0; i < N; i++) {
        if (i < nucleus)
            inside += counts[i];
        if (i >= nucleus - nucleus / 4 && i < nucleus)
            near_edge += counts[i];
    }
    assert_int_equal(inside, 1500);
    assert_true(near_edge > 0);
    bl_sampler_free(sp);
    free(l);
    free(counts);
}

static void min_p_drops_unlikely_tokens(void **state)
{
    enum { N = 5 };
    float l[N] = {logf(0.4f), logf(0.3f), logf(0.2f), logf(0.06f), logf(0.04f)};
    int counts[N];
    bl_sampling_t s = plain(1.0f);
    s.min_p = 0.12f; /* threshold 0.048: 0.06 stays, 0.04 goes */
    bl_sampler_t *sp = make(N, &s);
    histogram(sp, l, N, 5000, counts);
    assert_int_equal(counts[4], 0);
    assert_true(counts[3] > 0);
    bl_sampler_free(sp);

    s.min_p = 0.0f; /* control: without min_p the 0.04 token does come up */
    sp = make(N, &s);
    histogram(sp, l, N, 5000, counts);
    assert_true(counts[4] > 0);
    bl_sampler_free(sp);
}

static void penalties_change_the_choice(void **state)
{
    float l[4] = {2.0f, 1.9f, -1.0f, -1.1f};
    float copy[4];
    memcpy(copy, l, sizeof l);
    bl_sampling_t s = plain(0.0f);
    s.repeat_penalty = 1.2f;
    bl_sampler_t *sp = make(4, &s);
    bl_token_t h0[] = {0};
    assert_int_equal(bl_sampler_sample(sp, l, NULL, 0), 0);
    assert_int_equal(bl_sampler_sample(sp, l, h0, 1), 1); /* 2.0/1.2 < 1.9 */
    assert_memory_equal(l, copy, sizeof l);               /* input untouched */
    bl_sampler_free(sp);

    /* window: only the last repeat_last_n tokens count */
    s.repeat_last_n = 1;
    sp = make(4, &s);
    bl_token_t h05[] = {0, 3};
    assert_int_equal(bl_sampler_sample(sp, l, h05, 2), 0);
    bl_token_t h50[] = {3, 0};
    assert_int_equal(bl_sampler_sample(sp, l, h50, 2), 1);
    bl_sampler_free(sp);

    /* negative logits are multiplied, so a penalty never raises them */
    float nl[2] = {-1.0f, -1.1f};
    s.repeat_last_n = 64;
    sp = make(2, &s);
    assert_int_equal(bl_sampler_sample(sp, nl, h0, 1), 1);
    /* ids outside the vocabulary in the history are ignored */
    bl_token_t bad[] = {-5, 99, 1};
    assert_int_equal(bl_sampler_sample(sp, nl, bad, 3), 0);
    bl_sampler_free(sp);
}

static void frequency_and_presence(void **state)
{
    float l[3] = {3.0f, 2.5f, 0.0f};
    bl_sampling_t s = plain(0.0f);
    s.frequency_penalty = 0.2f;
    bl_sampler_t *sp = make(3, &s);
    bl_token_t once[] = {0}, twice[] = {0, 2, 0}, thrice[] = {0, 0, 0};
    assert_int_equal(bl_sampler_sample(sp, l, once, 1), 0);   /* 2.8 */
    assert_int_equal(bl_sampler_sample(sp, l, twice, 3), 0);  /* 2.6 */
    assert_int_equal(bl_sampler_sample(sp, l, thrice, 3), 1); /* 2.4 < 2.5 */
    bl_sampler_free(sp);

    s = plain(0.0f);
    s.presence_penalty = 0.6f; /* count does not matter */
    sp = make(3, &s);
    assert_int_equal(bl_sampler_sample(sp, l, NULL, 0), 0);
    assert_int_equal(bl_sampler_sample(sp, l, once, 1), 1);
    assert_int_equal(bl_sampler_sample(sp, l, thrice, 3), 1);
    bl_sampler_free(sp);

    /* the penalties apply when sampling too, not only for greedy */
    s = plain(0.05f);
    s.frequency_penalty = 1.0f;
    sp = make(3, &s);
    for (int i = 0; i < 50; i++)
        assert_int_equal(bl_sampler_sample(sp, l, thrice, 3), 1);
    bl_sampler_free(sp);
}

static void tiny_temperature_approaches_greedy(void **state)
{
    float l[4] = {1.0f, 1.01f, 0.5f, 1.009f};
    const float temps[] = {1e-5f, 1e-8f, 1e-30f};
    for (size_t k = 0; k < 3; k++) {
        bl_sampling_t s = plain(temps[k]);
        bl_sampler_t *sp = make(4, &s);
        for (int i = 0; i < 500; i++)
            assert_int_equal(bl_sampler_sample(sp, l, NULL, 0), 1);
        bl_sampler_free(sp);
    }
    /* and at temperature 1 the others do come up */
    bl_sampling_t s = plain(1.0f);
    bl_sampler_t *sp = make(4, &s);
    int not_top = 0;
    for (int i = 0; i < 200; i++)
        not_top += bl_sampler_sample(sp, l, NULL, 0) != 1;
    assert_true(not_top > 0);
    bl_sampler_free(sp);
}

static double chi_square(const float *l, size_t n, float temp, const int *counts, int draws)
{
    double z = 0.0, chi = 0.0, mx = -INFINITY;
    for (size_t i = 0; i < n; i++)
        mx = l[i] > mx ? l[i] : mx;
    for (size_t i = 0; i < n; i++)
        z += exp((l[i] - mx) / temp);
    for (size_t i = 0; i < n; i++) {
        double e = draws * exp((l[i] - mx) / temp) / z;
        chi += (counts[i] - e) * (counts[i] - e) / e;
    }
    return chi;
}

static void empirical_distribution_matches_softmax(void **state)
{
    enum { N = 8, DRAWS = 20000 };
    const float l[N] = {0.0f, 0.5f, 1.0f, -0.5f, 2.0f, 1.5f, -1.0f, 0.25f};
    const float temps[] = {1.0f, 0.7f, 2.0f};
    int counts[N];
    for (size_t k = 0; k < 3; k++) {
        bl_sampling_t s = plain(temps[k]);
        s.seed = 42 + k;
        bl_sampler_t *sp = make(N, &s);
        histogram(sp, l, N, DRAWS, counts);
        double chi = chi_square(l, N, temps[k], counts, DRAWS);
        /* 7 degrees of freedom: p = 0.001 at 24.3 */
        printf("temperature %.1f: chi-square %.2f\n", temps[k], chi);
        assert_true(chi < 30.0);
        /* a wrong temperature would be far off */
        double wrong = chi_square(l, N, temps[k] * 1.5f, counts, DRAWS);
        assert_true(wrong > 100.0);
        bl_sampler_free(sp);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_and_bad_arguments),
        cmocka_unit_test(greedy_ties_go_to_lowest_id),
        cmocka_unit_test(seed_determinism),
        cmocka_unit_test(top_k_one_is_greedy),
        cmocka_unit_test(top_k_keeps_only_the_k_best),
        cmocka_unit_test(top_p_excludes_the_tail),
        cmocka_unit_test(min_p_drops_unlikely_tokens),
        cmocka_unit_test(penalties_change_the_choice),
        cmocka_unit_test(frequency_and_presence),
        cmocka_unit_test(tiny_temperature_approaches_greedy),
        cmocka_unit_test(empirical_distribution_matches_softmax),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
