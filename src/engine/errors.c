#include <ballast/errors.h>

const char *bl_strerror(int err)
{
    switch (err) {
    case BL_OK: return "success";
    case BL_ENOMEM: return "out of memory";
    case BL_EINVAL: return "invalid argument";
    case BL_EIO: return "input/output error";
    case BL_ENOENT: return "not found";
    case BL_EFORMAT: return "malformed input";
    case BL_ERANGE: return "value out of range";
    case BL_EUNSUPPORTED: return "not supported";
    case BL_ETIMEDOUT: return "timed out";
    case BL_ECANCELED: return "canceled";
    case BL_EBUSY: return "busy";
    case BL_ESTATE: return "invalid state";
    case BL_ECONTEXT: return "does not fit the context";
    }
    return "unknown error";
}
