/* Schema names, SchemaVer versions and "name/M-R-A" references: parsing and formatting. */
#include "schema/registry.h"

#include <stdio.h>
#include <string.h>

const char *schema_registry_strerror(int err)
{
    switch (err) {
    case SCHEMA_REG_INCOMPATIBLE:
        return "schema version is not compatible with the version it follows";
    case SCHEMA_REG_BAD_SEQUENCE:
        return "schema version out of sequence";
    default:
        return core_strerror(err);
    }
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

bool schema_name_valid(const char *s, size_t n)
{
    if (!s || n == 0 || n > SCHEMA_NAME_MAX || !is_alpha(s[0]))
        return false;
    for (size_t i = 1; i < n; i++) {
        char c = s[i];
        if (!is_alpha(c) && !is_digit(c) && c != '_' && c != '.' && c != '-')
            return false;
    }
    return true;
}

/* One version part at s[*i..n): digits without a leading zero, up to the part maximum. */
static bool parse_part(const char *s, size_t n, size_t *i, int *out)
{
    size_t start = *i;
    long v = 0;
    while (*i < n && is_digit(s[*i])) {
        v = v * 10 + (s[*i] - '0');
        if (v > SCHEMA_VERSION_PART_MAX)
            return false;
        (*i)++;
    }
    size_t digits = *i - start;
    if (digits == 0 || (digits > 1 && s[start] == '0'))
        return false;
    *out = (int)v;
    return true;
}

int schema_version_parse(const char *s, size_t n, struct schema_version *v)
{
    struct schema_version t;
    size_t i = 0;
    if (!s || !parse_part(s, n, &i, &t.model) || i >= n || s[i++] != '-' ||
        !parse_part(s, n, &i, &t.revision) || i >= n || s[i++] != '-' ||
        !parse_part(s, n, &i, &t.addition) || i != n || t.model < 1)
        return CORE_E_INVALID;
    *v = t;
    return 0;
}

int schema_version_format(const struct schema_version *v, char *out, size_t out_size)
{
    if (v->model < 1 || v->model > SCHEMA_VERSION_PART_MAX || v->revision < 0 ||
        v->revision > SCHEMA_VERSION_PART_MAX || v->addition < 0 ||
        v->addition > SCHEMA_VERSION_PART_MAX)
        return CORE_E_INVALID;
    int n = snprintf(out, out_size, "%d-%d-%d", v->model, v->revision, v->addition);
    if (n < 0 || (size_t)n >= out_size)
        return CORE_E_INVALID;
    return n;
}

int schema_version_cmp(const struct schema_version *a, const struct schema_version *b)
{
    if (a->model != b->model)
        return a->model < b->model ? -1 : 1;
    if (a->revision != b->revision)
        return a->revision < b->revision ? -1 : 1;
    if (a->addition != b->addition)
        return a->addition < b->addition ? -1 : 1;
    return 0;
}

int schema_ref_parse(const char *s, size_t n, char *name, size_t name_size,
                     struct schema_version *v)
{
    const char *slash = s ? memchr(s, '/', n) : NULL;
    if (!slash)
        return CORE_E_INVALID;
    size_t name_len = (size_t)(slash - s);
    struct schema_version t;
    if (!schema_name_valid(s, name_len) || name_len >= name_size ||
        schema_version_parse(slash + 1, n - name_len - 1, &t) < 0)
        return CORE_E_INVALID;
    memcpy(name, s, name_len);
    name[name_len] = '\0';
    *v = t;
    return 0;
}
