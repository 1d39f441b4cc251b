"""Shipped weights: find them, check their model cards, pick the one `scan` uses, package new ones.

A shipped model is an ordinary ddtool checkpoint (NAME.safetensors, or
NAME.lgbm.txt for LightGBM, + NAME.json) in the weights folder, whose card
also answers what a user must know before trusting a score: the architecture,
exactly what it was trained on, the command that trained it, what it scored
on the offline benchmark, and that it never saw FaceForensics++, Celeb-DF or
DFDC. `ddtool weights --check` reports every card that does not.

Where the folder is: `$DDTOOL_WEIGHTS` when set; otherwise `weights/` of the
source checkout ddtool runs from (an editable install or `python -m ddtool`
in the repository); otherwise `<sys.prefix>/share/ddtool/weights` (where a
packager may put data files). A plain `pip install` of the wheel carries no
weights: point `DDTOOL_WEIGHTS` at a copy of the repository's `weights/`.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path
from typing import Any

from ddtool.errors import CheckpointError, ConfigError
from ddtool.io import atomic_path, sha256_file, write_json_atomic

DEFAULT_MODEL = "ldfnet"  # the paper's lightweight detector; scan's choice when no card says otherwise
NOT_TRAINED_ON = "not trained or validated on FaceForensics++, Celeb-DF or DFDC"
BENCHMARK_DATASETS = ("FaceForensics", "Celeb-DF", "DFDC")
PANEL_FILE = "panel.txt"  # the default detector panel: one shipped weights name per line
PANEL_MEASUREMENT_FILE = "panel_measured.json"  # its measured accuracy, written by benchmarks/realdf.py --write-cards
# card key -> what a missing/empty value means to a reader of `ddtool weights --check`
REQUIRED_FIELDS = {
    "architecture": "the architecture",
    "training_data": "the training data",
    "training_command": "the training command",
    "benchmark": "metrics on the offline benchmark",
    "sha256": "the weights' sha256",
    "statement": f"the statement that it was {NOT_TRAINED_ON}",
}
from ddtool.models.cards import WEIGHT_SUFFIXES, card_path_for  # noqa: E402
from ddtool.locations import WEIGHTS_ENV, shipped_weights_dir  # noqa: E402,F401  (re-exported)


def resolve_weights(path: str | Path) -> Path:
    """A --weights value as a checkpoint path: the path itself, or the card of the shipped model it names.

    A bare name (no folder) that is no file here but a shipped model's name,
    with or without its suffix (`ldfnet_offline`, `ldfnet_offline.safetensors`),
    means the shipped model; anything else is returned unchanged, and loading it
    says what is missing.
    """
    path = Path(path)
    if path.exists() or card_path_for(path).is_file() or path.parent != Path("."):
        return path
    name = card_path_for(path).stem
    try:
        candidate = shipped_weights_dir() / f"{name}.json"
    except ConfigError:
        return path
    return candidate if candidate.is_file() else path


# A card may name files of this repository (its scripts, configs, weights); any other folder is the training
# machine's layout, which a card handed to someone else must not carry: data is described by name.
REPOSITORY_FOLDERS = ("benchmarks/", "scripts/", "configs/", "weights/", "docs/", "examples/", "ddtool/")
GENERIC_FOLDERS = {"", ".", "..", "cache", "data", "faces", "crops"}  # no dataset is called this: the name is the folder above
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)


def _is_path(token: str, allowed: set[str]) -> bool:
    parts = re.split(r"[/\\]", token)
    if len(parts) < 2 or not re.search(r"\w", token) or _URL.match(token) or token in allowed:
        return False
    return ".." in parts or not token.startswith(REPOSITORY_FOLDERS)


def card_paths(card: Any) -> list[str]:
    """Every file-system path in a card ("key: path"), none of which a shipped card may hold. The upstream repository
    an imported card names (`origin.repository`, owner/name) and URLs are no paths."""
    origin = card.get("origin") if isinstance(card, dict) and isinstance(card.get("origin"), dict) else {}
    allowed = {str(origin.get("repository"))} if origin.get("repository") else set()
    found = []

    def walk(value: Any, key: str) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{key}.{k}" if key else str(k))
        elif isinstance(value, list):
            for v in value:
                walk(v, key)
        elif isinstance(value, str):
            found.extend(f"{key}: {t}" for t in (w.strip(",;:()[]'\"") for w in value.split()) if _is_path(t, allowed))

    walk(card, "")
    return found


def data_name(value: Any) -> str:
    """A dataset described by name, not by where it lay: `../../data/cache_realfaces` -> cache_realfaces,
    `offline_cache2/cache` -> offline_cache2, a registered name stays as it is."""
    parts = [p for p in re.split(r"[/\\]", str(value)) if p not in GENERIC_FOLDERS]
    return parts[-1] if parts else "unnamed data"


DATA_OPTIONS = ("--data", "--cache", "--reference", "--path")  # options whose value is a dataset: its placeholder is its name


def portable_command(command: str) -> str:
    """A command line with every path argument replaced by a placeholder: a dataset's name for data options
    (`--data offline_cache2/cache` -> `--data OFFLINE_CACHE2`), the option's name otherwise (`--out runs/x` -> `--out OUT`);
    a `NAME=PATH` argument keeps its name (`"FF++ test=/x/ffpp.csv"` -> `"FF++ test=EXTRA_LABELS"`); files of this
    repository stay. Quoted words stay one word, so the command still runs once its placeholders are filled in."""
    try:
        words = shlex.split(command)
    except ValueError:  # unbalanced quotes: not a shell line we can parse; placeholders word by word
        words = command.split(" ")
    for i, word in enumerate(words):
        if word.startswith("--") and "=" in word:  # --option=PATH
            option, equals, value = word.partition("=")
            name = option
        else:
            option = words[i - 1] if i and words[i - 1].startswith("--") else "--path"
            name, equals, value = word.partition("=")
            if not equals:
                name, value = "", word
        if _is_path(value.strip("'\""), set()):
            placeholder = data_name(value.strip("'\"")) if option in DATA_OPTIONS else option.lstrip("-")
            words[i] = name + equals + re.sub(r"\W+", "_", placeholder).strip("_").upper()
    return shlex.join(words)


def card_problems(card: dict[str, Any]) -> list[str]:
    """What a shipped card lacks or gets wrong (empty list: complete)."""
    problems = [f"missing {what} ('{key}')" for key, what in REQUIRED_FIELDS.items() if not card.get(key)]
    paths = card_paths(card)
    if paths:
        problems.append(f"names data by a path ({'; '.join(paths[:3])}{' ...' if len(paths) > 3 else ''}); describe it by name")
    training = card.get("training_data")
    if training and not (isinstance(training, dict) and training.get("summary")):
        problems.append("training_data has no 'summary' saying exactly what and how many faces it was trained on")
    benchmark = card.get("benchmark")
    if benchmark and not (isinstance(benchmark, dict) and isinstance(benchmark.get("auc"), (int, float))):
        problems.append("benchmark has no numeric 'auc' (offline benchmark, test split)")
    statement = card.get("statement")
    # Weights that saw a benchmark (imported ones: the MesoNet F2F set is FaceForensics' Face2Face; ddtool's own
    # real-deepfake detectors: FaceForensics++) must say, for each of the three, what the model saw.
    says_each = statement and all(name.lower() in str(statement).lower() for name in BENCHMARK_DATASETS)
    if statement and NOT_TRAINED_ON.lower() not in str(statement).lower() and not says_each:
        problems.append(f"statement does not say it was {NOT_TRAINED_ON} (imported weights: say what it saw of {', '.join(BENCHMARK_DATASETS)})")
    if "default" in card and not isinstance(card["default"], bool):
        problems.append("'default' must be true or false")
    return problems


def _model_kind(model_name: Any) -> str | None:
    from ddtool.models import get_spec

    try:
        return get_spec(str(model_name)).input_kind
    except ConfigError:
        return None


def _inspect(card_path: Path, verify: bool) -> dict[str, Any]:
    """One card as `list_shipped` reports it: the card's fields plus name, problems, sha256_ok."""
    entry: dict[str, Any] = {"name": card_path.stem, "card_path": str(card_path), "problems": [], "sha256_ok": None}
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        entry["problems"].append(f"card is not readable JSON: {exc}")
        return entry
    if not isinstance(card, dict):
        entry["problems"].append("card is not a JSON object")
        return entry
    entry = {**card, **entry}
    if not isinstance(card.get("model"), str) or not isinstance(card.get("weights_file"), str):
        entry["problems"].append("card lacks 'model' or 'weights_file' (not a ddtool checkpoint card)")
        return entry
    if _model_kind(card["model"]) is None:
        entry["problems"].append(f"model {card['model']!r} is not registered in this ddtool version")
    entry["problems"].extend(card_problems(card))
    weights = card_path.with_name(card["weights_file"])
    entry["weights_path"] = str(weights)
    if Path(card["weights_file"]).name != card["weights_file"] or not weights.is_file():
        entry["problems"].append(f"weights file {card['weights_file']} not found beside the card")
        entry["sha256_ok"] = False
    elif verify and card.get("sha256"):
        entry["sha256_ok"] = sha256_file(weights) == card["sha256"]
        if not entry["sha256_ok"]:
            entry["problems"].append(f"sha256 of {weights.name} does not match the card (file changed or corrupt)")
    entry["problems"].extend(_onnx_problems(card_path, card, verify))
    return entry


