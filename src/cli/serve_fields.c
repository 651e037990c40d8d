/*
 * Field retention policy of `recstream serve` (docs/PRIVACY.md, "Field retention"): which
 * schema retention classes are sealed under epoch keys, from --retention-short,
 * --retention-long, --retention-epoch and --retention-events.
 */
#include "cli/serve_retention.h"
#include "schema/schema.h"

int serve_fields_policy(struct epochkeys *ek, int64_t events_ms, int64_t short_ms, int64_t long_ms,
                        int64_t epoch_ms)
{
    if (long_ms > 0 && events_ms > 0 && long_ms < events_ms) {
        LOG_ERROR("--retention-long must not be shorter than --retention-events (\"long\" "
                  "properties live at least as long as their events)",
                  "long_ms=%lld events_ms=%lld", (long long)long_ms, (long long)events_ms);
        return CORE_E_INVALID;
    }
    struct epochkeys_policy pol = {{false}, {0}, {0}};
    /* Only a class that lives shorter than its events needs keys: the others go with the
     * record's segment. "standard" is the events' own TTL. */
    pol.ttl_ms[SCHEMA_RETENTION_SHORT] = short_ms;
    pol.sealed[SCHEMA_RETENTION_SHORT] = short_ms > 0 && (events_ms == 0 || short_ms < events_ms);
    pol.epoch_ms[SCHEMA_RETENTION_SHORT] =
        epoch_ms > 0 ? epoch_ms : epochkeys_epoch_for_ttl(short_ms);
    pol.ttl_ms[SCHEMA_RETENTION_STANDARD] = events_ms;
    pol.ttl_ms[SCHEMA_RETENTION_LONG] = long_ms > 0 ? long_ms : events_ms;
    epochkeys_set_policy(ek, &pol);
    if (pol.sealed[SCHEMA_RETENTION_SHORT])
        LOG_INFO("field retention: \"short\" properties sealed under epoch keys",
                 "ttl_ms=%lld "
                 "epoch_ms=%lld keys=%zu",
                 (long long)short_ms, (long long)pol.epoch_ms[SCHEMA_RETENTION_SHORT],
                 epochkeys_count(ek));
    return 0;
}
