/* The built-in types this library knows: OIDs, names, element types and
 * which of them it decodes in binary. OIDs checked against pg_type and
 * pg_range of PostgreSQL 15. */
#include "molt_db/types.h"
#include "types_internal.h"

#include <stddef.h>

#define BASE(oid, name, arr) {oid, name, MOLT_DB_KIND_BASE, 0, arr}
#define ARRAY(oid, name, elem) {oid, name, MOLT_DB_KIND_ARRAY, elem, 0}
#define RANGE(oid, name, sub, arr) {oid, name, MOLT_DB_KIND_RANGE, sub, arr}
#define MULTI(oid, name, rng, arr) {oid, name, MOLT_DB_KIND_MULTIRANGE, rng, arr}

/* Sorted by oid for the binary search below. */
static const molt_db_type_info catalog[] = {
    BASE(16, "bool", 1000),
    BASE(17, "bytea", 1001),
    BASE(18, "char", 1002),
    BASE(19, "name", 1003),
    BASE(20, "int8", 1016),
    BASE(21, "int2", 1005),
    BASE(23, "int4", 1007),
    BASE(25, "text", 1009),
    BASE(26, "oid", 1028),
    BASE(114, "json", 199),
    BASE(142, "xml", 143),
    ARRAY(143, "_xml", 142),
    ARRAY(199, "_json", 114),
    BASE(700, "float4", 1021),
    BASE(701, "float8", 1022),
    ARRAY(1000, "_bool", 16),
    ARRAY(1001, "_bytea", 17),
    ARRAY(1002, "_char", 18),
    ARRAY(1003, "_name", 19),
    ARRAY(1005, "_int2", 21),
    ARRAY(1007, "_int4", 23),
    ARRAY(1009, "_text", 25),
    ARRAY(1014, "_bpchar", 1042),
    ARRAY(1015, "_varchar", 1043),
    ARRAY(1016, "_int8", 20),
    ARRAY(1021, "_float4", 700),
    ARRAY(1022, "_float8", 701),
    ARRAY(1028, "_oid", 26),
    BASE(1042, "bpchar", 1014),
    BASE(1043, "varchar", 1015),
    BASE(1082, "date", 1182),
    BASE(1083, "time", 1183),
    BASE(1114, "timestamp", 1115),
    ARRAY(1115, "_timestamp", 1114),
    ARRAY(1182, "_date", 1082),
    ARRAY(1183, "_time", 1083),
    BASE(1184, "timestamptz", 1185),
    ARRAY(1185, "_timestamptz", 1184),
    BASE(1186, "interval", 1187),
    ARRAY(1187, "_interval", 1186),
    ARRAY(1231, "_numeric", 1700),
    BASE(1266, "timetz", 1270),
    ARRAY(1270, "_timetz", 1266),
    BASE(1700, "numeric", 1231),
    BASE(2950, "uuid", 2951),
    ARRAY(2951, "_uuid", 2950),
    BASE(3802, "jsonb", 3807),
    ARRAY(3807, "_jsonb", 3802),
    RANGE(3904, "int4range", 23, 3905),
    ARRAY(3905, "_int4range", 3904),
    RANGE(3906, "numrange", 1700, 3907),
    ARRAY(3907, "_numrange", 3906),
    RANGE(3908, "tsrange", 1114, 3909),
    ARRAY(3909, "_tsrange", 3908),
    RANGE(3910, "tstzrange", 1184, 3911),
    ARRAY(3911, "_tstzrange", 3910),
    RANGE(3912, "daterange", 1082, 3913),
    ARRAY(3913, "_daterange", 3912),
    RANGE(3926, "int8range", 20, 3927),
    ARRAY(3927, "_int8range", 3926),
    MULTI(4451, "int4multirange", 3904, 6150),
    MULTI(4532, "nummultirange", 3906, 6151),
    MULTI(4533, "tsmultirange", 3908, 6152),
    MULTI(4534, "tstzmultirange", 3910, 6153),
    MULTI(4535, "datemultirange", 3912, 6155),
    MULTI(4536, "int8multirange", 3926, 6157),
    ARRAY(6150, "_int4multirange", 4451),
    ARRAY(6151, "_nummultirange", 4532),
    ARRAY(6152, "_tsmultirange", 4533),
    ARRAY(6153, "_tstzmultirange", 4534),
    ARRAY(6155, "_datemultirange", 4535),
    ARRAY(6157, "_int8multirange", 4536),
};

const molt_db_type_info *molt_db_type_lookup(uint32_t oid)
{
    size_t lo = 0, hi = sizeof catalog / sizeof catalog[0];
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (catalog[mid].oid == oid)
            return &catalog[mid];
        if (catalog[mid].oid < oid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const molt_db_type_info *molt_db__type_at(size_t i)
{
    return i < sizeof catalog / sizeof catalog[0] ? &catalog[i] : NULL;
}

const char *molt_db_type_name(uint32_t oid)
{
    const molt_db_type_info *t = molt_db_type_lookup(oid);
    return t ? t->name : NULL;
}

int molt_db_type_binary_supported(uint32_t oid)
{
    const molt_db_type_info *t = molt_db_type_lookup(oid);
    if (t == NULL)
        return 0;
    switch (t->kind) {
    case MOLT_DB_KIND_BASE:
        /* xml's binary form depends on the client encoding and may carry an
         * encoding declaration: leave it to the server's text output. */
        return oid != MOLT_DB_OID_XML;
    default:
        /* arrays, ranges and multiranges: as their element (catalog chains
         * end at a base type within three steps). */
        return molt_db_type_binary_supported(t->element);
    }
}
