/*
 * etf.c - the External Term Format codec (etf.h): every tag both ways with
 * the exact bytes OTP 25 writes, the legacy forms, every rejection rule,
 * truncation at every offset, compression bombs, depth limits and
 * existing_atoms_only.
 *
 * The v_* vectors are erl's term_to_binary(T, [{minor_version,2}]) (UTF-8
 * atoms, our default), the l_* vectors plain term_to_binary(T) of OTP 25
 * (Latin-1 atoms as ATOM_EXT, our AMB_ETF_LATIN1_ATOMS), both copied from a
 * real OTP 25 node; the builder next to each vector in `vectors` below
 * names the Erlang term.
 */
#include <math.h>
#include <zlib.h>

#include "amb_test.h"
#include "etf_internal.h"
#include "term_internal.h"

/* clang-format off */
static const uint8_t v_int_0[] = {131,97,0};
static const uint8_t v_int_255[] = {131,97,255};
static const uint8_t v_int_256[] = {131,98,0,0,1,0};
static const uint8_t v_int_m1[] = {131,98,255,255,255,255};
static const uint8_t v_int_i32min[] = {131,98,128,0,0,0};
static const uint8_t v_int_i32max[] = {131,98,127,255,255,255};
static const uint8_t v_int_2p31[] = {131,110,4,0,0,0,0,128};
static const uint8_t v_int_m2p31m1[] = {131,110,4,1,1,0,0,128};
static const uint8_t v_int_smallmax[] = {131,110,8,0,255,255,255,255,255,255,255,63};
static const uint8_t v_int_smallmin[] = {131,110,8,1,0,0,0,0,0,0,0,64};
static const uint8_t v_int_2p62[] = {131,110,8,0,0,0,0,0,0,0,0,64};
static const uint8_t v_int_2p64[] = {131,110,9,0,0,0,0,0,0,0,0,0,1};
static const uint8_t v_int_m2p64[] = {131,110,9,1,0,0,0,0,0,0,0,0,1};
static const uint8_t v_int_2p2032[] = {131,110,255,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1};
static const uint8_t v_int_m2p2040[] = {131,111,0,0,1,0,1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1};
static const uint8_t v_float_1_5[] = {131,70,63,248,0,0,0,0,0,0};
static const uint8_t v_float_m0[] = {131,70,128,0,0,0,0,0,0,0};
static const uint8_t v_float_max[] = {131,70,127,239,255,255,255,255,255,255};
static const uint8_t v_float_denorm[] = {131,70,0,0,0,0,0,0,0,1};
static const uint8_t v_atom_abc[] = {131,119,3,97,98,99};
static const uint8_t v_atom_empty[] = {131,119,0};
static const uint8_t v_atom_auml[] = {131,119,2,195,164};
static const uint8_t v_atom_lambda[] = {131,119,2,206,187};
static const uint8_t v_atom_255[] = {131,119,255,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97,97};
static const uint8_t v_atom_255_lambda[] = {131,118,1,254,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187,206,187};
static const uint8_t l_atom_abc[] = {131,100,0,3,97,98,99};
static const uint8_t l_atom_auml[] = {131,100,0,1,228};
static const uint8_t l_atom_lambda[] = {131,119,2,206,187};
static const uint8_t l_atom_empty[] = {131,100,0,0};
static const uint8_t l_tuple_mixed[] = {131,104,3,100,0,3,97,98,99,100,0,1,228,119,2,206,187};
static const uint8_t v_tuple_0[] = {131,104,0};
static const uint8_t v_tuple_2[] = {131,104,2,97,1,97,2};
static const uint8_t v_tuple_256[] = {131,105,0,0,1,0,97,1,97,2,97,3,97,4,97,5,97,6,97,7,97,8,97,9,97,10,97,11,97,12,97,13,97,14,97,15,97,16,97,17,97,18,97,19,97,20,97,21,97,22,97,23,97,24,97,25,97,26,97,27,97,28,97,29,97,30,97,31,97,32,97,33,97,34,97,35,97,36,97,37,97,38,97,39,97,40,97,41,97,42,97,43,97,44,97,45,97,46,97,47,97,48,97,49,97,50,97,51,97,52,97,53,97,54,97,55,97,56,97,57,97,58,97,59,97,60,97,61,97,62,97,63,97,64,97,65,97,66,97,67,97,68,97,69,97,70,97,71,97,72,97,73,97,74,97,75,97,76,97,77,97,78,97,79,97,80,97,81,97,82,97,83,97,84,97,85,97,86,97,87,97,88,97,89,97,90,97,91,97,92,97,93,97,94,97,95,97,96,97,97,97,98,97,99,97,100,97,101,97,102,97,103,97,104,97,105,97,106,97,107,97,108,97,109,97,110,97,111,97,112,97,113,97,114,97,115,97,116,97,117,97,118,97,119,97,120,97,121,97,122,97,123,97,124,97,125,97,126,97,127,97,128,97,129,97,130,97,131,97,132,97,133,97,134,97,135,97,136,97,137,97,138,97,139,97,140,97,141,97,142,97,143,97,144,97,145,97,146,97,147,97,148,97,149,97,150,97,151,97,152,97,153,97,154,97,155,97,156,97,157,97,158,97,159,97,160,97,161,97,162,97,163,97,164,97,165,97,166,97,167,97,168,97,169,97,170,97,171,97,172,97,173,97,174,97,175,97,176,97,177,97,178,97,179,97,180,97,181,97,182,97,183,97,184,97,185,97,186,97,187,97,188,97,189,97,190,97,191,97,192,97,193,97,194,97,195,97,196,97,197,97,198,97,199,97,200,97,201,97,202,97,203,97,204,97,205,97,206,97,207,97,208,97,209,97,210,97,211,97,212,97,213,97,214,97,215,97,216,97,217,97,218,97,219,97,220,97,221,97,222,97,223,97,224,97,225,97,226,97,227,97,228,97,229,97,230,97,231,97,232,97,233,97,234,97,235,97,236,97,237,97,238,97,239,97,240,97,241,97,242,97,243,97,244,97,245,97,246,97,247,97,248,97,249,97,250,97,251,97,252,97,253,97,254,97,255,98,0,0,1,0};
static const uint8_t v_nil[] = {131,106};
static const uint8_t v_string_abc[] = {131,107,0,3,97,98,99};
static const uint8_t v_list_improper[] = {131,108,0,0,0,2,97,1,97,2,97,3};
static const uint8_t v_list_atom_string[] = {131,108,0,0,0,3,119,1,97,97,98,97,99,106};
static const uint8_t v_list_256[] = {131,108,0,0,0,1,98,0,0,1,0,106};
static const uint8_t v_list_m1[] = {131,108,0,0,0,1,98,255,255,255,255,106};
static const uint8_t v_list_nested[] = {131,108,0,0,0,2,107,0,1,1,108,0,0,0,1,106,106,106};
static const uint8_t v_bin_empty[] = {131,109,0,0,0,0};
static const uint8_t v_bin_123[] = {131,109,0,0,0,3,1,2,3};
static const uint8_t v_bits_1234[] = {131,77,0,0,0,3,4,1,2,48};
static const uint8_t v_bits_1[] = {131,77,0,0,0,1,1,128};
static const uint8_t v_bin_100[] = {131,109,0,0,0,100,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,58,59,60,61,62,63,64,65,66,67,68,69,70,71,72,73,74,75,76,77,78,79,80,81,82,83,84,85,86,87,88,89,90,91,92,93,94,95,96,97,98,99,100};
static const uint8_t v_map_empty[] = {131,116,0,0,0,0};
static const uint8_t v_map_ab[] = {131,116,0,0,0,2,119,1,97,97,1,119,1,98,97,2};
static const uint8_t v_map_nested[] = {131,116,0,0,0,2,97,1,107,0,1,115,119,1,120,116,0,0,0,1,119,1,121,106};
static const uint8_t v_pid[] = {131,88,119,13,110,111,110,111,100,101,64,110,111,104,111,115,116,0,0,0,9,0,0,0,0,0,0,0,0};
static const uint8_t v_pid_remote[] = {131,88,119,5,120,64,121,46,122,0,0,1,2,0,0,0,3,1,2,3,4};
static const uint8_t v_port[] = {131,89,119,3,97,64,98,0,0,0,5,0,0,0,7};
static const uint8_t v_port_v4[] = {131,120,119,3,97,64,98,0,0,1,0,0,0,0,5,0,0,0,7};
static const uint8_t v_ref[] = {131,90,0,3,119,3,97,64,98,0,0,0,7,0,0,0,1,0,0,0,2,0,0,0,3};
static const uint8_t v_export[] = {131,113,119,6,101,114,108,97,110,103,119,3,97,98,115,97,1};
static const uint8_t v_closure[] = {131,112,0,0,0,71,1,3,253,209,141,253,218,249,29,250,79,85,145,55,115,242,171,0,0,0,0,0,0,0,1,119,3,118,101,99,97,0,98,0,31,238,140,88,119,13,110,111,110,111,100,101,64,110,111,104,111,115,116,0,0,0,9,0,0,0,0,0,0,0,0,97,42};
static const uint8_t v_closure_tuple[] = {131,104,2,112,0,0,0,71,1,3,253,209,141,253,218,249,29,250,79,85,145,55,115,242,171,0,0,0,0,0,0,0,1,119,3,118,101,99,97,0,98,0,31,238,140,88,119,13,110,111,110,111,100,101,64,110,111,104,111,115,116,0,0,0,9,0,0,0,0,0,0,0,0,97,42,113,119,6,101,114,108,97,110,103,119,3,97,98,115,97,1};
static const uint8_t l_compressed30[] = {131,80,0,0,0,126,120,156,203,97,96,96,144,75,97,96,76,28,8,156,5,0,216,29,24,41};
static const uint8_t v_compressed30[] = {131,80,0,0,0,96,120,156,203,97,96,96,144,43,103,76,164,17,202,2,0,213,93,26,99};
static const uint8_t v_compressed_bin[] = {131,80,0,0,1,49,120,156,203,101,96,96,212,73,76,74,30,69,68,34,0,63,40,115,115};
static const uint8_t v_not_compressed[] = {131,109,0,0,0,3,97,98,99};
/* term_to_binary(#{{a,b} => #{c => #{d => e}}}, [compressed]): the stream
 * plus header is exactly as long as the plain body, and OTP compresses. */
