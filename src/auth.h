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
int molt_db_md5_password(const char *user, const char *password,
                         const uint8_t salt[4],
                         char out[MOLT_DB_MD5_PASSWORD_LEN]);

typedef enum molt_db_scram_state {
    MOLT_DB_SCRAM_INIT = 0,
    MOLT_DB_SCRAM_SENT_FIRST,
    MOLT_DB_SCRAM_SENT_FINAL,
    MOLT_DB_SCRAM_DONE
} molt_db_scram_state;

typedef struct molt_db_scram {
    molt_db_scram_state state;
    char *password;            /* owned; SASLprep'd when ASCII-only */
    char client_nonce[32];     /* base64 of 18 random bytes, NUL-terminated */
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

/* Starts an exchange. cb_data/cb_len: the tls-server-end-point hash of the
 * server certificate when channel binding is used (mechanism
 * SCRAM-SHA-256-PLUS), else NULL/0. Returns MOLT_DB_OK, MOLT_DB_ENOMEM. */
int molt_db_scram_init(molt_db_scram *s, const char *password,
                       const uint8_t *cb_data, size_t cb_len,
                       molt_db_error *err);

/* Appends the client-first-message to out (to send in SASLInitialResponse). */
int molt_db_scram_client_first(molt_db_scram *s, molt_db_buf *out,
                               molt_db_error *err);

/* Takes the server-first-message (AuthenticationSASLContinue data) and
 * appends the client-final-message to out. MOLT_DB_EAUTH on a malformed
 * message, a nonce that does not extend ours, or an iteration count below
 * 4096 or above 10,000,000. */
int molt_db_scram_client_final(molt_db_scram *s, const uint8_t *server_first,
                               size_t len, molt_db_buf *out,
                               molt_db_error *err);

/* Checks the server-final-message (AuthenticationSASLFinal data): the
 * server's signature must match. MOLT_DB_EAUTH otherwise (a server that
 * does not know the password must not pass). */
int molt_db_scram_verify_final(molt_db_scram *s, const uint8_t *server_final,
                               size_t len, molt_db_error *err);

/* Wipes secrets and frees everything owned. */
void molt_db_scram_clear(molt_db_scram *s);

/* tls-server-end-point channel binding data for a DER certificate held by
 * OpenSSL (X509 *): the hash named by its signature algorithm (SHA-256 for
 * MD5/SHA-1). Returns bytes written to out (<= 64), or a negative code. */
int molt_db_tls_server_end_point(const void *x509_cert, uint8_t out[64],
                                 molt_db_error *err);

#endif
