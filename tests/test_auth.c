/* MD5 password hashing, the SCRAM-SHA-256 client, and tls-server-end-point
 * channel binding data. Expected values were computed independently
 * (Python's hashlib/hmac, the RFC 7677 example, the openssl command). */
#include "test.h"

#include <ctype.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "auth.h"

/* ---- MD5 ---- */

TEST(md5_password)
{
    char out[MOLT_DB_MD5_PASSWORD_LEN];
    static const uint8_t salt1[4] = {1, 2, 3, 4};
    ASSERT_OK(molt_db_md5_password("user", "pencil", salt1, out), NULL);
    /* python3: "md5" + md5(md5(b"penciluser").hexdigest().encode()
     *                      + bytes([1,2,3,4])).hexdigest() */
    ASSERT_EQ_STR(out, "md54376eb6913b38f9aaff38dc7cf19ca76");
    static const uint8_t salt2[4] = {0xde, 0xad, 0xbe, 0xef};
    ASSERT_OK(molt_db_md5_password("postgres", "Zq9 secret", salt2, out), NULL);
    ASSERT_EQ_STR(out, "md5a796d62df0f221bfb0fdff6ac9e5c5bb");
    ASSERT_EQ_UINT(strlen(out), MOLT_DB_MD5_PASSWORD_LEN - 1);
}

/* ---- SCRAM ---- */

#define RFC_NONCE "rOprNGfwEbeRWgbNEkqO"
#define RFC_SERVER_FIRST                                                     \
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"                  \
    "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
#define RFC_FINAL_NO_PROOF                                                   \
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"

static void buf_str(const molt_db_buf *b, char *out, size_t n)
{
    ASSERT(b->len < n);
    memcpy(out, b->data, b->len);
    out[b->len] = '\0';
}

/* Runs init + fixed nonce + client-first; checks the client-first text. */
static void start(molt_db_scram *s, const char *password, const char *user,
                  const uint8_t *cb, size_t cb_len, const char *want_first)
{
    molt_db_error err;
    molt_db_error_init(&err);
    ASSERT_OK(molt_db_scram_init(s, password, cb, cb_len, &err), &err);
    ASSERT_OK(molt_db_scram__set_nonce(s, RFC_NONCE), NULL);
    ASSERT_OK(molt_db_scram__set_username(s, user), NULL);
    molt_db_buf b;
    molt_db_buf_init(&b);
    ASSERT_OK(molt_db_scram_client_first(s, &b, &err), &err);
    char text[256];
    buf_str(&b, text, sizeof text);
    ASSERT_EQ_STR(text, want_first);
    molt_db_buf_free(&b);
}

static int feed_first(molt_db_scram *s, const char *server_first, char *out,
                      size_t n, molt_db_error *err)
{
    molt_db_buf b;
    molt_db_buf_init(&b);
    int rc = molt_db_scram_client_final(s, (const uint8_t *)server_first,
                                        strlen(server_first), &b, err);
    if (out != NULL)
        buf_str(&b, out, n);
    if (rc != MOLT_DB_OK)
        ASSERT_EQ_UINT(b.len, 0);
    molt_db_buf_free(&b);
    return rc;
}

static int feed_final(molt_db_scram *s, const char *server_final,
                      molt_db_error *err)
{
    return molt_db_scram_verify_final(s, (const uint8_t *)server_final,
                                      strlen(server_final), err);
}

