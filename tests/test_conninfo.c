/* Connection strings (key=value and URI), environment variables, defaults,
 * validation, and the password file. */
#include "test.h"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "molt_db/conninfo.h"

extern char **environ;

static char tmpdir[256];

/* Every test starts with no PG* variable and HOME at an empty temp dir, so
 * neither the caller's environment nor their ~/.pgpass leaks in. */
static void clean_env(void)
{
    for (;;) {
        char name[256] = "";
        for (char **e = environ; *e != NULL; e++) {
            if (strncmp(*e, "PG", 2) == 0) {
                const char *eq = strchr(*e, '=');
                size_t n = eq ? (size_t)(eq - *e) : strlen(*e);
                if (n < sizeof name) {
                    memcpy(name, *e, n);
                    name[n] = '\0';
                    break;
                }
            }
        }
        if (name[0] == '\0')
            break;
        ASSERT(unsetenv(name) == 0);
    }
    if (tmpdir[0] == '\0') {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/molt_conninfo_XXXXXX");
        ASSERT(mkdtemp(tmpdir) != NULL);
    }
    ASSERT(setenv("HOME", tmpdir, 1) == 0);
}

static molt_db_conninfo *parse_ok(const char *s)
{
    molt_db_error err;
    molt_db_error_init(&err);
    molt_db_conninfo *ci = NULL;
    ASSERT_OK(molt_db_conninfo_parse(s, &ci, &err), &err);
    ASSERT(ci != NULL);
    ASSERT(ci->nhosts >= 1);
    return ci;
}

/* Parses s expecting code; returns the message in a static buffer. */
static const char *parse_fail(const char *s, int code)
{
    static molt_db_error err;
    molt_db_error_init(&err);
    molt_db_conninfo *ci = (molt_db_conninfo *)1;
    ASSERT_CODE(molt_db_conninfo_parse(s, &ci, &err), code);
    ASSERT(ci == NULL);
    ASSERT_EQ_INT(err.code, code);
    return err.message;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    ASSERT(f != NULL);
    ASSERT(fputs(text, f) >= 0);
    ASSERT(fclose(f) == 0);
    ASSERT(chmod(path, mode) == 0);
}

static const char *os_user(void)
{
    struct passwd *pw = getpwuid(geteuid());
    ASSERT(pw != NULL);
    return pw->pw_name;
}

TEST(keyvalue_basic)
{
    clean_env();
    molt_db_conninfo *ci = parse_ok(
        "host=db.example.com port=6543 dbname='my db' user=alice "
        "sslmode=require application_name = app  connect_timeout=10 "
        "options='-c search_path=s' client_encoding=LATIN1 "
        "target_session_attrs=read-write channel_binding=require");
    ASSERT_EQ_UINT(ci->nhosts, 1);
    ASSERT_EQ_STR(ci->hosts[0].host, "db.example.com");
    ASSERT(ci->hosts[0].hostaddr == NULL);
    ASSERT_EQ_UINT(ci->hosts[0].port, 6543);
    ASSERT_EQ_STR(ci->dbname, "my db");
    ASSERT_EQ_STR(ci->user, "alice");
    ASSERT_EQ_INT(ci->sslmode, MOLT_DB_SSLMODE_REQUIRE);
    ASSERT_EQ_STR(ci->application_name, "app");
    ASSERT_EQ_INT(ci->connect_timeout_ms, 10000);
    ASSERT_EQ_STR(ci->options, "-c search_path=s");
    ASSERT_EQ_STR(ci->client_encoding, "LATIN1");
    ASSERT_EQ_INT(ci->target_session_attrs, MOLT_DB_TARGET_READ_WRITE);
    ASSERT_EQ_INT(ci->channel_binding, MOLT_DB_CHANNEL_BINDING_REQUIRE);
    molt_db_conninfo_free(ci);
}

TEST(keyvalue_quotes_and_escapes)
{
    clean_env();
    molt_db_conninfo *ci = parse_ok(
        "user='o\\'brien' password='a\\\\b c' dbname=x\\ y host=''");
    ASSERT_EQ_STR(ci->user, "o'brien");
    ASSERT_EQ_STR(ci->hosts[0].password, "a\\b c");
    ASSERT_EQ_STR(ci->dbname, "x y");
    /* empty host: the default socket directory */
    ASSERT_EQ_STR(ci->hosts[0].host, "/var/run/postgresql");
    molt_db_conninfo_free(ci);

    /* a later duplicate wins, as in libpq */
    ci = parse_ok("dbname=a dbname=b");
    ASSERT_EQ_STR(ci->dbname, "b");
    molt_db_conninfo_free(ci);
}

