/* The worker's version and the IPC contract version it implements. */
#ifndef MW_VERSION_H
#define MW_VERSION_H
#define MW_VERSION "0.1.0"
#define MW_CONTRACT_VERSION 1
#endif
