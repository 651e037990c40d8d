/* `recstream privacy pseudonym USERID`: prints the pseudonym the collector stores for a user id
 * (how operators and tests find a user's records without the raw id ever being stored). */
#include "cli/cli_int.h"
#include "privacy/privacy.h"

#include <stdlib.h>
#include <string.h>

struct privacy_config {
    char data[1024];
    char key_file[1100];
    char data_key[1100];
    bool anonymous;
    char value[1024]; /* scan: also search for this text, in log records too */
};

#define PCFG ((struct privacy_config *)cfg)

static int set_data(void *cfg, const char *v, char *err, size_t es)
{
    return cli__set_str(PCFG->data, sizeof PCFG->data, v, err, es);
}
static int set_key_file(void *cfg, const char *v, char *err, size_t es)
{
    return cli__set_str(PCFG->key_file, sizeof PCFG->key_file, v, err, es);
}
static int set_data_key(void *cfg, const char *v, char *err, size_t es)
{
    return cli__set_str(PCFG->data_key, sizeof PCFG->data_key, v, err, es);
}
static int set_anonymous(void *cfg, const char *v, char *err, size_t es)
{
    (void)v;
    (void)err;
    (void)es;
    PCFG->anonymous = true;
    return 0;
}

static int set_value(void *cfg, const char *v, char *err, size_t es)
{
    return cli__set_str(PCFG->value, sizeof PCFG->value, v, err, es);
}

static const struct cli_opt privacy_opts[] = {
    {"data", "DIR", "data directory (default ./data)", set_data},
    {"key-file", "PATH", "pseudonymisation secret (default DIR/privacy/pseudonym.key)",
     set_key_file},
    {"data-key", "PATH", "data key (scan; default DIR/privacy/data.key)", set_data_key},
    {"anonymous", NULL, "the id is an anonymousId, not a userId", set_anonymous},
    {"value", "TEXT",
     "scan: also search for TEXT, in the opened log records too (field bundles included)",
     set_value},
};

static const char *usage =
    "pseudonym|scan [options] ID | rotate-pseudonym-key|retire-pseudonym-key [options]";

/* Splits the one positional argument (ID) off argv; options keep their values. */
static int take_positional(int argc, char **argv, char **out_argv, int *out_argc, char **id)
{
    *out_argc = 0;
    *id = NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (i == 0 || !strncmp(a, "--", 2)) {
            out_argv[(*out_argc)++] = argv[i];
            bool takes =
                strchr(a, '=') == NULL && i > 0 &&
                (!strcmp(a, "--data") || !strcmp(a, "--key-file") || !strcmp(a, "--config") ||
                 !strcmp(a, "--data-key") || !strcmp(a, "--value"));
            if (takes && i + 1 < argc)
                out_argv[(*out_argc)++] = argv[++i];
            continue;
        }
        if (*id)
            return -1;
        *id = argv[i];
    }
    return *id ? 0 : -1;
}

int cli_cmd_privacy(int argc, char **argv)
{
    size_t nopts = sizeof privacy_opts / sizeof *privacy_opts;
    if (argc >= 2 &&
        (!strcmp(argv[1], "rotate-pseudonym-key") || !strcmp(argv[1], "retire-pseudonym-key")))
        return cli__privacy_key_cmd(argc - 1, argv + 1);
    if (argc < 2 || (strcmp(argv[1], "pseudonym") != 0 && strcmp(argv[1], "scan") != 0)) {
        if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
            cli__help(stdout, "privacy", usage, privacy_opts, nopts);
            return 0;
        }
        fprintf(stderr, "usage: recstream privacy %s\n", usage);
        return 2;
    }
    struct privacy_config c;
    memset(&c, 0, sizeof c);
    snprintf(c.data, sizeof c.data, "./data");
    char **rest = core_xcalloc((size_t)argc, sizeof *rest);
    int nrest = 0;
    char *id = NULL;
    int rc = take_positional(argc - 1, argv + 1, rest, &nrest, &id);
    if (rc == 0)
        rc = cli__parse("privacy", usage, privacy_opts, nopts, &c, nrest, rest);
    else
        fprintf(stderr, "usage: recstream privacy %s\n", usage);
    free(rest);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    if (!c.key_file[0])
        snprintf(c.key_file, sizeof c.key_file, "%s/privacy/pseudonym.key", c.data);
    FILE *f = fopen(c.key_file, "r");
    if (!f) {
        fprintf(stderr, "recstream privacy: no pseudonymisation key at %s\n", c.key_file);
        return 2;
    }
    fclose(f);
    if (!strcmp(argv[1], "scan"))
        return cli__privacy_scan(c.data, c.key_file, c.data_key, id, c.anonymous,
                                 c.value[0] ? c.value : NULL);
    struct privacy_key key;
    bool created = false;
    if (privacy_key_load_or_create(c.key_file, &key, &created) < 0)
        return 2;
    char out[33];
    if (c.anonymous)
        privacy_pseudonym_anon(&key, id, strlen(id), out);
    else
        privacy_pseudonym_user(&key, id, strlen(id), out);
    privacy_key_dispose(&key);
    printf("%s\n", out);
    return 0;
}
