/*
 * contract.c - the two ways the library reports a broken contract: a panic
 * for its own invariants (amb__panic, AMB__CHECK) and a report of the
 * caller's misuse of the API (AMB__MISUSE), both declared in internal.h.
 *
 * Invariant: a panic never returns and writes its one line to stderr before
 * aborting, so the file and line survive a crash of the whole OS process.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

void amb__contract_panic_at(const char *file, int line, const char *fmt, ...)
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
void amb__contract_misuse_at(const char *file, int line)
{
    const char *abort_env = getenv("AMB_ABORT_ON_MISUSE");
    if (abort_env != NULL && abort_env[0] == '1')
        amb__contract_panic_at(file, line, "API misuse (AMB_EBADARG)");
}
