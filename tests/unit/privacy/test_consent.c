/* The consent store: decisions under the policies and defaults, persistence across reopen
 * (journal, compaction, torn tail, corrupt lines), bounds, bounded history, sealing at rest
 * (no pseudonym in clear, a flipped byte or another key refused, the unsealed format refused),
 * and the audit entry of every change under a subject reference that is not the pseudonym. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "privacy/audit.h"
#include "privacy/consent.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char dir[64];
static char cdir[128];
static struct privacy_key key;
static struct seal_key dkey;

static const char *K1 = "00112233445566778899aabbccddeeff";
static const char *K2 = "ffeeddccbbaa99887766554433221100";
static const char *K3 = "0123456789abcdef0123456789abcdef";

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/rs-consent-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(cdir, sizeof cdir, "%s/consent", dir);
    uint8_t bytes[PRIVACY_KEY_BYTES];
    memset(bytes, 7, sizeof bytes);
    privacy_key_set(&key, bytes);
    memset(&dkey, 0, sizeof dkey);
    memset(dkey.key, 9, sizeof dkey.key);
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

static struct consent *open_store(bool required, enum consent_policy policy, int64_t max,
                                  struct audit *audit)
{
    struct consent_options o;
    consent_options_init(&o);
    o.dir = cdir;
    o.required = required;
    o.policy = policy;
    o.max_entries = max;
    o.audit = audit;
    o.key = &key;
    o.data_key = &dkey;
    struct consent *c;
    assert_int_equal(consent_open(&o, &c), 0);
    return c;
}

static void set(struct consent *c, const char *k, bool a, bool p, int64_t ts)
{
    struct consent_state st = {.analytics = a, .personalization = p, .ts = ts};
    snprintf(st.source, sizeof st.source, "src-%lld", (long long)ts);
    assert_int_equal(consent_set(c, k, &st, "unit", NULL, NULL), 0);
}

static void test_decisions(void **state)
{
    (void)state;
    struct consent *c = open_store(false, CONSENT_POLICY_DROP, 100, NULL);
    assert_int_equal(consent_decide(c, K1), CONSENT_ALLOW); /* never asked: allowed */
    assert_int_equal(consent_decide(c, ""), CONSENT_ALLOW);
    set(c, K1, true, false, 1);
    set(c, K2, false, true, 2);
    set(c, K3, true, true, 3);
    assert_int_equal(consent_decide(c, K1), CONSENT_DROP);
    assert_int_equal(consent_decide(c, K2), CONSENT_DROP);
    assert_int_equal(consent_decide(c, K3), CONSENT_ALLOW);
    consent_close(c);
    c = open_store(true, CONSENT_POLICY_AGGREGATE, 100, NULL);
    assert_int_equal(consent_decide(c, K1), CONSENT_AGGREGATE); /* no personalization */
    assert_int_equal(consent_decide(c, K2), CONSENT_DROP);      /* no analytics */
    assert_int_equal(consent_decide(c, K3), CONSENT_ALLOW);
    assert_int_equal(consent_decide(c, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), CONSENT_DROP);
    assert_int_equal(consent_stricter(CONSENT_ALLOW, CONSENT_AGGREGATE), CONSENT_AGGREGATE);
    /* Bad keys and sources are refused. */
    struct consent_state st = {.analytics = true};
    assert_int_equal(consent_set(c, "XYZ", &st, "unit", NULL, NULL), CORE_E_INVALID);
    consent_close(c);
}

static void test_persistence_and_history(void **state)
{
    (void)state;
    struct consent *c = open_store(false, CONSENT_POLICY_DROP, 100, NULL);
    for (int i = 0; i < CONSENT_HISTORY_MAX + 3; i++)
        set(c, K1, true, i % 2 == 0, 100 + i);
    set(c, K2, true, true, 7);
    bool had;
    struct consent_state prev, st = {.analytics = false, .personalization = false, .ts = 9};
    assert_int_equal(consent_set(c, K2, &st, "unit", &had, &prev), 0);
    assert_true(had);
    assert_true(prev.personalization);
    consent_close(c);
    c = open_store(false, CONSENT_POLICY_DROP, 100, NULL);
    struct consent_view v;
    assert_int_equal(consent_get(c, K1, &v), 0);
    assert_int_equal(v.n, CONSENT_HISTORY_MAX); /* bounded, oldest forgotten */
    assert_int_equal(v.history[v.n - 1].ts, 100 + CONSENT_HISTORY_MAX + 2);
    assert_int_equal(v.history[0].ts, 103);
    assert_string_equal(v.history[v.n - 1].source, "src-110");
    assert_true(v.history[v.n - 1].updated > 0);
    assert_int_equal(consent_get(c, K2, &v), 0);
    assert_int_equal(v.n, 2);
    assert_false(v.history[1].analytics);
    assert_int_equal(consent_get(c, K3, &v), CORE_E_NOTFOUND);
    consent_close(c);
}

