"""Where the network runs: ONNX export, ONNX Runtime, and choosing the back-end for ``from_pretrained``."""
