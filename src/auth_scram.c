/*
 * SCRAM-SHA-256 client (RFC 5802, RFC 7677) as PostgreSQL speaks it:
 *
 *   client-first  gs2-header "n=" user ",r=" cnonce     (user empty: the
 *                 server takes the startup packet's user)
 *   server-first  "r=" cnonce+snonce ",s=" salt ",i=" iterations
 *   client-final  "c=" b64(gs2-header [+ cb-data]) ",r=" nonce ",p=" proof
 *   server-final  "v=" b64(ServerSignature)  or  "e=" error
 *
 * SaltedPassword = PBKDF2-HMAC-SHA-256(password, salt, i)
 * ClientKey = HMAC(SaltedPassword, "Client Key"); StoredKey = H(ClientKey)
 * AuthMessage = client-first-bare "," server-first "," client-final-no-proof
 * ClientProof = ClientKey XOR HMAC(StoredKey, AuthMessage)
 * ServerSignature = HMAC(HMAC(SaltedPassword, "Server Key"), AuthMessage)
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "auth.h"

#define KEY_LEN 32
#define NONCE_RAW_LEN 18
#define MAX_ITERATIONS 10000000L
#define GS2_CB "p=tls-server-end-point,,"

/* ---- base64 (RFC 4648, padded; strict on decode) ---- */

static const char B64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

#define B64_LEN(n) (((n) + 2) / 3 * 4)

/* Writes B64_LEN(n) chars and a NUL. */
static void b64_encode(const uint8_t *in, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = B64[(v >> 18) & 63];
        out[o++] = B64[(v >> 12) & 63];
        out[o++] = i + 1 < n ? B64[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? B64[v & 63] : '=';
    }
    out[o] = '\0';
}

static int b64_val(char c)
{
    const char *p = c != '\0' ? strchr(B64, c) : NULL;
    return p != NULL ? (int)(p - B64) : -1;
}

/* Decodes in[0..n) into out (room for n / 4 * 3 bytes). Returns the decoded
 * length, or -1 for a length not a multiple of 4, a bad character, padding
 * anywhere but the end, or nonzero unused bits. */
static long b64_decode(const char *in, size_t n, uint8_t *out)
{
    if (n % 4 != 0)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int last = i + 4 == n;
        int pad = 0;
        if (last && in[i + 3] == '=')
            pad = in[i + 2] == '=' ? 2 : 1;
        int v[4];
        for (int k = 0; k < 4 - pad; k++)
            if ((v[k] = b64_val(in[i + k])) < 0)
                return -1;
        for (int k = 4 - pad; k < 4; k++)
            v[k] = 0;
        /* Refuse non-canonical encodings: unused bits must be zero. */
        if ((pad == 1 && (v[2] & 3) != 0) || (pad == 2 && (v[1] & 15) != 0))
            return -1;
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 |
                     (uint32_t)v[2] << 6 | (uint32_t)v[3];
        out[o++] = (uint8_t)(w >> 16);
        if (pad < 2)
            out[o++] = (uint8_t)(w >> 8);
        if (pad < 1)
            out[o++] = (uint8_t)w;
    }
    return (long)o;
}

/* ---- primitives ---- */

static int hmac(const uint8_t *key, size_t klen, const void *data,
                size_t dlen, uint8_t out[KEY_LEN])
{
    size_t outlen = 0;
    return EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, klen, data, dlen,
                     out, KEY_LEN, &outlen) != NULL &&
           outlen == KEY_LEN;
}

static int sha256(const uint8_t *data, size_t n, uint8_t out[KEY_LEN])
{
    unsigned int len = 0;
    return EVP_Digest(data, n, out, &len, EVP_sha256(), NULL) == 1 &&
           len == KEY_LEN;
}

static int fail(molt_db_scram *s, molt_db_error *err, int code,
                const char *msg)
{
    s->state = MOLT_DB_SCRAM_FAILED;
    return molt_db_error_set(err, code, "SCRAM authentication: %s", msg);
}

