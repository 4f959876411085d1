"""Readers of the released annotation formats, shared by the datasets and
the COCO converter: DIOR's VOC-style XML (horizontal ``<bndbox>`` and
DIOR-R's oriented ``<robndbox>``) and DOTA's split-patch txt files.

They are strict where MMDetection's and MMRotate's loaders are lenient: an
unknown class name, a missing or malformed file, a missing tag, a
non-numeric coordinate or an empty box is a ``ValueError`` naming the file
and the object, never a silently dropped object.

Boxes use MMDetection's / MMRotate's conventions:

- horizontal (``'hbox'``): ``[x1, y1, x2, y2]``, 0-based. VOC XML gives
  1-based pixel indices, so 1 is subtracted (MMDetection's
  ``minus_one=True``). A box reaching beyond the image is clipped to it
  (``[0, width - 1] x [0, height - 1]`` after the shift) and reported by
  :func:`warn_clipped`.
- quadrilateral (``'qbox'``): ``[x1, y1, ..., x4, y4]``, the four corners as
  written (MMRotate does not shift them). Corners outside the image are kept:
  an oriented box of an object at the border, or cut by a patch border,
  legitimately extends past it, and clipping would no longer leave a
  rectangle.
"""
import logging
import math
import xml.etree.ElementTree as ET
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from mmengine.fileio import get, get_text
from mmengine.logging import print_log

VOC_BOX_TAGS = ('xmin', 'ymin', 'xmax', 'ymax')
ROBNDBOX_CORNER_TAGS = ('x_left_top', 'y_left_top', 'x_right_top',
                        'y_right_top', 'x_right_bottom', 'y_right_bottom',
                        'x_left_bottom', 'y_left_bottom')
DOTA_FIELDS = 'x1 y1 x2 y2 x3 y3 x4 y4 class difficulty'

# makes the error naming the file (and the object) for a problem
_Error = Callable[[str], ValueError]


def polygon_area(polygon: Sequence[float]) -> float:
    """Area of a simple polygon ``[x1, y1, x2, y2, ...]`` (shoelace formula).

    Args:
        polygon (Sequence[float]): The vertices, in either orientation.

    Returns:
        float: The non-negative area.
    """
    xs, ys = polygon[0::2], polygon[1::2]
    n = len(xs)
    twice = sum(xs[i] * ys[(i + 1) % n] - xs[(i + 1) % n] * ys[i]
                for i in range(n))
    return abs(twice) / 2


def enclosing_box(polygon: Sequence[float], width: float,
                  height: float) -> List[float]:
    """The axis-aligned box enclosing a polygon, clipped to the image.

    Args:
        polygon (Sequence[float]): ``[x1, y1, x2, y2, ...]``.
        width (float): Image width; x is clipped to ``[0, width]``.
        height (float): Image height; y is clipped to ``[0, height]``.

    Returns:
        list[float]: ``[x1, y1, x2, y2]``; empty (``x2 <= x1`` or
        ``y2 <= y1``) if the polygon lies outside the image.
    """
    xs, ys = polygon[0::2], polygon[1::2]
    return [max(min(xs), 0.), max(min(ys), 0.),
            min(max(xs), float(width)), min(max(ys), float(height))]


def class_labels(classes: Sequence[str],
                 ignore_case: bool = False) -> Dict[str, int]:
    """Map class names to 0-based labels.

    Args:
        classes (Sequence[str]): The dataset classes, in label order.
        ignore_case (bool): Key the map by lower-cased names (look names up
            lower-cased too). Defaults to False.

    Returns:
        dict[str, int]: Name to label.
    """
    return {(name.lower() if ignore_case else name): label
            for label, name in enumerate(classes)}


def warn_clipped(source: str, clipped: Sequence[Tuple[str, int]]) -> None:
    """Log one warning for all the boxes clipped to their image in a load.

    Args:
        source (str): What was loaded, e.g. the dataset's class name.
        clipped (Sequence[tuple[str, int]]): ``(annotation file, object
            index)`` of each clipped box. Nothing is logged if empty.
    """
    if not clipped:
        return
    path, index = clipped[0]
    files = len({p for p, _ in clipped})
    print_log(
        f'{source}: clipped {len(clipped)} boxes in {files} annotation '
        f'files to their image (they extended beyond it), e.g. object '
        f'{index} in {path}',
        logger='current', level=logging.WARNING)


def _number(element: ET.Element, tag: str, parent: str,
            error: _Error) -> float:
    text = element.findtext(tag)
    if text is None:
        raise error(f'has no <{parent}>/<{tag}>')
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise error(f'has a non-numeric <{parent}>/<{tag}> {text!r}')
    return value