TEST(keyvalue_errors)
{
    clean_env();
    const char *m = parse_fail("host=a dbname='abc", MOLT_DB_ECONFIG);
    ASSERT_CONTAINS(m, "unterminated quoted string");
    ASSERT_CONTAINS(m, "position 15");
    ASSERT_CONTAINS(m, "dbname");

    m = parse_fail("mydb", MOLT_DB_ECONFIG);
    ASSERT_CONTAINS(m, "neither a postgresql:// URI nor key=value");

    m = parse_fail("host=a junk", MOLT_DB_ECONFIG);
    ASSERT_CONTAINS(m, "missing \"=\"");
    ASSERT_CONTAINS(m, "position 8");

    m = parse_fail("host=a foo=bar", MOLT_DB_ECONFIG);
    ASSERT_EQ_STR(m, "unknown connection option \"foo\"");
    /* authtype and tty were removed from libpq in 14 */
    m = parse_fail("tty=x", MOLT_DB_ECONFIG);
    ASSERT_CONTAINS(m, "\"tty\"");
}

TEST(empty_string_and_whitespace)
{
    clean_env();
    molt_db_conninfo *ci = parse_ok("   ");
    ASSERT_EQ_UINT(ci->nhosts, 1);
    molt_db_conninfo_free(ci);
    molt_db_error err;
    molt_db_error_init(&err);
    ASSERT_OK(molt_db_conninfo_parse(NULL, &ci, &err), &err);
    molt_db_conninfo_free(ci);
}

TEST(defaults)
{
    clean_env();
    molt_db_conninfo *ci = parse_ok("");
    ASSERT_EQ_UINT(ci->nhosts, 1);
    ASSERT_EQ_STR(ci->hosts[0].host, "/var/run/postgresql");
    ASSERT_EQ_UINT(ci->hosts[0].port, 5432);
    ASSERT(ci->hosts[0].password == NULL);
    ASSERT_EQ_STR(ci->user, os_user());
    ASSERT_EQ_STR(ci->dbname, os_user());
    ASSERT_EQ_INT(ci->sslmode, MOLT_DB_SSLMODE_PREFER);
    ASSERT_EQ_INT(ci->channel_binding, MOLT_DB_CHANNEL_BINDING_PREFER);
    ASSERT_EQ_INT(ci->target_session_attrs, MOLT_DB_TARGET_ANY);
    ASSERT_EQ_INT(ci->sslsni, 1);
    ASSERT_EQ_INT(ci->keepalives, 1);
    ASSERT_EQ_INT(ci->connect_timeout_ms, 0);
    ASSERT_EQ_STR(ci->ssl_min_protocol_version, "TLSv1.2");
    ASSERT(ci->ssl_max_protocol_version == NULL);
    ASSERT_EQ_STR(ci->sslcertmode, "allow");
    ASSERT(ci->sslrootcert == NULL);
    ASSERT(ci->sslcert == NULL);
    ASSERT(ci->sslkey == NULL);
    ASSERT(ci->application_name == NULL);
    molt_db_conninfo_free(ci);

    /* empty user means the OS user; dbname follows the user */
    ci = parse_ok("user='' dbname=''");
    ASSERT_EQ_STR(ci->user, os_user());
    molt_db_conninfo_free(ci);
    ci = parse_ok("user=bob");
    ASSERT_EQ_STR(ci->dbname, "bob");
    molt_db_conninfo_free(ci);
}

