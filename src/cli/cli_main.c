/* `recstream <command>`: dispatch to one file per subcommand. */
#include "cli/cli.h"
#include "cli/cli_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

/*
 * Huge pages for the long-running commands. The recommender's reads are random over
 * megabytes (users' state, the model's lists, the catalog), and with 4 KiB pages most of
 * them also miss the TLB, which in a virtual machine can cost a nested page walk. glibc puts
 * its heap on transparent huge pages when the tunable glibc.malloc.hugetlb=1 is set, and
 * tunables are read only at process start: so serve, eval and dev re-execute themselves once
 * with it added to GLIBC_TUNABLES (same pid, same arguments; RECSTREAM_HUGE_PAGES=exec marks
 * the second start). Measured in BENCHMARKS.md, "Session 9". Off with
 * RECSTREAM_HUGE_PAGES=0, or when the kernel's THP mode is "never".
 */
static void huge_pages_reexec(char **argv)
{
    const char *marker = getenv("RECSTREAM_HUGE_PAGES");
    if (marker) { /* "0", or "exec": this is the second start */
        /* Executing /proc/self/exe named the process "exe" (the kernel takes the name from
         * the file executed): give it back the name it was started under, so ps, top, pgrep
         * and pkill see "recstream" (threads started later inherit it). */
        if (!strcmp(marker, "exec")) {
            const char *base = strrchr(argv[0], '/');
            char name[16]; /* the kernel keeps 15 bytes */
            snprintf(name, sizeof name, "%s", base ? base + 1 : argv[0]);
            prctl(PR_SET_NAME, name, 0, 0, 0);
        }
        return;
    }
    char mode[128] = "";
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    if (f) {
        if (!fgets(mode, sizeof mode, f))
            mode[0] = 0;
        fclose(f);
    }
    if (!mode[0] || strstr(mode, "[never]"))
        return;
    const char *t = getenv("GLIBC_TUNABLES");
    char old[1024], v[1024];
    snprintf(old, sizeof old, "%s", t ? t : "");
    int n = snprintf(v, sizeof v, "%s%sglibc.malloc.hugetlb=1", old, old[0] ? ":" : "");
    if (n < 0 || (size_t)n >= sizeof v || setenv("GLIBC_TUNABLES", v, 1) != 0 ||
        setenv("RECSTREAM_HUGE_PAGES", "exec", 1) != 0)
        return;
    execv("/proc/self/exe", argv);
    unsetenv("RECSTREAM_HUGE_PAGES"); /* exec failed: carry on with 4 KiB pages */
    if (t)
        setenv("GLIBC_TUNABLES", old, 1);
    else
        unsetenv("GLIBC_TUNABLES");
}

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
    if (!strcmp(cmd, "serve") || !strcmp(cmd, "eval") || !strcmp(cmd, "dev"))
        huge_pages_reexec(argv);
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
