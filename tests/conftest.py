"""Shared pytest configuration. Tests never need hardware, network or downloaded weights."""

import os

import pytest

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")

# torch before anything native: a torch layer run after extraction code (cv2, scikit-learn's GMM, a MuJoCo
# render) in the same process segfaulted when torch was imported last (tests/pipeline/test_quality.py then
# tests/robot_ft/test_eval_report.py on their own; the whole suite happened to import torch first).
import torch  # noqa: E402,F401

# and torchvision's models (they pull in torch._dynamo and triton): first imported after a MuJoCo EGL render
# they segfaulted (tests/test_contracts.py, tests/robot_sim/test_sim_episode.py, then
# tests/affordance/test_checkpoint.py on their own); robot.evaluation does the same for the CLIs
try:
    import torchvision.models  # noqa: E402,F401
except ImportError:  # pragma: no cover - torchvision is a dependency
    pass

#: Under CI (CI=true) or DEFT_STRICT_SKIPS=1 a skipped test FAILS: the README's setup installs every
#: optional dependency, so a skip there means something the suite should exercise did not run.
STRICT_SKIPS = os.environ.get("CI", "").lower() in ("1", "true", "yes") or os.environ.get("DEFT_STRICT_SKIPS") == "1"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if STRICT_SKIPS and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under strict mode (CI / DEFT_STRICT_SKIPS=1): {reason}"
