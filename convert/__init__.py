"""Export and quantisation of edgefer models: TFLite (float32, float16, dynamic-range, full int8) and ONNX.

TensorFlow is needed here (converting), never on the device (running: see edgefer.runtime). The export's
options are `edgefer.convert.config.ExportConfig` (a leaf the command line reads); the rest loads on first use.
"""

__all__ = ["ExportConfig", "ExportRow", "export_model", "export_with_config"]


def __getattr__(name: str):
    if name == "ExportConfig":
        from edgefer.convert.config import ExportConfig

        return ExportConfig
    if name in ("ExportRow", "export_model", "export_with_config"):
        from edgefer.convert import export

        return getattr(export, name)
    raise AttributeError(f"module 'edgefer.convert' has no attribute {name!r}")
