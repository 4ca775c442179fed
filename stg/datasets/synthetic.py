"""Seeded synthetic videos in the DAVIS 2017 layout, so the whole chain runs on a fresh machine with no download.

Every video shows 1-3 textured objects (translation, scale change, slight rotation) in a fixed depth order
over a textured background that pans. The first four videos cover the cases a propagation method must
survive: two objects occluding each other, an object that leaves the frame and comes back, a single large
object, three objects. Geometry, speeds and texture sizes scale with the frame size, so a tiny version
(e.g. 120x214, 8 frames) keeps the same story. The same settings always give the same bytes.
"""

from __future__ import annotations

import colorsys
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from stg.atomic import atomic_directory
from stg.errors import InputError
from stg.palette import write_palette_png

GENERATOR_VERSION = 1
SPECIAL_KINDS = ("occlusion", "exit", "single", "triple")
TEXTURES = ("stripes", "checker", "noise")
SHAPES = ("ellipse", "polygon", "blob")
RESOLUTION = "480p"
JPEG_QUALITY = 90
MIN_FRAMES = 6
METADATA_FILE = "synthetic.json"
_REFERENCE_AREA = 480 * 854  # speeds and sizes below are in pixels at this frame area
_MAX_LAYOUT_TRIES = 50


# ----------------------------------------------------------------------------------------------- names


def video_kind(index: int) -> str:
    """The story of video `index`: the first four are the special cases, the rest plain motion."""
    return SPECIAL_KINDS[index] if index < len(SPECIAL_KINDS) else "plain"


def video_name(index: int) -> str:
    return f"synth{index:02d}-{video_kind(index)}"


def video_names(num_videos: int) -> list[str]:
    """Sequence names, known before generation (the workflow lists jobs from them)."""
    return [video_name(index) for index in range(num_videos)]


# ----------------------------------------------------------------------------------------------- scene model


@dataclass(frozen=True)
class Appearance:
    """An object's template: texture and shape drawn at (at least) the resolution of its largest frame size."""

    shape: str
    texture_kind: str
    texture: np.ndarray  # (S, S, 3) uint8 RGB
    alpha: np.ndarray  # (S, S) uint8, 255 inside the shape
    area: float  # frame pixels covered at relative scale 1
    radius: float  # frame pixels: the shape lies within this circle around its centre at relative scale 1
    template_radius: int  # the same circle in template pixels

    @property
    def frame_per_template(self) -> float:
        """Frame pixels per template pixel at relative scale 1."""
        return self.radius / self.template_radius


@dataclass(frozen=True)
class SceneObject:
    """One object: its template and its per-frame pose."""

    label: int
    look: Appearance
    centre: np.ndarray  # (T, 2) x, y in frame pixels
    scale: np.ndarray  # (T,) relative scale
    angle: np.ndarray  # (T,) degrees


@dataclass(frozen=True)
class Scene:
    """A whole video before rendering: background canvas, camera pan, objects from back to front."""

    name: str
    kind: str
    height: int
    width: int
    background: np.ndarray  # (Hc, Wc, 3) uint8 canvas larger than the frame
    pan: np.ndarray  # (T, 2) x, y of the frame's top-left corner on the canvas
    objects: tuple[SceneObject, ...]  # drawing order: back to front
    story: dict

    @property
    def num_frames(self) -> int:
        return len(self.pan)


# ----------------------------------------------------------------------------------------------- textures


def _unit(height: int, width: int) -> float:
    """Length scale of the frame relative to 480x854, so a small version keeps the same geometry."""
    return math.sqrt(height * width / _REFERENCE_AREA)


def _hsv(hue: float, saturation: float, value: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(hue % 1.0, saturation, value), dtype=np.float32) * 255


def _value_noise(rng: np.random.Generator, shape: tuple[int, int], cell: float) -> np.ndarray:
    """Smooth noise in about [0, 1] with features of `cell` pixels (random grid, cubic upsampling)."""
    cell = max(float(cell), 1.0)
    rows, cols = int(shape[0] / cell) + 3, int(shape[1] / cell) + 3
    grid = rng.random((rows, cols), dtype=np.float32)
    big = cv2.resize(grid, (math.ceil(cols * cell), math.ceil(rows * cell)), interpolation=cv2.INTER_CUBIC)
    return big[: shape[0], : shape[1]]


