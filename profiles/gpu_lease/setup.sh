# Source me on the device: installs carried wheels once, rebuilds the data once, sets the JAX backend.
[ -d /tmp/site/keras ] || python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || return 1
export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=jax XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1
[ -f ../shared/data/fer2013_train_publictest.csv.gz ] || python3 .gpudata/unpack.py || return 1
mkdir -p runs/train runs/logs; [ -d runs/train/best_v2 ] || cp -r .gpudata/best_v2 runs/train/
