"""Fit the SSIM model's trained parts (seed 004's two-input MesoInception-4) on cached inputs.

MesoInception-4's convolutions keep the authors' weights, so each crop's convolution features are
computed once (for the crop and its mirror image); a fit trains the rest: the 16-unit dense layer
(from the authors' weights), the SSIM-map branch, the statistics branch and the output. Batches are
drawn like the Lite members' (`top_fit`): half the mass on real faces, every real clip alike, half
on fakes shared equally between manipulation families, then sources, then clips, so no source is
learnable as a label. A fixed number of steps, no early stopping: nothing is chosen on the clips
the protocol reports: the number of steps is picked by nested cross-validation among snapshots
of one fit (`fit_snapshots`; `pair_run.py`).
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from models.datasets import REAL, LabeledVideo
from models.ssim_pairs import PairInputs
from models.training.top_fit import GRAD_CLIP_NORM, spread, spread_fakes
from models.zoo.meso_ssim import MesoInceptionSSIM

PREDICT_BATCH = 512
WARMUP_STEPS = 20
MIRRORED = 1  # view index of the mirrored crop


@dataclass(frozen=True)
class PairFitConfig:
    """How one fit trains.

    Attributes:
        steps: optimiser steps of the fit that ships (the protocol reports it among `snapshots`).
        snapshots: step counts the protocol chooses among (0: the authors' model, SSIM unused).
        batch_size: faces per step.
        learning_rate: AdamW rate after a linear warm-up of `WARMUP_STEPS` (constant, so that
            one fit's snapshots are the fits of every step count).
        weight_decay: AdamW decoupled weight decay.
        seed: seeds the draws and the new layers' initial weights.
        use_pairs: False trains the ablation: the same model with its SSIM inputs held constant
            (what the face branch alone gives).
        train_face: also train the face branch's dense layer (else it keeps the authors' weights).
    """

    steps: int = 200
    snapshots: tuple[int, ...] = (0, 100, 200, 400, 800)
    batch_size: int = 64
    learning_rate: float = 1e-3
    weight_decay: float = 0.05
    seed: int = 0
    use_pairs: bool = True
    train_face: bool = False


@dataclass(frozen=True)
class PairClip:
    """One clip's tracked faces as the fit and the protocol use them.

    Attributes:
        video: the labelled clip.
        features: (2, N, F) convolution features of each crop and of its mirror image.
        pairs: the crops' SSIM inputs (of the unmirrored crops).
        identities: (N,) person track of each face.
        main: (N,) bool, faces of the person the label is about.
    """

    video: LabeledVideo
    features: np.ndarray
    pairs: PairInputs
    identities: np.ndarray
    main: np.ndarray


@dataclass(frozen=True)
class FacePool:
    """Every clip's faces in flat arrays, so a batch is a few indexing operations.

    Attributes:
        features: (2, M, F) features of each face and of its mirror image.
        maps: (M, 1, S, S) SSIM maps; stats: (M, 2) track statistics.
        clip: (M,) which clip each face is from; main: (M,) bool, of the clip's main person.
        fake: (M,) float32 target (1 = the clip is fake).
    """

    features: np.ndarray
    maps: np.ndarray
    stats: np.ndarray
    clip: np.ndarray
    main: np.ndarray
    fake: np.ndarray

    @classmethod
    def of(cls, clips: list[PairClip]) -> FacePool:
        return cls(
            features=np.concatenate([c.features for c in clips], axis=1),
            maps=np.concatenate([c.pairs.maps for c in clips]),
            stats=np.concatenate([c.pairs.stats for c in clips]),
            clip=np.concatenate([np.full(len(c.main), i) for i, c in enumerate(clips)]),
            main=np.concatenate([c.main for c in clips]),
            fake=np.concatenate([np.full(len(c.main), float(c.video.label != REAL), np.float32)
                                 for c in clips]),
        )

    def batch(self, faces: np.ndarray, mirrored: np.ndarray, use_pairs: bool
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Model inputs of `faces`, each mirrored where `mirrored` says (its map mirrored too)."""
        features = np.where(mirrored[:, None], self.features[MIRRORED, faces], self.features[0, faces])
        maps = self.maps[faces]
        maps = np.where(mirrored[:, None, None, None], maps[..., ::-1], maps)
        stats = self.stats[faces]
        if not use_pairs:
            maps, stats = np.ones_like(maps), np.zeros_like(stats)
        return torch.from_numpy(features), torch.from_numpy(np.ascontiguousarray(maps)), torch.from_numpy(stats)


def face_weights(pool: FacePool, clips: list[PairClip], in_training: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pool rows of the main-person faces of the training clips, and their draw probabilities."""
    rows = np.flatnonzero(pool.main & in_training[pool.clip])
    per_clip: dict[int, list[int]] = defaultdict(list)
    for position, row in enumerate(rows):
        per_clip[int(pool.clip[row])].append(position)
    shares = np.zeros(len(rows))
    real_share = np.zeros(len(rows))
    spread(1.0, {str(c): r for c, r in per_clip.items() if clips[c].video.label == REAL}, real_share)
    shares += 0.5 * real_share
    spread_fakes(0.5, {clips[c].video: faces for c, faces in per_clip.items()
                       if clips[c].video.label != REAL}, shares)
    return rows, shares / shares.sum()


@torch.no_grad()
def start_from_authors(model: MesoInceptionSSIM) -> None:
    """Set the output layer so the untrained model is the authors' MesoInception-4: their output
    weights on the face branch, zero on the SSIM branches (which training then brings in)."""
    face_output = model.face.head.output
    hidden = face_output.in_features
    model.output.weight.zero_()
    model.output.weight[:, :hidden] = face_output.weight
    model.output.bias.copy_(face_output.bias)


def fit_pair_model(base: MesoInceptionSSIM, pool: FacePool, clips: list[PairClip],
                   in_training: np.ndarray, config: PairFitConfig) -> MesoInceptionSSIM:
    """A copy of `base` fitted for `config.steps` on the main faces of `in_training` clips."""
    return fit_snapshots(base, pool, clips, in_training, config, (config.steps,))[config.steps]


def fit_snapshots(base: MesoInceptionSSIM, pool: FacePool, clips: list[PairClip],
                  in_training: np.ndarray, config: PairFitConfig, snapshots: Sequence[int],
                  ) -> dict[int, MesoInceptionSSIM]:
    """Copies of `base` after each of `snapshots` steps of one fit on the main faces of
    `in_training` clips (0: before any step)."""
    torch.manual_seed(config.seed)
    model = copy.deepcopy(base)
    for layer in (model.ssim, model.stats):
        for module in layer.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
    start_from_authors(model)
    trained = [*model.ssim.parameters(), *model.stats.parameters(), *model.output.parameters()]
    if config.train_face:
        trained += [*model.face.head.hidden.parameters()]
    optimiser = torch.optim.AdamW(trained, lr=config.learning_rate, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda step: min(1.0, (step + 1) / WARMUP_STEPS))
    rows, probabilities = face_weights(pool, clips, in_training)
    rng = np.random.default_rng(config.seed)
    taken = {0: copy.deepcopy(model).eval()} if 0 in snapshots else {}
    model.train()
    for step in range(1, max(snapshots) + 1):
        faces = rows[rng.choice(len(rows), size=config.batch_size, p=probabilities)]
        mirrored = rng.integers(0, 2, size=len(faces)).astype(bool)
        logits = model.logit_from_features(*pool.batch(faces, mirrored, config.use_pairs))
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            logits, torch.from_numpy(pool.fake[faces]))
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trained, GRAD_CLIP_NORM)
        optimiser.step()
        schedule.step()
        if step in snapshots:
            taken[step] = copy.deepcopy(model).eval()
    return taken


def predict_pairs(model: MesoInceptionSSIM, pool: FacePool, clip: int, use_pairs: bool = True) -> np.ndarray:
    """Logits of every tracked face of the `clip`-th clip (unmirrored), as the detector scores them."""
    faces = np.flatnonzero(pool.clip == clip)
    model.eval()
    outputs = []
    with torch.inference_mode():
        for start in range(0, len(faces), PREDICT_BATCH):
            part = faces[start : start + PREDICT_BATCH]
            outputs.append(model.logit_from_features(
                *pool.batch(part, np.zeros(len(part), bool), use_pairs)).float())
    return torch.cat(outputs).numpy()
