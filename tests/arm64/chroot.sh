# Helpers for an emulated arm64 root (sourced by tests/arm64/make_root.sh and pi_check.sh; run as root).
#
# The root is entered with chroot: an aarch64 binary in it runs through qemu-user-static, which binfmt_misc
# starts for every aarch64 ELF file. Inside, /proc, /sys (read-only) and /dev are mounted, and two folders of
# the cache outside the clone are bound in: the pip wheels (/var/cache/pi-check/wheels) and apt's .deb files
# (/var/cache/apt/archives). arm64_leave unmounts all of it; arm64_remove deletes a root only when nothing is
# mounted under it any more.

PI_CHECK_CA=/etc/ssl/certs/pi-check-host-ca.crt   # this machine's CA bundle, for pip inside the root
PI_CHECK_WHEELS=/var/cache/pi-check/wheels          # inside the root
# The CPU qemu emulates (QEMU_CPU), cortex-a72 (the Raspberry Pi 4's: NEON without dot product) or cortex-a76 (the
# Pi 5's: with it), so that XNNPACK picks the int8 kernels that Pi runs. /proc/cpuinfo inside says the same:
# XNNPACK reads it through the cpuinfo library, which cannot parse this machine's x86 one (XNNPACK then stays off
# and TFLite's own kernels run instead, or, with /sys mounted too, the process crashes).
PI_CHECK_CPU=${PI_CHECK_CPU:-cortex-a76}
PI_CHECK_CPUINFO=/var/lib/pi-check/cpuinfo         # inside the root, bound over /proc/cpuinfo

# debootstrap, qemu-user-static with its binfmt_misc handler, zstd (the cached roots are .tar.zst).
arm64_host_tools() {
  local want=()
  command -v debootstrap >/dev/null 2>&1 || want+=(debootstrap)
  [ -x /usr/bin/qemu-aarch64-static ] || want+=(qemu-user-static)
  command -v update-binfmts >/dev/null 2>&1 || want+=(binfmt-support)
  command -v zstd >/dev/null 2>&1 || want+=(zstd)
  if [ ${#want[@]} -gt 0 ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
      echo "error: install ${want[*]} (Debian/Ubuntu package names) and run again" >&2
      return 1
    fi
    echo "installing ${want[*]} from the distribution's packages" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${want[@]}" >/dev/null
  fi
  [ -e /proc/sys/fs/binfmt_misc/register ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  if ! grep -qx enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 2>/dev/null; then
    update-binfmts --enable qemu-aarch64
  fi
  grep -qx enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 || {
    echo "error: binfmt_misc has no enabled qemu-aarch64 handler (update-binfmts --enable qemu-aarch64)" >&2
    return 1
  }
}

# The interpreter binfmt_misc runs aarch64 binaries with. Without the F flag the kernel opens it inside the
# chroot, so it is copied in (with F, registered by Debian's qemu-user-static, it is not needed there).
_arm64_interpreter() {
  local root=$1 interp
  grep -q '^flags:.*F' /proc/sys/fs/binfmt_misc/qemu-aarch64 && return 0
  interp=$(sed -n 's/^interpreter //p' /proc/sys/fs/binfmt_misc/qemu-aarch64)
  mkdir -p "$root$(dirname "$interp")"
  cp /usr/bin/qemu-aarch64-static "$root$interp"
}

# arm64_cpu ROOT CPU: emulate CPU from now on (cortex-a72 or cortex-a76), /proc/cpuinfo inside included.
arm64_cpu() {
  local root=$1 cpu=$2 i features part variant revision model
  case "$cpu" in
    cortex-a72) part=0xd08 variant=0x0 revision=3 model="Raspberry Pi 4 Model B"
                features="fp asimd evtstrm crc32 cpuid" ;;
    cortex-a76) part=0xd0b variant=0x4 revision=1 model="Raspberry Pi 5 Model B"
                features="fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp" ;;
    *) echo "error: PI_CHECK_CPU is cortex-a72 (Raspberry Pi 4) or cortex-a76 (Raspberry Pi 5), not $cpu" >&2
       return 1 ;;
  esac
  PI_CHECK_CPU=$cpu
  mkdir -p "$(dirname "$root$PI_CHECK_CPUINFO")"
  {  # as many processors as /sys says this machine has (cpuinfo checks the two agree)
    for ((i = 0; i < $(nproc --all); i++)); do
      printf 'processor\t: %d\nBogoMIPS\t: 108.00\nFeatures\t: %s\nCPU implementer\t: 0x41\n' "$i" "$features"
      printf 'CPU architecture: 8\nCPU variant\t: %s\nCPU part\t: %s\nCPU revision\t: %s\n\n' "$variant" "$part" "$revision"
    done
    printf 'Model\t\t: %s\n' "$model"
  } > "$root$PI_CHECK_CPUINFO"   # rewritten in place: the file bound over /proc/cpuinfo shows it at once
}

