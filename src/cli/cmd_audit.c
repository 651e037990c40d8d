/*
 * `recstream audit verify --data DIR [--data-key FILE]`: opens every sealed line of
 * DIR/privacy/audit.log, walks the hash chain and reports OK with the entry count and head
 * hash (exit 0), or the first broken entry (line number and what is wrong; exit 1).
 * `recstream audit tail --data DIR [--lines N]` prints the last N entries (default 10),
 * decrypted, as the JSON the chain covers.
 */
#include "cli/cli_int.h"
#include "privacy/audit.h"

#include <stdlib.h>
#include <string.h>

struct audit_cli {
    char data[1024];
    char data_key[1024];
    int64_t lines;
    struct seal_key key;
};

#define CFG ((struct audit_cli *)cfg)

static int set_data(void *cfg, const char *v, char *err, size_t es)
{
    return cli__set_str(CFG->data, sizeof CFG->data, v, err, es);
}

static int set_data_key(void *cfg, const char *v, char *err, size_t es)
{
    return cli__set_str(CFG->data_key, sizeof CFG->data_key, v, err, es);
}

static int set_lines(void *cfg, const char *v, char *err, size_t es)
{
    return cli__set_int(&CFG->lines, v, 1, 1000000, err, es);
}

static const struct cli_opt audit_opts[] = {
    {"data", "DIR", "data directory (default ./data)", set_data},
    {"data-key", "FILE", "data key (default DIR/privacy/data.key)", set_data_key},
    {"lines", "N", "tail: entries to print (default 10)", set_lines},
};

static void audit_path(const struct audit_cli *c, char *out, size_t size)
{
    snprintf(out, size, "%s/privacy/audit.log", c->data);
}

static int verify(const struct audit_cli *c)
{
    char path[1100];
    audit_path(c, path, sizeof path);
    struct audit_verify v;
    int rc = audit_verify_file(path, &c->key, &v);
    if (rc < 0) {
        fprintf(stderr, "recstream audit: cannot read %s: %s\n", path, core_strerror(rc));
        return 2;
    }
    if (v.bad_line) {
        printf("BROKEN %s line %lld: %s\n", v.file, (long long)v.bad_line, v.problem);
        printf("entries before it verify: %lld (head %s)\n", (long long)v.entries, v.head);
        return 1;
    }
    if (v.first_seq > 1)
        printf("OK %s: %lld entries from seq %lld in %d files, head %s (older files were "
               "deleted by retention; the chain starts at the anchor prev %s)\n",
               path, (long long)v.entries, (long long)v.first_seq, v.files, v.head, v.anchor);
    else
        printf("OK %s: %lld entries, head %s\n", path, (long long)v.entries, v.head);
    return 0;
}

static int tail(const struct audit_cli *c)
{
    char path[1100];
    audit_path(c, path, sizeof path);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "recstream audit: cannot read %s\n", path);
        return 2;
    }
    /* A ring of the last N line offsets: one pass, bounded memory. */
    size_t n = (size_t)c->lines, count = 0;
    long *offs = core_xcalloc(n, sizeof *offs);
    char *line = core_xmalloc(AUDIT_STORED_LINE_MAX + 2);
    long pos = 0;
    while (fgets(line, AUDIT_STORED_LINE_MAX + 2, f)) {
        size_t len = strlen(line);
        if (len && line[len - 1] == '\n')
            offs[count++ % n] = pos;
        pos += (long)len;
    }
    size_t first = count > n ? count - n : 0;
    int rc = 0;
    struct core_buf plain;
    core_buf_init(&plain);
    for (size_t i = first; i < count && rc == 0; i++) {
        if (fseek(f, offs[i % n], SEEK_SET) != 0 || !fgets(line, AUDIT_STORED_LINE_MAX + 2, f))
            continue;
        size_t len = strcspn(line, "\n");
        char prob[160];
        int64_t seq;
        core_buf_reset(&plain);
        if (audit_line_open(&c->key, line, len, &seq, &plain, prob, sizeof prob) < 0) {
            fprintf(stderr, "recstream audit: %s: %s (run `recstream audit verify`)\n", path, prob);
            rc = 1;
            break;
        }
        printf("%s\n", plain.data);
    }
    core_buf_dispose(&plain);
    free(line);
    free(offs);
    fclose(f);
    return rc;
}

int cli_cmd_audit(int argc, char **argv)
{
    const char *usage = "verify|tail [options]";
    if (argc < 2 || (strcmp(argv[1], "verify") && strcmp(argv[1], "tail"))) {
        if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
            cli__help(stdout, "audit", usage, audit_opts, sizeof audit_opts / sizeof *audit_opts);
            return 0;
        }
        fprintf(stderr, "usage: recstream audit %s\n", usage);
        return 2;
    }
    struct audit_cli c;
    memset(&c, 0, sizeof c);
    snprintf(c.data, sizeof c.data, "./data");
    c.lines = 10;
    int rc = cli__parse("audit", usage, audit_opts, sizeof audit_opts / sizeof *audit_opts, &c,
                        argc - 1, argv + 1);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    struct cli_keys keys;
    if (cli__keys_open(c.data, c.data_key, false, 0, &keys) < 0)
        return 2;
    c.key = keys.data_key;
    rc = !strcmp(argv[1], "verify") ? verify(&c) : tail(&c);
    cli__keys_close(&keys);
    seal_key_dispose(&c.key);
    return rc;
}
