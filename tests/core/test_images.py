import numpy as np
import pytest
import torch
from PIL import Image

from zoo.images import grid, save_grid


@pytest.mark.parametrize(("channels", "mode"), [(1, "L"), (3, "RGB")])
def test_grids_keep_their_channels_and_pixels(tmp_path, channels, mode):
    images = torch.rand(6, channels, 8, 8, generator=torch.Generator().manual_seed(0))
    save_grid(images, tmp_path / "g.png")
    with Image.open(tmp_path / "g.png") as picture:
        assert picture.mode == mode
        pixels = np.asarray(picture)
    expected = (grid(images)[:channels] * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    scale = 7  # 8-pixel images are enlarged to ≥ 56
    assert np.array_equal(pixels[::scale, ::scale].reshape(expected.shape), expected)
