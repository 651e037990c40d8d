/* Internals shared by the cli files: option tables that read flags, env and config files. */
#ifndef RECSTREAM_CLI_INT_H
#define RECSTREAM_CLI_INT_H

#include "core/core.h"
#include "privacy/epochkeys.h"
#include "privacy/userkeys.h"

#include <stdio.h>

/*
 * One option of a command. The same table serves `--name value` flags, RECSTREAM_NAME
 * environment variables (dashes become underscores) and `name = value` lines of a config
 * file. set() parses and stores the value into the command's config struct; it returns 0
 * or writes a reason into err and returns a negative code.
 */
struct cli_opt {
    const char *name;
    const char *metavar; /* NULL for boolean flags (no value) */
    const char *help;
    int (*set)(void *cfg, const char *value, char *err, size_t err_size);
};

/*
 * Applies defaults already in cfg, then the config file (--config / RECSTREAM_CONFIG), then
 * the environment, then argv (argv[0] is the subcommand). Returns 0, 1 when --help was
 * printed, or -1 after printing a clear error to stderr.
 */
int cli__parse(const char *cmd, const char *usage, const struct cli_opt *opts, size_t nopts,
               void *cfg, int argc, char **argv);

/* Prints a command's help from its table. */
void cli__help(FILE *out, const char *cmd, const char *usage, const struct cli_opt *opts,
               size_t nopts);

/* Parses durations such as "500ms", "10s", "30m", "24h", "7d" or plain milliseconds. */
int cli__parse_duration_ms(const char *s, int64_t *out);

/* Option setters' building blocks: copy a string value into a fixed buffer (error when it
 * does not fit), parse an integer in [min, max]. Both write a reason into err on failure. */
int cli__set_str(char *dst, size_t size, const char *v, char *err, size_t es);
int cli__set_int(int64_t *dst, const char *v, int64_t min, int64_t max, char *err, size_t es);

/* The data key, the user key store and the epoch key store (field retention) of a data
 * directory. */
struct cli_keys {
    struct seal_key data_key;
    struct userkeys *uk;
    struct epochkeys *ek;
};

/*
 * Loads the data key (key_path, or DATA/privacy/data.key when NULL or empty) and opens the
 * user key store DATA/privacy/userkeys (max_users > 0 overrides its bound) and the epoch key
 * store DATA/privacy/epochkeys (a missing one is empty; written only by a server). With create, a
 * missing key file and store are created, but only for a data directory without a log (a
 * sealed log whose data key or key store is missing is refused, for readers too: its records
 * could not be opened). Errors are logged. Returns 0 or a negative code.
 */
int cli__keys_open(const char *data, const char *key_path, bool create, int64_t max_users,
                   struct cli_keys *k);
/* Opens k->ek, the epoch key store of field retention (DATA/privacy/epochkeys; local to the
 * node even in Kafka mode), under k->data_key. */
int cli__epochkeys_open(const char *data, struct cli_keys *k);
/* The API key store of a server's data directory (DATA/privacy/apikeys.json), creating it with
 * an admin key (DATA/privacy/admin.key, 0600) on first start; with insecure_no_auth none (*out
 * NULL) and a loud warning naming what is exposed. */
struct apikey_store;
int cli__apikeys_open(const char *data, bool insecure_no_auth, const char *exposed,
                      struct apikey_store **out);
void cli__keys_close(struct cli_keys *k);

/* Takes the data directory's lock (DATA/LOCK, flock): one server per directory, and commands
 * that must not run beside one (rotating the pseudonymisation secret). *fd_out holds it until
 * closed. Returns 0, CORE_E_EXISTS when another process holds it, or -errno. */
int cli__lock_data_dir(const char *data, int *fd_out);

/* `recstream privacy scan` (cmd_privacy_scan.c): searches every file of data for the user's
 * raw id and pseudonym, opening sealed files with the data key (data_key path, "" = default).
 * With value (may be NULL), that text is searched for too, also in every log record the keys
 * still open, with its sealed field bundle merged back (field retention).
 * Returns the exit code: 0 nothing found, 1 found, 2 errors. */
int cli__privacy_scan(const char *data, const char *key_file, const char *data_key, const char *id,
                      bool anonymous, const char *value);

/* `recstream privacy rotate-pseudonym-key|retire-pseudonym-key` (cmd_privacy_keys.c); argv[0]
 * is the subcommand. Returns the exit code. */
int cli__privacy_key_cmd(int argc, char **argv);

int cli_cmd_serve(int argc, char **argv);
int cli_cmd_privacy(int argc, char **argv);
int cli_cmd_log(int argc, char **argv);
int cli_cmd_schema(int argc, char **argv);
int cli_cmd_state(int argc, char **argv);
int cli_cmd_eval(int argc, char **argv);
int cli_cmd_simulate(int argc, char **argv);
int cli_cmd_dev(int argc, char **argv);
int cli_cmd_audit(int argc, char **argv);
int cli_cmd_keys(int argc, char **argv);

#endif