static const uint8_t l_compressed_tie[] = {131,80,0,0,0,37,120,156,43,97,96,96,96,204,96,74,97,96,76,4,226,164,18,16,23,200,72,134,49,82,128,56,21,0,106,138,5,178};
static const uint8_t l_pid[] = {131,88,100,0,13,110,111,110,111,100,101,64,110,111,104,111,115,116,0,0,0,9,0,0,0,0,0,0,0,0};
/* clang-format on */

static amb_heap *heap_new(void)
{
    amb_heap *h = NULL;
    assert_ok(amb_heap_new(&h));
    return h;
}

static amb_term A(const char *name)
{
    amb_term a = amb_atom(name);
    assert_true(a != AMB_NONE);
    return a;
}

/* An integer +-2^bit. */
static amb_term pow2(amb_heap *h, unsigned bit, bool negative)
{
    uint8_t mag[300] = {0};
    mag[bit / 8] = (uint8_t)(1u << (bit % 8));
    amb_term t;
    assert_ok(amb_int_from_bytes(h, negative, mag, bit / 8 + 1, &t));
    return t;
}

static amb_term repeat_atom(const char *unit, size_t n)
{
    char name[1024];
    size_t len = strlen(unit), used = 0;
    for (size_t i = 0; i < n; i++, used += len)
        memcpy(name + used, unit, len);
    amb_term a;
    assert_ok(amb_atom_new(name, used, &a));
    return a;
}

static amb_term seq_tuple(amb_heap *h, size_t n)
{
    amb_term elems[256];
    for (size_t i = 0; i < n; i++)
        elems[i] = AMB_SMALL(i + 1);
    return amb_tuple(h, n, elems);
}

static amb_term nonode_pid(amb_heap *h)
{
    return amb_pid_term(h, A("nonode@nohost"), 9, 0, 0);
}

/* The builders, one per vector: the same term made with the C API. */
static amb_term b_int_0(amb_heap *h)
{
    return amb_int(h, 0);
}
static amb_term b_int_255(amb_heap *h)
{
    return amb_int(h, 255);
}
static amb_term b_int_256(amb_heap *h)
{
    return amb_int(h, 256);
}
static amb_term b_int_m1(amb_heap *h)
{
    return amb_int(h, -1);
}
static amb_term b_int_i32min(amb_heap *h)
{
    return amb_int(h, INT32_MIN);
}
static amb_term b_int_i32max(amb_heap *h)
{
    return amb_int(h, INT32_MAX);
}
static amb_term b_int_2p31(amb_heap *h)
{
    return amb_int(h, (int64_t)1 << 31);
}
static amb_term b_int_m2p31m1(amb_heap *h)
{
    return amb_int(h, -((int64_t)1 << 31) - 1);
}
static amb_term b_int_smallmax(amb_heap *h)
{
    return amb_int(h, AMB_SMALL_MAX);
}
static amb_term b_int_smallmin(amb_heap *h)
{
    return amb_int(h, AMB_SMALL_MIN);
}
static amb_term b_int_2p62(amb_heap *h)
{
    return pow2(h, 62, false);
}
static amb_term b_int_2p64(amb_heap *h)
{
    return pow2(h, 64, false);
}
static amb_term b_int_m2p64(amb_heap *h)
{
    return pow2(h, 64, true);
}
static amb_term b_int_2p2032(amb_heap *h)
{
    return pow2(h, 2032, false);
}
static amb_term b_int_m2p2040(amb_heap *h)
{
    return pow2(h, 2040, true);
}
static amb_term b_float_1_5(amb_heap *h)
{
    return amb_float(h, 1.5);
}
static amb_term b_float_m0(amb_heap *h)
{
    return amb_float(h, -0.0);
}
static amb_term b_float_max(amb_heap *h)
{
    return amb_float(h, 1.7976931348623157e308);
}
static amb_term b_float_denorm(amb_heap *h)
{
    return amb_float(h, 5e-324);
}
static amb_term b_atom_abc(amb_heap *h)
{
    return A("abc");
}
static amb_term b_atom_empty(amb_heap *h)
{
    return A("");
}
static amb_term b_atom_auml(amb_heap *h)
{
    return A("\xc3\xa4");
}
static amb_term b_atom_lambda(amb_heap *h)
{
    return A("\xce\xbb");
}
static amb_term b_atom_255(amb_heap *h)
{
    return repeat_atom("a", 255);
}
static amb_term b_atom_255_lambda(amb_heap *h)
{
    return repeat_atom("\xce\xbb", 255);
}
static amb_term b_tuple_mixed(amb_heap *h)
{
    return AMB_TUPLE(h, A("abc"), A("\xc3\xa4"), A("\xce\xbb"));
}
static amb_term b_tuple_0(amb_heap *h)
{
    return amb_tuple(h, 0, NULL);
}
static amb_term b_tuple_2(amb_heap *h)
{
    return seq_tuple(h, 2);
}
static amb_term b_tuple_256(amb_heap *h)
{
    return seq_tuple(h, 256);
}
static amb_term b_nil(amb_heap *h)
{
    return AMB_NIL;
}
static amb_term b_string_abc(amb_heap *h)
{
    return amb_string(h, "abc");
}
static amb_term b_list_improper(amb_heap *h)
{
    return amb_cons(h, AMB_SMALL(1), amb_cons(h, AMB_SMALL(2), AMB_SMALL(3)));
}
static amb_term b_list_atom_string(amb_heap *h)
{
    return amb_cons(h, A("a"), amb_string(h, "bc"));
}
static amb_term b_list_256(amb_heap *h)
{
    return AMB_LIST(h, AMB_SMALL(256));
}
static amb_term b_list_m1(amb_heap *h)
{
    return AMB_LIST(h, AMB_SMALL(-1));
}
static amb_term b_list_nested(amb_heap *h)
{
    return AMB_LIST(h, AMB_LIST(h, AMB_SMALL(1)), AMB_LIST(h, AMB_NIL));
}
static amb_term b_bin_empty(amb_heap *h)
{
    return amb_binary(h, NULL, 0);
}
static amb_term b_bin_123(amb_heap *h)
{
    return amb_binary(h, "\1\2\3", 3);
}
static amb_term b_bin_abc(amb_heap *h)
{
    return amb_binary(h, "abc", 3);
}
static amb_term b_bits_1234(amb_heap *h)
{
    return amb_bitstring(h, "\1\2\x30", 20);
}
static amb_term b_bits_1(amb_heap *h)
{
    return amb_bitstring(h, "\x80", 1);
}
static amb_term b_bin_100(amb_heap *h)
{
    uint8_t bytes[100];
    for (int i = 0; i < 100; i++)
        bytes[i] = (uint8_t)(i + 1);
    return amb_binary(h, bytes, sizeof bytes);
}
static amb_term b_map_empty(amb_heap *h)
{
    return amb_map(h, 0, NULL, NULL);
}
static amb_term b_map_ab(amb_heap *h)
{
    amb_term k[] = {A("a"), A("b")}, v[] = {AMB_SMALL(1), AMB_SMALL(2)};
    return amb_map(h, 2, k, v);
}
static amb_term b_map_nested(amb_heap *h)
{
    amb_term ik[] = {A("y")}, iv[] = {AMB_NIL};
    amb_term k[] = {A("x"), AMB_SMALL(1)};
    amb_term v[] = {amb_map(h, 1, ik, iv), amb_string(h, "s")};
    return amb_map(h, 2, k, v);
}
static amb_term b_pid(amb_heap *h)
{
    return nonode_pid(h);
}
static amb_term b_pid_remote(amb_heap *h)
{
    return amb_pid_term(h, A("x@y.z"), 0x102, 3, 0x01020304);
}
static amb_term b_port(amb_heap *h)
{
    return amb_port_term(h, A("a@b"), 5, 7);
}
static amb_term b_port_v4(amb_heap *h)
{
    return amb_port_term(h, A("a@b"), 0x0000010000000005u, 7);
}
static amb_term b_ref(amb_heap *h)
{
    uint32_t w[] = {1, 2, 3};
    return amb_ref_term(h, A("a@b"), 7, w, 3);
}
static amb_term b_export(amb_heap *h)
{
    return amb_export_term(h, A("erlang"), A("abs"), 1);
}
static amb_term b_closure(amb_heap *h)
{
    return amb_closure_term(h, v_closure + 2, sizeof v_closure - 2);
}
static amb_term b_closure_tuple(amb_heap *h)
{
    return AMB_TUPLE(h, b_closure(h), b_export(h));
}
static amb_term b_dup30(amb_heap *h)
{
    amb_term elems[30];
    for (int i = 0; i < 30; i++)
        elems[i] = A("a");
    return amb_list(h, 30, elems);
}
static amb_term b_map_tie(amb_heap *h)
{
    amb_term d = amb_map(h, 1, (amb_term[]){A("d")}, (amb_term[]){A("e")});
    amb_term c = amb_map(h, 1, (amb_term[]){A("c")}, &d);
    return amb_map(h, 1, (amb_term[]){AMB_TUPLE(h, A("a"), A("b"))}, &c);
}
static amb_term b_abc100(amb_heap *h)
{
    uint8_t bytes[300];
    for (int i = 0; i < 300; i++)
        bytes[i] = (uint8_t)("abc"[i % 3]);
    return amb_binary(h, bytes, sizeof bytes);
}

typedef struct vector {
    const char *name;
    const uint8_t *bytes;
    size_t len;
    amb_term (*build)(amb_heap *h);
    unsigned flags;
} vector;

#define V(name, builder, flags)                  \
    {                                            \
#name, name, sizeof name, builder, flags \
    }
#define LAT AMB_ETF_LATIN1_ATOMS
#define ZIP AMB_ETF_COMPRESSED

