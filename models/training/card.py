"""The model card of a trained ensemble: one pydantic record written as JSON and as Markdown.

Its figures are the leave-sources-out protocol's: every clip scored by a model fitted without its
person and its source, calibrated and thresholded with values fitted on other folds. Nothing on the
card is in-sample. It also says what the weights are, what they were trained on under which
licence, and how (views, steps, seed, machine, time).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel

from models.protocol.metrics import ProtocolMetrics, ProtocolReport
from models.protocol.tables import report_tables, table
from models.schema import ThresholdPreset

DATA_LICENSE = (
    "Research only, non-commercial: FaceForensics++ (incl. Google/Jigsaw DeepFakeDetection) and "
    "DFDC terms of use, and the publishing repositories' own licences (some non-commercial, some "
    "none stated). The weights inherit these restrictions; the training clips and anything "
    "extracted from them are not distributed."
)
# The members, temperatures and thresholds scoring a fold never saw it; the policy was chosen on
# every fold's scores, so the fold column does not say held-out.
FOLD_TITLE = "fold (members, calibration and thresholds fitted on the other folds; policy chosen on all)"

LIMITATIONS = [
    ("The protocol's folds hold whole sources out, but every fold still comes from the same "
    "research repositories; uploads from phones, other generators and other compressions will "
    "score lower. The policy was chosen among four on the same out-of-fold scores it is reported "
    "on (a small optimism)."),
    ("Still-photo animation, lip sync and NeRF talking heads have few training examples (a handful "
    "of sources each); their figures have wide intervals."),
    ("Per-frame evidence only: the members see one face crop at a time, so temporal artefacts "
    "(flicker, unnatural motion) are not used."),
]


class MemberCard(BaseModel):
    model_id: str
    architecture: str
    params: dict[str, Any]
    description: str
    init_weights: str
    trained: str
    learning_rates: dict[str, float]
    file: str
    sha256: str
    size_bytes: int
    dtype: str
    fp16_check: dict[str, float] | None  # None: stored in fp32 without trying fp16 (small file)
    temperature: float
    training_seconds: float


class DataCard(BaseModel):
    source: str
    license: str = DATA_LICENSE
    clips: int
    real_clips: int
    groups: int
    faces: int
    training_views: int
    folds: dict[str, list[str]]  # fold -> the sources it holds out
    clips_by_subset: dict[str, dict[str, int]]
    clips_without_face: list[str]
    extraction_errors: dict[str, str]


class TrainingCard(BaseModel):
    command: str
    seed: int
    frames_per_fake_clip: int
    frames_per_real_clip: int
    folds: int
    views: dict[str, int]  # per crop
    steps: int
    batch_size: int
    sbi_fraction: float
    augmentations: dict[str, str]
    teacher: str | None = None  # what scored the views for distilled members
    fit_mix: str | None = None  # what one fit draws, when not the SBI mix


class MachineCard(BaseModel):
    device: str
    cpu: str
    threads: int
    torch: str
    timm: str
    extraction_seconds: float
    rendering_seconds: float
    total_seconds: float


class ModelCard(BaseModel):
    name: str
    created: str
    members: list[MemberCard]
    policy: str
    presets: list[ThresholdPreset]
    protocol: ProtocolReport  # chosen policy, default preset, cross-fitted thresholds
    policies: dict[str, ProtocolMetrics]
    member_protocol: dict[str, ProtocolMetrics]
    preset_protocol: dict[str, ProtocolMetrics]
    crossfit_temperatures: dict[str, list[float]]
    data: DataCard
    training: TrainingCard
    machine: MachineCard
    limitations: list[str] = LIMITATIONS
    variants: dict[str, ProtocolMetrics] = {}  # other settings run under the same protocol


def presets_table(presets: list[ThresholdPreset]) -> list[str]:
    """Markdown rows: each preset's threshold and the rates it reached (cross-fitted)."""
    rows = ["| preset | threshold | real videos flagged | fakes caught | default |", "| --- | --- | --- | --- | --- |"]
    rows += [f"| {p.name} | {p.threshold:.3f} | {p.real_flagged:.0%} | {p.fakes_caught:.0%} | "
             f"{'yes' if p.default else ''} |" for p in presets]
    return rows


def _protocol_section(card: ModelCard) -> list[str]:
    default = next(p for p in card.presets if p.default)
    return [
        "## How well it works on sources it never saw",
        "",
        (f"Leave-sources-out cross-validation over {len(card.data.folds)} folds: each fold's clips "
         "are scored by members fitted without that fold's people and sources (a source unit joins "
         "clips sharing an identity group or a subset, so FaceForensics++ at both compressions is "
         "one unit). Temperatures and thresholds applied to a fold were fitted on the other folds' "
         f"out-of-fold scores. Video score: policy `{card.policy}`, every tracked person. "
         f"Threshold: preset `{default.name}` (TPR/FPR \"@thr\" columns), refitted per fold; the "
         "shipped threshold is fitted on all out-of-fold real videos. AUC intervals: 95% bootstrap "
         "over identity groups. Families: that family's fakes against every real clip."),
        "",
        report_tables(card.protocol, fold_title=FOLD_TITLE),
        "",
        "### Threshold presets",
        "",
        ("Each preset allows a share of real videos to be flagged (strict 5%, balanced 10%, "
         "sensitive 20%). The rates are cross-fitted: thresholds fitted on four folds, counted on "
         "the fifth."),
        "",
        *presets_table(card.presets),
        "",
        "### Aggregation policies (default preset)",
        "",
        table("policy", card.policies),
        "",
        "### Each member alone",
        "",
        table("member", card.member_protocol),
        "",
        *_variants_section(card.variants),
        "### Folds",
        "",
        *[f"- fold {k}: {', '.join(sources)}" for k, sources in card.data.folds.items()],
        "",
    ]


