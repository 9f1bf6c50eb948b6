#!/usr/bin/env bash
# ./dev pi-check: the device side of facegate on an emulated Raspberry Pi OS: Debian Bookworm arm64 (the base of
# Raspberry Pi OS Bookworm, Python 3.11), made with debootstrap and run through qemu-user-static. Inside the root,
# a venv with the project's wheel and the device dependencies only (no TensorFlow); then:
#   compare  facegate enroll, identify --json and the encodings (encodings.py) of the 25 celebrity val photos, and
#            the door demo with mock pins (examples/demo.toml slowed by demo.py), each on x86 (the checkout's
#            .venv) and on arm64 with the same photos, models and config: compare.py checks the identities, the
#            encodings within a tolerance, FaceNet bit for bit on x86's crops, and the demo's decisions
#            (20 unlocks, 5 unknown), for a Raspberry Pi 4's CPU and a Pi 5's;
#   tests    the recognition tests that need no TensorFlow (device-tests.txt), on the models built on x86;
#   ansible  the Ansible role converged into the root from inside it, twice (tests/arm64/test_ansible_arm64.py).
# Emulated timings are not a Raspberry Pi's: nothing here measures speed.
#
# Needs root (debootstrap, mount, chroot), the checkout's .venv and built models (./dev sets them up first).
# Cache, outside the clone ($FACEGATE_CACHE/arm64): the root as a tarball keyed by the sha256 of make_root.sh,
# root-packages.txt and tools-requirements.txt; the aarch64 wheels; debootstrap's and apt's .deb files.
# Work folder $PI_CHECK_WORK (default /var/tmp/facegate-pi-check): the outputs stay there (x86/, arm64/), the root
# is removed at the end (PI_CHECK_KEEP=1 keeps it). PI_CHECK_STEPS picks steps (default "compare tests ansible");
# PI_CHECK_TESTS runs those tests (files or node ids) instead of device-tests.txt's (about 37 minutes emulated);
# PI_CHECK_SLOWDOWN (default 40: a frame every 8 s) is how many times slower the demo replays there. qemu emulates
# a Cortex-A72 (Raspberry Pi 4) and a Cortex-A76 (Pi 5) for the compare step (PI_CHECK_CPUS, both by default), so
# that XNNPACK runs the int8 kernels of each; the tests and the converge run on PI_CHECK_CPU (cortex-a76).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=tests/arm64/chroot.sh
source "$here/chroot.sh"

cache=${FACEGATE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/facegate}/arm64
work=${PI_CHECK_WORK:-/var/tmp/facegate-pi-check}
venv=${VENV:-$repo/.venv}
steps=${PI_CHECK_STEPS:-compare tests ansible}
cpus=${PI_CHECK_CPUS:-cortex-a72 cortex-a76}   # the compare step on each: the Pi 4's and the Pi 5's int8 kernels
test_cpu=$PI_CHECK_CPU                          # the tests and the converge (chroot.sh: cortex-a76 by default)
slowdown=${PI_CHECK_SLOWDOWN:-40}
tolerance=${PI_CHECK_TOLERANCE:-}   # default: compare.py's, from the build's report.json
weights=$repo/weights
celebrity=$weights/photos/celebrity
enrolled=(ben_afflek elton_john jerry_seinfeld madonna)   # as ./dev demo; mindy_kaling is the stranger
stranger=mindy_kaling
inside=/opt/pi-check          # the checks' folder inside the root
times=()
x86_demo=

say() { printf '\n== %s\n' "$*" >&2; }

# timed NAME COMMAND...: run it and remember how long it took.
timed() {
  local name=$1 start=$SECONDS
  shift
  "$@"
  times+=("$(printf '%-40s %5d s' "$name" $((SECONDS - start)))")
}

wanted() { [[ " $steps " == *" $1 "* ]]; }

