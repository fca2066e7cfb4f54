/*
 * Internals shared by the connection's files: conn.c (life cycle, connect,
 * startup, authentication, socket I/O), conn_tls.c (OpenSSL glue) and
 * conn_request.c (the request pipeline and result dispatch).
 */
#ifndef MOLT_DB_CONN_INTERNAL_H
#define MOLT_DB_CONN_INTERNAL_H

#include <netdb.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "auth.h"
#include "loop.h"
#include "molt_db/conn.h"

typedef struct ssl_st SSL;
typedef struct ssl_ctx_st SSL_CTX;

typedef enum molt_db_conn_state {
    MOLT_DB_CONN_RESOLVING,     /* waiting for getaddrinfo */
    MOLT_DB_CONN_CONNECTING,    /* TCP/Unix connect in progress */
    MOLT_DB_CONN_SSL_ANSWER,    /* SSLRequest sent, waiting for 'S'/'N' */
    MOLT_DB_CONN_TLS_HANDSHAKE,
    MOLT_DB_CONN_STARTUP,       /* startup sent: authentication and params */
    MOLT_DB_CONN_READY,
    MOLT_DB_CONN_BROKEN,        /* I/O or protocol failure; only close works */
    MOLT_DB_CONN_CLOSING,
    MOLT_DB_CONN_CANCEL_SENT       /* cancel connection: waiting for EOF */
} molt_db_conn_state;

typedef enum molt_db_req_kind {
    MOLT_DB_REQ_PREPARE,
    MOLT_DB_REQ_EXECUTE,
    MOLT_DB_REQ_QUERY,          /* phase 1 prepare, phase 2 execute + close */
    MOLT_DB_REQ_SIMPLE,
    MOLT_DB_REQ_CLOSE_STMT,
    MOLT_DB_REQ_COPY_OUT,
    MOLT_DB_REQ_COPY_IN,
    MOLT_DB_REQ_BATCH_GUARD,    /* first of a batch: makes it read only */
    MOLT_DB_REQ_BATCH_SYNC      /* the Sync that ends a batch */
} molt_db_req_kind;

typedef struct molt_db_req {
    struct molt_db_req *next;
    molt_db_req_kind kind;
    int phase;                     /* MOLT_DB_REQ_QUERY: 1 then 2 */
    molt_db_result_handler h;
    molt_db_copy_out_handler copy_out;
    molt_db_copy_in_handler copy_in;
    uint64_t copy_rows;
    molt_db_prepare_cb prepare_cb;
    void *prepare_ud;
    const molt_db_stmt *stmt;      /* execute: the caller's statement */
    molt_db_stmt *own_stmt;        /* prepare/query: being described */
    molt_db_buf msgs;              /* encoded messages not yet handed to the
                                      connection's send buffer */
    /* query: the parameters, kept for phase 2 */
    size_t nparams;
    molt_db_param *params;         /* data points into param_data */
    uint8_t *param_data;
    int status;                    /* first failure seen, MOLT_DB_OK so far */
    molt_db_error err;
    int in_fly;                    /* sent (on the in-flight list) */
    int copy_ended;                /* COPY IN: CopyDone/CopyFail sent */
    int batched;                   /* shares its batch's Sync (no own) */
    int wrote;                     /* batched: its tag says it changed rows */
    /* a framed request (molt_db_frame): the frame's `after`, kept for a
     * query's second step and for the error path (after_buf when short),
     * and which part the server answers now; the handler sees only
     * MOLT_DB_PART_STMT */
    char *frame_after;
    char after_buf[24];
    int framed;
    int part;
    int frame_failed;              /* an ErrorResponse came before the Sync:
                                      the server skipped `after` */
    int after_alone;               /* so `after` went out as a Query of its
                                      own; its ReadyForQuery completes r */
} molt_db_req;

#define MOLT_DB_PART_BEFORE 0
#define MOLT_DB_PART_STMT 1
#define MOLT_DB_PART_AFTER 2

