"""The model stages of the extraction jobs: job flags → Ray Data actor pools before the CPU stages.

``--hand-object-model {hands23,detic}`` inserts :class:`pipelines.models.actors.HandObjectActor`
(hand-object detections of every ``--hand-object-stride``-th frame, written as EPIC-format pickles
under ``OUT/hand-objects/<backend>/``) and switches the contact-frame detector to ``"model"``
(:class:`pipelines.models.contact.ModelContact`: the EPIC contact rule on those detections).
``--object-boxes {owlv2,grounding-dino,detic}`` inserts :class:`pipelines.models.actors.ObjectBoxActor`
(open-vocabulary boxes of the clip's noun in v1, pixels), which the CPU stage uses to refine the
crop's object box (:func:`pipelines.models.open_vocab.refine_object_box`).

``--model-option KEY=VALUE`` (repeatable; values parsed as JSON when possible) goes to both backends;
``hand-object.KEY=VALUE`` / ``object-boxes.KEY=VALUE`` to one only (e.g. two ``weights`` directories).
Each stage runs ``--model-concurrency`` actors with ``--model-num-gpus`` / ``--model-num-cpus`` each;
``--object-store-bytes`` bounds the object-store memory of the job's in-flight blocks (streaming).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from pipelines.models.base import HAND_OBJECT_BACKENDS, OBJECT_BOX_BACKENDS

SCOPES = {"hand-object": "hand_object", "object-boxes": "object_boxes"}


def add_model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model stages (actor pools before the CPU stages; docs/scale-out.md)")
    g.add_argument("--hand-object-model", choices=sorted(HAND_OBJECT_BACKENDS), default=None,
                   help="hand-object detector on raw video; the contact frame then comes from its detections")
    g.add_argument("--object-boxes", choices=sorted(OBJECT_BOX_BACKENDS), default=None,
                   help="open-vocabulary boxes of the clip's noun, used for the object crop")
    g.add_argument("--model-option", action="append", default=[], metavar="[SCOPE.]KEY=VALUE",
                   help="backend option, repeatable (e.g. weights=/mnt/deft/weights/owlv2, device=cpu); "
                        "SCOPE hand-object or object-boxes limits it to one stage; values parsed as JSON when possible")
    g.add_argument("--model-num-gpus", type=float, default=0.0, help="GPUs per model actor (0: CPU actors)")
    g.add_argument("--model-num-cpus", type=float, default=1.0, help="CPUs per model actor")
    g.add_argument("--model-concurrency", type=int, default=1, help="actors per model stage")
    g.add_argument("--model-batch-size", type=int, default=4, help="clips per model actor call")
    g.add_argument("--hand-object-stride", type=int, default=1, help="run the hand-object model on every N-th frame")
    g.add_argument("--hand-object-max-frames", type=int, default=256, help="at most this many frames per clip")
    g.add_argument("--object-store-bytes", type=float, default=None,
                   help="bound the object-store memory of in-flight blocks (bytes; default: Ray Data's own limit)")


def model_options(a: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """``--model-option`` pairs → ``{"hand_object": {...}, "object_boxes": {...}}`` (scoped pairs win)."""
    shared: dict[str, Any] = {}
    scoped: dict[str, dict[str, Any]] = {v: {} for v in SCOPES.values()}
    for kv in a.model_option:
        if "=" not in kv:
            raise ValueError(f"--model-option {kv!r}: expected [SCOPE.]KEY=VALUE")
        k, v = kv.split("=", 1)
        try:
            val = json.loads(v)
        except json.JSONDecodeError:
            val = v
        scope, dot, key = k.partition(".")
        if dot and scope in SCOPES:
            scoped[SCOPES[scope]][key] = val
        elif dot:
            raise ValueError(f"--model-option {kv!r}: unknown scope {scope!r}; known: {', '.join(SCOPES)}")
        else:
            shared[k] = val
    return {name: {**shared, **opts} for name, opts in scoped.items()}


def model_settings(a: argparse.Namespace) -> dict:
    """The model-stage settings for the manifest."""
    opts = model_options(a)
    return {"hand_object_model": a.hand_object_model, "object_boxes": a.object_boxes,
            "hand_object_options": opts["hand_object"] if a.hand_object_model else {},
            "object_box_options": opts["object_boxes"] if a.object_boxes else {},
            "num_gpus": a.model_num_gpus, "num_cpus": a.model_num_cpus, "concurrency": a.model_concurrency,
            "batch_size": a.model_batch_size}


def add_model_stages(ds, a: argparse.Namespace, out: str):
    """Append the configured model stages to the record dataset ``ds`` (rows: ``ClipRecord.to_row()``);
    each adds its result to the rows' ``contact`` JSON for the CPU stage after it."""
    from pipelines.models.actors import HandObjectActor, ObjectBoxActor, bound_object_store, model_stage_kwargs

    if a.model_concurrency < 1:
        raise ValueError(f"--model-concurrency must be >= 1, got {a.model_concurrency}")
    if a.object_store_bytes is not None:
        bound_object_store(a.object_store_bytes)
    opts = model_options(a)
    if not a.model_num_gpus:
        # Ray (2.60) leaves every GPU visible to an actor that reserved none: a built-in backend's device
        # "auto" would then take a GPU it never reserved (next to the actors and Train workers that did),
        # so without --model-num-gpus the model stages run on the CPU, as the resources say
        for scope, backend, registry in (("hand_object", a.hand_object_model, HAND_OBJECT_BACKENDS),
                                         ("object_boxes", a.object_boxes, OBJECT_BOX_BACKENDS)):
            if backend in registry:
                opts[scope] = {**opts[scope]}
                opts[scope].setdefault("device", "cpu")
        if (a.hand_object_model or a.object_boxes) and a.num_gpus:
            print("note: --num-gpus reserves GPUs for the per-clip stage only; the model stages "
                  "(--hand-object-model / --object-boxes) get theirs from --model-num-gpus, 0 here: they run "
                  "on the CPU", file=sys.stderr, flush=True)
    kw = model_stage_kwargs(num_gpus=a.model_num_gpus, concurrency=a.model_concurrency,
                            batch_size=a.model_batch_size, num_cpus=a.model_num_cpus)
    if a.hand_object_model:
        ds = ds.map_batches(HandObjectActor, fn_constructor_kwargs={
            "backend": a.hand_object_model, "out_dir": out, "backend_options": opts["hand_object"],
            "stride": a.hand_object_stride, "max_frames": a.hand_object_max_frames}, **kw)
    if a.object_boxes:
        ds = ds.map_batches(ObjectBoxActor, fn_constructor_kwargs={
            "backend": a.object_boxes, "backend_options": opts["object_boxes"]}, **kw)
    return ds
