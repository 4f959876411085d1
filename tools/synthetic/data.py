"""A small synthetic remote-sensing dataset in DIOR's released layout.

``make_synthetic_dior`` draws aerial-like scenes -- textured ground with
fields and roads, parking lots full of vehicles, ships moored along a
shore, storage-tank farms, airplanes on an apron, rows of tennis courts --
and writes them exactly as DIOR (horizontal boxes) and DIOR-R (oriented
boxes) are released::

    out_dir/
      JPEGImages-trainval/00001.jpg ...    JPEGImages-test/*.jpg
      Annotations/Horizontal Bounding Boxes/00001.xml ...
      Annotations/Oriented Bounding Boxes/00001.xml ...
      ImageSets/Main/train.txt  val.txt  test.txt

It feeds the built-in demo (tiny detectors trained on a CPU in minutes:
every class has its own colours and shape, drawn with strong contrast) and
the tests, and anyone can open the files to see what a DIOR sample is.

Coordinates. Pixel ``i`` covers ``[i, i + 1)``, so the image spans
``[0, W] x [0, H]``. An oriented box's corners are written in these
continuous coordinates (one decimal), ``left_top -> right_top`` along the
object's length, with ``angle`` the direction of that edge in degrees,
clockwise from the x axis (y points down), in ``[0, 180)``. The horizontal
box is VOC-style, integer and 1-based: ``xmin``/``xmax`` are the first and
last pixel columns the oriented box covers, i.e. it is the oriented box's
axis-aligned hull rounded outward (as ``mmrotate``'s ``qbox2hbox`` would
give, to the pixel). Every object lies wholly inside the image, at least one
pixel from its border.
"""
import math
import os
import os.path as osp
import shutil
import xml.etree.ElementTree as ET
from typing import Callable, Dict, List, NamedTuple, Sequence, Tuple

import cv2
import numpy as np

from ds2d2_mmrazor.datasets import DIOR_CLASSES

#: The DIOR classes this generator can draw (the default ``classes``).
SYNTHETIC_CLASSES = ('vehicle', 'ship', 'storagetank', 'airplane',
                     'tenniscourt')
#: JPEG quality of the written images; fixed so that the bytes are too.
JPEG_QUALITY = 95

RGB = Tuple[int, int, int]
_SHIFT = 4  # cv2 sub-pixel drawing: coordinates in 1/16 pixel
_EMPTY_FRACTION = 0.05  # images drawn without objects
_MAX_OVERLAP = 0.1  # of the smaller object's area
_MAX_SURFACE_OVERLAP = 0.15  # of a new group's ground surface
_MAX_GROUPS = 8
_GROUP_TRIES = 10


class _Box(NamedTuple):
    """A rotated rectangle: centre, length along ``heading``, width across.

    ``heading`` is in radians, clockwise from the x axis (y points down).
    """
    cx: float
    cy: float
    length: float
    width: float
    heading: float

    def to_image(self, local: np.ndarray) -> np.ndarray:
        """Map (N, 2) points from the box's frame (x along the length,
        origin at the centre) to image coordinates."""
        c, s = math.cos(self.heading), math.sin(self.heading)
        x, y = local[:, 0], local[:, 1]
        return np.stack([self.cx + c * x - s * y, self.cy + s * x + c * y],
                        axis=1)

    def oriented(self) -> Tuple[np.ndarray, float]:
        """DIOR-R annotation: corners (4, 2) ``left_top, right_top,
        right_bottom, left_bottom`` rounded to 0.1 px, and the angle in
        degrees in ``[0, 180)`` (a heading and its reverse are one box)."""
        angle = round(math.degrees(self.heading) % 180.0, 1) % 180.0
        box = self._replace(heading=math.radians(angle))
        half = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * 0.5
        corners = box.to_image(half * (self.length, self.width))
        return np.round(corners, 1), angle


class _Object(NamedTuple):
    """One planned object: class name, extent and drawing colours."""
    name: str
    box: _Box
    colours: Tuple[RGB, ...]


class _Group(NamedTuple):
    """Objects of one class laid out together on their own ground surface
    (parking lot, water, tank pad, apron, court surround). ``candidates``
    are in placement order; the planner keeps those that fit."""
    surface: _Box
    surface_colour: RGB
    candidates: List[_Object]


def _hbb_from_corners(corners: np.ndarray) -> Tuple[int, int, int, int]:
    """VOC box ``(xmin, ymin, xmax, ymax)``, 1-based and inclusive, of the
    pixels that the (N, 2) points' axis-aligned hull covers."""
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    return (math.floor(lo[0]) + 1, math.floor(lo[1]) + 1,
            math.ceil(hi[0]), math.ceil(hi[1]))


