/*
 * The host (include/molt_db/host.h) inside: a worker (worker.h) on a loop
 * of the host's own. Each request is a stream; each stream runs in a host
 * session, which is one sink session (session.h) of the worker: a
 * caller's session (molt_db_host_session_open) holds any number of
 * streams, as a connection of molt_worker does, and a stream submitted
 * without one gets a session of its own, closed once its request is over.
 *
 * Threads: the worker, its sessions and requests belong to the loop
 * thread (the host's thread, or the caller's in driven mode). A caller's
 * thread never touches them: it queues commands on a stream (submit,
 * frames taken, release) or on the host (cancel tokens, session closes,
 * free) under h->lock and wakes the loop once it unlocked (mw_host_wake:
 * once until the loop took them, and only while the loop thread polls;
 * otherwise its next prepare phase takes them); the loop takes them and
 * runs them without the lock.
 * The loop hands frames and ends to the streams under h->lock. No lock is
 * held across I/O or across a call into the worker.
 *
 * A stream is freed once the caller released it, its request is over (or
 * never started) and no command of it waits. A host session is freed once
 * nothing refers to it: the caller (until its close ran), its streams,
 * its worker session.
 */
#ifndef MW_HOST_CORE_H
#define MW_HOST_CORE_H

#include <pthread.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>

#include <uv.h>

#include "config.h"
#include "molt_db/host.h"
#include "molt_db/loop.h"
#include "session.h"
#include "worker.h"

/* commands of a stream, for the loop thread */
enum {
    HOST_CMD_SUBMIT = 1,    /* start its request */
    HOST_CMD_TAKEN = 2,     /* the caller took frames worth taken_cost */
    HOST_CMD_RELEASE = 4    /* the caller released it */
};

/* the caller took (or dropped) this much of a session's frames unreported:
 * tell the session (backpressure). Below it, the session counts at most
 * this much too many (max_unread_bytes is 1 MiB or more). */
#define HOST_REPORT_BYTES ((size_t)64 << 10)

/* a request up to this size is copied into its stream's allocation (a
 * point query's envelope is about 130 bytes); a larger one gets its own,
 * freed once the request started */
#define HOST_INLINE_REQUEST ((size_t)512)

typedef struct host_frame {
    struct host_frame *next;
    uint8_t *data;          /* owned; the frame starts at data + off */
    size_t off, len;
    size_t cost;            /* as counted in the session's write_bytes */
} host_frame;

typedef struct host_session host_session;
struct host_session {
    molt_db_host *h;
    uint64_t id;             /* the caller's handle; 0: a stream's own */
    mw_sink sink;            /* ud: this */
    /* loop thread only */
    mw_session *s;           /* NULL before its first request and once freed */
    /* under h->lock */
    int refs;
    int closed;              /* the caller closed it: no submit finds it */
    int ended;               /* closed, or its worker session closed */
    size_t taken_cost;       /* frames taken or dropped, not yet told to s */
    host_session *next, *prev;   /* h->sessions: the callers' not freed */
    host_session *close_next;    /* h->closes: its close waits for the loop */
};

struct molt_db_host_stream {
    molt_db_host *h;
    host_session *hs;        /* holds a reference */
    uint64_t token;
    void *udata;
    /* set by submit, then read by the loop thread only */
    uint8_t *req;
    size_t req_len;
    /* under h->lock */
    host_frame *head, *tail; /* not yet taken */
    host_frame *taken;       /* the caller's current frame */
    size_t taken_cost;       /* taken, to tell the session (HOST_CMD_TAKEN) */
    unsigned cmds;           /* HOST_CMD_* waiting */
    int running;             /* the loop runs its commands: not to be freed */
    molt_db_host_stream *cmd_next;
    int ended;               /* no frame follows; its request holds nothing of it */
    int released;
    int news;                /* in the ready list */
    molt_db_host_stream *news_prev, *news_next;
    molt_db_host_stream *all_prev, *all_next;
    host_session own;        /* hs of a stream submitted without a session */
    /* a request of at most HOST_INLINE_REQUEST bytes: req points here, in
     * the stream's own allocation */
    uint8_t inline_req[];
};