cleanup() {
  local code=$?
  if [ -n "$x86_demo" ]; then   # the background demo's shell and the daemon it started
    pkill -P "$x86_demo" 2>/dev/null || true
    kill "$x86_demo" 2>/dev/null || true
  fi
  if [ -n "${root:-}" ] && [ -d "$root" ]; then
    if ! arm64_leave "$root"; then
      code=1   # something is still mounted in it: never delete through a mount
    elif [ "${PI_CHECK_KEEP:-0}" = 1 ]; then
      echo "kept the arm64 root in $root (to look inside: chroot $root /bin/bash)" >&2
    else
      rm -rf --one-file-system "$root"
    fi
  fi
  exit "$code"
}

# The root: restored from the cached tarball of this recipe, or built (and cached) when there is none.
prepare_root() {
  local key tarball
  key=$(cat "$here/make_root.sh" "$here/root-packages.txt" "$here/tools-requirements.txt" | sha256sum | cut -c1-16)
  tarball=$cache/bookworm-arm64-$key.tar.zst
  mkdir -p "$cache"
  arm64_remove "$work/root"
  arm64_remove "$work/root.new"
  if [ -f "$tarball" ]; then
    say "restoring the arm64 root from $tarball"
    mkdir -p "$root"
    tar -C "$root" --numeric-owner -I zstd -xpf "$tarball"
  else
    say "building the arm64 root (debootstrap --arch=arm64 bookworm; cached as $tarball)"
    "$here/make_root.sh" "$work/root.new" "$cache/debs" "$cache/wheels" "$cache/apt"
    tar -C "$work/root.new" --numeric-owner -I 'zstd -T0' -cpf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    find "$cache" -maxdepth 1 -name 'bookworm-arm64-*.tar.zst' ! -name "${tarball##*/}" -delete
    mv "$work/root.new" "$root"
  fi
}

# The facegate wheel, built from a copy of the checkout (nothing is written into the tree), and what the checks
# read inside the root: tests/, pyproject.toml (pytest's settings), examples/, the models built on x86, the photos.
install() {
  local copy=$work/wheel-src
  rm -rf "$copy" "$work/dist" && mkdir -p "$copy"
  cp "$repo/pyproject.toml" "$repo/README.md" "$copy/"
  cp -r "$repo/edge" "$repo/convert" "$copy/"
  find "$copy" -name __pycache__ -prune -exec rm -rf {} +
  "$venv/bin/python" -m pip wheel --quiet --disable-pip-version-check --no-deps "$copy" -w "$work/dist"
  wheel=$(cd "$work/dist" && ls facegate-*.whl)
  mkdir -p "$root$inside/dist" "$root$inside/src/weights" "$root$inside/out"
  cp "$work/dist/$wheel" "$root$inside/dist/"
  cp "$repo/pyproject.toml" "$root$inside/src/"
  cp -r "$repo/tests" "$repo/examples" "$root$inside/src/"
  find "$root$inside/src" -name __pycache__ -prune -exec rm -rf {} +
  # the x86 build (every variant, its card and strangers, the detectors, the liveness models, the report, the
  # photos), without what only the converter reads: the Keras weights and the liveness models' ONNX sources
  tar -C "$weights" --exclude=./facenet_keras.h5 --exclude=./pad -cf - . | tar -C "$root$inside/src/weights" -xf -
  say "a venv in the arm64 root with $wheel and its device dependencies (no extras), and pytest"
  arm64_pip_install "$root" "$inside/venv" "$inside/dist/$wheel" pytest
  arm64_run "$root" "$inside/venv/bin/python" - <<'PY'
import importlib.metadata as m, importlib.util as u, platform, sys, edge
assert u.find_spec("tensorflow") is None, "TensorFlow is installed in the device venv"
assert edge.__file__.startswith(sys.prefix), f"edge is imported from {edge.__file__}, not the wheel"
deps = ", ".join(f"{d} {m.version(d)}" for d in ("ai-edge-litert", "numpy", "opencv-python-headless"))
print(f"{platform.machine()}, Python {platform.python_version()}, facegate {m.version('facegate')} (wheel); {deps}")
PY
}

# photos SPLIT/PERSON_OR_GLOB PREFIX: the photo files of the celebrity set (as listed here), under PREFIX.
photos() {
  local pattern=$1 prefix=$2 path
  for path in "$celebrity"/$pattern; do
    [ -f "$path" ] && printf '%s\n' "$prefix/${path#"$celebrity"/}"
  done
}

