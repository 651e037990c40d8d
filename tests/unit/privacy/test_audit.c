/* The audit log: entries chain (prev = the previous hash, hash = SHA-256 of the entry's bytes),
 * are sealed at rest (nothing in clear, a flipped byte or a line moved to another seq does not
 * open), survive a reopen, a torn last line is cut off, and verification names the first
 * edited, deleted or reordered line. The unsealed format is refused. Concurrent appends keep
 * the chain intact. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "privacy/audit.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];
static char path[128];
static struct seal_key key;

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/rs-audit-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/privacy/audit.log", dir);
    memset(&key, 0, sizeof key);
    memset(key.key, 0x5a, sizeof key.key);
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

static void read_all(struct core_buf *b)
{
    assert_int_equal(core_read_file(path, 1 << 24, b), 0);
}

static void write_all(const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
}

static void append_n(int n)
{
    struct audit *a;
    assert_int_equal(audit_open(path, &key, &a), 0);
    for (int i = 0; i < n; i++) {
        char detail[64];
        snprintf(detail, sizeof detail, "{\"i\":%d,\"s\":\"x\\\"y\"}", i);
        assert_int_equal(audit_append(a, "cli", "test.action", "ref", "unit", detail), 0);
    }
    audit_close(a);
}

static void test_chain_and_reopen(void **state)
{
    (void)state;
    append_n(3);
    append_n(2); /* continues the chain after a reopen */
    struct audit_verify v;
    assert_int_equal(audit_verify_file(path, &key, &v), 0);
    assert_int_equal(v.bad_line, 0);
    assert_int_equal(v.entries, 5);
    struct audit *a;
    assert_int_equal(audit_open(path, &key, &a), 0);
    int64_t seq;
    char head[AUDIT_HASH_HEX + 1];
    audit_head(a, &seq, head);
    assert_int_equal(seq, 5);
    assert_string_equal(head, v.head);
    /* Refused input writes nothing. */
    assert_int_equal(audit_append(a, "x", "y", "z", "s", "[1]"), CORE_E_INVALID);
    assert_int_equal(audit_append(a, "x", "y", "z", "s", "{bad"), CORE_E_INVALID);
    audit_close(a);
    assert_int_equal(audit_verify_file(path, &key, &v), 0);
    assert_int_equal(v.entries, 5);
    /* Nothing of an entry is in clear; opened, the first entry's prev is all zeros and the
     * fifth line holds seq 5. */
    struct core_buf b;
    core_buf_init(&b);
    read_all(&b);
    /* (quoted names: base64 never holds '"' or '.', while a bare "ref" can occur in it) */
    assert_null(strstr(b.data, "test.action"));
    assert_null(strstr(b.data, "\"prev\""));
    assert_null(strstr(b.data, "ref\""));
    struct core_buf plain;
    core_buf_init(&plain);
    char prob[160];
    int64_t seq1;
    assert_int_equal(
        audit_line_open(&key, b.data, strcspn(b.data, "\n"), &seq1, &plain, prob, sizeof prob), 0);
    assert_int_equal(seq1, 1);
    assert_non_null(strstr(plain.data, "\"prev\":\"0000000000000000"));
    const char *l5 = b.data;
    for (int i = 0; i < 4; i++)
        l5 = strchr(l5, '\n') + 1;
    core_buf_reset(&plain);
    assert_int_equal(audit_line_open(&key, l5, strcspn(l5, "\n"), &seq1, &plain, prob, sizeof prob),
                     0);
    assert_int_equal(seq1, 5);
    assert_non_null(strstr(plain.data, "\"seq\":5,"));
    /* Another key opens nothing. */
    struct seal_key other = key;
    other.key[0] ^= 1;
    assert_int_equal(audit_verify_file(path, &other, &v), 0);
    assert_int_equal(v.bad_line, 1);
    assert_non_null(strstr(v.problem, "does not authenticate"));
    core_buf_dispose(&plain);
    core_buf_dispose(&b);
}

