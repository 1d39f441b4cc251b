"""Face cache: dataset items -> face crops on disk + manifest.csv (one row per crop).

Cache folder:
    extract_config.json          sampling/detector/crop settings; a re-run must match them
    crops/<video_id>/<frame>_<track>.png
    records/<video_id>.csv       per-video manifest rows: the video is done
    records/<video_id>.error.json  per-video failure: the video is done (failed)
    manifest.csv, errors.csv     assembled from the records at the end of a run

Crash safety: a video's crops are written into `<dir>.partial`, renamed onto
their final folder, and only then is the video's record committed with
os.replace. A record is the only proof a video is finished, so an interrupted
run is resumed by running the same command again: finished videos are
skipped, half-done ones redone from scratch. manifest.csv and errors.csv are
rebuilt atomically from the records, so they are never half-written.
"""

from __future__ import annotations

import csv
import json
import math
import multiprocessing
import os
import shutil
from contextlib import closing
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable

import cv2

from ddtool.data.layouts import DatasetIndex, Item, load_dataset
from ddtool.data.shards import select_shard
from ddtool.errors import ConfigError, DDToolError, InputError, NoFaceError
from ddtool.io import atomic_path, write_json_atomic
from ddtool.media.images import write_png

MANIFEST_COLUMNS = (
    "crop_path", "video_id", "source_path", "frame_index", "timestamp", "x0", "y0", "x1", "y1",
    "track_id", "label", "domain", "method", "split", "dataset",
)
ERROR_COLUMNS = ("video_id", "source_path", "error")
CONFIG_FILE = "extract_config.json"
MANIFEST_FILE = "manifest.csv"
ERRORS_FILE = "errors.csv"
RECORDS_DIR = "records"
CROPS_DIR = "crops"
# Lossless: JPEG would add its own 8x8 block noise to exactly the pixel-level
# residuals the noise features and frequency-aware detectors look at.
CROP_SUFFIX = ".png"
PNG_COMPRESSION = 1  # fast; PNG stays lossless at every level
DEFAULT_FRAMES = 16
PRESET_ALIASES = {"seed": "dfdc-seed"}


@dataclass(frozen=True)
class ExtractOptions:
    """How frames are sampled and faces cropped; stored in the cache's extract_config.json."""

    preset: str | None = None  # ffpp | dfdc | celebdf | seed (dfdc-seed); per-class (interval, frames)
    frames: int | None = None  # overrides the preset's frames for both classes
    interval: int | None = None  # overrides the preset's interval for both classes
    detector: str = "hog"
    detector_model: str | None = None
    size: int = 256
    margin: float = 0.0
    all_faces: bool = False
    crop: str = "box"  # crop style (media.crops.CROP_STYLES): a cache is cut the way the model to train/evaluate expects

    def sampling(self, label: int) -> tuple[int | None, int | None]:
        """(interval, frames) for one class."""
        from ddtool.media.video import preset_sampling

        interval, frames = None, None
        if self.preset:
            interval, frames = preset_sampling(PRESET_ALIASES.get(self.preset, self.preset), label)
        if self.interval is not None:
            interval = self.interval
        if self.frames is not None:
            frames = self.frames
        if interval is None and frames is None:
            frames = DEFAULT_FRAMES
        return interval, frames

    def validate(self) -> None:
        for label in (0, 1):
            self.sampling(label)  # raises ConfigError for an unknown preset
        for name in ("frames", "interval"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"--{name} must be >= 1, got {value}")
        if self.size < 16:
            raise ConfigError(f"--size must be at least 16 pixels, got {self.size}")
        if not 0.0 <= self.margin <= 2.0:
            raise ConfigError(f"--margin is a fraction of the face box (0 to 2), got {self.margin}")
        from ddtool.media.crops import CROP_STYLES

        if self.crop not in CROP_STYLES:
            raise ConfigError(f"--crop {self.crop!r} is not a crop style; choose one of {', '.join(CROP_STYLES)}")

    def fingerprint(self) -> dict:
        settings = asdict(self)
        if settings["crop"] == "box":  # caches cut before crop styles existed stay resumable
            del settings["crop"]
        return {**settings, "crop_format": CROP_SUFFIX.lstrip(".")}


@dataclass
class VideoOutcome:
    video_id: str
    n_crops: int
    error: str | None = None
    skipped: bool = False


@dataclass
class ExtractSummary:
    cache: Path
    n_items: int  # videos/images in this run (this shard)
    n_skipped: int  # already finished by an earlier run
    n_failed: int  # rows of errors.csv for this run's items (incl. files missing on disk)
    n_videos_with_faces: int
    n_crops: int
    missing: int  # files a metadata list names that are not on disk
    failures: list[tuple[str, str]] = field(default_factory=list)  # (video_id or path, error)

    @property
    def manifest_path(self) -> Path:
        return self.cache / MANIFEST_FILE

    @property
    def errors_path(self) -> Path:
        return self.cache / ERRORS_FILE


