"""A LiteRT network callable from many threads: the heart-sound network and the artifact windows' network run here.

An interpreter is not thread-safe (the app judges two requests at once, and a shared one raised "at least 1
reference to internal data"). Idle interpreters wait in a queue: there are only ever as many as were in use at
once, not one for each of the web server's 40 threads. Serving needs only `ai_edge_litert`, never TensorFlow.
"""
from __future__ import annotations

import queue
from pathlib import Path

import numpy as np


class Network:
    """`Network(path or bytes)(batch)` -> the network's first output, one row per row of `batch`."""

    def __init__(self, tflite: str | Path | bytes):
        self.content = tflite if isinstance(tflite, bytes) else Path(tflite).read_bytes()
        self._idle: queue.SimpleQueue = queue.SimpleQueue()
        self._idle.put(self._new())          # load (and fail on a broken file) now, not on a patient

    def _new(self) -> dict:
        from ai_edge_litert.interpreter import Interpreter
        interp = Interpreter(model_content=self.content, num_threads=1)
        return {"interp": interp, "input": interp.get_input_details()[0]["index"],
                "output": interp.get_output_details()[0]["index"], "batch": None}

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        try:
            t = self._idle.get_nowait()
        except queue.Empty:
            t = self._new()
        try:
            if len(batch) != t["batch"]:
                t["interp"].resize_tensor_input(t["input"], batch.shape, strict=False)
                t["interp"].allocate_tensors()
                t["batch"] = len(batch)
            t["interp"].set_tensor(t["input"], np.ascontiguousarray(batch, np.float32))
            t["interp"].invoke()
            return t["interp"].get_tensor(t["output"]).copy()
        finally:
            self._idle.put(t)

    @property
    def idle(self) -> int:
        """Interpreters made so far and waiting (as many as were ever busy at once)."""
        return self._idle.qsize()

    def __getstate__(self) -> dict:      # to a worker process: the weights, not the interpreters
        return {"content": self.content}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["content"])


def to_tflite(keras_model) -> bytes:
    """A Keras network as LiteRT's float32 flatbuffer (training only: needs TensorFlow)."""
    import tensorflow as tf
    return tf.lite.TFLiteConverter.from_keras_model(keras_model).convert()
