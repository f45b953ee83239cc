#!/usr/bin/env bash
# Builds libsop_bindings.so and generates its Python, Kotlin and Swift bindings from the built
# library (uniffi "library mode": the interface is read from the metadata the proc-macros put in
# the .so, so there is no .udl to keep in step).
#
#   bindings/generate.sh [python|kotlin|swift ...]     (default: all three)
#   PROFILE=release bindings/generate.sh python         (an optimized library, for timing)
#
# Output: target/bindings/<language>/ (target/bindings-release/<language>/ for PROFILE=release). The Python directory also gets a copy of the .so next to
# the generated module, so `PYTHONPATH=target/bindings/python python3 -c 'import sop_bindings'`
# works. Kotlin and Swift sources are generated (generation must succeed) but not compiled here.
#
# Why three separate cargo invocations: cargo unifies features over the packages selected in one
# build, so building the generator together with the library would compile uniffi's `cli` feature
# (clap and the generators) into the mobile library. Each package is built alone instead; the
# generator is then run as the built binary, so no second cargo selection rebuilds anything.
set -euo pipefail
cd "$(dirname "$0")/.."

languages=("$@")
if [ ${#languages[@]} -eq 0 ]; then
  languages=(python kotlin swift)
fi

target_dir="${CARGO_TARGET_DIR:-target}"
profile="${PROFILE:-debug}"
case "$profile" in
  debug) release_flag=(); out_root="$target_dir/bindings" ;;
  release) release_flag=(--release); out_root="$target_dir/bindings-release" ;;
  *) echo "PROFILE must be debug or release, not $profile" >&2; exit 2 ;;
esac
lib="$target_dir/$profile/libsop_bindings.so"

cargo build -q -p sop-bindings "${release_flag[@]}"
# The generator only reads the library's metadata: a debug build of it does for both profiles.
cargo build -q -p uniffi-bindgen

for language in "${languages[@]}"; do
  out="$out_root/$language"
  rm -rf "$out"
  mkdir -p "$out"
  # --no-format: the formatters (ktlint, swiftformat, black) are not on the machine, and the
  # generated code is not meant to be read in a diff.
  "$target_dir/debug/uniffi-bindgen" generate --library "$lib" --language "$language" \
    --out-dir "$out" --no-format
  if [ "$language" = python ]; then
    # The generated module loads the library from its own directory.
    cp "$lib" "$out/"
  fi
  echo "generated $language bindings in $out"
done
