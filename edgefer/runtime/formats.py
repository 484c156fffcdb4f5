"""The one table of model formats: name, file ending, runtime, int8. The loader, export and profile read it.
A leaf."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Format:
    name: str
    ending: str      # appended to a model's stem: model_int8.tflite
    runtime: str     # keras, tflite or onnx: the runtime backend that loads it (runtime/loader.py)
    int8: bool = False


FORMATS = {f.name: f for f in (
    Format("keras", ".keras", "keras"),
    Format("float32", "_float32.tflite", "tflite"),
    Format("float16", "_float16.tflite", "tflite"),
    Format("dynamic", "_dynamic.tflite", "tflite"),
    Format("int8", "_int8.tflite", "tflite", int8=True),
    Format("onnx", ".onnx", "onnx"),
    Format("onnx_int8", "_int8.onnx", "onnx", int8=True),
)}
EXPORT_FORMATS = tuple(name for name in FORMATS if name != "keras")     # what `edgefer export` writes
INT8_FORMATS = tuple(name for name, f in FORMATS.items() if f.int8)
# a file's suffix -> its runtime (every format of a runtime shares its suffix)
RUNTIME_OF_SUFFIX = {"." + f.ending.rsplit(".", 1)[1]: f.runtime for f in FORMATS.values()}
