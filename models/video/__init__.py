"""Reading uploads with PyAV, torch-free (the gateway imports it to validate uploads).

- `sniff`: name a container from its first bytes, before anything is decoded;
- `decode`: open a file with FFmpeg's decoders capped, decode its video stream, probe it;
- `sampling`: which frames to sample and the sampled frames, upright RGB;
- `prefetch`: sampled frames decoded in a background thread while the caller works.
"""
