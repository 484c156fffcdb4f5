"""Where does the shipped model's full-int8 TFLite lose its 0.5 points? Ties at 8-bit output resolution
against rounding spread through the network.

    python profiles/experiments/int8_ties/int8_ties.py --data ../shared/data/fer2013_train_publictest.csv.gz

Converts three cuts of the same Keras model to full int8 (int8 in and out, the same 500 calibration faces
as `edgefer export`): the whole model (softmax output), the model up to global average pooling (logits), and up
to the head convolution (3x3x7 maps; their mean is taken in float). A tie is a face whose two highest
int8 outputs are equal, so that argmax falls back to the lower class index.
"""
import argparse

import numpy as np

from edgefer.convert.export import calibration_faces
from edgefer.convert.to_tflite import keras_to_tflite
from edgefer.data import read_fer_csv, scale_to_unit_range
from edgefer.runtime.litert import litert_interpreter_class
from edgefer.runtime.keras import predict_probabilities

MODEL = "edgefer/weights/mini_xception_fer2013.keras"


def run_int8(blob: bytes, faces_u8: np.ndarray) -> np.ndarray:
    interpreter = litert_interpreter_class()[0](model_content=blob, num_threads=1)
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    interpreter.resize_tensor_input(inp["index"], (len(faces_u8), *faces_u8.shape[1:], 1))
    interpreter.allocate_tensors()
    scale, zero = inp["quantization"]
    x = np.clip(np.round(scale_to_unit_range(faces_u8)[..., None] / scale + zero), -128, 127).astype(np.int8)
    interpreter.set_tensor(inp["index"], x)
    interpreter.invoke()
    scale, zero = out["quantization"]
    values = (interpreter.get_tensor(out["index"]).astype(np.float32) - zero) * scale
    return values.mean(axis=(1, 2)) if values.ndim == 4 else values


def main() -> None:
    import keras

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    args = parser.parse_args()
    faces = read_fer_csv(args.data, "PublicTest")
    model = keras.saving.load_model(MODEL, compile=False)
    reference = predict_probabilities(model, faces.images)
    keras_accuracy = (reference.argmax(1) == faces.labels).mean() * 100
    calibration = scale_to_unit_range(calibration_faces(args.data, 500, 0, 48))[..., None]  # as exported before the pixel grid
    cuts = {"softmax (as exported)": model, "logits (up to global average pooling)": keras.Model(model.input, model.get_layer("gap").output),
            "head conv maps, mean in float": keras.Model(model.input, model.get_layer("head_conv").output)}
    print(f"Keras: {keras_accuracy:.2f} % on {len(faces)} PublicTest faces\n")
    print("| int8 graph ends at | accuracy | Δ vs Keras (points) | top-2 ties | accuracy with ties broken by Keras |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, cut in cuts.items():
        blob = keras_to_tflite(cut, (48, 48, 1), "int8", lambda: iter(calibration))
        scores = run_int8(blob, faces.images)
        top = np.sort(scores, 1)
        tied = np.where(top[:, -1] == top[:, -2])[0]
        predicted = scores.argmax(1)
        broken = predicted.copy()
        for i in tied:
            candidates = np.where(scores[i] == top[i, -1])[0]
            broken[i] = candidates[np.argmax(reference[i][candidates])]
        accuracy = (predicted == faces.labels).mean() * 100
        print(f"| {name} | {accuracy:.2f} % | {accuracy - keras_accuracy:+.2f} | {len(tied)} | "
              f"{(broken == faces.labels).mean() * 100:.2f} % |")


if __name__ == "__main__":
    main()
