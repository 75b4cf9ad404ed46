"""Statistics over arrays, InferenceData and corpora: entropy, diagnostics, calibration, predictive checks."""