def _quadrilateral_problem(quad: Sequence[float], width: float,
                           height: float) -> Optional[str]:
    if polygon_area(quad) == 0:
        return f'has a degenerate (zero-area) quadrilateral {list(quad)}'
    x1, y1, x2, y2 = enclosing_box(quad, width, height)
    if x2 <= x1 or y2 <= y1:
        return (f'has quadrilateral {list(quad)} outside the '
                f'{width}x{height} image')
    return None


def _voc_hbox(obj: ET.Element, width: int, height: int,
              error: _Error) -> Tuple[List[float], bool]:
    box = obj.find('bndbox')
    if box is None:
        raise error('has no <bndbox>')
    x1, y1, x2, y2 = (_number(box, tag, 'bndbox', error) - 1
                      for tag in VOC_BOX_TAGS)
    if x2 <= x1 or y2 <= y1:
        raise error(f'has an empty box (xmin, ymin, xmax, ymax) = '
                    f'{(x1 + 1, y1 + 1, x2 + 1, y2 + 1)}: expected '
                    f'xmin < xmax and ymin < ymax')
    bbox = [min(max(x1, 0), width - 1), min(max(y1, 0), height - 1),
            min(max(x2, 0), width - 1), min(max(y2, 0), height - 1)]
    if bbox[2] <= bbox[0] or bbox[3] <= bbox[1]:
        raise error(f'has box (xmin, ymin, xmax, ymax) = '
                    f'{(x1 + 1, y1 + 1, x2 + 1, y2 + 1)} outside the '
                    f'{width}x{height} image')
    return bbox, bbox != [x1, y1, x2, y2]


def _voc_qbox(obj: ET.Element, width: int, height: int,
              error: _Error) -> Tuple[List[float], bool]:
    box = obj.find('robndbox')
    if box is None:
        raise error('has no <robndbox>')
    quad = [_number(box, tag, 'robndbox', error)
            for tag in ROBNDBOX_CORNER_TAGS]
    problem = _quadrilateral_problem(quad, width, height)
    if problem:
        raise error(problem)
    return quad, False


def read_voc_xml(xml_path: str,
                 classes: Sequence[str],
                 box_type: str = 'hbox',
                 ignore_case: bool = False,
                 backend_args: Optional[dict] = None) -> dict:
    """Read one VOC-style annotation file of DIOR / DIOR-R, strictly.

    The file must have ``<size>`` with ``<width>`` and ``<height>``; each
    ``<object>`` a ``<name>`` among ``classes`` and the box (``<bndbox>``
    with ``<xmin>, <ymin>, <xmax>, <ymax>``, or DIOR-R's ``<robndbox>`` with
    ``<x_left_top>, <y_left_top>, <x_right_top>, <y_right_top>,
    <x_right_bottom>, <y_right_bottom>, <x_left_bottom>, <y_left_bottom>``;
    DIOR-R's ``<angle>`` is implied by the corners and not read).
    ``<difficult>`` is optional (0 if absent).

    Args:
        xml_path (str): The annotation file.
        classes (Sequence[str]): The dataset classes, in label order.
        box_type (str): ``'hbox'`` reads ``<bndbox>`` as ``[x1, y1, x2,
            y2]``, ``'qbox'`` reads ``<robndbox>`` as the 8 corner
            coordinates (see the module docstring for both conventions).
            Defaults to 'hbox'.
        ignore_case (bool): Match class names case-insensitively. Defaults
            to False.
        backend_args (dict, optional): MMEngine file backend arguments.
            Defaults to None.

    Returns:
        dict: ``width``, ``height``, ``instances`` (one dict an object,
        with ``bbox``, ``bbox_label`` and ``ignore_flag``, the
        ``<difficult>`` flag) and ``clipped`` (indices of the objects whose
        box was clipped to the image; always empty for ``'qbox'``).

    Raises:
        ValueError: If the file is missing or malformed, or an object has an
            unknown class, a missing or non-numeric field, or an empty box
            or one outside the image. The message names the file and the
            object.
    """
    parsers = dict(hbox=_voc_hbox, qbox=_voc_qbox)
    if box_type not in parsers:
        raise ValueError(f"box_type {box_type!r}: expected 'hbox' or 'qbox'")
    try:
        content = get(xml_path, backend_args=backend_args)
    except FileNotFoundError:
        raise ValueError(f'{xml_path}: annotation file not found') from None
    try:
        root = ET.fromstring(content)
    except ET.ParseError as e:
        raise ValueError(f'{xml_path}: not well-formed XML ({e})') from None

    def file_error(problem: str) -> ValueError:
        return ValueError(f'{xml_path}: {problem}')

    size = root.find('size')
    if size is None:
        raise file_error('has no <size> (expected <size><width>W</width>'
                         '<height>H</height></size>)')
    width, height = (_number(size, tag, 'size', file_error)
                     for tag in ('width', 'height'))
    if width <= 0 or height <= 0 or width % 1 or height % 1:
        raise file_error(f'has image size {width} x {height}: expected '
                         'positive integers')
    width, height = int(width), int(height)

    # objects are named by the image file, as MMDetection users know them
    filename = root.findtext('filename') or xml_path
    labels = class_labels(classes, ignore_case)
    instances, clipped = [], []
    for index, obj in enumerate(root.findall('object')):

        def error(problem: str, index: int = index) -> ValueError:
            return ValueError(f'{filename}: object {index} {problem} '
                              f'(annotation file: {xml_path})')

        name = obj.findtext('name')
        if not name:
            raise error('has no <name>')
        label = labels.get(name.lower() if ignore_case else name)
        if label is None:
            raise error(f'has class {name!r}, which is not one of the '
                        f'dataset classes {tuple(classes)}')
        difficult = obj.findtext('difficult', '0').strip()
        if difficult not in ('0', '1'):
            raise error(f'has <difficult> {difficult!r}: expected 0 or 1')
        bbox, was_clipped = parsers[box_type](obj, width, height, error)
        if was_clipped:
            clipped.append(index)
        instances.append(
            dict(bbox=bbox, bbox_label=label, ignore_flag=int(difficult)))
    return dict(width=width, height=height, instances=instances,
                clipped=clipped)


