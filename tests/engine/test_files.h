/* Test-only helpers for reading the shared fixtures (../shared, found
 * through $BALLAST_SHARED, which ctest sets). Header-only: each test is
 * one executable. Include after <cmocka.h>. */
#ifndef BL_TEST_FILES_H
#define BL_TEST_FILES_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "$BALLAST_SHARED/rel", malloc'd; fails the test when the variable is unset. */
static inline char *path_in_shared(const char *rel)
{
    const char *shared = getenv("BALLAST_SHARED");
    if (!shared)
        fail_msg("BALLAST_SHARED is not set (ctest sets it)");
    size_t n = strlen(shared) + strlen(rel) + 2;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/%s", shared, rel);
    return p;
}

/* The whole file, NUL-terminated, malloc'd; fails the test when unreadable.
 * len may be NULL. */
static inline char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = 0;
    fclose(f);
    if (len)
        *len = (size_t)n;
    return buf;
}

#endif
