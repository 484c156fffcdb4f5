"""Export and quantisation of edgefer models: TFLite (float32, float16, dynamic-range, full int8) and ONNX.

TensorFlow is needed here (converting), never on the device (running: see edgefer.runtime).
"""

from convert.export import FORMATS, ExportRow, export_model

__all__ = ["FORMATS", "ExportRow", "export_model"]
