#include "cli/cli.h"
#include "core/core.h"
#include <stdio.h>
int cli_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("recstream %s\n", RECSTREAM_VERSION);
    return 0;
}