def _fractal_noise(rng: np.random.Generator, shape: tuple[int, int], cell: float, octaves: int = 3) -> np.ndarray:
    """Multi-scale noise normalised to [0, 1]: texture at several sizes gives flow something at every level."""
    total = np.zeros(shape, dtype=np.float32)
    for octave in range(octaves):
        total += _value_noise(rng, shape, cell / 2**octave) * 0.5**octave
    low, high = float(total.min()), float(total.max())
    return (total - low) / max(high - low, 1e-6)


def _object_texture(rng: np.random.Generator, kind: str, size: int, dark: np.ndarray, light: np.ndarray,
                    feature: float) -> np.ndarray:
    """A two-colour pattern plus fine detail (stripes alone would leave flow an aperture problem)."""
    grid_y, grid_x = np.mgrid[0:size, 0:size].astype(np.float32)
    theta = rng.uniform(0, math.pi)
    along = grid_x * math.cos(theta) + grid_y * math.sin(theta)
    across = grid_y * math.cos(theta) - grid_x * math.sin(theta)
    if kind == "stripes":
        weight = np.clip(0.5 + 1.25 * np.sin(along * (math.pi / feature)), 0.0, 1.0)
    elif kind == "checker":
        weight = ((np.floor(along / feature) + np.floor(across / feature)) % 2).astype(np.float32)
    else:
        weight = np.clip((_fractal_noise(rng, (size, size), feature * 2.5) - 0.5) * 2.0 + 0.5, 0.0, 1.0)
    colour = dark + (light - dark) * weight[..., None]
    detail = _value_noise(rng, (size, size), max(feature * 0.3, 1.0)) - 0.5
    colour += detail[..., None] * 70
    light_x, light_y = rng.uniform(0, size, 2)
    shade = 1.05 - 0.35 * np.hypot(grid_x - light_x, grid_y - light_y) / size
    return np.clip(colour * shade[..., None], 0, 255).astype(np.uint8)


def _background(rng: np.random.Generator, shape: tuple[int, int], unit: float, hue: float) -> np.ndarray:
    """Muted, cluttered canvas: large colour regions, shapes with edges, fine grain."""
    height, width = shape
    field = _fractal_noise(rng, shape, 160 * unit)
    base, other = _hsv(hue, rng.uniform(0.15, 0.35), rng.uniform(0.35, 0.5)), _hsv(
        hue + 0.08, rng.uniform(0.1, 0.3), rng.uniform(0.6, 0.8))
    canvas = np.clip(base + (other - base) * field[..., None], 0, 255).astype(np.uint8)
    clutter = int(height * width / (70 * unit) ** 2 * 0.5)
    for _ in range(clutter):
        colour = tuple(float(c) for c in _hsv(hue + rng.uniform(-0.15, 0.15), rng.uniform(0.05, 0.4),
                                              rng.uniform(0.25, 0.85)))
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        size = max(2, int(rng.uniform(5, 40) * unit))
        form = rng.integers(0, 3)
        if form == 0:
            cv2.rectangle(canvas, (x, y), (x + 2 * size, y + int(size * rng.uniform(0.5, 2))), colour, -1)
        elif form == 1:
            cv2.circle(canvas, (x, y), size, colour, -1, lineType=cv2.LINE_AA)
        else:
            end = (x + int(rng.uniform(-4, 4) * size), y + int(rng.uniform(-4, 4) * size))
            cv2.line(canvas, (x, y), end, colour, max(1, int(rng.uniform(2, 6) * unit)), lineType=cv2.LINE_AA)
    grain = (_value_noise(rng, shape, 3 * unit) - 0.5) * 45 + (_value_noise(rng, shape, 14 * unit) - 0.5) * 40
    canvas = np.clip(canvas.astype(np.float32) + grain[..., None], 0, 255).astype(np.uint8)
    return cv2.GaussianBlur(canvas, (0, 0), 0.6)


