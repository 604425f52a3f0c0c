/*
 * Persistent worker pool; see threadpool.h.
 *
 * Protocol: the caller publishes a loop (fn, arg, counters), then opens it by
 * storing its generation in open_gen and bumping gen. A worker that sees a
 * new gen registers in `active` and only then checks that the loop it saw is
 * still open, so the caller can close the loop (open_gen = 0), wait for
 * active == 0, and know no worker will touch the loop afterwards: everyone
 * who could is either done or will see it closed. All atomics are seq_cst.
 */
#include "engine/threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include <ballast/errors.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

/* How long a worker polls for the next loop before sleeping (pause loops). */
#define SPIN_ROUNDS 20000

struct bl_pool {
    int n;              /* threads including the caller */
    pthread_t *threads; /* n - 1 workers */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_uint gen;      /* bumped once per loop */
    atomic_uint open_gen; /* gen of the loop that may be joined, 0 when closed */
    atomic_int active;    /* workers inside (or checking) a loop */
    atomic_int n_sleeping;
    atomic_bool quit;
    /* the current loop */
    bl_pool_fn fn;
    void *arg;
    size_t n_items, grain;
    atomic_size_t next;
};

typedef struct {
    bl_pool_t *p;
} worker_arg_t;

static void claim_and_run(bl_pool_t *p)
{
    for (;;) {
        size_t i0 = atomic_fetch_add(&p->next, p->grain);
        if (i0 >= p->n_items)
            return;
        size_t i1 = i0 + p->grain < p->n_items ? i0 + p->grain : p->n_items;
        p->fn(p->arg, i0, i1);
    }
}

static void *worker(void *v)
{
    bl_pool_t *p = v;
    unsigned seen = atomic_load(&p->gen);
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load(&p->gen)) == seen && !atomic_load(&p->quit) &&
               spins++ < SPIN_ROUNDS)
            cpu_relax();
        if (g == seen && !atomic_load(&p->quit)) {
            /* Dekker-style with bl_pool_for: announce sleeping, then re-check
             * under the mutex the caller broadcasts under. */
            atomic_fetch_add(&p->n_sleeping, 1);
            pthread_mutex_lock(&p->mu);
            while ((g = atomic_load(&p->gen)) == seen && !atomic_load(&p->quit))
                pthread_cond_wait(&p->cv, &p->mu);
            pthread_mutex_unlock(&p->mu);
            atomic_fetch_sub(&p->n_sleeping, 1);
        }
        if (atomic_load(&p->quit))
            return NULL;
        seen = g;
        atomic_fetch_add(&p->active, 1);
        if (atomic_load(&p->open_gen) == g)
            claim_and_run(p);
        atomic_fetch_sub(&p->active, 1);
    }
}

int bl_pool_new(int n_threads, bl_pool_t **out)
{
    *out = NULL;
    if (n_threads <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = c > 0 ? (int)c : 1;
    }
    if (n_threads > 256)
        return BL_ERANGE;
    bl_pool_t *p = calloc(1, sizeof *p);
    if (!p)
        return BL_ENOMEM;
    p->n = 1;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (n_threads > 1) {
        p->threads = calloc((size_t)n_threads - 1, sizeof *p->threads);
        if (!p->threads)
            goto fail;
    }
    for (int i = 1; i < n_threads; i++) {
        if (pthread_create(&p->threads[i - 1], NULL, worker, p) != 0)
            goto fail;
        p->n = i + 1; /* threads actually started, for bl_pool_free */
    }
    *out = p;
    return 0;
fail:
    bl_pool_free(p);
    return BL_ENOMEM;
}

void bl_pool_free(bl_pool_t *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->quit, true);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++)
        pthread_join(p->threads[i - 1], NULL);
    free(p->threads);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

int bl_pool_size(const bl_pool_t *p)
{
    return p ? p->n : 1;
}

void bl_pool_for(bl_pool_t *p, size_t n, size_t grain, bl_pool_fn fn, void *arg)
{
    if (n == 0)
        return;
    if (grain == 0) {
        grain = n / ((size_t)p->n * 4);
        if (grain == 0)
            grain = 1;
    }
    if (p->n == 1 || grain >= n) {
        fn(arg, 0, n);
        return;
    }
    /* No worker is inside a loop here (the last one ended with active == 0
     * after it closed), so the loop's fields are ours to write. */
    p->fn = fn;
    p->arg = arg;
    p->n_items = n;
    p->grain = grain;
    atomic_store(&p->next, 0);
    unsigned g = atomic_load(&p->gen) + 1;
    if (g == 0)
        g = 1; /* 0 means closed */
    atomic_store(&p->open_gen, g);
    atomic_store(&p->gen, g);
    if (atomic_load(&p->n_sleeping) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    claim_and_run(p);
    /* Every range is claimed; close the loop and wait for those still
     * running theirs (a worker that has not joined yet never will). */
    atomic_store(&p->open_gen, 0);
    int spins = 0;
    while (atomic_load(&p->active) > 0) {
        if (++spins > 2000)
            sched_yield();
        else
            cpu_relax();
    }
}