static void test_detects_edit_delete_reorder(void **state)
{
    (void)state;
    append_n(4);
    struct core_buf b;
    core_buf_init(&b);
    read_all(&b);
    char *orig = core_xstrndup(b.data, b.len);
    size_t n = b.len;
    char *lines[4];
    char *p = orig;
    for (int i = 0; i < 4; i++) {
        lines[i] = p;
        p = strchr(p, '\n') + 1;
    }
    struct audit_verify v;
    /* One byte of line 2's sealed text flipped: it does not open. */
    char *copy = core_xstrndup(orig, n);
    char *hit = copy + (lines[1] - orig) + 20;
    *hit = *hit == 'A' ? 'B' : 'A';
    write_all(copy, n);
    assert_int_equal(audit_verify_file(path, &key, &v), 0);
    assert_int_equal(v.bad_line, 2);
    assert_int_equal(v.entries, 1);
    assert_non_null(strstr(v.problem, "does not authenticate"));
    /* Line 2 moved to seq 3's place by editing its clear seq: it does not open either. */
    memcpy(copy, orig, n);
    copy[lines[1] - orig] = '3';
    write_all(copy, n);
    assert_int_equal(audit_verify_file(path, &key, &v), 0);
    assert_int_equal(v.bad_line, 2);
    /* Someone with the data key edits a digit of line 2's entry and seals it again: the hash
     * chain catches it. */
    struct core_buf plain, re;
    core_buf_init(&plain);
    core_buf_init(&re);
    char prob[160];
    int64_t seq;
    assert_int_equal(audit_line_open(&key, lines[1], (size_t)(lines[2] - lines[1] - 1), &seq,
                                     &plain, prob, sizeof prob),
                     0);
    char *digit = strstr(plain.data, "\"i\":1");
    assert_non_null(digit);
    digit[4] = '7';
    core_buf_append(&re, orig, (size_t)(lines[1] - orig));
    audit_line_seal(&key, 2, plain.data, plain.len, &re);
    core_buf_putc(&re, '\n');
    core_buf_append(&re, lines[2], n - (size_t)(lines[2] - orig));
    write_all(re.data, re.len);
    assert_int_equal(audit_verify_file(path, &key, &v), 0);
    assert_int_equal(v.bad_line, 2);
    assert_int_equal(v.entries, 1);
    assert_non_null(strstr(v.problem, "hash does not match"));
    core_buf_dispose(&plain);
    core_buf_dispose(&re);
    /* Line 3 deleted. */
    struct core_buf d;
    core_buf_init(&d);
    core_buf_append(&d, orig, (size_t)(lines[2] - orig));
    core_buf_append(&d, lines[3], n - (size_t)(lines[3] - orig));
    write_all(d.data, d.len);
    assert_int_equal(audit_verify_file(path, &key, &v), 0);
    assert_int_equal(v.bad_line, 3);
    assert_non_null(strstr(v.problem, "missing"));
    /* An open refuses a last entry that does not verify. */
    struct audit *a;
    memcpy(copy, orig, n);
    hit = copy + (lines[3] - orig) + 30;
    *hit = *hit == 'A' ? 'B' : 'A';
    write_all(copy, n);
    assert_int_equal(audit_open(path, &key, &a), CORE_E_CORRUPT);
    core_buf_dispose(&d);
    core_buf_dispose(&b);
    free(copy);
    free(orig);
}

static void test_torn_tail_is_cut(void **state)
{
    (void)state;
    append_n(2);
    struct core_buf b;
    core_buf_init(&b);
    read_all(&b);
    core_buf_puts(&b, "3 AAECAwQFBgcICQ"); /* a crash in the middle of a write */
    write_all(b.data, b.len);
    struct audit_verify v;
    assert_int_equal(audit_verify_file(path, &key, &v), 0);
    assert_int_equal(v.bad_line, 3);
    assert_true(v.torn_tail);
    append_n(1); /* open cuts the torn line and continues at seq 3 */
    assert_int_equal(audit_verify_file(path, &key, &v), 0);
    assert_int_equal(v.bad_line, 0);
    assert_int_equal(v.entries, 3);
    core_buf_dispose(&b);
}

static void test_unsealed_format_refused(void **state)
{
    (void)state;
    append_n(1);
    struct core_buf b;
    core_buf_init(&b);
    const char *old = "{\"seq\":1,\"ts\":1,\"actor\":\"a\",\"action\":\"b\",\"subject\":\"\","
                      "\"source\":\"\",\"detail\":{},\"prev\":\"0\",\"hash\":\"0\"}\n";
    write_all(old, strlen(old));
    struct audit *a;
    assert_int_equal(audit_open(path, &key, &a), CORE_E_INVALID);
    struct audit_verify v;
    assert_int_equal(audit_verify_file(path, &key, &v), 0);
    assert_int_equal(v.bad_line, 1);
    assert_non_null(strstr(v.problem, "not sealed"));
    core_buf_dispose(&b);
}

