"""``python -m chain.node``: run the Keikochain dev node (see :mod:`chain.node.service`)."""

from chain.node.process import exit_with_parent
from chain.node.service import main

exit_with_parent()  # a child of `keiko serve` never outlives it
raise SystemExit(main())
