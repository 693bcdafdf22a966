import io

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from deft_core import grasp, schema
from deft_core.geometry import axis_angle_to_matrix
from deft_core.trajectory import PostGraspTrajectory


def _jpeg() -> bytes:
    import cv2

    ok, buf = cv2.imencode(".jpg", np.full((8, 8, 3), 128, np.uint8))
    assert ok
    return buf.tobytes()


def sample_row(**over):
    row = dict(
        sample_id=schema.make_sample_id("ego4d", "vid", "a0"), dataset="ego4d", video_id="vid", action_id="a0",
        fps=30.0, first_frame=10, contact_frame=25, frame_width=456, frame_height=256, text="pick up the cup",
        verb="pick up", noun="cup", crop_jpeg=_jpeg(), crop_box=[10, 20, 110, 120],
        contact_points=np.random.default_rng(0).uniform(0, 1, (5, 2)), gmm_means=[[0.5, 0.5]], gmm_vars=[[0.01, 0.02]],
        wrist_rotation=[0.1, 0.2, 0.3], hand_pose=np.zeros(45), hand_pose_source="hoi4d",
    )
    row.update(over)
    return row


def test_grasp_slices_and_sigmas():
    assert grasp.GRASP_DIM == 22 and len(grasp.HAND_JOINT_NAMES) == 16
    s = grasp.initial_sigma()
    assert s[grasp.MU].tolist() == [0.02] * 3 and s[grasp.THETA].tolist() == [0.2] * 3 and s[grasp.HAND].tolist() == [0.05] * 16
    v = np.arange(22.0)
    p = grasp.GraspParams.from_vector(v)
    np.testing.assert_array_equal(p.to_vector(), v)
    assert p.hand[0] == 6 and grasp.HAND_JOINT_NAMES[0] == "index_mcp_side" and grasp.HAND_JOINT_NAMES[-1] == "thumb_dip"
    np.testing.assert_array_equal((p + np.ones(22)).to_vector(), v + 1)
    assert grasp.GraspParams.from_dict(p.to_dict()).to_vector().tolist() == v.tolist()
    with pytest.raises(ValueError, match="shape"):
        grasp.GraspParams.from_vector(np.zeros(21))
    with pytest.raises(ValueError, match="non-finite"):
        grasp.GraspParams(np.zeros(3), np.array([0, np.nan, 0]), np.zeros(16))
    with pytest.raises(ValueError, match="missing keys"):
        grasp.GraspParams.from_dict({"mu": [0, 0, 0]})
    with pytest.raises(ValueError, match=r"unknown keys \['thetta'\]"):
        grasp.GraspParams.from_dict({**p.to_dict(), "thetta": [0, 0, 0]})


def test_trajectory_from_poses_and_npz_round_trip(tmp_path):
    t = np.arange(45) * 0.01
    pos = np.stack([t, 0 * t, 2 * t], 1)
    rots = axis_angle_to_matrix(np.stack([0 * t, 0 * t, 0.05 * np.arange(45)], 1))
    tau = PostGraspTrajectory.from_wrist_poses(pos, rots, task="pour_cup", meta={"fps": 30})
    assert tau.deltas.shape == (40, 6)
    np.testing.assert_allclose(tau.deltas[:, 0], 0.01)
    np.testing.assert_allclose(tau.deltas[:, 2], 0.02)
    np.testing.assert_allclose(tau.deltas[:, 5], 0.05, atol=1e-12)
    np.testing.assert_allclose(tau.cumulative()[-1, :3], pos[40] - pos[0])
    back = PostGraspTrajectory.load(tau.save(tmp_path / "t.npz"))
    np.testing.assert_array_equal(back.deltas, tau.deltas)
    assert back.task == "pour_cup" and back.meta == {"fps": 30}
    with pytest.raises(ValueError, match="at least 41"):
        PostGraspTrajectory.from_wrist_poses(pos[:20], rots[:20])
    with pytest.raises(FileNotFoundError):
        PostGraspTrajectory.load(tmp_path / "nope.npz")


def test_sample_ids_are_deterministic_and_distinct():
    a = schema.make_sample_id("ego4d", "v1", "0")
    assert a == schema.make_sample_id("ego4d", "v1", "0")
    assert a != schema.make_sample_id("ego4d", "v1", "1") != schema.make_sample_id("hoi4d", "v1", "0")


def test_schema_round_trip_through_parquet():
    table = schema.rows_to_table([sample_row(), sample_row(sample_id="x", action_id="a1")])
    assert table.schema.equals(schema.AFFORDANCE_SCHEMA, check_metadata=True)
    buf = io.BytesIO()
    pq.write_table(table, buf)
    back = pq.read_table(io.BytesIO(buf.getvalue()))
    schema.check_table_schema(back.schema)
    row = back.to_pylist()[0]
    assert row["schema_version"] == schema.SCHEMA_VERSION
    assert np.asarray(row["contact_points"]).shape == (5, 2)
    assert len(row["hand_pose"]) == 45


def _as_version(table: pa.Table, version: int) -> pa.Table:
    """The table as schema ``version`` wrote it: without the columns added later, that version in the metadata."""
    t = table.drop_columns([c for c, added in schema.ADDED_IN.items() if added > version])
    return t.replace_schema_metadata({**t.schema.metadata, b"deft.schema_version": str(version).encode()})


