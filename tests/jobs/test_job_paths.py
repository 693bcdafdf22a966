"""The extraction job hands its dataset root to the source as an absolute path: Ray actors may run in
another working directory (a cluster started elsewhere, `ray job submit`'s upload), where a relative
root silently turned every clip into a 'video file not found' error."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# a separate process: inside the test session the name `jobs` is this test package
_PROBE = """
import json, sys
sys.path.insert(0, {repo!r})
from jobs import _extract_common as common
seen = {{}}
def fake_open_source(dataset, root, **kw):
    seen["root"] = root
    raise KeyboardInterrupt
common.open_source = fake_open_source
args = common.build_parser("hoi4d").parse_args(["--root", "data/hoi4d", "--out", "out/hoi4d"])
try:
    common.run_job("hoi4d", args)
except KeyboardInterrupt:
    pass
print(json.dumps(seen))
"""


def test_relative_root_reaches_the_source_absolute(tmp_path):
    (tmp_path / "data" / "hoi4d").mkdir(parents=True)
    res = subprocess.run([sys.executable, "-c", _PROBE.format(repo=str(REPO))], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    root = Path(json.loads(res.stdout.strip().splitlines()[-1])["root"])
    assert root.is_absolute() and root == tmp_path / "data" / "hoi4d"
