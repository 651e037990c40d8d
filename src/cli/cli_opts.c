/* Option parsing shared by every subcommand: flags > environment > config file > defaults. */
#include "cli/cli_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

void cli__help(FILE *out, const char *cmd, const char *usage, const struct cli_opt *opts,
               size_t nopts)
{
    fprintf(out,
            "usage: recstream %s %s\n\n%s options (also RECSTREAM_<NAME> environment "
            "variables and `name = value` lines in --config FILE):\n",
            cmd, usage, cmd);
    for (size_t i = 0; i < nopts; i++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", opts[i].name, opts[i].metavar ? " " : "",
                 opts[i].metavar ? opts[i].metavar : "");
        fprintf(out, "  %-28s %s\n", left, opts[i].help);
    }
    fprintf(out, "  %-28s %s\n  %-28s %s\n", "--config FILE", "read options from FILE",
            "-h, --help", "show this help");
}

int cli__set_str(char *dst, size_t size, const char *v, char *err, size_t es)
{
    size_t n = strlen(v);
    if (n >= size) {
        snprintf(err, es, "longer than %zu characters", size - 1);
        return CORE_E_INVALID;
    }
    memcpy(dst, v, n + 1);
    return 0;
}

int cli__set_int(int64_t *dst, const char *v, int64_t min, int64_t max, char *err, size_t es)
{
    if (core_parse_i64(v, min, max, dst)) {
        snprintf(err, es, "expected an integer in %lld..%lld", (long long)min, (long long)max);
        return CORE_E_INVALID;
    }
    return 0;
}

int cli__parse_duration_ms(const char *s, int64_t *out)
{
    static const struct core_unit units[] = {
        {"", 1},          {"ms", 1},          {"s", 1000},
        {"m", 60 * 1000}, {"h", 3600 * 1000}, {"d", 24LL * 3600 * 1000},
        {NULL, 0},
    };
    return core_parse_scaled(s, units, out);
}

static const struct cli_opt *find_opt(const struct cli_opt *opts, size_t nopts, const char *name,
                                      size_t len)
{
    for (size_t i = 0; i < nopts; i++) {
        if (strlen(opts[i].name) == len && strncmp(opts[i].name, name, len) == 0)
            return &opts[i];
    }
    return NULL;
}

static int apply(const char *cmd, const char *source, const struct cli_opt *o, void *cfg,
                 const char *value)
{
    char err[256] = "";
    if (o->set(cfg, value ? value : "true", err, sizeof err) < 0) {
        fprintf(stderr, "recstream %s: %s: invalid value '%s' for --%s%s%s\n", cmd, source,
                value ? value : "", o->name, err[0] ? ": " : "", err);
        return -1;
    }
    return 0;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

static int load_config_file(const char *cmd, const char *path, const struct cli_opt *opts,
                            size_t nopts, void *cfg)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "recstream %s: cannot read config file %s: %s\n", cmd, path,
                core_strerror(-errno));
        return -1;
    }
    char line[1024];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        char *s = trim(line);
        if (!*s || *s == '#')
            continue;
        size_t klen = strcspn(s, " \t=");
        char *v = s + klen;
        while (*v == ' ' || *v == '\t' || *v == '=')
            v++;
        const struct cli_opt *o = find_opt(opts, nopts, s, klen);
        char where[1100];
        snprintf(where, sizeof where, "%s:%d", path, lineno);
        if (!o) {
            fprintf(stderr, "recstream %s: %s: unknown option '%.*s'\n", cmd, where, (int)klen, s);
            rc = -1;
        } else {
            rc = apply(cmd, where, o, cfg, *v ? v : NULL);
        }
    }
    fclose(f);
    return rc;
}

static int load_env(const char *cmd, const struct cli_opt *opts, size_t nopts, void *cfg)
{
    for (size_t i = 0; i < nopts; i++) {
        char env[96] = "RECSTREAM_";
        size_t k = strlen(env);
        for (const char *p = opts[i].name; *p && k < sizeof env - 1; p++)
            env[k++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
        env[k] = '\0';
        const char *v = getenv(env);
        if (v && apply(cmd, env, &opts[i], cfg, v) < 0)
            return -1;
    }
    return 0;
}

int cli__parse(const char *cmd, const char *usage, const struct cli_opt *opts, size_t nopts,
               void *cfg, int argc, char **argv)
{
    const char *config = getenv("RECSTREAM_CONFIG");
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            cli__help(stdout, cmd, usage, opts, nopts);
            return 1;
        }
        if (!strcmp(argv[i], "--config") && i + 1 < argc)
            config = argv[i + 1];
        else if (!strncmp(argv[i], "--config=", 9))
            config = argv[i] + 9;
    }
    if (config && load_config_file(cmd, config, opts, nopts, cfg) < 0)
        return -1;
    if (load_env(cmd, opts, nopts, cfg) < 0)
        return -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0) {
            fprintf(stderr, "recstream %s: unexpected argument '%s' (see --help)\n", cmd, a);
            return -1;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        if (len == 6 && !strncmp(name, "config", 6)) {
            if (!eq)
                i++;
            continue;
        }
        const struct cli_opt *o = find_opt(opts, nopts, name, len);
        if (!o) {
            fprintf(stderr, "recstream %s: unknown option '%.*s' (see --help)\n", cmd, (int)len + 2,
                    a);
            return -1;
        }
        const char *value = NULL;
        if (o->metavar) {
            if (eq) {
                value = eq + 1;
            } else if (i + 1 < argc) {
                value = argv[++i];
            } else {
                fprintf(stderr, "recstream %s: --%s needs a value %s\n", cmd, o->name, o->metavar);
                return -1;
            }
        } else if (eq) {
            value = eq + 1;
        }
        if (apply(cmd, "command line", o, cfg, value) < 0)
            return -1;
    }
    return 0;
}
