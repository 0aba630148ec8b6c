"""The evaluation protocol: leave-sources-out folds and the video-level figures reported on them."""
