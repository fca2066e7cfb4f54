/* The Unix socket transport (transport.c): one session per accepted
 * connection, up to max_sessions. */
#ifndef MW_TRANSPORT_H
#define MW_TRANSPORT_H

#include "config.h"

typedef struct mw_worker mw_worker;

/* Listens on cfg->socket_path (mode cfg->socket_mode; a stale socket file
 * is replaced only when nobody listens on it). 0 or -1 with err. */
int mw_transport_listen(mw_worker *w, char err[MW_ERR_SIZE]);
/* Stops accepting and removes the socket file. */
void mw_transport_stop(mw_worker *w);

#endif
