"""Chinese renders as Chinese in the deck's chart images: no missing-glyph boxes.

A font that lacks a character draws the same box for every such character, so a title of
Chinese characters drawn as boxes is pixel-identical to a title of the same number of
characters that no font has (private-use code points). With a CJK font (Debian's
fonts-noto-cjk) the two images differ, and two different Chinese titles differ too.
"""

from __future__ import annotations

import io

import pytest

pytestmark = pytest.mark.e2e


def _title_only(title: str):
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.update_layout(title=dict(text=title, font=dict(size=24)), width=360, height=90, margin=dict(l=4, r=4, t=40, b=4), xaxis_visible=False, yaxis_visible=False)
    return fig


def test_chinese_chart_titles_render_as_glyphs_not_boxes():
    from PIL import Image, ImageChops

    from transfer_core.present.render import browser_path, render_pngs

    if not browser_path():
        from browser_utils import require_browser

        require_browser()
        pytest.skip("no Chromium to render with")
    titles = ["迁移学习", "知识融合", "\U000F0001\U000F0002\U000F0003\U000F0004"]
    pngs = render_pngs([_title_only(t) for t in titles], [(360, 90)] * 3, scale=1.0)
    imgs = [Image.open(io.BytesIO(p)).convert("L") for p in pngs]
    differs = [ImageChops.difference(imgs[i], imgs[j]).getbbox() is not None for i, j in ((0, 2), (1, 2), (0, 1))]
    assert differs == [True, True, True], "Chinese drew as missing-glyph boxes: install fonts-noto-cjk"