static void test_rotation_and_prune(void **state)
{
    (void)state;
    append_n(3);
    struct audit *a;
    assert_int_equal(audit_open(path, &key, &a), 0);
    bool rotated;
    assert_int_equal(audit_rotate(a, 3600 * 1000, &rotated), 0);
    assert_false(rotated); /* young */
    assert_int_equal(audit_rotate(a, 0, &rotated), 0);
    assert_true(rotated);
    assert_int_equal(audit_append(a, "cli", "after", "", "unit", NULL), 0);
    audit_close(a);
    char rp[200];
    snprintf(rp, sizeof rp, "%s/privacy/audit.%020d.log", dir, 1);
    assert_int_equal(access(rp, F_OK), 0);
    /* One chain over both files: 3 entries, the anchor (seq 4), then seq 5. */
    struct audit_verify v;
    assert_int_equal(audit_verify_file(path, &key, &v), 0);
    assert_int_equal(v.bad_line, 0);
    assert_int_equal(v.entries, 5);
    assert_int_equal(v.files, 2);
    assert_int_equal(v.first_seq, 1);
    char head[AUDIT_HASH_HEX + 1];
    memcpy(head, v.head, sizeof head);
    /* The rotated file's entries, tampered with, still break the chain. */
    struct core_buf b;
    core_buf_init(&b);
    assert_int_equal(core_read_file(rp, 1 << 20, &b), 0);
    struct core_buf cut;
    core_buf_init(&cut);
    const char *l2 = strchr(b.data, '\n') + 1;
    const char *l3 = strchr(l2, '\n') + 1;
    core_buf_append(&cut, b.data, (size_t)(l2 - b.data));
    core_buf_puts(&cut, l3); /* entry 2 removed */
    FILE *f = fopen(rp, "wb");
    fwrite(cut.data, 1, cut.len, f);
    fclose(f);
    assert_int_equal(audit_verify_file(path, &key, &v), 0);
    assert_int_equal(v.bad_line, 2);
    assert_non_null(strstr(v.file, "audit.0000"));
    f = fopen(rp, "wb");
    fwrite(b.data, 1, b.len, f);
    fclose(f);
    /* Pruning: a rotated file newer than before_ms stays; older goes; the current never. */
    assert_int_equal(audit_open(path, &key, &a), 0);
    int removed;
    assert_int_equal(audit_prune(a, 0, &removed), 0);
    assert_int_equal(removed, 0);
    assert_int_equal(audit_prune(a, core_now_ms() + 1000, &removed), 0);
    assert_int_equal(removed, 1);
    assert_int_not_equal(access(rp, F_OK), 0);
    assert_int_equal(access(path, F_OK), 0);
    audit_close(a);
    /* What remains verifies from the anchor, to the same head. */
    assert_int_equal(audit_verify_file(path, &key, &v), 0);
    assert_int_equal(v.bad_line, 0);
    assert_int_equal(v.first_seq, 4);
    assert_int_equal(v.entries, 2);
    assert_string_equal(v.head, head);
    core_buf_dispose(&cut);
    core_buf_dispose(&b);
}

static void test_crash_after_rotation_rename(void **state)
{
    (void)state;
    append_n(2);
    /* The rename happened, the anchor was not written: the next open writes it. */
    char rp[200];
    snprintf(rp, sizeof rp, "%s/privacy/audit.%020d.log", dir, 1);
    assert_int_equal(rename(path, rp), 0);
    append_n(1);
    struct audit_verify v;
    assert_int_equal(audit_verify_file(path, &key, &v), 0);
    assert_int_equal(v.bad_line, 0);
    assert_int_equal(v.entries, 4); /* 2, anchor, 1 */
    assert_int_equal(v.files, 2);
}

static void *appender(void *arg)
{
    struct audit *a = arg;
    for (int i = 0; i < 20; i++)
        assert_int_equal(audit_append(a, "t", "concurrent", "", "unit", NULL), 0);
    return NULL;
}

static void test_concurrent_appends(void **state)
{
    (void)state;
    struct audit *a;
    assert_int_equal(audit_open(path, &key, &a), 0);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, appender, a);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    audit_close(a);
    struct audit_verify v;
    assert_int_equal(audit_verify_file(path, &key, &v), 0);
    assert_int_equal(v.bad_line, 0);
    assert_int_equal(v.entries, 80);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_chain_and_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_detects_edit_delete_reorder, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_is_cut, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsealed_format_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation_and_prune, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_after_rotation_rename, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_appends, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
