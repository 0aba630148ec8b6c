"""Whether MTCNN's five landmarks sit like a face's: a check on what O-Net calls a face.

O-Net scores a patch and places five points on it (eyes, nose, mouth corners). On a face, frontal
or turned, the points keep a face's order along its own up-down axis: the eye line, then the
nose, then the mouth, with the eyes a share of the box apart; and they lie in the frame. On
the face-recall benchmark's face-free frames (textures, photo collages, room backgrounds), a
false face O-Net scored 0.94, a cat cut off by the frame's edge, had an eye beyond the edge; no
true face of its ground truth, frontal or turned, broke these rules. The bounds are loose on purpose: a turned head brings the eyes closer
and the nose off the midline, and such faces must stay.
"""

from __future__ import annotations

import numpy as np

from models.faces import Face

# Along the axis from the eyes' midpoint (0) to the mouth's (1), the nose lies between them.
NOSE_ALONG_AXIS = (0.0, 1.0)
# Eye distance as a share of the box width: about 0.4 frontal, less for a turned head.
EYE_DISTANCE_SHARE = (0.05, 0.9)
# The eyes-to-mouth axis points down the frame within this many degrees of vertical (upright
# frames: rotation metadata is applied before detection).
MAX_TILT_DEGREES = 60.0
FRAME_TOLERANCE = 0.05  # of the box width: landmarks may sit this far outside the frame


def plausible_layout(face: Face, width: int, height: int) -> bool:
    """Whether `face`'s landmarks are laid out as on a face in a `width` x `height` frame."""
    points = np.asarray(face.landmarks, dtype=np.float64)
    left_eye, right_eye, nose, mouth_left, mouth_right = points
    box_width = float(face.box[2] - face.box[0])
    slack = FRAME_TOLERANCE * box_width
    inside = (
        points[:, 0].min() >= -slack
        and points[:, 0].max() <= width + slack
        and points[:, 1].min() >= -slack
        and points[:, 1].max() <= height + slack
    )
    eyes, mouth = (left_eye + right_eye) / 2, (mouth_left + mouth_right) / 2
    axis = mouth - eyes
    length2 = float(axis @ axis)
    if not inside or length2 <= 0 or box_width <= 0:
        return False
    upright = axis[1] > 0 and np.degrees(np.arctan2(abs(axis[0]), axis[1])) <= MAX_TILT_DEGREES
    along = float((nose - eyes) @ axis) / length2
    eye_share = float(np.linalg.norm(right_eye - left_eye)) / box_width
    return bool(
        upright
        and NOSE_ALONG_AXIS[0] < along < NOSE_ALONG_AXIS[1]
        and EYE_DISTANCE_SHARE[0] <= eye_share <= EYE_DISTANCE_SHARE[1]
    )
