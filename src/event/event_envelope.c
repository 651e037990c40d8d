/*
 * The canonical event envelope as a JSON Schema (draft-07) document. The decoder in
 * event_json.c is what enforces the envelope at ingest (it is several times faster than a
 * general validator and also decodes); this document publishes the same rules in the schema
 * registry as "recstream.event", and a unit test checks the two agree on a corpus. The
 * decoder is stricter in three ways a schema cannot say: JSON null counts as an absent field,
 * lengths are in bytes, and timestamps more than 24 h ahead of the receive time are refused.
 */
#include "event/event.h"

#include <string.h>

void event_envelope_schema_json(struct core_buf *out)
{
    core_buf_puts(out,
                  "{\"$schema\":\"http://json-schema.org/draft-07/schema#\","
                  "\"title\":\"recstream canonical event envelope\",\"type\":\"object\","
                  "\"properties\":{"
                  "\"eventId\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":64},"
                  "\"userId\":{\"type\":[\"string\",\"integer\"],\"minLength\":1,"
                  "\"maxLength\":256},"
                  "\"anonymousId\":{\"type\":[\"string\",\"integer\"],\"minLength\":1,"
                  "\"maxLength\":256},"
                  "\"sessionId\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":256},"
                  "\"eventType\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":64},"
                  "\"itemId\":{\"type\":[\"string\",\"integer\"],\"minLength\":1,"
                  "\"maxLength\":256},"
                  "\"timestamp\":{\"oneOf\":[{\"type\":\"integer\",\"exclusiveMinimum\":0,"
                  "\"maximum\":9007199254740991},{\"type\":\"string\",\"format\":"
                  "\"date-time\"}]},"
                  "\"value\":{\"type\":\"number\"},"
                  "\"recId\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":128},"
                  "\"position\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":100000},"
                  "\"schema\":{\"type\":\"string\",\"pattern\":\"^[A-Za-z][A-Za-z0-9_.-]{0,127}"
                  "/[1-9][0-9]{0,5}-(0|[1-9][0-9]{0,5})-(0|[1-9][0-9]{0,5})$\"},"
                  "\"context\":{\"type\":\"object\"},"
                  "\"properties\":{\"type\":\"object\"}},"
                  "\"required\":[\"eventType\"],"
                  "\"anyOf\":[{\"required\":[\"userId\"]},{\"required\":[\"anonymousId\"]}],"
                  "\"if\":{\"properties\":{\"eventType\":{\"enum\":[");
    bool first = true;
    for (int t = 0; t < EVENT_TYPE__COUNT; t++) {
        const struct event_type_info *ti = event_type_get(t);
        if (!ti->item_required)
            continue;
        if (!first)
            core_buf_putc(out, ',');
        core_json_cstr(out, ti->name);
        first = false;
    }
    core_buf_puts(out, "]}}},\"then\":{\"required\":[\"itemId\"]}}");
}
