/*
 * `recstream keys create|list|revoke|routes`: API keys in DATA/privacy/apikeys.json. Works
 * while the server runs: writers take the key file's lock, write atomically, and the server
 * re-reads the file within a second.
 */
#include "api/api.h"
#include "cli/cli_int.h"
#include "privacy/apikey.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

struct keys_config {
    char data[1024];
    char role[16];
    char name[APIKEY_NAME_MAX + 1];
    char origins[APIKEY_ORIGINS_MAX * (APIKEY_ORIGIN_MAX + 1)];
    double rate, burst;
    const char *id; /* revoke: the positional argument */
};

#define KCFG ((struct keys_config *)cfg)

static int set_data(void *cfg, const char *v, char *err, size_t es)
{
    return cli__set_str(KCFG->data, sizeof KCFG->data, v, err, es);
}

static int set_role(void *cfg, const char *v, char *err, size_t es)
{
    enum apikey_role r;
    if (apikey_role_parse(v, &r)) {
        snprintf(err, es, "expected ingest, read or admin");
        return CORE_E_INVALID;
    }
    return cli__set_str(KCFG->role, sizeof KCFG->role, v, err, es);
}

static int set_name(void *cfg, const char *v, char *err, size_t es)
{
    return cli__set_str(KCFG->name, sizeof KCFG->name, v, err, es);
}

static int set_origins(void *cfg, const char *v, char *err, size_t es)
{
    return cli__set_str(KCFG->origins, sizeof KCFG->origins, v, err, es);
}

static int set_number(double *dst, const char *v, char *err, size_t es)
{
    char *end;
    double x = strtod(v, &end);
    if (end == v || *end || !(x >= 0 && x <= 1e9)) {
        snprintf(err, es, "expected a number 0..1e9");
        return CORE_E_INVALID;
    }
    *dst = x;
    return 0;
}

static int set_rate(void *cfg, const char *v, char *err, size_t es)
{
    return set_number(&KCFG->rate, v, err, es);
}

static int set_burst(void *cfg, const char *v, char *err, size_t es)
{
    return set_number(&KCFG->burst, v, err, es);
}

static const struct cli_opt keys_opts[] = {
    {"data", "DIR", "data directory (default ./data)", set_data},
    {"role", "ROLE", "create: ingest | read | admin (required)", set_role},
    {"name", "NAME", "create: a label for people (at most 64 characters)", set_name},
    {"origins", "O1,O2", "create: allowed Origin headers, e.g. https://shop.example (default: any)",
     set_origins},
    {"rate", "R", "create: requests per second allowed (default 0 = unlimited)", set_rate},
    {"burst", "B", "create: requests allowed at once above the rate (default: max(1, rate))",
     set_burst},
};
#define NOPTS (sizeof keys_opts / sizeof *keys_opts)

static const char *usage_text =
    "create --role ingest|read|admin [--name N] [--origins https://a,https://b] [--rate R "
    "--burst B] | list | revoke ID | routes  [--data DIR]";

static void key_path(const struct keys_config *c, char *out, size_t size)
{
    snprintf(out, size, "%s/privacy/apikeys.json", c->data);
}

/* Loads the key file under its lock; a missing file is an empty list when create is set. */
static int load_locked(const struct keys_config *c, bool create, struct apikey_list *l, int *fd)
{
    char path[1100], dir[1100];
    key_path(c, path, sizeof path);
    snprintf(dir, sizeof dir, "%s/privacy", c->data);
    int rc = create ? core_mkdirs(dir, 0700) : 0;
    if (rc == 0)
        rc = apikey_file_lock(path, fd);
    if (rc < 0) {
        fprintf(stderr, "recstream keys: cannot lock %s: %s\n", path, core_strerror(rc));
        return rc;
    }
    char err[512];
    rc = apikey_list_load(path, l, err, sizeof err);
    if (rc == -ENOENT && create)
        return 0;
    if (rc < 0) {
        fprintf(stderr, "recstream keys: %s: %s%s\n", path, err,
                rc == -ENOENT ? " (start the server once, or create a key)" : "");
        apikey_file_unlock(*fd);
    }
    return rc;
}

static int save_unlock(const struct keys_config *c, struct apikey_list *l, int fd)
{
    char path[1100];
    key_path(c, path, sizeof path);
    int rc = apikey_list_save(path, l);
    apikey_file_unlock(fd);
    if (rc < 0)
        fprintf(stderr, "recstream keys: cannot write %s: %s\n", path, core_strerror(rc));
    return rc;
}