# ------------------------------------------------------------------ paths


def crop_dir(cache: Path, video_id: str) -> Path:
    return cache / CROPS_DIR / Path(*video_id.split("/"))


def record_path(cache: Path, video_id: str) -> Path:
    return cache / RECORDS_DIR / Path(*video_id.split("/")).with_name(video_id.rsplit("/", 1)[-1] + ".csv")


def error_record_path(cache: Path, video_id: str) -> Path:
    return record_path(cache, video_id).with_name(video_id.rsplit("/", 1)[-1] + ".error.json")


# ------------------------------------------------------------- one video


class _VideoProcessor:
    """Detect, crop and commit one item at a time; one detector per process."""

    def __init__(self, options: ExtractOptions):
        from ddtool.media.faces import FaceExtractor, create_detector

        detector = create_detector(options.detector, model_path=options.detector_model)
        views = None
        if options.crop != "box":
            from ddtool.media.crops import view_cropper

            views = {options.crop: view_cropper((options.crop, options.margin, options.size, "auto"))}
        self.extractor = FaceExtractor(detector, size=options.size, margin=options.margin, all_faces=options.all_faces, views=views)
        self.options = options

    def __call__(self, item: Item, cache: Path) -> VideoOutcome:
        try:
            rows = self._extract(item, cache)
        except DDToolError as exc:
            return self._fail(item, cache, str(exc))
        except Exception as exc:  # noqa: BLE001 - one bad video must not stop a dataset run
            return self._fail(item, cache, f"{type(exc).__name__}: {exc}")
        _write_rows(record_path(cache, item.video_id), MANIFEST_COLUMNS, rows)
        return VideoOutcome(item.video_id, len(rows))

    def _extract(self, item: Item, cache: Path) -> list[dict]:
        from ddtool.media.video import probe, sample_indices

        info = probe(item.source_path)
        interval, frames = self.options.sampling(item.label)
        indices = [0] if info.is_image else sample_indices(info.frame_count, frames=frames, interval=interval)
        crops = self.extractor.extract(item.source_path, indices)
        if not crops:
            raise NoFaceError(f"no face found in {len(indices)} sampled frame(s)")
        final = crop_dir(cache, item.video_id)
        partial = final.with_name(final.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        rows = []
        for crop in sorted(crops, key=lambda c: (c.frame_index, c.track_id)):
            name = f"{crop.frame_index:06d}_{crop.track_id}{CROP_SUFFIX}"
            try:
                image = crop.views[self.options.crop] if self.options.crop != "box" else crop.image
                write_png(partial / name, image, compression=PNG_COMPRESSION)
            except OSError:
                raise InputError(f"cannot write {partial / name}; check free disk space and permissions") from None
            rows.append(_manifest_row(item, crop, f"{CROPS_DIR}/{item.video_id}/{name}"))
        shutil.rmtree(final, ignore_errors=True)  # left by a run that died before its record
        os.replace(partial, final)
        return rows

    def _fail(self, item: Item, cache: Path, message: str) -> VideoOutcome:
        final = crop_dir(cache, item.video_id)
        shutil.rmtree(final.with_name(final.name + ".partial"), ignore_errors=True)
        write_json_atomic(error_record_path(cache, item.video_id),
                          {"video_id": item.video_id, "source_path": str(item.source_path), "error": message})
        return VideoOutcome(item.video_id, 0, error=message)


def _manifest_row(item: Item, crop, crop_path: str) -> dict:
    box = crop.box
    timestamp = crop.timestamp if crop.timestamp is not None and math.isfinite(crop.timestamp) else ""
    return {
        "crop_path": crop_path, "video_id": item.video_id, "source_path": str(item.source_path),
        "frame_index": int(crop.frame_index), "timestamp": timestamp,
        "x0": int(round(box.x0)), "y0": int(round(box.y0)), "x1": int(round(box.x1)), "y1": int(round(box.y1)),
        "track_id": int(crop.track_id), "label": item.label, "domain": item.domain, "method": item.method,
        "split": item.split, "dataset": item.dataset,
    }


_WORKER: _VideoProcessor | None = None


def _init_worker(options: ExtractOptions) -> None:
    global _WORKER
    cv2.setNumThreads(1)  # W processes x OpenCV's own threads would oversubscribe the cores
    _WORKER = _VideoProcessor(options)


def _run_in_worker(item: Item, cache: Path) -> VideoOutcome:
    assert _WORKER is not None
    return _WORKER(item, cache)


# ------------------------------------------------------------ records -> files


def _write_rows(path: Path, columns: tuple[str, ...], rows: Iterable[dict]) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)