struct molt_db_host {
    int mode;
    mw_config cfg;
    mw_worker w;
    uv_loop_t loop;
    /* the loop has commands to take: threaded mode, wake_fd, which the
     * callers' threads write; driven mode, wake_due, which
     * molt_db_host_poll takes them for before its turns, and wake_fd while
     * a molt_db_host_poll waits on another thread (loop_polls) */
    int wake_fd;             /* an eventfd, open until the host is freed */
    uv_poll_t wake_poll;     /* ... watched until the loop stops taking commands */
    pthread_t thread;
    int thread_started;
    int notify_fd;           /* threaded mode: an eventfd */
    pthread_mutex_t lock;
    /* under lock */
    molt_db_host_stream *cmd_head, *cmd_tail;
    uint64_t *cancels;       /* tokens to cancel */
    size_t ncancels, cancels_cap;
    host_session *closes;    /* sessions to close */
    molt_db_host_stream *news_head, *news_tail;
    molt_db_host_stream *all;
    host_session *sessions;
    int nsessions;           /* the callers' open ones (max_sessions) */
    int wake_due;            /* commands queued, not yet taken */
    int loop_polls;          /* the loop polls (or is about to) and takes
                              * commands only when woken; driven mode: a
                              * molt_db_host_poll waits */
    atomic_int notified;     /* notify_fd was written (or is about to be)
                              * and not cleared; read without the lock by
                              * molt_db_host_poll, to skip a read of a
                              * clear fd */
    int arming;              /* threaded mode: callers arm (molt_db_host_arm) */
    int armed;               /* ... and one waits: news writes notify_fd */
    int closing;             /* molt_db_host_free began */
    /* wakes decided under lock and not yet written (mw_host_wake, after
     * unlocking): the host is not freed before they are */
    atomic_int wakes_out;
    uint64_t queued_request_bytes; /* submitted, not yet handled */
    /* loop thread only */
    int stopping;
    uv_check_t flush;        /* threaded mode: writes notify_fd once per turn */
    uv_prepare_t flush_before; /* ... and before the poll, for news made before it */
    uv_idle_t more;          /* threaded mode: commands left for the next turn */
    uv_timer_t wait_timer;   /* driven mode: bounds molt_db_host_poll's wait */
    uv_prepare_t wait_prepare; /* driven mode: no wait when news is ready */
    uv_check_t wait_check;   /* driven mode: the wait is one turn */
    uv_poll_t wait_kick;     /* driven mode: wake_fd, which ends the wait
                              * (data NULL: never initialized) */
    int notify_due;          /* news since the last write */
};

/* host_stream.c: streams, their frames and commands */
/* Under h->lock, on the loop thread: takes the commands of st (unlinked
 * from h's queue), marks it running and returns them, with the cost of
 * the frames taken in *taken. A submit leaves the bytes waiting; a stream
 * released before its submit was taken ends there, never started. */
unsigned mw_host_stream_take_locked(molt_db_host_stream *st, size_t *taken);
/* Runs the commands cmds of st on the loop thread, as
 * mw_host_stream_take_locked returned them (taken: the cost). */
void mw_host_stream_run(molt_db_host_stream *st, unsigned cmds, size_t taken);
/* Frees a stream and its frames and drops its reference on its session
 * (h->lock not held; st unlinked). A stream's own session (st->own) and
 * so the stream's memory are freed with that session's last reference. */
void mw_host_stream_free(molt_db_host_stream *st);
/* Under h->lock: queues commands of st and says whether to wake the loop. */
int mw_host_queue_locked(molt_db_host_stream *st, unsigned cmds);
/* Starts a stream for req in the caller's session session_id, or in one
 * of its own (0): molt_db_host_submit and molt_db_host_submit_in. */
int mw_host_stream_submit(molt_db_host *h, uint64_t session_id, const uint8_t *req,
                          size_t len, uint64_t token, void *udata,
                          molt_db_host_stream **out);
/* The sink's frame for st (moved from pieces): 1 kept, 0 dropped (st was
 * released), -1 out of memory. */
int mw_host_stream_put(molt_db_host_stream *st, molt_db_buf *pieces, size_t n,
                       size_t cost);
/* The sink: no frame follows for st. */
void mw_host_stream_done(molt_db_host_stream *st);

/* host_session.c: host sessions, and the sink their frames go through */
/* Sets up hs, zeroed, for id (refs 1: the caller's, or for id 0 its one
 * stream's), linked in h->sessions when id is not 0. Under h->lock. */
void mw_host_session_init_locked(host_session *hs, molt_db_host *h, uint64_t id);
/* A new session for a caller's id, as above; NULL when memory ran out. */
host_session *mw_host_session_new_locked(molt_db_host *h, uint64_t id);
/* Under h->lock: the open session with this id, or NULL. */
host_session *mw_host_session_find_locked(molt_db_host *h, uint64_t id);
/* Drops a reference (h->lock not held); the last one frees hs (for a
 * stream's own, the stream's memory with it). */
void mw_host_session_unref(host_session *hs);
/* Loop thread: the worker session of hs, made at its first request; NULL
 * when it ended or memory ran out (msg then says why). */
mw_session *mw_host_session_get(host_session *hs, const char **msg);
/* Loop thread: closes hs for molt_db_host_session_close. */
void mw_host_session_close_now(host_session *hs);

/* host.c */
/* Under h->lock: says whether the loop must be woken for what was just
 * queued (it was not woken since it last took the commands, and it polls,
 * or free began). */
int mw_host_wake_locked(molt_db_host *h);
/* Wakes the loop thread (after mw_host_wake_locked said so, h->lock no
 * longer held). */
void mw_host_wake(molt_db_host *h);
/* Threaded mode: makes notify_fd readable. */
void mw_host_notify(molt_db_host *h);
/* Loop thread: the fd is written after this turn's I/O. */
void mw_host_notify_later(molt_db_host *h);

#endif
