/*
 * TLS for a connection (OpenSSL), non-blocking on the connection's socket.
 * Verification follows libpq's sslmode rules: verify-ca and verify-full check
 * the chain against sslrootcert; require (and prefer/allow) check it too when
 * a root certificate file was given or ~/.postgresql/root.crt exists;
 * verify-full also checks the host name (or IP address) against the
 * certificate.
 */
#include "conn_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

static void openssl_reason(char *out, size_t n)
{
    unsigned long e = ERR_get_error();
    if (e == 0) {
        snprintf(out, n, "%s", errno ? strerror(errno) : "unknown TLS error");
    } else {
        ERR_error_string_n(e, out, n);
    }
    ERR_clear_error();
}

static int file_exists(const char *path)
{
    struct stat st;
    return path != NULL && stat(path, &st) == 0;
}

static int is_ip_literal(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host, buf) == 1 ||
           inet_pton(AF_INET6, host, buf) == 1;
}

static int key_password_cb(char *buf, int size, int rwflag, void *ud)
{
    (void)rwflag;
    const char *pw = ud;
    if (pw == NULL || size <= 0)
        return 0;
    size_t n = strlen(pw);
    if (n >= (size_t)size)
        n = (size_t)size - 1;
    memcpy(buf, pw, n);
    buf[n] = '\0';
    return (int)n;
}

static int tls_proto_version(const char *name, int dflt)
{
    if (name == NULL) return dflt;
    if (strcmp(name, "TLSv1") == 0) return TLS1_VERSION;
    if (strcmp(name, "TLSv1.1") == 0) return TLS1_1_VERSION;
    if (strcmp(name, "TLSv1.2") == 0) return TLS1_2_VERSION;
    if (strcmp(name, "TLSv1.3") == 0) return TLS1_3_VERSION;
    return dflt;
}

