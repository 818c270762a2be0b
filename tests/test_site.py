"""The papers and the playbook site in a real browser: every paper is rendered from the recorded aggregates (`agent-slo papers`,
no model run), the site is built over every chapter, and headless Chromium (Debian's, driven by Playwright) opens every page
from a loopback server. Each page must render with no console error, no broken internal link or anchor, no missing image and no
table wider than its container. A screenshot of each goes to out/site-check/ for a reader to look at."""
import functools, http.server, shutil, threading
from pathlib import Path
from urllib.parse import urljoin, urlparse, unquote

import pytest
from playwright.sync_api import sync_playwright

from agent_slo.report.papers import render_papers
from agent_slo.report.site import build_site
from conftest import ROOT

CHROMIUM = shutil.which('chromium') or '/usr/bin/chromium'
ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync']
SHOTS = ROOT/'out'/'site-check'

# in the page: images that did not load, tables wider than their container, internal links and the anchors they name
PROBE = """() => {
  const imgs = [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => (i.getAttribute('src') || '').slice(0, 80));
  const wide = [...document.querySelectorAll('table')].filter(t => {
      const box = t.parentElement.getBoundingClientRect().width;
      return t.getBoundingClientRect().width > box + 1 || t.scrollWidth > t.clientWidth + 1; })
    .map(t => (t.querySelector('caption, th') || t).textContent.trim().slice(0, 80));
  const links = [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href')).filter(h => !/^(https?:|mailto:|data:)/.test(h));
  const ids = [...document.querySelectorAll('[id]')].map(e => e.id);
  return {imgs, wide, links, ids};
}"""

@pytest.fixture(scope='module')
def site(tmp_path_factory):
    d = tmp_path_factory.mktemp('site')
    rows = render_papers(out=d/'papers', progress=False)   # every paper whose recorded inputs are all there must render
    assert all(r['ok'] or r.get('missing') for r in rows), [r for r in rows if not r['ok']]
    papers = {r['paper']: {'title': r['paper'].upper(), 'html': r['html'], 'pdf': r['pdf']} for r in rows if r['ok']}
    pages = build_site(d/'_docs', papers=papers, progress=False)
    assert len(pages) >= 60, len(pages)        # every chapter of nbs/, and the index
    return d/'_docs', papers

def test_every_page_in_chromium(site):
    docs, papers = site
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *a): pass
    handler = functools.partial(Quiet, directory=str(docs))
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}/"
    if SHOTS.exists(): shutil.rmtree(SHOTS)
    SHOTS.mkdir(parents=True)
    pages = sorted(p.relative_to(docs).as_posix() for p in docs.rglob('*.html'))
    assert 'index.html' in pages and all(f'papers/{p}.html' in pages for p in papers)
    problems, seen_ids = {}, {}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={'width': 1280, 'height': 900})
            errors = []
            page.on('console', lambda m: errors.append(m.text) if m.type == 'error' else None)
            page.on('pageerror', lambda e: errors.append(str(e)))
            found = {}
            for rel in pages:
                errors.clear()
                resp = page.goto(base + rel, wait_until='load')
                assert resp is not None and resp.status == 200, (rel, resp and resp.status)
                found[rel] = page.evaluate(PROBE)
                seen_ids[rel] = set(found[rel]['ids'])
                page.screenshot(path=str(SHOTS/(rel.replace('/', '__').removesuffix('.html') + '.png')))
                bad = {k: v for k, v in {'console': list(errors), 'images': found[rel]['imgs'], 'wide tables': found[rel]['wide']}.items() if v}
                if bad: problems[rel] = bad
            browser.close()
    finally:
        httpd.shutdown()
    for rel, f in found.items():   # every internal link resolves to a page of the site, and its #anchor to an element there
        for href in f['links']:
            u = urlparse(urljoin(base + rel, href))
            target = unquote(u.path).lstrip('/') or 'index.html'
            if not (docs/target).exists(): problems.setdefault(rel, {}).setdefault('broken links', []).append(href); continue
            if u.fragment and target.endswith('.html') and u.fragment not in seen_ids.get(target, set()):
                problems.setdefault(rel, {}).setdefault('broken anchors', []).append(href)
    assert not problems, problems
    assert len(list(SHOTS.glob('*.png'))) == len(pages)

def test_papers_compile_as_arxiv_bundles(site, tmp_path):
    "Each rendered paper's LaTeX bundle compiles with latexmk/xelatex, its citations resolved, its figures as PDF."
    from agent_slo.report.arxiv import build_bundle
    docs, papers = site
    if not papers: pytest.skip("no paper has all its inputs recorded in data/aggregate yet (agent-slo papers names what is missing)")
    for name, p in papers.items():
        b = build_bundle(Path(p['html']).parent/'latex', tmp_path/'arxiv', name)
        assert b['pages'] >= 2 and f'{name}.bbl' in b['files'] and 'refs.bib' in b['files'], b
        assert not [f for f in b['files'] if f.endswith('.png') and (Path(p['html']).parent/'latex'/f).with_suffix('.pdf').exists()], b['files']

# per paper, a value its text certainly prints: (aggregate, key column, key or None for the first row, value column, how 0.4321 prints there)
PROBES = {'p1': ('p1_paired.csv', 'category', 'all', 'success_constrained', '43.2%'), 'p2': ('rl_stages.csv', 'model', 'sft-long', 'success', '43.2%'),
          'p3': ('p3_modes.csv', 'decoding', 'constrained', 'success', '43%'),           # the modes table prints whole percents
          'p4': ('p4_sim_error_summary.csv', 'percentile', 'p95', 'mean', '43.2%'), 'p5': ('p5_greedy.csv', 'tasks', None, 'accuracy', '43.2%'),
          'p6': ('p6b_uplift.csv', 'model', None, 'top_half_uplift', '+43.2')}   # an uplift prints in points: +43.2 pp

def test_paper_text_follows_the_aggregates(tmp_path):
    "Change one value of an aggregate CSV (its run recorded as before) and the rendered paper's text changes with it, for every paper whose inputs are recorded."
    import re
    import pandas as pd
    from agent_slo.report.papers import Results, missing_inputs
    res = Results()
    ready = [n for n in PROBES if not missing_inputs(n, res)]
    if not ready: pytest.skip("no paper has all its inputs recorded in data/aggregate yet")
    text = lambda r: re.sub(r'<[^>]+>', ' ', Path(r['html']).read_text())
    for name in ready:
        csv, key, val, col, shown = PROBES[name]
        agg = tmp_path/name/'agg'; shutil.copytree(res.folder, agg)
        before = render_papers([name], aggregate_dir=agg, out=tmp_path/name/'before', progress=False)[0]
        df = pd.read_csv(agg/csv)
        rows = df[key] == val if val is not None else df.index[:1]
        assert len(df.loc[rows]), f"{csv} has no row {key} = {val}"
        df.loc[rows, col] = 0.4321; df.to_csv(agg/csv, index=False)     # 43.2%: a value no run here produced
        after = render_papers([name], aggregate_dir=agg, out=tmp_path/name/'after', progress=False)[0]
        assert before['ok'] and after['ok'], (before, after)
        assert shown not in text(before), f"{name} already prints {shown}: pick another probe value"
        assert shown in text(after), f"{csv}:{col} = 0.4321 does not show in {name} as {shown}"
