/*
 * ballast error codes, shared by the engine library and the gateway.
 *
 * Functions that can fail return int: 0 on success or one of these negative
 * codes. They mirror errno names so a reader can guess their meaning; the
 * values are our own so they are stable across platforms.
 */
#ifndef BALLAST_ERRORS_H
#define BALLAST_ERRORS_H

#ifdef __cplusplus
extern "C" {
#endif

enum {
    BL_OK = 0,
    BL_ENOMEM = -1,     /* allocation failed or a size would overflow */
    BL_EINVAL = -2,     /* bad argument or malformed input */
    BL_EIO = -3,        /* read/write/mmap failed */
    BL_ENOENT = -4,     /* file or named thing not found */
    BL_EFORMAT = -5,    /* input does not follow its format (GGUF, JSON, YAML) */
    BL_ERANGE = -6,     /* a value or size is out of the allowed range */
    BL_EUNSUPPORTED = -7, /* valid but not supported (architecture, type) */
    BL_ETIMEDOUT = -8,
    BL_ECANCELED = -9,
    BL_EBUSY = -10,     /* queue full, try later */
    BL_ESTATE = -11,    /* call not valid in the current state */
    BL_ECONTEXT = -12,  /* prompt does not fit the context */
};

/* A short static English description of an error code; never NULL. */
const char *bl_strerror(int err);

#ifdef __cplusplus
}
#endif
#endif