TEST(default_cert_files)
{
    clean_env();
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/.postgresql", tmpdir);
    mkdir(dir, 0700);
    snprintf(path, sizeof path, "%s/root.crt", dir);
    write_file(path, "x", 0600);
    snprintf(path, sizeof path, "%s/postgresql.crt", dir);
    write_file(path, "x", 0600);
    molt_db_conninfo *ci = parse_ok("");
    char want[600];
    snprintf(want, sizeof want, "%s/root.crt", dir);
    ASSERT_EQ_STR(ci->sslrootcert, want);
    snprintf(want, sizeof want, "%s/postgresql.crt", dir);
    ASSERT_EQ_STR(ci->sslcert, want);
    ASSERT(ci->sslkey == NULL); /* not created */
    molt_db_conninfo_free(ci);

    ci = parse_ok("sslrootcert=system sslkey=/k");
    ASSERT_EQ_STR(ci->sslrootcert, "system");
    ASSERT_EQ_STR(ci->sslkey, "/k");
    molt_db_conninfo_free(ci);
    snprintf(path, sizeof path, "%s/root.crt", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/postgresql.crt", dir);
    unlink(path);
    rmdir(dir);
}

TEST(uri_full)
{
    clean_env();
    molt_db_conninfo *ci = parse_ok(
        "postgresql://al%69ce:s%40cr%3At@h1:5432,h2:5433/my%20db"
        "?sslmode=verify-full&application_name=x%26y&connect_timeout=1");
    ASSERT_EQ_STR(ci->user, "alice");
    ASSERT_EQ_UINT(ci->nhosts, 2);
    ASSERT_EQ_STR(ci->hosts[0].host, "h1");
    ASSERT_EQ_UINT(ci->hosts[0].port, 5432);
    ASSERT_EQ_STR(ci->hosts[1].host, "h2");
    ASSERT_EQ_UINT(ci->hosts[1].port, 5433);
    ASSERT_EQ_STR(ci->hosts[0].password, "s@cr:t");
    ASSERT_EQ_STR(ci->hosts[1].password, "s@cr:t");
    ASSERT_EQ_STR(ci->dbname, "my db");
    ASSERT_EQ_INT(ci->sslmode, MOLT_DB_SSLMODE_VERIFY_FULL);
    ASSERT_EQ_STR(ci->application_name, "x&y");
    ASSERT_EQ_INT(ci->connect_timeout_ms, 2000); /* 1 s is raised to 2 */
    molt_db_conninfo_free(ci);

    ci = parse_ok("postgres://bob@db.example.com");
    ASSERT_EQ_STR(ci->user, "bob");
    ASSERT_EQ_STR(ci->dbname, "bob");
    ASSERT_EQ_STR(ci->hosts[0].host, "db.example.com");
    ASSERT_EQ_UINT(ci->hosts[0].port, 5432);
    molt_db_conninfo_free(ci);

    ci = parse_ok("postgresql://");
    ASSERT_EQ_STR(ci->hosts[0].host, "/var/run/postgresql");
    molt_db_conninfo_free(ci);

    /* JDBC's ssl=true */
    ci = parse_ok("postgresql://h/d?ssl=true");
    ASSERT_EQ_INT(ci->sslmode, MOLT_DB_SSLMODE_REQUIRE);
    molt_db_conninfo_free(ci);
}

TEST(uri_ipv6_and_port_lists)
{
    clean_env();
    molt_db_conninfo *ci =
        parse_ok("postgresql://[::1]:6000,[fe80::1%25eth0],h3:7/db");
    ASSERT_EQ_UINT(ci->nhosts, 3);
    ASSERT_EQ_STR(ci->hosts[0].host, "::1");
    ASSERT_EQ_UINT(ci->hosts[0].port, 6000);
    ASSERT_EQ_STR(ci->hosts[1].host, "fe80::1%eth0");
    ASSERT_EQ_UINT(ci->hosts[1].port, 5432); /* empty entry: default */
    ASSERT_EQ_STR(ci->hosts[2].host, "h3");
    ASSERT_EQ_UINT(ci->hosts[2].port, 7);
    ASSERT_EQ_STR(ci->dbname, "db");
    molt_db_conninfo_free(ci);

    const char *m = parse_fail("postgresql://[::1/db", MOLT_DB_ECONFIG);
    ASSERT_CONTAINS(m, "missing \"]\"");
    m = parse_fail("postgresql://[]/db", MOLT_DB_ECONFIG);
    ASSERT_CONTAINS(m, "may not be empty");
    m = parse_fail("postgresql://[::1]x/db", MOLT_DB_ECONFIG);
    ASSERT_CONTAINS(m, "unexpected character \"x\"");
}

TEST(uri_socket_dirs_and_query_override)
{
    clean_env();
    molt_db_conninfo *ci =
        parse_ok("postgresql://%2Fvar%2Frun%2Fpg:5999/db");
    ASSERT_EQ_STR(ci->hosts[0].host, "/var/run/pg");
    ASSERT_EQ_UINT(ci->hosts[0].port, 5999);
    molt_db_conninfo_free(ci);

    ci = parse_ok("postgresql:///db?host=/tmp/sock&port=6001");
    ASSERT_EQ_STR(ci->hosts[0].host, "/tmp/sock");
    ASSERT_EQ_UINT(ci->hosts[0].port, 6001);
    ASSERT_EQ_STR(ci->dbname, "db");
    molt_db_conninfo_free(ci);

    /* the query parameter overrides the authority */
    ci = parse_ok("postgresql://u@h1:1/db?host=%2Ftmp&dbname=other&user=v");
    ASSERT_EQ_UINT(ci->nhosts, 1);
    ASSERT_EQ_STR(ci->hosts[0].host, "/tmp");
    ASSERT_EQ_UINT(ci->hosts[0].port, 1);
    ASSERT_EQ_STR(ci->dbname, "other");
    ASSERT_EQ_STR(ci->user, "v");
    molt_db_conninfo_free(ci);
}

TEST(uri_errors)
{
    clean_env();
    const char *m = parse_fail("postgresql://h/d%zz", MOLT_DB_ECONFIG);
    ASSERT_CONTAINS(m, "invalid percent-encoded token at position 17");
    m = parse_fail("postgresql://h/d%4", MOLT_DB_ECONFIG);
    ASSERT_CONTAINS(m, "invalid percent-encoded");
    m = parse_fail("postgresql://h/d%00", MOLT_DB_ECONFIG);
    ASSERT_CONTAINS(m, "%00");
    m = parse_fail("postgresql://h/d?bogus_key=1", MOLT_DB_ECONFIG);
    ASSERT_CONTAINS(m, "unknown connection option \"bogus_key\"");
    m = parse_fail("postgresql://h/d?sslmode", MOLT_DB_ECONFIG);
    ASSERT_CONTAINS(m, "missing key/value separator");
    m = parse_fail("postgresql://h/d?sslmode=a=b", MOLT_DB_ECONFIG);
    ASSERT_CONTAINS(m, "extra key/value separator");
    m = parse_fail("postgresql://h:99999/d", MOLT_DB_ECONFIG);
    ASSERT_CONTAINS(m, "invalid port number: \"99999\"");
    m = parse_fail("postgresql://h:5432,h2:1,h3:2,h4/d?port=1,2",
                   MOLT_DB_ECONFIG);
    ASSERT_CONTAINS(m, "could not match 2 port numbers to 4 hosts");
}

TEST(host_port_hostaddr_lists)
{
    clean_env();
    molt_db_conninfo *ci = parse_ok("host=a,b port=7");
    ASSERT_EQ_UINT(ci->nhosts, 2);
    ASSERT_EQ_UINT(ci->hosts[0].port, 7);
    ASSERT_EQ_UINT(ci->hosts[1].port, 7);
    molt_db_conninfo_free(ci);

    ci = parse_ok("host=a,,c port=1,,3");
    ASSERT_EQ_UINT(ci->nhosts, 3);
    ASSERT_EQ_STR(ci->hosts[1].host, "/var/run/postgresql");
    ASSERT_EQ_UINT(ci->hosts[1].port, 5432);
    ASSERT_EQ_UINT(ci->hosts[2].port, 3);
    molt_db_conninfo_free(ci);

    const char *m = parse_fail("host=a,b,c port=1,2", MOLT_DB_ECONFIG);
    ASSERT_CONTAINS(m, "could not match 2 port numbers to 3 hosts");

    ci = parse_ok("host=a,b hostaddr=10.0.0.1,::1");
    ASSERT_EQ_STR(ci->hosts[0].host, "a");
    ASSERT_EQ_STR(ci->hosts[0].hostaddr, "10.0.0.1");
    ASSERT_EQ_STR(ci->hosts[1].hostaddr, "::1");
    molt_db_conninfo_free(ci);

    ci = parse_ok("hostaddr=127.0.0.1,,10.1.2.3 host=,sock,");
    ASSERT_EQ_UINT(ci->nhosts, 3);
    ASSERT_EQ_STR(ci->hosts[0].host, "127.0.0.1"); /* hostaddr stands in */
    ASSERT(ci->hosts[1].hostaddr == NULL);
    ASSERT_EQ_STR(ci->hosts[1].host, "sock");
    molt_db_conninfo_free(ci);

    m = parse_fail("host=a,b hostaddr=10.0.0.1", MOLT_DB_ECONFIG);
    ASSERT_CONTAINS(m, "could not match 2 host names to 1 hostaddr values");
    m = parse_fail("hostaddr=db.example.com", MOLT_DB_ECONFIG);
    ASSERT_CONTAINS(m, "invalid hostaddr \"db.example.com\"");
}

TEST(value_validation)
{
    clean_env();
    static const struct {
        const char *str, *want;
    } bad[] = {
        {"port=0", "invalid port number: \"0\""},
        {"port=65536", "invalid port number"},
        {"port=12x", "invalid port number: \"12x\""},
        {"sslmode=sometimes", "invalid sslmode value: \"sometimes\""},
        {"connect_timeout=abc", "for connection option \"connect_timeout\""},
        {"connect_timeout=99999999999", "\"connect_timeout\""},
        {"connect_timeout=3000000", "connect_timeout 3000000 is out of range"},
        {"keepalives_idle=1.5", "\"keepalives_idle\""},
        {"channel_binding=maybe", "invalid channel_binding value"},
        {"target_session_attrs=any-old", "invalid target_session_attrs value"},
        {"sslsni=2", "invalid sslsni value"},
        {"sslcompression=yes", "invalid sslcompression value"},
        {"gssencmode=bogus", "invalid gssencmode value"},
        {"ssl_min_protocol_version=SSLv3",
         "invalid ssl_min_protocol_version value"},
        {"ssl_max_protocol_version=TLSv2", "ssl_max_protocol_version"},
        {"ssl_min_protocol_version=TLSv1.3 ssl_max_protocol_version=TLSv1.2",
         "invalid SSL protocol version range"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ASSERT_CONTAINS(parse_fail(bad[i].str, MOLT_DB_ECONFIG), bad[i].want);

    molt_db_conninfo *ci = parse_ok("connect_timeout=' 0 '");
    ASSERT_EQ_INT(ci->connect_timeout_ms, 0);
    molt_db_conninfo_free(ci);
    ci = parse_ok("connect_timeout=-5 keepalives=0 keepalives_idle=30 "
                  "keepalives_interval=-1 keepalives_count=4 sslsni=0");
    ASSERT_EQ_INT(ci->connect_timeout_ms, 0);
    ASSERT_EQ_INT(ci->keepalives, 0);
    ASSERT_EQ_INT(ci->keepalives_idle_s, 30);
    ASSERT_EQ_INT(ci->keepalives_interval_s, 0);
    ASSERT_EQ_INT(ci->keepalives_count, 4);
    ASSERT_EQ_INT(ci->sslsni, 0);
    molt_db_conninfo_free(ci);
    ci = parse_ok("keepalives=5 port=' 65535 '");
    ASSERT_EQ_INT(ci->keepalives, 1);
    ASSERT_EQ_UINT(ci->hosts[0].port, 65535);
    molt_db_conninfo_free(ci);
    static const char *modes[] = {"disable", "allow", "prefer", "require",
                                  "verify-ca", "verify-full"};
    for (int i = 0; i < 6; i++) {
        char s[64];
        snprintf(s, sizeof s, "sslmode=%s", modes[i]);
        ci = parse_ok(s);
        ASSERT_EQ_INT(ci->sslmode, i);
        ASSERT_EQ_STR(molt_db_sslmode_name(ci->sslmode), modes[i]);
        molt_db_conninfo_free(ci);
    }
    ASSERT_EQ_STR(molt_db_sslmode_name((molt_db_sslmode)42), "unknown");
}

TEST(libpq_keys_we_do_not_act_on)
{
    clean_env();
    molt_db_conninfo *ci = parse_ok(
        "gssencmode=disable sslcompression=1 krbsrvname=pg gsslib=gssapi "
        "replication=false load_balance_hosts=disable "
        "ssl_min_protocol_version=TLSv1.3 ssl_max_protocol_version=TLSv1.3 "
        "tcp_user_timeout=500 sslcertmode=disable "
        "fallback_application_name=fb sslpassword=kp");
    ASSERT_EQ_STR(ci->ssl_min_protocol_version, "TLSv1.3");
    ASSERT_EQ_STR(ci->ssl_max_protocol_version, "TLSv1.3");
    ASSERT_EQ_INT(ci->tcp_user_timeout_ms, 500);
    ASSERT_EQ_STR(ci->sslcertmode, "disable");
    ASSERT_EQ_STR(ci->application_name, "fb");
    ASSERT_EQ_STR(ci->sslpassword, "kp");
    ASSERT_EQ_INT(ci->load_balance_random, 0);
    molt_db_conninfo_free(ci);
    ci = parse_ok("host=a,b load_balance_hosts=random");
    ASSERT_EQ_INT(ci->load_balance_random, 1);
    molt_db_conninfo_free(ci);
    ci = parse_ok("gssencmode=prefer replication=0 sslcompression=0 "
                  "application_name=app fallback_application_name=fb");
    ASSERT_EQ_STR(ci->application_name, "app");
    molt_db_conninfo_free(ci);

    ASSERT_CONTAINS(parse_fail("gssencmode=require", MOLT_DB_ECONFIG),
                    "gssencmode=require is not supported");
    ASSERT_CONTAINS(parse_fail("sslcrl=/x", MOLT_DB_ECONFIG),
                    "\"sslcrl\" is not supported");
    ASSERT_CONTAINS(parse_fail("sslcrldir=/x", MOLT_DB_ECONFIG), "sslcrldir");
    ASSERT_CONTAINS(parse_fail("requirepeer=postgres", MOLT_DB_ECONFIG),
                    "\"requirepeer\" is not supported");
    ASSERT_CONTAINS(parse_fail("replication=database", MOLT_DB_ECONFIG),
                    "replication connections are not supported");
    ASSERT_CONTAINS(parse_fail("service=mysvc", MOLT_DB_ECONFIG),
                    "service files are not supported");
    ASSERT_CONTAINS(parse_fail("load_balance_hosts=sometimes", MOLT_DB_ECONFIG),
                    "load_balance_hosts");
    ASSERT_CONTAINS(parse_fail("sslcertmode=require", MOLT_DB_ECONFIG),
                    "sslcertmode=require");
}

TEST(environment_variables)
{
    clean_env();
    setenv("PGHOST", "envhost1,envhost2", 1);
    setenv("PGPORT", "6000", 1);
    setenv("PGUSER", "envuser", 1);
    setenv("PGDATABASE", "envdb", 1);
    setenv("PGSSLMODE", "disable", 1);
    setenv("PGAPPNAME", "envapp", 1);
    setenv("PGCONNECT_TIMEOUT", "5", 1);
    setenv("PGOPTIONS", "-c x=1", 1);
    setenv("PGCLIENTENCODING", "SQL_ASCII", 1);
    setenv("PGTARGETSESSIONATTRS", "standby", 1);
    setenv("PGCHANNELBINDING", "disable", 1);
    setenv("PGSSLSNI", "0", 1);
    setenv("PGSSLMINPROTOCOLVERSION", "TLSv1.1", 1);
    molt_db_conninfo *ci = parse_ok("fallback_application_name=fb");
    ASSERT_EQ_UINT(ci->nhosts, 2);
    ASSERT_EQ_STR(ci->hosts[1].host, "envhost2");
    ASSERT_EQ_UINT(ci->hosts[1].port, 6000);
    ASSERT_EQ_STR(ci->user, "envuser");
    ASSERT_EQ_STR(ci->dbname, "envdb");
    ASSERT_EQ_INT(ci->sslmode, MOLT_DB_SSLMODE_DISABLE);
    ASSERT_EQ_STR(ci->application_name, "envapp"); /* PGAPPNAME beats fallback */
    ASSERT_EQ_INT(ci->connect_timeout_ms, 5000);
    ASSERT_EQ_STR(ci->options, "-c x=1");
    ASSERT_EQ_STR(ci->client_encoding, "SQL_ASCII");
    ASSERT_EQ_INT(ci->target_session_attrs, MOLT_DB_TARGET_STANDBY);
    ASSERT_EQ_INT(ci->channel_binding, MOLT_DB_CHANNEL_BINDING_DISABLE);
    ASSERT_EQ_INT(ci->sslsni, 0);
    ASSERT_EQ_STR(ci->ssl_min_protocol_version, "TLSv1.1");
    molt_db_conninfo_free(ci);

    /* explicit settings beat the environment, in both syntaxes */
    ci = parse_ok("host=h user=u dbname=d sslmode=require");
    ASSERT_EQ_UINT(ci->nhosts, 1);
    ASSERT_EQ_STR(ci->hosts[0].host, "h");
    ASSERT_EQ_UINT(ci->hosts[0].port, 6000);
    ASSERT_EQ_STR(ci->user, "u");
    ASSERT_EQ_INT(ci->sslmode, MOLT_DB_SSLMODE_REQUIRE);
    molt_db_conninfo_free(ci);
    ci = parse_ok("postgresql://h2/d2");
    ASSERT_EQ_STR(ci->hosts[0].host, "h2");
    ASSERT_EQ_STR(ci->dbname, "d2");
    ASSERT_EQ_STR(ci->user, "envuser");
    molt_db_conninfo_free(ci);
    /* an empty URI path leaves PGDATABASE in force */
    ci = parse_ok("postgresql://h2/");
    ASSERT_EQ_STR(ci->dbname, "envdb");
    molt_db_conninfo_free(ci);

    setenv("PGSSLMODE", "bogus", 1);
    const char *m = parse_fail("", MOLT_DB_ECONFIG);
    ASSERT_CONTAINS(m, "invalid sslmode value: \"bogus\"");
    ASSERT_CONTAINS(m, "from the environment");
    unsetenv("PGSSLMODE");
    setenv("PGSERVICE", "svc", 1);
    ASSERT_CONTAINS(parse_fail("", MOLT_DB_ECONFIG),
                    "service files are not supported");
    unsetenv("PGSERVICE");
    setenv("PGHOSTADDR", "1.2.3.4", 1);
    setenv("PGHOST", "", 1);
    ci = parse_ok("");
    ASSERT_EQ_STR(ci->hosts[0].hostaddr, "1.2.3.4");
    ASSERT_EQ_STR(ci->hosts[0].host, "1.2.3.4");
    molt_db_conninfo_free(ci);
    clean_env();
}

static void pgpass_path(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", tmpdir, name);
}

TEST(pgpass_lookup_rules)
{
    clean_env();
    char path[512];
    pgpass_path(path, sizeof path, "pgpass");
    write_file(path,
               "# comment line:*:*:*:nope\n"
               "\n"
               "db1:5432:app:alice:first\n"
               "db1:5432:app:alice:second\n"
               "db\\:2:*:*:bob:esc\\:aped\\\\pw:trailing\n"
               "*:6000:*:*:wild\r\n"
               "localhost:5432:*:carol:sock\n"
               "short:line\n"
               "db3:5432:x\\\\y:dave:bs\n",
               0600);
    char *pw = NULL;
    ASSERT_EQ_INT(molt_db_pgpass_lookup(path, "db1", 5432, "app", "alice", &pw),
                  1);
    ASSERT_EQ_STR(pw, "first"); /* the first match wins */
    free(pw);
    ASSERT_EQ_INT(molt_db_pgpass_lookup(path, "db:2", 1, "any", "bob", &pw), 1);
    ASSERT_EQ_STR(pw, "esc:aped\\pw");
    free(pw);
    ASSERT_EQ_INT(molt_db_pgpass_lookup(path, "zzz", 6000, "d", "u", &pw), 1);
    ASSERT_EQ_STR(pw, "wild");
    free(pw);
    ASSERT_EQ_INT(molt_db_pgpass_lookup(path, "db3", 5432, "x\\y", "dave", &pw),
                  1);
    ASSERT_EQ_STR(pw, "bs");
    free(pw);
    /* near misses */
    ASSERT_EQ_INT(molt_db_pgpass_lookup(path, "db1", 5433, "app", "alice", &pw),
                  0);
    ASSERT(pw == NULL);
    ASSERT_EQ_INT(molt_db_pgpass_lookup(path, "db1", 5432, "app", "alic", &pw),
                  0);
    ASSERT_EQ_INT(molt_db_pgpass_lookup(path, "db", 5432, "app", "alice", &pw),
                  0);
    ASSERT_EQ_INT(molt_db_pgpass_lookup(path, "short", 5432, "line", "x", &pw),
                  0);
    ASSERT_EQ_INT(molt_db_pgpass_lookup(path, "# comment line", 1, "a", "b",
                                        &pw),
                  0);

    /* too permissive: ignored */
    ASSERT(chmod(path, 0644) == 0);
    ASSERT_EQ_INT(molt_db_pgpass_lookup(path, "db1", 5432, "app", "alice", &pw),
                  0);
    ASSERT(chmod(path, 0640) == 0);
    ASSERT_EQ_INT(molt_db_pgpass_lookup(path, "db1", 5432, "app", "alice", &pw),
                  0);
    ASSERT(chmod(path, 0400) == 0);
    ASSERT_EQ_INT(molt_db_pgpass_lookup(path, "db1", 5432, "app", "alice", &pw),
                  1);
    free(pw);
    /* not a regular file, or missing */
    ASSERT_EQ_INT(molt_db_pgpass_lookup(tmpdir, "db1", 5432, "app", "alice",
                                        &pw),
                  0);
    ASSERT_EQ_INT(molt_db_pgpass_lookup("/nonexistent/pgpass", "db1", 5432,
                                        "app", "alice", &pw),
                  0);
    unlink(path);
}

TEST(pgpass_long_lines)
{
    clean_env();
    char path[512];
    pgpass_path(path, sizeof path, "pgpass_long");
    size_t n = 100000;
    char *text = malloc(2 * n + 200);
    ASSERT(text != NULL);
    /* a long non-matching line, then a matching line with a long password */
    size_t off = 0;
    memset(text, 'h', n);
    off = n;
    off += (size_t)sprintf(text + off, ":1:d:u:x\nh:1:d:u:");
    memset(text + off, 'p', n);
    off += n;
    strcpy(text + off, "END\n");
    write_file(path, text, 0600);
    char *pw = NULL;
    ASSERT_EQ_INT(molt_db_pgpass_lookup(path, "h", 1, "d", "u", &pw), 1);
    ASSERT_EQ_UINT(strlen(pw), n + 3);
    ASSERT(strcmp(pw + n, "END") == 0);
    free(pw);
    free(text);
    unlink(path);
}

TEST(passwords_per_host)
{
    clean_env();
    char path[512];
    pgpass_path(path, sizeof path, "pgpass_hosts");
    write_file(path,
               "h1:5432:db:u:pw-h1\n"
               "h2:6000:db:u:pw-h2\n"
               "localhost:5432:db:u:pw-local\n"
               "/tmp/other:5432:db:u:pw-other\n"
               "10.0.0.9:5432:db:u:pw-addr\n"
               "empty:5432:db:u:\n",
               0600);
    char s[1024];
    snprintf(s, sizeof s,
             "host=h1,h2,,/tmp/other,,empty port=5432,6000,5432,5432,5432,5432 "
             "hostaddr=,,,,10.0.0.9, user=u dbname=db passfile=%s",
             path);
    molt_db_conninfo *ci = parse_ok(s);
    ASSERT_EQ_UINT(ci->nhosts, 6);
    ASSERT_EQ_STR(ci->hosts[0].password, "pw-h1");
    ASSERT_EQ_STR(ci->hosts[1].password, "pw-h2");
    ASSERT_EQ_STR(ci->hosts[2].password, "pw-local"); /* default socket dir */
    ASSERT_EQ_STR(ci->hosts[3].password, "pw-other");
    ASSERT_EQ_STR(ci->hosts[4].password, "pw-addr"); /* hostaddr stands in */
    ASSERT(ci->hosts[5].password == NULL);            /* empty: none */
    molt_db_conninfo_free(ci);

    /* an explicit password applies to every host; empty means "look up" */
    snprintf(s, sizeof s, "host=h1,h2 user=u dbname=db passfile=%s "
             "password=explicit", path);
    ci = parse_ok(s);
    ASSERT_EQ_STR(ci->hosts[0].password, "explicit");
    ASSERT_EQ_STR(ci->hosts[1].password, "explicit");
    molt_db_conninfo_free(ci);
    snprintf(s, sizeof s, "host=h1 user=u dbname=db passfile=%s password=''",
             path);
    ci = parse_ok(s);
    ASSERT_EQ_STR(ci->hosts[0].password, "pw-h1");
    molt_db_conninfo_free(ci);

    /* PGPASSWORD, then PGPASSFILE, then ~/.pgpass */
    setenv("PGPASSWORD", "frompgpassword", 1);
    ci = parse_ok("host=h1 user=u dbname=db");
    ASSERT_EQ_STR(ci->hosts[0].password, "frompgpassword");
    molt_db_conninfo_free(ci);
    unsetenv("PGPASSWORD");
    setenv("PGPASSFILE", path, 1);
    ci = parse_ok("host=h2 port=6000 user=u dbname=db");
    ASSERT_EQ_STR(ci->hosts[0].password, "pw-h2");
    molt_db_conninfo_free(ci);
    unsetenv("PGPASSFILE");
    char home_pgpass[512];
    pgpass_path(home_pgpass, sizeof home_pgpass, ".pgpass");
    write_file(home_pgpass, "*:*:*:*:from-home\n", 0600);
    ci = parse_ok("host=h9 user=u");
    ASSERT_EQ_STR(ci->hosts[0].password, "from-home");
    molt_db_conninfo_free(ci);
    ASSERT(chmod(home_pgpass, 0604) == 0);
    ci = parse_ok("host=h9 user=u");
    ASSERT(ci->hosts[0].password == NULL);
    molt_db_conninfo_free(ci);
    unlink(home_pgpass);
    unlink(path);
}

TEST(password_never_in_messages)
{
    clean_env();
    static const char *const bad[] = {
        "password=Zq9xSECRETx port=abc",
        "password='Zq9xSECRETx",
        "password=Zq9xSECRETx dbname='x",
        "password=Zq9xSECRETx sslmode=nope",
        "password=Zq9xSECRETx host=a,b port=1,2,3",
        "password=Zq9xSECRETx bogus=1",
        "password=Zq9xSECRETx nokey",
        "postgresql://u:Zq9xSECRETx@h:99999/d",
        "postgresql://u:Zq9xSECRETx%zz@h/d",
        "postgresql://u:Zq9xSECRETx@[::1/d",
        "postgresql://u:Zq9xSECRETx@h/d?x",
        "postgresql://u:Zq9xSECRETx@h/d?sslmode=a=b",
        "postgresql://h/d?password=Zq9xSECRETx&nope=1",
        "postgresql://h/d?password=Zq9xSECRETx=x",
        "postgresql://h/d?password=Zq9xSECRETx%00",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *m = parse_fail(bad[i], MOLT_DB_ECONFIG);
        if (strstr(m, "Zq9x") != NULL || strstr(m, "SECRET") != NULL)
            FAIL_AT("password leaked for input %zu: %s", i, m);
    }
}

TEST(free_null)
{
    molt_db_conninfo_free(NULL);
}

TEST_MAIN(TEST_ENTRY(keyvalue_basic), TEST_ENTRY(keyvalue_quotes_and_escapes),
          TEST_ENTRY(keyvalue_errors), TEST_ENTRY(empty_string_and_whitespace),
          TEST_ENTRY(defaults), TEST_ENTRY(default_cert_files),
          TEST_ENTRY(uri_full), TEST_ENTRY(uri_ipv6_and_port_lists),
          TEST_ENTRY(uri_socket_dirs_and_query_override),
          TEST_ENTRY(uri_errors), TEST_ENTRY(host_port_hostaddr_lists),
          TEST_ENTRY(value_validation),
          TEST_ENTRY(libpq_keys_we_do_not_act_on),
          TEST_ENTRY(environment_variables), TEST_ENTRY(pgpass_lookup_rules),
          TEST_ENTRY(pgpass_long_lines), TEST_ENTRY(passwords_per_host),
          TEST_ENTRY(password_never_in_messages), TEST_ENTRY(free_null))
