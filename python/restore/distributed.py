"""Restore a folder of PNG images, or a list of files and object-store URLs, on a Ray cluster.

    python -m restore.distributed MODEL IN_DIR|LIST.txt OUT_DIR [--address ADDR] [--workers N]
                                  [--batch N] [--threads N] [--retries N] [--wheel WHEEL]

LIST.txt names one input per line: a path, or a URL that fsspec opens (``s3://bucket/a.png``
with s3fs installed, ``gs://…`` with gcsfs, …); blank lines and lines starting with ``#``
are skipped. Outputs take the inputs' file names, which must then differ.

Each Ray worker process holds one actor with one loaded model (sent once through Ray's
object store, so workers need no copy of the file) and restores images in batches: a
task carries the PNG bytes of ``--batch`` images and returns the restored PNG bytes,
which this process writes into OUT_DIR atomically under the input's name. Workers need
no shared folder: inputs, the model and outputs travel through Ray.

Outputs are byte for byte what ``rrun MODEL IN.png -o OUT.png`` writes: the same
restoration (libRestore) and the same PNG codec (libRestoreImageIO, see
:mod:`restore.images`). As with ``rrun`` folder mode, an output that exists and is not
older than its input is skipped, so a rerun resumes. An image that cannot be restored
(a corrupt file, an unsupported layout) is reported and not retried; a task whose worker
died or failed is retried ``--retries`` times on a fresh worker, then its images are
reported. The exit status is non-zero when any image failed.

Without ``--address`` a local Ray cluster with ``--workers × --threads`` CPUs is started
for the run. With one (``ray://head:10001`` or ``auto`` inside a cluster) the package
reaches the workers as a Ray runtime environment: ``--wheel`` ships a wheel made by
scripts/build-wheel.sh, which carries libRestore and its Swift runtime, so workers need
neither the Swift toolchain nor this repository; without it the installed ``restore``
package directory is shipped (carrying the libraries when it was installed from such a
wheel).
"""

import argparse
import os
import pathlib
import sys
import time

from . import Model, RestoreError
from . import images

__all__ = ["restore_folder", "image_names", "is_complete", "Worker", "main"]


def image_names(folder):
    """The PNG files directly in ``folder`` (not hidden), by name: rrun folder mode's choice."""
    return sorted(entry.name for entry in os.scandir(folder)
                  if entry.is_file() and not entry.name.startswith(".") and entry.name.lower().endswith(".png"))


def is_complete(input_path, output_path):
    """Whether the output exists and is not older than its input (rrun folder mode's rule);
    for a URL input, whether the output exists."""
    try:
        if _is_url(input_path):
            return os.path.isfile(output_path)
        return os.stat(output_path).st_mtime >= os.stat(input_path).st_mtime
    except FileNotFoundError:
        return False


def _is_url(source):
    return "://" in str(source)


