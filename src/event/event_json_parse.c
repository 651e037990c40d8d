/* Parsing one JSON document with a precise error position: the one place that turns cJSON's
 * error pointer into byte offset, line and column for replies, the CLI and the registry. */
#include "event/event.h"

static bool space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

cJSON *event_json_parse(const char *text, size_t len, struct event_json_pos *err)
{
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    bool trailing = false;
    if (j) {
        while (end < text + len && space(*end))
            end++;
        if (end == text + len)
            return j;
        cJSON_Delete(j);
        trailing = true;
    }
    if (!end || end < text || end > text + len)
        end = text;
    size_t line = 1, col = 1;
    for (const char *p = text; p < end; p++) {
        if (*p == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    if (err) {
        err->offset = (size_t)(end - text);
        err->line = line;
        err->column = col;
        err->trailing = trailing;
    }
    return NULL;
}