# --------------------------------------------------------------- colours


def _jitter(rng: np.random.Generator, colour: Sequence[float],
            amount: float = 12.0) -> RGB:
    """``colour`` made lighter or darker by up to ``amount``, its hue
    shifted by a quarter of that (greys stay grey)."""
    value = np.asarray(colour) + rng.uniform(-amount, amount) + \
        rng.uniform(-amount / 4, amount / 4, 3)
    return tuple(int(v) for v in np.clip(value, 0, 255))


def _shade(colour: RGB, factor: float) -> RGB:
    return tuple(int(min(255, c * factor)) for c in colour)


_VEHICLE_PAINT = ((236, 236, 232), (188, 192, 198), (38, 38, 44),
                  (200, 40, 36), (46, 84, 196), (232, 198, 56))
_VEHICLE_PAINT_P = (0.3, 0.2, 0.1, 0.15, 0.15, 0.1)
_ASPHALT = (84, 86, 90)


def _group_angle(rng: np.random.Generator) -> float:
    """Layouts are axis-aligned 40% of the time, otherwise rotated."""
    if rng.random() < 0.4:
        return float(rng.choice([0.0, math.pi / 2]))
    return float(rng.uniform(0, math.pi))


# ---------------------------------------------------------- group layouts


def _vehicle_group(rng: np.random.Generator, size: int,
                   s: float) -> _Group:
    """A parking lot (rows of vehicles side by side, 70%) or traffic on a
    road (two lanes)."""
    length = rng.uniform(8, 11) * s
    width = length * rng.uniform(0.45, 0.52)
    theta = _group_angle(rng)
    cx, cy = rng.uniform(0.15, 0.85, 2) * size

    def vehicle(box: _Box) -> _Object:
        paint = _VEHICLE_PAINT[rng.choice(6, p=_VEHICLE_PAINT_P)]
        return _Object('vehicle', box, (_jitter(rng, paint, 10),
                                        _jitter(rng, (40, 46, 58), 8)))

    if rng.random() < 0.7:
        rows, cols = int(rng.integers(1, 5)), int(rng.integers(3, 11))
        pitch = width * rng.uniform(1.5, 1.8)
        # rows face each other in pairs; an aisle between pairs
        gaps = [length * (1.1 if r % 2 == 0 else 2.0) for r in range(rows)]
        offsets = np.concatenate([[0.0], np.cumsum(gaps[:-1])])
        offsets -= offsets[-1] / 2
        lot = _Box(cx, cy, cols * pitch + 0.8 * length,
                   offsets[-1] - offsets[0] + 1.8 * length, theta)
        slots = [(pitch * (c - (cols - 1) / 2), offsets[r])
                 for r in range(rows) for c in range(cols)]
        candidates = []
        for u, v in slots:
            if rng.random() < 0.15:  # an empty slot
                continue
            u += rng.normal(0, 0.03) * length
            v += rng.normal(0, 0.06) * length
            x, y = lot.to_image(np.array([[u, v]]))[0]
            heading = theta + math.pi / 2 + rng.normal(0, 0.04) + \
                math.pi * int(rng.integers(2))
            candidates.append(vehicle(_Box(
                x, y, length * rng.uniform(0.92, 1.08),
                width * rng.uniform(0.92, 1.08), heading)))
        return _Group(lot, _jitter(rng, _ASPHALT, 8), candidates)

    road_width = width * rng.uniform(2.8, 3.4)
    road = _Box(cx, cy, 3 * size, road_width, theta)
    candidates = []
    for u in np.sort(rng.uniform(-0.7, 0.7, int(rng.integers(4, 12)))):
        lane = int(rng.integers(2))
        x, y = road.to_image(np.array(
            [[u * size, (lane - 0.5) * road_width * 0.5]]))[0]
        candidates.append(vehicle(_Box(
            x, y, length * rng.uniform(0.92, 1.08),
            width * rng.uniform(0.92, 1.08), theta + math.pi * lane)))
    return _Group(road, _jitter(rng, _ASPHALT, 8), candidates)


