/*
 * libFuzzer target for the audit log's line checker: splits the input into lines and walks
 * the hash chain as `recstream audit verify` does. Any input must be answered (accepted or a
 * reason) without crashing or reading out of bounds.
 */
#include "privacy/audit.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char prev[AUDIT_HASH_HEX + 1];
    memset(prev, '0', AUDIT_HASH_HEX);
    prev[AUDIT_HASH_HEX] = '\0';
    const char *p = (const char *)data, *end = p + size;
    int64_t seq = 1;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        char hash[AUDIT_HASH_HEX + 1], problem[160];
        if (audit_check_line(p, len, seq, prev, hash, problem, sizeof problem) < 0) {
            if (!problem[0])
                abort(); /* a refusal always says why */
            break;
        }
        if (strlen(hash) != AUDIT_HASH_HEX)
            abort();
        memcpy(prev, hash, sizeof hash);
        seq++;
        p = nl ? nl + 1 : end;
    }
    return 0;
}
