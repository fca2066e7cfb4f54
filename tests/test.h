/*
 * Minimal test support: ASSERT macros that print both sides and abort, and
 * a table-driven main. Each test file is its own executable and process
 * under ctest; `test_x NAME` runs only the case NAME.
 *
 * A test that needs something the environment lacks (no test server) calls
 * SKIP("why"), which exits with 77, ctest's skip code.
 */
#ifndef MOLT_DB_TEST_H
#define MOLT_DB_TEST_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "molt_db/error.h"

#define TEST_SKIP_CODE 77

#define FAIL_AT(...)                                                        \
    do {                                                                    \
        fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                     \
        fprintf(stderr, __VA_ARGS__);                                       \
        fputc('\n', stderr);                                                \
        fflush(stderr);                                                     \
        abort();                                                            \
    } while (0)

#define SKIP(why)                                                           \
    do {                                                                    \
        fprintf(stderr, "SKIP: %s\n", why);                                 \
        exit(TEST_SKIP_CODE);                                               \
    } while (0)

#define ASSERT(cond)                                                        \
    do {                                                                    \
        if (!(cond))                                                        \
            FAIL_AT("ASSERT(%s) failed", #cond);                            \
    } while (0)

#define ASSERT_EQ_INT(a, b)                                                 \
    do {                                                                    \
        long long a_ = (long long)(a), b_ = (long long)(b);                 \
        if (a_ != b_)                                                       \
            FAIL_AT("ASSERT_EQ_INT(%s, %s): %lld != %lld", #a, #b, a_, b_); \
    } while (0)

#define ASSERT_EQ_UINT(a, b)                                                \
    do {                                                                    \
        unsigned long long a_ = (unsigned long long)(a),                    \
                           b_ = (unsigned long long)(b);                    \
        if (a_ != b_)                                                       \
            FAIL_AT("ASSERT_EQ_UINT(%s, %s): %llu != %llu", #a, #b, a_, b_); \
    } while (0)

#define ASSERT_EQ_DBL(a, b)                                                 \
    do {                                                                    \
        double a_ = (double)(a), b_ = (double)(b);                          \
        if (!(a_ == b_) && !(a_ != a_ && b_ != b_))                         \
            FAIL_AT("ASSERT_EQ_DBL(%s, %s): %.17g != %.17g", #a, #b, a_, b_); \
    } while (0)

#define ASSERT_EQ_STR(a, b)                                                 \
    do {                                                                    \
        const char *a_ = (a), *b_ = (b);                                    \
        if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0)                \
            FAIL_AT("ASSERT_EQ_STR(%s, %s):\n  left:  \"%s\"\n  right: \"%s\"", \
                    #a, #b, a_ ? a_ : "(null)", b_ ? b_ : "(null)");        \
    } while (0)

#define ASSERT_CONTAINS(hay, needle)                                        \
    do {                                                                    \
        const char *h_ = (hay), *n_ = (needle);                             \
        if (h_ == NULL || strstr(h_, n_) == NULL)                           \
            FAIL_AT("ASSERT_CONTAINS(%s, %s):\n  \"%s\" does not contain \"%s\"", \
                    #hay, #needle, h_ ? h_ : "(null)", n_);                 \
    } while (0)

static inline void test_hexdump_(const char *label, const void *p, size_t n)
{
    const uint8_t *b = p;
    fprintf(stderr, "  %s (%zu bytes):", label, n);
    for (size_t i = 0; i < n && i < 256; i++)
        fprintf(stderr, "%s%02x", i % 32 ? " " : "\n    ", b[i]);
    fprintf(stderr, "%s\n", n > 256 ? " ..." : "");
}

#define ASSERT_EQ_MEM(a, alen, b, blen)                                     \
    do {                                                                    \
        size_t al_ = (size_t)(alen), bl_ = (size_t)(blen);                  \
        if (al_ != bl_ || memcmp((a), (b), al_) != 0) {                     \
            fprintf(stderr, "%s:%d: ASSERT_EQ_MEM(%s, %s) failed\n",        \
                    __FILE__, __LINE__, #a, #b);                            \
            test_hexdump_("left", (a), al_);                                \
            test_hexdump_("right", (b), bl_);                               \
            abort();                                                        \
        }                                                                   \
    } while (0)

/* Asserts rc == MOLT_DB_OK, printing the code name and err's message. */
#define ASSERT_OK(rc, err)                                                  \
    do {                                                                    \
        int rc_ = (rc);                                                     \
        const molt_db_error *e_ = (err);                                    \
        if (rc_ != MOLT_DB_OK)                                              \
            FAIL_AT("ASSERT_OK(%s) got %s: %s [%s]", #rc,                   \
                    molt_db_code_name(rc_), e_ ? e_->message : "",          \
                    e_ ? e_->sqlstate : "");                                \
    } while (0)

/* Asserts rc == code. */
#define ASSERT_CODE(rc, code)                                               \
    do {                                                                    \
        int rc_ = (rc), c_ = (code);                                        \
        if (rc_ != c_)                                                      \
            FAIL_AT("ASSERT_CODE(%s): got %s, want %s", #rc,                \
                    molt_db_code_name(rc_), molt_db_code_name(c_));         \
    } while (0)

typedef struct test_case {
    const char *name;
    void (*fn)(void);
} test_case;

#define TEST(name) static void name(void)
#define TEST_ENTRY(name) {#name, name}

/* Runs every case, printing one line per case; with arguments only the
 * cases named, or with --except first every case but those. */
static inline int test_main(int argc, char **argv, const test_case *cases,
                            size_t n)
{
    int except = argc > 1 && strcmp(argv[1], "--except") == 0;
    int first = except ? 2 : 1;
    for (int a = first; a < argc; a++) {
        size_t i = 0;
        while (i < n && strcmp(argv[a], cases[i].name) != 0)
            i++;
        if (i == n) {
            fprintf(stderr, "no test case named %s\n", argv[a]);
            return 1;
        }
    }
    int ran = 0;
    for (size_t i = 0; i < n; i++) {
        int named = 0;
        for (int a = first; a < argc; a++)
            named |= strcmp(argv[a], cases[i].name) == 0;
        if (argc > first && named == except)
            continue;
        fprintf(stderr, "-- %s\n", cases[i].name);
        cases[i].fn();
        ran++;
    }
    fprintf(stderr, "%d passed, 0 failed\n", ran);
    return 0;
}

#define TEST_MAIN(...)                                                      \
    int main(int argc, char **argv)                                         \
    {                                                                       \
        static const test_case cases_[] = {__VA_ARGS__};                    \
        return test_main(argc, argv, cases_,                                \
                         sizeof cases_ / sizeof cases_[0]);                 \
    }

/* Reads an environment variable, or skips the test when it is unset. */
static inline const char *test_env_or_skip(const char *name)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0') {
        fprintf(stderr, "SKIP: %s is not set (run under scripts/with_pg.sh)\n",
                name);
        exit(TEST_SKIP_CODE);
    }
    return v;
}

#endif
