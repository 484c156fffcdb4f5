"""Peak RSS of `edgefer run` alone (a fresh process, as on a device): the loop over a composed clip.

    python benchmarks/rss_loop.py CLIP.avi [MODEL]
"""

import os
import sys

for blocked in ("tensorflow", "keras", "mtcnn"):
    sys.modules[blocked] = None

from edgefer.inference import DEFAULT_MODEL
from edgefer.live import RunConfig, run
from edgefer.sampler import high_water_mark

summary = run(RunConfig(source=sys.argv[1], model=sys.argv[2] if len(sys.argv) > 2 else str(DEFAULT_MODEL),
                        show=False, threads=1))
print(f"frames {summary.frames}, FPS {summary.fps:.1f}, peak RSS "
      f"{high_water_mark(os.getpid()) / 1e6:.0f} MB")
