/* `recstream schema validate|check`: JSON Schema draft-07 validation from the command line. */
#include "cli/cli_int.h"
#include "event/event.h"
#include "schema/schema.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FILE_BYTES (256u << 20)
#define MAX_LINE_BYTES (16u << 20)

static const char *usage_text =
    "usage: recstream schema validate SCHEMA.json [INSTANCE.json]\n"
    "       recstream schema check SCHEMA.json\n"
    "\n"
    "validate  checks INSTANCE.json (one JSON document) against the draft-07 schema, or\n"
    "          without it every line of stdin (NDJSON). Prints one verdict per document:\n"
    "          \"valid\" or \"invalid: <error>; <error>...\", each error being\n"
    "          \"<instance JSON pointer>: <message>\"; NDJSON verdicts start with the line\n"
    "          number (\"3: invalid: /price: ...\"). Blank lines are skipped.\n"
    "check     compiles SCHEMA.json and reports the first problem with its location.\n"
    "\n"
    "Remote $refs are not fetched. Exit status: 0 all valid (or the schema is fine), 1 some\n"
    "instance invalid, 2 bad schema, unreadable file or malformed JSON.\n";

/* Parses text as exactly one JSON value; on failure writes what went wrong and where (the
 * column only for a one-line document) into why. */
static cJSON *parse_json(const char *text, size_t len, bool one_line, char *why, size_t why_size)
{
    struct event_json_pos pos;
    cJSON *j = event_json_parse(text, len, &pos);
    if (j)
        return j;
    const char *what = pos.trailing ? "unexpected data after the JSON value" : "malformed JSON";
    if (one_line)
        snprintf(why, why_size, "%s at column %zu", what, pos.column);
    else
        snprintf(why, why_size, "%s at line %zu, column %zu", what, pos.line, pos.column);
    return NULL;
}

/* Reads and parses a whole file; prints the problem and returns NULL on failure. */
static cJSON *load_file(const char *path)
{
    struct core_buf buf;
    core_buf_init(&buf);
    int rc = core_read_file(path, MAX_FILE_BYTES, &buf);
    if (rc < 0) {
        fprintf(stderr, "recstream schema: cannot read %s: %s\n", path, core_strerror(rc));
        core_buf_dispose(&buf);
        return NULL;
    }
    char why[128];
    cJSON *j = parse_json(buf.data ? buf.data : "", buf.len, false, why, sizeof why);
    if (!j)
        fprintf(stderr, "recstream schema: %s: %s\n", path, why);
    core_buf_dispose(&buf);
    return j;
}

static struct schema *load_schema(const char *path)
{
    cJSON *doc = load_file(path);
    if (!doc)
        return NULL;
    /* The file's own URI is the base for its $id and relative $refs. */
    char real[PATH_MAX], base[PATH_MAX + 8];
    if (realpath(path, real))
        snprintf(base, sizeof base, "file://%s", real);
    else
        snprintf(base, sizeof base, "file:%s", path);
    struct schema *s = NULL;
    struct core_buf err;
    core_buf_init(&err);
    if (schema_compile(doc, base, &s, &err) < 0)
        fprintf(stderr, "recstream schema: %s: invalid schema: %s\n", path,
                err.data ? err.data : "");
    core_buf_dispose(&err);
    cJSON_Delete(doc);
    return s;
}

/* Validates one instance and prints its verdict after prefix. Returns 0 valid, 1 invalid. */
static int verdict(const struct schema *s, const cJSON *inst, const char *prefix,
                   struct core_buf *out)
{
    struct schema_errors errs;
    int rc = schema_validate(s, inst, &errs);
    core_buf_reset(out);
    core_buf_puts(out, prefix);
    if (rc == 0) {
        core_buf_puts(out, "valid\n");
    } else {
        core_buf_puts(out, "invalid: ");
        schema_errors_format(&errs, out);
        core_buf_putc(out, '\n');
    }
    fwrite(out->data, 1, out->len, stdout);
    return rc == 0 ? 0 : 1;
}

/*
 * Reads one line (without its newline) into line, at most MAX_LINE_BYTES; the rest of a
 * longer line is skipped and *too_long set. Returns false at the end of input.
 */
static bool read_line(FILE *in, struct core_buf *line, bool *too_long)
{
    char chunk[65536];
    core_buf_reset(line);
    *too_long = false;
    bool any = false;
    while (fgets(chunk, sizeof chunk, in)) {
        any = true;
        size_t n = strlen(chunk);
        bool nl = n > 0 && chunk[n - 1] == '\n';
        if (line->len + n > MAX_LINE_BYTES)
            *too_long = true;
        if (!*too_long)
            core_buf_append(line, chunk, n - nl);
        if (nl)
            break;
    }
    return any;
}

static int validate_stream(const struct schema *s, FILE *in)
{
    struct core_buf line, out;
    core_buf_init(&line);
    core_buf_init(&out);
    int worst = 0;
    bool too_long;
    for (size_t no = 1; read_line(in, &line, &too_long); no++) {
        char prefix[32], why[128];
        snprintf(prefix, sizeof prefix, "%zu: ", no);
        if (too_long) {
            printf("%serror: line longer than %u bytes\n", prefix, MAX_LINE_BYTES);
            worst = 2;
            continue;
        }
        if (line.len == 0 || strspn(line.data, " \t\r") == line.len)
            continue;
        cJSON *inst = parse_json(line.data, line.len, true, why, sizeof why);
        if (!inst) {
            printf("%serror: %s\n", prefix, why);
            worst = 2;
            continue;
        }
        int rc = verdict(s, inst, prefix, &out);
        if (rc > worst)
            worst = rc;
        cJSON_Delete(inst);
    }
    fflush(stdout);
    core_buf_dispose(&line);
    core_buf_dispose(&out);
    return worst;
}

static int cmd_validate(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: recstream schema validate SCHEMA.json [INSTANCE.json]\n");
        return 2;
    }
    struct schema *s = load_schema(argv[1]);
    if (!s)
        return 2;
    int rc;
    if (argc == 3) {
        cJSON *inst = load_file(argv[2]);
        if (inst) {
            struct core_buf out;
            core_buf_init(&out);
            rc = verdict(s, inst, "", &out);
            core_buf_dispose(&out);
            cJSON_Delete(inst);
        } else {
            rc = 2;
        }
    } else {
        rc = validate_stream(s, stdin);
    }
    schema_free(s);
    return rc;
}

static int cmd_check(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: recstream schema check SCHEMA.json\n");
        return 2;
    }
    struct schema *s = load_schema(argv[1]);
    if (!s)
        return 2;
    printf("%s: ok\n", argv[1]);
    schema_free(s);
    return 0;
}

int cli_cmd_schema(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage_text, stdout);
            return 0;
        }
    }
    if (argc < 2) {
        fputs(usage_text, stderr);
        return 2;
    }
    if (!strcmp(argv[1], "validate"))
        return cmd_validate(argc - 1, argv + 1);
    if (!strcmp(argv[1], "check"))
        return cmd_check(argc - 1, argv + 1);
    fprintf(stderr, "recstream schema: unknown subcommand '%s' (validate, check)\n", argv[1]);
    return 2;
}