def _onnx_problems(card_path: Path, card: dict[str, Any], verify: bool) -> list[str]:
    """What is wrong with a card's ONNX export (none: scan scores it on onnxruntime); no export is no problem."""
    block = card.get("onnx")
    if not block:
        return []
    command = f"re-run `ddtool weights export-onnx {card_path.stem}`"
    if not isinstance(block, dict) or not isinstance(block.get("weights_file"), str) or Path(block["weights_file"]).name != block["weights_file"]:
        return [f"its onnx block names no weights_file beside the card; {command}"]
    path = card_path.with_name(block["weights_file"])
    if not path.is_file():
        return [f"ONNX export {path.name} not found beside the card; {command}"]
    if block.get("exported_from") != card.get("sha256"):
        return [f"ONNX export {path.name} was made from other weights than the card's sha256, so scan scores them with torch; {command}"]
    if verify and sha256_file(path) != block.get("sha256"):
        return [f"sha256 of {path.name} does not match the card's onnx block (file changed or corrupt); {command}"]
    return []


def _card_files(folder: Path) -> list[Path]:
    # panel_measured.json (the panel's measured accuracy) sits beside the cards but is none.
    return sorted(p for p in folder.glob("*.json") if p.name != PANEL_MEASUREMENT_FILE) if folder.is_dir() else []


