/*
 * Opening a registry: every <dir>/<name>/<M-R-A>.json is read, parsed and compiled before
 * the registry is handed out. A version that fails to load fails the whole open: serving
 * with a schema silently missing would reject (or worse, accept) the wrong events.
 */
#include "schema/registry_int.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static bool ends_with(const char *s, size_t n, const char *suffix, size_t *stem)
{
    size_t k = strlen(suffix);
    if (n < k || memcmp(s + n - k, suffix, k) != 0)
        return false;
    *stem = n - k;
    return true;
}

static int version_order(const void *a, const void *b)
{
    return schema_version_cmp(a, b);
}

static void log_skip(const char *path, const char *why)
{
    struct core_buf m;
    core_buf_init(&m);
    core_buf_printf(&m, "schema registry: skipping %s: %s", path, why);
    LOG_WARN(m.data, NULL);
    core_buf_dispose(&m);
}

/* Reads, parses and compiles one version file; on failure appends the reason to why. */
static int load_version(struct schema_registry *r, struct reg_name **nm, const char *name,
                        const char *path, const struct schema_version *v, struct core_buf *why)
{
    struct core_buf body;
    core_buf_init(&body);
    struct schema *s = NULL;
    cJSON *doc = NULL;
    int rc = core_read_file(path, r->max_bytes, &body);
    if (rc == CORE_E_TOOBIG) {
        core_buf_printf(why, "larger than the limit of %zu bytes", r->max_bytes);
        goto out;
    }
    if (rc < 0) {
        core_buf_puts(why, core_strerror(rc));
        goto out;
    }
    rc = CORE_E_CORRUPT;
    doc = reg__parse_json(body.data ? body.data : "", body.len, why);
    if (!doc)
        goto out;
    struct core_buf err;
    core_buf_init(&err);
    if (schema_compile(doc, NULL, &s, &err) < 0)
        core_buf_printf(why, "invalid schema: %s", err.data ? err.data : "");
    core_buf_dispose(&err);
    if (!s)
        goto out;
    *nm = reg__publish(r, *nm, name, strlen(name), v, body.data ? body.data : "", body.len, s);
    s = NULL;
    rc = 0;
out:
    schema_free(s);
    cJSON_Delete(doc);
    core_buf_dispose(&body);
    return rc;
}

/* Loads the versions in one name's directory, in version order. */
static int load_name(struct schema_registry *r, const char *name, struct core_buf *path)
{
    size_t base_len = path->len;
    DIR *d = opendir(path->data);
    if (!d) {
        int rc = -errno;
        struct core_buf m;
        core_buf_init(&m);
        core_buf_printf(&m, "schema registry: cannot read %s: %s", path->data, core_strerror(rc));
        LOG_ERROR(m.data, NULL);
        core_buf_dispose(&m);
        return rc;
    }
    struct schema_version *vs = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name), stem;
        struct schema_version v;
        if (de->d_name[0] == '.' || ends_with(de->d_name, len, ".json.tmp", &stem))
            continue; /* dot entries, or a write that never completed */
        if (!ends_with(de->d_name, len, ".json", &stem) ||
            schema_version_parse(de->d_name, stem, &v) < 0) {
            core_buf_printf(path, "/%s", de->d_name);
            log_skip(path->data, "not a <MODEL-REVISION-ADDITION>.json file");
            path->len = base_len;
            path->data[base_len] = '\0';
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            vs = core_xrealloc(vs, cap * sizeof *vs);
        }
        vs[n++] = v;
    }
    closedir(d);
    if (n == 0)
        goto out; /* an empty directory left by a put whose write failed */
    qsort(vs, n, sizeof *vs, version_order);

    struct core_buf why;
    core_buf_init(&why);
    struct reg_name *nm = NULL;
    if (r->n_names >= r->max_names)
        core_buf_printf(&why, "more than %zu schemas", r->max_names);
    else if (n > r->max_versions)
        core_buf_printf(&why, "more than %zu versions", r->max_versions);
    for (size_t i = 0; i < n && why.len == 0; i++) {
        char ver[SCHEMA_VERSION_STR_SIZE];
        schema_version_format(&vs[i], ver, sizeof ver);
        core_buf_printf(path, "/%s.json", ver);
        if (load_version(r, &nm, name, path->data, &vs[i], &why) == 0) {
            path->len = base_len;
            path->data[base_len] = '\0';
        }
    }
    if (why.len) {
        struct core_buf m;
        core_buf_init(&m);
        core_buf_printf(&m, "schema registry: cannot load %s: %s", path->data, why.data);
        LOG_ERROR(m.data, NULL);
        core_buf_dispose(&m);
        rc = CORE_E_CORRUPT;
    }
    core_buf_dispose(&why);
out:
    free(vs);
    return rc;
}

int schema_registry_open(const char *dir, struct schema_registry **out)
{
    if (!dir || !*dir)
        return CORE_E_INVALID;
    int rc = core_mkdirs(dir, 0700);
    if (rc < 0)
        return rc;
    DIR *d = opendir(dir);
    if (!d)
        return -errno;
    struct schema_registry *r = reg__new(dir);
    struct core_buf path;
    core_buf_init(&path);
    struct dirent *de;
    while (rc == 0 && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        core_buf_reset(&path);
        core_buf_printf(&path, "%s/%s", dir, de->d_name);
        struct stat st;
        if (stat(path.data, &st) < 0 || !S_ISDIR(st.st_mode)) {
            log_skip(path.data, "not a directory");
            continue;
        }
        if (!schema_name_valid(de->d_name, strlen(de->d_name))) {
            log_skip(path.data, "not a valid schema name");
            continue;
        }
        rc = load_name(r, de->d_name, &path);
    }
    closedir(d);
    core_buf_dispose(&path);
    if (rc < 0) {
        schema_registry_free(r);
        return rc;
    }
    *out = r;
    return 0;
}
