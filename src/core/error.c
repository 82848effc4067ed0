/*
 * error.c - the text of the error codes (the AMB_ERRORS table in core.h) and
 * the library version.
 */

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
