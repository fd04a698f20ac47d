#!/usr/bin/env sh
# Make a local Python 3.11 base image where no container registry is reachable (Debian bookworm's
# python3 3.11.2, ~300 MB), then build against it:
#   images/local-base.sh [REF] [DIR]      # default REF localhost/kfp-cicd-base:bookworm
#   python3 images/build.py --build-arg BASE_IMAGE=localhost/kfp-cicd-base:bookworm ...
# Needs root, debootstrap and buildah (apt-get install -y debootstrap buildah). Skips the work when
# REF already exists.
set -eu
REF=${1:-localhost/kfp-cicd-base:bookworm}
DIR=${2:-$(mktemp -d /var/tmp/kfp-cicd-base.XXXXXX)}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
for tool in debootstrap buildah; do
    command -v "$tool" >/dev/null || { echo "$0: $tool not found: apt-get install -y $tool" >&2; exit 1; }
done
if buildah inspect --type image "$REF" >/dev/null 2>&1; then echo "$REF exists"; exit 0; fi
[ -x "$DIR/usr/bin/python3" ] || debootstrap --variant=minbase \
    --include=python3,python3-venv,python3-pip,ca-certificates bookworm "$DIR" "$MIRROR"
rm -rf "$DIR/var/lib/apt/lists/"* "$DIR/var/cache/apt/"*.bin
container=$(buildah from scratch)
trap 'buildah rm "$container" >/dev/null' EXIT
buildah copy --quiet "$container" "$DIR" /
buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env LANG=C.UTF-8 --cmd python3 "$container"
buildah commit --quiet "$container" "$REF" >/dev/null
echo "$REF"