static char *dup_mem(const void *p, size_t n)
{
    char *d = malloc(n + 1);
    if (d != NULL) {
        memcpy(d, p, n);
        d[n] = '\0';
    }
    return d;
}

/* RFC 5802: printable ASCII except ','. */
static int valid_nonce(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] < 0x21 || p[i] > 0x7e || p[i] == ',')
            return 0;
    return n > 0;
}

static const char *gs2_header(const molt_db_scram *s)
{
    return s->use_channel_binding ? GS2_CB : s->gs2_y ? "y,," : "n,,";
}

/* ---- the exchange ---- */

int molt_db_scram_init(molt_db_scram *s, const char *password,
                       const uint8_t *cb_data, size_t cb_len,
                       molt_db_error *err)
{
    memset(s, 0, sizeof *s);
    if (password == NULL || cb_len > sizeof s->cb_data ||
        (cb_len > 0 && cb_data == NULL)) {
        s->state = MOLT_DB_SCRAM_FAILED;
        return molt_db_error_set(err, MOLT_DB_EINVAL,
                                 "SCRAM: bad password or channel binding data");
    }
    /* libpq passes the raw password whenever SASLprep would not change it
     * (all ASCII) or fails; see auth.h for the non-ASCII limitation. */
    if ((s->password = strdup(password)) == NULL) {
        s->state = MOLT_DB_SCRAM_FAILED;
        return molt_db_error_set(err, MOLT_DB_ENOMEM, "out of memory");
    }
    if (cb_len > 0) {
        memcpy(s->cb_data, cb_data, cb_len);
        s->cb_len = cb_len;
        s->use_channel_binding = 1;
    }
    uint8_t raw[NONCE_RAW_LEN];
    if (RAND_bytes(raw, sizeof raw) != 1) {
        molt_db_scram_clear(s);
        s->state = MOLT_DB_SCRAM_FAILED;
        return molt_db_error_set(err, MOLT_DB_EAUTH,
                                 "SCRAM: could not generate a random nonce");
    }
    b64_encode(raw, sizeof raw, s->client_nonce);
    return MOLT_DB_OK;
}

void molt_db_scram_set_cb_supported(molt_db_scram *s)
{
    s->gs2_y = 1;
}

int molt_db_scram__set_nonce(molt_db_scram *s, const char *nonce)
{
    size_t n = strlen(nonce);
    if (s->state != MOLT_DB_SCRAM_INIT || n >= sizeof s->client_nonce ||
        !valid_nonce(nonce, n))
        return MOLT_DB_EINVAL;
    memcpy(s->client_nonce, nonce, n + 1);
    return MOLT_DB_OK;
}

int molt_db_scram__set_username(molt_db_scram *s, const char *user)
{
    if (s->state != MOLT_DB_SCRAM_INIT)
        return MOLT_DB_EINVAL;
    char *copy = NULL;
    if (user != NULL && (copy = strdup(user)) == NULL)
        return MOLT_DB_ENOMEM;
    free(s->username);
    s->username = copy;
    return MOLT_DB_OK;
}

