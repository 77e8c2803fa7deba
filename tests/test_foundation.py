import numpy as np
import pytest

from bridge.emotions import EMOTIONS, UnknownEmotionError, emotion_index, normalise_weights


def test_emotion_order_is_meads():
    assert EMOTIONS == ("neutral", "angry", "contempt", "disgusted", "fear", "happy", "sad", "surprised")
    assert emotion_index("Happy") == 5
    with pytest.raises(UnknownEmotionError, match="joyful"):
        emotion_index("joyful")


def test_normalise_weights_blends_and_zero_rows():
    w = np.zeros((3, 8), np.float32)
    w[0, 5] = 2.0
    w[1, [5, 6]] = [1.0, 3.0]
    out = normalise_weights(w)
    np.testing.assert_allclose(out.sum(1), 1.0, rtol=1e-6)
    assert out[1, 6] == pytest.approx(0.75)
    assert out[2, 0] == 1.0  # all-zero row -> neutral
    with pytest.raises(ValueError, match=">= 0"):
        normalise_weights(-w)


def test_cli_help_lists_commands(capsys):
    from backend.cli import main
    assert main([]) == 0
    out = capsys.readouterr().out
    for name in ("serve", "generate", "prepare", "train", "eval", "demo", "build-addon"):
        assert name in out
