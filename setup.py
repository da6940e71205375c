"""Build of the compiled exact layer ``exactrelu._core`` (C++17 and GMP); everything else about the
package is in pyproject.toml. The extension is optional: without a C++ compiler or GMP's headers
the package installs without it and the pure-Python exact layer does all the work (slower)."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "exactrelu._core",
            sources=["exactrelu/_core.cpp"],
            libraries=["gmp"],
            extra_compile_args=["-std=c++17", "-O2", "-fvisibility=hidden"],
            language="c++",
            optional=True,
        )
    ]
)
