/* target_session_attrs and load_balance_hosts against a real primary and two
 * streaming replicas (scripts/with_pg_replicas.sh): for the same host lists,
 * molt_db must pick the server psql (libpq) picks, or fail where it fails. */
#include "pgtest.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *const TARGETS[] = {"any",     "read-write", "read-only",
                                      "primary", "standby",    "prefer-standby"};
#define NTARGETS (sizeof TARGETS / sizeof TARGETS[0])

static int primary_port, replica1_port, replica2_port, dead_port;
static int dead_fd = -1;

/* A port on 127.0.0.1 that refuses connections: bound, never listening, and
 * held for the whole test so nobody else takes it. */
static int refusing_port(void)
{
    dead_fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT(dead_fd >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT(bind(dead_fd, (struct sockaddr *)&a, sizeof a) == 0);
    socklen_t len = sizeof a;
    ASSERT(getsockname(dead_fd, (struct sockaddr *)&a, &len) == 0);
    return ntohs(a.sin_port);
}

static void setup(void)
{
    if (primary_port != 0)
        return;
    primary_port = atoi(test_env_or_skip("MOLT_TEST_PGPORT"));
    replica1_port = atoi(test_env_or_skip("MOLT_TEST_REPLICA1_PORT"));
    replica2_port = atoi(test_env_or_skip("MOLT_TEST_REPLICA2_PORT"));
    dead_port = refusing_port();
}

/* host=127.0.0.1,... port=P1,... for n ports, plus extra. */
static void host_list_dsn(char *out, size_t n_out, const int *ports, size_t n,
                          const char *extra)
{
    char hosts[256] = "", plist[256] = "";
    for (size_t i = 0; i < n; i++) {
        size_t hl = strlen(hosts), pl = strlen(plist);
        snprintf(hosts + hl, sizeof hosts - hl, "%s127.0.0.1", i ? "," : "");
        snprintf(plist + pl, sizeof plist - pl, "%s%d", i ? "," : "", ports[i]);
    }
    snprintf(out, n_out,
             "host=%s port=%s user=molt dbname=molt_test connect_timeout=5 %s",
             hosts, plist, extra);
}

/* The port of the server psql connects to with dsn, or 0 when it fails. */
static int psql_choice(const char *dsn)
{
    const char *bin = getenv("MOLT_TEST_PGBIN");
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "'%s/psql' -X -A -t -c 'select inet_server_port()' '%s' 2>/dev/null",
             bin ? bin : "/usr/bin", dsn);
    FILE *f = popen(cmd, "r");
    ASSERT(f != NULL);
    char line[64] = "";
    if (fgets(line, sizeof line, f) == NULL)
        line[0] = '\0';
    int st = pclose(f);
    return st == 0 ? atoi(line) : 0;
}

/* The port of the server molt_db connects to with dsn, or 0. */
static int molt_choice(const char *dsn, molt_db_error *err)
{
    pgt_conn *p = NULL;
    molt_db_error_init(err);
    if (pgt_try_connect(dsn, &p, err) != MOLT_DB_OK)
        return 0;
    pgt_result *r = pgt_simple(p, "select inet_server_port()");
    ASSERT_OK(r->status, &r->err);
    int port = atoi(pgt_text(r, 0, 0));
    pgt_result_free(r);
    pgt_close(p);
    return port;
}

static void same_choice_as_psql(const int *ports, size_t n, const char *extra)
{
    for (size_t t = 0; t < NTARGETS; t++) {
        char opts[256], dsn[1024];
        snprintf(opts, sizeof opts, "target_session_attrs=%s %s", TARGETS[t], extra);
        host_list_dsn(dsn, sizeof dsn, ports, n, opts);
        molt_db_error err;
        int want = psql_choice(dsn);
        int got = molt_choice(dsn, &err);
        if (got != want)
            FAIL_AT("%s: psql picked port %d, molt_db %d (%s)", dsn, want, got,
                    err.message);
    }
}

