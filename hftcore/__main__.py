import sys

from hftcore.cli import main

sys.exit(main())