def list_shipped(folder: str | Path | None = None, verify: bool = True) -> list[dict[str, Any]]:
    """Every card in the weights folder, with `name`, `problems`, `sha256_ok` and the resolved `default`.

    `default` is true for exactly the one card `scan` uses (see `default_weights`);
    the card's own flag is kept as `marked_default`.
    """
    folder = Path(folder) if folder is not None else shipped_weights_dir()
    entries = [_inspect(path, verify) for path in _card_files(folder)]
    marked = [e for e in entries if e.get("default") is True]
    if len(marked) > 1:
        for entry in marked:
            entry["problems"].append(f"more than one card is marked default ({', '.join(e['name'] for e in marked)}); keep one")
    chosen = _choose_default(entries)
    panel = set(panel_names(folder))
    for entry in entries:
        entry["in_panel"] = entry["name"] in panel
        entry["marked_default"] = entry.get("default") is True
        entry["default"] = chosen is not None and entry["name"] == chosen["name"]
        if entry["marked_default"] and _model_kind(entry.get("model")) not in (None, "image"):
            entry["problems"].append("marked default but scan needs an image model; mark an image model instead")
    return entries


def _choose_default(entries: list[dict[str, Any]]) -> dict[str, Any] | None:
    # Only image models can score the faces scan crops; among them the marked
    # card wins, else the paper's lightweight detector (first by name).
    usable = [e for e in entries if isinstance(e.get("model"), str) and _model_kind(e["model"]) == "image" and e.get("weights_path")]
    for candidates in ([e for e in usable if e.get("default") is True], [e for e in usable if e["model"] == DEFAULT_MODEL]):
        if candidates:
            return candidates[0]
    return None


def panel_names(folder: str | Path | None = None) -> list[str]:
    """The default detector panel: the names in the weights folder's panel.txt (blank lines and # comments skipped).

    Adding a shipped, calibrated weight to scan's default panel is one line in that file.
    """
    path = Path(folder if folder is not None else shipped_weights_dir()) / PANEL_FILE
    if not path.is_file():
        return []
    lines = [line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines()]
    return [line for line in lines if line]


def panel_measurement(members: list[str], folder: str | Path | None = None) -> dict[str, Any] | None:
    """The measured accuracy of exactly this panel (members in order) from the weights folder, or None if never measured."""
    try:
        path = Path(folder if folder is not None else shipped_weights_dir()) / PANEL_MEASUREMENT_FILE
        record = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    except (OSError, ValueError, ConfigError):
        return None
    return record if isinstance(record, dict) and record.get("members") == list(members) else None