def _ship_group(rng: np.random.Generator, size: int, s: float) -> _Group:
    """Water on one side of a straight shore; ships moored side by side
    along it (50%) or scattered on the water."""
    theta = _group_angle(rng)
    px, py = rng.uniform(0.3, 0.7, 2) * size
    # the water box's near long edge is the shore through (px, py)
    normal = np.array([-math.sin(theta), math.cos(theta)])
    wx, wy = np.array([px, py]) + normal * 1.5 * size
    water = _Box(wx, wy, 4 * size, 3 * size, theta)
    shore = _Box(px, py, 1.0, 1.0, theta)  # frame: u along, v into water
    ship_length = rng.uniform(16, 32) * s

    def ship(u: float, v: float, heading: float, length: float,
             width: float) -> _Object:
        x, y = shore.to_image(np.array([[u, v]]))[0]
        hull = _jitter(rng, rng.choice([228, 205]) * np.ones(3), 14)
        return _Object('ship', _Box(x, y, length, width, heading),
                       (hull, _jitter(rng, (132, 128, 120), 14)))

    candidates = []
    if rng.random() < 0.5:
        u = -size * rng.uniform(0.3, 0.6)
        for _ in range(int(rng.integers(3, 11))):
            length = ship_length * rng.uniform(0.8, 1.2)
            width = length * rng.uniform(0.22, 0.3)
            u += width / 2
            candidates.append(ship(u, length / 2 + 1.5 * s,
                                   theta + math.pi / 2, length, width))
            u += width / 2 + rng.uniform(0.4, 1.2) * width
    else:
        for _ in range(int(rng.integers(4, 16))):
            length = rng.uniform(14, 40) * s
            width = length * rng.uniform(0.22, 0.3)
            heading = rng.uniform(0, 2 * math.pi)
            # half extent across the shore: keeps the ship on the water
            reach = abs(length / 2 * math.sin(heading - theta)) + \
                abs(width / 2 * math.cos(heading - theta))
            candidates.append(ship(rng.uniform(-size, size),
                                   reach + rng.uniform(2, 0.8 * size),
                                   heading, length, width))
    return _Group(water, _jitter(rng, (34, 62, 82), 8), candidates)


def _storagetank_group(rng: np.random.Generator, size: int,
                       s: float) -> _Group:
    """A tank farm: a grid of round tanks of one size on a bare pad."""
    diameter = rng.uniform(8, 24) * s
    rows, cols = int(rng.integers(1, 4)), int(rng.integers(1, 5))
    pitch = diameter * rng.uniform(1.2, 1.5)
    theta = _group_angle(rng)
    cx, cy = rng.uniform(0.2, 0.8, 2) * size
    pad = _Box(cx, cy, cols * pitch + 0.4 * diameter,
               rows * pitch + 0.4 * diameter, theta)
    top = _jitter(rng, (226, 226, 220), 10)
    candidates = []
    for r in range(rows):
        for c in range(cols):
            x, y = pad.to_image(np.array(
                [[pitch * (c - (cols - 1) / 2), pitch * (r - (rows - 1) / 2)]
                 ]))[0]
            d = diameter * rng.uniform(0.93, 1.0)
            # round: no orientation, DIOR-R writes these at angle 0
            candidates.append(_Object(
                'storagetank', _Box(x, y, d, d, 0.0),
                (top, _jitter(rng, (96, 96, 100), 10), _shade(top, 0.88))))
    return _Group(pad, _jitter(rng, (168, 160, 146), 8), candidates)


def _airplane_group(rng: np.random.Generator, size: int,
                    s: float) -> _Group:
    """Airplanes parked in a row on an apron (60%) or scattered on it."""
    length = rng.uniform(18, 36) * s
    theta = _group_angle(rng)
    cx, cy = rng.uniform(0.2, 0.8, 2) * size

    def airplane(x: float, y: float, heading: float) -> _Object:
        plane_length = length * rng.uniform(0.9, 1.1)
        span = plane_length * rng.uniform(0.85, 1.05)
        return _Object('airplane', _Box(x, y, plane_length, span, heading),
                       (_jitter(rng, (236, 236, 236), 10),))

    if rng.random() < 0.6:
        count = int(rng.integers(1, 7))
        pitch = length * rng.uniform(1.15, 1.35)
        apron = _Box(cx, cy, count * pitch + 0.4 * length, 1.6 * length,
                     theta)
        heading = theta + math.pi / 2 + math.pi * int(rng.integers(2))
        candidates = [airplane(*apron.to_image(np.array(
            [[pitch * (i - (count - 1) / 2), 0.0]]))[0], heading)
            for i in range(count)]
    else:
        side = rng.uniform(0.5, 0.8) * size
        apron = _Box(cx, cy, side, side, theta)
        candidates = []
        for _ in range(int(rng.integers(3, 9))):
            u, v = rng.uniform(-0.5, 0.5, 2) * side
            candidates.append(airplane(
                *apron.to_image(np.array([[u, v]]))[0],
                rng.uniform(0, 2 * math.pi)))
    return _Group(apron, _jitter(rng, (112, 112, 116), 8), candidates)


