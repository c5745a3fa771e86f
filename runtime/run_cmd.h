/* runtime/run_cmd.h: `fnbox-runtime run`, the one-shot jail command. */
#pragma once

int run_cmd_main(int argc, char **argv);
