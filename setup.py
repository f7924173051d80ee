from setuptools import find_packages, setup


def mmcv_requirement():
    """Keep a full mmcv when one is installed, else ask for mmcv-lite.

    Both install the `mmcv` package; asking for mmcv-lite on top of a
    compiled mmcv would overwrite it.
    """
    try:
        from importlib.metadata import PackageNotFoundError, version
        version('mmcv')
        return 'mmcv>=2.0.0,<2.4.0'
    except PackageNotFoundError:
        return 'mmcv-lite>=2.0.0,<2.4.0'


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
    python_requires='>=3.8',
    install_requires=[
        'torch>=1.13',
        'torchvision',
        'mmpretrain>=1.2.0,<1.3.0',
        'mmengine>=0.10.7,<1.0.0',
        # mmcv-lite is enough (no compiled ops are used); a full
        # ``mmcv>=2.0,<2.4`` installed first is kept, see README.
        mmcv_requirement(),
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
        # imdecode_backend='turbojpeg' (also needs the system libturbojpeg;
        # PyTurboJPEG 2.x needs libjpeg-turbo >= 3), docs/data_loading.md.
        'turbojpeg': ['PyTurboJPEG<2'],
    },
    license='Apache License 2.0',
    zip_safe=False,
)
