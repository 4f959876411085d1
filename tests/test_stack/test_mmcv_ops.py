"""mmcv's compiled ops (built by `make install`) run on the CPU and give
the values a hand computation gives."""
import torch
from mmcv.ops import RoIAlign, nms, nms_rotated


def test_nms_suppresses_the_overlapping_box():
    boxes = torch.tensor([[0., 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    # IoU(box0, box1) = 81 / (100 + 100 - 81) = 0.68 > 0.5
    dets, keep = nms(boxes, scores, iou_threshold=0.5)
    assert keep.tolist() == [0, 2]
    assert torch.equal(dets[:, :4], boxes[[0, 2]])
    assert torch.allclose(dets[:, 4], scores[[0, 2]])
    _, keep = nms(boxes, scores, iou_threshold=0.7)
    assert keep.tolist() == [0, 1, 2]


def test_roi_align_on_a_linear_ramp():
    # feature value = column index; bilinear sampling of a linear function
    # is exact, so each bin holds the mean x of its sample points.
    feat = torch.arange(8.).repeat(8, 1)[None, None]
    rois = torch.tensor([[0., 2, 2, 6, 6]])
    out = RoIAlign((2, 2), spatial_scale=1.0, sampling_ratio=2,
                   aligned=True)(feat, rois)
    # aligned: the RoI starts at 2 - 0.5 = 1.5, bins are 2 px wide,
    # samples at 2.0, 3.0 (bin 0) and 4.0, 5.0 (bin 1).
    assert out.shape == (1, 1, 2, 2)
    assert torch.allclose(out[0, 0], torch.tensor([[2.5, 4.5], [2.5, 4.5]]))


def test_roi_align_backward_reaches_the_features():
    feat = torch.rand(1, 2, 8, 8, requires_grad=True)
    rois = torch.tensor([[0., 1, 1, 7, 7]])
    RoIAlign((3, 3), sampling_ratio=2)(feat, rois).sum().backward()
    # a bin is the mean of its 4 samples, and each sample's bilinear weights
    # sum to 1 (all inside the map): each of the 3*3 bins passes back 1.
    assert torch.allclose(feat.grad.sum((2, 3)), torch.full((1, 2), 9.))


def test_nms_rotated_suppresses_the_rotated_duplicate():
    boxes = torch.tensor([[5., 5, 10, 10, 0], [5, 5, 10, 10, 0.1],
                          [30, 30, 10, 10, 0]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    dets, keep = nms_rotated(boxes, scores, iou_threshold=0.5)
    assert keep.tolist() == [0, 2]
    assert torch.allclose(dets[:, 5], scores[[0, 2]])
    # 0.1 rad apart: IoU ~ 0.9, kept only with a threshold above it
    _, keep = nms_rotated(boxes, scores, iou_threshold=0.95)
    assert keep.tolist() == [0, 1, 2]