# recognise PREFIX OUT SRC BIN RUNNER...: enroll, identify --json and encode on one machine, and write its demo's
# visits and config. OUT (results), SRC (the checks' sources and weights/) and BIN (the venv's bin/) are paths as
# the machine's commands see them, PREFIX+path as this script does; RUNNER runs a command there (env, or
# arm64_run ROOT).
recognise() {
  local prefix=$1 out=$2 src=$3 bin=$4 person code store
  shift 4
  local run=("$@") at=$src/weights/photos/celebrity models=FACEGATE_MODELS=$src/weights
  mkdir -p "$prefix$out/demo"
  for person in "${enrolled[@]}" "$stranger"; do
    store=$out/demo/people.sqlite   # the demo's four people; the identify store has the stranger too
    if [ "$person" = "$stranger" ]; then
      cp "$prefix$store" "$prefix$out/people.sqlite"
      store=$out/people.sqlite
    fi
    mapfile -t train < <(photos "train/$person/*" "$at")
    code=0
    "${run[@]}" "$models" "$bin/facegate" enroll "$person" "${train[@]}" --store "$store" >/dev/null || code=$?
    [ "$code" -eq 0 ] || [ "$code" -eq 3 ] || return "$code"   # 3: some photos rejected (e.g. two faces)
  done
  mapfile -t val < <(photos "val/*/*" "$at")
  code=0
  "${run[@]}" "$models" "$bin/facegate" identify --json --store "$out/people.sqlite" "${val[@]}" \
    > "$prefix$out/identify.jsonl" || code=$?
  [ "$code" -eq 0 ] || [ "$code" -eq 3 ] || return "$code"   # 3: someone not in the database
  "${run[@]}" "$bin/python" "$src/tests/arm64/encodings.py" --models "$src/weights" "${val[@]}" \
    --save-crops "$out/crops" > "$prefix$out/encodings.jsonl"
  if [ -d "$prefix$out/../x86-crops" ]; then   # arm64: FaceNet alone on x86's crops
    "${run[@]}" "$bin/python" "$src/tests/arm64/encodings.py" --models "$src/weights" --crops "$out/../x86-crops" \
      > "$prefix$out/crop-encodings.jsonl"
  fi
  "${run[@]}" "$bin/python" "$src/examples/demo_visits.py" replay "$at/val" "$out/demo/visits" >/dev/null
  # beside the machine's weights/, as examples/demo.toml is beside the checkout's (its model paths are relative)
  "$venv/bin/python" "$here/demo.py" "$repo/examples/demo.toml" "$prefix$src/examples/demo-slow.toml" \
    --slowdown "$slowdown"
}

# demo PREFIX OUT SRC BIN RUNNER...: the door daemon with mock pins on the demo's visits, with the slowed config.
demo() {
  local prefix=$1 out=$2 src=$3 bin=$4
  shift 4
  "$@" "FACEGATE_DEMO=$out/demo" "$bin/facegate" run --config "$src/examples/demo-slow.toml" \
    > "$prefix$out/demo.txt" 2> "$prefix$out/demo.log"
}