static const vector vectors[] = {
    V(v_int_0, b_int_0, 0),
    V(v_int_255, b_int_255, 0),
    V(v_int_256, b_int_256, 0),
    V(v_int_m1, b_int_m1, 0),
    V(v_int_i32min, b_int_i32min, 0),
    V(v_int_i32max, b_int_i32max, 0),
    V(v_int_2p31, b_int_2p31, 0),
    V(v_int_m2p31m1, b_int_m2p31m1, 0),
    V(v_int_smallmax, b_int_smallmax, 0),
    V(v_int_smallmin, b_int_smallmin, 0),
    V(v_int_2p62, b_int_2p62, 0),
    V(v_int_2p64, b_int_2p64, 0),
    V(v_int_m2p64, b_int_m2p64, 0),
    V(v_int_2p2032, b_int_2p2032, 0),
    V(v_int_m2p2040, b_int_m2p2040, 0),
    V(v_float_1_5, b_float_1_5, 0),
    V(v_float_m0, b_float_m0, 0),
    V(v_float_max, b_float_max, 0),
    V(v_float_denorm, b_float_denorm, 0),
    V(v_atom_abc, b_atom_abc, 0),
    V(v_atom_empty, b_atom_empty, 0),
    V(v_atom_auml, b_atom_auml, 0),
    V(v_atom_lambda, b_atom_lambda, 0),
    V(v_atom_255, b_atom_255, 0),
    V(v_atom_255_lambda, b_atom_255_lambda, 0),
    V(l_atom_abc, b_atom_abc, LAT),
    V(l_atom_auml, b_atom_auml, LAT),
    V(l_atom_lambda, b_atom_lambda, LAT),
    V(l_atom_empty, b_atom_empty, LAT),
    V(l_tuple_mixed, b_tuple_mixed, LAT),
    V(v_tuple_0, b_tuple_0, 0),
    V(v_tuple_2, b_tuple_2, 0),
    V(v_tuple_256, b_tuple_256, 0),
    V(v_nil, b_nil, 0),
    V(v_string_abc, b_string_abc, 0),
    V(v_list_improper, b_list_improper, 0),
    V(v_list_atom_string, b_list_atom_string, 0),
    V(v_list_256, b_list_256, 0),
    V(v_list_m1, b_list_m1, 0),
    V(v_list_nested, b_list_nested, 0),
    V(v_bin_empty, b_bin_empty, 0),
    V(v_bin_123, b_bin_123, 0),
    V(v_bits_1234, b_bits_1234, 0),
    V(v_bits_1, b_bits_1, 0),
    V(v_bin_100, b_bin_100, 0),
    V(v_map_empty, b_map_empty, 0),
    V(v_map_ab, b_map_ab, 0),
    V(v_map_nested, b_map_nested, 0),
    V(v_pid, b_pid, 0),
    V(v_pid_remote, b_pid_remote, 0),
    V(v_port, b_port, 0),
    V(v_port_v4, b_port_v4, 0),
    V(v_ref, b_ref, 0),
    V(v_export, b_export, 0),
    V(v_closure, b_closure, 0),
    V(v_closure_tuple, b_closure_tuple, 0),
    V(l_pid, b_pid, LAT),
    V(l_compressed30, b_dup30, LAT | ZIP),
    V(v_compressed30, b_dup30, ZIP),
    V(l_compressed_tie, b_map_tie, LAT | ZIP),
    V(v_compressed_bin, b_abc100, ZIP),
    V(v_not_compressed, b_bin_abc, ZIP),
};

/* ---------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------ */

static void assert_bytes(const char *what, const uint8_t *got, size_t glen,
                         const uint8_t *want, size_t wlen)
{
    size_t i = 0;
    while (i < glen && i < wlen && got[i] == want[i])
        i++;
    if (i == glen && i == wlen)
        return;
    fail_msg("%s: %zu bytes, expected %zu; first difference at offset %zu (%d vs %d)",
             what, glen, wlen, i, i < glen ? got[i] : -1, i < wlen ? want[i] : -1);
}

/* Decodes all of b[0..n) (trailing bytes are a failure here). */
static int decode_opts(amb_heap *h, const uint8_t *b, size_t n,
                       const amb_etf_decode_opts *o, amb_term *out)
{
    size_t used = 0;
    int rc = amb_etf_decode(h, b, n, o, out, &used);
    if (rc == 0 && used != n)
        fail_msg("decoded %zu of %zu bytes", used, n);
    return rc;
}

static int decode(amb_heap *h, const uint8_t *b, size_t n, amb_term *out)
{
    return decode_opts(h, b, n, NULL, out);
}

#define DECODE_RC(h, rc, ...)                             \
    do {                                                  \
        static const uint8_t in_[] = {__VA_ARGS__};       \
        amb_term t_;                                      \
        assert_rc(rc, decode((h), in_, sizeof in_, &t_)); \
    } while (0)

/* Decodes the bytes and checks the result equals want and re-encodes (with
 * flags) to reencoded[0..rlen), or to the input when reencoded is NULL. */
static amb_term decode_expect(amb_heap *h, const uint8_t *in, size_t n, amb_term want)
{
    amb_term t;
    assert_ok(decode(h, in, n, &t));
    if (!amb_equal(t, want)) {
        char a[512], b[512];
        amb_print(t, a, sizeof a, NULL);
        amb_print(want, b, sizeof b, NULL);
        fail_msg("decoded %s, expected %s", a, b);
    }
    return t;
}

static void encode_expect(amb_term t, unsigned flags, const uint8_t *want, size_t wlen)
{
    uint8_t *got;
    size_t glen;
    assert_ok(amb_etf_encode_alloc(t, flags, &got, &glen));
    assert_bytes("encoding", got, glen, want, wlen);
    amb_free(got);
}

/* ---------------------------------------------------------------------------
 * Every tag both ways, against erl's bytes
 * ------------------------------------------------------------------------ */

AMB_TEST(encode_matches_erl)
{
    amb_heap *h = heap_new();
    for (size_t i = 0; i < AMB_COUNTOF(vectors); i++) {
        const vector *v = &vectors[i];
        amb_term t = v->build(h);
        if (t == AMB_NONE)
            fail_msg("%s: builder failed", v->name);
        uint8_t *got;
        size_t glen;
        assert_ok(amb_etf_encode_alloc(t, v->flags, &got, &glen));
        assert_bytes(v->name, got, glen, v->bytes, v->len);
        amb_free(got);
        if (!(v->flags & ZIP)) {
            size_t size;
            assert_ok(amb_etf_size(t, v->flags, &size));
            assert_int_equal(size, v->len);
        }
    }
    amb_heap_free(h);
}

AMB_TEST(decode_matches_erl)
{
    amb_heap *h = heap_new();
    for (size_t i = 0; i < AMB_COUNTOF(vectors); i++) {
        const vector *v = &vectors[i];
        amb_term t;
        size_t used = 0;
        int rc = amb_etf_decode(h, v->bytes, v->len, NULL, &t, &used);
        if (rc != 0)
            fail_msg("%s: %s", v->name, amb_err_name(rc));
        assert_int_equal(used, v->len);
        if (!amb_equal(t, v->build(h)))
            fail_msg("%s: decoded term differs from the builder's", v->name);
        /* And back: decode -> encode is the identity on erl's bytes. */
        uint8_t *again;
        size_t alen;
        assert_ok(amb_etf_encode_alloc(t, v->flags, &again, &alen));
        assert_bytes(v->name, again, alen, v->bytes, v->len);
        amb_free(again);
    }
    amb_heap_free(h);
}

AMB_TEST(encode_into_buffer_reports_bufsize)
{
    amb_heap *h = heap_new();
    uint8_t buf[2048];
    for (size_t i = 0; i < AMB_COUNTOF(vectors); i++) {
        const vector *v = &vectors[i];
        amb_term t = v->build(h);
        size_t len = 0;
        assert_ok(amb_etf_encode(t, v->flags, buf, sizeof buf, &len));
        assert_bytes(v->name, buf, len, v->bytes, v->len);
        for (size_t cap = 0; cap < v->len; cap++)
            assert_rc(AMB_EBUFSIZE, amb_etf_encode(t, v->flags, buf, cap, &len));
    }
    amb_heap_free(h);
}

AMB_TEST(no_version_flag)
{
    amb_heap *h = heap_new();
    uint8_t buf[2048];
    amb_etf_decode_opts o = {.flags = AMB_ETF_NO_VERSION};
    for (size_t i = 0; i < AMB_COUNTOF(vectors); i++) {
        const vector *v = &vectors[i];
        amb_term t = v->build(h), back;
        size_t len = 0, size = 0;
        unsigned flags = v->flags | AMB_ETF_NO_VERSION;
        assert_ok(amb_etf_encode(t, flags, buf, sizeof buf, &len));
        assert_bytes(v->name, buf, len, v->bytes + 1, v->len - 1);
        if (!(flags & ZIP)) {
            assert_ok(amb_etf_size(t, flags, &size));
            assert_int_equal(size, v->len - 1);
        }
        assert_ok(decode_opts(h, v->bytes + 1, v->len - 1, &o, &back));
        assert_true(amb_equal(t, back));
    }
    /* Without the flag the 131 is required, with it it is a bad tag. */
    DECODE_RC(h, AMB_EDECODE, 97, 1);
    amb_term t;
    assert_rc(AMB_EDECODE, decode_opts(h, v_int_0, sizeof v_int_0, &o, &t));
    amb_heap_free(h);
}

AMB_TEST(truncated_at_every_offset)
{
    amb_heap *h = heap_new();
    for (size_t i = 0; i < AMB_COUNTOF(vectors); i++) {
        const vector *v = &vectors[i];
        for (size_t k = 0; k < v->len; k++) {
            /* A copy of exactly k bytes, so ASan sees any read past it. */
            uint8_t *cut = malloc(k ? k : 1);
            memcpy(cut, v->bytes, k);
            amb_term t;
            int rc = amb_etf_decode(h, cut, k, NULL, &t, NULL);
            free(cut);
            if (rc != AMB_EDECODE)
                fail_msg("%s cut to %zu bytes: %s", v->name, k, amb_err_name(rc));
        }
        amb_heap_reset(h);
    }
    amb_heap_free(h);
}

