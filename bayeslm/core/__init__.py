"""What every model shares: the protocol, the base class, scoring, settings, files and InferenceData helpers."""