TEST(every_target_on_every_order)
{
    setup();
    const int P = primary_port, R1 = replica1_port, R2 = replica2_port,
              D = dead_port;
    const int lists[][3] = {
        {P, R1, R2}, {R1, P, R2}, {R1, R2, P}, {D, R1, P}, {D, P, R1},
        {P, D, 0},   {D, P, 0},   {R1, D, 0},  {R1, R2, 0}, {P, 0, 0},
        {R1, 0, 0},  {D, 0, 0},
    };
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
        size_t n = 0;
        while (n < 3 && lists[i][n] != 0)
            n++;
        same_choice_as_psql(lists[i], n, "");
    }
}

/* A primary whose sessions default to read-only is read-only but not a
 * standby: read-write and read-only tell it from primary and standby. */
TEST(read_only_primary)
{
    setup();
    const int lists[][2] = {{primary_port, replica1_port}, {replica1_port, primary_port}};
    for (size_t i = 0; i < 2; i++)
        same_choice_as_psql(lists[i], 2,
                            "options=-cdefault_transaction_read_only=on");
}

/* prefer-standby's second pass: no standby answers, so the primary does. */
TEST(prefer_standby_falls_back_to_the_primary)
{
    setup();
    int ports[] = {dead_port, primary_port};
    char dsn[1024];
    host_list_dsn(dsn, sizeof dsn, ports, 2, "target_session_attrs=prefer-standby");
    molt_db_error err;
    ASSERT_EQ_INT(molt_choice(dsn, &err), primary_port);
    int standby_first[] = {primary_port, replica2_port};
    host_list_dsn(dsn, sizeof dsn, standby_first, 2,
                  "target_session_attrs=prefer-standby");
    ASSERT_EQ_INT(molt_choice(dsn, &err), replica2_port);
}

/* psql 15 has no load_balance_hosts: its documented behaviour instead. With
 * disable, the first host always; with random, every host in turn (the
 * chance that one of three is never picked in 60 connects is ~1e-10), and
 * target_session_attrs still applies to the shuffled order. */
TEST(load_balance_hosts_random)
{
    setup();
    int ports[] = {primary_port, replica1_port, replica2_port};
    char dsn[1024];
    molt_db_error err;
    host_list_dsn(dsn, sizeof dsn, ports, 3, "load_balance_hosts=disable");
    for (int i = 0; i < 10; i++)
        ASSERT_EQ_INT(molt_choice(dsn, &err), primary_port);

    host_list_dsn(dsn, sizeof dsn, ports, 3, "load_balance_hosts=random");
    int seen[3] = {0, 0, 0};
    for (int i = 0; i < 60; i++) {
        int got = molt_choice(dsn, &err);
        int k = got == primary_port ? 0 : got == replica1_port ? 1
              : got == replica2_port ? 2 : -1;
        if (k < 0)
            FAIL_AT("connect failed or odd port %d: %s", got, err.message);
        seen[k]++;
    }
    ASSERT(seen[0] > 0 && seen[1] > 0 && seen[2] > 0);

    host_list_dsn(dsn, sizeof dsn, ports, 3,
                  "load_balance_hosts=random target_session_attrs=standby");
    int replicas_seen[2] = {0, 0};
    for (int i = 0; i < 40; i++) {
        int got = molt_choice(dsn, &err);
        if (got != replica1_port && got != replica2_port)
            FAIL_AT("standby target picked port %d: %s", got, err.message);
        replicas_seen[got == replica2_port]++;
    }
    ASSERT(replicas_seen[0] > 0 && replicas_seen[1] > 0);

    host_list_dsn(dsn, sizeof dsn, ports, 3,
                  "load_balance_hosts=random target_session_attrs=primary");
    for (int i = 0; i < 20; i++)
        ASSERT_EQ_INT(molt_choice(dsn, &err), primary_port);
}

TEST_MAIN(TEST_ENTRY(every_target_on_every_order), TEST_ENTRY(read_only_primary),
          TEST_ENTRY(prefer_standby_falls_back_to_the_primary),
          TEST_ENTRY(load_balance_hosts_random))
