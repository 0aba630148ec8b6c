"""fakewatch: deepfake video detection.

Two layers live here: the base that `app/` and `workers/` stand on (`settings`, `jobs`,
`webhook_targets`; these never import the CLI), and `cli/`, the one place that imports every layer.
"""

__version__ = "0.1.0"