typedef struct molt_db_pstatus {
    char *name;
    char *value;
} molt_db_pstatus;

struct molt_db_conn {
    molt_db_conn_loop loop;
    molt_db_conninfo *ci;
    molt_db_conn_options opts;
    molt_db_conn_state state;
    int fd;

    /* connect attempt: host index, address list and cursor */
    size_t host_idx;
    struct addrinfo *addrs;
    struct addrinfo *addr_cur;
    int is_unix;
    struct addrinfo unix_ai;       /* the Unix socket "address list" */
    struct sockaddr_un unix_addr;
    int started;                   /* the first host attempt has begun */
    struct sockaddr_storage peer;  /* the address connected to, for cancels */
    socklen_t peer_len;
    int tls_tried;                 /* sslmode=allow: retry with TLS */
    int prefer_standby_pass2;      /* no standby found: any server will do */
    uint64_t deadline_ms;          /* of the current host attempt, 0 = none */
    molt_db_error connect_err;     /* accumulated failures of tried hosts */
    molt_db_connect_cb connect_cb;
    void *connect_ud;

    /* TLS */
    SSL_CTX *ssl_ctx;
    SSL *ssl;
    int tls_want_write;            /* SSL_read wants the socket writable */

    /* authentication */
    molt_db_scram scram;
    int sasl_used;
    int auth_ok;

    /* buffers: in holds received bytes from in_off; out holds unsent bytes */
    molt_db_buf in;
    size_t in_off;
    molt_db_buf out;
    size_t out_off;

    /* session */
    molt_db_pstatus *params;
    size_t nparams, params_cap;
    int32_t backend_pid;
    int32_t secret_key;
    char tx_status;

    /* requests: waiting (not yet sent) and in flight (sent, FIFO by Sync) */
    molt_db_req *wait_head, *wait_tail;
    molt_db_req *fly_head, *fly_tail;
    size_t npending;

    /* a cancel connection (molt_db_conn_cancel): sends CancelRequest, not
     * a startup, and succeeds when the server closes it */
    int cancel_mode;
    int32_t cancel_pid, cancel_key;

    /* COPY FROM STDIN in progress: the request the data belongs to */
    molt_db_req *copy_in_req;
    int copy_in_inflight;          /* COPY IN requests sent, not done */
    int describe_inflight;         /* a query's Parse/Describe/Flush is out:
                                      nothing may follow until its
                                      Bind/Execute/Sync (molt_db_conn_query) */
    int frame_inflight;            /* a framed request is out: nothing may
                                      follow until it completes (after an
                                      error its transaction is open until
                                      `after` runs alone) */
    int copy_want_drain;
    int eof;                       /* the last read saw the server close */

    /* read-only batches (molt_db_conn_execute_batched): the open batch's
     * members, encoded in batch_buf until the batch is closed (before any
     * write or other request); members answered, waiting for the Sync */
    molt_db_buf batch_buf;
    molt_db_req *batch_head, *batch_tail;
    size_t batch_n;
    molt_db_req *batch_guard, *batch_sync; /* allocated as members join */
    molt_db_req *done_head, *done_tail;
    int guard_parsed;              /* the guard statement exists */
    int batch_aborted;             /* a member of the batch being answered
                                      failed on the server */
    int batch_off;                 /* a guard failed: no more batches */

    uint64_t bytes_in, bytes_out;  /* socket bytes, for metrics */
    uint64_t readies;              /* ReadyForQuery messages read (round
                                      trips, for tests) */
    /* read flow control (molt_db_conn_pause_reading) */
    int read_paused;
    int in_held;                   /* c->in holds bytes not yet dispatched */
    int resume_due;                /* dispatch them from the loop */

