#!/usr/bin/env sh
# Re-resolve the image-only lock files from their .in files, constrained to requirements/main.lock so
# every image runs exactly the versions the tests ran. torch resolves to the CPU build through the
# --find-links/--extra-index-url given in TORCH_FIND_LINKS (default: the PyTorch CPU index).
set -eu
cd "$(dirname "$0")/.."
UV=${UV:-.venv/bin/uv}
TORCH_SOURCE=${TORCH_FIND_LINKS:+--find-links $TORCH_FIND_LINKS}
TORCH_SOURCE=${TORCH_SOURCE:---extra-index-url https://download.pytorch.org/whl/cpu --index-strategy unsafe-best-match}
lock() {  # lock IN OUT
    # shellcheck disable=SC2086
    "$UV" pip compile "$1" --constraint requirements/main.lock --python-version 3.11 \
        --python-platform x86_64-manylinux_2_28 $TORCH_SOURCE --no-header --no-annotate --quiet -o "$2.tmp"
    { echo "# Exact pins for $(basename "$(dirname "$2")")/$(basename "$2"), from $1 constrained by requirements/main.lock."
      echo "# Regenerate with images/lock.sh; install with pip."
      cat "$2.tmp"; } > "$2"
    rm -f "$2.tmp"
}
lock requirements/serving.in requirements/serving.lock
lock images/validation/kfp-env.in images/validation/kfp-env.lock