def _read_rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def is_done(cache: Path, video_id: str, retry_failed: bool = False) -> bool:
    if record_path(cache, video_id).is_file():
        return True
    return not retry_failed and error_record_path(cache, video_id).is_file()


def assemble(cache: Path, video_ids: Iterable[str], extra_errors: Iterable[dict] = ()) -> tuple[list[dict], list[dict]]:
    """Write manifest.csv and errors.csv from the records of `video_ids`; return their rows."""
    rows: list[dict] = []
    errors: list[dict] = list(extra_errors)
    for video_id in sorted(video_ids):
        done = record_path(cache, video_id)
        failed = error_record_path(cache, video_id)
        if done.is_file():
            rows += _read_rows(done)
        elif failed.is_file():
            errors.append(json.loads(failed.read_text(encoding="utf-8")))
    _write_rows(cache / MANIFEST_FILE, MANIFEST_COLUMNS, rows)
    _write_rows(cache / ERRORS_FILE, ERROR_COLUMNS, errors)
    return rows, errors


def check_resume_settings(path: Path, wanted: dict, made: str = "extracted") -> None:
    """Resume only what was built with the same settings: compare `wanted` with the settings file at `path`, or write it.

    Shared by every resumable cache builder (extract, offline forge): a cache
    mixing crops made two ways would train and score on an unstated mixture.
    """
    if path.is_file():
        stored = json.loads(path.read_text(encoding="utf-8"))
        if stored != wanted:
            changed = sorted(k for k in set(stored) | set(wanted) if stored.get(k) != wanted.get(k))
            raise ConfigError(
                f"{path.parent} was {made} with different settings ({', '.join(changed)}); "
                "re-run with the same options to resume, or choose a new --out"
            )
    else:
        write_json_atomic(path, wanted)


# ------------------------------------------------------------------ run


ProgressHook = Callable[[VideoOutcome, int, int], None]


def extract_items(items: list[Item], cache: str | Path, options: ExtractOptions = ExtractOptions(), workers: int = 1,
                  retry_failed: bool = False, missing: Iterable[dict] = (),
                  on_video_done: ProgressHook | None = None) -> ExtractSummary:
    """Extract faces of `items` into `cache`, resuming a previous run of the same command.

    `on_video_done(outcome, done, total)` is called after each video (also for
    skipped ones), in the parent process.
    """
    cache = Path(cache)
    options.validate()
    from ddtool.media.faces import create_detector

    # A bad detector name or model file fails here in one line, before any video.
    create_detector(options.detector, model_path=options.detector_model)
    if workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    cache.mkdir(parents=True, exist_ok=True)
    check_resume_settings(cache / CONFIG_FILE, options.fingerprint())
    missing = list(missing)
    pending = [item for item in items if not is_done(cache, item.video_id, retry_failed)]
    if retry_failed:
        for item in pending:
            error_record_path(cache, item.video_id).unlink(missing_ok=True)
    pending_ids = {item.video_id for item in pending}
    total, done = len(items), 0
    for item in items:
        if item.video_id not in pending_ids:
            done += 1
            if on_video_done:
                on_video_done(VideoOutcome(item.video_id, 0, skipped=True), done, total)
    # closing(): if a callback raises (or Ctrl-C), queued videos are cancelled at once.
    with closing(_process(pending, cache, options, workers)) as outcomes:
        for outcome in outcomes:
            done += 1
            if on_video_done:
                on_video_done(outcome, done, total)
    rows, errors = assemble(cache, (item.video_id for item in items), missing)
    return ExtractSummary(
        cache=cache,
        n_items=total,
        n_skipped=total - len(pending),
        n_failed=len(errors),
        n_videos_with_faces=len({row["video_id"] for row in rows}),
        n_crops=len(rows),
        missing=len(missing),
        failures=[(e["video_id"] or e["source_path"], e["error"]) for e in errors],
    )


def _process(pending: list[Item], cache: Path, options: ExtractOptions, workers: int):
    if not pending:
        return
    if workers == 1 or len(pending) == 1:
        processor = _VideoProcessor(options)
        for item in pending:
            yield processor(item, cache)
        return
    # spawn: a forked copy of a parent that already runs torch/OpenCV threads can deadlock.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(min(workers, len(pending)), mp_context=context,
                             initializer=_init_worker, initargs=(options,)) as pool:
        futures = {pool.submit(_run_in_worker, item, cache) for item in pending}
        try:
            while futures:
                finished, futures = wait(futures, return_when=FIRST_COMPLETED)
                for future in finished:
                    yield future.result()
        finally:
            for future in futures:
                future.cancel()