TEST(scram_rfc7677_vector)
{
    molt_db_scram s;
    molt_db_error err;
    molt_db_error_init(&err);
    start(&s, "pencil", "user", NULL, 0, "n,,n=user,r=" RFC_NONCE);
    char final[256];
    ASSERT_OK(feed_first(&s, RFC_SERVER_FIRST, final, sizeof final, &err),
              &err);
    ASSERT_EQ_STR(final, RFC_FINAL_NO_PROOF
                  ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
    ASSERT_EQ_INT(s.state, MOLT_DB_SCRAM_SENT_FINAL);
    ASSERT_OK(feed_final(&s, "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
                         &err),
              &err);
    ASSERT_EQ_INT(s.state, MOLT_DB_SCRAM_DONE);
    /* nothing more is allowed */
    ASSERT_CODE(feed_final(&s, "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
                           &err),
                MOLT_DB_ESTATE);
    molt_db_scram_clear(&s);
    ASSERT(s.password == NULL);
    ASSERT(s.auth_message == NULL);
}

TEST(scram_postgres_empty_user)
{
    /* PostgreSQL's form: "n=" empty. Expected values from Python. */
    molt_db_scram s;
    molt_db_error err;
    molt_db_error_init(&err);
    start(&s, "pencil", NULL, NULL, 0, "n,,n=,r=" RFC_NONCE);
    char final[256];
    ASSERT_OK(feed_first(&s, RFC_SERVER_FIRST, final, sizeof final, &err),
              &err);
    ASSERT_EQ_STR(final, RFC_FINAL_NO_PROOF
                  ",p=qvT2SWdEH5Q06albL+hjSYuUhCG7VndFyzIb7CK4n9k=");
    ASSERT_OK(feed_final(&s, "v=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBtSOg=",
                         &err),
              &err);
    molt_db_scram_clear(&s);

    /* username escaping: ',' -> =2C, '=' -> =3D */
    ASSERT_OK(molt_db_scram_init(&s, "pw", NULL, 0, &err), &err);
    ASSERT_OK(molt_db_scram__set_nonce(&s, "abc"), NULL);
    ASSERT_OK(molt_db_scram__set_username(&s, "a,b=c"), NULL);
    molt_db_buf b;
    molt_db_buf_init(&b);
    ASSERT_OK(molt_db_scram_client_first(&s, &b, &err), &err);
    char text[64];
    buf_str(&b, text, sizeof text);
    ASSERT_EQ_STR(text, "n,,n=a=2Cb=3Dc,r=abc");
    molt_db_buf_free(&b);
    molt_db_scram_clear(&s);
}

TEST(scram_channel_binding)
{
    uint8_t cb[32];
    for (int i = 0; i < 32; i++)
        cb[i] = (uint8_t)i;
    molt_db_scram s;
    molt_db_error err;
    molt_db_error_init(&err);
    start(&s, "pencil", NULL, cb, sizeof cb,
          "p=tls-server-end-point,,n=,r=" RFC_NONCE);
    char final[256];
    ASSERT_OK(feed_first(&s, RFC_SERVER_FIRST, final, sizeof final, &err),
              &err);
    ASSERT_EQ_STR(final,
                  "c=cD10bHMtc2VydmVyLWVuZC1wb2ludCwsAAECAwQFBgcICQoLDA0ODxAR"
                  "EhMUFRYXGBkaGxwdHh8=,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCA"
                  "fuxFIlj)hNlF$k0,p=Q8h71kjaoMzNI7dPksDrhRE/5mTUObF0fUHVIgBO"
                  "WQg=");
    ASSERT_OK(feed_final(&s, "v=ykwoqH8mLqO5AQCeuwwf6lsj9f8zyJZT/CcvAbN4Ssc=",
                         &err),
              &err);
    molt_db_scram_clear(&s);

    /* "y,,": we support binding, the server offered no -PLUS */
    ASSERT_OK(molt_db_scram_init(&s, "pencil", NULL, 0, &err), &err);
    molt_db_scram_set_cb_supported(&s);
    ASSERT_OK(molt_db_scram__set_nonce(&s, RFC_NONCE), NULL);
    molt_db_buf b;
    molt_db_buf_init(&b);
    ASSERT_OK(molt_db_scram_client_first(&s, &b, &err), &err);
    molt_db_buf_free(&b);
    ASSERT_OK(feed_first(&s, RFC_SERVER_FIRST, final, sizeof final, &err),
              &err);
    ASSERT_EQ_STR(final, "c=eSws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)"
                         "hNlF$k0,p=VpuC5DGQa5ro9tXE9MnKs69NH1nxnuregZZcclqIGfM=");
    ASSERT_OK(feed_final(&s, "v=FOmOj9BpTGwvnzwBtWQjBaPmVxT9I8IeHBOhcIPu3us=",
                         &err),
              &err);
    molt_db_scram_clear(&s);

    ASSERT_CODE(molt_db_scram_init(&s, "pw", cb, 65, &err), MOLT_DB_EINVAL);
    molt_db_scram_clear(&s);
}

TEST(scram_random_nonce)
{
    molt_db_scram a, b;
    molt_db_error err;
    molt_db_error_init(&err);
    ASSERT_OK(molt_db_scram_init(&a, "pw", NULL, 0, &err), &err);
    ASSERT_OK(molt_db_scram_init(&b, "pw", NULL, 0, &err), &err);
    ASSERT_EQ_UINT(strlen(a.client_nonce), 24); /* base64 of 18 bytes */
    ASSERT(strcmp(a.client_nonce, b.client_nonce) != 0);
    for (size_t i = 0; i < 24; i++)
        ASSERT(isalnum((unsigned char)a.client_nonce[i]) ||
               a.client_nonce[i] == '+' || a.client_nonce[i] == '/');
    molt_db_buf buf;
    molt_db_buf_init(&buf);
    ASSERT_OK(molt_db_scram_client_first(&a, &buf, &err), &err);
    ASSERT_EQ_UINT(buf.len, 3 + 5 + 24);
    ASSERT(memcmp(buf.data, "n,,n=,r=", 8) == 0);
    molt_db_buf_free(&buf);
    molt_db_scram_clear(&a);
    molt_db_scram_clear(&b);
}

/* Expects server_first to be refused with EAUTH and a message containing
 * want; the exchange is then FAILED. */
static void bad_first(const char *server_first, const char *want)
{
    molt_db_scram s;
    molt_db_error err;
    molt_db_error_init(&err);
    start(&s, "pencil", NULL, NULL, 0, "n,,n=,r=" RFC_NONCE);
    ASSERT_CODE(feed_first(&s, server_first, NULL, 0, &err), MOLT_DB_EAUTH);
    ASSERT_CONTAINS(err.message, want);
    ASSERT(strstr(err.message, "pencil") == NULL);
    ASSERT_EQ_INT(s.state, MOLT_DB_SCRAM_FAILED);
    ASSERT_CODE(feed_final(&s, "v=x", &err), MOLT_DB_ESTATE);
    molt_db_scram_clear(&s);
}

TEST(scram_server_first_validation)
{
    bad_first("r=XXXXNGfwEbeRWgbNEkqO%hvY,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
              "nonce does not extend");
    bad_first("r=" RFC_NONCE ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
              "nonce does not extend"); /* equal, not longer */
    bad_first("r=rOprNGfwEbeRWgbNEkq,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
              "nonce does not extend"); /* shorter */
    bad_first("r=" RFC_NONCE "ab\x01,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
              "nonce does not extend"); /* unprintable */
    bad_first("r=" RFC_NONCE "x,s=W22ZaJ0SNY7soEsUEjb6gQ=,i=4096",
              "invalid base64 salt");
    bad_first("r=" RFC_NONCE "x,s=W22Z*J0SNY7soEsUEjb6gQ==,i=4096",
              "invalid base64 salt");
    bad_first("r=" RFC_NONCE "x,s=W2=ZaJ0S,i=4096", "invalid base64 salt");
    bad_first("r=" RFC_NONCE "x,s=,i=4096", "invalid base64 salt");
    bad_first("r=" RFC_NONCE "x,i=4096", "no salt");
    bad_first("s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "no nonce");
    bad_first("r=" RFC_NONCE "x,s=W22ZaJ0SNY7soEsUEjb6gQ==", "no iteration");
    bad_first("r=" RFC_NONCE "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0",
              "iteration count out of range");
    bad_first("r=" RFC_NONCE "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=10000001",
              "iteration count out of range");
    bad_first("r=" RFC_NONCE "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=99999999999999",
              "iteration count out of range");
    bad_first("r=" RFC_NONCE "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=-1",
              "iteration count out of range");
    bad_first("r=" RFC_NONCE "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=",
              "iteration count out of range");
    bad_first("r=" RFC_NONCE "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=40x6",
              "iteration count out of range");
    bad_first("r=" RFC_NONCE "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,x=ext",
              "garbage after the iteration count");
    bad_first("m=ext,r=" RFC_NONCE "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
              "unsupported extension (m=)");
    bad_first("", "no nonce");

    /* an embedded NUL byte */
    molt_db_scram s;
    molt_db_error err;
    molt_db_error_init(&err);
    start(&s, "pencil", NULL, NULL, 0, "n,,n=,r=" RFC_NONCE);
    static const char nul[] = "r=" RFC_NONCE "x\0,s=AAAA,i=1";
    molt_db_buf b;
    molt_db_buf_init(&b);
    ASSERT_CODE(molt_db_scram_client_final(&s, (const uint8_t *)nul,
                                           sizeof nul - 1, &b, &err),
                MOLT_DB_EAUTH);
    molt_db_buf_free(&b);
    molt_db_scram_clear(&s);

    /* a low count (PostgreSQL 16 allows scram_iterations=1) is accepted */
    start(&s, "pencil", NULL, NULL, 0, "n,,n=,r=" RFC_NONCE);
    ASSERT_OK(feed_first(&s, "r=" RFC_NONCE "x,s=AAAA,i=1", NULL, 0, &err),
              &err);
    molt_db_scram_clear(&s);
}

static void bad_final(const char *server_final, const char *want)
{
    molt_db_scram s;
    molt_db_error err;
    molt_db_error_init(&err);
    start(&s, "pencil", "user", NULL, 0, "n,,n=user,r=" RFC_NONCE);
    ASSERT_OK(feed_first(&s, RFC_SERVER_FIRST, NULL, 0, &err), &err);
    ASSERT_CODE(feed_final(&s, server_final, &err), MOLT_DB_EAUTH);
    ASSERT_CONTAINS(err.message, want);
    ASSERT(strstr(err.message, "pencil") == NULL);
    ASSERT(s.state != MOLT_DB_SCRAM_DONE);
    molt_db_scram_clear(&s);
}

TEST(scram_server_final_validation)
{
    /* one flipped bit in the signature */
    bad_final("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95H4=",
              "server signature mismatch: the server does not know the "
              "password");
    /* non-canonical base64 (nonzero unused bits) */
    bad_final("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G5=", "malformed");
    bad_final("v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
              "server signature mismatch");
    bad_final("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4", "malformed");
    bad_final("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=,x=1",
              "malformed");
    bad_final("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4!", "malformed");
    bad_final("", "malformed");
    bad_final("x=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", "malformed");
    bad_final("e=invalid-proof", "the server reported an error: invalid-proof");
}

TEST(scram_out_of_order)
{
    molt_db_scram s;
    molt_db_error err;
    molt_db_error_init(&err);
    molt_db_buf b;
    molt_db_buf_init(&b);
    /* a zeroed struct, never initialised */
    memset(&s, 0, sizeof s);
    ASSERT_CODE(molt_db_scram_client_first(&s, &b, &err), MOLT_DB_ESTATE);
    molt_db_scram_clear(&s);

    ASSERT_OK(molt_db_scram_init(&s, "pencil", NULL, 0, &err), &err);
    ASSERT_CODE(feed_first(&s, RFC_SERVER_FIRST, NULL, 0, &err),
                MOLT_DB_ESTATE);
    ASSERT_CODE(feed_final(&s, "v=x", &err), MOLT_DB_ESTATE);
    ASSERT_OK(molt_db_scram_client_first(&s, &b, &err), &err);
    ASSERT_CODE(molt_db_scram_client_first(&s, &b, &err), MOLT_DB_ESTATE);
    ASSERT_CODE(feed_final(&s, "v=x", &err), MOLT_DB_ESTATE);
    ASSERT_CODE(molt_db_scram__set_nonce(&s, "abc"), MOLT_DB_EINVAL);
    ASSERT_EQ_UINT(b.len, strlen("n,,n=,r=") + 24);
    molt_db_buf_free(&b);
    molt_db_scram_clear(&s);
    molt_db_scram_clear(&s); /* twice is fine */
    molt_db_scram_clear(NULL);

    ASSERT_OK(molt_db_scram_init(&s, "pencil", NULL, 0, &err), &err);
    ASSERT_CODE(molt_db_scram__set_nonce(&s, "has,comma"), MOLT_DB_EINVAL);
    ASSERT_CODE(molt_db_scram__set_nonce(&s, ""), MOLT_DB_EINVAL);
    ASSERT_CODE(
        molt_db_scram__set_nonce(&s, "0123456789012345678901234567890123"),
        MOLT_DB_EINVAL);
    molt_db_scram_clear(&s);
}

/* ---- tls-server-end-point ---- */

static X509 *make_cert(EVP_PKEY *key, const EVP_MD *md)
{
    X509 *x = X509_new();
    ASSERT(x != NULL);
    ASSERT(X509_set_version(x, 2) == 1);
    ASSERT(ASN1_INTEGER_set(X509_get_serialNumber(x), 42) == 1);
    X509_NAME *name = X509_get_subject_name(x);
    ASSERT(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                      (const unsigned char *)"molt-test", -1,
                                      -1, 0) == 1);
    ASSERT(X509_set_issuer_name(x, name) == 1);
    ASSERT(X509_gmtime_adj(X509_getm_notBefore(x), 0) != NULL);
    ASSERT(X509_gmtime_adj(X509_getm_notAfter(x), 3600) != NULL);
    ASSERT(X509_set_pubkey(x, key) == 1);
    ASSERT(X509_sign(x, key, md) > 0);
    return x;
}

/* The `openssl x509 -fingerprint -<hash>` of x, as bytes. */
static size_t openssl_fingerprint(X509 *x, const char *hash, uint8_t *out)
{
    char dir[] = "/tmp/molt_auth_XXXXXX";
    ASSERT(mkdtemp(dir) != NULL);
    char path[64], cmd[256];
    snprintf(path, sizeof path, "%s/cert.pem", dir);
    FILE *f = fopen(path, "w");
    ASSERT(f != NULL);
    ASSERT(PEM_write_X509(f, x) == 1);
    ASSERT(fclose(f) == 0);
    snprintf(cmd, sizeof cmd,
             "openssl x509 -in %s -noout -fingerprint -%s 2>/dev/null", path,
             hash);
    FILE *p = popen(cmd, "r");
    ASSERT(p != NULL);
    char line[512] = "";
    char *got = fgets(line, sizeof line, p);
    int status = pclose(p);
    unlink(path);
    rmdir(dir);
    if (got == NULL || status != 0)
        SKIP("the openssl command is not available");
    const char *hex = strchr(line, '=');
    ASSERT(hex != NULL);
    size_t n = 0;
    for (hex++; isxdigit((unsigned char)hex[0]); hex += 3) {
        unsigned v;
        ASSERT(sscanf(hex, "%2x", &v) == 1);
        out[n++] = (uint8_t)v;
        if (hex[2] != ':')
            break;
    }
    return n;
}

static void check_end_point(EVP_PKEY *key, const EVP_MD *sign_md,
                            const char *want_hash, size_t want_len)
{
    X509 *x = make_cert(key, sign_md);
    uint8_t got[64], want[64];
    molt_db_error err;
    molt_db_error_init(&err);
    int n = molt_db_tls_server_end_point(x, got, &err);
    ASSERT_EQ_INT(n, (int)want_len);
    size_t wn = openssl_fingerprint(x, want_hash, want);
    ASSERT_EQ_MEM(got, (size_t)n, want, wn);
    X509_free(x);
}

TEST(tls_server_end_point)
{
    EVP_PKEY *ec = EVP_EC_gen("P-256");
    ASSERT(ec != NULL);
    check_end_point(ec, EVP_sha256(), "sha256", 32);
    check_end_point(ec, EVP_sha384(), "sha384", 48);
    check_end_point(ec, EVP_sha512(), "sha512", 64);
    /* SHA-1 signatures hash with SHA-256 (RFC 5929 4.1) */
    check_end_point(ec, EVP_sha1(), "sha256", 32);
    EVP_PKEY_free(ec);

    /* Ed25519 names no digest: refused, not guessed */
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    ASSERT(ed != NULL);
    X509 *x = make_cert(ed, NULL);
    uint8_t out[64];
    molt_db_error err;
    molt_db_error_init(&err);
    ASSERT_CODE(molt_db_tls_server_end_point(x, out, &err), MOLT_DB_ETLS);
    ASSERT_CONTAINS(err.message, "hash algorithm");
    X509_free(x);
    EVP_PKEY_free(ed);
    ASSERT_CODE(molt_db_tls_server_end_point(NULL, out, &err), MOLT_DB_EINVAL);
}

TEST_MAIN(TEST_ENTRY(md5_password), TEST_ENTRY(scram_rfc7677_vector),
          TEST_ENTRY(scram_postgres_empty_user),
          TEST_ENTRY(scram_channel_binding), TEST_ENTRY(scram_random_nonce),
          TEST_ENTRY(scram_server_first_validation),
          TEST_ENTRY(scram_server_final_validation),
          TEST_ENTRY(scram_out_of_order), TEST_ENTRY(tls_server_end_point))