# ----------------------------------------------------------------------------------------------- shapes


def _unit_outline(rng: np.random.Generator, shape: str) -> np.ndarray:
    """Closed outline (N, 2) around the origin whose farthest point is at distance 1."""
    if shape == "ellipse":
        angles = np.linspace(0, 2 * math.pi, 96, endpoint=False)
        points = np.stack([np.cos(angles), rng.uniform(0.6, 0.9) * np.sin(angles)], axis=1)
        turn = rng.uniform(0, math.pi)
        rotation = np.array([[math.cos(turn), -math.sin(turn)], [math.sin(turn), math.cos(turn)]])
        points = points @ rotation.T
    elif shape == "polygon":
        corners = int(rng.integers(5, 10))
        angles = (np.arange(corners) + rng.uniform(-0.3, 0.3, corners)) * (2 * math.pi / corners)
        radii = rng.uniform(0.65, 1.0, corners)
        points = np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)
    else:
        angles = np.linspace(0, 2 * math.pi, 120, endpoint=False)
        radii = np.ones_like(angles)
        for harmonic in (2, 3, 4):
            radii += rng.uniform(0.0, 0.12) * np.cos(harmonic * angles + rng.uniform(0, 2 * math.pi))
        points = np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)
    return points / np.linalg.norm(points, axis=1).max()


def _polygon_area(points: np.ndarray) -> float:
    x, y = points[:, 0], points[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y)))


def _appearance(rng: np.random.Generator, shape: str, texture_kind: str, area: float, max_scale: float,
                hue: float, unit: float) -> Appearance:
    """Template big enough that rendering only ever downsamples it."""
    outline = _unit_outline(rng, shape)
    radius = math.sqrt(area / _polygon_area(outline))
    template_radius = max(4, math.ceil(radius * max_scale))
    size = 2 * template_radius + 3
    centre = (size - 1) / 2
    alpha = np.zeros((size, size), dtype=np.uint8)
    vertices = np.round((centre + outline * template_radius) * 16).astype(np.int32)
    cv2.fillPoly(alpha, [vertices], 255, lineType=cv2.LINE_8, shift=4)
    feature = max(2.0, rng.uniform(6, 14) * unit) * template_radius / radius
    saturation = rng.uniform(0.6, 0.95)
    dark = _hsv(hue, saturation, rng.uniform(0.25, 0.45))
    light = _hsv(hue + 0.06, saturation * 0.8, rng.uniform(0.8, 1.0))
    texture = _object_texture(rng, texture_kind, size, dark, light, feature)
    return Appearance(shape, texture_kind, texture, alpha, area, radius, template_radius)


# ----------------------------------------------------------------------------------------------- motion


def _sine_offset(num_frames: int, period: float, phase: float, peak_speed: float) -> np.ndarray:
    """Offset from 0 at frame 0 along a sine of the given period, at most `peak_speed` per frame."""
    omega = 2 * math.pi / period
    times = np.arange(num_frames, dtype=np.float64)
    return peak_speed / omega * (np.sin(omega * times + phase) - math.sin(phase))


def _oscillation(rng: np.random.Generator, num_frames: int, peak_speed: float) -> np.ndarray:
    """A slow smooth offset (period longer than the video) starting at 0."""
    period = rng.uniform(1.2, 3.0) * max(num_frames, 20)
    return _sine_offset(num_frames, period, rng.uniform(0, 2 * math.pi), peak_speed)


def _fit(offset: np.ndarray, start: float, low: float, high: float) -> float:
    """Largest factor (<= 1) that keeps start + factor * offset inside [low, high]."""
    fit = 1.0
    if offset.max() > 0:
        fit = min(fit, (high - start) / offset.max())
    if offset.min() < 0:
        fit = min(fit, (low - start) / offset.min())
    return max(fit, 0.0)


