/*
 * Password authentication, sans-I/O (internal): the MD5 digest and the
 * client side of SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL uses it.
 * The connection feeds server messages in and sends what these produce.
 */
#ifndef MOLT_DB_AUTH_H
#define MOLT_DB_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "molt_db/buf.h"
#include "molt_db/error.h"

/* "md5" + hex(md5(hex(md5(password + user)) + salt)) + NUL: 36 bytes. */
#define MOLT_DB_MD5_PASSWORD_LEN 36
/* Returns MOLT_DB_OK, or MOLT_DB_EAUTH when MD5 is unavailable (FIPS). */
int molt_db_md5_password(const char *user, const char *password,
                         const uint8_t salt[4],
                         char out[MOLT_DB_MD5_PASSWORD_LEN]);

typedef enum molt_db_scram_state {
    MOLT_DB_SCRAM_INIT = 0,
    MOLT_DB_SCRAM_SENT_FIRST,
    MOLT_DB_SCRAM_SENT_FINAL,
    MOLT_DB_SCRAM_DONE,
    MOLT_DB_SCRAM_FAILED       /* a step failed; only clear is allowed */
} molt_db_scram_state;

typedef struct molt_db_scram {
    molt_db_scram_state state;
    /* owned. SASLprep: an ASCII password is used as is, as SASLprep (and
     * libpq) leave it; a non-ASCII password is used as its raw UTF-8 bytes:
     * no NFKC normalization nor mapping is applied, so a password stored from
     * non-normalized Unicode (one SASLprep would change) fails to match. */
    char *password;
    char client_nonce[32];     /* base64 of 18 random bytes, NUL-terminated */
    char *username;            /* owned; NULL: "n=" is empty, as PostgreSQL
                                  expects (it uses the startup user) */
    int gs2_y;                 /* send "y,,": we could bind, server cannot */
    char *client_first_bare;   /* owned */
    char *server_first;        /* owned */
    uint8_t salted_password[32];
    char *auth_message;        /* owned */
    /* channel binding: "n,," when none; "p=tls-server-end-point,," with the
     * certificate hash when used */
    int use_channel_binding;
    uint8_t cb_data[64];
    size_t cb_len;
} molt_db_scram;

/* Starts an exchange (s is overwritten, so clear a used one first). The
 * client nonce is 18 bytes from RAND_bytes, base64. cb_data/cb_len: the tls-server-end-point hash of the
 * server certificate when channel binding is used (mechanism
 * SCRAM-SHA-256-PLUS), else NULL/0. Returns MOLT_DB_OK, MOLT_DB_ENOMEM,
 * MOLT_DB_EINVAL (NULL password, cb_len > 64), MOLT_DB_EAUTH (no random). */
int molt_db_scram_init(molt_db_scram *s, const char *password,
                       const uint8_t *cb_data, size_t cb_len,
                       molt_db_error *err);

/* Call after init, before client_first, when TLS is in use and
 * channel_binding is not disabled but the server did not offer
 * SCRAM-SHA-256-PLUS: the gs2 header becomes "y,," (as libpq sends), which
 * lets a server that does support binding detect a downgrade. */
void molt_db_scram_set_cb_supported(molt_db_scram *s);

/* Appends the client-first-message to out (to send in SASLInitialResponse).
 * MOLT_DB_ESTATE when not right after init. */
int molt_db_scram_client_first(molt_db_scram *s, molt_db_buf *out,
                               molt_db_error *err);

/* Takes the server-first-message (AuthenticationSASLContinue data) and
 * appends the client-final-message to out. MOLT_DB_EAUTH on a malformed
 * message (attributes must be exactly r=,s=,i= in that order; m= and
 * trailing extensions are refused, as libpq does), a nonce that does not
 * extend ours, bad base64 or an empty salt, or an iteration count outside
 * 1..10,000,000. Counts below PostgreSQL's default of 4096 are accepted
 * because PostgreSQL 16 lets scram_iterations go down to 1; the cap bounds
 * the PBKDF2 work a hostile server can make us do (about 10 s at most).
 * MOLT_DB_ESTATE when called out of order. After an error the exchange is
 * FAILED. */
int molt_db_scram_client_final(molt_db_scram *s, const uint8_t *server_first,
                               size_t len, molt_db_buf *out,
                               molt_db_error *err);

/* Checks the server-final-message (AuthenticationSASLFinal data): the
 * server's signature must match. MOLT_DB_EAUTH otherwise (a server that
 * does not know the password must not pass), or with the server's text
 * when it sent "e=". MOLT_DB_ESTATE when called out of order. */
int molt_db_scram_verify_final(molt_db_scram *s, const uint8_t *server_final,
                               size_t len, molt_db_error *err);

/* Wipes secrets and frees everything owned. */
void molt_db_scram_clear(molt_db_scram *s);

/* For tests only: replace the random client nonce (printable ASCII without
 * ',', at most 31 bytes) and set the username sent in "n=" (NULL: empty), so
 * the RFC 7677 test vector can be checked. Call between init and
 * client_first. Returns MOLT_DB_OK, MOLT_DB_EINVAL, MOLT_DB_ENOMEM. */
int molt_db_scram__set_nonce(molt_db_scram *s, const char *nonce);
int molt_db_scram__set_username(molt_db_scram *s, const char *user);

/* tls-server-end-point channel binding data (RFC 5929) for a certificate
 * held by OpenSSL (X509 *): the hash of its DER form with the digest its
 * signature algorithm names (SHA-256 for MD5/SHA-1). Returns bytes written
 * to out (<= 64), or MOLT_DB_EINVAL (NULL cert) / MOLT_DB_ETLS (a signature
 * with no single digest, such as Ed25519: RFC 5929 leaves it undefined). */
int molt_db_tls_server_end_point(const void *x509_cert, uint8_t out[64],
                                 molt_db_error *err);

#endif