compare() {
  local x86=$work/x86 cpu failed=()
  # x86: the checkout's venv, with a folder laid out as the root's ($x86/weights: the checkout's models)
  rm -rf "$x86" "$work"/arm64-* && mkdir -p "$x86/examples" "$x86/tests"
  ln -s "$weights" "$x86/weights"
  ln -s "$here" "$x86/tests/arm64"
  ln -s "$repo/examples/demo_visits.py" "$x86/examples/demo_visits.py"
  say "x86: enroll, identify --json and encode the celebrity photos ($venv)"
  timed "x86: enroll, identify, encode" recognise "" "$x86" "$x86" "$venv/bin" env
  say "x86: the door demo, $slowdown times slower, in the background"
  demo "" "$x86" "$x86" "$venv/bin" env &
  x86_demo=$!
  rm -rf "$root$inside/out/x86-crops" && mkdir -p "$root$inside/out" && cp -r "$x86/crops" "$root$inside/out/x86-crops"
  for cpu in $cpus; do
    arm64_cpu "$root" "$cpu"
    say "arm64 ($cpu): enroll, identify --json and encode the celebrity photos (emulated)"
    timed "arm64 $cpu: enroll, identify, encode" recognise "$root" "$inside/out/$cpu" "$inside/src" \
      "$inside/venv/bin" arm64_run "$root"
    say "arm64 ($cpu): the door demo, $slowdown times slower (emulated; frames=75: none was skipped)"
    timed "arm64 $cpu: door demo" demo "$root" "$inside/out/$cpu" "$inside/src" "$inside/venv/bin" arm64_run "$root"
    cp -r "$root$inside/out/$cpu" "$work/arm64-$cpu"
  done
  wait "$x86_demo"
  x86_demo=
  for cpu in $cpus; do
    say "x86 against arm64 emulating a $cpu"
    "$venv/bin/python" "$here/compare.py" "$x86" "$work/arm64-$cpu" --report "$weights/report.json" \
      ${tolerance:+--tolerance "$tolerance"} --unlocks 20 --unknown 5 || failed+=("$cpu")
  done
  [ ${#failed[@]} -eq 0 ] || { echo "error: arm64 (${failed[*]}) differs from x86" >&2; return 1; }
}

device_tests() {
  local tests=() line
  while read -r line; do   # "FILE", or "- NODE_ID": left out there
    [[ $line == "- "* ]] && tests+=(--deselect "${line#- }") || tests+=("$line")
  done < <(sed 's/#.*//; s/[[:space:]]*$//; /^$/d' "$here/device-tests.txt")
  # shellcheck disable=SC2206 # PI_CHECK_TESTS is a list of test files or node ids, split on spaces
  [ -z "${PI_CHECK_TESTS:-}" ] || tests=($PI_CHECK_TESTS)
  say "arm64: the device's tests in ${PI_CHECK_TESTS:-device-tests.txt} (emulated)"
  arm64_run "$root" /usr/bin/env -C "$inside/src" "$inside/venv/bin/python" -m pytest -q -p no:cacheprovider \
    --durations=5 "${tests[@]}"
}

ansible_converge() {
  say "arm64: the Ansible role converged into the root (tests/arm64/test_ansible_arm64.py)"
  (cd "$repo" && FACEGATE_ARM64_ROOT=$root FACEGATE_ARM64_WHEELS=$PI_CHECK_WHEELS PI_CHECK_CPU=$PI_CHECK_CPU \
    "$venv/bin/python" -m pytest -q -rP -p no:cacheprovider tests/arm64/test_ansible_arm64.py)
}

main() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: pi-check needs root (debootstrap, mount and chroot)" >&2
    exit 1
  fi
  [ -x "$venv/bin/facegate" ] && [ -f "$weights/facenet_int8.tflite" ] || {
    echo "error: needs the x86 venv and the built models: run ./dev pi-check (it sets them up first)" >&2
    exit 1
  }
  mkdir -p "$work"
  work=$(realpath "$work")
  root=$work/root
  trap cleanup EXIT
  timed "host tools (debootstrap, qemu-user-static)" arm64_host_tools
  timed "arm64 root (restore or build)" prepare_root
  arm64_enter "$root" "$cache/wheels" "$cache/apt"
  timed "wheel and device venv in the root" install
  if wanted compare; then timed "compare x86 and arm64 (total)" compare; fi
  arm64_cpu "$root" "$test_cpu"   # the tests and the converge: on one CPU (the Pi 5's: the faster to emulate)
  if wanted tests; then timed "arm64 $PI_CHECK_CPU: device tests" device_tests; fi
  if wanted ansible; then timed "arm64 $PI_CHECK_CPU: Ansible converge (two runs)" ansible_converge; fi
  say "pi-check passed: ${steps}; times (emulated, not a Raspberry Pi's):"
  printf '  %s\n' "${times[@]}" | tee "$work/times.txt"
}

main "$@"; exit   # one line: bash has read it whole before the script can change under it