def _wander(rng: np.random.Generator, num_frames: int, start: float, low: float, high: float,
            peak_speed: float, min_period: float = 16.0) -> np.ndarray:
    """A smooth 1-D path from `start` inside [low, high]; in little room it swings faster rather than slower."""
    start = min(max(start, low), high)
    period = rng.uniform(1.2, 3.0) * max(num_frames, 20)
    phase = rng.uniform(0, 2 * math.pi)
    offset = _sine_offset(num_frames, period, phase, peak_speed)
    while _fit(offset, start, low, high) < 0.7 and period > min_period:
        period = max(period / 1.4, min_period)
        offset = _sine_offset(num_frames, period, phase, peak_speed)
    return start + offset * _fit(offset, start, low, high)


def _wander_2d(rng: np.random.Generator, num_frames: int, start: tuple[float, float],
               box: tuple[float, float, float, float], speed: float) -> np.ndarray:
    """(T, 2) path from `start` inside box (x0, y0, x1, y1); `speed` is split between the axes."""
    heading = rng.uniform(0, 2 * math.pi)
    xs = _wander(rng, num_frames, start[0], box[0], box[2], speed * abs(math.cos(heading)))
    ys = _wander(rng, num_frames, start[1], box[1], box[3], speed * abs(math.sin(heading)))
    return np.stack([xs, ys], axis=1)


def _scale_path(rng: np.random.Generator, num_frames: int, amplitude: float) -> np.ndarray:
    omega = 2 * math.pi / (rng.uniform(1.5, 3.0) * max(num_frames, 20))
    return 1.0 + amplitude * np.sin(omega * np.arange(num_frames) + rng.uniform(0, 2 * math.pi))


def _angle_path(rng: np.random.Generator, num_frames: int) -> np.ndarray:
    """A slight rocking rotation (a few to 15 degrees)."""
    omega = 2 * math.pi / (rng.uniform(1.5, 3.0) * max(num_frames, 20))
    swing = rng.uniform(4, 15)
    return rng.uniform(0, 360) + swing * np.sin(omega * np.arange(num_frames) + rng.uniform(0, 2 * math.pi))


def _pan_path(rng: np.random.Generator, num_frames: int, unit: float) -> np.ndarray:
    """Camera offsets (T, 2): a steady drift plus a wobble, shifted to start at (1, 1) or more."""
    heading = rng.uniform(0, 2 * math.pi)
    drift = rng.uniform(0.5, 3.0) * unit * np.array([math.cos(heading), math.sin(heading)])
    times = np.arange(num_frames, dtype=np.float64)[:, None]
    wobble = np.stack([_oscillation(rng, num_frames, rng.uniform(0, 2) * unit) for _ in range(2)], axis=1)
    path = drift * times + wobble
    return path - path.min(axis=0) + 1.0


# ----------------------------------------------------------------------------------------------- scenes


@dataclass(frozen=True)
class _Frame:
    """What the scene builders need to know about the frame."""

    height: int
    width: int
    num_frames: int
    unit: float

    @property
    def area(self) -> float:
        return float(self.height * self.width)


def _object_hues(rng: np.random.Generator, background_hue: float, count: int) -> list[float]:
    """Hues spread around the circle away from the background's, so objects stand out and differ."""
    return [background_hue + (index + 1) / (count + 1) + rng.uniform(-0.04, 0.04) for index in range(count)]


def _plain_objects(rng: np.random.Generator, frame: _Frame, count: int, fractions: tuple[float, float],
                   hues: list[float]) -> list[SceneObject]:
    """Objects in side-by-side slots at frame 0 (so all are visible), each wandering inside the frame."""
    textures = rng.permutation(TEXTURES)
    objects = []
    for index in range(count):
        scale = _scale_path(rng, frame.num_frames, rng.uniform(0.08, 0.2))
        look = _appearance(rng, str(rng.choice(SHAPES)), str(textures[index % len(TEXTURES)]),
                           rng.uniform(*fractions) * frame.area, float(scale.max()), hues[index], frame.unit)
        if count == 1:
            start_x = frame.width * rng.uniform(0.35, 0.65)
        else:
            start_x = frame.width * (index + 0.5 + rng.uniform(-0.1, 0.1)) / count
        start = (start_x, frame.height * rng.uniform(0.35, 0.65))
        reach = look.radius * float(scale.max()) * 0.9
        box = (reach, reach, frame.width - reach, frame.height - reach)
        centre = _wander_2d(rng, frame.num_frames, start, box, rng.uniform(4, 10) * frame.unit)
        objects.append(SceneObject(index + 1, look, centre, scale, _angle_path(rng, frame.num_frames)))
    return objects