def extract(source: str | Path, cache: str | Path, layout: str = "auto", compression: str = "c23",
            options: ExtractOptions = ExtractOptions(), workers: int = 1, shard: tuple[int, int] | None = None,
            retry_failed: bool = False, on_video_done: ProgressHook | None = None) -> ExtractSummary:
    """Index `source` with its layout adapter, then build (or resume) the face cache in `cache`.

    Without a preset and without --frames/--interval, the dataset's own
    protocol preset is used when one exists (ffpp, dfdc, celebdf), else
    DEFAULT_FRAMES evenly spaced frames.
    """
    index = load_dataset(source, layout=layout, compression=compression)
    options = with_default_preset(options, index)
    items = select_shard(index.items, shard, key=lambda item: item.video_id)
    missing = [{"video_id": "", "source_path": m.path, "error": f"listed in {m.listed_in} but not on disk"}
               for m in index.missing] if shard is None or shard[0] == 0 else []
    return extract_items(items, cache, options, workers, retry_failed, missing, on_video_done)


def with_default_preset(options: ExtractOptions, index: DatasetIndex) -> ExtractOptions:
    from ddtool.media.video import PRESETS

    if options.preset is None and options.frames is None and options.interval is None and index.layout in PRESETS:
        return replace(options, preset=index.layout)
    return options


# ------------------------------------------------------------------ merge


@dataclass
class MergeSummary:
    cache: Path
    n_shards: int
    n_crops: int
    n_videos: int
    n_failed: int


def _place(src: Path, dst: Path) -> None:
    """Hard-link when possible (same disk, no extra space), copy otherwise; atomic either way."""
    with atomic_path(dst) as tmp:
        tmp.unlink()
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)


def merge_caches(shards: list[str | Path], out: str | Path) -> MergeSummary:
    """Combine finished shard caches into one cache, refusing duplicate video ids."""
    out = Path(out)
    shards = [Path(s) for s in shards]
    if not shards:
        raise ConfigError("give at least one shard cache to merge")
    if any(s.resolve() == out.resolve() for s in shards):
        raise ConfigError(f"--out {out} is one of the shards; merge into a new folder")
    if (out / MANIFEST_FILE).exists():
        raise ConfigError(f"{out} already has a {MANIFEST_FILE}; merge into a new or empty folder")
    configs, manifests, error_lists = [], [], []
    for shard in shards:
        for name in (CONFIG_FILE, MANIFEST_FILE, ERRORS_FILE):
            if not (shard / name).is_file():
                raise InputError(f"{shard / name} not found; finish that shard's `ddtool extract` run before merging")
        configs.append(json.loads((shard / CONFIG_FILE).read_text(encoding="utf-8")))
        manifests.append(_read_rows(shard / MANIFEST_FILE))
        error_lists.append(_read_rows(shard / ERRORS_FILE))
    if any(c != configs[0] for c in configs[1:]):
        raise ConfigError("the shards were extracted with different settings (extract_config.json differs); "
                          "re-extract them with one command line")
    owner: dict[str, Path] = {}
    for shard, rows, errors in zip(shards, manifests, error_lists):
        ids = {r["video_id"] for r in rows} | {e["video_id"] for e in errors if e["video_id"]}
        for video_id in ids:
            if video_id in owner:
                raise InputError(f"video {video_id!r} is in both {owner[video_id]} and {shard}; "
                                 "merge shards of one --shard I/N run only")
            owner[video_id] = shard
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / CONFIG_FILE, configs[0])
    for shard, rows, errors in zip(shards, manifests, error_lists):
        for row in rows:
            _place(shard / row["crop_path"], out / row["crop_path"])
        # Records make the merged cache resumable like any other.
        for video_id in {r["video_id"] for r in rows} | {e["video_id"] for e in errors if e["video_id"]}:
            for record in (record_path(shard, video_id), error_record_path(shard, video_id)):
                if record.is_file():
                    _place(record, out / record.relative_to(shard))
    all_rows = sorted((r for rows in manifests for r in rows),
                      key=lambda r: (r["video_id"], int(r["frame_index"]), int(r["track_id"])))
    all_errors = [e for errors in error_lists for e in errors]
    _write_rows(out / MANIFEST_FILE, MANIFEST_COLUMNS, all_rows)
    _write_rows(out / ERRORS_FILE, ERROR_COLUMNS, all_errors)
    return MergeSummary(out, len(shards), len(all_rows), len({r["video_id"] for r in all_rows}), len(all_errors))