/* ---------------------------------------------------------------------------
 * Legacy forms and canonical results
 * ------------------------------------------------------------------------ */

#define NODE_AB 100, 0, 3, 'a', '@', 'b'

AMB_TEST(decode_legacy_forms)
{
    amb_heap *h = heap_new();
    amb_term ab = A("a@b");
    static const uint8_t atom_ext[] = {131, 100, 0, 3, 'a', 'b', 'c'};
    static const uint8_t small_atom[] = {131, 115, 3, 'a', 'b', 'c'};
    static const uint8_t latin1_auml[] = {131, 100, 0, 1, 228};
    static const uint8_t latin1_yuml[] = {131, 115, 2, 255, 'x'};
    decode_expect(h, atom_ext, sizeof atom_ext, A("abc"));
    decode_expect(h, small_atom, sizeof small_atom, A("abc"));
    decode_expect(h, latin1_auml, sizeof latin1_auml, A("\xc3\xa4"));
    decode_expect(h, latin1_yuml, sizeof latin1_yuml, A("\xc3\xbfx"));
    /* The same bytes as Latin-1 and as UTF-8 are two atoms (the decoder's
     * atom cache keys on the form too), and a repeated atom is the same. */
    static const uint8_t both[] = {131, 104,  3,    100, 0, 2, 0xc3, 0xa4, 119,
                                   2,   0xc3, 0xa4, 100, 0, 2, 0xc3, 0xa4};
    decode_expect(
        h, both, sizeof both,
        AMB_TUPLE(h, A("\xc3\x83\xc2\xa4"), A("\xc3\xa4"), A("\xc3\x83\xc2\xa4")));

    static const uint8_t pid_ext[] = {131, 103, NODE_AB, 0, 0, 0, 1, 0, 0, 0, 2, 3};
    static const uint8_t new_pid[] = {131, 88, 119, 3, 'a', '@', 'b', 0, 0, 0,
                                      1,   0,  0,   0, 2,   0,   0,   0, 3};
    amb_term pid =
        decode_expect(h, pid_ext, sizeof pid_ext, amb_pid_term(h, ab, 1, 2, 3));
    encode_expect(pid, 0, new_pid, sizeof new_pid);

    static const uint8_t port_ext[] = {131, 102, NODE_AB, 0, 0, 0, 5, 3};
    static const uint8_t new_port_ext[] = {131, 89, NODE_AB, 0, 0, 0, 5, 0, 0, 0, 3};
    static const uint8_t new_port[] = {131, 89, 119, 3, 'a', '@', 'b', 0,
                                       0,   0,  5,   0, 0,   0,   3};
    amb_term port = amb_port_term(h, ab, 5, 3);
    decode_expect(h, port_ext, sizeof port_ext, port);
    decode_expect(h, new_port_ext, sizeof new_port_ext, port);
    encode_expect(port, 0, new_port, sizeof new_port);
    /* OTP 25 writes NEW_PORT up to 2^28 - 1 and V4_PORT from 2^28 on. */
    static const uint8_t port_28[] = {131,  89,   119,  3, 'a', '@', 'b', 0x0f,
                                      0xff, 0xff, 0xff, 0, 0,   0,   3};
    static const uint8_t port_v4[] = {131, 120,  119, 3, 'a', '@', 'b', 0, 0, 0,
                                      0,   0x10, 0,   0, 0,   0,   0,   0, 3};
    encode_expect(amb_port_term(h, ab, 0x0fffffff, 3), 0, port_28, sizeof port_28);
    encode_expect(amb_port_term(h, ab, 0x10000000, 3), 0, port_v4, sizeof port_v4);

    static const uint8_t ref_ext[] = {131, 101, NODE_AB, 0, 0, 0, 1, 3};
    static const uint8_t new_ref[] = {131, 114, 0, 2, NODE_AB, 3, 0, 0, 0, 1, 0, 0, 0, 2};
    static const uint8_t newer_ref[] = {131, 90, 0, 2, 119, 3, 'a', '@', 'b', 0, 0,
                                        0,   3,  0, 0, 0,   1, 0,   0,   0,   2};
    uint32_t w[] = {1, 2};
    decode_expect(h, ref_ext, sizeof ref_ext, amb_ref_term(h, ab, 3, w, 1));
    amb_term ref =
        decode_expect(h, new_ref, sizeof new_ref, amb_ref_term(h, ab, 3, w, 2));
    encode_expect(ref, 0, newer_ref, sizeof newer_ref);

    /* FLOAT_EXT as OTP writes it with {minor_version, 0}, and the other
     * spellings OTP's reader takes. */
    static const char *floats[][2] = {
        {"1.50000000000000000000e+00", "1.5"},
        {"-1.5", "-1.5"},
        {"+1.5", "1.5"},
        {"1,5", "1.5"},
        {"1.5E3", "1500.0"},
        {"1.5e-400", "0.0"},
        {"-0.0", "-0.0"},
        {"1.7976931348623157e308", "1.7976931348623157e308"},
    };
    for (size_t i = 0; i < AMB_COUNTOF(floats); i++) {
        uint8_t in[33] = {131, 99};
        memcpy(in + 2, floats[i][0], strlen(floats[i][0]));
        amb_term t;
        assert_ok(decode(h, in, sizeof in, &t));
        double got, want = strtod(floats[i][1], NULL);
        assert_ok(amb_float_get(t, &got));
        assert_memory_equal(&got, &want, sizeof got);
    }
    /* Bytes after the NUL are not looked at. */
    uint8_t after_nul[33] = {131, 99, '1', '.', '5', 0, 'x', 'y'};
    amb_term t;
    assert_ok(decode(h, after_nul, sizeof after_nul, &t));

    /* EXPORT_EXT with the arity as INTEGER_EXT, as OTP accepts. */
    DECODE_RC(h, 0, 131, 113, 100, 0, 1, 'm', 100, 0, 1, 'f', 98, 0, 0, 0, 255);
    /* LIST_EXT of length 0 is its tail, as in OTP. */
    static const uint8_t list0[] = {131, 108, 0, 0, 0, 0, 97, 1};
    decode_expect(h, list0, sizeof list0, AMB_SMALL(1));
    static const uint8_t string0[] = {131, 107, 0, 0};
    decode_expect(h, string0, sizeof string0, AMB_NIL);
    amb_heap_free(h);
}

