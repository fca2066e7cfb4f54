/*
 * The host (include/molt_db/host.h) inside: a worker (worker.h) on a loop
 * of the host's own, one sink session (session.h) per stream.
 *
 * Threads: the worker, its sessions and requests belong to the loop
 * thread (the host's thread, or the caller's in driven mode). A caller's
 * thread never touches them: it queues commands on a stream (submit,
 * frames taken, release) or on the host (cancel tokens, free) under
 * h->lock and wakes the loop (mw_host_wake: once until the loop took
 * them); the loop takes them one by one and runs them without the lock. The loop hands frames and ends to the
 * streams under h->lock. No lock is held across I/O or across a call into
 * the worker.
 *
 * A stream is freed once the caller released it, its session is gone
 * (or never was) and no command of it waits.
 */
#ifndef MW_HOST_CORE_H
#define MW_HOST_CORE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "config.h"
#include "molt_db/host.h"
#include "session.h"
#include "worker.h"

/* commands of a stream, for the loop thread */
enum {
    HOST_CMD_SUBMIT = 1,    /* start its request */
    HOST_CMD_TAKEN = 2,     /* the caller took frames worth taken_cost */
    HOST_CMD_RELEASE = 4    /* the caller released it */
};

/* the caller took this much unreported: tell the session (backpressure) */
#define HOST_REPORT_BYTES ((size_t)64 << 10)

typedef struct host_frame {
    struct host_frame *next;
    uint8_t *data;          /* owned; the frame starts at data + off */
    size_t off, len;
    size_t cost;            /* as counted in the session's write_bytes */
} host_frame;

struct molt_db_host_stream {
    molt_db_host *h;
    uint64_t token;
    void *udata;
    mw_sink sink;            /* ud: this stream */
    /* loop thread only */
    mw_session *s;           /* NULL before the submit ran and once freed */
    /* set by submit, then read by the loop thread only */
    uint8_t *req;
    size_t req_len;
    /* under h->lock */
    host_frame *head, *tail; /* not yet taken */
    host_frame *taken;       /* the caller's current frame */
    size_t taken_cost;       /* taken, not yet told to the session */
    unsigned cmds;           /* HOST_CMD_* waiting */
    molt_db_host_stream *cmd_next;
    int ended;               /* no frame follows */
    int gone;                /* its session is freed (or never existed) */
    int released;
    int news;                /* in the ready list */
    molt_db_host_stream *news_prev, *news_next;
    molt_db_host_stream *all_prev, *all_next;
};

struct molt_db_host {
    int mode;
    mw_config cfg;
    mw_worker w;
    uv_loop_t loop;
    /* the loop has commands to take: threaded mode, an eventfd the callers
     * write (not a uv_async_t, whose sender, preempted by the loop thread
     * it woke on the same CPU, leaves that thread spinning); driven mode,
     * an idle handle started on the caller's thread */
    int wake_fd;
    uv_poll_t wake_poll;
    uv_idle_t wake_idle;
    pthread_t thread;
    int thread_started;
    int notify_fd;           /* threaded mode: an eventfd */
    pthread_mutex_t lock;
    /* under lock */
    molt_db_host_stream *cmd_head, *cmd_tail;
    uint64_t *cancels;       /* tokens to cancel */
    size_t ncancels, cancels_cap;
    molt_db_host_stream *news_head, *news_tail;
    molt_db_host_stream *all;
    int wake_due;            /* woken, the commands not yet taken */
    int notified;            /* notify_fd was written and not cleared */
    int closing;             /* molt_db_host_free began */
    uint64_t queued_request_bytes; /* submitted, not yet handled */
    /* loop thread only */
    int stopping;
    uv_check_t flush;        /* threaded mode: writes notify_fd once per turn */
    int notify_due;          /* news since the last write */
};

/* host_stream.c: the sink of a stream's session, and its commands */
void mw_host_stream_init_sink(molt_db_host_stream *st);
/* Runs the commands cmds of st on the loop thread (taken: the cost). */
void mw_host_stream_run(molt_db_host_stream *st, unsigned cmds, size_t taken);
/* Frees a stream and its frames (h->lock not held; st unlinked). */
void mw_host_stream_free(molt_db_host_stream *st);
/* Under h->lock: queues commands of st and says whether to wake the loop. */
int mw_host_queue_locked(molt_db_host_stream *st, unsigned cmds);
/* Under h->lock: says whether the loop must be woken for what was just
 * queued (it was not woken since it last took the commands). */
int mw_host_wake_locked(molt_db_host *h);
/* Wakes the loop thread (after mw_host_wake_locked said so, unlocked). */
void mw_host_wake(molt_db_host *h);
/* Threaded mode: makes notify_fd readable. */
void mw_host_notify(molt_db_host *h);

#endif
