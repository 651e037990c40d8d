/*
 * `recstream privacy rotate-pseudonym-key|retire-pseudonym-key --data DIR`: versions of the
 * pseudonymisation secret (privacy.h; procedure in docs/PRIVACY.md, "Identity"). Both rewrite
 * the key file atomically and write an audit entry ("pseudonym.rotate" / "pseudonym.retire",
 * actor "cli"). They refuse while a server holds the data directory's lock: a running server
 * uses the versions it loaded at start until it is restarted, and the audit log has one
 * writer.
 */
#include "cli/cli_int.h"
#include "privacy/audit.h"
#include "privacy/privacy.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define GRACE_DEFAULT_MS (30LL * 24 * 3600 * 1000)

struct key_config {
    char data[1024];
    char key_file[1100];
    char data_key[1100];
    int64_t grace_ms;
};

#define KCFG ((struct key_config *)cfg)

static int set_data(void *cfg, const char *v, char *err, size_t es)
{
    return cli__set_str(KCFG->data, sizeof KCFG->data, v, err, es);
}
static int set_key_file(void *cfg, const char *v, char *err, size_t es)
{
    return cli__set_str(KCFG->key_file, sizeof KCFG->key_file, v, err, es);
}
static int set_data_key(void *cfg, const char *v, char *err, size_t es)
{
    return cli__set_str(KCFG->data_key, sizeof KCFG->data_key, v, err, es);
}
static int set_grace(void *cfg, const char *v, char *err, size_t es)
{
    if (cli__parse_duration_ms(v, &KCFG->grace_ms) < 0 || KCFG->grace_ms < 0) {
        snprintf(err, es, "expected a duration such as 30d or 12h");
        return CORE_E_INVALID;
    }
    return 0;
}

static const struct cli_opt key_opts[] = {
    {"data", "DIR", "data directory (default ./data)", set_data},
    {"key-file", "PATH", "pseudonymisation secret (default DIR/privacy/pseudonym.key)",
     set_key_file},
    {"data-key", "FILE", "data key, for the audit entry (default DIR/privacy/data.key)",
     set_data_key},
    {"grace", "DURATION",
     "retire: how long the next version must have been in use first (default 30d)", set_grace},
};

static const char *usage =
    "rotate-pseudonym-key|retire-pseudonym-key [--data DIR] [--data-key FILE] [--grace D]";

/* Runs the rotation or retirement; returns 0 with the version in *v, or prints why not. */
static int change(const struct key_config *c, bool rotate, uint32_t *v)
{
    int rc = rotate ? privacy_keyring_rotate(c->key_file, core_now_ms(), v)
                    : privacy_keyring_retire(c->key_file, c->grace_ms, core_now_ms(), v);
    if (rc == 0)
        return 0;
    const char *why = core_strerror(rc);
    if (rc == CORE_E_FULL)
        why = "the file holds the most versions allowed; retire one first";
    else if (rc == CORE_E_NOTFOUND)
        why = rotate ? "no key file (start the server once first)" : "only one version left";
    else if (rc == CORE_E_TIMEOUT)
        why = "the grace period has not passed yet (see --grace)";
    fprintf(stderr, "recstream privacy %s: %s: %s\n",
            rotate ? "rotate-pseudonym-key" : "retire-pseudonym-key", c->key_file, why);
    return rc;
}

int cli__privacy_key_cmd(int argc, char **argv)
{
    struct key_config c;
    memset(&c, 0, sizeof c);
    snprintf(c.data, sizeof c.data, "./data");
    c.grace_ms = GRACE_DEFAULT_MS;
    int rc =
        cli__parse("privacy", usage, key_opts, sizeof key_opts / sizeof *key_opts, &c, argc, argv);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    if (!c.key_file[0])
        snprintf(c.key_file, sizeof c.key_file, "%s/privacy/pseudonym.key", c.data);
    bool rotate = !strcmp(argv[0], "rotate-pseudonym-key");
    /* A running server would not use the change before its restart, and its audit log must
     * have one writer: refuse beside it. */
    int lock_fd = -1;
    rc = cli__lock_data_dir(c.data, &lock_fd);
    if (rc < 0) {
        fprintf(stderr, "recstream privacy %s: %s\n", argv[0],
                rc == CORE_E_EXISTS ? "a server is running on this data directory; stop it first"
                                    : core_strerror(rc));
        return 2;
    }
    struct cli_keys keys;
    struct audit *audit = NULL;
    char path[1100];
    snprintf(path, sizeof path, "%s/privacy/audit.log", c.data);
    bool keys_open = false;
    rc = cli__keys_open(c.data, c.data_key, false, 0, &keys);
    if (rc == 0) {
        keys_open = true;
        rc = audit_open(path, &keys.data_key, &audit);
    }
    if (rc < 0) {
        fprintf(stderr,
                "recstream privacy %s: cannot open the audit log with the data key "
                "(--data-key?)\n",
                argv[0]);
        goto out;
    }
    uint32_t v = 0;
    rc = change(&c, rotate, &v);
    if (rc < 0)
        goto out;
    char detail[64];
    snprintf(detail, sizeof detail, "{\"version\":%" PRIu32 "}", v);
    int arc = audit_append(audit, "cli", rotate ? "pseudonym.rotate" : "pseudonym.retire", NULL,
                           "cli", detail);
    if (arc < 0)
        fprintf(stderr, "recstream privacy %s: done, but not audited (%s)\n", argv[0],
                core_strerror(arc));
    printf("pseudonymisation secret version %" PRIu32 " %s %s; restart the server to %s\n", v,
           rotate ? "added to" : "retired from", c.key_file,
           rotate ? "use it (older versions kept)" : "stop using it");
out:
    audit_close(audit);
    if (keys_open)
        cli__keys_close(&keys);
    close(lock_fd);
    return rc < 0 ? 2 : 0;
}