def default_weights(folder: str | Path | None = None) -> Path | None:
    """Card path of the shipped model `scan` uses: the one marked default, else LDFnet, else None.

    The sha256 is not checked here; loading the checkpoint checks it.
    """
    chosen = _choose_default(list_shipped(folder, verify=False))
    return Path(chosen["card_path"]) if chosen else None


def verify_shipped(folder: str | Path | None = None) -> list[str]:
    """Every problem of every shipped card, sha256 mismatches included ("NAME: problem"); empty when all is well."""
    return [f"{entry['name']}: {problem}" for entry in list_shipped(folder) for problem in entry["problems"]]


def training_summary(card: dict[str, Any]) -> str:
    """One line: what a card says its model was trained on."""
    data = card.get("training_data")
    if isinstance(data, dict) and data.get("summary"):
        return str(data["summary"])
    if isinstance(data, dict) and data.get("cache"):
        return f"face cache {Path(str(data['cache'])).name}"
    return "not recorded"


# --------------------------------------------------------------------------- packaging


def train_command(config: dict[str, Any]) -> str:
    """The `ddtool train` command line that repeats a run's resolved config."""
    flags = {
        "model": "--model", "data": "--data", "epochs": "--epochs", "batch_size": "--batch", "lr": "--lr",
        "lr_decay": "--lr-decay", "seed": "--seed", "size": "--size", "val_fraction": "--val-fraction",
        "holdout_method": "--holdout-method", "backbone": "--backbone", "max_steps": "--max-steps",
    }
    parts = ["ddtool", "train"]
    for key, flag in flags.items():
        value = config.get(key)
        if value is not None and value != "":
            parts += [flag, str(value)]
    if config.get("did"):
        parts.append("--did")
    if config.get("augment") is not None:
        parts += ["--augment", ",".join(config["augment"])]
    if config.get("synth"):
        parts += ["--synth", ",".join(config["synth"])]
        if (config.get("synth_repeats") or 1) > 1:
            parts += ["--synth-repeats", str(config["synth_repeats"])]
        if config.get("synth_mix") is not None:
            parts += ["--synth-mix", str(config["synth_mix"])]
        if config.get("synth_data"):
            parts += ["--synth-data", str(config["synth_data"])]
        if config.get("synth_data_limit"):
            parts += ["--synth-limit", str(config["synth_data_limit"])]
    if config.get("probe_c") is not None:
        parts += ["--probe-c", str(config["probe_c"])]
    if config.get("model_kwargs") or config.get("weight_decay"):
        # options without a command-line flag go through a config file
        parts.append("# + config file keys: " + json.dumps({k: config[k] for k in ("model_kwargs", "weight_decay", "optimizer") if config.get(k) is not None}))
    return " ".join(shlex.quote(p) if not p.startswith("# ") else p for p in parts)


def _describe_training_data(card: dict[str, Any]) -> dict[str, Any]:
    data = dict(card.get("training_data") or {})
    train, val = data.get("train") or {}, data.get("val") or {}
    methods = [m for m in (data.get("domains") or {}) if m != "real"]
    synth = data.get("synth") or {}
    if synth:
        summary = (
            f"{synth.get('real_crops', '?')} real face crops, each paired {synth.get('repeats', 1)}x every epoch with a fresh forgery made on the fly "
            f"({', '.join(synth.get('methods') or [])}, strength {synth.get('strength')}); model selected on "
            f"{val.get('crops', '?')} validation crops ({val.get('real', '?')} real, {val.get('fake', '?')} fake) "
            f"from face cache {data_name(data.get('cache', '?'))}"
        )
    else:
        summary = (
            f"{train.get('crops', '?')} face crops for training ({train.get('real', '?')} real, {train.get('fake', '?')} fake) "
            f"+ {val.get('crops', '?')} for validation ({val.get('real', '?')} real, {val.get('fake', '?')} fake) "
            f"from face cache {data_name(data.get('cache', '?'))}"
        )
        if methods:
            summary += f"; forgery methods: {', '.join(methods)}"
    probe = data.get("probe") or {}
    if probe.get("faces"):  # a CLIP probe fits once on every face it encoded: the crops above, self-blends, other photos
        parts = ["these crops"] + (["a self-blend of each real one"] if probe.get("synth") else [])
        if probe.get("synth_data"):
            parts.append(f"the real photos of {data_name(probe['synth_data'])}" + (" with a self-blend of each" if probe.get("synth") else ""))
        summary += f"; the probe was fitted on {probe['faces']} faces ({probe.get('real', '?')} real, {probe.get('fake', '?')} fake): {', '.join(parts)}"
    if data.get("holdout_method"):
        summary += f"; held out: {data['holdout_method']}"
    data["summary"] = summary
    # Described by name: the manifest's sha256 identifies the data exactly, its folder would only expose the machine.
    if data.get("cache"):
        data["cache"] = data_name(data["cache"])
    for key in ("manifest", "inputs_file"):
        if data.get(key):
            data[key] = Path(str(data[key])).name
    return data


