"""Records written by the previous release (tests/fixtures/records_v0.jsonl, untyped, no schema_version) load as the
current typed version and resume with nothing re-run: the same suite on the same embedded model finds every key done."""
import shutil
from agent_slo.core.records import load_records, read_records, done_keys, RecordWriter, SCHEMA_VERSION
from agent_slo.engine.hf import HFEngine
from agent_slo.tasks.bfcl import subset
from agent_slo.agent.toolcall import AgentConfig
from agent_slo.eval.harness import run_suite
from conftest import ROOT

FIXTURE = ROOT/'tests'/'fixtures'/'records_v0.jsonl'

def test_previous_release_records_load_and_resume(tmp_path):
    f = tmp_path/'records.jsonl'; shutil.copy(FIXTURE, f)
    before = f.read_bytes()
    df = load_records(f)
    assert len(df) == 7 and set(df['schema_version']) == {SCHEMA_VERSION}
    acc = df[df['stage'] == 'accuracy']
    assert len(acc) == 3 and acc['success'].notna().all()
    # the suite that wrote them, run again on the current code: its keys are all done, so nothing is sent or appended
    eng = HFEngine(threads=2)
    tasks = subset(['simple_python', 'live_simple'], 3, split='test', seed=0)
    assert {t.id for t in tasks} == set(acc['task_id'])
    run_suite(eng, tasks, AgentConfig(max_tokens=48), f, progress=False)
    assert f.read_bytes() == before
    # new records append in the current version beside the old ones, and both read back
    with RecordWriter(f) as w: w.write({**read_records(FIXTURE)[0], 'repeat': 1})
    recs = read_records(f)
    assert len(recs) == 8 and len(done_keys(f)) == 7
