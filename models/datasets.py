"""Labeled video listings in the three layouts the field uses, for evaluation and training.

- `labels.csv`: columns `file,label` (FAKE/REAL or 1/0), optional `group`, `subset` and `family`
  (how a fake was made: `faceswap`, `lipsync`, ...; `none` for real clips).
- DFDC `metadata.json`: `{name: {"label": "FAKE"|"REAL", "original": name|null, ...}}`.
- FaceForensics++: `original_sequences/<source>/<compression>/videos/*.mp4` are real,
  `manipulated_sequences/<method>/<compression>/videos/*.mp4` are fake.
Groups keep clips of one person or one original video together, so splits never leak.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from models.errors import ConfigError

FAKE, REAL = 1, 0
_LABEL_WORDS = {"fake": FAKE, "1": FAKE, "real": REAL, "0": REAL}


@dataclass(frozen=True)
class LabeledVideo:
    path: Path
    label: int  # 1 = fake
    group: str
    subset: str
    family: str = ""  # manipulation family of a fake ("none" or "" for real clips)


def list_labeled_videos(root: Path, labels: Path | None = None) -> list[LabeledVideo]:
    """Every labeled video under `root`, from `labels` (CSV or metadata.json) or the folder layout."""
    if labels is None:
        if (root / "labels.csv").is_file():
            labels = root / "labels.csv"
        elif (root / "metadata.json").is_file():
            labels = root / "metadata.json"
        elif (root / "original_sequences").is_dir() or (root / "manipulated_sequences").is_dir():
            return _from_faceforensics(root)
        else:
            raise ConfigError(
                f"no labels for {root}: give --labels (labels.csv or DFDC metadata.json), "
                "or point at a FaceForensics++ folder (original_sequences/, manipulated_sequences/)"
            )
    if labels.suffix.lower() == ".json":
        return _from_dfdc_metadata(root, labels)
    return _from_csv(root, labels)


def _parse_label(value: str, where: str) -> int:
    try:
        return _LABEL_WORDS[value.strip().lower()]
    except KeyError:
        raise ConfigError(f"{where}: label {value!r} is not FAKE/REAL or 1/0") from None


def _from_csv(root: Path, labels: Path) -> list[LabeledVideo]:
    with labels.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"file", "label"} - set(reader.fieldnames or [])
        if missing:
            raise ConfigError(f"{labels} lacks column(s) {', '.join(sorted(missing))}")
        return [
            LabeledVideo(
                path=root / row["file"],
                label=_parse_label(row["label"], f"{labels}:{line}"),
                group=row.get("group") or row["file"],
                subset=row.get("subset") or "",
                family=row.get("family") or "",
            )
            for line, row in enumerate(reader, start=2)
        ]


def _from_dfdc_metadata(root: Path, metadata: Path) -> list[LabeledVideo]:
    entries = json.loads(metadata.read_text())
    return [
        LabeledVideo(
            path=root / name,
            label=_parse_label(entry["label"], f"{metadata}:{name}"),
            # A fake and the real video it was made from share a group.
            group=entry.get("original") or name,
            subset=entry.get("split", "dfdc"),
        )
        for name, entry in sorted(entries.items())
    ]


def _from_faceforensics(root: Path) -> list[LabeledVideo]:
    videos = []
    for kind, label in (("original_sequences", REAL), ("manipulated_sequences", FAKE)):
        for path in sorted((root / kind).glob("*/*/videos/*.mp4")):
            source, compression = path.parts[-4], path.parts[-3]
            # Real "033.mp4"; fake "033_097.mp4" is target 033 with 097's face: group by target.
            videos.append(
                LabeledVideo(
                    path=path,
                    label=label,
                    group=path.stem.split("_")[0],
                    subset=f"{source}_{compression}",
                )
            )
    return videos
