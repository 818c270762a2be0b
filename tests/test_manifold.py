"""The reward manifold end to end: the policy's and the teacher's trajectories on BFCL tasks, grounded by the checker and rated
by a teacher reached through the official OpenAI client (the gateway on loopback serving the embedded model, as TEACHER_API_BASE
would name LM Studio), resumed without duplicates; the validate CLI on good and broken files; the vector head trained with its
dimensions in METADATA; POST /reward and `reward probe` reporting them; and the PCA figure."""
import json, shutil

import httpx, pytest

from agent_slo.cli.main import main
from agent_slo.core.artifacts import AdapterRegistry
from agent_slo.core.config import load_settings
from agent_slo.core.records import read_jsonl
from agent_slo.engine.hf import HFEngine
from agent_slo.engine.reward import random_reward_head
from agent_slo.eval.manifold import load_manifold, validate_labels
from agent_slo.serve.gateway import ServerThread

TRAIN = """train:
  stage: rm
  name: manifold
  parent: null
  categories: [simple_python]
  train_limit: 4
  samples: 2
  sample_temperature: 0.9
  max_completion_length: 40
  eval_fraction: 0.5
  max_steps: 3
  max_minutes: 3
  batch_size: 2
  lora_r: 4
  lora_alpha: 8
  lora_targets: [q_proj, v_proj]
  max_length: 512
"""

@pytest.mark.slow   # labelling, validation, training and serving end to end: about 3 min on 2 cores; the manifold notebooks run by default
def test_manifold_label_validate_train_serve(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv('AGENT_SLO_ARTIFACTS', str(tmp_path/'art')); monkeypatch.setenv('AGENT_SLO_THREADS', '2')
    monkeypatch.setenv('WANDB_MODE', 'offline'); monkeypatch.setenv('WANDB_DIR', str(tmp_path))
    (tmp_path/'train.yaml').write_text(TRAIN)
    mcfg = load_manifold()
    labels = tmp_path/'out'/'labels.jsonl'
    args = ['manifold', 'label', '--labels', str(labels), '--config', str(tmp_path/'train.yaml')]
    # a teacher that is not there is a clear error before any work
    monkeypatch.setenv('TEACHER_API_BASE', 'http://127.0.0.1:9/v1')
    assert main(args) == 2 and 'cannot reach http://127.0.0.1:9/v1' in capsys.readouterr().err and not labels.exists()
    reg = AdapterRegistry()
    reg.register('tool-rm', random_reward_head(tmp_path/'rm', outputs=1), {'purpose': 'a scalar head beside the manifold'})
    s = load_settings()
    eng = HFEngine(settings=s)
    with ServerThread(eng, s) as srv:
        monkeypatch.setenv('TEACHER_API_BASE', srv.base_url)
        assert main(args) == 0
        out = capsys.readouterr().out
        rows = read_jsonl(labels)
        assert {r['source'] for r in rows} == {'policy', 'teacher'} and len({r['id'] for r in rows}) == len(rows)
        assert all(r['teacher'] == eng.model_id and not r['teacher_weak'] for r in rows)          # an endpoint teacher, named by the server
        assert all(set(r['grounded']) == set(mcfg.grounded) for r in rows)
        assert all(r['model'] == eng.model_id for r in rows if r['source'] == 'teacher')
        assert f"{len(rows)} labels from {eng.model_id}" in out
        ok = [r for r in rows if not r.get('error')]
        assert ok and all(set(r['ratings']) == set(mcfg.rated) and r['rationale'] for r in ok)   # the schema-constrained teacher always parses
        # resumed: nothing asked twice; a row that failed for a passing reason is asked again and the newer row wins
        n = len(rows)
        gone = {**rows[0], 'error': {'type': 'unreachable', 'message': 'the teacher was down'}}
        gone.pop('ratings', None); gone.pop('rationale', None)
        with labels.open('a') as f: f.write(json.dumps(gone) + '\n' + '{"id": "torn')   # and a torn last line, as a kill leaves it
        assert main(args) == 0
        again = read_jsonl(labels)
        assert len(again) == n + 2 and again[-1]['id'] == rows[0]['id'] and not again[-1].get('error')
        from agent_slo.learn.manifold import load_labels
        assert len(load_labels(labels)) == n
        # validate: the real file, then a broken copy
        rc = main(['manifold', 'validate', '--labels', str(labels)])
        problems = validate_labels(load_labels(labels), mcfg)
        assert rc == (1 if len(problems) else 0) and f"{n} labels, {n - problems['row'].nunique()} usable" in capsys.readouterr().out
        broken = tmp_path/'broken.jsonl'
        bad = [{**ok[0], 'id': 'x1', 'ratings': {**ok[0]['ratings'], 'empathy': 42}}, {k: v for k, v in ok[0].items() if k != 'grounded'} | {'id': 'x2'},
               {**ok[0], 'id': 'x3', 'rationale': ''}]
        broken.write_text(''.join(json.dumps(r) + '\n' for r in bad))
        assert main(['manifold', 'validate', '--labels', str(broken)]) == 1
        said = capsys.readouterr().out
        assert '3 labels, 0 usable, 3 with problems' in said and 'out_of_range' in said and 'empathy=42' in said and 'missing_field' in said and 'empty_rationale' in said
        # train: the vector head with its dimensions, and the figure
        assert main(['manifold', 'train', '--labels', str(labels), '--config', str(tmp_path/'train.yaml'), '--figures', str(tmp_path/'figs')]) == 0
        said = capsys.readouterr().out
        meta = json.loads((reg.resolve('manifold')/'METADATA.json').read_text())
        assert meta['dimensions'] == mcfg.names and meta['teachers'] == [eng.model_id]
        m = meta['metrics']
        assert m['usable'] == n - problems['row'].nunique() and m['train'] + m['heldout'] == m['usable'] and set(m['sources']) <= {'policy', 'teacher'}
        assert set(m['heldout_report']) == set(mcfg.names) and all(v['n'] == m['heldout'] for v in m['heldout_report'].values())
        assert 'manifold@v1' in said and 'spearman' in said
        assert all((tmp_path/'figs'/f'manifold_pca.{x}').stat().st_size > 1000 for x in ('png', 'pdf'))
        # served: POST /reward with the manifold head reports every dimension by name
        root = srv.base_url.rsplit('/v1', 1)[0]
        body = {'messages': [{'role': 'user', 'content': 'Weather in Paris?'}], 'responses': ['{"name": "get_weather", "arguments": {"city": "Paris"}}', 'I do not know.'], 'vector': 'manifold'}
        r = httpx.post(root + '/reward', json=body, timeout=300)
        assert r.status_code == 200, r.text
        d = r.json()
        assert d['reward_model']['vector'] == 'manifold@v1' and all(list(x['vector']) == mcfg.names for x in d['scores'])
        assert httpx.post(root + '/reward', json={**body, 'vector': 'nothing'}, timeout=60).status_code == 404
        assert main(['reward', 'probe', '--prompt', 'Weather in Paris?', '--response', body['responses'][0], '--response', body['responses'][1],
                     '--vector', 'manifold', '--gateway', srv.base_url]) == 0
        said = capsys.readouterr().out
        assert 'manifold@v1' in said and 'epistemic_integrity' in said and 'moved vs the first' in said
