"""The session page in headless Chromium (Debian's `chromium`, driven by Playwright) against the real gateway on loopback with
the embedded model: load it, ask, rate with a dimension slider and a tag, find the item in the fsynced feedback log, swap the
adapter in the running engine and watch the page pick up the new version and answer with it, without a reload."""
import json, shutil

import httpx, pytest
from playwright.sync_api import sync_playwright, expect

from agent_slo.core.artifacts import AdapterRegistry
from agent_slo.core.config import load_settings
from agent_slo.core.records import read_jsonl
from agent_slo.engine.hf import HFEngine, random_adapter
from agent_slo.serve.gateway import ServerThread

CHROMIUM = shutil.which('chromium') or '/usr/bin/chromium'
ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync']   # a closed network: no background connections

def test_session_page_round_trip(tmp_path):
    assert shutil.which(CHROMIUM), "the browser test needs Debian's chromium (make test installs it)"
    reg = AdapterRegistry(tmp_path/'art')
    reg.register('tone', random_adapter(tmp_path/'tone', alpha=1, r=2), {'purpose': 'a new version for the page to pick up'}, make_current=False)
    env = {'AGENT_SLO_ARTIFACTS': str(tmp_path/'art'), 'AGENT_SLO_FEEDBACK_DIR': str(tmp_path/'fb'), 'AGENT_SLO_THREADS': '2', 'AGENT_SLO_SERVE_API_KEY': 'k-123'}
    s = load_settings(env=env)
    eng = HFEngine(settings=s)
    base = eng.model_id
    with ServerThread(eng, s) as srv, sync_playwright() as pw:
        root = srv.base_url.rsplit('/v1', 1)[0]
        assert httpx.get(root + '/ui/state').status_code == 401          # the page is public, its calls are not
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page()
        errors = []; page.on('pageerror', lambda e: errors.append(str(e)))
        page.goto(root + '/ui')
        expect(page.locator('#serving')).to_contain_text('unreachable')     # no key yet: the page says so
        page.fill('#key', 'k-123'); page.dispatch_event('#key', 'change')
        expect(page.locator('#serving')).to_have_text(base, timeout=10_000)
        page.evaluate('window.__same_page = 1')
        page.fill('#q', 'Say hello in three words.')
        page.click('#send')
        first = page.locator('.answer').nth(0)
        expect(first.locator('.model')).to_have_text(f'answered by {base}', timeout=120_000)
        first.locator('input[name=empathy]').fill('0.5')
        first.locator('.tags').fill('too short')
        first.locator('.good').click()
        expect(first.locator('.fb')).to_have_text('stored: good', timeout=10_000)
        items = read_jsonl(tmp_path/'fb'/'feedback.jsonl')
        assert len(items) == 1, items
        it = items[0]
        rid = first.get_attribute('data-id')
        assert it['response_id'] == rid and it['rating'] == 1 and it['dimensions'] == {'empathy': 0.5} and it['tags'] == ['too short'] and it['model'] == base, it
        # a new version goes live in the running engine: the page shows it on its own, and the next answer comes from it
        r = httpx.post(root + '/v1/adapters', json={'adapter': 'tone@v1'}, headers={'authorization': 'Bearer k-123'}, timeout=300)
        assert r.status_code == 200, r.text
        new = r.json()['model']
        assert new != base and new.endswith('tone@v1')
        expect(page.locator('#serving')).to_have_text(new, timeout=10_000)
        page.fill('#q', 'And now?')
        page.press('#q', 'Enter')                                # Enter sends
        second = page.locator('.answer').nth(1)
        expect(second.locator('.model')).to_have_text(f'answered by {new}', timeout=120_000)
        second.locator('.bad').click()
        expect(second.locator('.fb')).to_have_text('stored: bad', timeout=10_000)
        assert page.evaluate('window.__same_page') == 1        # no reload happened
        browser.close()
    items = read_jsonl(tmp_path/'fb'/'feedback.jsonl')
    assert [i['rating'] for i in items] == [1, -1] and items[1]['model'] == new
    assert len(items[1]['messages']) == 3, items[1]['messages']    # user, assistant, user
    assert not errors, errors
