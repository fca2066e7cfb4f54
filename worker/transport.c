/* The Unix socket listener: mode, stale socket files, accepting. */
#include "transport.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "session.h"
#include "worker.h"

static void on_connection(uv_stream_t *server, int status)
{
    mw_worker *w = server->data;
    /* out of file descriptors (EMFILE): libuv has already accepted and
     * closed the pending connections with its reserve descriptor */
    if (status < 0)
        return;
    if (w->nsessions >= (size_t)w->cfg->max_sessions) {
        mw_session_refuse(w, server);
        return;
    }
    if (mw_session_start_socket(w, server) < 0)
        mw_log("could not accept a connection");
}

/* 1 when something accepts connections on path, 0 when nobody does (a
 * stale file), -1 when path is not a socket. */
static int someone_listens(const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return 0;
    if (!S_ISSOCK(st.st_mode))
        return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0)
        return 1; /* cannot tell: do not remove it */
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    int r = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    int e = errno;
    close(fd);
    if (r == 0)
        return 1;
    return e == ECONNREFUSED ? 0 : 1;
}

int mw_transport_listen(mw_worker *w, char err[MW_ERR_SIZE])
{
    const char *path = w->cfg->socket_path;
    struct sockaddr_un sa;
    if (strlen(path) >= sizeof sa.sun_path) {
        snprintf(err, MW_ERR_SIZE, "socket path is too long (max %zu bytes)",
                 sizeof sa.sun_path - 1);
        return -1;
    }
    int who = someone_listens(path);
    if (who < 0) {
        snprintf(err, MW_ERR_SIZE, "%s exists and is not a socket", path);
        return -1;
    }
    if (who > 0) {
        snprintf(err, MW_ERR_SIZE, "%s: another process listens there", path);
        return -1;
    }
    unlink(path); /* stale (or absent) */
    uv_pipe_init(w->loop, &w->listener, 0);
    w->listener.data = w;
    /* created with the right mode from the start: no window at 0777 */
    mode_t old = umask((mode_t)(~w->cfg->socket_mode & 0777));
    int r = uv_pipe_bind(&w->listener, path);
    umask(old);
    if (r == 0)
        r = chmod(path, (mode_t)w->cfg->socket_mode) == 0 ? 0 : -errno;
    if (r == 0)
        r = uv_listen((uv_stream_t *)&w->listener, 128, on_connection);
    if (r < 0) {
        snprintf(err, MW_ERR_SIZE, "cannot listen on %s: %s", path, uv_strerror(r));
        uv_close((uv_handle_t *)&w->listener, NULL);
        return -1;
    }
    w->listening = 1;
    return 0;
}

void mw_transport_stop(mw_worker *w)
{
    if (!w->listening)
        return;
    w->listening = 0;
    uv_close((uv_handle_t *)&w->listener, NULL);
    unlink(w->cfg->socket_path);
}
