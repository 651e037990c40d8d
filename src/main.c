/* recstream: the binary's entry point; everything else lives in src/cli. */
#include "cli/cli.h"

int main(int argc, char **argv)
{
    return cli_main(argc, argv);
}
