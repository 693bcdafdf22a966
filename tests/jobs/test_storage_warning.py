"""On a Ray cluster of several machines, a job's --root/--out/--shards on one machine's own disk split the
work silently (other nodes find no videos, or write shards the manifest never counts): the jobs warn."""

import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.storage import LOCAL_FILESYSTEMS, filesystem_of, unshared_paths_warning, work_leaves_this_node

MOUNTS = """\
/dev/root / ext4 rw,relatime 0 0
tmpfs /tmp tmpfs rw 0 0
fs-123.efs.us-east-1.amazonaws.com:/ /mnt/deft nfs4 rw,vers=4.1 0 0
/dev/nvme1n1 /mnt/deft/scratch xfs rw 0 0
gcsfuse /mnt/my\\040bucket fuse.gcsfuse rw 0 0
"""


class FakeRay:
    def __init__(self, nodes, here="n0"):
        self._nodes, self._here = nodes, here

    def nodes(self):
        return self._nodes

    def get_runtime_context(self):
        here = self._here

        class Ctx:
            def get_node_id(self):
                return here
        return Ctx()


def _node(node_id, cpus, alive=True):
    return {"NodeID": node_id, "Alive": alive, "Resources": {"CPU": cpus} if cpus else {}}


def test_filesystem_is_the_longest_mount_above_the_path(tmp_path):
    assert filesystem_of("/mnt/deft/shards/ego4d", MOUNTS) == ("/mnt/deft", "nfs4")
    assert filesystem_of("/mnt/deft/scratch/run1", MOUNTS) == ("/mnt/deft/scratch", "xfs")
    assert filesystem_of("/mnt/deftx/run", MOUNTS) == ("/", "ext4")  # a name prefix is not a parent
    assert filesystem_of("/mnt/my bucket/videos", MOUNTS) == ("/mnt/my bucket", "fuse.gcsfuse")
    assert filesystem_of("/tmp/not/yet/created", MOUNTS) == ("/tmp", "tmpfs")
    assert filesystem_of("/data", "") is None


def test_when_the_work_can_leave_this_node():
    assert work_leaves_this_node(FakeRay([_node("n0", 2)])) is None                       # one local node
    assert work_leaves_this_node(FakeRay([_node("n0", 2), _node("n1", 32, alive=False)])) is None
    assert "2 live nodes" in work_leaves_this_node(FakeRay([_node("n0", 2), _node("n1", 32)]))
    assert "no CPUs" in work_leaves_this_node(FakeRay([_node("n0", 0)]))                   # cluster.yaml's head alone


def test_warns_only_for_local_paths_on_a_multi_node_cluster():
    two = FakeRay([_node("n0", 0), _node("n1", 32)])
    msg = unshared_paths_warning(two, [("--root", "/data/ego4d"), ("--out", "/mnt/deft/shards")], MOUNTS)
    assert msg.startswith("warning: this Ray cluster has 2 live nodes")
    assert "--root /data/ego4d (ext4 at /)" in msg and "--out" not in msg.split("disk:")[0]
    assert "/mnt/deft" in msg  # says where shared storage is
    assert unshared_paths_warning(two, [("--out", "/mnt/deft/shards"), ("--shards", "/mnt/my bucket/s")], MOUNTS) is None
    one = FakeRay([_node("n0", 16)])
    assert unshared_paths_warning(one, [("--out", "/data/out")], MOUNTS) is None


_JOB_PROBE = """
import runpy, sys
sys.path.insert(0, {repo!r})
import pipelines.storage as st
st.work_leaves_this_node = lambda ray: "this Ray cluster has 2 live nodes (test)"
{extra}
sys.argv = {argv!r}
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def _probe(argv, extra=""):
    from tests.jobs.conftest import REPO, job_env

    code = _JOB_PROBE.format(repo=str(REPO), argv=argv, extra=extra)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=REPO,
                          env=job_env())


def test_the_extraction_and_training_jobs_print_it(datasets, tmp_path):
    """Both drivers warn once Ray is up (a two-node cluster simulated; the paths are on this machine's disk)."""
    fs = filesystem_of(tmp_path)
    if fs is None or fs[1] not in LOCAL_FILESYSTEMS:
        pytest.skip(f"the temporary folder is not on a local filesystem here ({fs})")
    res = _probe(["jobs/extract_hoi4d.py", "--root", str(datasets["hoi4d"]), "--out", str(tmp_path / "x"),
                  "--limit", "1", "--no-progress", "--ray-num-cpus", "2"])
    assert res.returncode == 0, res.stderr[-3000:]
    assert "warning: this Ray cluster has 2 live nodes (test), but --root" in res.stderr
    assert f"--out {tmp_path / 'x'}" in res.stderr

    from tests.affordance.fake_shards import write_shards

    write_shards(tmp_path / "shards", 16, files=1, seed=0)
    stop = ("import ray.train.torch\n"
            "class Stop:\n"
            "    def __init__(self, *a, **k): raise SystemExit('stopped before training (test)')\n"
            "ray.train.torch.TorchTrainer = Stop")
    res = _probe(["jobs/train.py", "--shards", str(tmp_path / "shards"), "--out", str(tmp_path / "ckpt"),
                  "--val-fraction", "0.5"], extra=stop)
    assert "stopped before training (test)" in res.stderr, res.stderr[-3000:]
    assert "warning: this Ray cluster has 2 live nodes (test), but --out" in res.stderr
    assert f"--shards {tmp_path / 'shards'}" in res.stderr
