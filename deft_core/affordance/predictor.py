"""Deploy-time wrapper of the affordance model: image + object box + text → grasp prior in image pixels.

``load_affordance(dir).predict(image, object_box, text)``: ``image`` is the full camera frame
(H, W, 3) uint8 RGB; ``object_box`` (x1, y1, x2, y2) the object's tight box in its pixels. The result is in
image pixels (x right, y down) and the camera frame.

How the box becomes the model's square input (``framing``): by default (``"box"``) the box itself is
resized to the input, aspect not kept. That is *not* how the training crops were framed: extraction pads
the object box by 20 px and squares it (:func:`deft_core.crop.square_box`), and ``"training"`` frames the
robot's crop that way (the padding the same fraction of the short side as in the training frames,
recorded in the export). Measured in the simulator (2026-11-27, run H's model, 10 held-out trials per
split, affordance prior alone, train / test successes): ``"box"`` pick cup 8 / 8, open drawer 5 / 2, pick
grape 7 / 7, pour cup 8 / 3; ``"training"`` 0 / 0, 6 / 5, 0 / 1, 0 / 0; ``"square"`` (squared, unpadded)
0 / 2, 7 / 1, 7 / 7, 0 / 2. The tight box keeps every predicted point on the object; with the object
small in a padded crop, the points of the cup tasks land beside it and the grasp collides. So ``"box"``
stays the default, and the rest of the robot chain (retargeting, the Table 2 numbers) was measured with it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from deft_core.affordance.encoders import TextEncoder, make_text_encoder
from deft_core.affordance.model import AffordanceModel
from deft_core.crop import square_box

#: the crop padding of exports that do not record theirs: extraction's 20 px on the 256-px short side of the
#: synthetic frames every earlier model was trained on
DEFAULT_CROP_PAD_FRACTION = 20 / 256


@dataclass
class AffordancePrediction:
    """All pixel quantities are in the input image's pixels (x right, y down).

    ``contact_points`` (K, 2) the model's K spatial-softmax points; ``gmm_means`` / ``gmm_vars`` /
    ``gmm_weights`` (k, 2) / (k, 2) px² / (k,) a diagonal GMM fitted to the summed contact heatmap;
    ``contact_mean`` (2,) the heatmap's expected contact point; ``wrist_rotation`` (3,) axis-angle (rad,
    camera frame, OpenCV axes); ``hand_pose`` (45,) MANO axis-angle (rad, right hand, flat-hand-mean);
    ``points_normalised`` (K, 2) crop-normalised points; ``heatmaps`` (K, h, w) crop heatmaps (sum 1 each).
    """

    contact_points: np.ndarray
    gmm_means: np.ndarray
    gmm_vars: np.ndarray
    gmm_weights: np.ndarray
    contact_mean: np.ndarray
    wrist_rotation: np.ndarray
    hand_pose: np.ndarray
    points_normalised: np.ndarray
    heatmaps: np.ndarray
    object_box: np.ndarray


def fit_heatmap_gmm(prob: np.ndarray, init_means: np.ndarray, k: int = 3, iters: int = 30,
                    min_var: float = 1e-4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted EM for a diagonal GMM over a (h, w) probability map, in normalised [0, 1] coordinates.

    Initial means: ``k`` mutually farthest of ``init_means`` (the model's points). Deterministic.
    Returns (means (k, 2), vars (k, 2), weights (k,))."""
    h, w = prob.shape
    ys, xs = np.mgrid[0:h, 0:w]
    pts = np.stack([(xs.ravel() + 0.5) / w, (ys.ravel() + 0.5) / h], 1)
    wts = prob.ravel().astype(np.float64)
    wts = wts / max(wts.sum(), 1e-12)
    chosen = [0]
    k = max(1, min(k, len(init_means)))
    while len(chosen) < k:
        d = np.min(np.linalg.norm(init_means[:, None] - init_means[chosen][None], axis=-1), axis=1)
        chosen.append(int(np.argmax(d)))
    means = init_means[chosen].astype(np.float64)
    var = np.full((k, 2), 0.01)
    pi = np.full(k, 1.0 / k)
    for _ in range(iters):
        logp = -0.5 * (((pts[:, None] - means[None]) ** 2) / var[None] + np.log(2 * np.pi * var[None])).sum(-1)
        logp += np.log(pi[None] + 1e-12)
        logp -= logp.max(1, keepdims=True)
        r = np.exp(logp)
        r /= r.sum(1, keepdims=True)
        rw = r * wts[:, None]
        nk = rw.sum(0) + 1e-12
        means = (rw.T @ pts) / nk[:, None]
        var = np.maximum((rw.T @ pts**2) / nk[:, None] - means**2, min_var)
        pi = nk / nk.sum()
    return means, var, pi


