"""The demo plays its scenario into the real emulators and reports only what happened."""

from __future__ import annotations

import io

from kubedingtalk import demo


def test_demo_shows_the_cluster_and_no_invented_messages() -> None:
    out = io.StringIO()
    assert demo.run(out) == 0
    text = out.getvalue()
    for status in ("ErrImagePull", "Pending"):
        assert status in text
    assert "redis-0" in text and "report-" in text
    assert "Messages the DingTalk group received: 0" in text