def _by_name(key: str, value: Any) -> Any:
    """A benchmark entry as a shipped card keeps it: data by name, files by file name, commands with placeholders."""
    if not isinstance(value, str) or not card_paths({key: value}):
        return value
    if key.endswith("command"):
        return portable_command(value)
    return data_name(value) if key in ("cache", "data", "dataset") else Path(value).name


def _weights_suffix(weights_file: str) -> str:
    for suffix in WEIGHT_SUFFIXES:
        if weights_file.endswith(suffix):
            return suffix
    raise CheckpointError(f"unknown weights format {weights_file!r}; expected one of {', '.join(WEIGHT_SUFFIXES)}")


def _count_params(card_path: Path) -> int | None:
    import torch.nn as nn

    from ddtool.models.complexity import count_params
    from ddtool.models.checkpoint import load_checkpoint

    model, _ = load_checkpoint(card_path)
    return count_params(model) if isinstance(model, nn.Module) else None


def ship_checkpoint(
    checkpoint: str | Path,
    name: str,
    benchmark: dict[str, Any],
    folder: str | Path | None = None,
    training_data: dict[str, Any] | None = None,
    command: str | None = None,
    default: bool = False,
    architecture: str | None = None,
) -> Path:
    """Copy a trained checkpoint into the weights folder as NAME with a complete card; return the card path.

    `benchmark` holds the offline-benchmark metrics (at least `auc`);
    `training_data` overrides the summary built from the run's card. The
    sha256 is recomputed from the copy, and both files are written atomically.
    """
    from ddtool.models import get_spec
    from ddtool.models.checkpoint import read_card

    if not name or Path(name).name != name or name.startswith("."):
        raise ConfigError(f"shipped name {name!r} must be a plain file stem like ldfnet_offline")
    source_card = read_card(checkpoint)
    source_weights = Path(source_card["_card_path"]).with_name(source_card["weights_file"])
    if source_card.get("sha256") and sha256_file(source_weights) != source_card["sha256"]:
        raise CheckpointError(f"{source_weights}: sha256 does not match its card; refusing to ship a changed file")
    folder = Path(folder) if folder is not None else shipped_weights_dir()
    weights_path = folder / (name + _weights_suffix(source_card["weights_file"]))
    with atomic_path(weights_path) as tmp:
        shutil.copyfile(source_weights, tmp)
    spec = get_spec(source_card["model"])
    config = source_card.get("config") if isinstance(source_card.get("config"), dict) else {}
    card = {k: v for k, v in source_card.items() if not k.startswith("_")}
    named = {key: data_name(config[key]) for key in ("data", "synth_data") if config.get(key)}
    config = {**config, **named, "out": "RUN"} if config else config
    benchmark = {k: _by_name(k, v) for k, v in benchmark.items()}
    card.update(
        config=config,
        weights_file=weights_path.name,
        sha256=sha256_file(weights_path),
        architecture=architecture or f"{spec.name}: {spec.description}" + (f" ({spec.paper})" if spec.paper else ""),
        params=_count_params(Path(source_card["_card_path"])),
        training_data={**_describe_training_data(source_card), **(training_data or {})},
        training_command=portable_command(command or train_command(config)),
        benchmark=benchmark,
        statement=f"This model was {NOT_TRAINED_ON}; its scores on those datasets (and on real-world deepfakes) are unmeasured.",
        default=bool(default),
        shipped_from=Path(source_card["_card_path"]).name,
    )
    problems = card_problems(card)
    if problems:
        weights_path.unlink(missing_ok=True)
        raise ConfigError(f"cannot ship {name}: " + "; ".join(problems))
    card_path = folder / f"{name}.json"
    write_json_atomic(card_path, card)
    return card_path
