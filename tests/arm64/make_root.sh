#!/usr/bin/env bash
# Builds the emulated Raspberry Pi OS root into ROOT (which must not exist): Debian Bookworm arm64 made by
# debootstrap (minbase and root-packages.txt), apt set not to pull recommended packages (as a minimal image),
# and /opt/pi-check/tools, a venv with tools-requirements.txt (Ansible, which converges the role from inside).
#   make_root.sh ROOT DEB_CACHE WHEEL_CACHE APT_CACHE      (as root; tests/arm64/pi_check.sh calls it)
# pi_check.sh caches the result as a tarball keyed by the sha256 of this script, root-packages.txt and
# tools-requirements.txt: change one of them and the next run builds the root again.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/arm64/chroot.sh
source "$here/chroot.sh"
root=$1 debs=$2 wheels=$3 apt=$4
mirror=${PI_CHECK_MIRROR:-http://deb.debian.org/debian}
[ ! -e "$root" ] || { echo "error: $root exists" >&2; exit 1; }

packages=$(sed 's/#.*//' "$here/root-packages.txt" | xargs | tr ' ' ,)
mkdir -p "$debs"
debootstrap --arch=arm64 --variant=minbase --include="$packages" --cache-dir="$(realpath "$debs")" \
  bookworm "$root" "$mirror"
echo 'APT::Install-Recommends "false";' > "$root/etc/apt/apt.conf.d/90pi-check-no-recommends"

mkdir -p "$root/opt/pi-check"
cp "$here/tools-requirements.txt" "$root/opt/pi-check/"
root=$(realpath "$root")
trap 'arm64_leave "$root"' EXIT
arm64_enter "$root" "$wheels" "$apt"
arm64_pip_install "$root" /opt/pi-check/tools -r /opt/pi-check/tools-requirements.txt
version=$(arm64_run "$root" /opt/pi-check/tools/bin/ansible-playbook --version)
echo "${version%%$'\n'*}"
arm64_leave "$root"
trap - EXIT
rm -f "$root"/var/cache/apt/archives/*.deb   # the root's own folder again: the .deb files stay in DEB_CACHE
