/* cli: the command line: `recstream <command> [options]`, one file per subcommand. */
#ifndef RECSTREAM_CLI_H
#define RECSTREAM_CLI_H

/* Runs the command line; returns the process exit status. */
int cli_main(int argc, char **argv);

#endif
