"""The export settings the command line shows as defaults (kept free of heavy imports)."""

#: Opsets the exporter writes and onnxruntime runs (torch's ONNX exporter starts at 18).
OPSET_RANGE = (18, 23)
DEFAULT_OPSET = 18
#: Largest difference allowed between onnxruntime and PyTorch fp32 features (L2-normalised, any component).
PARITY_TOLERANCE = 1e-4
#: Tracklets of the run's dataset the parity check embeds by default.
PARITY_TRACKLETS = 16
