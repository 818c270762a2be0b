"Every notebook in nbs/ is a test: nbdev's own runner executes it, skipping cells flagged in settings.ini's tst_flags."
from pathlib import Path
import pytest
from nbdev.test import test_nb as run_notebook

NBS_DIR = Path(__file__).resolve().parents[1]/'nbs'
NBS = sorted(p for p in NBS_DIR.rglob('*.ipynb') if not p.name.startswith('_') and '.ipynb_checkpoints' not in p.parts)

@pytest.mark.parametrize('nb', NBS, ids=[str(p.relative_to(NBS_DIR).with_suffix('')) for p in NBS])
def test_notebook(nb, request, capsys):
    flags = ['notest'] if request.config.getoption('--slow') else ['notest', 'slow']
    ok, secs = run_notebook(nb, skip_flags=flags)
    err = capsys.readouterr().err
    assert ok, f"{nb.name} failed after {secs:.1f}s:\n{err[-6000:]}"
