/*
 * error.c - the text of the error codes (the AMB_ERRORS table in core.h), the
 * library version, and the two ways the library reports a broken contract:
 * amb__panic for its own invariants and amb__misuse_at for the caller's.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

const char *amb_version(void)
{
    return AMB_VERSION_STRING;
}

const char *amb_strerror(int code)
{
    switch (code) {
    case AMB_OK:
        return "success";
#define AMB__ERR_TEXT(name, value, msg) \
    case AMB_E##name:                   \
        return msg;
        AMB_ERRORS(AMB__ERR_TEXT)
#undef AMB__ERR_TEXT
    default:
        return "unknown error";
    }
}

const char *amb_err_name(int code)
{
    switch (code) {
    case AMB_OK:
        return "AMB_OK";
#define AMB__ERR_NAME(name, value, msg) \
    case AMB_E##name:                   \
        return "AMB_E" #name;
        AMB_ERRORS(AMB__ERR_NAME)
#undef AMB__ERR_NAME
    default:
        return "AMB_E?";
    }
}

void amb__panic_at(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "ambitious: panic at %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    abort();
}

/* Debug builds report API misuse where it happens. It aborts only when
 * AMB_ABORT_ON_MISUSE is set in the environment, because the test suite
 * itself checks that misuse is answered with AMB_EBADARG. */
void amb__misuse_at(const char *file, int line)
{
    const char *abort_env = getenv("AMB_ABORT_ON_MISUSE");
    if (abort_env != NULL && abort_env[0] == '1')
        amb__panic_at(file, line, "API misuse (AMB_EBADARG)");
}
