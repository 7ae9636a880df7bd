# Sourced by serve.sh and sweep.sh (from the repository root): makes sure hnswlib 0.8.0's
# headers are in target/hnswlib-src/hnswlib/ and sets hnswlib_src=target/hnswlib-src (the
# directory to give the compiler as -I). Downloads hnswlib's source release from PyPI once
# (pip download, no install); needs the network only that first time.
hnswlib_src=target/hnswlib-src
if [ ! -f "$hnswlib_src/hnswlib/hnswlib.h" ]; then
  mkdir -p "$hnswlib_src"
  # --no-binary for hnswlib only: with :all:, pip would build its build dependencies (numpy)
  # from source just to read its metadata.
  python3 -m pip download --no-binary hnswlib --no-deps hnswlib==0.8.0 -d "$hnswlib_src" -q
  tar -xzf "$hnswlib_src"/hnswlib-0.8.0.tar.gz -C "$hnswlib_src"
  mkdir -p "$hnswlib_src/hnswlib"
  cp "$hnswlib_src"/hnswlib-0.8.0/hnswlib/*.h "$hnswlib_src/hnswlib/"
fi
