"""Runs edgefer train jobs concurrently on the lent GPU.

Usage: drive.py auto PHASE1_S PHASE2_S (what ran: time a trial, fit the epochs, run both phases)
     | calibrate EPOCHS | pipeline VGG WIDE LONG SCRATCH (epochs) [-- extra train options]
     | seeds EPOCHS CLEAN SEED... (from-scratch `best` runs with a clean tail and SWA over its last
       3 x CLEAN epochs, one per seed, concurrently; 3 jobs ran at 3.6 s per epoch each)
     | sam EPOCHS CLEAN RHO (the same `best` run twice, seed 0, concurrently: plain and with --sam-rho RHO,
       which costs two passes per step; plus seed 1 plain, so the SAM gain can be set against seed noise)
     | rep EPOCHS CLEAN BRANCHES (as sam, with --branches BRANCHES instead of SAM: re-parameterized training,
       merged into the plain 58,423-parameter model at the end)
"""
import subprocess, sys, time

DATA = "../shared/data/fer2013_train_publictest.csv.gz"
V2 = "runs/train/best_v2/weights/model.keras"
EXTRA = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else []


def launch(name, *args):
    log = open(f"runs/logs/{name}.log", "w")
    command = [sys.executable, "-c", "from edgefer.cli import app; app()", "train", "--data", DATA, "--quiet",
               "--name", name, *args, *EXTRA]
    print(time.strftime("%H:%M:%S"), " ".join(command[3:]), flush=True)
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)


def wait(*jobs):
    for job in jobs:
        job.wait()
        print(time.strftime("%H:%M:%S"), "exit", job.returncode, job.args[-1] if not EXTRA else "", flush=True)


def model(name):
    return f"runs/train/{name}/weights/model.keras"


def rows(name):
    try:
        return sum(1 for _ in open(f"runs/train/{name}/history.csv")) - 1
    except OSError:
        return 0


def timed(jobs):
    """Wait for {name: job}; return {name: [seconds since launch at which each history row appeared]}."""
    start, seen = time.time(), {name: [] for name in jobs}
    while any(job.poll() is None for job in jobs.values()):
        for name in jobs:
            while rows(name) > len(seen[name]):
                seen[name].append(time.time() - start)
        time.sleep(0.5)
    for name in jobs:
        while rows(name) > len(seen[name]):
            seen[name].append(time.time() - start)
    print(time.strftime("%H:%M:%S"), "calibration", seen, flush=True)
    return seen


def fit_epochs(times, budget, cap):
    startup, per_epoch = times[0], (times[-1] - times[0]) / (len(times) - 1)
    return str(max(2, min(cap, int((budget - startup) / per_epoch))))


mode = sys.argv[1]
if mode == "auto":
    phase1, phase2 = float(sys.argv[2]), float(sys.argv[3])
    times = timed({"cal_vgg": launch("cal_vgg", "--model", "vgg", "--recipe", "best", "--lr", "1e-3", "--batch-size", "128", "--epochs", "4"),
                   "cal_wide": launch("cal_wide", "--recipe", "best", "--width", "4", "--epochs", "4"),
                   "cal_mini": launch("cal_mini", "--recipe", "best", "--epochs", "4")})
    mode = "pipeline"
    sys.argv[2:6] = [fit_epochs(times["cal_vgg"], phase1, 200), fit_epochs(times["cal_wide"], phase1, 200),
                     fit_epochs(times["cal_mini"], phase1 + phase2, 400), fit_epochs(times["cal_mini"], phase2, 200)]
    print("plan: vgg, wide, long, scratch epochs", sys.argv[2:6], flush=True)

if mode == "calibrate":
    e = sys.argv[2]
    wait(launch("cal_vgg", "--model", "vgg", "--recipe", "best", "--lr", "1e-3", "--batch-size", "128", "--epochs", e),
         launch("cal_wide", "--recipe", "best", "--width", "4", "--epochs", e),
         launch("cal_mini", "--recipe", "best", "--epochs", e))
elif mode == "pipeline":
    vgg_epochs, wide_epochs, long_epochs, scratch_epochs = sys.argv[2:6]
    vgg = launch("vgg_gpu", "--model", "vgg", "--recipe", "best", "--lr", "1e-3", "--batch-size", "128",
                 "--epochs", vgg_epochs)
    wide = launch("wide_gpu", "--recipe", "best", "--width", "4", "--epochs", wide_epochs)
    long = launch("long_gpu", "--recipe", "best", "--epochs", long_epochs)
    wait(vgg, wide)
    teachers = ["--teacher", model("vgg_gpu"), "--teacher", model("wide_gpu"), "--teacher", V2]
    warm = launch("distil_gpu", "--recipe", "distil", "--weights", V2, "--epochs", str(min(80, int(scratch_epochs))),
                  *teachers)
    scratch = launch("distil_scratch_gpu", "--recipe", "best", "--distill-weight", "0.7", "--epochs", scratch_epochs,
                     *teachers)
    wait(warm, scratch, long)
elif mode in ("seeds", "sam", "rep"):
    epochs, clean = int(sys.argv[2]), int(sys.argv[3])
    tail = ["--recipe", "best", "--epochs", str(epochs), "--clean-epochs", str(clean),
            "--swa-start", str(epochs - 3 * clean)]
    if mode == "seeds":
        wait(*[launch(f"long_s{seed}", *tail, "--seed", seed) for seed in sys.argv[4:]])
    else:
        option = {"sam": "--sam-rho", "rep": "--branches"}[mode]
        wait(launch(f"{mode}_s0", *tail, "--seed", "0", option, sys.argv[4]), launch("long_s0", *tail, "--seed", "0"),
             launch("long_s1", *tail, "--seed", "1"))
print(time.strftime("%H:%M:%S"), "done", flush=True)
