/*
 * binary.c - binaries and bitstrings: building them (on the heap up to
 * AMB_HEAP_BINARY_MAX bytes, shared through a refbin above), viewing a part
 * of one, and reading their bytes.
 *
 * Invariants (layout in term_internal.h):
 *   - A BINARY box's bytes are either right after it on its heap (refc ==
 *     NULL) or inside a refbin it holds one reference on, recorded in its
 *     heap's off-heap list (amb__heap_track_binary).
 *   - The unused low bits of a bitstring's last byte are zero.
 */
#include "term_internal.h"

amb_term amb__binary_make(amb_heap *heap, amb__refbin *rb, const uint8_t *data,
                          size_t size, unsigned tail_bits)
{
    size_t extra = rb ? 0 : (size + 7) / 8;
    uint64_t *p = amb__heap_alloc(heap, AMB__BINARY_WORDS + extra);
    if (p == NULL)
        return AMB_NONE;
    amb__binary *b = (amb__binary *)(void *)p;
    b->header = AMB__HDR(AMB__K_BINARY, tail_bits);
    b->size = size;
    b->refc = rb;
    b->next = NULL;
    if (rb != NULL) {
        b->data = data;
        amb__refbin_retain(rb);
        amb__heap_track_binary(heap, b);
    } else {
        uint8_t *bytes = (uint8_t *)(p + AMB__BINARY_WORDS);
        if (size > 0)
            memcpy(bytes, data, size);
        b->data = bytes;
    }
    return amb__make_box(p);
}

/* A binary of size bytes, on the heap or shared; *bytes points at its
 * writable storage. */
static amb_term binary_new(amb_heap *heap, size_t size, unsigned tail_bits,
                           uint8_t **bytes)
{
    if (heap == NULL)
        return AMB_NONE;
    if (size <= AMB_HEAP_BINARY_MAX) {
        uint64_t *p = amb__heap_alloc(heap, AMB__BINARY_WORDS + (size + 7) / 8);
        if (p == NULL)
            return AMB_NONE;
        amb__binary *b = (amb__binary *)(void *)p;
        b->header = AMB__HDR(AMB__K_BINARY, tail_bits);
        b->size = size;
        b->refc = NULL;
        b->next = NULL;
        b->data = (uint8_t *)(p + AMB__BINARY_WORDS);
        *bytes = (uint8_t *)(p + AMB__BINARY_WORDS);
        return amb__make_box(p);
    }
    amb__refbin *rb = amb__refbin_new(size);
    if (rb == NULL)
        return AMB_NONE;
    amb_term t = amb__binary_make(heap, rb, rb->data, size, tail_bits);
    amb__refbin_release(rb); /* the box holds the only reference now */
    if (t != AMB_NONE)
        *bytes = rb->data;
    return t;
}

amb_term amb_binary_alloc(amb_heap *heap, size_t size, uint8_t **data)
{
    if (data == NULL)
        return AMB_NONE;
    return binary_new(heap, size, 0, data);
}

amb_term amb_binary(amb_heap *heap, const void *data, size_t size)
{
    if (data == NULL && size > 0)
        return AMB_NONE;
    uint8_t *bytes;
    amb_term t = binary_new(heap, size, 0, &bytes);
    if (t != AMB_NONE && size > 0)
        memcpy(bytes, data, size);
    return t;
}

amb_term amb_bitstring(amb_heap *heap, const void *data, size_t nbits)
{
    size_t size = nbits / 8 + (nbits % 8 != 0);
    if (data == NULL && nbits > 0)
        return AMB_NONE;
    uint8_t *bytes;
    unsigned tail = (unsigned)(nbits % 8);
    amb_term t = binary_new(heap, size, tail, &bytes);
    if (t == AMB_NONE)
        return AMB_NONE;
    if (size > 0) {
        memcpy(bytes, data, size);
        if (tail != 0)
            bytes[size - 1] &= (uint8_t)(0xffu << (8 - tail));
    }
    return t;
}

static amb__binary *binary_box(amb_term t)
{
    if (!amb__is_boxed(t) || amb__box_kind(t) != AMB__K_BINARY)
        return NULL;
    return (amb__binary *)(void *)amb__box(t);
}

amb_term amb_sub_binary(amb_heap *heap, amb_term t, size_t offset, size_t size)
{
    amb__binary *b = binary_box(t);
    if (heap == NULL || b == NULL || AMB__HDR_PAYLOAD(b->header) != 0 ||
        offset > b->size || size > b->size - offset)
        return AMB_NONE;
    /* Shared bytes are viewed in place; heap bytes (small by definition) are
     * copied, because they belong to t's heap, which may not outlive this one. */
    return amb__binary_make(heap, b->refc, b->data + offset, size, 0);
}

bool amb_is_binary(amb_term t)
{
    amb__binary *b = binary_box(t);
    return b != NULL && AMB__HDR_PAYLOAD(b->header) == 0;
}

int amb_bitstring_get(amb_term t, const uint8_t **data, size_t *size, unsigned *tail_bits)
{
    amb__binary *b = binary_box(t);
    if (b == NULL)
        return AMB_ETYPE;
    unsigned tail = (unsigned)AMB__HDR_PAYLOAD(b->header);
    if (data != NULL)
        *data = b->data;
    if (size != NULL)
        *size = tail ? b->size - 1 : b->size;
    if (tail_bits != NULL)
        *tail_bits = tail;
    return 0;
}

int amb_binary_get(amb_term t, const uint8_t **data, size_t *size)
{
    amb__binary *b = binary_box(t);
    if (b == NULL || AMB__HDR_PAYLOAD(b->header) != 0)
        return AMB_ETYPE;
    if (data != NULL)
        *data = b->data;
    if (size != NULL)
        *size = b->size;
    return 0;
}
