"""heartbeat: listens to a heart recording and says normal, abnormal or no heartbeat, with a confidence.

    import heartbeat
    model = heartbeat.load_model()                       # the bundled model (package data)
    result = heartbeat.classify(heartbeat.read("rec.m4a", model), model)
    result.label, result.confidence, result.p_abnormal, result.heart_rate_bpm

A screening aid, not a diagnosis.
"""
from .audio import AudioError, load_audio
from .model import load_model
from .predict import Result, classify, judge, predict_files, read

__all__ = ["AudioError", "Result", "classify", "judge", "load_audio", "load_model", "predict_files", "read"]
