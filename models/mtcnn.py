"""MTCNN's three stages over a batch of frames, with stage 2 and 3 candidates cropped in bulk.

facenet-pytorch's `detect_face` cuts out every candidate box and area-resizes it to 24 or 48 px
in a Python loop: hundreds of tiny `interpolate` calls per batch of frames, about a quarter of
MTCNN's CPU time. Here each frame's summed-area table gives all its boxes' area-resized crops in
one gather, with the values `interpolate(mode="area")` computes (integer sums of uint8 pixels
are exact), so the detections are the same. The pyramid, the networks, NMS and box regression
are facenet-pytorch's own, in its order.
"""

from __future__ import annotations

import numpy as np
import torch
from facenet_pytorch import MTCNN
from facenet_pytorch.models.utils.detect_face import (
    batched_nms_numpy,
    bbreg,
    generateBoundingBox,
    imresample,
    pad,
    rerec,
)
from torchvision.ops.boxes import batched_nms

PNET_CELL = 12  # P-Net's receptive field, in pixels of a pyramid level
RNET_SIZE = 24
ONET_SIZE = 48


def _normalise(pixels: torch.Tensor) -> torch.Tensor:
    return (pixels - 127.5) * 0.0078125


def forward_padded(
    net: torch.nn.Module, crops: torch.Tensor, pad: bool | None = None
) -> tuple[torch.Tensor, ...]:
    """`net(crops)`, with the batch zero-padded to a power of two (at least 64) when `pad`
    (default: on CUDA).

    R- and O-Net see a different number of candidates in every batch of frames, and each new
    batch size costs cuDNN a new plan on a GPU; powers of two bound them to a handful. Each
    candidate's outputs depend on its own crop only, so padding changes none of them."""
    count = len(crops)
    if not (crops.device.type == "cuda" if pad is None else pad):
        return net(crops)
    size = max(64, 1 << (count - 1).bit_length())
    padded = torch.cat([crops, crops.new_zeros(size - count, *crops.shape[1:])])
    return tuple(output[:count] for output in net(padded))


def pyramid_scales(height: int, width: int, min_face_size: int, factor: float) -> list[float]:
    """Scales at which P-Net's 12 px window covers faces from `min_face_size` up to the frame."""
    scale = PNET_CELL / min_face_size
    side = min(height, width) * scale
    scales = []
    while side >= PNET_CELL:
        scales.append(scale)
        scale *= factor
        side *= factor
    return scales


