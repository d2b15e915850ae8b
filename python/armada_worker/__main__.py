"""Entry point: ``python3 -m armada_worker``."""

from armada_worker.serve import main

main()
