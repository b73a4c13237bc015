"""``python -m chain.node``: run the Keikochain dev node (see :mod:`chain.node.service`)."""

from chain.node.service import main

raise SystemExit(main())