class AreaCropper:
    """Area-resized crops of boxes from a batch of uint8 frames, via summed-area tables.

    A table is built the first time a frame is cropped and reused by later stages.
    """

    def __init__(self, frames: np.ndarray) -> None:
        self.frames = frames  # (N, H, W, 3) uint8
        self._tables: dict[int, np.ndarray] = {}

    def _table(self, index: int) -> np.ndarray:
        # int32 holds 255 x 8.4 M pixels: far above any detection image (`detection_scale`).
        table = self._tables.get(index)
        if table is None:
            height, width, channels = self.frames[index].shape
            table = np.zeros((height + 1, width + 1, channels), dtype=np.int32)
            np.cumsum(self.frames[index], axis=0, dtype=np.int32, out=table[1:, 1:])
            np.cumsum(table[1:, 1:], axis=1, out=table[1:, 1:])
            self._tables[index] = table
        return table

    def crops(
        self, frame_of: np.ndarray, top: np.ndarray, bottom: np.ndarray, left: np.ndarray,
        right: np.ndarray, size: int,
    ) -> torch.Tensor:
        """(K,3,size,size) float crops of rows [top, bottom) and columns [left, right) of
        frame `frame_of[k]`, each output pixel the mean of the input pixels it covers (the
        cells of adaptive average pooling: floor(i*n/size) to ceil((i+1)*n/size))."""
        cells = np.arange(size)
        heights, widths = (bottom - top)[:, None], (right - left)[:, None]
        row_start = top[:, None] + cells * heights // size
        row_end = top[:, None] + -(-(cells + 1) * heights // size)
        col_start = left[:, None] + cells * widths // size
        col_end = left[:, None] + -(-(cells + 1) * widths // size)
        stride = self.frames.shape[2] + 1  # a table row
        corners = [
            (rows[:, :, None] * stride + cols[:, None, :]).reshape(-1)
            for rows, cols in (
                (row_end, col_end), (row_start, col_end), (row_end, col_start), (row_start, col_start)
            )
        ]
        area = ((row_end - row_start)[:, :, None] * (col_end - col_start)[:, None, :]).reshape(-1, 1)
        out = np.empty((len(frame_of) * size * size, self.frames.shape[3]), dtype=np.float32)
        per_box = size * size
        for index in np.unique(frame_of):
            table = self._table(int(index)).reshape(-1, self.frames.shape[3])
            boxes = np.flatnonzero(frame_of == index)
            pixels = (boxes[:, None] * per_box + np.arange(per_box)).reshape(-1)
            a, b, c, d = (np.take(table, corner[pixels], axis=0) for corner in corners)
            out[pixels] = (a - b - c + d) / area[pixels]
        out = out.reshape(len(frame_of), size, size, -1)
        return torch.from_numpy(out).permute(0, 3, 1, 2)


def _candidate_crops(
    cropper: AreaCropper, boxes: torch.Tensor, image_inds: torch.Tensor, width: int, height: int,
    size: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Crops of the boxes clipped to the frame (as facenet-pytorch's `pad` clips them), and a
    mask of the boxes that kept any area."""
    y, ey, x, ex = pad(boxes, width, height)  # 1-based first row/column, exclusive ends
    top, left = y - 1, x - 1
    keep = (ey > top) & (ex > left)
    frame_of = image_inds.cpu().numpy()[keep]
    crops = cropper.crops(frame_of, top[keep], ey[keep], left[keep], ex[keep], size)
    return crops.to(boxes.device), torch.from_numpy(keep).to(boxes.device)


@torch.inference_mode()
def run_mtcnn(
    nets: MTCNN, frames: np.ndarray, smallest_face: float = 0.0
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Faces in each frame: ((k,5) boxes x1,y1,x2,y2,score; (k,5,2) landmarks) per frame.

    Args:
        nets: a facenet-pytorch MTCNN, for its networks, device, thresholds, minimum face and
            factor.
        frames: (N,H,W,3) uint8 RGB, all the same size.
        smallest_face: pyramid levels that only find faces smaller than this (pixels of
            `frames`) are skipped; the other levels, and so larger faces, are as without it.
    """
    device = next(nets.parameters()).device
    # Contiguous NCHW float: the pyramid's area resizing ran 2.3x slower on a channels_last view.
    images = torch.from_numpy(frames).to(device).permute(0, 3, 1, 2).float().contiguous()
    height, width = images.shape[2:]
    thresholds = nets.thresholds
    cropper = AreaCropper(frames)

    boxes, image_inds = _proposals(nets, images, thresholds[0], smallest_face)
    if len(boxes):
        boxes, image_inds = _refine(nets, cropper, boxes, image_inds, width, height, thresholds[1])
    points = torch.zeros(0, 5, 2, device=device)
    if len(boxes):
        boxes, image_inds, points = _output(
            nets, cropper, boxes, image_inds, width, height, thresholds[2]
        )
    boxes_np, points_np, inds_np = boxes.cpu().numpy(), points.cpu().numpy(), image_inds.cpu().numpy()
    return (
        [boxes_np[inds_np == i] for i in range(len(frames))],
        [points_np[inds_np == i] for i in range(len(frames))],
    )


def useful_scales(height: int, width: int, nets: MTCNN, smallest_face: float) -> list[float]:
    """facenet-pytorch's pyramid without the levels whose faces are all below `smallest_face`:
    the level at scale s finds faces from 12/s up to about the next level's 12/(s*factor)."""
    return [
        scale
        for scale in pyramid_scales(height, width, nets.min_face_size, nets.factor)
        if PNET_CELL / (scale * nets.factor) > smallest_face
    ]


def _proposals(
    nets: MTCNN, images: torch.Tensor, threshold: float, smallest_face: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stage 1: P-Net over the image pyramid; boxes squared after their regression."""
    height, width = images.shape[2:]
    boxes, image_inds = [], []
    for scale in useful_scales(height, width, nets, smallest_face):
        level = _normalise(imresample(images, (int(height * scale + 1), int(width * scale + 1))))
        reg, probs = nets.pnet(level)
        level_boxes, level_inds = generateBoundingBox(reg, probs[:, 1], scale, threshold)
        pick = batched_nms(level_boxes[:, :4], level_boxes[:, 4], level_inds, 0.5)
        boxes.append(level_boxes[pick])
        image_inds.append(level_inds[pick])
    if not boxes:  # the frame is smaller than the smallest face looked for
        return torch.zeros(0, 5, device=images.device), torch.zeros(0, dtype=torch.long)
    all_boxes, all_inds = torch.cat(boxes), torch.cat(image_inds)
    pick = batched_nms(all_boxes[:, :4], all_boxes[:, 4], all_inds, 0.7)
    all_boxes, all_inds = all_boxes[pick], all_inds[pick]
    size = all_boxes[:, 2:4] - all_boxes[:, 0:2]
    corners = all_boxes[:, :4] + all_boxes[:, 5:9] * size.repeat(1, 2)
    return rerec(torch.cat([corners, all_boxes[:, 4:5]], dim=1)), all_inds


def _refine(
    nets: MTCNN, cropper: AreaCropper, boxes: torch.Tensor, image_inds: torch.Tensor,
    width: int, height: int, threshold: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stage 2: R-Net rescoring and regression of every proposal."""
    crops, keep = _candidate_crops(cropper, boxes, image_inds, width, height, RNET_SIZE)
    boxes, image_inds = boxes[keep], image_inds[keep]
    reg, probs = forward_padded(nets.rnet, _normalise(crops))
    score = probs[:, 1]
    passed = score > threshold
    boxes = torch.cat([boxes[passed, :4], score[passed, None]], dim=1)
    image_inds, reg = image_inds[passed], reg[passed]
    pick = batched_nms(boxes[:, :4], boxes[:, 4], image_inds, 0.7)
    return rerec(bbreg(boxes[pick], reg[pick])), image_inds[pick]


def _output(
    nets: MTCNN, cropper: AreaCropper, boxes: torch.Tensor, image_inds: torch.Tensor,
    width: int, height: int, threshold: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stage 3: O-Net's final score, box and five landmarks; "Min" NMS as MTCNN specifies."""
    crops, keep = _candidate_crops(cropper, boxes, image_inds, width, height, ONET_SIZE)
    boxes, image_inds = boxes[keep], image_inds[keep]
    reg, landmarks, probs = forward_padded(nets.onet, _normalise(crops))
    score = probs[:, 1]
    passed = score > threshold
    boxes = torch.cat([boxes[passed, :4], score[passed, None]], dim=1)
    image_inds, reg, landmarks = image_inds[passed], reg[passed], landmarks[passed]
    box_w = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
    box_h = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
    points = torch.stack(
        [box_w * landmarks[:, :5] + boxes[:, 0:1] - 1, box_h * landmarks[:, 5:] + boxes[:, 1:2] - 1],
        dim=2,
    )
    boxes = bbreg(boxes, reg)
    pick = batched_nms_numpy(boxes[:, :4], boxes[:, 4], image_inds, 0.7, "Min")
    return boxes[pick], image_inds[pick], points[pick]