static int cmd_create(const struct keys_config *c)
{
    enum apikey_role role;
    if (!c->role[0] || apikey_role_parse(c->role, &role)) {
        fprintf(stderr, "recstream keys create: --role ingest|read|admin is required\n");
        return 2;
    }
    struct apikey_list l;
    apikey_list_init(&l);
    int fd = -1;
    if (load_locked(c, true, &l, &fd) < 0)
        return 1;
    char key[APIKEY_TEXT_LEN + 1], err[512];
    int rc = apikey_list_add(&l, role, c->name, c->origins[0] ? c->origins : NULL, c->rate,
                             c->burst, key, err, sizeof err);
    if (rc < 0) {
        apikey_file_unlock(fd);
        fprintf(stderr, "recstream keys create: %s\n", err);
        apikey_list_dispose(&l);
        return 2;
    }
    rc = save_unlock(c, &l, fd);
    if (rc == 0) {
        /* The only time the secret is shown: the file keeps its hash. */
        struct core_buf out;
        core_buf_init(&out);
        apikey_json(&l.keys[l.n - 1], &out);
        out.len--;
        core_buf_printf(&out, ",\"key\":\"%s\"}\n", key);
        fwrite(out.data, 1, out.len, stdout);
        sodium_memzero(out.data, out.cap);
        core_buf_dispose(&out);
    }
    sodium_memzero(key, sizeof key);
    apikey_list_dispose(&l);
    return rc < 0 ? 1 : 0;
}

static int cmd_list(const struct keys_config *c)
{
    struct apikey_list l;
    apikey_list_init(&l);
    char path[1100], err[512];
    key_path(c, path, sizeof path);
    int rc = apikey_list_load(path, &l, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "recstream keys list: %s: %s%s\n", path, err,
                rc == -ENOENT ? " (start the server once, or create a key)" : "");
        return 1;
    }
    struct core_buf out;
    core_buf_init(&out);
    apikey_list_json(&l, &out);
    core_buf_putc(&out, '\n');
    fwrite(out.data, 1, out.len, stdout);
    core_buf_dispose(&out);
    apikey_list_dispose(&l);
    return 0;
}

static int cmd_revoke(const struct keys_config *c)
{
    if (!c->id) {
        fprintf(stderr, "recstream keys revoke: give the key id (see recstream keys list)\n");
        return 2;
    }
    struct apikey_list l;
    apikey_list_init(&l);
    int fd = -1;
    if (load_locked(c, false, &l, &fd) < 0)
        return 1;
    int rc = apikey_list_revoke(&l, c->id, core_now_ms());
    if (rc == CORE_E_NOTFOUND || rc == CORE_E_EXISTS) {
        apikey_file_unlock(fd);
        fprintf(stderr, "recstream keys revoke: key %s %s\n", c->id,
                rc == CORE_E_NOTFOUND ? "not found" : "is already revoked");
        apikey_list_dispose(&l);
        return 1;
    }
    rc = save_unlock(c, &l, fd);
    if (rc == 0)
        printf("{\"id\":\"%s\",\"revoked\":true}\n", c->id);
    apikey_list_dispose(&l);
    return rc < 0 ? 1 : 0;
}

int cli_cmd_keys(int argc, char **argv)
{
    struct keys_config c;
    memset(&c, 0, sizeof c);
    snprintf(c.data, sizeof c.data, "./data");
    if (argc < 2 || argv[1][0] == '-') {
        if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
            cli__help(stdout, "keys", usage_text, keys_opts, NOPTS);
            return 0;
        }
        fprintf(stderr, "usage: recstream keys %s\n", usage_text);
        return 2;
    }
    const char *sub = argv[1];
    /* The positional ID of revoke: every argument that is neither an option nor its value. */
    char **args = core_xcalloc((size_t)argc, sizeof *args);
    int nargs = 0;
    args[nargs++] = argv[1];
    for (int i = 2; i < argc; i++) {
        if (strncmp(argv[i], "--", 2) != 0) {
            if (c.id) {
                fprintf(stderr, "recstream keys: unexpected argument '%s'\n", argv[i]);
                free(args);
                return 2;
            }
            c.id = argv[i];
            continue;
        }
        args[nargs++] = argv[i];
        bool has_value = false;
        for (size_t k = 0; k < NOPTS; k++) {
            if (!strcmp(argv[i] + 2, keys_opts[k].name) && keys_opts[k].metavar)
                has_value = true;
        }
        if ((has_value || !strcmp(argv[i], "--config")) && i + 1 < argc)
            args[nargs++] = argv[++i];
    }
    int rc = cli__parse("keys", usage_text, keys_opts, NOPTS, &c, nargs, args);
    free(args);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    if (sodium_init() < 0) {
        fprintf(stderr, "recstream keys: libsodium failed to initialise\n");
        return 1;
    }
    if (c.id && strcmp(sub, "revoke")) {
        fprintf(stderr, "recstream keys %s: unexpected argument '%s'\n", sub, c.id);
        return 2;
    }
    if (!strcmp(sub, "create"))
        return cmd_create(&c);
    if (!strcmp(sub, "list"))
        return cmd_list(&c);
    if (!strcmp(sub, "revoke"))
        return cmd_revoke(&c);
    if (!strcmp(sub, "routes")) {
        struct core_buf out;
        core_buf_init(&out);
        api_auth_routes_json(&out);
        core_buf_putc(&out, '\n');
        fwrite(out.data, 1, out.len, stdout);
        core_buf_dispose(&out);
        return 0;
    }
    fprintf(stderr, "recstream keys: unknown subcommand '%s'; usage: recstream keys %s\n", sub,
            usage_text);
    return 2;
}