# arm64_enter ROOT WHEELS_DIR APT_DIR: mount what a program inside needs; bind the caches in.
arm64_enter() {
  local root=$1 wheels=$2 apt=$3
  mkdir -p "$wheels" "$apt" "$root$PI_CHECK_WHEELS" "$root/var/cache/apt/archives"
  _arm64_interpreter "$root"
  arm64_cpu "$root" "$PI_CHECK_CPU"
  mount -t proc proc "$root/proc"
  mount --bind "$root$PI_CHECK_CPUINFO" "$root/proc/cpuinfo"
  mount -t sysfs -o ro sysfs "$root/sys"
  mount --rbind /dev "$root/dev"
  mount --make-rslave "$root/dev"
  mount --bind "$wheels" "$root$PI_CHECK_WHEELS"
  mount --bind "$apt" "$root/var/cache/apt/archives"
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  # pip inside trusts what pip here trusts (this machine may reach PyPI through a proxy with its own CA)
  cp "${PIP_CERT:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}" "$root$PI_CHECK_CA"
}

# arm64_leave ROOT: unmount everything under ROOT, deepest first; fails if anything stays mounted.
arm64_leave() {
  local root=$1 target
  [ -n "$root" ] || return 1
  while read -r target; do
    umount "$target" 2>/dev/null || umount -l "$target"
  done < <(_arm64_mounts "$root" | sort -r)
  if [ -n "$(_arm64_mounts "$root")" ]; then
    echo "error: still mounted under $root:" >&2
    _arm64_mounts "$root" >&2
    return 1
  fi
}

_arm64_mounts() {
  findmnt -rn -o TARGET | awk -v prefix="$1/" 'index($0, prefix) == 1'
}

# arm64_remove DIR: delete a work folder, never while something (/dev, a cache) is mounted under it.
arm64_remove() {
  local dir=$1
  [ -e "$dir" ] || return 0
  arm64_leave "$dir"
  rm -rf --one-file-system "$dir"
}

# arm64_run ROOT [VAR=value ...] COMMAND...: run inside the root with a clean environment.
arm64_run() {
  local root=$1 pass=() name
  shift
  for name in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY PIP_INDEX_URL PIP_EXTRA_INDEX_URL; do
    [ -n "${!name:-}" ] && pass+=("$name=${!name}")
  done
  chroot "$root" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin HOME=/root LC_ALL=C.UTF-8 \
    QEMU_CPU="$PI_CHECK_CPU" PIP_CERT="$PI_CHECK_CA" SSL_CERT_FILE="$PI_CHECK_CA" PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 "${pass[@]}" "$@"
}

# arm64_pip_install ROOT VENV PIP_ARGS...: a venv inside the root with PIP_ARGS installed from the wheels in the
# cache; what is not there yet is downloaded into it first (binary wheels only: nothing is compiled in emulation).
arm64_pip_install() {
  local root=$1 venv=$2
  shift 2
  [ -x "$root$venv/bin/python" ] || arm64_run "$root" /usr/bin/python3 -m venv "$venv"
  local pip=("$venv/bin/python" -m pip)
  if ! arm64_run "$root" "${pip[@]}" install --quiet --no-index --find-links "$PI_CHECK_WHEELS" "$@" 2>/dev/null; then
    echo "downloading the aarch64 wheels of $* into the cache" >&2
    arm64_run "$root" "${pip[@]}" download --quiet --only-binary=:all: --dest "$PI_CHECK_WHEELS" "$@"
    rm -f "$root$PI_CHECK_WHEELS"/facegate-*.whl   # the wheel under test is installed from its file, never cached
    arm64_run "$root" "${pip[@]}" install --quiet --no-index --find-links "$PI_CHECK_WHEELS" "$@"
  fi
}
