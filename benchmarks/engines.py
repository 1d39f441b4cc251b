"""Which engine scores faces fastest on this CPU: torch (eager, frozen TorchScript trace), onnxruntime, OpenCV cv2.dnn.

    .venv/bin/python benchmarks/engines.py [--weights sbi_efficientnet_lite0,meso4_f2f] [--batches 1,4] [--repeats 9]
                                           [--threads 1] [--centerface] [--json OUT]

For each shipped detector (its card's ONNX export and its safetensors) and batch size: ms per face, min and median
over --repeats, the engines interleaved within every repeat (A/B/C/D, A/B/C/D, ...) so a change of load hits them
alike; each repeat scores 32 faces. --centerface adds the face detector: cv2.dnn (what scan runs) against
onnxruntime on the same graph with its fixed input dims made free (in memory, with the onnx package), at scan's
coarse size (a 720p frame at 320 px) and at the full search size (640 px). Every engine runs with --threads intra-op
threads (scan's stage threads: 1 on 2 cores). Also prints the largest P(fake) difference of each engine against
eager torch. Speed depends on the machine and its load: note both beside any figure you quote.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import cv2
import numpy as np
import torch

FACES = 32


def detector_engines(name: str, batch: int, threads: int) -> tuple[dict, dict]:
    """{engine: callable scoring one batch} and {engine: P(fake) of the same batch} for a shipped detector."""
    from ddtool.models.loader import open_model
    from ddtool.models.logits import fake_probability

    onnx_model = open_model(name_to_card(name), device="cpu", threads=threads, engine="onnxruntime")
    torch_model = open_model(name_to_card(name), device="cpu", threads=threads, engine="torch")
    height, width = onnx_model.scorer.input_hw
    images = np.random.default_rng(0).normal(size=(batch, 3, height, width)).astype(np.float32)
    eager = torch_model.scorer.model
    x = torch.from_numpy(images).contiguous(memory_format=torch.channels_last)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frozen = torch.jit.freeze(torch.jit.trace(eager, x, check_trace=False))
    net = cv2.dnn.readNetFromONNX(str(onnx_model.engine_file))

    def run_dnn():
        net.setInput(images)
        return net.forward()

    def no_grad(module):
        def run():
            with torch.no_grad():
                return module(x)
        return run

    calls = {"torch eager": no_grad(eager), "torch frozen trace": no_grad(frozen),
             "onnxruntime": lambda: onnx_model.scorer.logits(images), "cv2.dnn": run_dnn}
    scores = {}
    for engine, call in calls.items():
        try:
            logits = call()
            scores[engine] = fake_probability(logits.numpy() if isinstance(logits, torch.Tensor) else np.asarray(logits))
        except Exception as exc:  # noqa: BLE001 - an engine that cannot run this graph is reported, not timed
            print(f"  {name}: {engine} cannot run it: {str(exc).splitlines()[0][:120]}", file=sys.stderr)
    return {k: v for k, v in calls.items() if k in scores}, scores


def name_to_card(name: str) -> Path:
    from ddtool.weights import resolve_weights

    return Path(resolve_weights(name))


def centerface_engines(threads: int) -> dict[str, dict]:
    """{size: {engine: callable}} for CenterFace at scan's coarse and full search sizes."""
    import onnx

    from ddtool.media.centerface import OUTPUTS
    from ddtool.media.face_box import face_detector_weights_dir
    from ddtool.onnx_session import open_session

    path = face_detector_weights_dir() / "centerface.onnx"
    graph = onnx.load(str(path))
    for value in [graph.graph.input[0], *graph.graph.output]:
        for i, dim in enumerate(value.type.tensor_type.shape.dim):
            if i != 1 or value is not graph.graph.input[0]:
                dim.ClearField("dim_value")
                dim.dim_param = f"{value.name}_{i}"
    initialisers = {t.name for t in graph.graph.initializer}
    kept = [v for v in graph.graph.input if v.name not in initialisers]
    del graph.graph.input[:]
    graph.graph.input.extend(kept)
    session = open_session(graph.SerializeToString(), ["CPUExecutionProvider"], threads)
    net = cv2.dnn.readNetFromONNX(str(path))
    cases = {}
    for height, width in ((192, 320), (384, 640)):
        blob = (np.random.default_rng(1).random((1, 3, height, width)) * 255).astype(np.float32)

        def dnn(blob=blob):
            net.setInput(blob)
            return net.forward(list(OUTPUTS))

        def ort(blob=blob):
            return session.run(list(OUTPUTS), {graph.graph.input[0].name: blob})

        difference = max(float(np.abs(a - b).max()) for a, b in zip(dnn(), ort()))
        cases[f"{width}x{height}"] = {"calls": {"cv2.dnn": dnn, "onnxruntime": ort}, "max_output_difference": difference}
    return cases


def interleaved(calls: dict, repeats: int, per_repeat: int) -> dict[str, list[float]]:
    for call in calls.values():  # warm up: first calls allocate
        call(), call()
    times: dict[str, list[float]] = {k: [] for k in calls}
    for _ in range(repeats):
        for engine, call in calls.items():
            started = time.perf_counter()
            for _ in range(per_repeat):
                call()
            times[engine].append((time.perf_counter() - started) / per_repeat)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="sbi_efficientnet_lite0,meso4_f2f", help="shipped names with an ONNX export")
    parser.add_argument("--batches", default="1,4", help="faces per call (scan scores chunks of 4)")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads of every engine (default: scan's stage threads)")
    parser.add_argument("--centerface", action="store_true", help="also CenterFace: cv2.dnn against onnxruntime")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    from ddtool.device import stage_threads

    threads = stage_threads(args.threads)
    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    report = {"command": "python " + " ".join(sys.argv), "threads": threads, "cpus": os.cpu_count(),
              "load_average_at_start": os.getloadavg()[0], "torch": torch.__version__, "opencv": cv2.__version__, "rows": []}
    print(f"# threads {threads}, {os.cpu_count()} cores, load average {report['load_average_at_start']:.2f}; min / median of {args.repeats} repeats\n")
    print("| model | batch | engine | ms per face (min / median) | max P(fake) diff vs eager |")
    print("|---|---|---|---|---|")
    for name in [n.strip() for n in args.weights.split(",") if n.strip()]:
        for batch in (int(b) for b in args.batches.split(",")):
            calls, scores = detector_engines(name, batch, threads)
            times = interleaved(calls, args.repeats, max(1, FACES // batch))
            for engine, values in times.items():
                per_face = [1000 * v / batch for v in values]
                diff = float(np.abs(scores[engine] - scores["torch eager"]).max())
                row = {"model": name, "batch": batch, "engine": engine, "ms_per_face_min": min(per_face),
                       "ms_per_face_median": statistics.median(per_face), "max_p_fake_difference": diff}
                report["rows"].append(row)
                print(f"| {name} | {batch} | {engine} | {min(per_face):.2f} / {statistics.median(per_face):.2f} | {diff:.1e} |")
    if args.centerface:
        for size, case in centerface_engines(threads).items():
            times = interleaved(case["calls"], args.repeats, 8)
            for engine, values in times.items():
                per_frame = [1000 * v for v in values]
                report["rows"].append({"model": "centerface", "input": size, "engine": engine, "ms_per_frame_min": min(per_frame),
                                       "ms_per_frame_median": statistics.median(per_frame), "max_output_difference": case["max_output_difference"]})
                print(f"| centerface | 1 frame {size} | {engine} | {min(per_frame):.2f} / {statistics.median(per_frame):.2f} per frame "
                      f"| outputs {case['max_output_difference']:.1e} |")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