int molt_db__tls_start(molt_db_conn *c, molt_db_error *err)
{
    const molt_db_conninfo *ci = c->ci;
    const molt_db_conninfo_host *h = &ci->hosts[c->host_idx];
    char why[256];
    molt_db__tls_free(c);
    ERR_clear_error();
    c->ssl_ctx = SSL_CTX_new(TLS_client_method());
    if (c->ssl_ctx == NULL)
        return molt_db_error_set(err, MOLT_DB_ENOMEM, "could not create a TLS context");
    SSL_CTX_set_min_proto_version(
        c->ssl_ctx, tls_proto_version(ci->ssl_min_protocol_version, TLS1_2_VERSION));
    if (ci->ssl_max_protocol_version != NULL)
        SSL_CTX_set_max_proto_version(
            c->ssl_ctx, tls_proto_version(ci->ssl_max_protocol_version, 0));

    int verify_chain = ci->sslmode >= MOLT_DB_SSLMODE_VERIFY_CA;
    const char *root = ci->sslrootcert;
    if (root != NULL && strcmp(root, "system") == 0) {
        if (SSL_CTX_set_default_verify_paths(c->ssl_ctx) != 1) {
            openssl_reason(why, sizeof why);
            return molt_db_error_set(err, MOLT_DB_ETLS,
                                     "could not load the system root certificates: %s", why);
        }
        verify_chain = ci->sslmode >= MOLT_DB_SSLMODE_REQUIRE;
    } else if (root != NULL && file_exists(root)) {
        if (SSL_CTX_load_verify_locations(c->ssl_ctx, root, NULL) != 1) {
            openssl_reason(why, sizeof why);
            return molt_db_error_set(err, MOLT_DB_ETLS,
                                     "could not read root certificate file \"%s\": %s",
                                     root, why);
        }
        /* libpq: with a root certificate at hand, require verifies the chain */
        if (ci->sslmode >= MOLT_DB_SSLMODE_REQUIRE)
            verify_chain = 1;
    } else if (verify_chain) {
        return molt_db_error_set(err, MOLT_DB_ETLS,
                                 "root certificate file \"%s\" does not exist; "
                                 "either provide the file, use the system's trusted "
                                 "roots with sslrootcert=system, or change sslmode "
                                 "to disable server certificate verification",
                                 root ? root : "~/.postgresql/root.crt");
    }

    int may_send_cert = ci->sslcertmode == NULL ||
                        strcmp(ci->sslcertmode, "disable") != 0;
    if (ci->sslcert != NULL && may_send_cert) {
        if (SSL_CTX_use_certificate_chain_file(c->ssl_ctx, ci->sslcert) != 1) {
            openssl_reason(why, sizeof why);
            return molt_db_error_set(err, MOLT_DB_ETLS,
                                     "could not load client certificate \"%s\": %s",
                                     ci->sslcert, why);
        }
        const char *key = ci->sslkey ? ci->sslkey : ci->sslcert;
        SSL_CTX_set_default_passwd_cb(c->ssl_ctx, key_password_cb);
        SSL_CTX_set_default_passwd_cb_userdata(c->ssl_ctx, ci->sslpassword);
        if (SSL_CTX_use_PrivateKey_file(c->ssl_ctx, key, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(c->ssl_ctx) != 1) {
            openssl_reason(why, sizeof why);
            return molt_db_error_set(err, MOLT_DB_ETLS,
                                     "could not load private key \"%s\": %s", key, why);
        }
    }

    c->ssl = SSL_new(c->ssl_ctx);
    if (c->ssl == NULL)
        return molt_db_error_set(err, MOLT_DB_ENOMEM, "could not create a TLS session");
    SSL_set_mode(c->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE |
                         SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_set_verify(c->ssl, verify_chain ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    int ip = is_ip_literal(h->host);
    if (ci->sslmode == MOLT_DB_SSLMODE_VERIFY_FULL) {
        X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);
        int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, h->host)
                    : SSL_set1_host(c->ssl, h->host);
        if (ok != 1)
            return molt_db_error_set(err, MOLT_DB_ETLS,
                                     "could not set the host name to verify");
    }
    if (ci->sslsni && !ip)
        SSL_set_tlsext_host_name(c->ssl, h->host);
    if (SSL_set_fd(c->ssl, c->fd) != 1)
        return molt_db_error_set(err, MOLT_DB_ETLS, "could not attach TLS to the socket");
    SSL_set_connect_state(c->ssl);
    return MOLT_DB_OK;
}

int molt_db__tls_handshake(molt_db_conn *c, molt_db_error *err)
{
    ERR_clear_error();
    errno = 0;
    int r = SSL_connect(c->ssl);
    if (r == 1) {
        c->tls_want_write = 0;
        molt_db__conn_want_write(c);
        return MOLT_DB_OK;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        c->tls_want_write = e == SSL_ERROR_WANT_WRITE;
        molt_db__conn_want_write(c);
        return MOLT_DB_NEED_MORE;
    }
    long vr = SSL_get_verify_result(c->ssl);
    if (vr != X509_V_OK)
        return molt_db_error_set(err, MOLT_DB_ETLS,
                                 "TLS certificate verification failed: %s",
                                 X509_verify_cert_error_string(vr));
    char why[256];
    openssl_reason(why, sizeof why);
    return molt_db_error_set(err, MOLT_DB_ETLS, "TLS handshake failed: %s", why);
}

long molt_db__tls_read(molt_db_conn *c, void *buf, size_t n, int *again,
                       molt_db_error *err)
{
    *again = 0;
    if (n > INT32_MAX)
        n = INT32_MAX;
    ERR_clear_error();
    errno = 0;
    int r = SSL_read(c->ssl, buf, (int)n);
    if (r > 0)
        return r;
    int e = SSL_get_error(c->ssl, r);
    switch (e) {
    case SSL_ERROR_WANT_READ:
        *again = 1;
        return -1;
    case SSL_ERROR_WANT_WRITE:
        *again = 1;
        c->tls_want_write = 1;
        molt_db__conn_want_write(c);
        return -1;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_SYSCALL:
        if (errno == 0)
            return 0; /* EOF without close_notify */
        molt_db_error_set(err, MOLT_DB_EIO, "TLS read failed: %s", strerror(errno));
        return -1;
    default: {
        char why[256];
        openssl_reason(why, sizeof why);
        molt_db_error_set(err, MOLT_DB_EIO, "TLS read failed: %s", why);
        return -1;
    }
    }
}

long molt_db__tls_write(molt_db_conn *c, const void *buf, size_t n, int *again,
                        molt_db_error *err)
{
    *again = 0;
    if (n > INT32_MAX)
        n = INT32_MAX;
    ERR_clear_error();
    errno = 0;
    int r = SSL_write(c->ssl, buf, (int)n);
    if (r > 0)
        return r;
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
        *again = 1;
        return -1;
    }
    char why[256];
    if (e == SSL_ERROR_SYSCALL && errno != 0)
        snprintf(why, sizeof why, "%s", strerror(errno));
    else
        openssl_reason(why, sizeof why);
    molt_db_error_set(err, MOLT_DB_EIO, "TLS write failed: %s", why);
    return -1;
}

int molt_db__tls_end_point(molt_db_conn *c, uint8_t out[64], molt_db_error *err)
{
    if (c->ssl == NULL)
        return molt_db_error_set(err, MOLT_DB_ETLS, "not a TLS connection");
    X509 *cert = SSL_get1_peer_certificate(c->ssl);
    if (cert == NULL)
        return molt_db_error_set(err, MOLT_DB_ETLS, "the server sent no certificate");
    int n = molt_db_tls_server_end_point(cert, out, err);
    X509_free(cert);
    return n;
}

void molt_db__tls_free(molt_db_conn *c)
{
    if (c->ssl != NULL) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->ssl_ctx != NULL) {
        SSL_CTX_free(c->ssl_ctx);
        c->ssl_ctx = NULL;
    }
}

int molt_db__tls_pending(molt_db_conn *c)
{
    return c->ssl != NULL && SSL_pending(c->ssl) > 0;
}
