/* A client connection: reading frames, writing responses, the table of
 * requests in flight, and cancelling them when the client goes away. */
#include "worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct write_req {
    uv_write_t req;
    mw_session *s;
    uint8_t *data;
    size_t len;
} write_req;

static void on_handle_closed(uv_handle_t *h)
{
    mw_session *s = h->data;
    if (--s->handles > 0)
        return;
    mw_worker *w = s->w;
    mw_framer_free(&s->fr);
    if (s->prev)
        s->prev->next = s->next;
    else
        w->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    int stdio = s->stdio;
    free(s);
    if (stdio)
        mw_worker_shutdown(w, 0);
    mw_worker_maybe_exit(w);
}

static void close_handles(mw_session *s)
{
    if (!uv_is_closing((uv_handle_t *)&s->in))
        uv_close((uv_handle_t *)&s->in, on_handle_closed);
    if (s->stdio && !uv_is_closing((uv_handle_t *)&s->out))
        uv_close((uv_handle_t *)&s->out, on_handle_closed);
}

static uv_stream_t *wstream(mw_session *s)
{
    return (uv_stream_t *)(s->stdio ? &s->out : &s->in);
}

static void on_write(uv_write_t *req, int status)
{
    write_req *wr = (write_req *)req;
    mw_session *s = wr->s;
    s->write_bytes -= wr->len;
    free(wr->data);
    free(wr);
    if (status < 0 && !s->dead) {
        mw_session_close(s);
        return;
    }
    if (s->write_bytes < MW_RESUME_BYTES) {
        /* backpressure: streamed requests waiting for the queue to drain */
        for (mw_request *r = s->reqs; r; r = r->next)
            if (r->paused && r->backend && r->backend->ops->resume) {
                r->paused = 0;
                r->backend->ops->resume(r->backend, r);
            }
    }
    if (s->w->shutting_down && s->write_bytes == 0)
        mw_worker_maybe_exit(s->w);
}

void mw_session_send(mw_session *s, molt_db_buf *frame)
{
    if (s->dead && uv_is_closing((uv_handle_t *)wstream(s))) {
        molt_db_buf_free(frame);
        return;
    }
    write_req *wr = malloc(sizeof *wr);
    if (!wr) {
        molt_db_buf_free(frame);
        mw_session_close(s);
        return;
    }
    wr->s = s;
    wr->data = frame->data;
    wr->len = frame->len;
    molt_db_buf_init(frame); /* moved */
    uv_buf_t b = uv_buf_init((char *)wr->data, (unsigned)wr->len);
    s->write_bytes += wr->len;
    s->w->c.frames_out++;
    s->w->c.bytes_out += wr->len;
    if (uv_write(&wr->req, wstream(s), &b, 1, on_write) < 0) {
        s->write_bytes -= wr->len;
        free(wr->data);
        free(wr);
        mw_session_close(s);
    }
}

void mw_session_reply_error(mw_session *s, uint64_t id, mw_status st,
                            const char *msg)
{
    molt_db_buf frame;
    molt_db_buf_init(&frame);
    mw_response r = {0};
    r.request_id = id;
    r.status = st;
    r.error = msg;
    if (mw_response_frame(&frame, &r) == MOLT_DB_OK)
        mw_session_send(s, &frame);
    molt_db_buf_free(&frame);
}

mw_request *mw_session_find(mw_session *s, uint64_t id)
{
    for (mw_request *r = s->reqs; r; r = r->next)
        if (r->id == id)
            return r;
    return NULL;
}

void mw_session_unlink(mw_session *s, mw_request *r)
{
    if (r->s != s)
        return;
    if (r->prev)
        r->prev->next = r->next;
    else
        s->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->next = r->prev = NULL;
    r->s = NULL;
    s->nreqs--;
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    mw_session *s = req->data;
    free(req);
    close_handles(s);
}

