#!/usr/bin/env bash
# Coverage-guided fuzzing that reaches the Cython kernels (see fuzz/README.md).
#
#   fuzz/native.sh build [address]    build hftcore in place with clang and
#                                     -fsanitize=fuzzer-no-link (+ AddressSanitizer),
#                                     and a shared libFuzzer in build/fuzz/
#   fuzz/native.sh run TARGET ARGS    python fuzz/run.py TARGET ARGS with the runtime(s)
#                                     preloaded
#   fuzz/native.sh release            rebuild the normal (gcc, release) extensions
#
# The instrumented extensions leave libFuzzer's __sanitizer_cov_* callbacks undefined:
# they must be in the global namespace before hftcore is imported. atheris's wheel keeps
# its libFuzzer private, so we link clang's libclang_rt.fuzzer_no_main into a shared
# library and LD_PRELOAD it; atheris then finds an external libFuzzer and uses it. With
# ASan, clang's shared ASan runtime is preloaded after it.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python}
out=build/fuzz
rt=$(dirname "$(clang -print-file-name=libclang_rt.fuzzer_no_main-x86_64.a)")

preload() {
    local libs="$PWD/$out/libfuzzer_no_main.so"
    # libFuzzer first: the ASan runtime has weak stubs of the coverage callbacks, and the
    # first definition wins (ASan's link-order check is turned off in `run`).
    if [[ -f $out/asan ]]; then libs="$libs:$rt/libclang_rt.asan-x86_64.so"; fi
    echo "$libs"
}

case "${1:-}" in
build)
    mkdir -p "$out"
    clang++ -shared -o "$out/libfuzzer_no_main.so" -Wl,--whole-archive \
        "$rt/libclang_rt.fuzzer_no_main-x86_64.a" -Wl,--no-whole-archive -lpthread
    rm -f "$out/asan"
    if [[ ${2:-} == address ]]; then
        HFTCORE_FUZZ=address "$python" setup.py build_ext --inplace --force
        touch "$out/asan"
    else
        HFTCORE_FUZZ=1 "$python" setup.py build_ext --inplace --force
    fi
    echo "instrumented build ready; run: fuzz/native.sh run TARGET --minutes N"
    ;;
run)
    shift
    # ASan: CPython's own allocations look like leaks at exit; odr-violation noise from
    # numpy: off. libFuzzer's -rss_limit_mb still bounds memory.
    ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:allocator_may_return_null=1:verify_asan_link_order=0} \
        LD_PRELOAD="$(preload)" PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" \
        "$python" fuzz/run.py "$@"
    ;;
release)
    rm -f "$out/asan"
    "$python" setup.py build_ext --inplace --force
    ;;
*)
    sed -n '2,16p' "$0"
    exit 2
    ;;
esac