static void journal_append(const char *text)
{
    char path[200];
    snprintf(path, sizeof path, "%s/journal.ndjson", cdir);
    FILE *f = fopen(path, "ab");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_torn_and_corrupt_journal(void **state)
{
    (void)state;
    struct consent *c = open_store(false, CONSENT_POLICY_DROP, 100, NULL);
    set(c, K1, true, false, 1);
    consent_close(c);
    journal_append("2 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd"); /* torn: no newline */
    c = open_store(false, CONSENT_POLICY_DROP, 100, NULL);        /* torn tail cut off */
    struct consent_view v;
    assert_int_equal(consent_get(c, K2, &v), CORE_E_NOTFOUND);
    set(c, K2, true, true, 2); /* appends after the cut */
    consent_close(c);
    c = open_store(false, CONSENT_POLICY_DROP, 100, NULL);
    assert_int_equal(consent_get(c, K2, &v), 0);
    assert_int_equal(consent_count(c), 2);
    consent_close(c);
}

static void test_corrupt_middle_refused(void **state)
{
    (void)state;
    struct consent *c = open_store(false, CONSENT_POLICY_DROP, 100, NULL);
    set(c, K1, true, false, 1);
    consent_close(c);
    /* A complete line (it has its newline) that does not parse: corrupt, not torn. */
    journal_append("garbage\n");
    struct consent_options o;
    consent_options_init(&o);
    o.dir = cdir;
    o.key = &key;
    o.data_key = &dkey;
    struct consent *bad = NULL;
    assert_int_equal(consent_open(&o, &bad), CORE_E_CORRUPT);
    assert_null(bad);
}

static void test_bounded(void **state)
{
    (void)state;
    struct consent *c = open_store(false, CONSENT_POLICY_DROP, 2, NULL);
    set(c, K1, true, true, 1);
    set(c, K2, true, true, 2);
    struct consent_state st = {.analytics = true, .personalization = true};
    assert_int_equal(consent_set(c, K3, &st, "unit", NULL, NULL), CORE_E_FULL);
    set(c, K1, true, false, 3); /* known users can still change */
    assert_int_equal(consent_count(c), 2);
    consent_close(c);
}

static void test_compaction(void **state)
{
    (void)state;
    struct consent *c = open_store(false, CONSENT_POLICY_DROP, 100, NULL);
    for (int i = 0; i < 1100; i++)
        set(c, i % 2 ? K1 : K2, true, i % 3 == 0, i);
    consent_close(c);
    char path[200];
    snprintf(path, sizeof path, "%s/snapshot.ndjson", cdir);
    struct core_buf b;
    core_buf_init(&b);
    assert_int_equal(core_read_file(path, 1 << 20, &b), 0); /* a snapshot was written */
    snprintf(path, sizeof path, "%s/journal.ndjson", cdir);
    assert_int_equal(core_read_file(path, 1 << 20, &b), 0);
    assert_true(b.len < 200 * 150); /* and the journal emptied then */
    /* A change the snapshot already holds (crash before the journal was truncated) is not
     * applied twice. */
    const char *old = "{\"n\":3,\"key\":\"00112233445566778899aabbccddeeff\",\"analytics\":false,"
                      "\"personalization\":false,\"source\":\"\",\"ts\":0,\"updated\":0}";
    struct core_buf line;
    core_buf_init(&line);
    core_buf_puts(&line, "3 ");
    seal_line(&dkey, "recstream consent journal 3", old, strlen(old), &line);
    core_buf_putc(&line, '\n');
    journal_append(line.data);
    core_buf_dispose(&line);
    c = open_store(false, CONSENT_POLICY_DROP, 100, NULL);
    struct consent_view v;
    assert_int_equal(consent_get(c, K1, &v), 0);
    assert_int_equal(v.n, CONSENT_HISTORY_MAX);
    assert_int_equal(v.history[v.n - 1].ts, 1099);
    assert_true(v.history[v.n - 1].analytics);
    set(c, K1, false, false, 5000);
    consent_close(c);
    c = open_store(false, CONSENT_POLICY_DROP, 100, NULL);
    assert_int_equal(consent_get(c, K1, &v), 0);
    assert_int_equal(v.history[v.n - 1].ts, 5000);
    consent_close(c);
    core_buf_dispose(&b);
}

static int open_with(const struct seal_key *dk)
{
    struct consent_options o;
    consent_options_init(&o);
    o.dir = cdir;
    o.key = &key;
    o.data_key = dk;
    struct consent *c = NULL;
    int rc = consent_open(&o, &c);
    consent_close(c);
    return rc;
}

static void flip_byte(const char *name, size_t at)
{
    char path[200];
    snprintf(path, sizeof path, "%s/%s", cdir, name);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, (long)at, SEEK_SET), 0);
    int ch = fgetc(f);
    assert_int_equal(fseek(f, (long)at, SEEK_SET), 0);
    fputc(ch ^ 1, f); /* flipping twice restores */
    fclose(f);
}

