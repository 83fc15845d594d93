/* SPDX-License-Identifier: MIT */
#include <check.h>
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>

#include "util/base64.h"
#include "util/cleanup.h"
#include "util/crc32c.h"
#include "util/jwt.h"

/* A throwaway certificate and RSA key made for this test; its x5t#S256, computed with
 * Python's hashlib from the certificate's DER. */
#define X5T_S256 "N8YpJbLggYqLJb4ITLRyXqCJb9Ct-HasOT9TD8jgmKc"

static SecBuf *fixture(const char *name) {
        char path[1024];
        SecBuf *b = NULL;
        snprintf(path, sizeof(path), "%s/%s", FIXTURES, name);
        ck_assert_int_eq(secbuf_read_file(path, 65536, false, &b), 0);
        return b;
}

START_TEST(test_base64url) {
        static const char *const vectors[][2] = { { "", "" }, { "f", "Zg" }, { "fo", "Zm8" }, { "foo", "Zm9v" },
                                                  { "\xfb\xff", "-_8" }, { "\xff\xfe\xfd\xfc", "__79_A" } };
        for (size_t i = 0; i < ELEMENTSOF(vectors); i++) {
                _cleanup_secbuf_ SecBuf *e = secbuf_new(0);
                ck_assert_int_ge(base64url_encode_append(e, vectors[i][0], strlen(vectors[i][0])), 0);
                ck_assert_str_eq(secbuf_str(e), vectors[i][1]);
        }
}
END_TEST

START_TEST(test_crc32c) {
        /* RFC 3720 appendix B.4, and the check value of CRC-32C. */
        unsigned char zeros[32] = { 0 }, ones[32];
        memset(ones, 0xff, sizeof(ones));
        ck_assert_uint_eq(crc32c(0, "123456789", 9), 0xE3069283U);
        ck_assert_uint_eq(crc32c(0, zeros, sizeof(zeros)), 0x8A9136AAU);
        ck_assert_uint_eq(crc32c(0, ones, sizeof(ones)), 0x62A8AB43U);
        ck_assert_uint_eq(crc32c(crc32c(0, "1234", 4), "56789", 5), 0xE3069283U);
        ck_assert_uint_eq(crc32c(0, "", 0), 0);
}
END_TEST

START_TEST(test_sign_verifies) {
        _cleanup_secbuf_ SecBuf *pem = fixture("jwt-rsa.pem"), *claims = secbuf_new_from("{\"a\":1}", 7), *jwt = NULL;
        ck_assert_int_eq(jwt_sign_rs256("{\"alg\":\"RS256\"}", claims, pem, &jwt), 0);
        const char *t = secbuf_str(jwt), *dot2 = strrchr(t, '.');
        ck_assert_int_eq(strncmp(t, "eyJhbGciOiJSUzI1NiJ9.eyJhIjoxfQ.", 32), 0);

        /* The signature verifies with the certificate's public key. */
        BIO *bio = BIO_new_mem_buf(pem->data, (int) pem->len);
        X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        ck_assert_ptr_nonnull(x);
        size_t sl = strlen(dot2 + 1);
        char *b64 = malloc(sl + 4);
        memcpy(b64, dot2 + 1, sl + 1);
        for (char *c = b64; *c; c++)
                *c = *c == '-' ? '+' : *c == '_' ? '/' : *c;
        while (sl % 4)
                b64[sl++] = '=';
        b64[sl] = 0;
        _cleanup_secbuf_ SecBuf *sig = NULL;
        ck_assert_int_eq(base64_decode(b64, sl, false, &sig), 0);
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        ck_assert_int_eq(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, X509_get0_pubkey(x)), 1);
        ck_assert_int_eq(EVP_DigestVerify(md, sig->data, sig->len, (const unsigned char *) t, (size_t) (dot2 - t)), 1);
        EVP_MD_CTX_free(md);
        X509_free(x);
        BIO_free(bio);
        free(b64);
}
END_TEST

START_TEST(test_x5t_and_refusals) {
        _cleanup_secbuf_ SecBuf *pem = fixture("jwt-rsa.pem"), *ec = fixture("jwt-ec.pem"), *jwt = NULL,
                                *claims = secbuf_new_from("{}", 2), *junk = secbuf_new_from("not a pem", 9);
        _cleanup_free_ char *x5t = NULL, *none = NULL;
        ck_assert_int_eq(jwt_x5t_s256(pem, &x5t), 0);
        ck_assert_str_eq(x5t, X5T_S256);
        ck_assert_int_eq(jwt_x5t_s256(ec, &none), -ENOENT);
        ck_assert_int_eq(jwt_sign_rs256("{}", claims, ec, &jwt), -EINVAL); /* not RSA */
        ck_assert_int_eq(jwt_sign_rs256("{}", claims, junk, &jwt), -EINVAL);
        ck_assert_ptr_null(jwt);
        char a[JWT_ID_LEN + 1], b[JWT_ID_LEN + 1];
        ck_assert_int_eq(jwt_new_id(a), 0);
        ck_assert_int_eq(jwt_new_id(b), 0);
        ck_assert_uint_eq(strlen(a), JWT_ID_LEN);
        ck_assert_str_ne(a, b);
        ck_assert_int_eq(a[14], '4');
}
END_TEST

int main(void) {
        Suite *s = suite_create("jwt");
        TCase *tc = tcase_create("core");
        tcase_add_test(tc, test_base64url);
        tcase_add_test(tc, test_crc32c);
        tcase_add_test(tc, test_sign_verifies);
        tcase_add_test(tc, test_x5t_and_refusals);
        suite_add_tcase(s, tc);
        SRunner *sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
