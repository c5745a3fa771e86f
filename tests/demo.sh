#!/bin/sh
# `make run`: until the data plane (controller, activator, runtime daemon)
# lands, this runs what exists: the hello function in a one-shot jail, then
# prints how to run your own boxes.
set -eu
BUILD=${1:-build}
BIN="$BUILD/bin/fnbox-runtime"
if [ "$(id -u)" != 0 ]; then
        echo "make run: fnbox-runtime needs root (namespaces and cgroups); run as root" >&2
        exit 1
fi
chmod o+rx functions functions/hello && chmod o+r functions/hello/main.py
echo "\$ echo fnbox | $BIN run --runtime python3 --code functions/hello --json"
echo fnbox | "$BIN" run --runtime python3 --code functions/hello --json
cat <<MSG

fnbox today: the jail (fnbox-runtime run). The platform daemons and
\`fnbox deploy\` arrive with the control and data plane issues.

Run your own box:
  $BIN run --runtime python3 --code my.py --memory 64M --timeout 2s < input
  $BIN run --runtime exec --code /bin/echo -- hi
See docs/jail.md and docs/security.md.
MSG
