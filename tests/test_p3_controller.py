"""P3b end to end, as `agent-slo p3-controller` runs it: self-play with MCTS on BFCL train tasks, training, the controller
against greedy and sampled decoding on held-out tasks (paired), the tables and figures; then the trained controller
served by a real `agent-slo serve` subprocess, answering the official client with its macro trace."""
import json, subprocess, sys
from pathlib import Path
import openai, pandas as pd

from agent_slo.core.config import clean_env
from agent_slo.control.mcts import load_net
from agent_slo.serve.gateway import LocalServer
from conftest import ROOT

def test_p3_controller_tiny(tmp_path):
    agg, figs, runs = tmp_path/'agg', tmp_path/'figs', tmp_path/'runs'
    params = ['train_categories=["simple_python"]', 'train_limit=2', 'rounds=2', 'steps=4', 'eval_categories=["simple_python", "parallel"]', 'eval_limit=2',
              'n_sims=2', 'low_entropy=0.8', f'out_dir={runs}', f'aggregate_dir={agg}', f'figures_dir={figs}', 'wandb_log=false']
    r = subprocess.run([str(Path(sys.executable).parent/'agent-slo'), 'p3-controller', '--quick', '--no-render', '--out', str(tmp_path/'p3c'),
                        *[a for p in params for a in ('-p', p)]], cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stderr[-4000:]
    arms = pd.read_csv(agg/'p3c_arms.csv')
    assert set(arms['arm']) == {'greedy', 'sampled', 'controller'} and set(arms['category']) == {'simple_python', 'parallel', 'all'}
    assert (arms[arms['category'] == 'all']['n'] == 2).all() and arms['success_lo'].le(arms['success']).all() and arms['success_hi'].ge(arms['success']).all()
    paired = pd.read_csv(agg/'p3c_paired.csv')
    assert set(paired['baseline']) == {'greedy', 'sampled'} and paired['mcnemar_p'].between(0, 1).all()
    sp = pd.read_csv(agg/'p3c_selfplay.csv')
    assert list(sp['round']) == [0, 1] and (sp['episodes'] == 1).all()
    for name in ('p3_controller', 'p3_controller_training'):
        for ext in ('png', 'pdf'): assert (figs/f'{name}.{ext}').stat().st_size > 5000, name
    net, meta = load_net(runs/'controller')                       # the deployable controller, with the settings it was trained under
    assert meta['args']['n_sims'] == 2 and meta['env']['low_entropy'] == 0.8 and meta['episodes'] == 2
    with LocalServer({'AGENT_SLO_THREADS': 2, 'AGENT_SLO_CONTROLLER': str(runs/'controller')}, log_path=tmp_path/'serve.log') as gw:
        client = openai.OpenAI(base_url=gw.base_url, api_key='none')
        weather = [{'type': 'function', 'function': {'name': 'get_weather', 'description': 'Current weather in a city',
                    'parameters': {'type': 'object', 'properties': {'city': {'type': 'string', 'maxLength': 20}}, 'required': ['city']}}}]
        resp = client.chat.completions.create(model='default', messages=[{'role': 'user', 'content': 'What is the weather in Paris?'}], tools=weather,
                                              tool_choice='required', max_tokens=48, temperature=0, extra_body={'controller': True})
        trace = resp.model_extra['macro_trace']
        assert resp.choices[0].message.tool_calls[0].function.name == 'get_weather' and len(trace) >= 1
        assert all(t['action'] in {'continue', 'resample', 'stop'} and t['visits'][t['action']] == max(t['visits'].values()) for t in trace)
