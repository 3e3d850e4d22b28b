"""A `Surface` shows itself in a notebook: `_repr_html_` is its summary over its figure."""

import base64
import io
import re

import numpy as np
import pytest
from PIL import Image
from synthetic_surfaces import make_surface

import landscape


@pytest.mark.parametrize("ny", [4, None])
def test_repr_html_embeds_the_figure_and_the_summary(tmp_path, ny):
    path = tmp_path / "s.h5"
    make_surface(path, ny=ny)
    surface = landscape.load_surface(path)
    page = surface._repr_html_()
    assert "<script" not in page  # shows in any notebook, trusted or not
    found = re.search(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert found is not None
    image = Image.open(io.BytesIO(base64.b64decode(found.group(1))))
    assert image.format == "PNG" and image.width >= 400
    pixels = np.asarray(image.convert("L"), np.float64)
    assert pixels.std() > 10  # a drawn figure, not a blank canvas
    grid = "7 × 4 grid over [-1, 1] × [-0.5, 1.5]" if ny else "7 points over [-1, 1]"
    assert grid in page and "train_acc, train_loss" in page and str(path) in page
    assert "toy, pca directions" in page and "points done" in page
