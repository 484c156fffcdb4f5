"""Pack the FER-2013 CSV for a 64 MiB upload: pixels as one lzma blob, labels and splits as a small npz."""
import gzip, lzma
import numpy as np

rows, emotions, public = [], [], []
with gzip.open("../shared/data/fer2013_train_publictest.csv.gz", "rt") as handle:  # text mode: \r\n -> \n
    next(handle)
    for line in handle:
        emotion, pixels, usage = line.rstrip("\n").split(",")
        emotions.append(int(emotion))
        public.append(usage == "PublicTest")
        rows.append(np.array(pixels.split(), np.uint8))
np.savez_compressed(".gpudata/meta.npz", emotion=np.array(emotions, np.uint8), public=np.array(public))
with open(".gpudata/pixels.xz", "wb") as out:
    out.write(lzma.compress(np.stack(rows).tobytes(), preset=9 | lzma.PRESET_EXTREME))