def _tenniscourt_group(rng: np.random.Generator, size: int,
                       s: float) -> _Group:
    """One to four courts side by side, white lines, reddish surround."""
    length = rng.uniform(16, 26) * s
    width = length * rng.uniform(0.48, 0.55)
    count = int(rng.integers(1, 5))
    pitch = width * rng.uniform(1.15, 1.3)
    theta = _group_angle(rng)
    cx, cy = rng.uniform(0.2, 0.8, 2) * size
    surround = _Box(cx, cy, 1.3 * length, count * pitch + 0.3 * width,
                    theta)
    # mostly green, some blue hard courts
    court = _jitter(rng, rng.choice([(46, 132, 72), (40, 104, 150)],
                                    p=[0.7, 0.3]), 10)
    candidates = []
    for i in range(count):
        x, y = surround.to_image(np.array(
            [[0.0, pitch * (i - (count - 1) / 2)]]))[0]
        candidates.append(_Object('tenniscourt',
                                  _Box(x, y, length, width, theta),
                                  (court, (242, 242, 242))))
    return _Group(surround, _jitter(rng, (150, 84, 64), 10), candidates)


_GROUPS: Dict[str, Callable[[np.random.Generator, int, float], _Group]] = {
    'vehicle': _vehicle_group,
    'ship': _ship_group,
    'storagetank': _storagetank_group,
    'airplane': _airplane_group,
    'tenniscourt': _tenniscourt_group,
}

# ---------------------------------------------------------------- drawing


def _points(pts: np.ndarray) -> np.ndarray:
    """Continuous image coordinates -> cv2's fixed-point pixel centres."""
    return np.round((pts - 0.5) * (1 << _SHIFT)).astype(np.int32)


def _fill(img: np.ndarray, box: _Box, local: Sequence[Sequence[float]],
          colour: RGB) -> None:
    pts = _points(box.to_image(np.asarray(local, dtype=np.float64)))
    cv2.fillPoly(img, [pts], colour, cv2.LINE_AA, _SHIFT)


def _rect(x0: float, y0: float, x1: float, y1: float) -> List[List[float]]:
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


def _draw_vehicle(img: np.ndarray, obj: _Object) -> None:
    b = obj.box
    lng, wid = b.length, b.width
    _fill(img, b, _rect(-lng / 2, -wid / 2, lng / 2, wid / 2), obj.colours[0])
    _fill(img, b, _rect(0.08 * lng, -0.4 * wid, 0.26 * lng, 0.4 * wid),
          obj.colours[1])  # windscreen
    _fill(img, b, _rect(-0.4 * lng, -0.36 * wid, -0.3 * lng, 0.36 * wid),
          obj.colours[1])  # rear window


def _draw_ship(img: np.ndarray, obj: _Object) -> None:
    b = obj.box
    lng, wid = b.length, b.width
    _fill(img, b, [[-lng / 2, -wid / 2], [0.22 * lng, -wid / 2],
                   [lng / 2, 0], [0.22 * lng, wid / 2], [-lng / 2, wid / 2]],
          obj.colours[0])
    _fill(img, b, _rect(-0.42 * lng, -0.3 * wid, -0.16 * lng, 0.3 * wid),
          obj.colours[1])  # superstructure


def _draw_storagetank(img: np.ndarray, obj: _Object) -> None:
    b = obj.box
    top, rim, seal = obj.colours
    centre = tuple(int(v) for v in _points(np.array([[b.cx, b.cy]]))[0])
    radius = b.length / 2
    rim_width = max(1.0, 0.1 * b.length)
    for r, colour, thickness in ((radius, rim, -1),
                                 (radius - rim_width, top, -1),
                                 (0.75 * radius, seal, 1)):
        cv2.circle(img, centre, int(round(r * (1 << _SHIFT))), colour,
                   thickness, cv2.LINE_AA, _SHIFT)


