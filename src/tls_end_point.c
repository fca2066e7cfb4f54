/*
 * tls-server-end-point channel binding data (RFC 5929 section 4.1): the
 * hash of the server certificate's DER encoding, using the digest of the
 * certificate's signature algorithm, except that MD5 and SHA-1 are replaced
 * by SHA-256.
 */
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "auth.h"

int molt_db_tls_server_end_point(const void *x509_cert, uint8_t out[64],
                                 molt_db_error *err)
{
    X509 *cert = (X509 *)x509_cert;
    if (cert == NULL)
        return molt_db_error_set(err, MOLT_DB_EINVAL,
                                 "tls-server-end-point: no certificate");
    int md_nid = NID_undef;
    /* Unlike OBJ_find_sigid_algs, this also resolves RSA-PSS parameters. */
    if (X509_get_signature_info(cert, &md_nid, NULL, NULL, NULL) != 1 ||
        md_nid == NID_undef)
        return molt_db_error_set(err, MOLT_DB_ETLS,
                                 "tls-server-end-point: could not determine "
                                 "the server certificate's hash algorithm");
    if (md_nid == NID_md5 || md_nid == NID_sha1)
        md_nid = NID_sha256;
    const EVP_MD *md = EVP_get_digestbynid(md_nid);
    unsigned int len = 0;
    if (md == NULL || EVP_MD_get_size(md) <= 0 || EVP_MD_get_size(md) > 64)
        return molt_db_error_set(err, MOLT_DB_ETLS,
                                 "tls-server-end-point: unsupported hash "
                                 "algorithm %s",
                                 OBJ_nid2sn(md_nid));
    if (X509_digest(cert, md, out, &len) != 1 || len == 0 || len > 64)
        return molt_db_error_set(err, MOLT_DB_ETLS,
                                 "tls-server-end-point: could not hash the "
                                 "server certificate");
    return (int)len;
}
