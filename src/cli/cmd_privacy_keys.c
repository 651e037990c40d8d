/*
 * `recstream privacy rotate-pseudonym-key|retire-pseudonym-key --data DIR`: versions of the
 * pseudonymisation secret (privacy.h; procedure in docs/PRIVACY.md, "Identity"). Both rewrite
 * the key file atomically and are meant for a stopped server: a running server keeps the
 * versions it loaded at start until it is restarted.
 */
#include "cli/cli_int.h"
#include "privacy/privacy.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define GRACE_DEFAULT_MS (30LL * 24 * 3600 * 1000)

struct key_config {
    char data[1024];
    char key_file[1100];
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
    {"grace", "DURATION",
     "retire: how long the next version must have been in use first (default 30d)", set_grace},
};

static const char *usage = "rotate-pseudonym-key|retire-pseudonym-key [--data DIR] [--grace D]";

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
    uint32_t v = 0;
    if (!strcmp(argv[0], "rotate-pseudonym-key")) {
        rc = privacy_keyring_rotate(c.key_file, core_now_ms(), &v);
        if (rc == 0) {
            printf("pseudonymisation secret version %" PRIu32 " added to %s (older versions kept);"
                   " restart the server to use it\n",
                   v, c.key_file);
            return 0;
        }
        fprintf(stderr, "recstream privacy rotate-pseudonym-key: %s: %s\n", c.key_file,
                rc == CORE_E_FULL       ? "the file holds the most versions allowed; retire one"
                : rc == CORE_E_NOTFOUND ? "no key file (start the server once first)"
                                        : core_strerror(rc));
        return 2;
    }
    rc = privacy_keyring_retire(c.key_file, c.grace_ms, core_now_ms(), &v);
    if (rc == 0) {
        printf("pseudonymisation secret version %" PRIu32 " retired from %s; restart the server "
               "to stop using it\n",
               v, c.key_file);
        return 0;
    }
    fprintf(stderr, "recstream privacy retire-pseudonym-key: %s: %s\n", c.key_file,
            rc == CORE_E_TIMEOUT    ? "the grace period has not passed yet (see --grace)"
            : rc == CORE_E_NOTFOUND ? "only one version left (or no key file)"
                                    : core_strerror(rc));
    return 2;
}