class AffordancePredictor:
    """Holds the model, its config and its text encoder; :meth:`predict` runs one image."""

    def __init__(self, model: AffordanceModel, config: dict, text_encoder: TextEncoder | None = None,
                 device: str = "cpu", gmm_components: int = 3, framing: str = "box"):
        if framing not in self.FRAMINGS:
            raise ValueError(f"framing {framing!r} is not one of {self.FRAMINGS}")
        self.model, self.config, self.device, self.framing = model.eval(), config, device, framing
        cfg = model.cfg
        self.text_encoder = text_encoder or make_text_encoder(cfg.text_encoder)
        if self.text_encoder.id != cfg.text_encoder or self.text_encoder.dim != cfg.text_dim:
            raise ValueError(f"text encoder {self.text_encoder.id!r} ({self.text_encoder.dim}-d) does not match the "
                             f"checkpoint's {cfg.text_encoder!r} ({cfg.text_dim}-d)")
        self.gmm_components = gmm_components
        self._text_cache: dict[str, np.ndarray] = {}

    def embed_text(self, text: str) -> np.ndarray:
        if text not in self._text_cache:
            self._text_cache[text] = self.text_encoder.encode([text])[0]
        return self._text_cache[text]

    @property
    def hand_label_texts(self) -> dict[str, int] | None:
        """Text → number of training rows that supervised the wrist and pose heads with it (the export's
        ``training.data.hand_label_texts``); ``None`` for checkpoints exported before it was recorded."""
        texts = ((self.config.get("training") or {}).get("data") or {}).get("hand_label_texts")
        return None if texts is None else {str(k): int(v) for k, v in texts.items()}

    def hand_text_support(self, text: str) -> dict | None:
        """How close ``text`` is to a text the wrist and pose heads were trained on: ``{"nearest": text,
        "similarity": cosine of the text embeddings, "rows": training rows with that text}``, or ``None``
        when the checkpoint does not record its hand-label texts (or none had a non-zero weight).

        The heads are conditioned on the text; a text unlike any they were supervised with gets an
        extrapolated wrist and hand (measured on the embedded default with MiniLM: the cup and drawer texts,
        at cosine ≥ 0.68 to a HOI4D text, got wrists 11–22° from the human's; the spoon and lemon texts, at
        0.34–0.52, 48–131°; the grape text, at 0.37, happened to land 13° off; docs/finetune-cli.md)."""
        texts = self.hand_label_texts
        if not texts:
            return None
        names = list(texts)
        emb = np.stack([self.embed_text(t) for t in names]).astype(np.float64)
        q = np.asarray(self.embed_text(text), dtype=np.float64)
        sims = emb @ q / np.maximum(np.linalg.norm(emb, axis=1) * np.linalg.norm(q), 1e-12)
        k = int(np.argmax(sims))
        return {"nearest": names[k], "similarity": float(sims[k]), "rows": texts[names[k]]}

    @property
    def crop_pad_fraction(self) -> float:
        """The crops' padding as a fraction of the frame's short side, as in the training data (the export's
        ``training.data.crop``; :data:`DEFAULT_CROP_PAD_FRACTION` for exports that do not record it)."""
        crop = ((self.config.get("training") or {}).get("data") or {}).get("crop") or {}
        return float(crop.get("pad_fraction_of_short_side", DEFAULT_CROP_PAD_FRACTION))

    #: how :meth:`crop` frames the object box: "box" (the box itself, resized to the square input),
    #: "square" (squared about its centre, no padding) or "training" (padded and squared like the training crops)
    FRAMINGS = ("box", "square", "training")

    def crop(self, image: np.ndarray, object_box) -> tuple[np.ndarray, np.ndarray]:
        """(S, S, 3) model input and the integer box actually used: the ``object_box`` clipped to the image,
        as it is (``framing="box"``), squared about its centre (``"square"``), or padded by
        :attr:`crop_pad_fraction` of the image's short side and squared inside the image as extraction
        frames the training crops (``"training"``); see the module docstring for which works."""
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"image must be an HxWx3 uint8 RGB array, got shape {image.shape} dtype {image.dtype}")
        h, w = image.shape[:2]
        x1, y1, x2, y2 = (float(v) for v in object_box)
        box = np.array([max(0, int(np.floor(x1))), max(0, int(np.floor(y1))),
                        min(w, int(np.ceil(x2))), min(h, int(np.ceil(y2)))])
        if box[2] - box[0] < 2 or box[3] - box[1] < 2:
            raise ValueError(f"object_box {tuple(object_box)} is empty inside the {w}x{h} image")
        if self.framing != "box":
            pad = self.crop_pad_fraction * min(w, h) if self.framing == "training" else 0.0
            box = square_box(box, (w, h), pad=pad).astype(int)
        s = self.model.cfg.image_size
        crop = cv2.resize(image[box[1]:box[3], box[0]:box[2]], (s, s), interpolation=cv2.INTER_AREA)
        return crop, box

    @torch.no_grad()
    def predict(self, image: np.ndarray, object_box, text: str) -> AffordancePrediction:
        crop, box = self.crop(image, object_box)
        emb = torch.from_numpy(self.embed_text(text)[None]).to(self.device)
        out = self.model(torch.from_numpy(crop[None]).to(self.device), emb)
        pts = out["points"][0].cpu().numpy().astype(np.float64)
        heat = out["heatmaps"][0].cpu().numpy()
        size = np.array([box[2] - box[0], box[3] - box[1]], np.float64)
        origin = box[:2].astype(np.float64)
        prob = heat.sum(0)
        h, w = prob.shape
        ys, xs = np.mgrid[0:h, 0:w]
        mean_n = np.array([((xs + 0.5) / w * prob).sum(), ((ys + 0.5) / h * prob).sum()]) / prob.sum()
        means, var, pi = fit_heatmap_gmm(prob, pts, k=self.gmm_components)
        return AffordancePrediction(
            contact_points=origin + pts * size, gmm_means=origin + means * size, gmm_vars=var * size**2,
            gmm_weights=pi, contact_mean=origin + mean_n * size,
            wrist_rotation=out["wrist"][0].cpu().numpy().astype(np.float64),
            hand_pose=out["pose"][0].cpu().numpy().astype(np.float64),
            points_normalised=pts, heatmaps=heat, object_box=box.astype(np.float64))