def _draw_airplane(img: np.ndarray, obj: _Object) -> None:
    b = obj.box
    lng, half_span = b.length, b.width / 2
    f, t = 0.06 * lng, 0.2 * lng  # fuselage half width, tail half span
    upper = [[0.5 * lng, 0], [0.4 * lng, -f], [0.12 * lng, -f],
             [-0.06 * lng, -half_span], [-0.14 * lng, -half_span],
             [-0.1 * lng, -f], [-0.34 * lng, -f], [-0.46 * lng, -t],
             [-0.5 * lng, -t], [-0.5 * lng, -0.7 * f]]
    lower = [[x, -y] for x, y in upper[:0:-1]]
    _fill(img, b, upper + lower, obj.colours[0])


def _draw_tenniscourt(img: np.ndarray, obj: _Object) -> None:
    b = obj.box
    lng, wid = b.length, b.width
    court, line = obj.colours
    _fill(img, b, _rect(-lng / 2, -wid / 2, lng / 2, wid / 2), court)
    x, y, service = 0.42 * lng, 0.38 * wid, 0.25 * lng
    lines = [_rect(-x, -y, x, y), [[0, -wid / 2], [0, wid / 2]],
             [[-service, -y], [-service, y]], [[service, -y], [service, y]],
             [[-service, 0], [service, 0]]]
    pts = [_points(b.to_image(np.asarray(p, dtype=np.float64)))
           for p in lines]
    cv2.polylines(img, pts[:1], True, line, 1, cv2.LINE_AA, _SHIFT)
    cv2.polylines(img, pts[1:], False, line, 1, cv2.LINE_AA, _SHIFT)


_DRAW: Dict[str, Callable[[np.ndarray, _Object], None]] = {
    'vehicle': _draw_vehicle,
    'ship': _draw_ship,
    'storagetank': _draw_storagetank,
    'airplane': _draw_airplane,
    'tenniscourt': _draw_tenniscourt,
}

# ------------------------------------------------------------- background


def _smooth_noise(rng: np.random.Generator, size: int,
                  cells: int) -> np.ndarray:
    """Unit-scale noise varying over ``size / cells`` pixels."""
    grid = rng.standard_normal((cells, cells)).astype(np.float32)
    return cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC)


def _coverage(grid: Tuple[np.ndarray, np.ndarray],
              box: _Box) -> Tuple[np.ndarray, np.ndarray]:
    """(H, W) fraction of each pixel inside ``box`` (soft 1-px edges), and
    the pixels' coordinate along the box's length."""
    dx, dy = grid[0] - box.cx, grid[1] - box.cy
    c, s = math.cos(box.heading), math.sin(box.heading)
    u, v = dx * c + dy * s, dy * c - dx * s
    inside = np.minimum(box.length / 2 - np.abs(u), box.width / 2 - np.abs(v))
    return np.clip(inside + 0.5, 0, 1), u


def _blend(img: np.ndarray, cover: np.ndarray, colour: np.ndarray) -> None:
    cover = cover[..., None]
    img *= 1 - cover
    img += cover * colour


