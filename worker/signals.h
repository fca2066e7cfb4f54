/* Signals (signals.c): SIGTERM and SIGINT shut the worker down, SIGHUP
 * reloads what may change at run time from the same command line. */
#ifndef MW_SIGNALS_H
#define MW_SIGNALS_H

typedef struct mw_worker mw_worker;

/* Starts watching; argv (after the program name) is read again on each
 * SIGHUP and must outlive the worker. */
void mw_signals_start(mw_worker *w, int argc, char **argv);
/* Closes the handles (part of the shutdown; nothing when not started). */
void mw_signals_stop(mw_worker *w);

#endif
