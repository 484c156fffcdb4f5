"""What `edgefer export` is told: each option declared once (default, range, help), read by the command line
and checked by `check(config)`. A leaf."""

from __future__ import annotations

from dataclasses import dataclass

from edgefer.options import option


@dataclass(kw_only=True)
class ExportConfig:
    model: str = option(cli=False, help="The .keras model to export.")
    data: str = option(show_default=False, help="Labelled faces to validate on (required): a FER-2013 CSV (Kaggle "
                                                "layout, plain or .gz) or an image folder with a sub-folder per class.")
    split: str = option("PublicTest", help="Split of --data to validate on.")
    formats: str | None = option(None, show_default="all",
                                 help="Comma-separated: float32,float16,dynamic,int8,onnx,onnx_int8.")
    int8: bool = option(False, flag="--int8", help="Short for the full-integer formats (int8 TFLite and int8 ONNX).")
    out: str | None = option(None, show_default="runs/export/<run or model>[N]", help="Export folder (new or empty).")
    calibration: int = option(500, min=1, help="Training faces used to calibrate int8 quantisation.")
    calibration_data: str | None = option(None, show_default="--data's training split", help="Data for calibration.")
    threshold: float = option(1.0, min=0, help="Fail an export whose accuracy falls more than this many points "
                                               "below Keras.")
    threads: int = option(1, min=1, max=256, help="Threads for the latency column.")
    limit: int | None = option(None, min=1, show_default="all", help="Validate on at most this many faces.")
    seed: int = option(0, cli=False, help="Seed of the calibration sample.")
