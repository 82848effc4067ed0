/*
 * tls_test.h - throwaway certificates for the TLS tests, made at test time
 * with the OpenSSL API (no private key is ever committed): EC P-256 keys, a
 * CA, and leaf certificates it signs, with chosen names (DNS and IP
 * subjectAltNames) and validity, all as PEM text in memory.
 *
 *   tls_test_key()                        a new key
 *   tls_test_ca(key, "CN")                a self-signed CA certificate
 *   tls_test_leaf(key, ca, ca_key, san, from_days, to_days)
 *                                         a leaf for san ("DNS:localhost,
 *                                         IP:127.0.0.1"), valid from now +
 *                                         from_days to now + to_days
 *   tls_test_cert_pem / tls_test_key_pem  PEM text, owned (free())
 *
 * Every failure fails the test at once (these are test fixtures, not code
 * under test).
 */
#ifndef AMB_TESTS_TLS_TEST_H
#define AMB_TESTS_TLS_TEST_H

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

#include "amb_test.h"

static inline EVP_PKEY *tls_test_key(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    assert_non_null(k);
    return k;
}

static inline void tls_test_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    assert_non_null(ext);
    assert_int_equal(X509_add_ext(cert, ext, -1), 1);
    X509_EXTENSION_free(ext);
}

/* An unsigned certificate for key named cn, issued by issuer (itself when
 * NULL), valid from now + from_days to now + to_days. */
static inline X509 *tls_test_cert(EVP_PKEY *key, const char *cn, X509 *issuer,
                                  long from_days, long to_days)
{
    static long serial = 1;
    X509 *x = X509_new();
    assert_non_null(x);
    assert_int_equal(X509_set_version(x, 2), 1); /* v3 */
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), from_days * 86400L));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), to_days * 86400L));
    assert_int_equal(X509_set_pubkey(x, key), 1);
    X509_NAME *name = X509_get_subject_name(x);
    assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                                (const unsigned char *)cn, -1, -1, 0),
                     1);
    assert_int_equal(
        X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : name),
        1);
    return x;
}

static inline void tls_test_sign(X509 *x, EVP_PKEY *issuer_key)
{
    assert_true(X509_sign(x, issuer_key, EVP_sha256()) > 0);
}

static inline X509 *tls_test_ca(EVP_PKEY *key, const char *cn)
{
    X509 *x = tls_test_cert(key, cn, NULL, -1, 30);
    tls_test_ext(x, x, NID_basic_constraints, "critical,CA:TRUE");
    tls_test_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign");
    tls_test_ext(x, x, NID_subject_key_identifier, "hash");
    tls_test_sign(x, key);
    return x;
}

static inline X509 *tls_test_leaf(EVP_PKEY *key, X509 *ca, EVP_PKEY *ca_key,
                                  const char *san, long from_days, long to_days)
{
    X509 *x = tls_test_cert(key, "leaf", ca, from_days, to_days);
    tls_test_ext(x, ca, NID_basic_constraints, "critical,CA:FALSE");
    tls_test_ext(x, ca, NID_key_usage, "critical,digitalSignature");
    tls_test_ext(x, ca, NID_ext_key_usage, "serverAuth,clientAuth");
    tls_test_ext(x, ca, NID_subject_alt_name, san);
    tls_test_ext(x, ca, NID_authority_key_identifier, "keyid:always");
    tls_test_sign(x, ca_key);
    return x;
}

/* PEM text of a BIO's contents, owned by the caller (free()). */
static inline char *tls_test_bio_text(BIO *b)
{
    char *data;
    long n = BIO_get_mem_data(b, &data);
    assert_true(n > 0);
    char *s = malloc((size_t)n + 1);
    assert_non_null(s);
    memcpy(s, data, (size_t)n);
    s[n] = '\0';
    BIO_free(b);
    return s;
}

static inline char *tls_test_cert_pem(X509 *x)
{
    BIO *b = BIO_new(BIO_s_mem());
    assert_non_null(b);
    assert_int_equal(PEM_write_bio_X509(b, x), 1);
    return tls_test_bio_text(b);
}

static inline char *tls_test_key_pem(EVP_PKEY *k)
{
    BIO *b = BIO_new(BIO_s_mem());
    assert_non_null(b);
    assert_int_equal(PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL), 1);
    return tls_test_bio_text(b);
}

#endif /* AMB_TESTS_TLS_TEST_H */