static void test_sealed_at_rest(void **state)
{
    (void)state;
    struct consent *c = open_store(false, CONSENT_POLICY_DROP, 100, NULL);
    for (int i = 0; i < 1100; i++) /* enough for a compaction: snapshot and journal */
        set(c, i % 2 ? K1 : K2, true, i % 3 == 0, i);
    set(c, K3, true, false, 5000);
    consent_close(c);
    char path[200];
    struct core_buf b;
    core_buf_init(&b);
    const char *files[] = {"journal.ndjson", "snapshot.ndjson"};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", cdir, files[i]);
        assert_int_equal(core_read_file(path, 1 << 22, &b), 0);
        assert_true(b.len > 0);
        /* Neither a pseudonym nor any JSON member name in clear. */
        assert_null(memmem(b.data, b.len, K1, strlen(K1)));
        assert_null(memmem(b.data, b.len, K2, strlen(K2)));
        assert_null(memmem(b.data, b.len, K3, strlen(K3)));
        assert_null(memmem(b.data, b.len, "source", 6));
    }
    assert_int_equal(open_with(&dkey), 0);
    /* Another data key opens nothing. */
    struct seal_key other = dkey;
    other.key[3] ^= 1;
    assert_int_equal(open_with(&other), CORE_E_CORRUPT);
    /* A flipped byte in the (complete) journal line: refused, not skipped. */
    flip_byte("journal.ndjson", 10);
    assert_int_equal(open_with(&dkey), CORE_E_CORRUPT);
    flip_byte("journal.ndjson", 10);
    assert_int_equal(open_with(&dkey), 0);
    /* A flipped byte in the snapshot: refused. */
    flip_byte("snapshot.ndjson", 100);
    assert_int_equal(open_with(&dkey), CORE_E_CORRUPT);
    core_buf_dispose(&b);
}

static void test_unsealed_format_refused(void **state)
{
    (void)state;
    assert_int_equal(core_mkdirs(cdir, 0700), 0);
    journal_append("{\"n\":1,\"key\":\"00112233445566778899aabbccddeeff\",\"analytics\":false,"
                   "\"personalization\":false,\"source\":\"\",\"ts\":0,\"updated\":0}\n");
    assert_int_equal(open_with(&dkey), CORE_E_INVALID);
}

static void test_audited_under_subject_ref(void **state)
{
    (void)state;
    char path[200];
    snprintf(path, sizeof path, "%s/audit.log", dir);
    struct audit *a;
    struct seal_key akey;
    memset(&akey, 0, sizeof akey);
    memset(akey.key, 0x33, sizeof akey.key);
    assert_int_equal(audit_open(path, &akey, &a), 0);
    struct consent *c = open_store(false, CONSENT_POLICY_DROP, 100, a);
    set(c, K1, true, true, 1);
    set(c, K1, true, false, 2);
    char ref[CONSENT_KEY_HEX + 1], ref2[CONSENT_KEY_HEX + 1];
    consent_subject_ref(c, K1, ref);
    consent_subject_ref(c, K2, ref2);
    assert_string_not_equal(ref, K1);
    assert_string_not_equal(ref, ref2);
    consent_close(c);
    audit_close(a);
    struct core_buf b;
    core_buf_init(&b);
    assert_int_equal(core_read_file(path, 1 << 20, &b), 0);
    assert_null(strstr(b.data, K1)); /* never the pseudonym, nor the subject ref in clear */
    assert_null(strstr(b.data, ref));
    /* The entries, opened: the subject is the reference, never the pseudonym. */
    struct core_buf all;
    core_buf_init(&all);
    for (const char *l = b.data; *l;) {
        size_t len = strcspn(l, "\n");
        int64_t seq;
        char prob[160];
        assert_int_equal(audit_line_open(&akey, l, len, &seq, &all, prob, sizeof prob), 0);
        core_buf_putc(&all, '\n');
        l += len + (l[len] == '\n');
    }
    core_buf_dispose(&b);
    b = all;
    assert_null(strstr(b.data, K1));
    char want[64];
    snprintf(want, sizeof want, "\"subject\":\"%s\"", ref);
    assert_non_null(strstr(b.data, want));
    assert_non_null(strstr(b.data, "\"changed\":[\"personalization\"]"));
    assert_non_null(strstr(b.data, "\"actor\":\"unit\",\"action\":\"consent.update\""));
    struct audit_verify v;
    assert_int_equal(audit_verify_file(path, &akey, &v), 0);
    assert_int_equal(v.entries, 2);
    assert_int_equal(v.bad_line, 0);
    core_buf_dispose(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_decisions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_persistence_and_history, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_and_corrupt_journal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_middle_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sealed_at_rest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsealed_format_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audited_under_subject_ref, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
