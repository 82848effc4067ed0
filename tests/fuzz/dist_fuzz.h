/*
 * dist_fuzz.h - what the distribution fuzz targets share: a check that
 * aborts (so libFuzzer and the corpus replay report it), equality of two
 * decoded control messages, and the decoding limits every target uses.
 *
 * The atom budget: an input may make up to 16 new atoms (so real captures,
 * with node names nobody made yet, decode), and the whole fuzzing run at
 * most DIST_FUZZ_ATOMS beyond what existed at its first input: the budget's
 * reserve keeps the rest of the table, so millions of runs cannot fill it.
 * Once the run's allowance is spent, unknown atoms are AMB_ESYSLIMIT, a
 * documented failure like any other.
 */
#ifndef AMB_TESTS_DIST_FUZZ_H
#define AMB_TESTS_DIST_FUZZ_H

#include <stdio.h>
#include <stdlib.h>

#include "ambitious.h"
#include "dist/control.h"

static inline void dist_fuzz_check(bool ok, const char *target, const char *what)
{
    if (!ok) {
        fprintf(stderr, "%s: %s\n", target, what);
        abort();
    }
}

static inline bool dist_fuzz_term_eq(amb_term a, amb_term b)
{
    return a == b || (a != AMB_NONE && b != AMB_NONE && amb_equal(a, b));
}

/* Field-by-field equality of two decoded messages. */
static inline bool dist_fuzz_ctl_eq(const amb__dist_ctl *a, const amb__dist_ctl *b)
{
    return a->op == b->op && dist_fuzz_term_eq(a->from, b->from) &&
           dist_fuzz_term_eq(a->to, b->to) && dist_fuzz_term_eq(a->ref, b->ref) &&
           dist_fuzz_term_eq(a->reason, b->reason) &&
           dist_fuzz_term_eq(a->token, b->token) &&
           dist_fuzz_term_eq(a->unused, b->unused) &&
           dist_fuzz_term_eq(a->message, b->message) && a->id == b->id &&
           dist_fuzz_term_eq(a->group_leader, b->group_leader) &&
           dist_fuzz_term_eq(a->module, b->module) &&
           dist_fuzz_term_eq(a->function, b->function) && a->arity == b->arity &&
           dist_fuzz_term_eq(a->opts, b->opts) && a->spawn_flags == b->spawn_flags &&
           dist_fuzz_term_eq(a->result, b->result);
}

#define DIST_FUZZ_ATOMS 65536

/* Decoding limits of the targets: the atom budget above, shallow nesting,
 * small decompressed sizes (the fuzzer's time goes to structure). */
static inline amb__control_limits dist_fuzz_limits(amb__etf_atom_budget *budget)
{
    static size_t reserve = 0;
    if (reserve == 0) {
        size_t limit = amb_atom_limit(), used = amb_atom_count() + DIST_FUZZ_ATOMS;
        reserve = used < limit ? limit - used : limit;
    }
    budget->left = 16;
    budget->reserve = reserve;
    return (amb__control_limits){
        .atoms = budget, .max_depth = 64, .max_decompressed = (size_t)1 << 20};
}

static inline bool dist_fuzz_decode_failure(int rc)
{
    return rc == AMB_EDECODE || rc == AMB_EDEPTH || rc == AMB_ESYSLIMIT ||
           rc == AMB_ENOMEM;
}

#endif /* AMB_TESTS_DIST_FUZZ_H */
