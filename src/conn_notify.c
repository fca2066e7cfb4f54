/*
 * LISTEN/NOTIFY delivery: a NotificationResponse, which the server may send
 * at any time a connection reads, goes to the connection's on_notification
 * callback. Subscribing (LISTEN "channel") is SQL the caller sends; the
 * connection keeps no list of channels.
 */
#include "conn_internal.h"

int molt_db__conn_notification(molt_db_conn *c, const molt_db_msg *msg,
                               molt_db_error *err)
{
    int32_t pid;
    const char *channel, *payload;
    /* read even when nobody listens: a malformed message is a protocol error */
    int rc = molt_db_proto_read_notification(msg, &pid, &channel, &payload, err);
    if (rc != MOLT_DB_OK)
        return rc;
    if (c->opts.on_notification != NULL)
        c->opts.on_notification(c, pid, channel, payload, c->opts.notification_ud);
    return MOLT_DB_OK;
}
