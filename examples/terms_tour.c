/*
 * terms_tour.c - a first look at terms: build Erlang terms in C, print them as
 * Erlang would, send them through the External Term Format and back, and
 * match them against a pattern.
 */
#include <ambitious.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
    amb_heap *heap;
    if (amb_heap_new(&heap) != 0)
        return 1;

    /* Build with a format string, as Erlang's ei_x_format does. */
    amb_term order =
        amb_pack(heap, "{order, ~i, ~a, [~s, ~s], #{qty => ~l, price => ~f}}", 1042,
                 "pending", "apple", "pear", (int64_t)12, 0.35);
    if (order == AMB_NONE) {
        fprintf(stderr, "amb_pack failed\n");
        return 1;
    }
    printf("term:     ");
    amb_fprint(order, stdout);
    printf("\n");

    /* Encode it as term_to_binary/1 would, and decode it again. */
    uint8_t *bytes;
    size_t len;
    int rc = amb_etf_encode_alloc(order, 0, &bytes, &len);
    if (rc != 0) {
        fprintf(stderr, "encode: %s\n", amb_strerror(rc));
        return 1;
    }
    printf("ETF:      %zu bytes:", len);
    for (size_t i = 0; i < len && i < 24; i++)
        printf(" %d", bytes[i]);
    printf("%s\n", len > 24 ? " ..." : "");
    amb_term back;
    rc = amb_etf_decode(heap, bytes, len, NULL, &back, NULL);
    amb_free(bytes);
    if (rc != 0 || !amb_equal(order, back)) {
        fprintf(stderr, "round trip failed: %s\n", amb_strerror(rc));
        return 1;
    }
    printf("decoded:  equal to the original (=:=)\n");

    /* Match it: take the id and the status, check the shape of the rest. */
    int id;
    const char *status;
    amb_term items;
    if (amb_match(back, "{order, ~i, ~a, ~w, _}", &id, &status, &items) == 0) {
        size_t n = 0;
        amb_list_length(items, &n);
        printf("matched:  order %d is %s with %zu items\n", id, status, n);
    }

    /* Parse Erlang syntax, and compare in Erlang's term order. */
    amb_term parsed;
    size_t err_pos;
    const char *text = "{ok, [1,2], #{a => <<\"x\">>}, 'quoted atom', 3.5}";
    rc = amb_parse(heap, text, strlen(text), &parsed, &err_pos);
    if (rc != 0) {
        fprintf(stderr, "parse: %s at %zu\n", amb_strerror(rc), err_pos);
        return 1;
    }
    printf("parsed:   ");
    amb_fprint(parsed, stdout);
    printf("\norder:    1 < 1.0? %s; 1 == 1.0? %s; atom < tuple? %s\n",
           amb_compare_exact(amb_int(heap, 1), amb_float(heap, 1.0)) < 0 ? "exactly"
                                                                         : "no",
           amb_compare(amb_int(heap, 1), amb_float(heap, 1.0)) == 0 ? "yes" : "no",
           amb_compare(amb_atom("zzz"), parsed) < 0 ? "yes" : "no");

    amb_heap_free(heap);
    return 0;
}
