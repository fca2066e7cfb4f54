/* systemd's readiness protocol (notify.c). */
#ifndef MW_NOTIFY_H
#define MW_NOTIFY_H

/* Sends state ("READY=1", ...) to systemd's NOTIFY_SOCKET, when set. */
void mw_notify(const char *state);

#endif
