"""Rebuild ../shared/data/fer2013_train_publictest.csv.gz from the lossless lzma pixel blob (device only)."""
import gzip, hashlib, lzma, os, sys
import numpy as np

out = sys.argv[1] if len(sys.argv) > 1 else "../shared/data/fer2013_train_publictest.csv.gz"
pixels = np.frombuffer(lzma.decompress(open(".gpudata/pixels.xz", "rb").read()), np.uint8).reshape(-1, 2304)
meta = np.load(".gpudata/meta.npz")
names = [str(i) for i in range(256)]
lines = ["emotion,pixels,Usage\r\n"]
for emotion, row, public in zip(meta["emotion"].tolist(), pixels, meta["public"].tolist()):
    lines.append(f"{emotion},{' '.join([names[v] for v in row.tolist()])},{'PublicTest' if public else 'Training'}\r\n")
text = "".join(lines).encode()
print("rows", len(lines) - 1, "csv sha256", hashlib.sha256(text).hexdigest())
os.makedirs(os.path.dirname(out), exist_ok=True)
with gzip.open(out + ".tmp", "wb", compresslevel=1) as handle:
    handle.write(text)
os.replace(out + ".tmp", out)
