/*
 * libFuzzer target: state_shard_restore on arbitrary bytes. Half of the inputs get a valid
 * header and checksum patched in so the body parser is reached; restore must never crash and
 * a successful restore must dump and snapshot cleanly.
 */
#include "state/state.h"

#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct state_config cfg;
    state_config_init(&cfg);
    struct state_shard *s = state_shard_new(&cfg, 0);
    uint8_t *buf = malloc(size + 24);
    size_t len = size;
    if (size > 0 && (data[0] & 1)) {
        /* Header "RSS1", version 1, body length, XXH3 of the body; body = data[1..]. */
        size_t body = size - 1;
        uint64_t sum = XXH3_64bits(data + 1, body);
        static const uint8_t magic[8] = {'R', 'S', 'S', '1', 1, 0, 0, 0};
        memcpy(buf, magic, 8);
        for (int i = 0; i < 8; i++) {
            buf[8 + i] = (uint8_t)((uint64_t)body >> (8 * i));
            buf[16 + i] = (uint8_t)(sum >> (8 * i));
        }
        memcpy(buf + 24, data + 1, body);
        len = body + 24;
    } else if (size > 0) {
        memcpy(buf, data, size);
    }
    if (state_shard_restore(s, buf, len) == 0) {
        struct core_buf out;
        core_buf_init(&out);
        state_shard_dump(s, &out);
        core_buf_reset(&out);
        state_shard_snapshot(s, &out);
        core_buf_dispose(&out);
    }
    free(buf);
    state_shard_free(s);
    return 0;
}
