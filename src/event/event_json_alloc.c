/*
 * cJSON allocation into a caller's arena. cJSON mallocs every node and string separately;
 * for a 100-event request that is thousands of malloc/free pairs, which cost more than the
 * parsing itself. Between event_json_arena_begin and _end, cJSON allocations on this thread
 * come from the arena and frees are no-ops: the tree dies with the arena.
 */
#include "event/event.h"

#include <pthread.h>
#include <stdlib.h>

static _Thread_local struct core_arena *tl_arena;
static pthread_once_t hooks_once = PTHREAD_ONCE_INIT;

static void *hook_malloc(size_t n)
{
    struct core_arena *a = tl_arena;
    return a ? core_arena_alloc(a, n) : malloc(n);
}

static void hook_free(void *p)
{
    if (!tl_arena)
        free(p);
}

static void install_hooks(void)
{
    cJSON_Hooks hooks = {hook_malloc, hook_free};
    cJSON_InitHooks(&hooks);
}

void event_json_arena_begin(struct core_arena *arena)
{
    pthread_once(&hooks_once, install_hooks);
    tl_arena = arena;
}

void event_json_arena_end(void)
{
    tl_arena = NULL;
}
