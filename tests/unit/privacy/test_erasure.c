/* Erasure in the privacy module: receipts (sealed, pending part dropped on completion,
 * reloaded, a tampered one refused) and consent_forget (the record leaves memory and files,
 * the other records of its probe cluster stay findable, the audit log keeps only subject
 * references). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "privacy/audit.h"
#include "privacy/consent.h"
#include "privacy/erasure.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/rs-erasure-XXXXXX");
    assert_non_null(mkdtemp(dir));
    assert_int_equal(seal_init(), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static bool dir_holds(const char *needle)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "grep -rqF '%s' %s", needle, dir);
    return system(cmd) == 0;
}

static const char *KEY = "0123456789abcdef0123456789abcdef";
static const char *SUBJ = "fedcba9876543210fedcba9876543210";

static void test_receipts(void **state)
{
    (void)state;
    char rdir[128];
    snprintf(rdir, sizeof rdir, "%s/erasures", dir);
    struct seal_key dk = {.key = {5}};
    struct erasures *e;
    assert_int_equal(erasures_open(rdir, &dk, &e), 0);
    struct erasure_receipt r, got;
    assert_int_equal(erasures_create(e, KEY, "raw-user-77", 11, false, SUBJ, &r), 0);
    assert_int_equal(strlen(r.id), ERASURE_ID_HEX);
    assert_null(strstr(r.id, "0123456789abcdef"));
    assert_false(dir_holds("raw-user-77")); /* sealed */
    assert_int_equal(erasures_next_pending(e, &got), 0);
    assert_string_equal(got.key, KEY);
    r.step_ms[ERASURE_STEP_FORGET] = 111;
    assert_int_equal(erasures_update(e, &r), 0);
    erasures_free(e);

    /* Reloaded pending, with the user (needed to resume). */
    assert_int_equal(erasures_open(rdir, &dk, &e), 0);
    assert_int_equal(erasures_get(e, r.id, &got), 0);
    assert_int_equal(got.status, ERASURE_PENDING);
    assert_string_equal(got.raw, "raw-user-77");
    assert_int_equal(got.step_ms[ERASURE_STEP_FORGET], 111);
    got.status = ERASURE_COMPLETE;
    got.completed_ms = 222;
    assert_int_equal(erasures_update(e, &got), 0);
    assert_int_equal(erasures_next_pending(e, &got), CORE_E_NOTFOUND);
    erasures_free(e);

    /* Complete: no pseudonym, no raw id in the plaintext either. */
    assert_int_equal(erasures_open(rdir, &dk, &e), 0);
    assert_int_equal(erasures_get(e, r.id, &got), 0);
    assert_int_equal(got.status, ERASURE_COMPLETE);
    assert_int_equal(got.raw_len, 0);
    assert_string_equal(got.key, "");
    struct core_buf out;
    core_buf_init(&out);
    erasures_of_subject_json(e, SUBJ, &out);
    assert_non_null(strstr(out.data, r.id));
    assert_non_null(strstr(out.data, "\"status\":\"complete\""));
    assert_null(strstr(out.data, KEY));
    core_buf_reset(&out);
    erasures_of_subject_json(e, KEY, &out);
    assert_string_equal(out.data, "[]");
    core_buf_dispose(&out);
    assert_int_equal(erasures_get(e, "00000000000000000000000000000000", &got), CORE_E_NOTFOUND);
    erasures_free(e);

    /* Another key, or a flipped byte: refused. */
    struct seal_key other = {.key = {6}};
    assert_int_equal(erasures_open(rdir, &other, &e), CORE_E_CORRUPT);
    char path[256];
    snprintf(path, sizeof path, "%s/%s.rcpt", rdir, r.id);
    int fd = open(path, O_RDWR);
    char c;
    assert_int_equal(pread(fd, &c, 1, 40), 1);
    c ^= 1;
    assert_int_equal(pwrite(fd, &c, 1, 40), 1);
    close(fd);
    assert_int_equal(erasures_open(rdir, &dk, &e), CORE_E_CORRUPT);
}

static void test_consent_forget(void **state)
{
    (void)state;
    char cdir[128], apath[128];
    snprintf(cdir, sizeof cdir, "%s/consent", dir);
    snprintf(apath, sizeof apath, "%s/audit.log", dir);
    struct privacy_key pk;
    uint8_t bytes[PRIVACY_KEY_BYTES];
    memset(bytes, 3, sizeof bytes);
    privacy_key_set(&pk, bytes);
    struct seal_key sk = {.key = {7}};
    struct audit *a;
    assert_int_equal(audit_open(apath, &sk, &a), 0);
    struct consent_options o;
    consent_options_init(&o);
    o.dir = cdir;
    o.key = &pk;
    o.data_key = &sk;
    o.audit = a;
    struct consent *c;
    assert_int_equal(consent_open(&o, &c), 0);
    /* Many users, so that probe clusters form in the table. */
    char keys[200][CONSENT_KEY_HEX + 1];
    struct consent_state st = {.analytics = true, .personalization = false, .ts = 1};
    snprintf(st.source, sizeof st.source, "banner");
    for (int i = 0; i < 200; i++) {
        snprintf(keys[i], sizeof keys[i], "%032x", i * 7919 + 1);
        assert_int_equal(consent_set(c, keys[i], &st, "test", NULL, NULL), 0);
    }
    /* The consent files and the audit log are sealed: the pseudonym is never in their bytes
     * (the reopen below shows it is gone from what they hold, too). */
    assert_false(dir_holds(keys[17]));
    assert_int_equal(consent_forget(c, keys[17]), 0);
    assert_int_equal(consent_forget(c, keys[17]), CORE_E_NOTFOUND);
    assert_int_equal(consent_forget(c, "not-a-key"), CORE_E_INVALID);
    assert_int_equal(consent_count(c), 199);
    struct consent_view v;
    assert_int_equal(consent_get(c, keys[17], &v), CORE_E_NOTFOUND);
    for (int i = 0; i < 200; i++)
        if (i != 17)
            assert_int_equal(consent_get(c, keys[i], &v), 0);
    assert_false(dir_holds(keys[17])); /* neither in the consent files nor the audit log */
    consent_close(c);
    assert_int_equal(consent_open(&o, &c), 0);
    assert_int_equal(consent_count(c), 199);
    assert_int_equal(consent_get(c, keys[17], &v), CORE_E_NOTFOUND);
    assert_int_equal(consent_get(c, keys[18], &v), 0);
    consent_close(c);
    audit_close(a);
    privacy_key_dispose(&pk);
}

int main(void)
{
    core_log_set_level(CORE_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_receipts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_consent_forget, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
