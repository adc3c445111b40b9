"""MultiWorkerMirroredStrategy with two worker processes on loopback ports (TF_CONFIG): training,
chief-only writing, and fault tolerance (kill -9 one worker, restart both, resume from the backup).

Each worker is `python -c _WORKER` with its own TF_CONFIG; the run folder is shared (the same disk
here, a shared file system on a real cluster). A test-only callback, switched on by an environment
variable, SIGKILLs a worker in the middle of an epoch: the fault injection is not part of the CLI.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

EPOCHS_FT = 4
KILL_EPOCH = 2  # 0-based: worker 1 dies during the third epoch, after two finished ones

_WORKER = textwrap.dedent("""
    import json, logging, os, signal, sys
    import keras
    from kerascnn.config import TrainConfig, override
    from kerascnn.training import fit

    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    out, epochs, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    kill_epoch = int(os.environ.get("KERASCNN_TEST_KILL_EPOCH", "-1"))

    class Probe(keras.callbacks.Callback):
        # Counts steps per epoch; with KERASCNN_TEST_KILL_EPOCH, SIGKILLs this process after the
        # second step of that epoch. By then every worker has passed the previous epoch's end (the
        # step's gradient all-reduce needs them all), so the chief's backup of it is on disk.
        steps = {}

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            self.steps[self.epoch + 1] = batch + 1
            if self.epoch == kill_epoch and batch >= 1:
                os.kill(os.getpid(), signal.SIGKILL)

    probe = Probe()
    if mode == "resume":
        r = fit(resume=out, verbose=0, callbacks=[probe])
    else:
        cfg = override(TrainConfig(), model="lenet5", epochs=epochs, batch_size=64, strategy="multiworker",
                       out=out, **{"data.spec": "digits"})
        r = fit(cfg, verbose=0, callbacks=[probe])
    print(json.dumps({"run_dir": str(r.run_dir), "epochs": [int(row["epoch"]) for row in r.history],
                      "steps": probe.steps}))
""")


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _start(index, ports, out, epochs, mode, kill_epoch=None):
    scratch = out.parent / "tmp"  # where a non-chief worker's throw-away folder goes
    scratch.mkdir(exist_ok=True)
    tf_config = {"cluster": {"worker": [f"localhost:{p}" for p in ports]},
                 "task": {"type": "worker", "index": index}}
    env = {**os.environ, "TF_CONFIG": json.dumps(tf_config), "TF_CPP_MIN_LOG_LEVEL": "3",
           "CUDA_VISIBLE_DEVICES": "", "TMPDIR": str(scratch)}
    env.pop("KERASCNN_TEST_KILL_EPOCH", None)
    if kill_epoch is not None:
        env["KERASCNN_TEST_KILL_EPOCH"] = str(kill_epoch)
    return subprocess.Popen([sys.executable, "-c", _WORKER, str(out), str(epochs), mode], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc, timeout):
    """(returncode, stdout, stderr); kills the process if it outlives `timeout` seconds."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return proc.returncode, out, err


def _report(stdout):
    return json.loads(stdout.strip().splitlines()[-1])


def _run_pair(ports, out, epochs, mode, timeout=150):
    procs = [_start(i, ports, out, epochs, mode) for i in range(2)]
    results = [_finish(p, timeout) for p in procs]
    for rc, _, err in results:
        assert rc == 0, err[-3000:]
    return results


def test_two_workers_train_and_only_the_chief_writes(tmp_path):
    run = tmp_path / "run"
    results = _run_pair(_free_ports(2), run, 2, "new")
    chief, other = (_report(r[1]) for r in results)
    assert chief["run_dir"] == other["run_dir"] == str(run)
    assert chief["epochs"] == other["epochs"] == [1, 2]
    # 1618 digits at a global batch of 64: 26 steps of 2 x 32 per epoch on each worker
    assert chief["steps"] == other["steps"] == {"1": 26, "2": 26}
    for name in ("config.json", "history.csv", "model.keras", "best.keras", "classes.json"):
        assert (run / name).is_file(), name
    assert len((run / "history.csv").read_text().strip().splitlines()) == 1 + 2
    err0, err1 = results[0][2], results[1][2]
    assert "strategy multiworker: 2 replica(s) on 2 worker(s) (this is worker 0, the chief)" in err0
    assert "(this is worker 1);" in err1
    for err in (err0, err1):
        assert "global batch 64 = 32 per replica; input sharding DATA" in err
        assert "learning rate 0.001 is for the global batch of 64 and is not scaled" in err
    # worker 1 wrote to a scratch folder under TMPDIR, removed at the end
    assert not list((tmp_path / "tmp").glob("kerascnn-worker-*"))
    assert not [p for p in run.iterdir() if ".tmp" in p.name]


@pytest.mark.slow
def test_killed_worker_restarts_and_training_resumes_from_the_backup(tmp_path):
    run, ports = tmp_path / "run", _free_ports(2)
    t0 = time.monotonic()
    chief = _start(0, ports, run, EPOCHS_FT, "new")
    victim = _start(1, ports, run, EPOCHS_FT, "new", kill_epoch=KILL_EPOCH)
    rc1, _, _ = _finish(victim, 150)
    assert rc1 == -signal.SIGKILL
    # The survivor notices (the peer stops sending heartbeats, its collective aborts) and exits with
    # an error; should it hang instead, the timeout kills it, as a cluster manager would.
    rc0, _, err0 = _finish(chief, 60)
    assert rc0 != 0
    assert (run / "backup" / f"epoch-{KILL_EPOCH:04d}.weights.h5").is_file()
    assert not (run / "model.keras").exists()

    results = _run_pair(ports, run, EPOCHS_FT, "resume")  # the same command on both: --resume RUN
    for _, out, err in results:
        report = _report(out)
        assert report["epochs"] == list(range(1, EPOCHS_FT + 1))
        # only the remaining epochs ran, every one of them in full
        assert report["steps"] == {str(e): 26 for e in range(KILL_EPOCH + 1, EPOCHS_FT + 1)}
        assert report["run_dir"] == str(run)
        assert f"resuming after epoch {KILL_EPOCH} (phase 1 of 1)" in err
    rows = (run / "history.csv").read_text().strip().splitlines()
    assert [int(r.split(",")[0]) for r in rows[1:]] == list(range(1, EPOCHS_FT + 1))
    assert (run / "model.keras").is_file()
    assert time.monotonic() - t0 < 180
