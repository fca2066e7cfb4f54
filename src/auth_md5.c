/*
 * PostgreSQL's MD5 password response (AuthenticationMD5Password):
 *   "md5" + hex(md5(hex(md5(password + user)) + salt))
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <string.h>

#include "auth.h"

static void to_hex(const unsigned char *d, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[d[i] >> 4];
        out[2 * i + 1] = digits[d[i] & 15];
    }
}

/* out = hex(md5(a + b)), 32 chars, no NUL. */
static int md5_hex(const void *a, size_t alen, const void *b, size_t blen,
                   char out[32])
{
    unsigned char d[16];
    unsigned int dlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    /* EVP_md5 is missing under a FIPS provider: then we fail cleanly. */
    int ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_md5(), NULL) == 1 &&
             EVP_DigestUpdate(ctx, a, alen) == 1 &&
             EVP_DigestUpdate(ctx, b, blen) == 1 &&
             EVP_DigestFinal_ex(ctx, d, &dlen) == 1 && dlen == 16;
    EVP_MD_CTX_free(ctx);
    if (ok)
        to_hex(d, 16, out);
    OPENSSL_cleanse(d, sizeof d);
    return ok ? MOLT_DB_OK : MOLT_DB_EAUTH;
}

int molt_db_md5_password(const char *user, const char *password,
                         const uint8_t salt[4],
                         char out[MOLT_DB_MD5_PASSWORD_LEN])
{
    char inner[32];
    int rc = md5_hex(password, strlen(password), user, strlen(user), inner);
    if (rc == MOLT_DB_OK)
        rc = md5_hex(inner, sizeof inner, salt, 4, out + 3);
    OPENSSL_cleanse(inner, sizeof inner);
    if (rc != MOLT_DB_OK) {
        memset(out, 0, MOLT_DB_MD5_PASSWORD_LEN);
        return rc;
    }
    memcpy(out, "md5", 3);
    out[MOLT_DB_MD5_PASSWORD_LEN - 1] = '\0';
    return MOLT_DB_OK;
}
