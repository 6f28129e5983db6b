#!/usr/bin/env bash
# ../shared/tools/device/prepare-carry.sh, then .devcarry/node_modules.tgz
# again with the production dependencies only (npm ls --omit=dev): the whole
# node_modules is ~49 MB packed (typescript, binaryen, playwright...), which
# with node.xz, dist/ and build/ passes the device tool's 64 MiB carry; the
# production ones are ~11 MB. Run from the project root after the build.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash ../shared/tools/device/prepare-carry.sh >/dev/null
mapfile -t deps < <(npm ls --omit=dev --all --parseable 2>/dev/null | sed "s|^$PWD/||" | grep '^node_modules/')
tar czf .devcarry/node_modules.tgz \
  --exclude='*/dist/win32*' --exclude='*/dist/darwin*' --exclude='*/dist/linux-arm64*' \
  --exclude='*/prebuilds/win32*' --exclude='*/prebuilds/darwin*' --exclude='*/.cache' "${deps[@]}"
du -sh .devcarry .devcarry/node_modules.tgz