def _occlusion_objects(rng: np.random.Generator, frame: _Frame, hues: list[float]) -> tuple[list[SceneObject], dict]:
    """A small object crosses in front of a larger one: apart at frame 0, fully overlapping mid-video."""
    back_label, front_label = (int(label) for label in rng.permutation([1, 2]))
    scales = [_scale_path(rng, frame.num_frames, 0.04) for _ in range(2)]
    back = _appearance(rng, str(rng.choice(SHAPES)), "noise", rng.uniform(0.10, 0.13) * frame.area,
                       float(scales[0].max()), hues[0], frame.unit)
    front = _appearance(rng, str(rng.choice(["polygon", "blob"])), str(rng.choice(["stripes", "checker"])),
                        rng.uniform(0.06, 0.075) * frame.area, float(scales[1].max()), hues[1], frame.unit)
    separation = (back.radius * scales[0].max() + front.radius * scales[1].max()) * 1.05
    direction = 1.0 if rng.random() < 0.5 else -1.0
    travel = np.linspace(1.0, -1.0, frame.num_frames) * direction * separation
    middle_x = frame.width * rng.uniform(0.47, 0.53)
    middle_y = frame.height * rng.uniform(0.45, 0.55)
    nudge = rng.uniform(-0.12, 0.12) * back.radius
    wobble = [_oscillation(rng, frame.num_frames, rng.uniform(0.5, 2) * frame.unit) for _ in range(2)]
    back_centre = np.stack([middle_x - travel / 3, middle_y + wobble[0]], axis=1)
    front_centre = np.stack([middle_x + travel * 2 / 3, middle_y + nudge + wobble[1]], axis=1)
    objects = [SceneObject(back_label, back, back_centre, scales[0], _angle_path(rng, frame.num_frames)),
               SceneObject(front_label, front, front_centre, scales[1], _angle_path(rng, frame.num_frames))]
    return objects, {"front": front_label, "back": back_label}


def _leaving_object(rng: np.random.Generator, frame: _Frame, label: int, side: float, hue: float
                    ) -> tuple[SceneObject, list[int]]:
    """Starts just inside the `side` edge, moves out, stays fully out for several frames, comes back.

    Returns the object and the first and last frame it is certainly wholly outside.
    """
    scale = _scale_path(rng, frame.num_frames, 0.08)
    look = _appearance(rng, str(rng.choice(["polygon", "blob"])), str(rng.choice(TEXTURES)),
                       rng.uniform(0.04, 0.05) * frame.area, float(scale.max()), hue, frame.unit)
    reach = look.radius * float(scale.max())
    margin = 3 * frame.unit + 1
    inside = frame.width / 2 + side * (frame.width / 2 - reach - margin)
    outside = frame.width / 2 + side * (frame.width / 2 + reach + margin)
    out_frames = max(2, round(0.12 * frame.num_frames))
    first_out = (frame.num_frames - out_frames) // 2
    last_out = first_out + out_frames - 1
    xs = np.interp(np.arange(frame.num_frames), [0, first_out, last_out, frame.num_frames - 1],
                   [inside, outside, outside, inside])
    ys = _wander(rng, frame.num_frames, frame.height * rng.uniform(0.35, 0.65), reach, frame.height - reach,
                 rng.uniform(1, 4) * frame.unit)
    leaving = SceneObject(label, look, np.stack([xs, ys], axis=1), scale, _angle_path(rng, frame.num_frames))
    return leaving, [first_out, last_out]


