# Copy progress into $OUT: a status text, the VGG teacher's model, everything else small as one tarball.
{ date; nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv; cat runs/logs/drive.log 2>/dev/null
  for h in runs/train/*/history.csv; do echo "== $h"; head -1 $h; tail -3 $h; done
  for l in runs/logs/*.log; do echo "== $l"; grep -v -E "^E0000|^W0000|^I0000" $l | tail -4; done; } > $OUT/status.txt 2>&1
cp runs/train/vgg_gpu/weights/model.keras $OUT/vgg_gpu_model.keras 2>/dev/null
tar --exclude='*/weights/last.keras' --exclude='*/weights/best.keras' --exclude='runs/train/vgg_gpu/weights/model.keras' \
    --exclude='runs/train/best_v2' -czf $OUT/runs.tgz runs/train runs/logs
ls -la $OUT
