/*
 * A fixed pool of worker threads for parallel loops.
 *
 * The pool is created once per model. bl_pool_for() runs fn over the items
 * [0, n) in ranges of `grain` items that the caller and the workers claim from
 * a shared counter, and returns when every range is done. Work is claimed, not
 * assigned, so a worker that is descheduled (a busy machine, the gateway's
 * other threads) never holds up the loop: the others take its share, and a
 * worker that arrives after the loop has closed does nothing.
 *
 * Workers spin briefly after a loop (decode issues hundreds of small loops
 * per token) and then sleep on a condition variable, so an idle pool uses no
 * CPU.
 */
#ifndef BL_ENGINE_THREADPOOL_H
#define BL_ENGINE_THREADPOOL_H

#include <stddef.h>

typedef struct bl_pool bl_pool_t;
/* Process items [i0, i1). */
typedef void (*bl_pool_fn)(void *arg, size_t i0, size_t i1);

/* n_threads counts the caller; 0 means the number of online cores. */
int bl_pool_new(int n_threads, bl_pool_t **out);
void bl_pool_free(bl_pool_t *p);
int bl_pool_size(const bl_pool_t *p);
/* Run fn over [0, n) in claimed ranges of grain items (0 = pick one). One
 * loop at a time per pool. */
void bl_pool_for(bl_pool_t *p, size_t n, size_t grain, bl_pool_fn fn, void *arg);

#endif