def _staying_object(rng: np.random.Generator, frame: _Frame, label: int, side: float, hue: float) -> SceneObject:
    """Wanders in the half of the frame away from the `side` edge, so it never hides the leaving object."""
    scale = _scale_path(rng, frame.num_frames, rng.uniform(0.08, 0.15))
    look = _appearance(rng, str(rng.choice(SHAPES)), str(rng.choice(TEXTURES)),
                       rng.uniform(0.07, 0.10) * frame.area, float(scale.max()), hue, frame.unit)
    reach = look.radius * float(scale.max()) * 0.9
    low, high = (reach, frame.width * 0.5) if side > 0 else (frame.width * 0.5, frame.width - reach)
    start = (frame.width * (0.5 - side * 0.25), frame.height * rng.uniform(0.35, 0.65))
    centre = _wander_2d(rng, frame.num_frames, start, (low, reach, high, frame.height - reach),
                        rng.uniform(4, 9) * frame.unit)
    return SceneObject(label, look, centre, scale, _angle_path(rng, frame.num_frames))


def _exit_objects(rng: np.random.Generator, frame: _Frame, hues: list[float]) -> tuple[list[SceneObject], dict]:
    """One object leaves through a side edge and comes back; the other stays in view."""
    exit_label, stay_label = (int(label) for label in rng.permutation([1, 2]))
    side = 1.0 if rng.random() < 0.5 else -1.0  # +1: leaves through the right edge
    leaving, out_frames = _leaving_object(rng, frame, exit_label, side, hues[0])
    staying = _staying_object(rng, frame, stay_label, side, hues[1])
    objects = [leaving, staying] if rng.random() < 0.5 else [staying, leaving]
    return objects, {"leaves": exit_label, "edge": "right" if side > 0 else "left", "out_frames": out_frames}


def _scene_objects(rng: np.random.Generator, kind: str, frame: _Frame, background_hue: float
                   ) -> tuple[list[SceneObject], dict]:
    """Objects from back to front, plus what the kind's story is (recorded in synthetic.json)."""
    if kind == "occlusion":
        return _occlusion_objects(rng, frame, _object_hues(rng, background_hue, 2))
    if kind == "exit":
        return _exit_objects(rng, frame, _object_hues(rng, background_hue, 2))
    count = {"single": 1, "triple": 3}.get(kind) or int(rng.integers(1, 4))
    fractions = {1: (0.09, 0.15), 2: (0.05, 0.12), 3: (0.05, 0.09)}[count]
    objects = _plain_objects(rng, frame, count, fractions, _object_hues(rng, background_hue, count))
    order = rng.permutation(count)
    return [objects[index] for index in order], {}


def build_scene(index: int, *, seed: int, frames: tuple[int, int], height: int, width: int) -> Scene:
    """Video `index` of a generation; it depends on (seed, index) only, not on how many videos there are."""
    rng = np.random.default_rng([seed, index])
    kind = video_kind(index)
    num_frames = int(rng.integers(frames[0], frames[1], endpoint=True))
    frame = _Frame(height, width, num_frames, _unit(height, width))
    background_hue = rng.uniform(0, 1)
    pan = _pan_path(rng, num_frames, frame.unit)
    span = np.ceil(pan.max(axis=0)).astype(int) + 2
    background = _background(rng, (height + int(span[1]), width + int(span[0])), frame.unit, background_hue)
    for _ in range(_MAX_LAYOUT_TRIES):
        objects, story = _scene_objects(rng, kind, frame, background_hue)
        scene = Scene(video_name(index), kind, height, width, background, pan, tuple(objects), story)
        if _all_visible_at_start(scene):
            return scene
    raise RuntimeError(f"could not place the objects of synthetic video {index} visibly in frame 0")


def _all_visible_at_start(scene: Scene) -> bool:
    """Each object shows at least half of its area in frame 0 (the first mask must hold every object)."""
    _, labels = render_frame(scene, 0)
    counts = np.bincount(labels.ravel(), minlength=len(scene.objects) + 1)
    return all(counts[obj.label] >= 0.5 * obj.look.area * obj.scale[0] ** 2 for obj in scene.objects)


# ----------------------------------------------------------------------------------------------- rendering


