/*
 * MOLT_DB_API marks a function of the public API. The library is compiled
 * with hidden symbol visibility, so libmolt_db.so exports only what is marked
 * here; the internal molt_db__ functions stay private to it. Linking
 * libmolt_db.a is unaffected: visibility only decides what a shared object
 * exports.
 */
#ifndef MOLT_DB_EXPORT_H
#define MOLT_DB_EXPORT_H

#if defined(__GNUC__) || defined(__clang__)
#define MOLT_DB_API __attribute__((visibility("default")))
#else
#define MOLT_DB_API
#endif

#endif