AMB_TEST(decode_integers_canonically)
{
    amb_heap *h = heap_new();
    struct {
        uint8_t in[16];
        size_t len;
        int64_t value;
    } cases[] = {
        {{131, 110, 1, 0, 5}, 5, 5},
        {{131, 110, 1, 1, 5}, 5, -5},
        {{131, 110, 1, 2, 5}, 5, -5}, /* any non-zero sign is minus */
        {{131, 110, 2, 0, 5, 0}, 6, 5},
        {{131, 110, 0, 0}, 4, 0},
        {{131, 110, 0, 1}, 4, 0},
        {{131, 110, 1, 1, 0}, 5, 0},
        {{131, 111, 0, 0, 0, 1, 0, 7}, 8, 7},
        {{131, 111, 0, 0, 0, 0, 1}, 7, 0},
        {{131, 110, 8, 0, 255, 255, 255, 255, 255, 255, 255, 63}, 12, AMB_SMALL_MAX},
        {{131, 110, 8, 1, 0, 0, 0, 0, 0, 0, 0, 64}, 12, AMB_SMALL_MIN},
        {{131, 110, 9, 1, 0, 0, 0, 0, 0, 0, 0, 64, 0}, 13, AMB_SMALL_MIN},
        {{131, 98, 255, 255, 255, 255}, 6, -1},
        {{131, 98, 0, 0, 0, 7}, 6, 7},
    };
    for (size_t i = 0; i < AMB_COUNTOF(cases); i++) {
        amb_term t;
        assert_ok(decode(h, cases[i].in, cases[i].len, &t));
        assert_true(amb_is_small(t));
        assert_int_equal(amb_small_value(t), cases[i].value);
    }
    /* One past the small range is big, with the value kept. */
    static const uint8_t big[] = {131, 110, 8, 0, 0, 0, 0, 0, 0, 0, 0, 64};
    static const uint8_t nbig[] = {131, 110, 8, 1, 1, 0, 0, 0, 0, 0, 0, 64};
    amb_term t;
    assert_ok(decode(h, big, sizeof big, &t));
    assert_false(amb_is_small(t));
    assert_true(amb_equal(t, pow2(h, 62, false)));
    assert_ok(decode(h, nbig, sizeof nbig, &t));
    assert_false(amb_is_small(t));
    assert_true(amb_equal(t, amb_int(h, AMB_SMALL_MIN - 1)));
    /* Zero-padded big numbers come out normalised (and re-encode minimal). */
    static const uint8_t padded[] = {131, 110, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0};
    static const uint8_t minimal[] = {131, 110, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    assert_ok(decode(h, padded, sizeof padded, &t));
    encode_expect(t, 0, minimal, sizeof minimal);
    amb_heap_free(h);
}

AMB_TEST(decode_bit_binary_as_otp)
{
    amb_heap *h = heap_new();
    /* Bits = 8 is a whole last byte: a binary. */
    static const uint8_t eight[] = {131, 77, 0, 0, 0, 1, 8, 5};
    amb_term t = decode_expect(h, eight, sizeof eight, amb_binary(h, "\5", 1));
    assert_true(amb_is_binary(t));
    static const uint8_t empty[] = {131, 77, 0, 0, 0, 0, 0};
    decode_expect(h, empty, sizeof empty, amb_binary(h, NULL, 0));
    /* Unused low bits are cleared, as OTP does. */
    static const uint8_t dirty[] = {131, 77, 0, 0, 0, 1, 3, 255};
    static const uint8_t clean[] = {131, 77, 0, 0, 0, 1, 3, 224};
    t = decode_expect(h, dirty, sizeof dirty, amb_bitstring(h, "\xe0", 3));
    encode_expect(t, 0, clean, sizeof clean);
    /* OTP refuses Bits 0 with bytes, Bits > 8, and Bits with no bytes. */
    DECODE_RC(h, AMB_EDECODE, 131, 77, 0, 0, 0, 1, 0, 5);
    DECODE_RC(h, AMB_EDECODE, 131, 77, 0, 0, 0, 1, 9, 5);
    DECODE_RC(h, AMB_EDECODE, 131, 77, 0, 0, 0, 0, 8);
    amb_heap_free(h);
}

AMB_TEST(large_binaries_are_shared_small_ones_copied)
{
    amb_heap *h = heap_new();
    uint8_t in[6 + 1000] = {131, 109, 0, 0, 3, 232};
    for (int i = 0; i < 1000; i++)
        in[6 + i] = (uint8_t)i;
    amb_term t;
    assert_ok(decode(h, in, sizeof in, &t));
    const amb__binary *b = (const amb__binary *)(const void *)amb__box(t);
    assert_non_null(b->refc);
    assert_memory_equal(b->data, in + 6, 1000);
    assert_ok(decode(h, v_bin_123, sizeof v_bin_123, &t));
    b = (const amb__binary *)(const void *)amb__box(t);
    assert_null(b->refc);
    amb_heap_free(h);
}

AMB_TEST(maps_sorted_and_duplicates_refused)
{
    amb_heap *h = heap_new();
    /* #{b => 2, a => 1} in the wrong order decodes to the canonical map. */
    static const uint8_t unsorted[] = {131, 116, 0, 0,   0, 2,   119, 1,
                                       'b', 97,  2, 119, 1, 'a', 97,  1};
    amb_term t = decode_expect(h, unsorted, sizeof unsorted, b_map_ab(h));
    encode_expect(t, 0, v_map_ab, sizeof v_map_ab);
    /* 300 keys in descending order (OTP sends big maps in hash order). */
    uint8_t big[6 + 300 * 10];
    size_t n = 0;
    big[n++] = 131;
    big[n++] = 116;
    amb__etf_put32(big + n, 300);
    n += 4;
    amb_term keys[300], values[300];
    for (int i = 0; i < 300; i++) {
        int k = 299 - i;
        big[n++] = 98;
        amb__etf_put32(big + n, (uint32_t)k);
        n += 4;
        big[n++] = 98;
        amb__etf_put32(big + n, (uint32_t)(k * 7));
        n += 4;
        keys[i] = AMB_SMALL(k);
        values[i] = AMB_SMALL(k * 7);
    }
    t = decode_expect(h, big, n, amb_map(h, 300, keys, values));
    amb_map_iter it;
    amb_term k, v;
    size_t seen = 0;
    assert_ok(amb_map_iterator(t, &it));
    while (amb_map_next(&it, &k, &v)) {
        assert_int_equal(amb_small_value(v), 7 * amb_small_value(k));
        seen++;
    }
    assert_int_equal(seen, 300);
    /* Duplicate keys are badarg in OTP: sorted, unsorted and far apart. */
    DECODE_RC(h, AMB_EDECODE, 131, 116, 0, 0, 0, 2, 97, 1, 97, 2, 97, 1, 97, 3);
    DECODE_RC(h, AMB_EDECODE, 131, 116, 0, 0, 0, 3, 97, 2, 97, 0, 97, 1, 97, 0, 97, 2, 97,
              0);
    big[6 + 299 * 10 + 4] = 0xff; /* the last key becomes 255, a duplicate */
    big[6 + 299 * 10 + 1] = 0;
    amb__etf_put32(big + 6 + 299 * 10 + 1, 255);
    assert_rc(AMB_EDECODE, decode(h, big, n, &t));
    /* 1 and 1.0 are two keys. */
    DECODE_RC(h, 0, 131, 116, 0, 0, 0, 2, 97, 1, 97, 1, 70, 63, 240, 0, 0, 0, 0, 0, 0, 97,
              3);
    amb_heap_free(h);
}

/* ---------------------------------------------------------------------------
 * Rejections
 * ------------------------------------------------------------------------ */

AMB_TEST(rejects_non_finite_floats)
{
    amb_heap *h = heap_new();
    DECODE_RC(h, AMB_EDECODE, 131, 70, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0);
    DECODE_RC(h, AMB_EDECODE, 131, 70, 0x7f, 0xf0, 0, 0, 0, 0, 0, 0);
    DECODE_RC(h, AMB_EDECODE, 131, 70, 0xff, 0xf0, 0, 0, 0, 0, 0, 0);
    DECODE_RC(h, AMB_EDECODE, 131, 70, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
    static const char *bad[] = {"inf",  "nan",   "1.8e308", "-1.8e308", "15",  "1.",
                                ".5",   "  1.5", "1.5 ",    "1.5e",     "1e3", "abc",
                                "0x10", "",      "1.5e+",   "--1.5",    "1..5"};
    for (size_t i = 0; i < AMB_COUNTOF(bad); i++) {
        uint8_t in[33] = {131, 99};
        memcpy(in + 2, bad[i], strlen(bad[i]));
        amb_term t;
        int rc = decode(h, in, sizeof in, &t);
        if (rc != AMB_EDECODE)
            fail_msg("FLOAT_EXT \"%s\": %s", bad[i], amb_err_name(rc));
    }
    /* No NUL in the 31 bytes. */
    uint8_t full[33] = {131, 99};
    memset(full + 2, '1', 31);
    full[3] = '.';
    amb_term t;
    assert_rc(AMB_EDECODE, decode(h, full, sizeof full, &t));
    amb_heap_free(h);
}

AMB_TEST(rejects_bad_atoms)
{
    amb_heap *h = heap_new();
    DECODE_RC(h, AMB_EDECODE, 131, 119, 2, 0xc0, 0x80);       /* overlong */
    DECODE_RC(h, AMB_EDECODE, 131, 119, 3, 0xed, 0xa0, 0x80); /* surrogate */
    DECODE_RC(h, AMB_EDECODE, 131, 119, 2, 0xff, 0xfe);
    DECODE_RC(h, AMB_EDECODE, 131, 118, 0, 1, 0x80);
    DECODE_RC(h, AMB_EDECODE, 131, 119, 1, 0xc3); /* cut sequence */
    /* 256 characters, in each form. */
    uint8_t in[3 + 2 * 4 * 256];
    amb_term t;
    in[0] = 131;
    in[1] = 100;
    amb__etf_put16(in + 2, 256);
    memset(in + 4, 'a', 256);
    assert_rc(AMB_EDECODE, decode(h, in, 4 + 256, &t));
    in[1] = 118;
    assert_rc(AMB_EDECODE, decode(h, in, 4 + 256, &t));
    amb__etf_put16(in + 2, 255);
    assert_ok(decode(h, in, 4 + 255, &t)); /* 255 is fine */
    amb__etf_put16(in + 2, 512);           /* 256 x U+03BB */
    for (int i = 0; i < 256; i++) {
        in[4 + 2 * i] = 0xce;
        in[5 + 2 * i] = 0xbb;
    }
    assert_rc(AMB_EDECODE, decode(h, in, 4 + 512, &t));
    amb__etf_put16(in + 2, 1024); /* 256 x U+1F600, 1024 bytes */
    for (int i = 0; i < 256; i++)
        memcpy(in + 4 + 4 * i, "\xf0\x9f\x98\x80", 4);
    assert_rc(AMB_EDECODE, decode(h, in, 4 + 1024, &t));
    amb__etf_put16(in + 2, 1020); /* 255 of them is the longest atom */
    assert_ok(decode(h, in, 4 + 1020, &t));
    amb_heap_free(h);
}

AMB_TEST(rejects_trailing_garbage_in_binary_to_term)
{
    amb_heap *h = heap_new();
    static const uint8_t in[] = {131, 97, 1, 2};
    amb_term bin = amb_binary(h, in, sizeof in), t;
    assert_rc(AMB_EDECODE, amb_binary_to_term(h, bin, &t));
    size_t used = 0;
    assert_ok(amb_etf_decode(h, in, sizeof in, NULL, &t, &used));
    assert_int_equal(used, 3);
    assert_ok(amb_binary_to_term(h, amb_binary(h, in, 3), &t));
    assert_true(t == AMB_SMALL(1));
    amb_heap_free(h);
}

AMB_TEST(rejects_counts_beyond_the_input)
{
    amb_heap *h = heap_new();
    size_t before = amb_heap_size(h);
    DECODE_RC(h, AMB_EDECODE, 131, 105, 0xff, 0xff, 0xff, 0xff, 97, 1);
    DECODE_RC(h, AMB_EDECODE, 131, 105, 0, 0, 0, 3, 97, 1, 97, 2);
    DECODE_RC(h, AMB_EDECODE, 131, 104, 3, 97, 1, 97, 2);
    DECODE_RC(h, AMB_EDECODE, 131, 108, 0xff, 0xff, 0xff, 0xff, 106);
    DECODE_RC(h, AMB_EDECODE, 131, 108, 0, 0, 0, 2, 97, 1, 106);
    DECODE_RC(h, AMB_EDECODE, 131, 116, 0x7f, 0xff, 0xff, 0xff, 97, 1, 97, 2);
    DECODE_RC(h, AMB_EDECODE, 131, 116, 0, 0, 0, 2, 97, 1, 97, 2, 97, 3);
    DECODE_RC(h, AMB_EDECODE, 131, 107, 0xff, 0xff, 97);
    DECODE_RC(h, AMB_EDECODE, 131, 109, 0xff, 0xff, 0xff, 0xff, 1);
    DECODE_RC(h, AMB_EDECODE, 131, 77, 0xff, 0xff, 0xff, 0xff, 3, 1);
    DECODE_RC(h, AMB_EDECODE, 131, 111, 0xff, 0xff, 0xff, 0xff, 0, 1);
    DECODE_RC(h, AMB_EDECODE, 131, 110, 255, 0, 1);
    DECODE_RC(h, AMB_EDECODE, 131, 90, 0xff, 0xff, 119, 0, 0, 0, 0, 0);
    DECODE_RC(h, AMB_EDECODE, 131, 118, 0xff, 0xff, 'a');
    /* A NEW_FUN claiming more free variables than bytes. */
    uint8_t fun[sizeof v_closure];
    memcpy(fun, v_closure, sizeof fun);
    amb__etf_put32(fun + 2 + 25, 0xffffffffu);
    amb_term t;
    assert_rc(AMB_EDECODE, decode(h, fun, sizeof fun, &t));
    /* Nothing above allocated more than a few blocks. */
    assert_true(amb_heap_size(h) - before < (64u << 10));
    /* The integer limit is a system limit, not a decode error. */
    size_t n = AMB_BIG_MAX_BYTES + 1;
    uint8_t *huge = calloc(1, 7 + n);
    huge[0] = 131;
    huge[1] = 111;
    amb__etf_put32(huge + 2, (uint32_t)n);
    huge[6 + n] = 1;
    assert_rc(AMB_ESYSLIMIT, decode(h, huge, 7 + n, &t));
    free(huge);
    amb_heap_free(h);
}

AMB_TEST(rejects_unknown_and_distribution_tags)
{
    amb_heap *h = heap_new();
    DECODE_RC(h, AMB_EDECODE, 131, 82, 0);              /* ATOM_CACHE_REF */
    DECODE_RC(h, AMB_EDECODE, 131, 104, 1, 82, 0);      /* ... anywhere */
    DECODE_RC(h, AMB_EDECODE, 131, 68, 0);              /* a dist header */
    DECODE_RC(h, AMB_EDECODE, 131, 117, 0, 0, 0, 0);    /* FUN_EXT */
    DECODE_RC(h, AMB_EDECODE, 131, 121, 0, 0, 0, 0, 0); /* LOCAL_EXT */
    DECODE_RC(h, AMB_EDECODE, 131, 0);
    DECODE_RC(h, AMB_EDECODE, 131, 255);
    DECODE_RC(h, AMB_EDECODE, 130, 97, 1); /* another version */
    /* Tag 80 only at the top. */
    DECODE_RC(h, AMB_EDECODE, 131, 104, 1, 80, 0, 0, 0, 2, 120, 156, 75, 100, 0, 0, 0,
              196, 0, 98);
    amb_heap_free(h);
}

AMB_TEST(rejects_bad_identifiers)
{
    amb_heap *h = heap_new();
    /* The narrow fields of the legacy forms keep OTP's limits. */
    DECODE_RC(h, 0, 131, 103, NODE_AB, 0, 0, 0x7f, 0xff, 0, 0, 0x1f, 0xff, 3);
    DECODE_RC(h, AMB_EDECODE, 131, 103, NODE_AB, 0, 0, 0x80, 0, 0, 0, 0, 0, 0);
    DECODE_RC(h, AMB_EDECODE, 131, 103, NODE_AB, 0, 0, 0, 0, 0, 0, 0x20, 0, 0);
    DECODE_RC(h, AMB_EDECODE, 131, 103, NODE_AB, 0, 0, 0, 0, 0, 0, 0, 0, 4);
    DECODE_RC(h, AMB_EDECODE, 131, 102, NODE_AB, 0, 0, 0, 1, 4);
    DECODE_RC(h, AMB_EDECODE, 131, 101, NODE_AB, 0, 4, 0, 0, 0);
    DECODE_RC(h, AMB_EDECODE, 131, 101, NODE_AB, 0, 0, 0, 1, 4);
    DECODE_RC(h, AMB_EDECODE, 131, 114, 0, 0, NODE_AB, 0);
    DECODE_RC(h, AMB_EDECODE, 131, 114, 0, 1, NODE_AB, 4, 0, 0, 0, 1);
    DECODE_RC(h, AMB_EDECODE, 131, 114, 0, 6, NODE_AB, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0,
              1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1);
    DECODE_RC(h, AMB_EDECODE, 131, 90, 0, 0, NODE_AB, 0, 0, 0, 0);
    /* The new forms take any 32-bit value, as OTP 25 does. */
    DECODE_RC(h, 0, 131, 88, NODE_AB, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
              255, 255);
    DECODE_RC(h, 0, 131, 90, 0, 5, NODE_AB, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0,
              1, 0, 0, 0, 1, 0, 0, 0, 1);
    /* The node must be an atom. */
    DECODE_RC(h, AMB_EDECODE, 131, 88, 104, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1);
    DECODE_RC(h, AMB_EDECODE, 131, 88, 97, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1);
    /* Export funs: atoms and an arity of 0..255. */
    DECODE_RC(h, AMB_EDECODE, 131, 113, 97, 1, 100, 0, 1, 'f', 97, 1);
    DECODE_RC(h, AMB_EDECODE, 131, 113, 100, 0, 1, 'm', 100, 0, 1, 'f', 98, 0, 0, 1, 0);
    DECODE_RC(h, AMB_EDECODE, 131, 113, 100, 0, 1, 'm', 100, 0, 1, 'f', 106);
    amb_heap_free(h);
}

AMB_TEST(rejects_bad_closures)
{
    amb_heap *h = heap_new();
    uint8_t fun[sizeof v_closure];
    amb_term t;
    size_t size = amb__etf_get32(v_closure + 2);
    /* Size must match the body exactly. */
    for (int delta = -2; delta <= 2; delta++) {
        memcpy(fun, v_closure, sizeof fun);
        amb__etf_put32(fun + 2, (uint32_t)((int)size + delta));
        assert_rc(delta == 0 ? 0 : AMB_EDECODE, decode(h, fun, sizeof fun, &t));
    }
    /* NumFree one short (a byte left in the body) or one over. */
    memcpy(fun, v_closure, sizeof fun);
    amb__etf_put32(fun + 2 + 25, 0);
    assert_rc(AMB_EDECODE, decode(h, fun, sizeof fun, &t));
    amb__etf_put32(fun + 2 + 25, 2);
    assert_rc(AMB_EDECODE, decode(h, fun, sizeof fun, &t));
    /* The module must be an atom: make it the integer 0 (same length). */
    memcpy(fun, v_closure, sizeof fun);
    size_t mod = 2 + AMB__ETF_FUN_FIXED; /* 119, 3, "vec" */
    assert_int_equal(fun[mod], 119);
    static const uint8_t as_int[] = {98, 0, 0, 0, 0};
    memcpy(fun + mod, as_int, 5);
    assert_rc(AMB_EDECODE, decode(h, fun, sizeof fun, &t));
    amb_heap_free(h);
}

/* ---------------------------------------------------------------------------
 * Depth
 * ------------------------------------------------------------------------ */

/* [[[...[]...]]] n lists deep, as erl encodes it. */
static uint8_t *nested_lists(size_t n, size_t *len)
{
    uint8_t *b = malloc(2 + 6 * n);
    size_t k = 0;
    b[k++] = 131;
    for (size_t i = 0; i < n; i++) {
        static const uint8_t one[] = {108, 0, 0, 0, 1};
        memcpy(b + k, one, 5);
        k += 5;
    }
    b[k++] = 106;
    memset(b + k, 106, n);
    *len = k + n;
    return b;
}

AMB_TEST(depth_limit)
{
    amb_heap *h = heap_new();
    size_t len;
    uint8_t *b = nested_lists(AMB_ETF_MAX_DEPTH, &len);
    amb_term t;
    assert_ok(decode(h, b, len, &t));
    /* ... and it encodes back to the same bytes, without recursion either. */
    encode_expect(t, 0, b, len);
    free(b);
    b = nested_lists(AMB_ETF_MAX_DEPTH + 1, &len);
    assert_rc(AMB_EDEPTH, decode(h, b, len, &t));
    amb_etf_decode_opts deeper = {.max_depth = AMB_ETF_MAX_DEPTH + 1};
    assert_ok(decode_opts(h, b, len, &deeper, &t));
    free(b);

    /* A small limit counts every kind of container. */
    amb_etf_decode_opts o = {.max_depth = 3};
    DECODE_RC(h, 0, 131, 104, 1, 104, 1, 104, 1, 97, 1);
    static const uint8_t t3[] = {131, 104, 1, 104, 1, 104, 1, 97, 1};
    static const uint8_t t4[] = {131, 104, 1, 104, 1, 104, 1, 104, 0};
    static const uint8_t m4[] = {131, 116, 0, 0,   0, 1,   97, 1,   108, 0,
                                 0,   0,   1, 104, 1, 104, 1,  106, 106};
    assert_ok(decode_opts(h, t3, sizeof t3, &o, &t));
    assert_ok(decode_opts(h, t4, sizeof t4, &o, &t)); /* {} is a leaf */
    assert_rc(AMB_EDEPTH, decode_opts(h, m4, sizeof m4, &o, &t));
    o.max_depth = 4;
    /* {{{Fun}}} with a fun: 4 levels, the fun's body being the fourth. */
    static const uint8_t f_exp[] = {131, 104, 1, 104, 1, 104, 1};
    uint8_t *f = malloc(sizeof f_exp + sizeof v_closure - 1);
    memcpy(f, f_exp, sizeof f_exp);
    memcpy(f + sizeof f_exp, v_closure + 1, sizeof v_closure - 1);
    size_t flen = sizeof f_exp + sizeof v_closure - 1;
    assert_ok(decode_opts(h, f, flen, &o, &t));
    o.max_depth = 3;
    assert_rc(AMB_EDEPTH, decode_opts(h, f, flen, &o, &t));
    free(f);

    /* A list whose tail is another LIST_EXT, 100000 times, is one level. */
    size_t n = 100000;
    uint8_t *chain = malloc(2 + 7 * n);
    size_t k = 0;
    chain[k++] = 131;
    for (size_t i = 0; i < n; i++) {
        static const uint8_t cell[] = {108, 0, 0, 0, 1, 97, 7};
        memcpy(chain + k, cell, sizeof cell);
        k += sizeof cell;
    }
    chain[k++] = 106;
    o.max_depth = 1;
    assert_ok(decode_opts(h, chain, k, &o, &t));
    size_t count;
    assert_ok(amb_list_length(t, &count));
    assert_int_equal(count, n);
    free(chain);
    amb_heap_free(h);
}

/* ---------------------------------------------------------------------------
 * Compression
 * ------------------------------------------------------------------------ */

/* 131, 80, claimed size, zlib(body). */
static uint8_t *zterm(const uint8_t *body, size_t n, uint32_t claimed, size_t *len)
{
    uLongf zlen = compressBound((uLong)n);
    uint8_t *b = malloc(6 + zlen);
    b[0] = 131;
    b[1] = 80;
    amb__etf_put32(b + 2, claimed);
    assert_int_equal(compress2(b + 6, &zlen, body, (uLong)n, 6), Z_OK);
    *len = 6 + zlen;
    return b;
}

AMB_TEST(compressed_terms_and_bombs)
{
    amb_heap *h = heap_new();
    amb_term t;
    size_t len;
    /* A 16 MiB binary of zeros compresses to a few KiB. */
    size_t n = (size_t)16 << 20;
    uint8_t *body = calloc(1, 5 + n);
    body[0] = 109;
    amb__etf_put32(body + 1, (uint32_t)n);
    uint8_t *z = zterm(body, 5 + n, (uint32_t)(5 + n), &len);
    assert_true(len < 64 * 1024);
    assert_ok(decode(h, z, len, &t));
    const uint8_t *data;
    size_t size;
    assert_ok(amb_binary_get(t, &data, &size));
    assert_int_equal(size, n);
    /* The same under a smaller limit is a system limit... */
    amb_etf_decode_opts o = {.max_decompressed = (size_t)1 << 20};
    assert_rc(AMB_ESYSLIMIT, decode_opts(h, z, len, &o, &t));
    /* ... and claiming a small size does not let it inflate further. */
    amb__etf_put32(z + 2, 1000);
    assert_rc(AMB_EDECODE, decode(h, z, len, &t));
    amb__etf_put32(z + 2, (uint32_t)(5 + n - 1));
    assert_rc(AMB_EDECODE, decode(h, z, len, &t));
    amb__etf_put32(z + 2, (uint32_t)(5 + n + 1));
    assert_rc(AMB_EDECODE, decode(h, z, len, &t));
    free(z);
    free(body);
    amb_heap_reset(h);

    /* A claimed size above the limit fails before inflating anything. */
    static const uint8_t huge[] = {131, 80, 255, 255, 255, 255, 120,
                                   156, 3,  0,   0,   0,   0,   1};
    assert_rc(AMB_ESYSLIMIT, decode(h, huge, sizeof huge, &t));
    DECODE_RC(h, AMB_EDECODE, 131, 80, 0, 0, 0, 0, 120, 156, 3, 0, 0, 0, 0, 1);
    /* At the limit exactly is fine. */
    o.max_decompressed = amb__etf_get32(v_compressed30 + 2);
    assert_ok(decode_opts(h, v_compressed30, sizeof v_compressed30, &o, &t));
    o.max_decompressed--;
    assert_rc(AMB_ESYSLIMIT,
              decode_opts(h, v_compressed30, sizeof v_compressed30, &o, &t));
    /* Bytes left over inside the compressed data, or another tag 80 inside. */
    static const uint8_t extra[] = {97, 1, 1};
    z = zterm(extra, sizeof extra, 3, &len);
    assert_rc(AMB_EDECODE, decode(h, z, len, &t));
    free(z);
    static const uint8_t inner[] = {80, 0, 0, 0, 2, 97, 1};
    z = zterm(inner, sizeof inner, sizeof inner, &len);
    assert_rc(AMB_EDECODE, decode(h, z, len, &t));
    free(z);
    /* A corrupt stream (bad checksum) and one cut short. */
    uint8_t bad[sizeof v_compressed30];
    memcpy(bad, v_compressed30, sizeof bad);
    bad[sizeof bad - 1] ^= 1;
    assert_rc(AMB_EDECODE, decode(h, bad, sizeof bad, &t));
    bad[sizeof bad - 1] ^= 1;
    bad[8] ^= 0x55;
    assert_rc(AMB_EDECODE, decode(h, bad, sizeof bad, &t));
    /* Bytes after the zlib stream are not part of the term. */
    uint8_t more[sizeof v_compressed30 + 2];
    memcpy(more, v_compressed30, sizeof v_compressed30);
    more[sizeof v_compressed30] = 97;
    more[sizeof v_compressed30 + 1] = 1;
    size_t used;
    assert_ok(amb_etf_decode(h, more, sizeof more, NULL, &t, &used));
    assert_int_equal(used, sizeof v_compressed30);
    assert_true(amb_equal(t, b_dup30(h)));
    /* Compression is used only when it pays. */
    uint8_t *out;
    assert_ok(amb_etf_encode_alloc(AMB_NIL, ZIP, &out, &len));
    assert_bytes("[] compressed", out, len, v_nil, sizeof v_nil);
    amb_free(out);
    amb_heap_free(h);
}

AMB_TEST(existing_atoms_only)
{
    amb_heap *h = heap_new();
    amb_etf_decode_opts safe = {.existing_atoms_only = true};
    static const uint8_t unknown[] = {131, 119, 24,  'a', 'm', 'b', '_', 'e', 't',
                                      'f', '_', 'n', 'e', 'v', 'e', 'r', '_', 'm',
                                      'a', 'd', 'e', '_', 'q', 'z', 'x', 'w', '9'};
    static const uint8_t unknown_node[] = {131, 88, 115, 5, 'q', '@', 'z', 'z', '9', 0, 0,
                                           0,   1,  0,   0, 0,   2,   0,   0,   0,   3};
    (void)A("abc");
    size_t count = amb_atom_count();
    amb_term t;
    assert_rc(AMB_ENOTFOUND, decode_opts(h, unknown, sizeof unknown, &safe, &t));
    assert_rc(AMB_ENOTFOUND,
              decode_opts(h, unknown_node, sizeof unknown_node, &safe, &t));
    assert_int_equal(amb_atom_count(), count);
    assert_ok(decode_opts(h, v_tuple_2, sizeof v_tuple_2, &safe, &t));
    assert_ok(decode_opts(h, v_atom_abc, sizeof v_atom_abc, &safe, &t));
    /* Without the option the atom is made. */
    assert_ok(decode(h, unknown, sizeof unknown, &t));
    assert_int_equal(amb_atom_count(), count + 1);
    assert_ok(decode_opts(h, unknown, sizeof unknown, &safe, &t));
    amb_heap_free(h);
}

/* ---------------------------------------------------------------------------
 * The rest of the API
 * ------------------------------------------------------------------------ */

AMB_TEST(string_ext_only_where_otp_uses_it)
{
    amb_heap *h = heap_new();
    amb_term *elems = malloc(65536 * sizeof *elems);
    for (size_t i = 0; i < 65536; i++)
        elems[i] = AMB_SMALL(i % 256);
    size_t size;
    assert_ok(amb_etf_size(amb_list(h, 65535, elems), 0, &size));
    assert_int_equal(size, 1 + 3 + 65535);
    assert_ok(amb_etf_size(amb_list(h, 65536, elems), 0, &size));
    assert_int_equal(size, 1 + 5 + 65536 * 2 + 1);
    /* A list of 65536 bytes round-trips through LIST_EXT. */
    amb_term big = amb_list(h, 65536, elems), back;
    uint8_t *out;
    size_t len;
    assert_ok(amb_etf_encode_alloc(big, 0, &out, &len));
    assert_int_equal(out[1], AMB__ETF_LIST);
    assert_ok(decode(h, out, len, &back));
    assert_true(amb_equal(big, back));
    amb_free(out);
    free(elems);
    static const uint8_t improper_bytes[] = {131, 108, 0, 0, 0, 1, 97, 1, 97, 2};
    encode_expect(amb_cons(h, AMB_SMALL(1), AMB_SMALL(2)), 0, improper_bytes,
                  sizeof improper_bytes);
    amb_heap_free(h);
}

AMB_TEST(back_to_back_terms)
{
    amb_heap *h = heap_new();
    uint8_t buf[256];
    size_t n = 0;
    memcpy(buf + n, v_int_256, sizeof v_int_256);
    n += sizeof v_int_256;
    memcpy(buf + n, v_compressed30, sizeof v_compressed30);
    n += sizeof v_compressed30;
    memcpy(buf + n, v_atom_abc, sizeof v_atom_abc);
    n += sizeof v_atom_abc;
    amb_term t;
    size_t used, at = 0;
    assert_ok(amb_etf_decode(h, buf + at, n - at, NULL, &t, &used));
    assert_true(t == AMB_SMALL(256));
    at += used;
    assert_ok(amb_etf_decode(h, buf + at, n - at, NULL, &t, &used));
    assert_true(amb_equal(t, b_dup30(h)));
    at += used;
    assert_ok(amb_etf_decode(h, buf + at, n - at, NULL, &t, &used));
    assert_true(t == A("abc"));
    assert_int_equal(at + used, n);
    amb_heap_free(h);
}

AMB_TEST(term_to_binary_and_back)
{
    amb_heap *h = heap_new();
    amb_term t = AMB_TUPLE(h, b_map_nested(h), b_dup30(h), b_closure_tuple(h), b_ref(h),
                           pow2(h, 200, true), b_bits_1234(h), b_abc100(h));
    int flag_sets[] = {0, ZIP, LAT, ZIP | LAT};
    for (size_t i = 0; i < AMB_COUNTOF(flag_sets); i++) {
        amb_term bin, back;
        assert_ok(amb_term_to_binary(h, t, flag_sets[i], &bin));
        assert_true(amb_is_binary(bin));
        assert_ok(amb_binary_to_term(h, bin, &back));
        assert_true(amb_equal(t, back));
    }
    amb_term bits = amb_bitstring(h, "\x83", 1), out = AMB_NIL;
    assert_rc(AMB_ETYPE, amb_binary_to_term(h, bits, &out));
    assert_rc(AMB_ETYPE, amb_binary_to_term(h, AMB_SMALL(1), &out));
    assert_true(out == AMB_NIL);
    amb_heap_free(h);
}

AMB_TEST(local_pids_encode_as_new_pid)
{
    /* A pid of a node in this OS process is an immediate word; on the wire
     * it is NEW_PID_EXT with the node's name and creation, and decoding
     * those bytes here gives the same word back. */
    amb_heap *h = heap_new();
    amb_term node = amb_atom("local@here");
    unsigned slot;
    assert_ok(amb__node_register(node, 7, &slot));
    amb_term pid = amb_pid_term(NULL, node, 5, 6, 7);
    assert_true(amb_is_local_pid(pid));
    amb_term t = AMB_TUPLE(h, amb_atom("from"), pid);
    uint8_t buf[64];
    size_t len, size;
    assert_ok(amb_etf_encode(t, 0, buf, sizeof buf, &len));
    assert_ok(amb_etf_size(t, 0, &size));
    assert_int_equal(size, len);
    const uint8_t want[] = {131, 104, 2,   119, 4,   'f', 'r', 'o', 'm', 88,  119, 10,
                            'l', 'o', 'c', 'a', 'l', '@', 'h', 'e', 'r', 'e', 0,   0,
                            0,   5,   0,   0,   0,   6,   0,   0,   0,   7};
    assert_int_equal(len, sizeof want);
    assert_memory_equal(buf, want, sizeof want);
    amb_term back;
    assert_ok(amb_etf_decode(h, buf, len, NULL, &back, NULL));
    assert_true(amb_tuple_elem(back, 1) == pid);
    amb_heap_free(h);
}

AMB_TEST(local_ports_encode_as_new_port)
{
    /* A socket of a runtime is an immediate port word; on the wire it is
     * NEW_PORT_EXT (V4_PORT_EXT for an id over 28 bits) with the node's
     * name and creation, and decoding gives the same word back. */
    amb_heap *h = heap_new();
    amb_term node = amb_atom("ports@here");
    unsigned slot;
    assert_ok(amb__node_register(node, 9, &slot));
    amb_term port = amb_port_term(NULL, node, 5, 9);
    assert_true(amb_is_local_port(port));
    uint8_t buf[64];
    size_t len, size;
    assert_ok(amb_etf_encode(port, 0, buf, sizeof buf, &len));
    assert_ok(amb_etf_size(port, 0, &size));
    assert_int_equal(size, len);
    const uint8_t want[] = {131, 89,  119, 10, 'p', 'o', 'r', 't', 's', '@', 'h',
                            'e', 'r', 'e', 0,  0,   0,   5,   0,   0,   0,   9};
    assert_int_equal(len, sizeof want);
    assert_memory_equal(buf, want, sizeof want);
    amb_term back;
    assert_ok(amb_etf_decode(h, buf, len, NULL, &back, NULL));
    assert_true(back == port);
    amb_term wide = amb_port_term(NULL, node, UINT64_C(1) << 40, 9);
    assert_true(amb_is_local_port(wide));
    assert_ok(amb_etf_encode(wide, 0, buf, sizeof buf, &len));
    assert_int_equal(buf[1], 120); /* V4_PORT_EXT */
    assert_ok(amb_etf_decode(h, buf, len, NULL, &back, NULL));
    assert_true(back == wide);
    amb_heap_free(h);
}

AMB_TEST(bad_arguments)
{
    amb_heap *h = heap_new();
    size_t size = 7, len = 7;
    uint8_t buf[16], *p = NULL;
    amb_term t = AMB_NIL;
    assert_rc(AMB_EBADARG, amb_etf_size(AMB_NIL, 0, NULL));
    assert_rc(AMB_EBADARG, amb_etf_size(AMB_NONE, 0, &size));
    assert_rc(AMB_EBADARG, amb_etf_size(AMB_NIL, ZIP, &size));
    assert_rc(AMB_EBADARG, amb_etf_size(AMB_NIL, 1 << 8, &size));
    assert_rc(AMB_EBADARG, amb_etf_encode(AMB_NIL, 0, NULL, 4, &len));
    assert_rc(AMB_EBADARG, amb_etf_encode(AMB_NIL, 0, buf, sizeof buf, NULL));
    assert_rc(AMB_EBADARG, amb_etf_encode(AMB_NONE, 0, buf, sizeof buf, &len));
    assert_rc(AMB_EBADARG, amb_etf_encode_alloc(AMB_NIL, 0, NULL, &len));
    assert_rc(AMB_EBADARG, amb_etf_encode_alloc(AMB_NIL, 0, &p, NULL));
    assert_rc(AMB_EBADARG, amb_term_to_binary(NULL, AMB_NIL, 0, &t));
    assert_rc(AMB_EBADARG, amb_term_to_binary(h, AMB_NIL, 0, NULL));
    assert_rc(AMB_EBADARG, amb_etf_decode(NULL, v_nil, sizeof v_nil, NULL, &t, NULL));
    assert_rc(AMB_EBADARG, amb_etf_decode(h, v_nil, sizeof v_nil, NULL, NULL, NULL));
    assert_rc(AMB_EBADARG, amb_etf_decode(h, NULL, 3, NULL, &t, NULL));
    amb_etf_decode_opts o = {.flags = 1 << 9};
    assert_rc(AMB_EBADARG, amb_etf_decode(h, v_nil, sizeof v_nil, &o, &t, NULL));
    assert_rc(AMB_EBADARG, amb_binary_to_term(NULL, AMB_NIL, &t));
    assert_rc(AMB_EBADARG, amb_binary_to_term(h, AMB_NIL, NULL));
    assert_rc(AMB_EDECODE, amb_etf_decode(h, NULL, 0, NULL, &t, NULL));
    /* Failed calls leave the outputs alone. */
    assert_int_equal(size, 7);
    assert_int_equal(len, 7);
    assert_null(p);
    assert_true(t == AMB_NIL);
    amb_heap_free(h);
}

/* ---------------------------------------------------------------------------
 * Out of memory: allocation N and every one after it fail, for each N in
 * turn; each run ends in success or AMB_ENOMEM, and ASan's leak check sees
 * nothing left behind.
 * ------------------------------------------------------------------------ */

AMB_TEST(allocation_failures_are_clean)
{
    /* Intern every atom first: the atom table's memory is never freed. */
    amb_heap *h0 = heap_new();
    amb_term big = AMB_TUPLE(h0, b_map_nested(h0), b_dup30(h0), b_closure_tuple(h0),
                             b_bin_100(h0), pow2(h0, 2040, false), b_ref(h0));
    uint8_t *bytes;
    size_t len;
    assert_ok(amb_etf_encode_alloc(big, ZIP, &bytes, &len));
    amb_heap_free(h0);
    size_t nested_len;
    uint8_t *nested = nested_lists(200, &nested_len);
    bool decoded = false, encoded = false;
    for (long n = 0; n < 10000 && !(decoded && encoded); n++) {
        amb_test_alloc_disarm();
        amb_heap *h = NULL;
        assert_ok(amb_heap_new(&h));
        amb_test_alloc_fail((uint64_t)n, AMB_TEST_FAIL_FOREVER);
        amb_term t;
        int rc = amb_etf_decode(h, bytes, len, NULL, &t, NULL);
        if (rc == 0)
            rc = amb_etf_decode(h, nested, nested_len, NULL, &t, NULL);
        if (rc != 0 && rc != AMB_ENOMEM)
            fail_msg("decode with allocation %ld failing: %s", n, amb_err_name(rc));
        if (rc == 0) {
            decoded = true;
            uint8_t *again;
            size_t alen;
            amb_term big2;
            amb_test_alloc_disarm();
            assert_ok(amb_etf_decode(h, bytes, len, NULL, &big2, NULL));
            amb_test_alloc_fail((uint64_t)n, AMB_TEST_FAIL_FOREVER);
            rc = amb_etf_encode_alloc(big2, ZIP, &again, &alen);
            if (rc != 0 && rc != AMB_ENOMEM)
                fail_msg("encode with allocation %ld failing: %s", n, amb_err_name(rc));
            if (rc == 0) {
                encoded = true;
                amb_free(again);
            }
        }
        amb_test_alloc_disarm();
        amb_heap_free(h);
    }
    assert_true(decoded && encoded);
    free(nested);
    amb_free(bytes);
}

AMB_TEST_MAIN(
    AMB_TEST_ENTRY(encode_matches_erl), AMB_TEST_ENTRY(decode_matches_erl),
    AMB_TEST_ENTRY(encode_into_buffer_reports_bufsize), AMB_TEST_ENTRY(no_version_flag),
    AMB_TEST_ENTRY(truncated_at_every_offset), AMB_TEST_ENTRY(decode_legacy_forms),
    AMB_TEST_ENTRY(decode_integers_canonically), AMB_TEST_ENTRY(decode_bit_binary_as_otp),
    AMB_TEST_ENTRY(large_binaries_are_shared_small_ones_copied),
    AMB_TEST_ENTRY(maps_sorted_and_duplicates_refused),
    AMB_TEST_ENTRY(rejects_non_finite_floats), AMB_TEST_ENTRY(rejects_bad_atoms),
    AMB_TEST_ENTRY(rejects_trailing_garbage_in_binary_to_term),
    AMB_TEST_ENTRY(rejects_counts_beyond_the_input),
    AMB_TEST_ENTRY(rejects_unknown_and_distribution_tags),
    AMB_TEST_ENTRY(rejects_bad_identifiers), AMB_TEST_ENTRY(rejects_bad_closures),
    AMB_TEST_ENTRY(depth_limit), AMB_TEST_ENTRY(compressed_terms_and_bombs),
    AMB_TEST_ENTRY(existing_atoms_only),
    AMB_TEST_ENTRY(string_ext_only_where_otp_uses_it), AMB_TEST_ENTRY(back_to_back_terms),
    AMB_TEST_ENTRY(term_to_binary_and_back), AMB_TEST_ENTRY(local_pids_encode_as_new_pid),
    AMB_TEST_ENTRY(local_ports_encode_as_new_port), AMB_TEST_ENTRY(bad_arguments),
    AMB_TEST_ENTRY(allocation_failures_are_clean))