def test_older_shards_are_still_read_and_upgraded():
    """Schema 2 added ``contact_mapping``, schema 3 ``contact_points_source``; shards written before them
    must still be read (training, quality), with the new columns as null, while a current shard without
    them, or an old shard missing an older column, is refused."""
    table = schema.rows_to_table([sample_row(contact_mapping="object", contact_points_source="hand_mask")])
    assert table.column("contact_mapping").to_pylist() == ["object"] and schema.SCHEMA_VERSION == 3
    assert table.column("contact_points_source").to_pylist() == ["hand_mask"]
    v1, v2 = _as_version(table, 1), _as_version(table, 2)
    assert schema.check_table_schema(v1.schema) == 1 and schema.check_table_schema(v2.schema) == 2
    up1, up2 = schema.upgrade_row(v1.to_pylist()[0]), schema.upgrade_row(v2.to_pylist()[0])
    assert up1["contact_mapping"] is None and up1["contact_points_source"] is None
    assert up2["contact_mapping"] == "object" and up2["contact_points_source"] is None
    assert schema.check_table_schema(table.schema) == 3
    for col in ("contact_mapping", "contact_points_source"):  # a version-3 shard must have both
        with pytest.raises(schema.SchemaError, match=col):
            schema.check_table_schema(table.drop_columns([col]).schema)
    with pytest.raises(schema.SchemaError, match="contact_mapping"):  # and a version-2 one its mapping
        schema.check_table_schema(v2.drop_columns(["contact_mapping"]).schema)
    with pytest.raises(schema.SchemaError, match="hand_pose"):
        schema.check_table_schema(v1.drop_columns(["hand_pose"]).schema)
    # a shard written by another tool, without our metadata: its version is what its columns say
    assert schema.check_table_schema(v1.replace_schema_metadata(None).schema) == 1
    assert schema.check_table_schema(v2.replace_schema_metadata(None).schema) == 2
    assert schema.check_table_schema(table.replace_schema_metadata(None).schema) == 3
    newer = table.replace_schema_metadata({**table.schema.metadata, b"deft.schema_version": b"4"})
    with pytest.raises(schema.SchemaError, match="reads versions 1, 2, 3"):
        schema.check_table_schema(newer.schema)


def test_contact_points_source_values_are_checked():
    for how in schema.CONTACT_POINT_SOURCES + (None,):
        schema.validate_row({**sample_row(contact_points_source=how), "schema_version": schema.SCHEMA_VERSION,
                             "pipeline_version": "x"})
    with pytest.raises(schema.SchemaError, match="contact_points_source 'magic'"):
        schema.rows_to_table([sample_row(contact_points_source="magic")])


def test_contact_mapping_values_are_checked():
    for how in schema.CONTACT_MAPPINGS + (None,):
        schema.validate_row({**sample_row(contact_mapping=how), "schema_version": schema.SCHEMA_VERSION,
                             "pipeline_version": "x"})
    with pytest.raises(schema.SchemaError, match="contact_mapping 'magic'"):
        schema.rows_to_table([sample_row(contact_mapping="magic")])


@pytest.mark.parametrize("field,value,message", [
    ("dataset", "youtube", "unknown dataset"),
    ("contact_frame", 5, "precedes"),
    ("crop_box", [10, 10, 5, 20], "crop_box"),
    ("contact_points", [[1.5, 0.2]], "normalised"),
    ("gmm_vars", [[-1.0, 0.0]], "non-negative"),
    ("hand_pose", [0.0] * 44, "45"),
    ("crop_jpeg", b"PNG....", "JPEG"),
    ("text", None, "missing required"),
])
def test_invalid_rows_are_refused_with_a_reason(field, value, message):
    with pytest.raises(schema.SchemaError, match=message):
        schema.rows_to_table([sample_row(**{field: value})])


def test_schema_mismatch_is_named():
    bad = schema.AFFORDANCE_SCHEMA.remove(schema.AFFORDANCE_SCHEMA.get_field_index("hand_pose"))
    with pytest.raises(schema.SchemaError, match="hand_pose"):
        schema.check_table_schema(bad)
    wrong_version = schema.AFFORDANCE_SCHEMA.with_metadata({b"deft.schema_version": b"999"})
    with pytest.raises(schema.SchemaError, match="999"):
        schema.check_table_schema(wrong_version)
    retyped = schema.AFFORDANCE_SCHEMA.set(schema.AFFORDANCE_SCHEMA.get_field_index("fps"), pa.field("fps", pa.string()))
    with pytest.raises(schema.SchemaError, match="fps"):
        schema.check_table_schema(retyped)


def test_backend_tables_resolve_through_one_lookup():
    """deft_core.registry.load_class: the one name → "module:Class" lookup of the backend tables."""
    from deft_core.geometry import look_at
    from deft_core.registry import load_class

    table = {"look": "deft_core.geometry:look_at"}
    assert load_class(table, "look", "thing") is look_at
    with pytest.raises(ValueError, match=r"unknown thing 'nope'; known: look"):
        load_class(table, "nope", "thing")
