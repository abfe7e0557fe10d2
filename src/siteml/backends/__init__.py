"""Runtime backends and the detector framework: the only code that imports torch, Ultralytics,
OpenVINO, NNCF or ONNX Runtime (inside functions, so that importing siteml stays fast)."""