def list_inputs(source):
    """{output name: input path or URL}: the PNGs of a folder, or the entries of a list file."""
    source = pathlib.Path(source)
    if source.is_dir():
        return {name: str(source / name) for name in image_names(source)}
    inputs = {}
    for number, line in enumerate(source.read_text().splitlines(), 1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        name = entry.rstrip("/").rsplit("/", 1)[-1]
        if not name:
            raise ValueError(f"{source}:{number}: '{entry}' names no file")
        if name in inputs:
            raise ValueError(f"{source}:{number}: '{entry}' has the same file name as '{inputs[name]}'")
        inputs[name] = entry
    return inputs


def read_input(source):
    """The bytes of a path, or of a URL through fsspec."""
    if not _is_url(source):
        with open(source, "rb") as file:
            return file.read()
    try:
        import fsspec
    except ImportError:
        raise RestoreError(f"{source}: reading URLs needs fsspec (pip install fsspec, and s3fs for s3://)") from None
    with fsspec.open(source, "rb") as file:
        return file.read()


class Worker:
    """The work of one Ray worker process: one model, one session, batches of PNG bytes.

    A plain class, made a Ray actor by :func:`restore_folder`, so that importing this
    module needs no Ray."""

    def __init__(self, model_bytes, threads):
        self.model = Model.from_bytes(model_bytes)
        self.session = self.model.session(threads)

    def restore_batch(self, batch):
        """Restores [(name, PNG bytes)]; returns [(name, PNG bytes or None, error or None)]."""
        results = []
        for name, data in batch:
            try:
                restored = self.session.restore(images.decode_png(data, name))
                results.append((name, images.encode_png(restored, name), None))
            except RestoreError as error:
                text = str(error)
                results.append((name, None, text if name in text else f"{name}: {text}"))
        return results


def _runtime_env(wheel, address):
    """How the package reaches the workers: the wheel, else the installed package itself."""
    import restore
    if wheel is not None:
        return {"py_modules": [str(pathlib.Path(wheel).resolve())]}
    env = {"py_modules": [restore]}
    package = pathlib.Path(restore.__file__).resolve().parent
    if not any(package.glob("libRestore*.so")):
        # A source checkout: the libraries are where this process found them, which only a
        # worker on this machine can reach.
        if address is not None:
            print("restore.distributed: warning: the restore package carries no libRestore; workers use this "
                  "machine's paths (give --wheel from scripts/build-wheel.sh for a real cluster)", file=sys.stderr)
        env["env_vars"] = {"RESTORE_LIBRARY": restore.library_path(), "RESTORE_IMAGEIO_LIBRARY": images.library_path()}
    return env


def restore_folder(model_path, input_folder, output_folder, *, address=None, workers=None, batch_size=4,
                   threads=1, retries=2, wheel=None, worker_class=Worker, log=None):
    """Restores every PNG of ``input_folder`` into ``output_folder`` on Ray (see the module's
    documentation). Returns a dict: ``restored``, ``complete`` (skipped) and ``failed``
    ({name: message}), and ``seconds`` spent restoring. ``worker_class`` is the actor's
    class (``Worker`` or a subclass); ``log`` gets progress lines."""
    import ray

    log = log or (lambda line: None)
    output_folder = pathlib.Path(output_folder)
    if pathlib.Path(input_folder).resolve() == output_folder.resolve():
        raise ValueError(f"{output_folder} is the input folder; outputs would replace the inputs")
    inputs = list_inputs(input_folder)
    if not inputs:
        raise ValueError(f"{input_folder} names no .png files")
    names = sorted(inputs)
    output_folder.mkdir(parents=True, exist_ok=True)
    pending = [name for name in names if not is_complete(inputs[name], output_folder / name)]
    summary = {"restored": 0, "complete": len(names) - len(pending), "failed": {}, "seconds": 0.0}
    if not pending:
        return summary
    with open(model_path, "rb") as file:
        model_bytes = file.read()
    Model.from_bytes(model_bytes).close()  # a bad model is an error here, not on every worker

    local = address is None
    if local:
        workers = workers or os.cpu_count() or 1
        ray.init(num_cpus=workers * threads, runtime_env=_runtime_env(wheel, None), include_dashboard=False,
                 logging_level="WARNING", configure_logging=False)
    else:
        ray.init(address=address, runtime_env=_runtime_env(wheel, address), logging_level="WARNING",
                 configure_logging=False)
    try:
        if workers is None:
            workers = max(1, int(ray.cluster_resources().get("CPU", 1)) // threads)
        start = time.monotonic()
        _schedule(ray, worker_class, model_bytes, inputs, output_folder, pending, workers, batch_size, threads,
                  retries, summary, log)
        summary["seconds"] = time.monotonic() - start
    finally:
        ray.shutdown()
    return summary


def _schedule(ray, worker_class, model_bytes, inputs, output_folder, pending, workers, batch_size, threads,
              retries, summary, log):
    """Keeps two batches in flight per actor (one running, one waiting, so no actor waits
    for this process) until every batch is written or has failed ``retries + 1`` times."""
    actor_class = ray.remote(num_cpus=threads, max_restarts=0, max_task_retries=0)(worker_class)
    model = ray.put(model_bytes)
    batches = [pending[i:i + batch_size] for i in range(0, len(pending), batch_size)]
    queue = list(range(len(batches)))
    attempts = [0] * len(batches)
    actors = [actor_class.remote(model, threads) for _ in range(min(workers, len(batches)))]
    in_flight = {}  # future → (actor index, actor, batch index)

    def fill():
        for slot, actor in enumerate(actors):
            while queue and sum(1 for _, owner, _ in in_flight.values() if owner is actor) < 2:
                index = queue.pop(0)
                batch = []
                for name in batches[index]:
                    try:
                        batch.append((name, read_input(inputs[name])))
                    except (OSError, RestoreError) as error:
                        summary["failed"][name] = f"{inputs[name]}: {error}"
                if batch:
                    in_flight[actor.restore_batch.remote(batch)] = (slot, actor, index)

    fill()
    while in_flight:
        [done], _ = ray.wait(list(in_flight), num_returns=1)
        slot, actor, index = in_flight.pop(done)
        try:
            results = ray.get(done)
        except (ray.exceptions.RayError, RestoreError) as error:
            # The worker died or its task failed: a fresh worker takes it again, up to `retries` times.
            attempts[index] += 1
            reason = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
            if actors[slot] is actor:  # not replaced yet by its other batch's failure
                ray.kill(actor, no_restart=True)
                actors[slot] = actor_class.remote(model, threads)
            if attempts[index] <= retries:
                log(f"batch {', '.join(batches[index])} failed ({reason}); retry {attempts[index]} of {retries}")
                queue.append(index)
            else:
                for name in batches[index]:
                    summary["failed"][name] = f"{inputs[name]}: failed {attempts[index]} times: {reason}"
        else:
            for name, data, message in results:
                if message is not None:
                    summary["failed"][name] = message
                else:
                    images.write_atomically(output_folder / name, data)
                    summary["restored"] += 1
            log(f"{summary['restored'] + len(summary['failed'])}/{len(pending)} images")
        fill()


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m restore.distributed",
                                     description="Restore every PNG of a folder (or a list) on a Ray cluster, as rrun would.")
    parser.add_argument("model", help="the converted model (.rgraph)")
    parser.add_argument("input", help="folder of PNG images, or a text file of paths and URLs (one a line)")
    parser.add_argument("output", help="folder for the restored images (same names)")
    parser.add_argument("--address", help="Ray cluster address (ray://HOST:10001, or auto); default: a local cluster")
    parser.add_argument("--workers", type=int, help="worker processes, one model each (default: one per CPU)")
    parser.add_argument("--batch", type=int, default=4, help="images per task (default 4)")
    parser.add_argument("--threads", type=int, default=1, help="kernel threads per worker (default 1)")
    parser.add_argument("--retries", type=int, default=2, help="retries of a task whose worker failed (default 2)")
    parser.add_argument("--wheel", help="wheel shipped to the workers (scripts/build-wheel.sh makes one)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    arguments = parser.parse_args(argv)
    for name in ("workers", "batch", "threads"):
        value = getattr(arguments, name)
        if value is not None and value < 1:
            parser.error(f"--{name} must be at least 1")
    if arguments.retries < 0:
        parser.error("--retries must be 0 or more")
    log = None if arguments.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    try:
        summary = restore_folder(arguments.model, arguments.input, arguments.output, address=arguments.address,
                                 workers=arguments.workers, batch_size=arguments.batch, threads=arguments.threads,
                                 retries=arguments.retries, wheel=arguments.wheel, log=log)
    except (OSError, ValueError, RestoreError) as error:
        print(f"restore.distributed: error: {error}", file=sys.stderr)
        return 1
    for message in summary["failed"].values():
        print(f"restore.distributed: error: {message}", file=sys.stderr)
    restored, seconds = summary["restored"], summary["seconds"]
    rate = f" in {seconds:.1f} s ({restored / seconds:.2f} images/s)" if restored and seconds > 0 else ""
    print(f"restored {restored}, already complete {summary['complete']}, failed {len(summary['failed'])} "
          f"of {restored + summary['complete'] + len(summary['failed'])} images into {arguments.output}{rate}")
    return 1 if summary["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
