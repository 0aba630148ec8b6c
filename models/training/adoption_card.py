"""The card of an adopted (pretrained) ensemble: why these checkpoints, and how well they do.

Written as JSON and Markdown beside the registry. Its headline is the selection-aware figure
(each fold scored by the candidate chosen without it); the chosen ensemble's tables after it have
cross-fitted calibration and thresholds but no penalty for the choice itself, which the card says.
"""

from __future__ import annotations

from pydantic import BaseModel

from models.protocol.metrics import ProtocolMetrics, ProtocolReport
from models.protocol.tables import report_tables, table
from models.schema import ThresholdPreset
from models.training.card import DATA_LICENSE, presets_table

ADOPTION_LIMITATIONS = [
    ("The candidates were scored on research clips from the same repositories as the folds; "
     "phone uploads, newer generators and other compressions will score lower."),
    ("Only checkpoints never fitted on these clips can be candidates: fakewatch's own trained "
     "members are compared by their cross-validated card instead."),
    ("Per-frame evidence only; still-photo animation, lip sync and NeRF talking heads score below "
     "chance for these checkpoints (tables above): they were trained on face swaps and Face2Face."),
]


class AdoptedMember(BaseModel):
    model_id: str
    file: str
    sha256: str
    license: str
    training_data: str
    temperature: float  # fitted on every clip; per fold in `crossfit_temperatures`


class AdoptionCard(BaseModel):
    name: str
    created: str
    command: str
    ensemble: str
    chosen: str
    members: list[AdoptedMember]
    policy: str
    presets: list[ThresholdPreset]
    candidates: dict[str, list[str]]
    candidate_auc: dict[str, float]  # on every clip, uncalibrated mean, the policy
    chosen_per_fold: dict[str, str]
    nested: ProtocolMetrics
    protocol: ProtocolReport
    preset_protocol: dict[str, ProtocolMetrics]
    crossfit_temperatures: dict[str, list[float]]
    clips: int
    real_clips: int
    groups: int
    folds: dict[str, list[str]]
    data_license: str = DATA_LICENSE
    limitations: list[str] = ADOPTION_LIMITATIONS


def render_adoption(card: AdoptionCard) -> str:
    """The card for people: the honest figure first, then the chosen ensemble's detail."""
    candidates = ["| candidate | models | AUC, every clip (calibrated on every clip) |", "| --- | --- | --- |"]
    candidates += [f"| {name} | {', '.join(models)} | {card.candidate_auc[name]:.3f} |"
                   for name, models in card.candidates.items()]
    lines = [
        f"# {card.name}",
        "",
        (f"Created {card.created} by `{card.command}`. Ensemble `{card.ensemble}` = candidate "
        f"`{card.chosen}`: {', '.join(m.model_id for m in card.members)}; policy `{card.policy}`."),
        "",
        "## How well it works on sources it never saw",
        "",
        (f"None of these checkpoints was fitted on the {card.clips} research clips ({card.real_clips} "
         f"real, {card.groups} identity groups), so their raw scores are out of sample. What was "
         f"fitted here (the choice among candidates, temperatures, thresholds) is cross-fitted over "
         f"{len(card.folds)} leave-sources-out folds. Selection-aware figure: each fold's clips scored "
         "by the candidate with the best AUC on the other folds, every model calibrated on those "
         "folds first (threshold 0.5 in the @thr columns):"),
        "",
        table("nested choice", {"all videos": card.nested}),
        "",
        "Chosen per fold: " + ", ".join(f"{k}: `{v}`" for k, v in card.chosen_per_fold.items()) + ".",
        "",
        "### Candidates",
        "",
        *candidates,
        "",
        "### The chosen ensemble",
        "",
        ("Temperatures and the preset's threshold applied to a fold were fitted on the other folds; "
         "the choice of this candidate among the others is not paid for here (see the nested figure)."),
        "",
        report_tables(card.protocol, fold_title="fold (calibration and thresholds fitted on the other folds; "
                                                "candidate chosen on every clip)"),
        "",
        "### Threshold presets",
        "",
        ("Each preset allows a share of real videos to be flagged (strict 5%, balanced 10%, "
         "sensitive 20%); the rates are cross-fitted, the shipped thresholds fitted on every clip."),
        "",
        *presets_table(card.presets),
        "",
        table("preset", card.preset_protocol),
        "",
        "## Members",
        "",
    ]
    for member in card.members:
        lines += [
            (f"- `{member.model_id}`: `{member.file}`, sha256 `{member.sha256}`, licence "
            f"{member.license}; trained on {member.training_data}; temperature "
            f"{member.temperature:.3f} (per fold {card.crossfit_temperatures[member.model_id]})"),
        ]
    lines += [
        "",
        "## Data",
        "",
        f"- licence: {card.data_license}",
        *[f"- fold {k}: {', '.join(sources)}" for k, sources in card.folds.items()],
        "",
        "## Limitations",
        "",
        *[f"- {item}" for item in card.limitations],
        "",
    ]
    return "\n".join(lines)

