/* `recstream state dump`: rebuild the processor state of a data directory offline. */
#include "cli/cli_int.h"
#include "stream/stream.h"

#include <string.h>

struct state_cli_config {
    char data[1024];
    char data_key[1024];
};

#define SCFG ((struct state_cli_config *)cfg)

static int set_data(void *cfg, const char *v, char *err, size_t es)
{
    if (strlen(v) >= sizeof SCFG->data) {
        snprintf(err, es, "path too long");
        return CORE_E_INVALID;
    }
    memcpy(SCFG->data, v, strlen(v) + 1);
    return 0;
}

static int set_data_key(void *cfg, const char *v, char *err, size_t es)
{
    return cli__set_str(SCFG->data_key, sizeof SCFG->data_key, v, err, es);
}

static const struct cli_opt state_opts[] = {
    {"data", "DIR", "data directory (default ./data)", set_data},
    {"data-key", "FILE", "data key (default DIR/privacy/data.key)", set_data_key},
};

static const char *usage = "dump [options]";

/* Newest valid checkpoint + replay of the log to its end; one text dump per partition. */
static int cmd_dump(const struct state_cli_config *c)
{
    struct state_config sc;
    state_config_init(&sc);
    struct core_buf out;
    core_buf_init(&out);
    struct cli_keys keys;
    int rc = cli__keys_open(c->data, c->data_key, false, 0, &keys);
    if (rc < 0)
        return 1;
    rc = stream_dump_offline(c->data, keys.uk, &sc, &out);
    cli__keys_close(&keys);
    if (rc < 0) {
        fprintf(stderr, "recstream state: cannot rebuild state of %s: %s\n", c->data,
                core_strerror(rc));
    } else if (out.len && fwrite(out.data, 1, out.len, stdout) != out.len) {
        fprintf(stderr, "recstream state: write error\n");
        rc = CORE_E_FAILED;
    }
    core_buf_dispose(&out);
    return rc < 0 ? 1 : 0;
}

int cli_cmd_state(int argc, char **argv)
{
    size_t nopts = sizeof state_opts / sizeof *state_opts;
    if (argc < 2 || argv[1][0] == '-') {
        if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
            cli__help(stdout, "state", usage, state_opts, nopts);
            return 0;
        }
        fprintf(stderr, "usage: recstream state %s\n", usage);
        return 2;
    }
    const char *sub = argv[1];
    struct state_cli_config c;
    memset(&c, 0, sizeof c);
    snprintf(c.data, sizeof c.data, "./data");
    int rc = cli__parse("state", usage, state_opts, nopts, &c, argc - 1, argv + 1);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    if (!strcmp(sub, "dump"))
        return cmd_dump(&c);
    fprintf(stderr, "recstream state: unknown subcommand '%s' (dump)\n", sub);
    return 2;
}