def read_dota_txt(txt_path: str,
                  classes: Sequence[str],
                  img_shape: Tuple[int, int] = (1024, 1024),
                  diff_thr: int = 100,
                  backend_args: Optional[dict] = None) -> List[dict]:
    """Read one DOTA annotation file of a split patch, strictly.

    Each non-blank line is ``x1 y1 x2 y2 x3 y3 x4 y4 class difficulty``, as
    MMRotate's ``img_split`` writes them (difficulty 0 or 1 from DOTA, 2
    for objects truncated by the patch border). Corners are kept as written
    (see the module docstring); a quadrilateral must have a non-zero area
    and overlap the patch.

    Args:
        txt_path (str): The annotation file (``annfiles/<patch>.txt``).
        classes (Sequence[str]): The dataset classes, in label order.
        img_shape (tuple[int, int]): Patch ``(height, width)``. Defaults to
            (1024, 1024).
        diff_thr (int): Objects with a difficulty above it are marked
            ``ignore_flag=1``, as in MMRotate's ``DOTADataset``. Defaults to
            100 (none ignored, MMRotate's default).
        backend_args (dict, optional): MMEngine file backend arguments.
            Defaults to None.

    Returns:
        list[dict]: One dict an object: ``bbox`` (8 floats),
        ``bbox_label``, ``ignore_flag``.

    Raises:
        ValueError: If the file is missing, or a line has the wrong number of
            fields, a non-numeric coordinate, an unknown class, a
            non-integer difficulty, or a degenerate quadrilateral or one
            outside the patch. The message names the file and the line.
    """
    try:
        text = get_text(txt_path, backend_args=backend_args)
    except FileNotFoundError:
        raise ValueError(f'{txt_path}: annotation file not found') from None
    height, width = img_shape
    labels = class_labels(classes)
    instances = []
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields:
            continue

        def error(problem: str, number: int = number) -> ValueError:
            return ValueError(f'{txt_path}: line {number} {problem}')

        if len(fields) != 10:
            raise error(f'has {len(fields)} fields, expected 10: '
                        f'{DOTA_FIELDS}')
        try:
            quad = [float(v) for v in fields[:8]]
        except ValueError:
            quad = [math.nan]
        if not all(map(math.isfinite, quad)):
            raise error(f'has non-numeric coordinates {fields[:8]}')
        name, difficulty = fields[8:]
        if name not in labels:
            raise error(f'has class {name!r}, which is not one of the '
                        f'dataset classes {tuple(classes)}')
        if not difficulty.isdigit():
            raise error(f'has difficulty {difficulty!r}: expected a '
                        'non-negative integer')
        problem = _quadrilateral_problem(quad, width, height)
        if problem:
            raise error(problem)
        instances.append(
            dict(bbox=quad, bbox_label=labels[name],
                 ignore_flag=int(int(difficulty) > diff_thr)))
    return instances