void mw_session_close(mw_session *s)
{
    if (s->dead)
        return;
    s->dead = 1;
    uv_read_stop((uv_stream_t *)&s->in);
    /* the client is gone: cancel its requests down to the database */
    while (s->reqs) {
        mw_request *r = s->reqs;
        mw_session_unlink(s, r);
        mw_request_stop(r, MW_CANCELLED, "client disconnected");
    }
    /* flush what is queued (a last InvalidInput), then close */
    uv_shutdown_t *req = malloc(sizeof *req);
    if (req) {
        req->data = s;
        if (uv_shutdown(req, wstream(s), on_shutdown) == 0)
            return;
        free(req);
    }
    close_handles(s);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    mw_session *s = h->data;
    *buf = uv_buf_init(s->rbuf, sizeof s->rbuf);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    mw_session *s = st->data;
    if (nread < 0) {
        mw_session_close(s);
        return;
    }
    if (nread == 0 || s->dead)
        return;
    int rc = mw_framer_feed(&s->fr, (const uint8_t *)s->rbuf, (size_t)nread);
    if (rc == -1) {
        mw_session_reply_error(s, 0, MW_INTERNAL_ERROR, "out of memory");
        mw_session_close(s);
        return;
    }
    for (;;) {
        const uint8_t *body;
        size_t len;
        int r = mw_framer_next(&s->fr, &body, &len);
        if (r == 0)
            break;
        if (r < 0) {
            char msg[128];
            if (len == 0)
                snprintf(msg, sizeof msg, "frame length 0 is not allowed");
            else
                snprintf(msg, sizeof msg,
                         "frame length %zu is above the limit of %lld bytes", len,
                         (long long)s->w->cfg->max_request_bytes);
            s->w->c.invalid_input++;
            mw_session_reply_error(s, 0, MW_INVALID_INPUT, msg);
            mw_session_close(s);
            return;
        }
        mw_request_handle(s, body, len);
        if (s->dead)
            return;
    }
}

static mw_session *session_new(mw_worker *w)
{
    mw_session *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->w = w;
    s->id = ++w->next_session_id;
    mw_framer_init(&s->fr, (uint64_t)w->cfg->max_request_bytes);
    s->next = w->sessions;
    if (w->sessions)
        w->sessions->prev = s;
    w->sessions = s;
    w->c.sessions_opened++;
    return s;
}

int mw_session_start_socket(mw_worker *w, uv_stream_t *server)
{
    mw_session *s = session_new(w);
    if (!s)
        return -1;
    uv_pipe_init(w->loop, &s->in, 0);
    s->in.data = s;
    s->handles = 1;
    if (uv_accept(server, (uv_stream_t *)&s->in) < 0 ||
        uv_read_start((uv_stream_t *)&s->in, on_alloc, on_read) < 0) {
        s->dead = 1;
        close_handles(s);
        return -1;
    }
    return 0;
}

int mw_session_start_stdio(mw_worker *w)
{
    if (uv_guess_handle(0) != UV_NAMED_PIPE || uv_guess_handle(1) != UV_NAMED_PIPE) {
        fprintf(stderr, "molt_worker: --stdio needs stdin and stdout to be pipes "
                        "or sockets (not a terminal or a file)\n");
        return -1;
    }
    mw_session *s = session_new(w);
    if (!s)
        return -1;
    s->stdio = 1;
    uv_pipe_init(w->loop, &s->in, 0);
    uv_pipe_init(w->loop, &s->out, 0);
    s->in.data = s->out.data = s;
    s->handles = 2;
    if (uv_pipe_open(&s->in, 0) < 0 || uv_pipe_open(&s->out, 1) < 0 ||
        uv_read_start((uv_stream_t *)&s->in, on_alloc, on_read) < 0) {
        fprintf(stderr, "molt_worker: cannot use stdin/stdout\n");
        s->dead = 1;
        close_handles(s);
        return -1;
    }
    return 0;
}
