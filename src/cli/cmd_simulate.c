/* `recstream simulate`: realistic synthetic behaviour against a running server (catalog,
 * sessions, recommendation impressions and clicks), so a new user sees the whole loop. The
 * model and the driver live in sim_model.c and sim_run.c. */
#include "cli/cli_int.h"
#include "cli/sim.h"

#include <pthread.h>
#include <signal.h>
#include <string.h>

#define SCFG ((struct sim_options *)cfg)

static int set_url(void *cfg, const char *v, char *err, size_t es)
{
    if (httpc_url_parse(v, &SCFG->url) < 0) {
        snprintf(err, es, "expected http://HOST:PORT[/PREFIX]");
        return CORE_E_INVALID;
    }
    return 0;
}

static int set_users(void *cfg, const char *v, char *err, size_t es)
{
    return cli__set_int(&SCFG->users, v, 1, 10000000, err, es);
}

static int set_items(void *cfg, const char *v, char *err, size_t es)
{
    return cli__set_int(&SCFG->items, v, 1, 10000000, err, es);
}

static int set_rate(void *cfg, const char *v, char *err, size_t es)
{
    return cli__set_int(&SCFG->rate, v, 1, 10000000, err, es);
}

static int set_seed(void *cfg, const char *v, char *err, size_t es)
{
    return cli__set_int(&SCFG->seed, v, 0, INT64_MAX, err, es);
}

static int set_workers(void *cfg, const char *v, char *err, size_t es)
{
    return cli__set_int(&SCFG->workers, v, 1, 64, err, es);
}

/* A bare number is seconds here (unlike cli__parse_duration_ms, where it is ms). */
static int set_duration(void *cfg, const char *v, char *err, size_t es)
{
    int64_t s;
    if (core_parse_i64(v, 0, 365LL * 24 * 3600, &s) == 0) {
        SCFG->duration_ms = s * 1000;
        return 0;
    }
    if (cli__parse_duration_ms(v, &SCFG->duration_ms) == 0)
        return 0;
    snprintf(err, es, "expected seconds or a duration such as 90s, 10m, 2h (0: until stopped)");
    return CORE_E_INVALID;
}

static int set_quiet(void *cfg, const char *v, char *err, size_t es)
{
    (void)err;
    (void)es;
    SCFG->quiet = strcmp(v, "false") != 0 && strcmp(v, "0") != 0;
    return 0;
}

static int set_api_key(void *cfg, const char *v, char *err, size_t es)
{
    return cli__set_str(SCFG->api_key, sizeof SCFG->api_key, v, err, es);
}

static const struct cli_opt simulate_opts[] = {
    {"url", "URL", "the server, e.g. http://127.0.0.1:8080 (required)", set_url},
    {"users", "N", "simulated users user-0001.. (default 500)", set_users},
    {"items", "M", "catalog items item-00001.. (default 2000)", set_items},
    {"rate", "EV_PER_S", "events per second (default 50)", set_rate},
    {"duration", "S", "seconds to run, or 90s, 10m...; 0 = until SIGINT/SIGTERM (default 0)",
     set_duration},
    {"seed", "N", "random seed: same seed, same behaviour (default 1)", set_seed},
    {"workers", "N", "connections/threads (default 1; 4 above 5000 ev/s)", set_workers},
    {"quiet", NULL, "no summary every 10 s (the final one is still printed)", set_quiet},
    {"api-key", "KEY",
     "API key sent as Authorization: Bearer (admin: simulate uploads the catalog; "
     "env RECSTREAM_API_KEY)",
     set_api_key},
};

int cli_cmd_simulate(int argc, char **argv)
{
    struct sim_options o = {.users = 500, .items = 2000, .rate = 50, .seed = 1};
    int rc = cli__parse("simulate", "--url URL [options]", simulate_opts,
                        sizeof simulate_opts / sizeof *simulate_opts, &o, argc, argv);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    if (!o.url.host[0]) {
        fprintf(stderr, "recstream simulate: --url is required (see --help)\n");
        return 2;
    }
    /* Blocked here, inherited by the worker threads, waited for by sim_run's main loop. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    return sim_run(&o);
}