def _object_matrix(obj: SceneObject, frame_index: int) -> np.ndarray:
    """Affine map template -> frame: rotate and scale about the template centre, then move to the pose."""
    size = obj.look.alpha.shape[0]
    centre = (size - 1) / 2
    zoom = obj.look.frame_per_template * float(obj.scale[frame_index])
    theta = math.radians(float(obj.angle[frame_index]))
    cos, sin = zoom * math.cos(theta), zoom * math.sin(theta)
    x, y = (float(v) for v in obj.centre[frame_index])
    return np.array([[cos, -sin, x - cos * centre + sin * centre],
                     [sin, cos, y - sin * centre - cos * centre]], dtype=np.float64)


def _object_box(obj: SceneObject, frame_index: int, height: int, width: int) -> tuple[int, int, int, int] | None:
    """Frame rows/cols (y0, y1, x0, x1) the object can touch, or None when it is wholly outside."""
    reach = obj.look.radius * float(obj.scale[frame_index]) + 2
    x, y = (float(v) for v in obj.centre[frame_index])
    x0, x1 = max(0, math.floor(x - reach)), min(width, math.ceil(x + reach) + 1)
    y0, y1 = max(0, math.floor(y - reach)), min(height, math.ceil(y + reach) + 1)
    if x0 >= x1 or y0 >= y1:
        return None
    return y0, y1, x0, x1


def render_frame(scene: Scene, frame_index: int) -> tuple[np.ndarray, np.ndarray]:
    """RGB image (H, W, 3) and label map (H, W) of one frame; later objects are drawn over earlier ones."""
    ox, oy = (float(v) for v in scene.pan[frame_index])
    camera = np.array([[1, 0, -ox], [0, 1, -oy]], dtype=np.float64)
    image = cv2.warpAffine(scene.background, camera, (scene.width, scene.height), flags=cv2.INTER_LINEAR)
    labels = np.zeros((scene.height, scene.width), dtype=np.uint8)
    for obj in scene.objects:
        box = _object_box(obj, frame_index, scene.height, scene.width)
        if box is None:
            continue
        y0, y1, x0, x1 = box
        matrix = _object_matrix(obj, frame_index)
        matrix[:, 2] -= (x0, y0)
        size = (x1 - x0, y1 - y0)
        texture = cv2.warpAffine(obj.look.texture, matrix, size, flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_REFLECT)
        alpha = cv2.warpAffine(obj.look.alpha, matrix, size, flags=cv2.INTER_LINEAR, borderValue=0)
        mask = cv2.warpAffine(obj.look.alpha, matrix, size, flags=cv2.INTER_NEAREST, borderValue=0)
        region = image[y0:y1, x0:x1].astype(np.float32)
        weight = alpha.astype(np.float32)[..., None] / 255
        image[y0:y1, x0:x1] = np.rint(region + (texture.astype(np.float32) - region) * weight).astype(np.uint8)
        labels[y0:y1, x0:x1][mask > 127] = obj.label
    return image, labels


# ----------------------------------------------------------------------------------------------- writing


def _write_jpeg(path: Path, image: np.ndarray) -> None:
    """cv2.imencode, not PIL: its bytes are the same on every run with the same input."""
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError(f"{path}: JPEG encoding failed")
    path.write_bytes(encoded.tobytes())


def _centre_speeds(scene: Scene) -> list[float]:
    return [float(np.linalg.norm(np.diff(obj.centre, axis=0), axis=1).max(initial=0.0)) for obj in scene.objects]


def _write_video(root: Path, scene: Scene) -> dict:
    """All frames and all annotations of one video; returns its record for synthetic.json."""
    image_dir = root / "JPEGImages" / RESOLUTION / scene.name
    annotation_dir = root / "Annotations" / RESOLUTION / scene.name
    image_dir.mkdir(parents=True)
    annotation_dir.mkdir(parents=True)
    for frame_index in range(scene.num_frames):
        image, labels = render_frame(scene, frame_index)
        _write_jpeg(image_dir / f"{frame_index:05d}.jpg", image)
        write_palette_png(annotation_dir / f"{frame_index:05d}.png", labels)
    objects = sorted(scene.objects, key=lambda obj: obj.label)
    return {
        "name": scene.name,
        "kind": scene.kind,
        "frames": scene.num_frames,
        "objects": [{"label": obj.label, "shape": obj.look.shape, "texture": obj.look.texture_kind,
                     "area_fraction": round(obj.look.area / (scene.height * scene.width), 4)} for obj in objects],
        "depth_order": [obj.label for obj in scene.objects],
        "max_centre_speed_px": round(max(_centre_speeds(scene)), 2),
        "max_pan_speed_px": round(float(np.linalg.norm(np.diff(scene.pan, axis=0), axis=1).max(initial=0.0)), 2),
        **scene.story,
    }


