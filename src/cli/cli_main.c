/* `recstream <command>`: dispatch to one file per subcommand. */
#include "cli/cli.h"
#include "cli/cli_int.h"

#include <string.h>

static void usage(FILE *out)
{
    fprintf(
        out,
        "recstream %s: real-time behaviour events to personalised recommendations\n\n"
        "usage: recstream <command> [options]\n\n"
        "commands:\n"
        "  serve    run the collector (embedded log in --data DIR)\n"
        "  log      inspect the event log: tail, dump, check, stats\n"
        "  privacy  pseudonym ID: the pseudonym stored for a user id; scan ID: search the data\n"
        "           directory (sealed files opened) for a user's id and pseudonym;\n"
        "           rotate-pseudonym-key, retire-pseudonym-key: versions of the secret\n"
        "  schema   validate JSON documents against a JSON Schema (draft-07)\n"
        "  state    rebuild and dump the processor state offline\n"
        "  eval     evaluate the recommender on a dataset (prequential, leave-last-out)\n"
        "  simulate send realistic synthetic traffic to a running server\n"
        "  audit    verify or tail the privacy audit log (hash chain)\n"
        "  keys     API keys: create, list, revoke; the route -> role table\n"
        "  dev      developer tools: kafka-mock (a local Kafka mock cluster)\n\n"
        "recstream <command> --help shows a command's options; --version the "
        "version.\n",
        RECSTREAM_VERSION);
}

int cli_main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        printf("recstream %s\n", RECSTREAM_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "serve"))
        return cli_cmd_serve(argc - 1, argv + 1);
    if (!strcmp(cmd, "log"))
        return cli_cmd_log(argc - 1, argv + 1);
    if (!strcmp(cmd, "privacy"))
        return cli_cmd_privacy(argc - 1, argv + 1);
    if (!strcmp(cmd, "schema"))
        return cli_cmd_schema(argc - 1, argv + 1);
    if (!strcmp(cmd, "state"))
        return cli_cmd_state(argc - 1, argv + 1);
    if (!strcmp(cmd, "eval"))
        return cli_cmd_eval(argc - 1, argv + 1);
    if (!strcmp(cmd, "simulate"))
        return cli_cmd_simulate(argc - 1, argv + 1);
    if (!strcmp(cmd, "audit"))
        return cli_cmd_audit(argc - 1, argv + 1);
    if (!strcmp(cmd, "dev"))
        return cli_cmd_dev(argc - 1, argv + 1);
    if (!strcmp(cmd, "keys"))
        return cli_cmd_keys(argc - 1, argv + 1);
    fprintf(stderr, "recstream: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
