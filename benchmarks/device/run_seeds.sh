#!/bin/bash
# The demo's robot stage (fine-tune, distil, evaluate; `pipelines.cli_demo.robot_steps`) for many run seeds
# at once on a lent many-core machine (the `device` tool: 16 cores, Python 3.12 with PyTorch, no network).
# Run from the repository root there, with `.gpu` and `.gl` carried (docs/developing.md, "Many seeds on a
# lent machine"):  bash benchmarks/device/run_seeds.sh 0 5 6 7
# Environment: OUTDIR (default /tmp/seeds), NAME (result files $OUT/NAME.tar.gz and .log; default seeds),
# WORKERS (parallel task-seed jobs, default 16), DEADLINE (s, default 470), TASKS (default all demo tasks).
set -o pipefail
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
j=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json; [ -f $j ] && export __EGL_VENDOR_LIBRARY_FILENAMES=$j
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .gpu/whl/*.whl || exit 1
mkdir -p /tmp/model && cp .gpu/model/*.json /tmp/model/ && python3 -c "import lzma, shutil; shutil.copyfileobj(lzma.open('.gpu/model/model.safetensors.xz'), open('/tmp/model/model.safetensors', 'wb'))" || exit 2
md5sum /tmp/model/model.safetensors
export PYTHONPATH=/tmp/site:$PWD/benchmarks/device/shim:$PWD DEFT_TEXT_TABLE=$PWD/.gpu/text_table.json MUJOCO_GL=egl PYTHONUNBUFFERED=1
nproc; python3 -c "import mujoco; print('mujoco', mujoco.__version__)"
python3 -c "
import mujoco
m = mujoco.MjModel.from_xml_string('<mujoco><worldbody><light pos=\"0 0 1\"/><geom size=\".1\"/></worldbody></mujoco>')
r = mujoco.Renderer(m, 64, 64); d = mujoco.MjData(m); mujoco.mj_forward(m, d); r.update_scene(d); print('render ok', r.render().mean())" || exit 3
python3 -c "from deft_core.affordance.encoders import make_text_encoder as f; print(type(f('minilm')).__name__)" || exit 4
python3 benchmarks/device/seeds_run.py --model /tmp/model --out "${OUTDIR:-/tmp/seeds}" --seeds "$@" --workers "${WORKERS:-16}" \
  --deadline "${DEADLINE:-470}" ${TASKS:+--tasks $TASKS} --tar "$OUT/${NAME:-seeds}.tar.gz" 2>&1 | tee "$OUT/${NAME:-seeds}.log"
