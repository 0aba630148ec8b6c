"""`fakewatch eval`: run the detector over a labeled folder and report detection metrics."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from fakewatch.cli.common import detector_config, detector_options, load_detector


@click.command("eval")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--labels", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="labels.csv (file,label[,group,subset]) or DFDC metadata.json; "
                   "default: found in FOLDER, or the FaceForensics++ layout.")
@click.option("--subset", "subsets", multiple=True, help="Only videos of this subset (repeatable).")
@click.option("--group", "groups", multiple=True, help="Only videos of this group (repeatable).")
@detector_options
@click.option("--roc", "roc_path", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("fakewatch-roc.png"), show_default=True, help="Where to write the ROC curve PNG.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--compare", is_flag=True,
              help="Score every model with weights present (or --models) on the same faces and "
                   "print one protocol row per model and per complete registry ensemble.")
@click.option("--scores", "scores_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="With --compare: also write every clip's per-model crop scores (JSON Lines).")
def evaluate(
    folder: Path, labels: Path | None, subsets: tuple[str, ...], groups: tuple[str, ...],
    models: str | None, frames: int, policy: str | None, threshold: float | None, preset: str | None,
    device: str, precision: str,
    threads: int | None, registry_path: Path | None, roc_path: Path, as_json: bool, compare: bool,
    scores_path: Path | None,
) -> None:
    """Evaluate on a labeled folder: AUC with its 95% interval, fakes caught at 5%/10% of real videos
    flagged, error rates at the threshold, EER, log loss against the base rate, by family and
    source; accuracy, precision, recall, F1 and the confusion matrix.

    Only clips the weights were not trained on give honest figures: for the shipped weights, the
    model card's cross-validated tables are the protocol's.
    """
    from tqdm import tqdm

    from models.config import DetectOptions
    from models.datasets import list_labeled_videos
    from models.errors import FakewatchError
    from models.evaluation import ScoredVideo, plot_roc
    from models.evaluation import evaluate as evaluate_videos

    try:
        videos = list_labeled_videos(folder, labels)
    except FakewatchError as error:
        raise click.ClickException(str(error)) from error
    videos = [
        v for v in videos
        if (not subsets or v.subset in subsets) and (not groups or v.group in groups)
    ]
    if not videos:
        raise click.ClickException("no labeled videos match")
    if compare:
        config = detector_config(models, frames, policy, threshold, device, registry_path, precision)
        click.echo(compare_models(videos, config, threads, scores_path))
        return
    detector = load_detector(
        detector_config(models, frames, policy, threshold, device, registry_path, precision, preset),
        threads,
    )
    point = detector.operating_point(DetectOptions())
    scored: list[ScoredVideo] = []
    errors: dict[str, str] = {}
    for video in tqdm(videos, desc="evaluating", unit="video", file=sys.stderr, disable=None):
        try:
            result = detector.detect(video.path)
        except FakewatchError as error:
            errors[str(video.path)] = str(error)
            continue
        frame_scores = [max(f.probability for f in frame.faces) for frame in result.frames if frame.faces]
        scored.append(ScoredVideo(str(video.path), video.label, result.probability, frame_scores,
                                  video.subset, video.group, video.family))
    report = evaluate_videos(scored, point.threshold, errors, point.preset)
    plot_roc(scored, roc_path)
    if as_json:
        click.echo(report.model_dump_json(indent=2))
    else:
        click.echo(format_report(report))
        click.echo(f"ROC curve: {roc_path}")


def format_report(report) -> str:  # report: models.evaluation.EvaluationReport
    """A readable table of the report."""
    from models.protocol.tables import report_tables

    preset = f" (preset {report.preset})" if report.preset else ""
    lines = [f"threshold {report.threshold:.3f}{preset}"]
    if report.protocol is not None:
        lines += ["", report_tables(report.protocol), ""]
    rows = [("video", report.video), ("frame", report.frame)]
    rows += [(f"  {name}", m) for name, m in report.video_by_subset.items()]
    lines.append(f"{'level':<22}{'n':>5}{'fake':>6}{'AUC':>8}{'logloss':>9}{'acc':>7}{'prec':>7}{'recall':>7}{'F1':>7}")
    for name, m in rows:
        if m is None:
            lines.append(f"{name:<22}  (nothing scored)")
            continue
        auc = "-" if m.auc is None else f"{m.auc:.3f}"
        lines.append(
            f"{name:<22}{m.count:>5}{m.fakes:>6}{auc:>8}{m.log_loss:>9.3f}{m.accuracy:>7.3f}"
            f"{m.precision:>7.3f}{m.recall:>7.3f}{m.f1:>7.3f}"
        )
    for name, m in rows[:2]:
        if m is not None:
            (tn, fp), (fn, tp) = m.confusion_matrix
            lines.append(f"{name} confusion: real->real {tn}  real->fake {fp}  fake->real {fn}  fake->fake {tp}")
    if report.no_face:
        lines.append(f"no face found in {len(report.no_face)} video(s): {', '.join(report.no_face)}")
    for path, message in report.errors.items():
        lines.append(f"error {path}: {message}")
    return "\n".join(lines)


def compare_models(videos, config, threads: int | None, scores_path: Path | None) -> str:
    """`eval --compare`: every present model (or the requested ones) on the same clips and faces.

    Args:
        videos: labelled clips (`models.datasets.LabeledVideo`).
        config: `models.config.DetectorConfig`; its `models` None means every model with weights.
    """
    import dataclasses

    from tqdm import tqdm

    from models.comparison import compare, comparison_table, cpu_cost, save_clip_scores, score_clips
    from models.config import DEFAULT_POLICY, DEFAULT_THRESHOLD
    from models.errors import FakewatchError
    from models.registry import Registry

    try:
        registry = Registry.load(config.registry_path)
        entries = registry.resolve(config.models) if config.models else [
            e for e in registry.models.values() if registry.check(e).state in ("ok", "unverified")]
    except FakewatchError as error:
        raise click.ClickException(str(error)) from error
    if not entries:
        raise click.ClickException("no model has its weights present: nothing to compare")
    ids = [e.id for e in entries]
    detector = load_detector(dataclasses.replace(config, models=tuple(ids)), threads)
    errors: list[str] = []
    progress = tqdm(videos, desc="scoring", unit="video", file=sys.stderr, disable=None)
    clips = score_clips(detector, progress, lambda video, error: errors.append(f"{video.path}: {error}"))
    if scores_path is not None:
        save_clip_scores(clips, scores_path)
    candidates = {i: [i] for i in ids} | {
        name: list(members) for name, members in registry.ensembles.items()
        if len(members) > 1 and set(members) <= set(ids)}
    threshold = DEFAULT_THRESHOLD if config.threshold is None else config.threshold
    policy = config.policy or DEFAULT_POLICY  # one policy for every candidate, as its line says
    calibrated, calibration = _calibrated_for_comparison(clips)
    rows = compare(calibrated, candidates, policy, threshold, cpu_cost(detector))
    without_face = sum(clip.scores is None for clip in clips)
    lines = [
        (f"policy {policy}, threshold {threshold:.3f} for FPR/TPR@thr; {len(clips)} clips "
         f"scored, {without_face} without a face, {len(errors)} unreadable"),
        calibration,
        "Figures are honest only for models not trained on these clips.",
        "", comparison_table(rows), *errors,
    ]
    return "\n".join(lines)


def _calibrated_for_comparison(clips):  # -> tuple[list[ClipScores], str]
    """The clips at temperatures fitted on other sources where the folder allows folds, else
    as scored; with a line saying which, since the registry's temperatures may have been fitted
    on these very clips (the adopted MesoNets' were, on the research data)."""
    from models.errors import FakewatchError
    from models.protocol.folds import DEFAULT_FOLDS
    from models.training.scored_clips import crossfit_calibrated

    try:
        calibrated = crossfit_calibrated(clips, DEFAULT_FOLDS)
    except FakewatchError as error:
        return clips, (f"P(fake) at the registry's temperatures, not cross-fitted ({error}): "
                       "where those were fitted on these clips, log loss and the @thr columns "
                       "are in-sample.")
    return calibrated, (f"P(fake) at temperatures cross-fitted over {DEFAULT_FOLDS} leave-sources-out "
                        "folds: each clip's fitted on the other folds' clips.")
