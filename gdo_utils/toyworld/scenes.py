"""Scene specifications and their rendering: the ground truth every toy question is asked about.

A scene is plain data (shapes with colour, kind, position; for videos a motion, an appearance
order or a colour change), drawn deterministically with PIL (no anti-aliasing), so answers are
true for the pixels by construction and tests can check them on decoded media.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from PIL import Image, ImageDraw

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40), "green": (40, 190, 60), "blue": (50, 80, 230), "yellow": (235, 215, 40),
    "white": (245, 245, 245), "purple": (150, 60, 200), "orange": (245, 140, 30), "cyan": (40, 210, 220),
}
SHAPES = ("circle", "square", "triangle")
BACKGROUNDS: dict[str, tuple[int, int, int]] = {"black": (10, 10, 10), "gray": (90, 90, 90), "navy": (15, 20, 60)}
DIRECTIONS: dict[str, tuple[int, int]] = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
VIDEO_KINDS = ("move", "appear", "color_change", "static")


@dataclass
class Shape:
    """One filled shape: kind, colour name, centre (x, y) and size (bounding-box side) in pixels."""

    kind: str
    color: str
    x: int
    y: int
    size: int

    @property
    def name(self) -> str:
        return f"{self.color} {self.kind}"


@dataclass
class ImageScene:
    background: str
    shapes: list[Shape]
    size: int

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class VideoScene:
    """A clip: `kind` in VIDEO_KINDS; fields used by each kind are documented inline."""

    kind: str
    background: str
    shapes: list[Shape]
    size: int
    n_frames: int
    direction: str | None = None          # move: direction of shapes[0]
    speed: int = 0                        # move: pixels per frame
    appear_frames: list[int] = field(default_factory=list)  # appear: frame at which shapes[i] appears
    change_frame: int | None = None       # color_change: frame from which shapes[0] has new_color
    new_color: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _draw_shape(draw: ImageDraw.ImageDraw, s: Shape, color: str | None = None) -> None:
    rgb = COLORS[color or s.color]
    h = s.size // 2
    box = (s.x - h, s.y - h, s.x + h, s.y + h)
    if s.kind == "circle":
        draw.ellipse(box, fill=rgb)
    elif s.kind == "square":
        draw.rectangle(box, fill=rgb)
    else:
        draw.polygon([(s.x, s.y - h), (s.x - h, s.y + h), (s.x + h, s.y + h)], fill=rgb)


def render_image(scene: ImageScene) -> np.ndarray:
    """(H, W, 3) uint8 drawing of an image scene."""
    im = Image.new("RGB", (scene.size, scene.size), BACKGROUNDS[scene.background])
    d = ImageDraw.Draw(im)
    for s in scene.shapes:
        _draw_shape(d, s)
    return np.asarray(im)


def shape_at(scene: VideoScene, i: int, t: int) -> tuple[Shape, str] | None:
    """Shape i as drawn at frame t (position, colour), or None when not visible yet."""
    s = scene.shapes[i]
    if scene.kind == "appear" and t < scene.appear_frames[i]:
        return None
    if scene.kind == "move" and i == 0:
        dx, dy = DIRECTIONS[scene.direction]
        s = Shape(s.kind, s.color, s.x + dx * scene.speed * t, s.y + dy * scene.speed * t, s.size)
    color = s.color
    if scene.kind == "color_change" and i == 0 and t >= scene.change_frame:
        color = scene.new_color
    return s, color


def render_video(scene: VideoScene) -> np.ndarray:
    """(T, H, W, 3) uint8 frames of a video scene."""
    frames = np.empty((scene.n_frames, scene.size, scene.size, 3), dtype=np.uint8)
    for t in range(scene.n_frames):
        im = Image.new("RGB", (scene.size, scene.size), BACKGROUNDS[scene.background])
        d = ImageDraw.Draw(im)
        for i in range(len(scene.shapes)):
            drawn = shape_at(scene, i, t)
            if drawn is not None:
                _draw_shape(d, drawn[0], drawn[1])
        frames[t] = np.asarray(im)
    return frames


# ----------------------------------------------------------------------------- sampling scenes
def distinct_shapes(rng: np.random.Generator, n: int, size: int, shape_size: int,
                    x_range: tuple[int, int] | None = None) -> list[Shape]:
    """n shapes with distinct (colour, kind) on a coarse grid (no overlaps), positions seeded."""
    combos = [(c, k) for c in COLORS for k in SHAPES]
    picks = rng.choice(len(combos), size=n, replace=False)
    cells = 3
    step = size // cells
    grid = [(cx, cy) for cy in range(cells) for cx in range(cells)]
    if x_range is not None:
        grid = [g for g in grid if x_range[0] <= g[0] <= x_range[1]]
    spots = rng.choice(len(grid), size=n, replace=False)
    out = []
    for p, g in zip(picks, spots):
        c, k = combos[int(p)]
        cx, cy = grid[int(g)]
        out.append(Shape(k, c, cx * step + step // 2, cy * step + step // 2, shape_size))
    return out


def shape_side(size: int, fraction: float | None = None) -> int:
    """Side in pixels of a drawn shape: `fraction` of a grid cell (size // 3); None: the demo's max(8, size // 6)."""
    if fraction is None:
        return max(8, size // 6)
    if not 0 < fraction <= 1:
        raise ValueError(f"shape_fraction must be in (0, 1], got {fraction}")
    step = size // 3
    return max(1, min(step - 1, int(round(fraction * step))))   # drawn 2 * (side // 2) + 1 pixels: inside the cell


def sample_image_scene(rng: np.random.Generator, size: int, shape_fraction: float | None = None) -> ImageScene:
    """1-4 distinct shapes on a 3x3 grid (so left/right and counts are unambiguous)."""
    n = int(rng.integers(1, 5))
    return ImageScene(str(rng.choice(list(BACKGROUNDS))),
                      distinct_shapes(rng, n, size, shape_side(size, shape_fraction)), size)


def sample_video_scene(rng: np.random.Generator, size: int, n_frames: int, kind: str,
                       shape_fraction: float | None = None) -> VideoScene:
    """A clip of the given kind whose moving shape always stays inside the frame."""
    bg = str(rng.choice(list(BACKGROUNDS)))
    ss = shape_side(size, shape_fraction)
    if kind == "move":
        direction = str(rng.choice(list(DIRECTIONS)))
        margin = ss // 2 + 2
        max_speed = max(1, (size - 2 * margin) // max(1, n_frames - 1))
        speed = int(rng.integers(1, max_speed + 1))
        travel = speed * (n_frames - 1)
        dx, dy = DIRECTIONS[direction]
        lo, hi = margin, size - margin
        start_lo = lo + (travel if dx < 0 or dy < 0 else 0)
        start_hi = hi - (travel if dx > 0 or dy > 0 else 0)
        along = int(rng.integers(min(start_lo, start_hi), max(start_lo, start_hi) + 1))
        across = int(rng.integers(lo, hi + 1))
        x, y = (along, across) if dx != 0 else (across, along)
        mover = distinct_shapes(rng, 1, size, ss)[0]
        mover.x, mover.y = x, y
        return VideoScene(kind, bg, [mover], size, n_frames, direction=direction, speed=speed)
    if kind == "appear":
        n = int(rng.integers(2, 4))
        shapes = distinct_shapes(rng, n, size, ss)
        gap = n_frames // (n + 1)
        return VideoScene(kind, bg, shapes, size, n_frames, appear_frames=[i * gap for i in range(n)])
    if kind == "color_change":
        shapes = distinct_shapes(rng, 1, size, ss)
        new = str(rng.choice([c for c in COLORS if c != shapes[0].color]))
        return VideoScene(kind, bg, shapes, size, n_frames, change_frame=n_frames // 2, new_color=new)
    if kind == "static":
        n = int(rng.integers(1, 4))
        return VideoScene(kind, bg, distinct_shapes(rng, n, size, ss), size, n_frames)
    raise ValueError(f"unknown video kind {kind!r}")