    /* re-entrancy: callbacks may close the connection */
    molt_db_field *fields;         /* scratch for DataRow and RowDescription */
    size_t fields_cap;
    molt_db_column *cols;
    size_t cols_cap;
    int dispatching;
    int in_deferred;               /* inside molt_db__conn_on_deferred */
    int flush_again;               /* more was queued while in there */
    int close_requested;
    molt_db_close_cb close_cb;
    void *close_ud;
};

struct molt_db_conn *molt_db__conn_from_loop(molt_db_conn_loop *l);

/* conn.c */
void molt_db__conn_want_write(struct molt_db_conn *conn);
int molt_db__conn_flush(struct molt_db_conn *conn);
void molt_db__conn_fail(struct molt_db_conn *conn, int code,
                        const molt_db_error *err);

/* conn_hosts.c */
/* load_balance_hosts=random: a random order of the hosts, and of the
 * addresses one host resolved to (the list's links stay as they are). */
void molt_db__shuffle_hosts(molt_db_conninfo *ci);
void molt_db__shuffle_addrs(struct addrinfo *list);
/* 1 when the ready session is what target_session_attrs asks for; else 0
 * and *why says what it is not. */
int molt_db__session_matches_target(const struct molt_db_conn *conn,
                                    const char **why);
/* Every host was tried: starts prefer-standby's second pass (any server,
 * from the first host again) and returns 1, or returns 0 (give up). */
int molt_db__conn_next_pass(struct molt_db_conn *conn);

/* conn_tls.c */
int molt_db__tls_start(struct molt_db_conn *conn, molt_db_error *err);
/* Drives the handshake: MOLT_DB_OK done, MOLT_DB_NEED_MORE (watch set),
 * or an error. */
int molt_db__tls_handshake(struct molt_db_conn *conn, molt_db_error *err);
/* Like read/write: bytes moved, 0 on EOF (read), -1 with *again set when
 * the socket is not ready, or -1 with err filled on failure. */
long molt_db__tls_read(struct molt_db_conn *conn, void *buf, size_t n,
                       int *again, molt_db_error *err);
long molt_db__tls_write(struct molt_db_conn *conn, const void *buf, size_t n,
                        int *again, molt_db_error *err);
/* tls-server-end-point data of the peer's certificate; 0 bytes if none. */
int molt_db__tls_end_point(struct molt_db_conn *conn, uint8_t out[64],
                           molt_db_error *err);
void molt_db__tls_free(struct molt_db_conn *conn);
/* 1 when OpenSSL holds decrypted bytes not yet read. */
int molt_db__tls_pending(struct molt_db_conn *conn);

/* conn_request.c */
/* Hands waiting requests to the send buffer (once ready). */
void molt_db__conn_send_waiting(struct molt_db_conn *conn);
/* One backend message while READY. Returns MOLT_DB_OK or a fatal code
 * (protocol error: the connection must break), then with err filled when
 * a reader said why. err must be initialized; it is not cleared per message
 * (that would cost a 1 KiB memset per DataRow). */
int molt_db__conn_dispatch(struct molt_db_conn *conn, const molt_db_msg *msg,
                           molt_db_error *err);
/* Ends the open batch, if any: moves it to the send buffer with its guard
 * and one Sync. Cannot fail (the room was reserved when members joined). */
void molt_db__conn_close_batch(struct molt_db_conn *conn);
/* Completes every request with code (connection failure or close). */
void molt_db__conn_fail_requests(struct molt_db_conn *conn, int code,
                                 const molt_db_error *err);

/* The send buffer emptied while writable: tells a waiting COPY producer. */
void molt_db__conn_copy_drained(struct molt_db_conn *conn);

/* conn_notify.c */
/* A NotificationResponse: read and handed to opts.on_notification (or
 * dropped). MOLT_DB_OK, or EPROTO for a malformed message. */
int molt_db__conn_notification(struct molt_db_conn *conn, const molt_db_msg *msg,
                               molt_db_error *err);

/* Records a ParameterStatus. */
int molt_db__conn_set_param(struct molt_db_conn *conn, const char *name,
                            const char *value);

#endif
