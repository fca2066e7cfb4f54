/* The systemd notify protocol: a datagram ("READY=1", "RELOADING=1",
 * "STOPPING=1") to the Unix socket named by NOTIFY_SOCKET (a path, or an
 * abstract name starting with '@'). Without NOTIFY_SOCKET nothing is sent. */
#include "notify.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"

void mw_notify(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !*path)
        return;
    struct sockaddr_un sa;
    size_t n = strlen(path);
    if (n >= sizeof sa.sun_path || (path[0] != '/' && path[0] != '@')) {
        mw_log("NOTIFY_SOCKET is not a socket path; not notifying");
        return;
    }
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, n);
    if (path[0] == '@')
        sa.sun_path[0] = 0;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        mw_log("NOTIFY_SOCKET: cannot make a socket");
        return;
    }
    /* an abstract address is as long as its name, not the whole sun_path */
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
                                (path[0] == '@' ? 0 : 1));
    if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, len) < 0)
        mw_log("NOTIFY_SOCKET: could not send %s", state);
    close(fd);
}
