"Package metadata, read from settings.ini (nbdev 2 keeps it there)."
from configparser import ConfigParser
from pathlib import Path
import setuptools

cfg = ConfigParser(delimiters=['='])
cfg.read('settings.ini', encoding='utf-8')
cfg = cfg['DEFAULT']
reqs = [l.strip() for l in Path('requirements.txt').read_text().splitlines() if l.strip() and not l.startswith('#')]

setuptools.setup(
    name=cfg['lib_name'], version=cfg['version'], description=cfg['description'],
    author=cfg['author'], author_email=cfg['author_email'], license='Apache-2.0',
    keywords=cfg['keywords'].split(), url=cfg['git_url'],
    long_description=Path('README.md').read_text(encoding='utf-8'), long_description_content_type='text/markdown',
    packages=setuptools.find_packages(include=['agent_slo', 'agent_slo.*']),
    python_requires=f">={cfg['min_python']}", install_requires=reqs, include_package_data=True,
    entry_points={'console_scripts': cfg.get('console_scripts', '').split(), 'nbdev': [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"]},
    classifiers=['Programming Language :: Python :: 3.11', 'License :: OSI Approved :: Apache Software License',
                 'Topic :: Scientific/Engineering :: Artificial Intelligence'],
    project_urls={'Source': cfg['git_url']}, extras_require={},
    zip_safe=False,
)
