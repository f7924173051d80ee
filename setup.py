from setuptools import find_packages, setup

# The two OpenMMLab stacks this package runs on. Both install the same
# modules (`mmpretrain`, `mmengine`, `mmcv`) under different distribution
# names, so a requirement of one stack would install it over the other.
UPSTREAM = ['mmpretrain>=1.2.0,<1.3.0', 'mmengine>=0.10.7,<1.0.0']
ONEDL = [  # OneDL's maintained fork
    'onedl-mmpretrain>=1.3.6,<1.4.0',
    'onedl-mmengine>=0.10.12,<1.0.0',
    # not mmcv-lite: it requires the upstream `mmengine` distribution
    'onedl-mmcv>=2.0.0,<2.4.0',
]


def installed_distributions():
    """Names of the distributions installed in the target interpreter.

    Also read from its own site-packages: pip's isolated build environment
    takes those off ``sys.path``, where ``importlib.metadata`` looks.
    """
    import sys
    import sysconfig
    from importlib.metadata import distributions
    paths = sys.path + [
        sysconfig.get_paths()[key] for key in ('purelib', 'platlib')
    ]
    return {
        dist.metadata['Name'].lower().replace('_', '-')
        for dist in distributions(path=paths)
    }


def openmmlab_requirements():
    """Requirements of the OpenMMLab stack already installed, else upstream.

    OneDL's stack when ``onedl-mmpretrain`` or ``onedl-mmengine`` provides
    the module; otherwise upstream's, keeping a full (compiled) ``mmcv`` when
    one is installed and else asking for mmcv-lite (both install `mmcv`;
    mmcv-lite over a compiled mmcv would overwrite it).
    """
    dists = installed_distributions()
    if dists & {'onedl-mmpretrain', 'onedl-mmengine'}:
        return ONEDL
    mmcv = 'mmcv' if 'mmcv' in dists else 'mmcv-lite'
    return UPSTREAM + [f'{mmcv}>=2.0.0,<2.4.0']


def get_version():
    scope = {}
    with open('lpt_mmpretrain/version.py') as f:
        exec(f.read(), scope)
    return scope['__version__']


with open('README.md', encoding='utf-8') as f:
    long_description = f.read()

setup(
    name='lpt_mmpretrain',
    version=get_version(),
    description='Long-tailed Prompt Tuning (LPT, ICLR 2023) as an '
    'MMPretrain plugin',
    long_description=long_description,
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('configs', 'tools', 'tests', 'docs')),
    # the shipped tiny-ViT stand-in of the CPU demo (weights + sha256 record)
    package_data={'lpt_mmpretrain': ['checkpoints/standins/*']},
    # Tested on 3.11 (CPU) and 3.12 (GPU); OneDL's stack needs 3.10.
    python_requires='>=3.10',
    install_requires=[
        # >= 2.6: checkpoints load with weights_only=True and allow-lists
        # (torch.serialization.add_safe_globals / safe_globals).
        'torch>=2.6',
        'torchvision',
        # MMPretrain, MMEngine, MMCV (mmcv-lite is enough: no compiled ops
        # are used) of upstream or OneDL's stack, see README.
        *openmmlab_requirements(),
        'numpy',
        'scikit-learn',
        'matplotlib',
    ],
    extras_require={
        # timm only builds reference models in the tests: the package reads
        # timm checkpoints without it.
        # pytest-xdist: pytest.ini runs the suite on 2 workers.
        'tests': [
            'pytest', 'pytest-timeout', 'pytest-xdist', 'timm',
            'open_clip_torch'
        ],
        # ONNX export (tools/deployment/pytorch2onnx.py) and ONNX Runtime.
        'deploy': ['onnx', 'onnxscript', 'onnxruntime'],
        # The multi-task HTTP server (tools/deployment/serve.py,
        # docs/serving.md): Ray Serve (FastAPI), multipart uploads, Pillow's
        # checks of uploaded images.
        'serve': ['ray[serve]>=2.60,<3', 'python-multipart', 'Pillow'],
        # imdecode_backend='turbojpeg' (also needs the system libturbojpeg;
        # PyTurboJPEG 2.x needs libjpeg-turbo >= 3), docs/data_loading.md.
        'turbojpeg': ['PyTurboJPEG<2'],
        # Style tools of .pre-commit-config.yaml, pinned (a formatter's
        # output changes between versions), and the docs site's MkDocs.
        'dev': [
            'pre-commit', 'flake8==7.5.0', 'isort==9.0.2', 'yapf==0.43.0',
            'codespell==2.4.3', 'mkdocs==1.6.1'
        ],
    },
    license='Apache License 2.0',
    zip_safe=False,
)