int molt_db_scram_client_first(molt_db_scram *s, molt_db_buf *out,
                               molt_db_error *err)
{
    if (s->state != MOLT_DB_SCRAM_INIT || s->password == NULL)
        return molt_db_error_set(err, MOLT_DB_ESTATE,
                                 "SCRAM: client-first-message out of order");
    /* saslname: ',' and '=' escaped as =2C and =3D (RFC 5802 5.1). */
    const char *u = s->username != NULL ? s->username : "";
    size_t ulen = strlen(u), cn = strlen(s->client_nonce);
    if (ulen > (SIZE_MAX - 16 - cn) / 3)
        return fail(s, err, MOLT_DB_EINVAL, "user name too long");
    char *bare = malloc(2 + 3 * ulen + 3 + cn + 1);
    if (bare == NULL)
        return fail(s, err, MOLT_DB_ENOMEM, "out of memory");
    size_t n = 0;
    memcpy(bare, "n=", 2);
    n = 2;
    for (size_t i = 0; i < ulen; i++) {
        if (u[i] == ',' || u[i] == '=') {
            memcpy(bare + n, u[i] == ',' ? "=2C" : "=3D", 3);
            n += 3;
        } else {
            bare[n++] = u[i];
        }
    }
    memcpy(bare + n, ",r=", 3);
    n += 3;
    memcpy(bare + n, s->client_nonce, cn + 1);
    s->client_first_bare = bare;
    size_t before = out->len;
    const char *gs2 = gs2_header(s);
    molt_db_buf_put(out, gs2, strlen(gs2));
    molt_db_buf_put(out, bare, strlen(bare));
    if (molt_db_buf_ok(out) != MOLT_DB_OK) {
        if (out->len > before)
            out->len = before;
        return fail(s, err, MOLT_DB_ENOMEM, "out of memory");
    }
    s->state = MOLT_DB_SCRAM_SENT_FIRST;
    return MOLT_DB_OK;
}

/* Finds "<name>=" at *p and returns its value's length up to ',' or end;
 * advances *p past the value (and the ','). -1 when absent. */
static long attr(const char **p, const char *end, char name)
{
    const char *q = *p;
    if (end - q < 2 || q[0] != name || q[1] != '=')
        return -1;
    q += 2;
    const char *v = q;
    while (q < end && *q != ',')
        q++;
    long n = (long)(q - v);
    *p = q < end ? q + 1 : q;
    return n;
}

/* Computes the proof and writes the client-final-message. */
static int build_final(molt_db_scram *s, const char *snonce, size_t snlen,
                       const uint8_t *salt, size_t salt_len, int iterations,
                       molt_db_buf *out, molt_db_error *err)
{
    /* c= carries the gs2 header plus the channel binding data. */
    const char *gs2 = gs2_header(s);
    size_t gl = strlen(gs2);
    uint8_t cbind[sizeof GS2_CB + 64];
    memcpy(cbind, gs2, gl);
    if (s->use_channel_binding) {
        memcpy(cbind + gl, s->cb_data, s->cb_len);
        gl += s->cb_len;
    }
    char cbind64[B64_LEN(sizeof cbind) + 1];
    b64_encode(cbind, gl, cbind64);

    size_t bare_len = strlen(s->client_first_bare),
           sf_len = strlen(s->server_first);
    size_t without_len = 2 + strlen(cbind64) + 3 + snlen;
    if (sf_len > SIZE_MAX / 2 - bare_len - without_len)
        return fail(s, err, MOLT_DB_EAUTH, "server-first-message too long");
    size_t am_len = bare_len + 1 + sf_len + 1 + without_len;
    if ((s->auth_message = malloc(am_len + 1)) == NULL)
        return fail(s, err, MOLT_DB_ENOMEM, "out of memory");
    char *am = s->auth_message;
    size_t n = 0;
    memcpy(am + n, s->client_first_bare, bare_len);
    n += bare_len;
    am[n++] = ',';
    memcpy(am + n, s->server_first, sf_len);
    n += sf_len;
    am[n++] = ',';
    char *without = am + n; /* client-final-message-without-proof */
    memcpy(am + n, "c=", 2);
    n += 2;
    memcpy(am + n, cbind64, strlen(cbind64));
    n += strlen(cbind64);
    memcpy(am + n, ",r=", 3);
    n += 3;
    memcpy(am + n, snonce, snlen);
    n += snlen;
    am[n] = '\0';

    uint8_t client_key[KEY_LEN], stored_key[KEY_LEN], sig[KEY_LEN];
    int ok = PKCS5_PBKDF2_HMAC(s->password, (int)strlen(s->password), salt,
                               (int)salt_len, iterations, EVP_sha256(),
                               KEY_LEN, s->salted_password) == 1 &&
             hmac(s->salted_password, KEY_LEN, "Client Key", 10,
                  client_key) &&
             sha256(client_key, KEY_LEN, stored_key) &&
             hmac(stored_key, KEY_LEN, am, am_len, sig);
    char proof64[B64_LEN(KEY_LEN) + 1];
    if (ok) {
        for (int i = 0; i < KEY_LEN; i++)
            sig[i] ^= client_key[i];
        b64_encode(sig, KEY_LEN, proof64);
    }
    OPENSSL_cleanse(client_key, sizeof client_key);
    OPENSSL_cleanse(stored_key, sizeof stored_key);
    OPENSSL_cleanse(sig, sizeof sig);
    if (!ok)
        return fail(s, err, MOLT_DB_EAUTH, "key derivation failed");
    size_t before = out->len;
    molt_db_buf_put(out, without, (size_t)(am + n - without));
    molt_db_buf_put(out, ",p=", 3);
    molt_db_buf_put(out, proof64, strlen(proof64));
    if (molt_db_buf_ok(out) != MOLT_DB_OK) {
        if (out->len > before)
            out->len = before;
        return fail(s, err, MOLT_DB_ENOMEM, "out of memory");
    }
    s->state = MOLT_DB_SCRAM_SENT_FINAL;
    return MOLT_DB_OK;
}

