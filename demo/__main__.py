import sys

from .fleet_demo import main

sys.exit(main())
