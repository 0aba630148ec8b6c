"""The model card of a trained ensemble: one pydantic record written as JSON and as markdown.

It says what the weights are (architecture, init, files, sha256, calibration), what they were
trained on and under which licence, how (augmentations, epochs, seed, machine, time), and how well
they did on held-out groups, overall and by source, per member and for the ensemble.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel

from models.evaluation import EvaluationReport, Metrics
from models.training.trainer import EpochLog
from models.training.validation import SliceReport, ValidationReport

DATA_LICENSE = (
    "Research only, non-commercial: FaceForensics++ (incl. Google/Jigsaw DeepFakeDetection) and "
    "DFDC terms of use. The weights inherit these restrictions; the training clips and anything "
    "extracted from them are not distributed."
)


class MemberCard(BaseModel):
    model_id: str
    architecture: str
    params: dict[str, Any]
    description: str
    init_weights: str
    frozen: str
    learning_rates: dict[str, float]
    file: str
    sha256: str
    size_bytes: int
    dtype: str
    fp16_check: dict[str, float]
    temperature: float
    epochs_run: int
    best_epoch: int
    history: list[EpochLog]
    training_seconds: float
    validation_uncalibrated_log_loss: dict[str, float]
    validation: ValidationReport


class DataCard(BaseModel):
    source: str
    license: str
    clips: int
    clips_train: int
    clips_validation: int
    crops_train: int
    crops_validation: int
    groups_train: list[str]
    groups_validation: list[str]
    clips_by_subset: dict[str, dict[str, int]]
    clips_without_face: list[str]
    extraction_errors: dict[str, str]


class TrainingCard(BaseModel):
    command: str
    seed: int
    frames_per_clip: int
    validation_fraction: float
    epochs_max: int
    samples_per_epoch: int
    batch_size: int
    patience: int
    sbi_fraction: float
    balancing: str
    augmentations: dict[str, str]
    selection: str
    calibration: str
    video_score: str


class MachineCard(BaseModel):
    device: str
    cpu: str
    threads: int
    torch: str
    timm: str
    extraction_seconds: float
    total_seconds: float


class DetectorValidation(BaseModel):
    """The ensemble on the validation clips as the detector scores them: what `fakewatch eval`
    reports with its defaults on the same groups."""

    policy: str
    frames_per_clip: int
    report: EvaluationReport


class ModelCard(BaseModel):
    name: str
    created: str
    members: list[MemberCard]
    ensemble_validation: ValidationReport
    detector_validation: DetectorValidation
    data: DataCard
    training: TrainingCard
    machine: MachineCard
    limitations: list[str]


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _fp16_text(check: dict[str, float]) -> str:
    return (
        f"mean |change of P(fake)| {check['mean_probability_change']:.4f}, max "
        f"{check['max_probability_change']:.4f}, frame AUC change {check['frame_auc_change']:+.4f}, "
        f"frame log loss change {check['frame_log_loss_change']:+.4f}"
    )


def _metric_row(name: str, video: Metrics, frame: Metrics) -> str:
    return (
        f"| {name} | {video.count} ({video.fakes} fake) | {_fmt(video.auc)} | {video.log_loss:.3f} "
        f"| {video.accuracy:.3f} | {frame.count} | {_fmt(frame.auc)} | {frame.log_loss:.3f} |"
    )


def _slice_rows(title: str, slices: dict[str, SliceReport]) -> list[str]:
    rows = [
        f"| {title} | clips (fakes) | video AUC | AUC vs all | video log loss | frame AUC | groups |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, part in slices.items():
        rows.append(
            f"| {name} | {part.clips} ({part.video.fakes}) | {_fmt(part.video.auc)} | "
            f"{_fmt(part.video_auc_vs_all)} | {part.video.log_loss:.3f} | {_fmt(part.frame.auc)} | "
            f"{', '.join(part.groups)} |"
        )
    return rows


def _detector_section(card: ModelCard) -> list[str]:
    view = card.detector_validation
    video, frame = view.report.video, view.report.frame
    groups = " ".join(f"--group {g}" for g in card.data.groups_validation)
    rows = []
    if video is not None and frame is not None:
        rows = [
            "| videos | video AUC | video log loss | video acc | frames | frame AUC | frame log loss |",
            "| --- | --- | --- | --- | --- | --- | --- |",
            (f"| {video.count} ({video.fakes} fake) | {_fmt(video.auc)} | {video.log_loss:.3f} | "
             f"{video.accuracy:.3f} | {frame.count} | {_fmt(frame.auc)} | {frame.log_loss:.3f} |"),
        ]
    return [
        "## As the detector scores them",
        "",
        (f"The ensemble's exported weights on the same clips the way the service does: "
         f"{view.frames_per_clip} frames, every tracked person, policy `{view.policy}` (video), "
         "most fake face (frame). `fakewatch eval` with its defaults reports these figures:"),
        "",
        "```bash",
        f"fakewatch eval DATA --labels DATA/labels.csv {groups}",
        "```",
        "",
        *rows,
        "",
        f"Clips without a tracked face: {view.report.no_face or 'none'}.",
        "",
    ]


def render_markdown(card: ModelCard) -> str:
    """The card for people: figures first, then how it was made."""
    scorers = [(m.model_id, m.validation) for m in card.members]
    scorers.append(("ensemble (mean)", card.ensemble_validation))
    lines = [
        f"# {card.name}",
        "",
        f"Created {card.created}. Trained by `{card.training.command}`.",
        "",
        "## Validation (held-out groups, calibrated probabilities)",
        "",
        f"Video score: {card.training.video_score}. Threshold 0.5 for accuracy.",
        "",
        "| scorer | videos | video AUC | video log loss | video acc | crops | frame AUC | frame log loss |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        *[_metric_row(name, report.video, report.frame) for name, report in scorers],
        "",
        ("\"AUC vs all\": the slice's clips against every validation clip of the other label, for "
        "slices that hold one label only."),
        "",
    ]
    for name, report in scorers:
        lines += [f"### {name}", "", *_slice_rows("source family", report.by_family), "",
                  *_slice_rows("subset", report.by_subset), ""]
    lines += _detector_section(card)
    lines += ["## Members", ""]
    for member in card.members:
        lines += [
            f"### {member.model_id}",
            "",
            member.description,
            "",
            f"- architecture: `{member.architecture}` {member.params}",
            f"- init: {member.init_weights}; frozen: {member.frozen}",
            f"- learning rates: {member.learning_rates}",
            (
                f"- file: `{member.file}` ({member.dtype}, {member.size_bytes} bytes); fp16 "
                f"rounding on the validation crops: {_fp16_text(member.fp16_check)}"
            ),
            f"- sha256: `{member.sha256}`",
            (f"- temperature: {member.temperature:.4f} (P(fake) = sigmoid(logit / T)); uncalibrated "
            f"validation log loss: {member.validation_uncalibrated_log_loss}"),
            (f"- epochs run: {member.epochs_run}, kept epoch {member.best_epoch}, "
            f"{member.training_seconds / 60:.1f} min"),
            "",
            "| epoch | train loss | val loss | val frame AUC | val video AUC | seconds |",
            "| --- | --- | --- | --- | --- | --- |",
            *[
                f"| {e.epoch} | {e.train_loss:.4f} | {e.val_loss:.4f} | {_fmt(e.val_frame_auc)} | "
                f"{_fmt(e.val_video_auc)} | {e.seconds:.0f} |"
                for e in member.history
            ],
            "",
        ]
    data, training, machine = card.data, card.training, card.machine
    lines += [
        "## Data",
        "",
        f"- source: {data.source}",
        f"- licence: {data.license}",
        (f"- clips: {data.clips} ({data.clips_train} train, {data.clips_validation} validation); "
        f"crops: {data.crops_train} train, {data.crops_validation} validation"),
        f"- validation groups: {', '.join(data.groups_validation)}",
        f"- clips by subset (train/validation, REAL/FAKE): {data.clips_by_subset}",
        f"- clips without a face: {data.clips_without_face or 'none'}",
        f"- extraction errors: {data.extraction_errors or 'none'}",
        "",
        "## Training",
        "",
        (f"- seed {training.seed}, {training.frames_per_clip} frames per clip, validation fraction "
        f"{training.validation_fraction}"),
        (f"- up to {training.epochs_max} epochs of {training.samples_per_epoch} draws, batch "
        f"{training.batch_size}, patience {training.patience}"),
        f"- balancing: {training.balancing}",
        f"- self-blended images: {training.sbi_fraction:.0%} of fake draws",
        f"- selection: {training.selection}",
        f"- calibration: {training.calibration}",
        "- augmentations:",
        *[f"  - {name}: {how}" for name, how in training.augmentations.items()],
        "",
        "## Machine",
        "",
        (f"- {machine.device}, {machine.cpu}, {machine.threads} threads, torch {machine.torch}, "
        f"timm {machine.timm}"),
        (f"- face extraction {machine.extraction_seconds / 60:.1f} min, total "
        f"{machine.total_seconds / 60:.1f} min"),
        "",
        "## Limitations",
        "",
        *[f"- {item}" for item in card.limitations],
        "",
    ]
    return "\n".join(lines)


def write_card(card: ModelCard, out_dir: Path, stem: str) -> tuple[Path, Path]:
    """Write `<stem>.json` and `<stem>.md` into `out_dir`."""
    json_path, md_path = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    json_path.write_text(card.model_dump_json(indent=2) + "\n", encoding="utf-8")
    md_path.write_text(render_markdown(card), encoding="utf-8")
    return json_path, md_path
