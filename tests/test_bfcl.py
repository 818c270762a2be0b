"""BFCL as a whole, as `agent-slo bfcl` runs it (papermill over papers/bfcl.ipynb on the embedded model), in two parts as
`make bfcl` and `make bfcl-episodes` run them: a run of the single-turn part writes the category table, the leaderboard's
groups and the wall time; a later run of the episodes alone writes the episode table and leaves the first run's aggregates,
and the run RUNS.json names for them, as they were."""
import json, subprocess, sys
from pathlib import Path
import pandas as pd

from agent_slo.core.config import clean_env
from conftest import ROOT

def _bfcl(tmp_path, out:Path, *params:str) -> subprocess.CompletedProcess:
    env = clean_env()
    env.update(WANDB_DIR=str(tmp_path), WANDB_MODE='offline')
    base = [f"aggregate_dir={tmp_path/'agg'}", f"figures_dir={tmp_path/'figs'}", 'adapter=null', 'format_limit=0', 'memory_categories=[]', 'max_tokens=48']
    return subprocess.run([str(Path(sys.executable).parent/'agent-slo'), 'bfcl', '--quick', '--no-render', '--out', str(out),
                           *[a for p in base + list(params) for a in ('-p', p)]], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)

def test_bfcl_parts_keep_each_others_aggregates(tmp_path):
    agg = tmp_path/'agg'
    r = _bfcl(tmp_path, tmp_path/'single', 'categories=["simple_python"]', 'limit=2', 'modes=["json"]', 'episode_categories=[]')
    assert r.returncode == 0, r.stderr[-4000:]
    cats = (agg/'bfcl_categories.csv').read_bytes()
    t = pd.read_csv(agg/'bfcl_categories.csv')
    assert list(t['category']) == ['simple_python'] and (t['n'] == 2).all() and (t['call_mode'] == 'json').all()
    assert not (agg/'bfcl_episodes.csv').exists()
    first = json.loads((agg/'RUNS.json').read_text())['files']
    assert {first[f] for f in ('bfcl_categories.csv', 'bfcl_leaderboard.csv', 'bfcl_wall.csv')} == {first['bfcl_categories.csv']}

    # the episodes alone, into their own records: one multi_turn_base episode, one model call per turn
    r = _bfcl(tmp_path, tmp_path/'episodes', 'modes=[]', 'episode_categories=["multi_turn_base"]', 'episodes_per_category=1',
              'episode_modes=["json"]', 'repeats=1', 'max_steps=1')
    assert r.returncode == 0, r.stderr[-4000:]
    assert (agg/'bfcl_categories.csv').read_bytes() == cats   # the single-turn part's aggregate is untouched
    runs = json.loads((agg/'RUNS.json').read_text())
    files = runs['files']
    assert files['bfcl_categories.csv'] == files['bfcl_leaderboard.csv'] == files['bfcl_wall.csv'] == first['bfcl_categories.csv']
    assert files['bfcl_episodes.csv'] != first['bfcl_categories.csv'] and files['bfcl_episodes.csv'] in runs['runs']
    assert runs['runs'][files['bfcl_categories.csv']]['params']['modes'] == ['json']   # the first run is still recorded: files point to it
    assert runs['runs'][files['bfcl_episodes.csv']]['params']['modes'] == []
    e = pd.read_csv(agg/'bfcl_episodes.csv').set_index('category')
    assert set(e.index) == {'multi_turn_base', 'all'} and e.loc['multi_turn_base', 'episodes'] == 1
    lo, hi = e.loc['all', ['accuracy_lo', 'accuracy_hi']]
    assert 0 <= lo <= e.loc['all', 'accuracy'] <= hi and hi > 0 and lo < 1   # a Wilson interval, never [0, 0] at 0/1
    recs = [json.loads(l) for l in (tmp_path/'episodes'/'records.jsonl').read_text().splitlines()]
    assert {r['stage'] for r in recs} == {'episode', 'episode-step'} and sum(r['stage'] == 'episode' for r in recs) == 1
    assert 'no single-turn records in this run' in (tmp_path/'episodes'/'bfcl.ipynb').read_text()