def _variants_section(variants: dict[str, ProtocolMetrics]) -> list[str]:
    if not variants:
        return []
    return [
        "### Variants under the same protocol",
        "",
        ("The same folds, fits and policy with one setting changed, to show what that setting "
         "adds; none of these is what ships."),
        "",
        table("variant", variants),
        "",
    ]


def _weights_line(member: MemberCard) -> str:
    check = member.fp16_check
    if check is None:
        return f"- file: `{member.file}` ({member.dtype}, {member.size_bytes} bytes)"
    return (f"- file: `{member.file}` ({member.dtype}, {member.size_bytes} bytes); fp16 rounding "
            f"moved P(fake) by {check['mean_probability_change']:.4f} on average (max "
            f"{check['max_probability_change']:.4f})")


def _teacher_lines(teacher: str | None) -> list[str]:
    """How a distilled member was taught, and how a larger teacher would take its place."""
    if teacher is None:
        return []
    return [
        (f"- teacher {teacher}. The loss is the mean of BCE(class head, label) and "
         "BCE(distillation head, teacher's P(fake)); the member answers with its distillation head."),
        ("- a larger teacher plugs in by name: any registry ensemble or model with weights on disk "
         "(e.g. `--teacher dfdc-winner --device cuda` for the DFDC winner's B7s, the teacher of "
         "Heo et al.), its crop cut from the student's as long as it needs no more context"),
    ]


def _fit_mix(training: TrainingCard) -> str:
    if training.fit_mix is not None:
        return training.fit_mix
    return (f"half the mass real, {training.sbi_fraction:.0%} of the fake mass self-blended, the "
            "rest genuine fakes shared equally by family, then source, then clip")


def render_markdown(card: ModelCard) -> str:
    """The card for people: figures first, then how it was made."""
    overall = card.protocol.overall
    lines = [
        f"# {card.name}",
        "",
        f"Created {card.created}. Trained by `{card.training.command}`.",
        "",
        table("all videos, out of fold", {"overall": overall}),
        "",
        *_protocol_section(card),
        "## Members",
        "",
    ]
    for member in card.members:
        lines += [
            f"### {member.model_id}",
            "",
            member.description,
            "",
            f"- architecture: `{member.architecture}` {member.params}",
            f"- init: {member.init_weights}; trained: {member.trained}",
            f"- learning rates: {member.learning_rates}",
            _weights_line(member),
            f"- sha256: `{member.sha256}`",
            (f"- temperature: {member.temperature:.4f} (P(fake) = sigmoid(logit / T)), fitted on "
             f"every out-of-fold logit; per fold: {card.crossfit_temperatures[member.model_id]}"),
            f"- final fit: {member.training_seconds / 60:.1f} min",
            "",
        ]
    data, training, machine = card.data, card.training, card.machine
    lines += [
        "## Data",
        "",
        f"- source: {data.source}",
        f"- licence: {data.license}",
        (f"- {data.clips} clips with a tracked face ({data.real_clips} real) in {data.groups} "
         f"identity groups; {data.faces} faces; {data.training_views} training views"),
        f"- clips by subset: {data.clips_by_subset}",
        f"- clips without a tracked face: {data.clips_without_face or 'none'}",
        f"- extraction errors: {data.extraction_errors or 'none'}",
        "",
        "## Training",
        "",
        (f"- seed {training.seed}; {training.frames_per_real_clip} frames per real clip, "
         f"{training.frames_per_fake_clip} per fake clip; {training.folds} folds"),
        f"- views per crop: {training.views}",
        f"- every fit: {training.steps} steps of {training.batch_size} views; {_fit_mix(training)}",
        "- augmentations (real and fake views alike):",
        *[f"  - {name}: {how}" for name, how in training.augmentations.items()],
        *_teacher_lines(training.teacher),
        "",
        "## Machine",
        "",
        (f"- {machine.device}, {machine.cpu}, {machine.threads} threads, torch {machine.torch}, "
         f"timm {machine.timm}"),
        (f"- face extraction {machine.extraction_seconds / 60:.1f} min, views and frozen features "
         f"{machine.rendering_seconds / 60:.1f} min, total {machine.total_seconds / 60:.1f} min"),
        "",
        "## Limitations",
        "",
        *[f"- {item}" for item in card.limitations],
        "",
    ]
    return "\n".join(lines)


def write_card(card: BaseModel, markdown: str, out_dir: Path, stem: str) -> tuple[Path, Path]:
    """Write a card as `<stem>.json` (the record) and `<stem>.md` (`markdown`) into `out_dir`."""
    json_path, md_path = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    json_path.write_text(card.model_dump_json(indent=2) + "\n", encoding="utf-8")
    md_path.write_text(markdown, encoding="utf-8")
    return json_path, md_path
