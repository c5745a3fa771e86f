#!/bin/sh
# functions/llm-local/install-gpu.sh: installs a GPU build of llama.cpp for
# llm-local on this node, next to the CPU one that `make deps` installed:
#   cuda    @node-llama-cpp/linux-x64-cuda (CUDA 13) and -cuda-ext (its
#           CUDA 12 fallback), ~560 MB; for nodes labelled accelerator=cuda
#   vulkan  @node-llama-cpp/linux-x64-vulkan, ~190 MB; for AMD GPUs on nodes
#           labelled accelerator=rocm (llama.cpp's Vulkan backend)
# at node-llama-cpp's own version (it ignores any other), prebuilt: npm
# install --omit=optional --ignore-scripts, never a build from source. Not
# part of `make deps`: the packages are large and of no use on a CPU node.
#
# usage: install-gpu.sh [--dir DIR] cuda|vulkan...    (as root; DIR defaults
#        to /usr/local/lib/fnbox/llm-local, where `make deps` put node-llama-cpp)
# Nothing is removed; to remove a build, delete its folders under
# DIR/node_modules/@node-llama-cpp/. A later `make deps` that reinstalls
# node-llama-cpp (a new package.json) drops them: run this again after it.
set -eu

dir=/usr/local/lib/fnbox/llm-local
usage() {
        echo "usage: $0 [--dir DIR] cuda|vulkan..." >&2
        exit 2
}
builds=
while [ $# -gt 0 ]; do
        case $1 in
        --dir)
                [ $# -ge 2 ] || usage
                dir=$2
                shift 2
                ;;
        cuda | vulkan)
                case " $builds " in *" $1 "*) ;; *) builds="$builds $1" ;; esac
                shift
                ;;
        -h | --help) usage ;;
        *)
                echo "install-gpu.sh: unknown build or option: $1 (cuda or vulkan)" >&2
                usage
                ;;
        esac
done
[ -n "$builds" ] || usage

core="$dir/node_modules/node-llama-cpp/package.json"
if [ ! -f "$core" ]; then
        echo "install-gpu.sh: node-llama-cpp is not installed in $dir (run make deps first, as root)" >&2
        exit 1
fi
command -v npm >/dev/null 2>&1 || { echo "install-gpu.sh: npm is missing (make deps installs it)" >&2; exit 1; }
version=$(node -p 'require(process.argv[1]).version' "$core")
case $version in
[0-9]*.[0-9]*.[0-9]*) ;;
*)
        echo "install-gpu.sh: cannot read node-llama-cpp's version from $core" >&2
        exit 1
        ;;
esac
if [ "$(uname -m)" != x86_64 ]; then
        echo "install-gpu.sh: the prebuilt GPU builds are for x86_64 Linux; this is $(uname -m)" >&2
        exit 1
fi

pkgs=
for b in $builds; do
        case $b in
        cuda) pkgs="$pkgs @node-llama-cpp/linux-x64-cuda@$version @node-llama-cpp/linux-x64-cuda-ext@$version" ;;
        vulkan) pkgs="$pkgs @node-llama-cpp/linux-x64-vulkan@$version" ;;
        esac
done

echo "install-gpu.sh: installing$pkgs in $dir"
# --no-save: package.json and the lock file stay the CPU node's (make deps'
# stamp stays valid); --omit=optional: none of the other platforms' binaries;
# --ignore-scripts: node-llama-cpp's postinstall never builds llama.cpp
# shellcheck disable=SC2086 # $pkgs is a list of words
(cd "$dir" && umask 022 && npm install --omit=optional --ignore-scripts --no-save --no-audit --no-fund \
        --loglevel=error $pkgs >/dev/null)

status=0
for p in $pkgs; do
        name=${p%@*}
        got=$(node -p 'require(process.argv[1]).version' "$dir/node_modules/$name/package.json" 2>/dev/null || true)
        if [ "$got" != "$version" ]; then
                echo "install-gpu.sh: $name is not there at $version after npm install (found: ${got:-nothing})" >&2
                status=1
        fi
done
[ "$status" = 0 ] || exit 1
for b in $builds; do
        echo "install-gpu.sh: $b build installed; deploy with LLM_GPU=$b (manifest.yaml's variants set it)"
done
first=${builds# }
echo "install-gpu.sh: check it on this node: LLM_GPU=${first%% *} LLM_MODEL=MODEL.gguf LLM_PORT=8099" \
        "node $(cd "$(dirname "$0")" && pwd)/server.mjs"
