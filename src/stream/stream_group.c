/*
 * A stream in a Kafka consumer group: the group's rebalances move partitions in and out of the
 * stream (stream_assign / stream_revoke, through the checkpoint directory the members share),
 * and the applied offsets go to the group for lag tools. See docs/ARCHITECTURE.md, "Partition
 * ownership".
 */
#include "evlog/evlog_group.h"
#include "stream/stream_int.h"

static void group_assign(void *arg, const int32_t *parts, int32_t n)
{
    int rc = stream_assign(arg, parts, n);
    if (rc < 0)
        LOG_ERROR("stream: assigned partitions not restored", "count=%d err=\"%s\"", (int)n,
                  core_strerror(rc));
}

static void group_revoke(void *arg, const int32_t *parts, int32_t n)
{
    struct stream *s = arg;
    int rc = stream_revoke(s, parts, n);
    if (rc < 0)
        LOG_WARN("stream: revoked partitions not checkpointed (the next owner replays more)",
                 "count=%d err=\"%s\"", (int)n, core_strerror(rc));
    if (s->cfg.revoked_fn)
        s->cfg.revoked_fn(s->cfg.revoked_arg);
}

static int64_t group_offset(void *arg, int32_t p)
{
    struct stream *s = arg;
    return stream_owns(s, p) ? stream_applied(s, p) : -1;
}

int stream_group_join(struct stream *s, struct evlog_group_options *o, struct evlog_group **out)
{
    o->on_assign = group_assign;
    o->on_revoke = group_revoke;
    o->offset_of = group_offset;
    o->arg = s;
    return evlog_group_join(o, out);
}

void stream_group_leave(struct evlog_group *g)
{
    evlog_group_leave(g);
}