int molt_db_scram_client_final(molt_db_scram *s, const uint8_t *server_first,
                               size_t len, molt_db_buf *out,
                               molt_db_error *err)
{
    if (s->state != MOLT_DB_SCRAM_SENT_FIRST)
        return molt_db_error_set(err, MOLT_DB_ESTATE,
                                 "SCRAM: server-first-message out of order");
    if (server_first == NULL || memchr(server_first, '\0', len) != NULL)
        return fail(s, err, MOLT_DB_EAUTH,
                    "malformed server-first-message (NUL byte)");
    if ((s->server_first = dup_mem(server_first, len)) == NULL)
        return fail(s, err, MOLT_DB_ENOMEM, "out of memory");
    const char *p = s->server_first, *end = p + len;
    if (len >= 2 && p[0] == 'm' && p[1] == '=')
        return fail(s, err, MOLT_DB_EAUTH,
                    "the server requires an unsupported extension (m=)");

    const char *nonce = p + 2;
    long nlen = attr(&p, end, 'r');
    if (nlen < 0)
        return fail(s, err, MOLT_DB_EAUTH,
                    "malformed server-first-message (no nonce r=)");
    size_t cn = strlen(s->client_nonce);
    if ((size_t)nlen <= cn || memcmp(nonce, s->client_nonce, cn) != 0 ||
        !valid_nonce(nonce, (size_t)nlen))
        return fail(s, err, MOLT_DB_EAUTH,
                    "the server nonce does not extend the client nonce");

    const char *salt64 = p + 2;
    long slen = attr(&p, end, 's');
    if (slen < 0)
        return fail(s, err, MOLT_DB_EAUTH,
                    "malformed server-first-message (no salt s=)");
    uint8_t *salt = malloc((size_t)slen / 4 * 3 + 1);
    if (salt == NULL)
        return fail(s, err, MOLT_DB_ENOMEM, "out of memory");
    long salt_len = b64_decode(salt64, (size_t)slen, salt);
    if (salt_len <= 0) {
        free(salt);
        return fail(s, err, MOLT_DB_EAUTH,
                    "malformed server-first-message (invalid base64 salt)");
    }

    const char *iter = p + 2;
    long ilen = attr(&p, end, 'i');
    /* The iteration count must end the message: no extensions after it. */
    if (ilen < 0 || iter + ilen != end) {
        free(salt);
        return fail(s, err, MOLT_DB_EAUTH,
                    ilen < 0 ? "malformed server-first-message (no "
                               "iteration count i=)"
                             : "malformed server-first-message (garbage "
                               "after the iteration count)");
    }
    long iterations = 0;
    int ok_digits = ilen > 0 && ilen <= 9;
    for (long i = 0; ok_digits && i < ilen; i++) {
        if (iter[i] < '0' || iter[i] > '9')
            ok_digits = 0;
        else
            iterations = iterations * 10 + (iter[i] - '0');
    }
    if (!ok_digits || iterations < 1 || iterations > MAX_ITERATIONS) {
        free(salt);
        return fail(s, err, MOLT_DB_EAUTH,
                    "iteration count out of range (allowed: 1 to 10000000)");
    }
    if (salt_len > INT_MAX || strlen(s->password) > INT_MAX) {
        free(salt);
        return fail(s, err, MOLT_DB_EAUTH, "salt or password too long");
    }
    int rc = build_final(s, nonce, (size_t)nlen, salt, (size_t)salt_len,
                         (int)iterations, out, err);
    free(salt);
    return rc;
}