def _write_index(root: Path, split: str, settings: dict, records: list[dict]) -> None:
    """Split file, synthetic.json (settings, version, what each video shows) and a short README."""
    split_dir = root / "ImageSets" / "2017"
    split_dir.mkdir(parents=True)
    (split_dir / f"{split}.txt").write_text("".join(f"{record['name']}\n" for record in records))
    (root / METADATA_FILE).write_text(json.dumps({**settings, "videos": records}, indent=2) + "\n")
    lines = [
        "# Synthetic VOS dataset (DAVIS 2017 layout)",
        "",
        "Generated by `stg.datasets.synthetic` (no download); regenerate with `stg synth` and these settings:",
        "",
        *(f"- {key}: {value}" for key, value in settings.items()),
        "",
        f"Frames: `JPEGImages/{RESOLUTION}/<seq>/%05d.jpg`; palette masks for every frame: "
        f"`Annotations/{RESOLUTION}/<seq>/%05d.png` (0 background, k object k); split: `ImageSets/2017/{split}.txt`.",
        f"Per-video contents (object shapes, depth order, occlusion and exit frames): `{METADATA_FILE}`.",
        "",
        *(f"- {record['name']}: {record['frames']} frames, {len(record['objects'])} object(s)" for record in records),
        "",
    ]
    (root / "README.md").write_text("\n".join(lines))


def _check_settings(seed: int, num_videos: int, frames: tuple[int, int], height: int, width: int,
                    split: str) -> None:
    if not isinstance(seed, int) or seed < 0:
        raise InputError("synthetic.seed", f"seed must be a non-negative integer, got {seed!r}")
    if num_videos < 1:
        raise InputError("synthetic.num_videos", f"need at least one video, got {num_videos}")
    if not MIN_FRAMES <= frames[0] <= frames[1]:
        raise InputError("synthetic.frames", f"frame range must satisfy {MIN_FRAMES} <= min <= max, got {frames}")
    if height < 48 or width < 64:
        raise InputError("synthetic.size", f"frames must be at least 64x48, got {width}x{height}")
    if not re.fullmatch(r"[\w.-]+", split):
        raise InputError("synthetic.split", f"split name must be a plain file name, got {split!r}")


def _check_replaceable(root: Path) -> None:
    """Only an earlier synthetic dataset (or an empty folder) may be replaced: never a user's real data."""
    if not root.exists():
        return
    if not root.is_dir():
        raise InputError(root, "exists and is not a folder; refusing to replace it with a synthetic dataset")
    if any(root.iterdir()) and not (root / METADATA_FILE).is_file():
        raise InputError(root, f"folder exists and is not a synthetic dataset (no {METADATA_FILE}); refusing to "
                         "replace it")


def generate(root: str | Path, *, seed: int = 0, num_videos: int = 4, frames: Sequence[int] = (30, 60),
             height: int = 480, width: int = 854, split: str = "val") -> list[str]:
    """Write the dataset to root atomically (temporary sibling, then rename); returns the sequence names."""
    frames = (int(frames[0]), int(frames[1]))
    _check_settings(seed, num_videos, frames, height, width, split)
    root = Path(root)
    _check_replaceable(root)
    settings = {"generator": "stg.datasets.synthetic", "version": GENERATOR_VERSION, "seed": seed,
                "num_videos": num_videos, "frames": list(frames), "height": height, "width": width, "split": split,
                "jpeg_quality": JPEG_QUALITY}
    with atomic_directory(root) as staging:
        records = [_write_video(staging, build_scene(index, seed=seed, frames=frames, height=height, width=width))
                   for index in range(num_videos)]
        _write_index(staging, split, settings, records)
    return video_names(num_videos)
