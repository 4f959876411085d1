"""``python tools/study``: see ``tools/study/__init__.py``."""
import os.path as osp
import sys

sys.path[0] = osp.dirname(osp.dirname(osp.abspath(__file__)))  # tools/

from study import main  # noqa: E402

main()
