"""Run the Inngest SDK's own ``experimental.mocked`` tests against inngest_do.

    python -m tools.sdk_mocked PATH/TO/inngest/experimental/mocked [pytest args...]

The SDK's ``trigger_test.py`` (and the ``errors.py`` it imports relatively) are copied into a
temporary package whose ``conftest.py`` makes ``import inngest`` load ``inngest_do``; pytest
then runs them unchanged. Nothing of the SDK is kept in this repository.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

_CONFTEST = '''
import sys

import inngest_do
import inngest_do.experimental
import inngest_do.experimental.mocked

sys.modules["inngest"] = inngest_do
for _name in list(sys.modules):
    if _name.startswith("inngest_do.experimental"):
        sys.modules["inngest" + _name[len("inngest_do"):]] = sys.modules[_name]
'''


def main(argv: list[str]) -> int:
    if not argv or not os.path.isfile(os.path.join(argv[0], "trigger_test.py")):
        print(__doc__, file=sys.stderr)
        return 2
    src, extra = argv[0], argv[1:]
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with tempfile.TemporaryDirectory() as tmp:
        pkg = os.path.join(tmp, "sdk_mocked_cases")
        os.mkdir(pkg)
        for name in ("trigger_test.py", "errors.py"):
            shutil.copy(os.path.join(src, name), pkg)
        with open(os.path.join(pkg, "__init__.py"), "w") as f:
            f.write("")
        with open(os.path.join(tmp, "conftest.py"), "w") as f:
            f.write(_CONFTEST)
        # errors.py there must be ours: the cases catch the UnstubbedStepError we raise
        with open(os.path.join(pkg, "errors.py"), "w") as f:
            f.write("from inngest_do.experimental.mocked.errors import UnstubbedStepError\n")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([repo, tmp]))
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
               "--rootdir", tmp, "-o", "python_files=*_test.py", pkg, *extra]
        return subprocess.call(cmd, cwd=tmp, env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
