"""Shared fixtures: real media files built once per session, one MTCNN, the research data.

Torch is not imported here: tests of the torch-free gateway must be able to run without it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests import media

# One thread per torch test process: on a small shared machine, tiny ops (MTCNN resizes each
# candidate box) run many times slower when OpenMP threads wait on busy cores. Read at torch start.
TORCH_THREADS = 1
os.environ.setdefault("OMP_NUM_THREADS", str(TORCH_THREADS))

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_TRAIN_DIR = REPO_ROOT.parent / "shared" / "data" / "train"
TOY_GROUPS = 4  # sources of `toy_data`, one real and one fake clip each


def project_registry_with_mesonet(folder: Path) -> Path:
    """A scratch copy of the project's registry and the MesoNet authors' weights in `folder`, for
    runs that start from those weights and register what they train; returns the registry."""
    shutil.copy(REPO_ROOT / "weights" / "registry.toml", folder / "registry.toml")
    shutil.copytree(REPO_ROOT / "weights" / "mesonet", folder / "mesonet")
    return folder / "registry.toml"


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def face_video(media_dir: Path) -> Path:
    """24 frames, 12 fps, 640x360, one astronaut head (see `media.pasted_head_boxes`)."""
    return media.make_face_video(media_dir / "face.mp4")


@pytest.fixture(scope="session")
def two_face_video(media_dir: Path) -> Path:
    """Like `face_video` with two heads, the right one mirrored."""
    return media.make_face_video(media_dir / "two_faces.mp4", faces=2)


@pytest.fixture(scope="session")
def blank_video(media_dir: Path) -> Path:
    """24 frames, 12 fps, 320x240, moving shapes and no face."""
    return media.make_blank_video(media_dir / "blank.mp4")


@pytest.fixture(scope="session")
def face_image(media_dir: Path) -> Path:
    """The 512x512 astronaut photo as a JPEG."""
    return media.make_face_image(media_dir / "astronaut.jpg")


@pytest.fixture(scope="session")
def bad_files(media_dir: Path, face_video: Path) -> dict[str, Path]:
    """Files that must be refused with a VideoError, keyed by what is wrong with them."""
    bad = media_dir / "bad"
    bad.mkdir()
    index_at_end = media.make_face_video(bad / "camera.mp4", frames=12, faststart=False)
    return {
        "empty": media.make_empty_file(bad / "empty.mp4"),
        "text": media.make_text_file(bad / "notes.mp4"),
        "audio_only": media.make_audio_only(bad / "voice.m4a"),
        "garbage": media.make_truncated_video(index_at_end, bad / "cut_camera.mp4"),
        "no_frames": media.make_headers_only_video(face_video, bad / "headers_only.mp4"),
    }


@pytest.fixture(scope="session")
def face_detector():
    """One MTCNN on the CPU for the whole session."""
    import torch

    from models.faces import FaceDetector

    torch.set_num_threads(TORCH_THREADS)
    return FaceDetector(device="cpu")


@pytest.fixture(scope="session")
def shared_train_dir() -> Path:
    """The research clips beside the repository (labels.csv + one folder per subset)."""
    if not (SHARED_TRAIN_DIR / "labels.csv").is_file():
        pytest.skip(
            f"research data not present at ../{SHARED_TRAIN_DIR.relative_to(REPO_ROOT.parent)}"
        )
    return SHARED_TRAIN_DIR


@pytest.fixture(scope="session")
def toy_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight short two-person clips from four sources, one REAL and one FAKE each, with a labels.csv."""
    root = tmp_path_factory.mktemp("toy_data")
    rows = ["file,label,group,subset,family"]
    for group in range(TOY_GROUPS):
        for label, family in (("REAL", "none"), ("FAKE", "faceswap" if group % 2 else "lipsync")):
            name = f"clips/g{group}_{label.lower()}.mp4"
            media.make_face_video(root / name, faces=2, frames=6, fps=6, width=320, height=180)
            rows.append(f"{name},{label},toy:{group},source_{group},{family}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root
