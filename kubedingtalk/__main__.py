"""``python -m kubedingtalk`` is the console script."""

import sys

from kubedingtalk.cli import main

sys.exit(main())
