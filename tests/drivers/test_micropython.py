"""The MicroPython-subset promise, checked: mp_checks under CPython and real MicroPython
(the WebAssembly build from npm, run by Node; a missing interpreter fails the test)."""

from tests.mpy import repo_files, run_micropython

from . import mp_checks


def test_mp_checks_pass_under_cpython() -> None:
    assert mp_checks.run() == len(mp_checks.CHECKS)


def test_mp_checks_pass_under_micropython() -> None:
    out = run_micropython(
        "from tests.drivers import mp_checks\nmp_checks.run()\n",
        repo_files(
            "drivers/codecs",
            # the GS1 check digit is the wire contract's; wire/__init__.py imports the rest
            "wire/checkdigit.py",
            "wire/canonical.py",
            "wire/envelope.py",
            "wire/limits.py",
            "wire/mac.py",
            "tests/drivers/feeding.py",
            "tests/drivers/mp_checks.py",
        ),
    )
    assert f"mp_checks: {len(mp_checks.CHECKS)} checks passed" in out, out
