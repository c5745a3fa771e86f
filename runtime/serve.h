/* runtime/serve.h: `fnbox-runtime serve`, the runtime daemon. */
#pragma once

#define SERVE_SOCKET_DEFAULT "/run/fnbox/runtime.sock"

int serve_cmd_main(int argc, char **argv);