int molt_db_scram_verify_final(molt_db_scram *s, const uint8_t *server_final,
                               size_t len, molt_db_error *err)
{
    if (s->state != MOLT_DB_SCRAM_SENT_FINAL)
        return molt_db_error_set(err, MOLT_DB_ESTATE,
                                 "SCRAM: server-final-message out of order");
    const char *p = (const char *)server_final;
    if (p == NULL)
        return fail(s, err, MOLT_DB_EAUTH, "no server-final-message");
    if (len >= 2 && p[0] == 'e' && p[1] == '=') {
        /* Quote the server's error, printable ASCII only. */
        char text[200];
        size_t n = 0;
        for (size_t i = 2; i < len && n + 1 < sizeof text; i++)
            text[n++] = p[i] >= 0x20 && p[i] < 0x7f ? p[i] : '?';
        text[n] = '\0';
        s->state = MOLT_DB_SCRAM_FAILED;
        return molt_db_error_set(err, MOLT_DB_EAUTH,
                                 "SCRAM authentication: the server reported "
                                 "an error: %s",
                                 text);
    }
    const char *end = p + len, *v = p + 2;
    long vlen = attr(&p, end, 'v');
    if (vlen < 0 || v + vlen != end || vlen != (long)B64_LEN(KEY_LEN))
        return fail(s, err, MOLT_DB_EAUTH,
                    "malformed server-final-message (no v=)");
    uint8_t got[KEY_LEN + 3], server_key[KEY_LEN], want[KEY_LEN];
    if (b64_decode(v, (size_t)vlen, got) != KEY_LEN)
        return fail(s, err, MOLT_DB_EAUTH,
                    "malformed server-final-message (invalid signature)");
    int ok = hmac(s->salted_password, KEY_LEN, "Server Key", 10,
                  server_key) &&
             hmac(server_key, KEY_LEN, s->auth_message,
                  strlen(s->auth_message), want);
    int match = ok && CRYPTO_memcmp(got, want, KEY_LEN) == 0;
    OPENSSL_cleanse(server_key, sizeof server_key);
    OPENSSL_cleanse(want, sizeof want);
    if (!ok)
        return fail(s, err, MOLT_DB_EAUTH, "key derivation failed");
    if (!match)
        return fail(s, err, MOLT_DB_EAUTH,
                    "server signature mismatch: the server does not know "
                    "the password");
    s->state = MOLT_DB_SCRAM_DONE;
    return MOLT_DB_OK;
}

void molt_db_scram_clear(molt_db_scram *s)
{
    if (s == NULL)
        return;
    if (s->password != NULL) {
        OPENSSL_cleanse(s->password, strlen(s->password));
        free(s->password);
    }
    free(s->username);
    free(s->client_first_bare);
    free(s->server_first);
    free(s->auth_message);
    OPENSSL_cleanse(s, sizeof *s);
}
