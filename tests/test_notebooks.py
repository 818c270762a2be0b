"Every notebook in nbs/ is a test: nbdev's own runner executes it, skipping cells flagged in settings.ini's tst_flags."
from pathlib import Path
import pytest
from nbdev.test import test_nb as run_notebook

NBS = sorted(p for p in (Path(__file__).resolve().parents[1]/'nbs').glob('*.ipynb') if not p.name.startswith('_'))

@pytest.mark.parametrize('nb', NBS, ids=[p.stem for p in NBS])
def test_notebook(nb, request, capsys):
    flags = ['notest'] if request.config.getoption('--slow') else ['notest', 'slow']
    ok, secs = run_notebook(nb, skip_flags=flags)
    err = capsys.readouterr().err
    assert ok, f"{nb.name} failed after {secs:.1f}s:\n{err[-6000:]}"
