/*
 * print.h - what the term printer (print.c) shares with the human forms of
 * its pretty style (print_pretty.c): the output sink every byte goes
 * through, and the few writers both use. See docs/design/print.md.
 *
 * Invariant: a writer never fails on its own; the first failure of the sink
 * (AMB_ENOMEM, AMB_EIO, AMB_EBADARG for a corrupt term) is kept in err and
 * the walk stops at its next step.
 */
#ifndef AMB_CORE_PRINT_H
#define AMB_CORE_PRINT_H

#include <stdio.h>

#include "term_internal.h"

enum amb__print_out { AMB__PRINT_FIXED, AMB__PRINT_BUF, AMB__PRINT_FILE };

typedef struct amb__print_sink {
    enum amb__print_out mode;
    unsigned flags; /* AMB_PRINT_* */
    int err;        /* first failure: AMB_ENOMEM, AMB_EIO or AMB_EBADARG */
    size_t len;     /* bytes produced so far, stored or not */
    /* FIXED: the caller's buffer; the first cap - 1 bytes are stored. */
    char *fixed;
    size_t cap;
    uint8_t first_dropped; /* stream byte at index cap - 1, to cut on a boundary */
    /* BUF */
    amb__buf *buf;
    /* FILE: bytes are staged so that stdio sees few, large writes. */
    FILE *file;
    size_t staged;
    uint8_t stage[1024];
} amb__print_sink;

/* Appends data[0..n) (print.c). */
void amb__print_emit(amb__print_sink *o, const void *data, size_t n);
/* Appends v in decimal (print.c). */
void amb__print_u64(amb__print_sink *o, uint64_t v);
/* Records the first failure (print.c). */
void amb__print_fail(amb__print_sink *o, int rc);

/* How an atom is written (print.c). */
enum amb__print_atom_style {
    AMB__PRINT_ATOM_W,      /* io_lib:write_atom/1 under ~w: quote only when
                               needed, \x{H} beyond Latin-1 */
    AMB__PRINT_ATOM_T,      /* the same under ~tp: characters as they are */
    AMB__PRINT_ATOM_QUOTED, /* always quoted, ~w's escapes: node names */
    AMB__PRINT_ATOM_FUN,    /* erts' fun_to_list rule (see the doc) */
};
void amb__print_atom(amb__print_sink *o, amb_term a, enum amb__print_atom_style style);

/* The human forms of the pretty style (print_pretty.c). */
/* True when t is a non-empty proper list of printable code points, which
 * ~tp writes as "...". */
bool amb__print_pretty_is_string(amb_term t);
/* Writes such a list as "..." with io_lib's escapes. */
void amb__print_pretty_string(amb__print_sink *o, amb_term t);
/* Writes a binary as ~tp does when it is printable: <<"...">> when its bytes
 * are ASCII or (not being UTF-8) printable Latin-1, <<"..."/utf8>> when
 * they are UTF-8 of printable characters. False, writing nothing, when ~w's
 * form is the one to write. */
bool amb__print_pretty_binary(amb__print_sink *o, amb_term t);
/* Writes a pid, reference, port or closure as Erlang shows it to humans:
 * <0.85.0>, #Ref<0.3.2.1>, #Port<0.5>, #Fun<erl_eval.43.3316493>. False,
 * writing nothing, when a closure's module and numbers cannot be read (~w's
 * form is written then). */
bool amb__print_pretty_id(amb__print_sink *o, amb_term t);

#endif /* AMB_CORE_PRINT_H */