def _ground(rng: np.random.Generator, grid: Tuple[np.ndarray, np.ndarray],
            s: float) -> np.ndarray:
    """Float (H, W, 3) RGB ground: grass, earth and dry patches, fields
    with furrows, straight roads."""
    size = grid[0].shape[0]
    grass = np.array(_jitter(rng, (92, 114, 62)), np.float32)
    earth = np.array(_jitter(rng, (140, 114, 84)), np.float32)
    dry = np.array(_jitter(rng, (164, 150, 106)), np.float32)
    mix = 1 / (1 + np.exp(-1.6 * (_smooth_noise(rng, size, 4) +
                                  0.5 * _smooth_noise(rng, size, 9))))
    patch = 0.6 / (1 + np.exp(-2 * _smooth_noise(rng, size, 6) + 1))
    img = grass + mix[..., None] * (earth - grass)
    img += patch[..., None] * (dry - img)
    img *= 1 + 0.06 * _smooth_noise(rng, size, max(4, size // 5))[..., None]
    for _ in range(int(rng.integers(0, 4))):
        field = _Box(*(rng.uniform(0, 1, 2) * size),
                     *(rng.uniform(0.2, 0.6, 2) * size), _group_angle(rng))
        cover, u = _coverage(grid, field)
        crop = rng.choice([(74, 126, 54), (178, 164, 92), (118, 92, 66)])
        furrows = 1 + 0.08 * np.sin(u * (2 * math.pi / (rng.uniform(3, 6) *
                                                         s)))
        _blend(img, 0.85 * cover,
               np.array(_jitter(rng, crop), np.float32) * furrows[..., None])
    for _ in range(int(rng.integers(0, 3))):
        road = _Box(*(rng.uniform(0.1, 0.9, 2) * size), 3 * size,
                    rng.uniform(3, 6) * s, _group_angle(rng))
        colour = rng.choice([(112, 112, 112), (176, 156, 124)])
        _blend(img, _coverage(grid, road)[0],
               np.array(_jitter(rng, colour, 8), np.float32))
    return img


# --------------------------------------------------------------- planning


def _box_mask(box: _Box, size: int) -> np.ndarray:
    """(size, size) bool mask of the pixels ``box`` covers."""
    mask = np.zeros((size, size), np.uint8)
    corners = box.to_image(np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) *
                           (box.length / 2, box.width / 2))
    cv2.fillPoly(mask, [_points(corners)], 1, cv2.LINE_8, _SHIFT)
    return mask.view(bool)


def _place(obj: _Object, labels: np.ndarray, areas: List[int]) -> bool:
    """Claim ``obj``'s oriented box in ``labels`` (object index + 1 per
    pixel) unless it leaves the image or overlaps any placed object by
    more than ``_MAX_OVERLAP`` of the smaller one."""
    size = labels.shape[0]
    corners = obj.box.oriented()[0]
    if corners.min() < 1 or corners.max() > size - 1:
        return False
    x0, y0 = np.floor(corners.min(axis=0)).astype(int)
    x1, y1 = np.ceil(corners.max(axis=0)).astype(int)
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(mask, [_points(corners - (x0, y0))], 1, cv2.LINE_8, _SHIFT)
    mask = mask.astype(bool)
    area = max(1, int(mask.sum()))
    window = labels[y0:y1, x0:x1]
    hits = np.bincount(window[mask], minlength=len(areas) + 1)[1:]
    if np.any(hits > _MAX_OVERLAP * np.minimum(area, areas)):
        return False
    window[mask] = len(areas) + 1
    areas.append(area)
    return True


def _plan(rng: np.random.Generator, size: int, classes: Sequence[str],
          primary: str, target: int) -> Tuple[List[_Group], List[_Object]]:
    """Lay out up to ``target`` objects in groups, the first of class
    ``primary``; returns the groups used and the objects placed."""
    s = size / 128
    labels = np.zeros((size, size), np.int32)
    areas: List[int] = []
    ground = np.zeros((size, size), bool)
    groups, objects = [], []
    for index in range(_MAX_GROUPS):
        if len(objects) >= target:
            break
        name = primary if index == 0 else classes[rng.integers(len(classes))]
        for _ in range(_GROUP_TRIES):
            group = _GROUPS[name](rng, size, s)
            # a group's ground may overlap others' a little, never their
            # objects (which would then stand on the wrong surface)
            surface = _box_mask(group.surface, size)
            if np.sum(surface & ground) <= \
                    _MAX_SURFACE_OVERLAP * max(1, surface.sum()) and \
                    not labels[surface].any():
                break
        else:
            continue
        placed = []
        for obj in group.candidates:
            if len(objects) + len(placed) >= target:
                break
            if _place(obj, labels, areas):
                placed.append(obj)
        if placed:
            groups.append(group)
            objects += placed
            ground |= surface
    return groups, objects


def _render(rng: np.random.Generator, size: int, groups: List[_Group],
            objects: List[_Object],
            grid: Tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """The (H, W, 3) uint8 RGB image of a planned scene."""
    img = _ground(rng, grid, size / 128)
    for group in groups:
        texture = np.asarray(group.surface_colour, np.float32) * (
            1 + 0.05 * _smooth_noise(rng, size, max(4, size // 6))[..., None])
        _blend(img, _coverage(grid, group.surface)[0], texture)
    img = np.clip(img + rng.normal(0, 3, img.shape), 0, 255).astype(np.uint8)
    for obj in objects:
        _DRAW[obj.name](img, obj)
    img = cv2.GaussianBlur(img, (3, 3), 0.5)
    noise = rng.normal(0, 2, img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


# ---------------------------------------------------------------- writing


def _annotation(img_id: str, size: int, objects: List[_Object],
                oriented: bool) -> str:
    root = ET.Element('annotation')
    ET.SubElement(root, 'filename').text = f'{img_id}.jpg'
    shape = ET.SubElement(root, 'size')
    for key, value in (('width', size), ('height', size), ('depth', 3)):
        ET.SubElement(shape, key).text = str(value)
    for obj in objects:
        node = ET.SubElement(root, 'object')
        for key, value in (('name', obj.name), ('pose', 'Unspecified'),
                           ('truncated', '0'), ('difficult', '0')):
            ET.SubElement(node, key).text = value
        corners, angle = obj.box.oriented()
        if oriented:
            box = ET.SubElement(node, 'robndbox')
            for corner, (x, y) in zip(
                    ('left_top', 'right_top', 'right_bottom', 'left_bottom'),
                    corners):
                ET.SubElement(box, f'x_{corner}').text = f'{x:.1f}'
                ET.SubElement(box, f'y_{corner}').text = f'{y:.1f}'
            ET.SubElement(node, 'angle').text = f'{angle:.1f}'
        else:
            box = ET.SubElement(node, 'bndbox')
            for key, value in zip(('xmin', 'ymin', 'xmax', 'ymax'),
                                  _hbb_from_corners(corners)):
                ET.SubElement(box, key).text = str(value)
    ET.indent(root, space='\t')
    return ET.tostring(root, encoding='unicode') + '\n'


def _check_args(out_dir: str, num_trainval: int, num_test: int,
                image_size: int, classes: Sequence[str], max_objects: int,
                seed: int) -> None:
    if osp.exists(out_dir) and (not osp.isdir(out_dir) or os.listdir(out_dir)):
        raise FileExistsError(
            f'out_dir {out_dir!r} exists and is not an empty folder: give a '
            'new path (the dataset is written whole or not at all), or '
            'delete it first')
    if num_trainval < 0 or num_test < 0 or \
            not 1 <= num_trainval + num_test <= 99999:
        raise ValueError(
            f'num_trainval={num_trainval}, num_test={num_test}: expected '
            'counts >= 0 with 1 to 99999 images in all (5-digit ids)')
    if image_size < 64:
        raise ValueError(f'image_size={image_size}: expected >= 64 (objects '
                         'are drawn 4-40 px at 128 and scale with it)')
    if max_objects < 0 or seed < 0:
        raise ValueError(f'max_objects={max_objects}, seed={seed}: expected '
                         'both >= 0')
    undrawn = [c for c in classes if c not in SYNTHETIC_CLASSES]
    if not classes or undrawn or len(set(classes)) != len(classes):
        not_dior = [c for c in undrawn if c not in DIOR_CLASSES]
        raise ValueError(
            f'classes={tuple(classes)}: expected distinct names from '
            f'{SYNTHETIC_CLASSES}, the DIOR classes this generator draws'
            + (f'; {not_dior} are not DIOR class names' if not_dior else '')
            + (f'; {sorted(set(undrawn) - set(not_dior))} have no drawing'
               if set(undrawn) - set(not_dior) else ''))


def make_synthetic_dior(out_dir: str,
                        num_trainval: int = 64,
                        num_test: int = 16,
                        image_size: int = 128,
                        classes: Sequence[str] = SYNTHETIC_CLASSES,
                        max_objects: int = 30,
                        seed: int = 0) -> dict:
    """Write a synthetic remote-sensing dataset in DIOR's released layout.

    Images ``00001`` .. ``num_trainval`` form trainval (split about evenly
    and at random into ``train.txt`` and ``val.txt``), the next
    ``num_test`` form ``test.txt``, as in DIOR. Each image gets a random
    number of objects up to ``max_objects``, laid out in groups (parking
    lots, harbours, tank farms, aprons, court rows), with at most 10% of
    the smaller object's area shared between two objects; about 5% of the
    images have none (at least one test image if ``num_test >= 8``). The
    classes take turns leading the images of trainval and of test, so both
    have every class once they have ``len(classes)`` non-empty images.
    See the module docstring for the box conventions.

    The output is a pure function of the arguments (byte for byte, for a
    given numpy / OpenCV build). It is written to a sibling temporary
    folder and renamed to ``out_dir`` when complete, so ``out_dir`` either
    holds the whole dataset or does not exist.

    Args:
        out_dir (str): Folder to create; must not exist or be empty.
        num_trainval (int): Trainval images. Defaults to 64.
        num_test (int): Test images. Defaults to 16.
        image_size (int): Side of the square images, >= 64; object sizes
            scale with it (4-40 px at 128). Defaults to 128.
        classes (Sequence[str]): DIOR class names to draw, a subset of
            ``SYNTHETIC_CLASSES`` (the default: vehicle, ship, storagetank,
            airplane, tenniscourt).
        max_objects (int): Most objects in one image. Defaults to 30.
        seed (int): Random seed, >= 0. Defaults to 0.

    Returns:
        dict: ``out_dir``; ``images`` and ``objects``: counts per split
        (``train``, ``val``, ``test``); ``objects_per_class``: counts over
        all splits; ``objects_per_image``: ``min``, ``mean``, ``max``;
        ``empty_images``: images without objects; ``paths``: the image and
        annotation folders and the split files.
    """
    classes = tuple(classes)
    _check_args(out_dir, num_trainval, num_test, image_size, classes,
                max_objects, seed)
    total = num_trainval + num_test
    rng = np.random.default_rng(seed)
    empty = rng.random(total) < _EMPTY_FRACTION
    if num_test >= 8 and not empty[num_trainval:].any():
        empty[num_trainval + rng.integers(num_test)] = True
    if max_objects == 0:
        empty[:] = True
    order = rng.permutation(num_trainval)
    half = (num_trainval + 1) // 2
    split_of = ['test'] * total
    for i in order[:half]:
        split_of[i] = 'train'
    for i in order[half:]:
        split_of[i] = 'val'

    paths = dict(
        trainval_images=osp.join(out_dir, 'JPEGImages-trainval'),
        test_images=osp.join(out_dir, 'JPEGImages-test'),
        hbb_annotations=osp.join(out_dir, 'Annotations',
                                 'Horizontal Bounding Boxes'),
        obb_annotations=osp.join(out_dir, 'Annotations',
                                 'Oriented Bounding Boxes'),
        **{split: osp.join(out_dir, 'ImageSets', 'Main', f'{split}.txt')
           for split in ('train', 'val', 'test')})
    parent, name = osp.split(osp.abspath(out_dir))
    tmp = osp.join(parent, f'.{name}.partial-{os.getpid()}')
    if osp.isdir(tmp):
        shutil.rmtree(tmp)

    def staged(path: str) -> str:
        return osp.join(tmp, osp.relpath(path, out_dir))

    for key in ('trainval_images', 'test_images', 'hbb_annotations',
                'obb_annotations'):
        os.makedirs(staged(paths[key]))
    os.makedirs(osp.dirname(staged(paths['train'])))

    grid = tuple(np.meshgrid(*[np.arange(image_size, dtype=np.float32) + 0.5
                               ] * 2))
    ids: Dict[str, List[str]] = {'train': [], 'val': [], 'test': []}
    objects_per_split = dict.fromkeys(ids, 0)
    per_class = dict.fromkeys(classes, 0)
    per_image = []
    leading = dict(trainval=0, test=0)
    try:
        for index in range(total):
            img_id = f'{index + 1:05d}'
            part = 'trainval' if index < num_trainval else 'test'
            image_rng = np.random.default_rng([seed, index])
            groups, objects = [], []
            if not empty[index]:
                primary = classes[leading[part] % len(classes)]
                leading[part] += 1
                target = int(image_rng.integers(1, max_objects + 1))
                groups, objects = _plan(image_rng, image_size, classes,
                                        primary, target)
            img = _render(image_rng, image_size, groups, objects, grid)
            ok, jpeg = cv2.imencode(
                '.jpg', np.ascontiguousarray(img[..., ::-1]),
                [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            assert ok, 'OpenCV could not encode a JPEG'
            with open(osp.join(staged(paths[f'{part}_images']),
                               f'{img_id}.jpg'), 'wb') as f:
                f.write(jpeg.tobytes())
            for key, oriented in (('hbb_annotations', False),
                                  ('obb_annotations', True)):
                with open(osp.join(staged(paths[key]), f'{img_id}.xml'), 'w',
                          encoding='utf-8', newline='\n') as f:
                    f.write(_annotation(img_id, image_size, objects,
                                        oriented))
            split = split_of[index]
            ids[split].append(img_id)
            objects_per_split[split] += len(objects)
            per_image.append(len(objects))
            for obj in objects:
                per_class[obj.name] += 1
        for split, names in ids.items():
            with open(staged(paths[split]), 'w', newline='\n') as f:
                f.write(''.join(f'{n}\n' for n in sorted(names)))
        if osp.isdir(out_dir):
            os.rmdir(out_dir)  # empty: checked above
        os.replace(tmp, out_dir)
    finally:
        if osp.isdir(tmp):
            shutil.rmtree(tmp)
    return dict(
        out_dir=out_dir,
        images={split: len(names) for split, names in ids.items()},
        objects=objects_per_split,
        objects_per_class=per_class,
        objects_per_image=dict(min=min(per_image),
                               mean=float(np.mean(per_image)),
                               max=max(per_image)),
        empty_images=int(sum(n == 0 for n in per_image)),
        paths=paths)
